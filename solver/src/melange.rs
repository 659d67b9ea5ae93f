//! Mélange's JSON formats: the solver input (`gpu_info`, `workload_distribution`,
//! `total_request_rate`, `slice_factor`), its output (`{"<gpu>": count, ..., "cost": $/h}`), and
//! `gpu_info` alone as a profile file.
//!
//! Shapes follow github.com/tyler-griggs/melange-release (`melange/config/example.json`,
//! `melange/solver.py`): `tputs` rows are input-length buckets, columns output-length buckets, the
//! same layout as `workload_distribution`. The order of `gpu_info` keys is kept (Mélange's Python
//! dicts keep insertion order). `slice_factor` defaults to 1 when absent, as in Mélange's runner;
//! `total_request_rate` is required (Mélange defaults it to 0, which would silently plan nothing).

use std::fmt;
use std::path::Path;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::PlanError;
use crate::plan::{Plan, solve};
use crate::problem::{GpuType, PlanProblem, SolveOptions, WorkloadClass};

/// Key of the total cost in Mélange's output; no GPU may carry this name.
pub const COST_KEY: &str = "cost";

/// One GPU's entry in `gpu_info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MelangeGpu {
    /// Hourly price, $/h.
    pub cost: f64,
    /// Max req/s per input-bucket row and output-bucket column.
    pub tputs: Vec<Vec<f64>>,
}

/// `gpu_info`: GPU name → entry, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuInfo(pub Vec<(String, MelangeGpu)>);

impl Serialize for GpuInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, gpu) in &self.0 {
            map.serialize_entry(name, gpu)?;
        }
        map.end()
    }
}

struct GpuInfoVisitor;

impl<'de> Visitor<'de> for GpuInfoVisitor {
    type Value = GpuInfo;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a map from GPU name to {{\"cost\": number, \"tputs\": [[number]]}}"
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<GpuInfo, A::Error> {
        let mut entries: Vec<(String, MelangeGpu)> = Vec::new();
        while let Some((name, gpu)) = access.next_entry::<String, MelangeGpu>()? {
            if entries.iter().any(|(existing, _)| *existing == name) {
                return Err(serde::de::Error::custom(format!(
                    "GPU \"{name}\" appears twice in gpu_info"
                )));
            }
            entries.push((name, gpu));
        }
        Ok(GpuInfo(entries))
    }
}

impl<'de> Deserialize<'de> for GpuInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(GpuInfoVisitor)
    }
}

fn default_slice_factor() -> u32 {
    1
}

/// Mélange's solver input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MelangeConfig {
    /// GPU name → price and throughput table.
    pub gpu_info: GpuInfo,
    /// Fraction of requests per input-bucket row and output-bucket column.
    pub workload_distribution: Vec<Vec<f64>>,
    /// Total request rate, req/s.
    pub total_request_rate: f64,
    /// Slices per bucket.
    #[serde(default = "default_slice_factor")]
    pub slice_factor: u32,
}

/// Mélange's output: count per GPU name (as numbers, like Mélange's floats) and `cost` in $/h.
#[derive(Debug, Clone, PartialEq)]
pub struct MelangeOutput {
    /// `(GPU name, instances)` in type order.
    pub counts: Vec<(String, u32)>,
    /// Total $/h.
    pub cost: f64,
}

impl Serialize for MelangeOutput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.counts.len() + 1))?;
        for (name, count) in &self.counts {
            map.serialize_entry(name, &f64::from(*count))?;
        }
        map.serialize_entry(COST_KEY, &self.cost)?;
        map.end()
    }
}

impl MelangeOutput {
    /// Mélange's output view of a plan.
    pub fn from_plan(plan: &Plan) -> Self {
        Self {
            counts: plan
                .allocations
                .iter()
                .map(|a| (a.gpu_type.clone(), a.instances))
                .collect(),
            cost: plan.hourly_cost,
        }
    }
}

/// Label of bucket (input row `row`, output column `column`).
pub fn bucket_label(row: usize, column: usize) -> String {
    format!("in{row}/out{column}")
}

/// The `(input, output)` bucket of a [`bucket_label`]; `None` for any other label.
pub fn parse_bucket_label(label: &str) -> Option<(usize, usize)> {
    let (input, output) = label.strip_prefix("in")?.split_once("/out")?;
    Some((input.parse().ok()?, output.parse().ok()?))
}

