//! The catalog: built-in GPUs, models and price books, extended or overridden by user TOML
//! files (`--catalog FILE`, repeatable, applied in order).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ModelError;
use crate::gpu::{Efficiency, GpuSpec, builtin_gpus};
use crate::llm::{ModelSpec, builtin_models};
use crate::prices::{DEFAULT_BOOK, Price, PriceBook, builtin_price_books};

/// Short names users type, mapped to catalog names.
const ALIASES: &[(&str, &str)] = &[
    ("H100", "H100-SXM"),
    ("A100", "A100-80GB"),
    ("V100", "V100-16GB"),
    ("A10", "A10G"),
];

/// A KV-cache size pinned by the user for one (model, GPU, TP) instance type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvPin {
    /// Model name.
    pub model: String,
    /// GPU name.
    pub gpu: String,
    /// Tensor-parallel degree.
    #[serde(default = "one")]
    pub tp: u32,
    /// Number of 16-token KV blocks the instance holds.
    pub blocks: u64,
}

fn one() -> u32 {
    1
}

/// GPUs, models and price books available to a run.
#[derive(Debug, Clone)]
pub struct Catalog {
    gpus: Vec<GpuSpec>,
    models: Vec<ModelSpec>,
    price_books: Vec<PriceBook>,
    default_book: String,
    kv_pins: Vec<KvPin>,
    /// Files applied on top of the built-in catalog, in order.
    pub overlays: Vec<PathBuf>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Catalog {
    /// The built-in catalog alone.
    pub fn builtin() -> Self {
        Self {
            gpus: builtin_gpus(),
            models: builtin_models(),
            price_books: builtin_price_books(),
            default_book: DEFAULT_BOOK.to_string(),
            kv_pins: Vec::new(),
            overlays: Vec::new(),
        }
    }

    /// The built-in catalog with each file applied in turn.
    pub fn load(files: &[PathBuf]) -> Result<Self, ModelError> {
        let mut catalog = Self::builtin();
        for file in files {
            catalog.apply_file(file)?;
        }
        Ok(catalog)
    }

    /// Applies one overlay file.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::CatalogFile {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        self.apply_toml(&text)
            .map_err(|message| ModelError::CatalogFile {
                path: path.to_path_buf(),
                message,
            })?;
        self.overlays.push(path.to_path_buf());
        Ok(())
    }

    /// Applies overlay TOML text; the error says what was wrong and where.
    pub fn apply_toml(&mut self, text: &str) -> Result<(), String> {
        let overlay: Overlay = toml::from_str(text).map_err(|e| e.to_string())?;
        for patch in overlay.gpu {
            self.apply_gpu(patch)?;
        }
        for patch in overlay.model {
            self.apply_model(patch)?;
        }
        for (name, book) in overlay.price_books {
            self.apply_book(name, book)?;
        }
        for pin in overlay.kv_blocks {
            let model = self
                .model(&pin.model)
                .map_err(|e| e.to_string())?
                .name
                .clone();
            let gpu = self.gpu(&pin.gpu).map_err(|e| e.to_string())?.name.clone();
            if pin.blocks == 0 || pin.tp == 0 {
                return Err(format!(
                    "kv_blocks for {model} on {gpu}: blocks and tp must be positive"
                ));
            }
            self.kv_pins
                .retain(|p| !(p.model == model && p.gpu == gpu && p.tp == pin.tp));
            self.kv_pins.push(KvPin { model, gpu, ..pin });
        }
        if let Some(book) = overlay.default_price_book {
            self.price_book(Some(&book)).map_err(|e| e.to_string())?;
            self.default_book = book;
        }
        Ok(())
    }

