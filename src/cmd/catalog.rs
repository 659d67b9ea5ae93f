//! `medley gpus`, `medley models`, `medley prices`, `medley instance` and `medley calibrate`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use gpu_models::calibrate::{CalibrationReport, calibrate, fitted_rust};
use gpu_models::{Catalog, Instance, InstanceOptions, MeasuredTable, TableFilter, WeightDtype};
use serde::Serialize;

use super::CmdResult;
use super::table::TextTable;

/// Options shared by every command that reads the catalog.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// Extra catalog file (TOML) adding or overriding GPUs, models, price books or KV pins;
    /// repeatable, applied in order.
    #[arg(long = "catalog", value_name = "FILE", global = true)]
    pub catalog: Vec<PathBuf>,
}

impl CatalogArgs {
    /// The built-in catalog with the user's files applied.
    pub fn load(&self) -> Result<Catalog, gpu_models::ModelError> {
        Catalog::load(&self.catalog)
    }
}

/// Arguments of `medley gpus`.
#[derive(Debug, Args)]
pub struct GpusArgs {
    /// Price book for the $/GPU-hour column (default: the catalog's default book).
    #[arg(long)]
    pub prices: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists GPU types with their facts and prices.
pub fn gpus(args: GpusArgs, catalog: &Catalog) -> CmdResult {
    let book = catalog.price_book(args.prices.as_deref())?;
    if args.json {
        #[derive(Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            gpu: &'a gpu_models::GpuSpec,
            usd_per_gpu_hour: Option<f64>,
        }
        #[derive(Serialize)]
        struct Out<'a> {
            price_book: &'a str,
            gpus: Vec<Row<'a>>,
        }
        let out = Out {
            price_book: &book.name,
            gpus: catalog
                .gpus()
                .iter()
                .map(|gpu| Row {
                    gpu,
                    usd_per_gpu_hour: book.usd_per_gpu_hour(&gpu.name),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let mut table = TextTable::new([
        "gpu",
        "mem GB",
        "BW GB/s",
        "BF16 TFLOPS",
        "link GB/s",
        "TDP W",
        "$/GPU-h",
        "latency factors",
    ]);
    for gpu in catalog.gpus() {
        let price = book
            .usd_per_gpu_hour(&gpu.name)
            .map(|p| format!("{p:.3}"))
            .unwrap_or_else(|| "-".into());
        let factors = if gpu.efficiency.provenance.starts_with("fitted") {
            "fitted"
        } else if gpu.efficiency.provenance.starts_with("datasheet") {
            "datasheet default"
        } else {
            "user"
        };
        table.row([
            gpu.name.clone(),
            format!("{:.0}", gpu.mem_gb),
            format!("{:.0}", gpu.mem_bw_gbs),
            format!("{:.0}", gpu.dense_tflops),
            format!("{:.0}", gpu.link_gbs_bidir),
            format!("{:.0}", gpu.tdp_w),
            price,
            factors.to_string(),
        ]);
    }
    println!("price book: {} ({})", book.name, book.description);
    print!("{}", table.render());
    println!("sources: `medley gpus --json` lists each GPU's source and latency-factor provenance");
    Ok(())
}

/// Arguments of `medley models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists the models with their architecture facts.
pub fn models(args: ModelsArgs, catalog: &Catalog) -> CmdResult {
    if args.json {
        println!("{}", serde_json::to_string_pretty(catalog.models())?);
        return Ok(());
    }
    let mut table = TextTable::new([
        "model",
        "params B",
        "layers",
        "hidden",
        "heads",
        "kv heads",
        "head dim",
        "ffn",
        "vocab",
        "max ctx",
        "KV KB/token",
        "source",
    ]);
    for m in catalog.models() {
        table.row([
            m.name.clone(),
            format!("{:.2}", m.params / 1e9),
            m.layers.to_string(),
            m.hidden.to_string(),
            m.heads.to_string(),
            m.kv_heads.to_string(),
            m.head_dim.to_string(),
            m.ffn.to_string(),
            m.vocab.to_string(),
            m.max_context.to_string(),
            format!("{:.0}", m.kv_bytes_per_token() / 1024.0),
            m.source.split(';').next().unwrap_or("").to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// Arguments of `medley prices`.
#[derive(Debug, Args)]
pub struct PricesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists every price book side by side.
pub fn prices(args: PricesArgs, catalog: &Catalog) -> CmdResult {
    if args.json {
        println!("{}", serde_json::to_string_pretty(catalog.price_books())?);
        return Ok(());
    }
    let books = catalog.price_books();
    let mut header = vec!["gpu ($/GPU-hour)".to_string()];
    header.extend(books.iter().map(|b| {
        if b.name == catalog.default_book() {
            format!("{} (default)", b.name)
        } else {
            b.name.clone()
        }
    }));
    let mut table = TextTable::new(header);
    for gpu in catalog.gpus() {
        let mut row = vec![gpu.name.clone()];
        row.extend(books.iter().map(|b| {
            b.usd_per_gpu_hour(&gpu.name)
                .map(|p| format!("{p:.3}"))
                .unwrap_or_else(|| "-".into())
        }));
        table.row(row);
    }
    print!("{}", table.render());
    for book in books {
        println!("{}: {}", book.name, book.description);
    }
    Ok(())
}

/// Arguments of `medley instance`.
#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// Model name (see `medley models`).
    #[arg(long)]
    pub model: String,
    /// GPU type (see `medley gpus`).
    #[arg(long)]
    pub gpu: String,
    /// GPUs per instance (tensor-parallel degree).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub tp: u32,
    /// Weight precision: bf16 or fp8.
    #[arg(long, default_value = "bf16")]
    pub dtype: String,
    /// Fraction of GPU memory the engine may use.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub mem_util: f64,
    /// Longest request accepted (tokens); default the model's context.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_model_len: Option<u32>,
    /// Pin the number of 16-token KV blocks instead of deriving it from memory.
    #[arg(long)]
    pub kv_blocks: Option<u64>,
    /// Use a measured latency table (CSV) instead of the roofline model.
    #[arg(long, value_name = "FILE")]
    pub latency_table: Option<PathBuf>,
    /// Prompt lengths to time a lone prefill for (comma-separated tokens, each within the
    /// instance's max model length).
    #[arg(long, value_delimiter = ',', default_values_t = [128u32, 512, 2048],
          value_parser = clap::value_parser!(u32).range(1..))]
    pub prefill: Vec<u32>,
    /// Decode batch sizes to time one step for (comma-separated, at least 1).
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 8, 32, 128],
          value_parser = clap::value_parser!(u32).range(1..))]
    pub decode_batch: Vec<u32>,
    /// Context length (tokens in the cache) of each decoding sequence, below the instance's max
    /// model length.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub context: u32,
    /// Price book.
    #[arg(long)]
    pub prices: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct DecodeRow {
    batch_size: u32,
    context: u32,
    step_ms: f64,
    tokens_per_s: f64,
    tokens_per_usd: Option<f64>,
    fits_in_kv: bool,
}

#[derive(Serialize)]
struct InstanceReport {
    instance: String,
    fits: bool,
    reason: Option<String>,
    weights_gb: Option<f64>,
    kv_tokens: Option<u64>,
    kv_blocks: Option<u64>,
    kv_pinned: Option<bool>,
    max_model_len: Option<u32>,
    latency_model: Option<String>,
    prefill_ms: Vec<(u32, f64)>,
    decode: Vec<DecodeRow>,
    price_book: String,
    usd_per_hour: Option<f64>,
}

/// Shows whether a model fits a GPU type and how fast it runs there.
pub fn instance(args: InstanceArgs, catalog: &Catalog) -> CmdResult {
    let dtype = WeightDtype::parse(&args.dtype)
        .ok_or_else(|| format!("--dtype: expected bf16 or fp8, found '{}'", args.dtype))?;
    if !(args.mem_util > 0.0 && args.mem_util <= 1.0) {
        return Err(format!(
            "--mem-util: expected a fraction in (0, 1], found {}",
            args.mem_util
        )
        .into());
    }
    let book = catalog.price_book(args.prices.as_deref())?;
    let measured = match &args.latency_table {
        Some(path) => Some(Arc::new(MeasuredTable::from_csv(
            path,
            &TableFilter::default(),
        )?)),
        None => None,
    };
    let options = InstanceOptions {
        mem_utilization: args.mem_util,
        dtype,
        max_model_len: args.max_model_len,
        kv_blocks: args.kv_blocks,
        measured,
        ..InstanceOptions::default()
    };
    let model = catalog.model(&args.model)?;
    let gpu = catalog.gpu(&args.gpu)?;
    let name = if args.tp == 1 {
        format!("{}@{}", model.name, gpu.name)
    } else {
        format!("{}@{}x{}", model.name, gpu.name, args.tp)
    };
    let built = Instance::from_catalog(catalog, &model.name, &gpu.name, args.tp, &options)?;
    let report = match built {
        Err(reason) => InstanceReport {
            instance: name,
            fits: false,
            reason: Some(reason.to_string()),
            weights_gb: Some(model.weight_bytes(dtype) / 1e9),
            kv_tokens: None,
            kv_blocks: None,
            kv_pinned: None,
            max_model_len: None,
            latency_model: None,
            prefill_ms: Vec::new(),
            decode: Vec::new(),
            price_book: book.name.clone(),
            usd_per_hour: book
                .usd_per_gpu_hour(&gpu.name)
                .map(|p| p * f64::from(args.tp)),
        },
        Ok(inst) => {
            // A prompt or context the engine would never admit times nothing it could run.
            if let Some(tokens) = args.prefill.iter().find(|&&t| t > inst.max_model_len) {
                return Err(format!(
                    "--prefill {tokens}: longer than the instance's max model length ({} tokens); \
                     give shorter prompts or raise --max-model-len",
                    inst.max_model_len
                )
                .into());
            }
            if args.context >= inst.max_model_len {
                return Err(format!(
                    "--context {}: at or past the instance's max model length ({} tokens), \
                     where no sequence is still decoding; give a shorter context or raise \
                     --max-model-len",
                    args.context, inst.max_model_len
                )
                .into());
            }
            let usd_per_hour = inst.usd_per_hour(book);
            let decode = args
                .decode_batch
                .iter()
                .map(|&batch_size| {
                    let step_s = inst.decode_step_s(batch_size, args.context);
                    let tokens_per_s = f64::from(batch_size) / step_s;
                    DecodeRow {
                        batch_size,
                        context: args.context,
                        step_ms: step_s * 1e3,
                        tokens_per_s,
                        tokens_per_usd: usd_per_hour.map(|usd| tokens_per_s * 3600.0 / usd),
                        fits_in_kv: u64::from(batch_size) * u64::from(args.context)
                            <= inst.kv_tokens,
                    }
                })
                .collect();
            InstanceReport {
                instance: inst.name(),
                fits: true,
                reason: None,
                weights_gb: Some(inst.weight_bytes / 1e9),
                kv_tokens: Some(inst.kv_tokens),
                kv_blocks: Some(inst.kv_blocks),
                kv_pinned: Some(inst.kv_pinned),
                max_model_len: Some(inst.max_model_len),
                latency_model: Some(inst.latency.name().to_string()),
                prefill_ms: args
                    .prefill
                    .iter()
                    .map(|&t| (t, inst.prefill_s(t) * 1e3))
                    .collect(),
                decode,
                price_book: book.name.clone(),
                usd_per_hour,
            }
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("instance: {}", report.instance);
    if let Some(reason) = &report.reason {
        println!("fits: no -- {reason}");
        return Ok(());
    }
    println!("fits: yes");
    println!(
        "weights: {:.2} GB   KV cache: {} tokens = {} blocks of 16{}   max model len: {}",
        report.weights_gb.unwrap_or_default(),
        report.kv_tokens.unwrap_or_default(),
        report.kv_blocks.unwrap_or_default(),
        if report.kv_pinned == Some(true) {
            " (pinned)"
        } else {
            ""
        },
        report.max_model_len.unwrap_or_default()
    );
    match report.usd_per_hour {
        Some(usd) => println!("price: ${usd:.3}/hour ({} book)", report.price_book),
        None => println!("price: not in the {} book", report.price_book),
    }
    println!(
        "latency model: {}",
        report.latency_model.as_deref().unwrap_or("-")
    );
    let mut prefill = TextTable::new(["prompt tokens", "prefill ms"]);
    for (tokens, ms) in &report.prefill_ms {
        prefill.row([tokens.to_string(), format!("{ms:.2}")]);
    }
    print!("{}", prefill.render());
    let mut decode = TextTable::new([
        "decode batch",
        "context",
        "step ms",
        "tokens/s",
        "tokens/$",
        "fits KV",
    ]);
    for row in &report.decode {
        decode.row([
            row.batch_size.to_string(),
            row.context.to_string(),
            format!("{:.2}", row.step_ms),
            format!("{:.0}", row.tokens_per_s),
            row.tokens_per_usd
                .map(|t| format!("{t:.0}"))
                .unwrap_or_else(|| "-".into()),
            if row.fits_in_kv { "yes" } else { "no" }.to_string(),
        ]);
    }
    print!("{}", decode.render());
    Ok(())
}

/// Arguments of `medley calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Measured table: splitwise-sim layout (model, hardware, prompt_size, batch_size,
    /// token_size, prompt_time, token_time, tensor_parallel; times in ms).
    #[arg(long)]
    pub table: PathBuf,
    /// Fit only this GPU type.
    #[arg(long)]
    pub gpu: Option<String>,
    /// Print the fitted factors as Rust source for gpu-models/src/fitted.rs.
    #[arg(long)]
    pub emit_rust: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Fits latency factors to measurements and reports the errors before and after.
pub fn calibrate_cmd(args: CalibrateArgs, catalog: &Catalog) -> CmdResult {
    let report = calibrate(&args.table, catalog, args.gpu.as_deref())?;
    if args.emit_rust {
        print!("{}", fitted_rust(&report, catalog));
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_calibration(&report);
    Ok(())
}

fn print_calibration(report: &CalibrationReport) {
    println!(
        "table: {} ({} rows read, {} excluded)",
        report.table.display(),
        report.rows_read,
        report.excluded.len()
    );
    for ex in &report.excluded {
        println!("  excluded line {} ({}): {}", ex.line, ex.what, ex.reason);
    }
    let mut table = TextTable::new([
        "gpu",
        "tp",
        "rows",
        "prefill MAPE before",
        "decode MAPE before",
        "prefill MAPE after",
        "decode MAPE after",
    ]);
    for fit in &report.fits {
        for g in &fit.groups {
            table.row([
                fit.gpu.clone(),
                g.tp.to_string(),
                g.rows.to_string(),
                format!("{:.1}%", g.prefill_mape_before),
                format!("{:.1}%", g.decode_mape_before),
                format!("{:.1}%", g.prefill_mape_after),
                format!("{:.1}%", g.decode_mape_after),
            ]);
        }
        table.row([
            fit.gpu.clone(),
            "all".to_string(),
            fit.groups.iter().map(|g| g.rows).sum::<usize>().to_string(),
            format!("{:.1}%", fit.prefill_mape_before),
            format!("{:.1}%", fit.decode_mape_before),
            format!("{:.1}%", fit.prefill_mape_after),
            format!("{:.1}%", fit.decode_mape_after),
        ]);
    }
    print!("{}", table.render());
    // The calibration target of the latency model: MAPE after fitting at most this, on prefill
    // and on decode, per GPU and TP degree.
    const TARGET_MAPE_PERCENT: f64 = 10.0;
    let mut over = Vec::new();
    for fit in &report.fits {
        for g in &fit.groups {
            for (what, mape) in [
                ("prefill", g.prefill_mape_after),
                ("decode", g.decode_mape_after),
            ] {
                if mape > TARGET_MAPE_PERCENT {
                    over.push(format!("{} TP{} {what} {mape:.1}%", fit.gpu, g.tp));
                }
            }
        }
    }
    if over.is_empty() {
        println!(
            "after fitting, every GPU and TP group is within the {TARGET_MAPE_PERCENT:.0}% MAPE target"
        );
    } else {
        println!(
            "after fitting, above the {TARGET_MAPE_PERCENT:.0}% MAPE target: {}",
            over.join(", ")
        );
    }
    let mut factors = TextTable::new([
        "gpu",
        "FLOPS frac",
        "BW frac",
        "iter overhead us",
        "per-seq us",
        "per-prompt us",
        "all-reduce step us",
        "link frac",
        "overlap k",
    ]);
    for fit in &report.fits {
        let e = &fit.after;
        factors.row([
            fit.gpu.clone(),
            format!("{:.3}", e.flops_fraction),
            format!("{:.3}", e.bandwidth_fraction),
            format!("{:.0}", e.iteration_overhead_us),
            format!("{:.0}", e.per_sequence_overhead_us),
            format!("{:.0}", e.per_prefill_overhead_us),
            format!("{:.1}", e.allreduce_step_us),
            format!("{:.3}", e.link_fraction),
            format!("{:.2}", e.overlap_exponent),
        ]);
    }
    println!("fitted factors:");
    print!("{}", factors.render());
}