/// Checks that `table` is `rows × columns`, naming the key on failure.
fn check_grid(
    location: &str,
    table: &[Vec<f64>],
    rows: usize,
    columns: usize,
) -> Result<(), PlanError> {
    if table.len() != rows {
        return Err(PlanError::ShapeMismatch {
            location: format!("{location} (rows)"),
            expected: rows,
            found: table.len(),
        });
    }
    for (index, row) in table.iter().enumerate() {
        if row.len() != columns {
            return Err(PlanError::ShapeMismatch {
                location: format!("{location}[{index}] (columns)"),
                expected: columns,
                found: row.len(),
            });
        }
    }
    Ok(())
}

impl MelangeConfig {
    /// Parses a config from JSON text; `source` names it in errors.
    pub fn from_json(text: &str, source: &str) -> Result<Self, PlanError> {
        serde_json::from_str(text).map_err(|err| PlanError::Json {
            path: source.to_string(),
            message: err.to_string(),
        })
    }

    /// Reads a config file.
    pub fn from_path(path: &Path) -> Result<Self, PlanError> {
        let text = read_text(path)?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Grid shape `(input rows, output columns)` of the distribution, checked non-empty and rectangular.
    pub fn grid_shape(&self) -> Result<(usize, usize), PlanError> {
        let rows = self.workload_distribution.len();
        let columns = self.workload_distribution.first().map_or(0, Vec::len);
        if rows == 0 || columns == 0 {
            return Err(PlanError::InvalidInput {
                location: "workload_distribution".to_string(),
                message: "is empty; expected a non-empty 2-D matrix of fractions".to_string(),
            });
        }
        check_grid(
            "workload_distribution",
            &self.workload_distribution,
            rows,
            columns,
        )?;
        Ok((rows, columns))
    }

    /// The planning problem this config describes: one class, single-GPU types, no limits.
    pub fn to_problem(&self) -> Result<PlanProblem, PlanError> {
        let (rows, columns) = self.grid_shape()?;
        let mut gpu_types = Vec::with_capacity(self.gpu_info.0.len());
        let mut capacity = Vec::with_capacity(self.gpu_info.0.len());
        for (name, gpu) in &self.gpu_info.0 {
            if name == COST_KEY {
                return Err(PlanError::InvalidInput {
                    location: format!("gpu_info.{name}"),
                    message: format!(
                        "\"{COST_KEY}\" is reserved for the total in Mélange's output; rename the GPU"
                    ),
                });
            }
            check_grid(&format!("gpu_info.{name}.tputs"), &gpu.tputs, rows, columns)?;
            gpu_types.push(GpuType::new(name.clone(), gpu.cost));
            capacity.push(gpu.tputs.iter().flatten().copied().collect());
        }
        let bucket_labels = (0..rows)
            .flat_map(|row| (0..columns).map(move |column| bucket_label(row, column)))
            .collect();
        let problem = PlanProblem {
            gpu_types,
            classes: vec![WorkloadClass {
                name: "default".to_string(),
                request_rate: self.total_request_rate,
                bucket_labels,
                bucket_fractions: self
                    .workload_distribution
                    .iter()
                    .flatten()
                    .copied()
                    .collect(),
                capacity,
            }],
            slice_factor: self.slice_factor,
            headroom: 0.0,
        };
        problem.validate()?;
        Ok(problem)
    }

    /// A config for a one-class problem of plain types; `columns` is the output-bucket count of its grid.
    ///
    /// Refuses what Mélange's format cannot hold (caps, minimums, multi-GPU types, several classes)
    /// rather than dropping it; headroom is folded into the rate.
    pub fn from_problem(problem: &PlanProblem, columns: usize) -> Result<Self, PlanError> {
        problem.validate()?;
        let [class] = problem.classes.as_slice() else {
            return Err(PlanError::InvalidInput {
                location: "classes".to_string(),
                message: format!(
                    "Mélange's format holds one class, the problem has {}",
                    problem.classes.len()
                ),
            });
        };
        for gpu in &problem.gpu_types {
            if gpu.max_instances.is_some() || gpu.min_instances > 0 || gpu.gpus_per_instance != 1 {
                return Err(PlanError::InvalidInput {
                    location: format!("GPU type \"{}\"", gpu.name),
                    message:
                        "caps, minimums and multi-GPU instances have no place in Mélange's format"
                            .to_string(),
                });
            }
        }
        let gpu_info = gpu_info_from_tables(problem, 0, columns)?;
        Ok(Self {
            gpu_info,
            workload_distribution: to_grid(&class.bucket_fractions, columns, "bucket_fractions")?,
            total_request_rate: class.request_rate * (1.0 + problem.headroom),
            slice_factor: problem.slice_factor,
        })
    }
}

fn to_grid(values: &[f64], columns: usize, location: &str) -> Result<Vec<Vec<f64>>, PlanError> {
    if columns == 0 || values.is_empty() || !values.len().is_multiple_of(columns) {
        return Err(PlanError::InvalidInput {
            location: location.to_string(),
            message: format!(
                "{} buckets do not form rows of {columns} output buckets",
                values.len()
            ),
        });
    }
    Ok(values.chunks(columns).map(<[f64]>::to_vec).collect())
}

/// `gpu_info` (profiles) from class `class_index`'s capacity tables, reshaped to rows of `columns`.
pub fn gpu_info_from_tables(
    problem: &PlanProblem,
    class_index: usize,
    columns: usize,
) -> Result<GpuInfo, PlanError> {
    let class = problem
        .classes
        .get(class_index)
        .ok_or_else(|| PlanError::InvalidInput {
            location: "classes".to_string(),
            message: format!("no class with index {class_index}"),
        })?;
    let mut entries = Vec::with_capacity(problem.gpu_types.len());
    for (gpu, table) in problem.gpu_types.iter().zip(&class.capacity) {
        entries.push((
            gpu.name.clone(),
            MelangeGpu {
                cost: gpu.hourly_cost,
                tputs: to_grid(table, columns, &format!("capacity of \"{}\"", gpu.name))?,
            },
        ));
    }
    Ok(GpuInfo(entries))
}

fn read_text(path: &Path) -> Result<String, PlanError> {
    std::fs::read_to_string(path).map_err(|err| PlanError::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    })
}