    fn apply_gpu(&mut self, patch: GpuPatch) -> Result<(), String> {
        let existing = self.resolve(&patch.name, self.gpus.iter().map(|g| &g.name));
        let mut spec = match existing {
            Some(name) => self.gpus.iter().find(|g| g.name == name).cloned().unwrap(),
            None => GpuSpec {
                name: patch.name.clone(),
                mem_gb: required(patch.mem_gb, &patch.name, "mem_gb")?,
                mem_bw_gbs: required(patch.mem_bw_gbs, &patch.name, "mem_bw_gbs")?,
                dense_tflops: required(patch.dense_tflops, &patch.name, "dense_tflops")?,
                fp8_tflops: None,
                link_gbs_bidir: 64.0,
                host_link_gbs: 32.0,
                tdp_w: 0.0,
                source: "user catalog".to_string(),
                efficiency: Efficiency::datasheet_default(),
            },
        };
        set(&mut spec.mem_gb, patch.mem_gb);
        set(&mut spec.mem_bw_gbs, patch.mem_bw_gbs);
        set(&mut spec.dense_tflops, patch.dense_tflops);
        if patch.fp8_tflops.is_some() {
            spec.fp8_tflops = patch.fp8_tflops;
        }
        set(&mut spec.link_gbs_bidir, patch.link_gbs_bidir);
        set(&mut spec.host_link_gbs, patch.host_link_gbs);
        set(&mut spec.tdp_w, patch.tdp_w);
        set(&mut spec.source, patch.source);
        if let Some(eff) = patch.efficiency {
            let e = &mut spec.efficiency;
            set(&mut e.flops_fraction, eff.flops_fraction);
            set(&mut e.bandwidth_fraction, eff.bandwidth_fraction);
            set(&mut e.iteration_overhead_us, eff.iteration_overhead_us);
            set(
                &mut e.per_sequence_overhead_us,
                eff.per_sequence_overhead_us,
            );
            set(&mut e.per_prefill_overhead_us, eff.per_prefill_overhead_us);
            set(&mut e.allreduce_step_us, eff.allreduce_step_us);
            set(&mut e.link_fraction, eff.link_fraction);
            set(&mut e.overlap_exponent, eff.overlap_exponent);
            e.provenance = eff.provenance.unwrap_or_else(|| "user catalog".to_string());
        }
        check_gpu(&spec)?;
        match self.gpus.iter_mut().find(|g| g.name == spec.name) {
            Some(slot) => *slot = spec,
            None => self.gpus.push(spec),
        }
        Ok(())
    }

    fn apply_model(&mut self, patch: ModelPatch) -> Result<(), String> {
        let existing = self.resolve(&patch.name, self.models.iter().map(|m| &m.name));
        let mut spec = match existing {
            Some(name) => self
                .models
                .iter()
                .find(|m| m.name == name)
                .cloned()
                .unwrap(),
            None => {
                let hidden = required(patch.hidden, &patch.name, "hidden")?;
                let heads = required(patch.heads, &patch.name, "heads")?;
                ModelSpec {
                    name: patch.name.clone(),
                    layers: required(patch.layers, &patch.name, "layers")?,
                    hidden,
                    heads,
                    kv_heads: patch.kv_heads.unwrap_or(heads),
                    head_dim: patch.head_dim.unwrap_or(hidden / heads.max(1)),
                    ffn: required(patch.ffn, &patch.name, "ffn")?,
                    vocab: required(patch.vocab, &patch.name, "vocab")?,
                    max_context: required(patch.max_context, &patch.name, "max_context")?,
                    params: 0.0,
                    tied_embeddings: patch.tied_embeddings.unwrap_or(false),
                    source: "user catalog".to_string(),
                }
            }
        };
        set(&mut spec.layers, patch.layers);
        set(&mut spec.hidden, patch.hidden);
        set(&mut spec.heads, patch.heads);
        set(&mut spec.kv_heads, patch.kv_heads);
        set(&mut spec.head_dim, patch.head_dim);
        set(&mut spec.ffn, patch.ffn);
        set(&mut spec.vocab, patch.vocab);
        set(&mut spec.max_context, patch.max_context);
        set(&mut spec.tied_embeddings, patch.tied_embeddings);
        set(&mut spec.source, patch.source);
        match patch.params {
            Some(p) => spec.params = p,
            // A new model without a published count: count it from the architecture.
            None if spec.params == 0.0 => spec.params = spec.architecture_params(),
            None => {}
        }
        if spec.layers == 0 || spec.hidden == 0 || spec.heads == 0 || spec.kv_heads == 0 {
            return Err(format!(
                "model '{}': layers, hidden, heads and kv_heads must be positive",
                spec.name
            ));
        }
        if spec.heads % spec.kv_heads != 0 {
            return Err(format!(
                "model '{}': heads ({}) must be a multiple of kv_heads ({})",
                spec.name, spec.heads, spec.kv_heads
            ));
        }
        match self.models.iter_mut().find(|m| m.name == spec.name) {
            Some(slot) => *slot = spec,
            None => self.models.push(spec),
        }
        Ok(())
    }

    fn apply_book(&mut self, name: String, patch: BookPatch) -> Result<(), String> {
        let index = match self.price_books.iter().position(|b| b.name == name) {
            Some(i) => i,
            None => {
                self.price_books.push(PriceBook {
                    name: name.clone(),
                    description: "user price book".to_string(),
                    prices: BTreeMap::new(),
                });
                self.price_books.len() - 1
            }
        };
        if let Some(description) = patch.description {
            self.price_books[index].description = description;
        }
        for (gpu, entry) in patch.prices {
            let gpu_name = self
                .gpu(&gpu)
                .map_err(|e| format!("price_books.{name}: {e}"))?;
            let gpu_name = gpu_name.name.clone();
            let price = match entry {
                PriceEntry::Plain(usd) => Price {
                    usd_per_hour: usd,
                    source: patch
                        .source
                        .clone()
                        .unwrap_or_else(|| "user catalog".to_string()),
                },
                PriceEntry::Full {
                    usd_per_hour,
                    source,
                } => Price {
                    usd_per_hour,
                    source,
                },
            };
            if !(price.usd_per_hour.is_finite() && price.usd_per_hour > 0.0) {
                return Err(format!(
                    "price_books.{name}.prices.{gpu}: price must be a positive number of $/GPU-hour, \
                     found {}",
                    price.usd_per_hour
                ));
            }
            self.price_books[index].prices.insert(gpu_name, price);
        }
        Ok(())
    }

    fn resolve<'a>(&self, name: &str, names: impl Iterator<Item = &'a String>) -> Option<String> {
        let alias = ALIASES
            .iter()
            .find(|(short, _)| short.eq_ignore_ascii_case(name))
            .map(|(_, full)| *full);
        let mut found = None;
        for candidate in names {
            if candidate == name {
                return Some(candidate.clone());
            }
            if candidate.eq_ignore_ascii_case(name) || Some(candidate.as_str()) == alias {
                found = Some(candidate.clone());
            }
        }
        found
    }

    /// A GPU by name (case-insensitive; `H100` means `H100-SXM`, `A100` means `A100-80GB`).
    pub fn gpu(&self, name: &str) -> Result<&GpuSpec, ModelError> {
        let resolved = self.resolve(name, self.gpus.iter().map(|g| &g.name));
        resolved
            .and_then(|n| self.gpus.iter().find(|g| g.name == n))
            .ok_or_else(|| ModelError::Unknown {
                kind: "GPU",
                name: name.to_string(),
                known: self.gpus.iter().map(|g| g.name.clone()).collect(),
            })
    }

    /// A model by name (case-insensitive).
    pub fn model(&self, name: &str) -> Result<&ModelSpec, ModelError> {
        let resolved = self.resolve(name, self.models.iter().map(|m| &m.name));
        resolved
            .and_then(|n| self.models.iter().find(|m| m.name == n))
            .ok_or_else(|| ModelError::Unknown {
                kind: "model",
                name: name.to_string(),
                known: self.models.iter().map(|m| m.name.clone()).collect(),
            })
    }

    /// A price book by name, or the default book when `name` is `None`.
    pub fn price_book(&self, name: Option<&str>) -> Result<&PriceBook, ModelError> {
        let wanted = name.unwrap_or(&self.default_book);
        self.price_books
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ModelError::Unknown {
                kind: "price book",
                name: wanted.to_string(),
                known: self.price_books.iter().map(|b| b.name.clone()).collect(),
            })
    }

    /// All GPUs, built-in first, then user additions.
    pub fn gpus(&self) -> &[GpuSpec] {
        &self.gpus
    }

    /// All models.
    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    /// All price books.
    pub fn price_books(&self) -> &[PriceBook] {
        &self.price_books
    }

    /// Name of the book used when none is named.
    pub fn default_book(&self) -> &str {
        &self.default_book
    }

    /// The KV block count a user pinned for this instance type, if any.
    pub fn kv_pin(&self, model: &str, gpu: &str, tp: u32) -> Option<u64> {
        self.kv_pins
            .iter()
            .find(|p| p.model == model && p.gpu == gpu && p.tp == tp)
            .map(|p| p.blocks)
    }
}