fn write_text(path: &Path, text: &str) -> Result<(), PlanError> {
    std::fs::write(path, text).map_err(|err| PlanError::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    })
}

/// Reads a profile file: a `gpu_info` object alone.
pub fn read_gpu_info(path: &Path) -> Result<GpuInfo, PlanError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|err| PlanError::Json {
        path: path.display().to_string(),
        message: err.to_string(),
    })
}

/// Writes a profile file: a `gpu_info` object alone, pretty-printed.
pub fn write_gpu_info(path: &Path, gpu_info: &GpuInfo) -> Result<(), PlanError> {
    let text = serde_json::to_string_pretty(gpu_info).map_err(|err| PlanError::Json {
        path: path.display().to_string(),
        message: err.to_string(),
    })?;
    write_text(path, &(text + "\n"))
}

/// Changes to a Mélange config before solving (what `medley plan` flags can set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MelangeOverrides {
    /// Replaces the file's slice factor.
    pub slice_factor: Option<u32>,
    /// Replaces the file's total request rate.
    pub total_request_rate: Option<f64>,
    /// Extra rate fraction to provision for.
    pub headroom: f64,
    /// `(GPU name, most instances)`.
    pub caps: Vec<(String, u32)>,
    /// `(GPU name, least instances)`.
    pub minimums: Vec<(String, u32)>,
}

fn find_type<'a>(
    problem: &'a mut PlanProblem,
    name: &str,
    flag: &str,
) -> Result<&'a mut GpuType, PlanError> {
    let known: Vec<String> = problem
        .gpu_types
        .iter()
        .map(|gpu| gpu.name.clone())
        .collect();
    problem
        .gpu_types
        .iter_mut()
        .find(|gpu| gpu.name == name)
        .ok_or_else(|| PlanError::InvalidInput {
            location: format!("{flag} {name}"),
            message: format!(
                "no GPU type of that name; expected one of {}",
                known.join(", ")
            ),
        })
}

impl MelangeOverrides {
    /// Applies the overrides to a problem built from a Mélange config.
    pub fn apply(&self, problem: &mut PlanProblem) -> Result<(), PlanError> {
        if let Some(slice_factor) = self.slice_factor {
            problem.slice_factor = slice_factor;
        }
        if let Some(rate) = self.total_request_rate {
            for class in &mut problem.classes {
                class.request_rate = rate;
            }
        }
        problem.headroom = self.headroom;
        for (name, cap) in &self.caps {
            find_type(problem, name, "cap")?.max_instances = Some(*cap);
        }
        for (name, minimum) in &self.minimums {
            find_type(problem, name, "min")?.min_instances = *minimum;
        }
        problem.validate()
    }
}

/// Reads a Mélange config file, applies overrides and solves it: what `medley plan --melange-json` runs.
pub fn plan_melange_file(
    path: &Path,
    overrides: &MelangeOverrides,
    options: &SolveOptions,
) -> Result<Plan, PlanError> {
    let config = MelangeConfig::from_path(path)?;
    let mut problem = config.to_problem()?;
    overrides.apply(&mut problem)?;
    solve(&problem, options)
}