fn required<T>(value: Option<T>, name: &str, key: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("new entry '{name}' needs the key '{key}'"))
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Ceiling on a GPU's memory (GB), bandwidths (GB/s) and TFLOPS: far beyond any accelerator,
/// and low enough that KV-cache token counts and times stay in range.
const MAX_GPU_FIGURE: f64 = 1e6;

fn check_gpu(spec: &GpuSpec) -> Result<(), String> {
    // Cluster specs (`GPU:count[:tpN]`, comma-separated) could not name a GPU with these.
    let name = &spec.name;
    if name.trim().is_empty() || name.trim() != name || name.contains([':', ',', '=']) {
        return Err(format!(
            "gpu '{name}': a name must be non-empty, without surrounding spaces, ':', ',' or '=' \
             (cluster specs like A10G:2 use them)"
        ));
    }
    let positive = [
        ("mem_gb", spec.mem_gb),
        ("mem_bw_gbs", spec.mem_bw_gbs),
        ("dense_tflops", spec.dense_tflops),
        ("link_gbs_bidir", spec.link_gbs_bidir),
        ("host_link_gbs", spec.host_link_gbs),
    ];
    for (key, value) in positive {
        if !(value > 0.0 && value <= MAX_GPU_FIGURE) {
            return Err(format!(
                "gpu '{}': {key} must be a positive number up to {MAX_GPU_FIGURE:e}, found {value}",
                spec.name
            ));
        }
    }
    let e = &spec.efficiency;
    for (key, value) in [
        ("efficiency.flops_fraction", e.flops_fraction),
        ("efficiency.bandwidth_fraction", e.bandwidth_fraction),
        ("efficiency.link_fraction", e.link_fraction),
    ] {
        if !(value > 0.0 && value <= 1.0) {
            return Err(format!(
                "gpu '{}': {key} must be in (0, 1], found {value}",
                spec.name
            ));
        }
    }
    if !(e.overlap_exponent.is_finite() && e.overlap_exponent >= 1.0) {
        return Err(format!(
            "gpu '{}': efficiency.overlap_exponent must be a finite number >= 1 (1: memory and \
             compute times add), found {}",
            spec.name, e.overlap_exponent
        ));
    }
    for (key, value) in [
        ("efficiency.iteration_overhead_us", e.iteration_overhead_us),
        (
            "efficiency.per_sequence_overhead_us",
            e.per_sequence_overhead_us,
        ),
        (
            "efficiency.per_prefill_overhead_us",
            e.per_prefill_overhead_us,
        ),
        ("efficiency.allreduce_step_us", e.allreduce_step_us),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(format!(
                "gpu '{}': {key} must be zero or positive, found {value}",
                spec.name
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overlay {
    default_price_book: Option<String>,
    #[serde(default)]
    gpu: Vec<GpuPatch>,
    #[serde(default)]
    model: Vec<ModelPatch>,
    #[serde(default)]
    price_books: BTreeMap<String, BookPatch>,
    #[serde(default)]
    kv_blocks: Vec<KvPin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuPatch {
    name: String,
    mem_gb: Option<f64>,
    mem_bw_gbs: Option<f64>,
    dense_tflops: Option<f64>,
    fp8_tflops: Option<f64>,
    link_gbs_bidir: Option<f64>,
    host_link_gbs: Option<f64>,
    tdp_w: Option<f64>,
    source: Option<String>,
    efficiency: Option<EfficiencyPatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EfficiencyPatch {
    flops_fraction: Option<f64>,
    bandwidth_fraction: Option<f64>,
    iteration_overhead_us: Option<f64>,
    per_sequence_overhead_us: Option<f64>,
    per_prefill_overhead_us: Option<f64>,
    allreduce_step_us: Option<f64>,
    link_fraction: Option<f64>,
    overlap_exponent: Option<f64>,
    provenance: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelPatch {
    name: String,
    layers: Option<u32>,
    hidden: Option<u32>,
    heads: Option<u32>,
    kv_heads: Option<u32>,
    head_dim: Option<u32>,
    ffn: Option<u32>,
    vocab: Option<u32>,
    max_context: Option<u32>,
    params: Option<f64>,
    tied_embeddings: Option<bool>,
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookPatch {
    description: Option<String>,
    /// Source applied to prices given as plain numbers.
    source: Option<String>,
    #[serde(default)]
    prices: BTreeMap<String, PriceEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PriceEntry {
    Plain(f64),
    Full { usd_per_hour: f64, source: String },
}
