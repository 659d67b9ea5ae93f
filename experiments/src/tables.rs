//! Result tables on disk: per-request records and time series streamed to CSV and Parquet
//! (Parquet through polars, written in row groups so memory stays bounded).

use std::fs::File;
use std::io;
use std::path::Path;

use polars::prelude::*;
use sim::{CsvSink, RecordSink, RequestRecord, SampleRecord};

/// Rows buffered before a Parquet row group is written.
const ROW_GROUP: usize = 65_536;

/// Column buffers of per-request records.
#[derive(Default)]
struct RequestColumns {
    id: Vec<u64>,
    arrival_s: Vec<f64>,
    input_tokens: Vec<u32>,
    output_tokens: Vec<u32>,
    status: Vec<&'static str>,
    reject_reason: Vec<&'static str>,
    replica: Vec<i64>,
    instance: Vec<String>,
    first_scheduled_s: Vec<Option<f64>>,
    first_token_s: Vec<Option<f64>>,
    completion_s: Vec<Option<f64>>,
    generated_tokens: Vec<u32>,
    preemptions: Vec<u32>,
    ttft_s: Vec<Option<f64>>,
    tpot_s: Vec<Option<f64>>,
    norm_latency_s: Vec<Option<f64>>,
    max_itl_s: Vec<Option<f64>>,
    queue_delay_s: Vec<Option<f64>>,
    e2e_s: Vec<Option<f64>>,
    slo_met: Vec<Option<bool>>,
}

impl RequestColumns {
    fn push(&mut self, r: &RequestRecord) {
        self.id.push(r.id);
        self.arrival_s.push(r.arrival_s);
        self.input_tokens.push(r.input_tokens);
        self.output_tokens.push(r.output_tokens);
        self.status.push(r.status.name());
        self.reject_reason.push(r.reject_reason);
        self.replica.push(r.replica);
        self.instance.push(r.instance.clone());
        self.first_scheduled_s.push(r.first_scheduled_s);
        self.first_token_s.push(r.first_token_s);
        self.completion_s.push(r.completion_s);
        self.generated_tokens.push(r.generated_tokens);
        self.preemptions.push(r.preemptions);
        self.ttft_s.push(r.ttft_s);
        self.tpot_s.push(r.tpot_s);
        self.norm_latency_s.push(r.norm_latency_s);
        self.max_itl_s.push(r.max_itl_s);
        self.queue_delay_s.push(r.queue_delay_s);
        self.e2e_s.push(r.e2e_s);
        self.slo_met.push(r.slo_met);
    }

    fn len(&self) -> usize {
        self.id.len()
    }

    fn take_frame(&mut self) -> PolarsResult<DataFrame> {
        let c = std::mem::take(self);
        DataFrame::new_infer_height(vec![
            Column::new("id".into(), c.id),
            Column::new("arrival_s".into(), c.arrival_s),
            Column::new("input_tokens".into(), c.input_tokens),
            Column::new("output_tokens".into(), c.output_tokens),
            Column::new("status".into(), c.status),
            Column::new("reject_reason".into(), c.reject_reason),
            Column::new("replica".into(), c.replica),
            Column::new("instance".into(), c.instance),
            Column::new("first_scheduled_s".into(), c.first_scheduled_s),
            Column::new("first_token_s".into(), c.first_token_s),
            Column::new("completion_s".into(), c.completion_s),
            Column::new("generated_tokens".into(), c.generated_tokens),
            Column::new("preemptions".into(), c.preemptions),
            Column::new("ttft_s".into(), c.ttft_s),
            Column::new("tpot_s".into(), c.tpot_s),
            Column::new("norm_latency_s".into(), c.norm_latency_s),
            Column::new("max_itl_s".into(), c.max_itl_s),
            Column::new("queue_delay_s".into(), c.queue_delay_s),
            Column::new("e2e_s".into(), c.e2e_s),
            Column::new("slo_met".into(), c.slo_met),
        ])
    }
}

/// Column buffers of time-series samples.
#[derive(Default)]
struct SampleColumns {
    time_s: Vec<f64>,
    replica: Vec<u32>,
    instance: Vec<String>,
    waiting: Vec<u32>,
    running: Vec<u32>,
    swapped: Vec<u32>,
    kv_blocks_used: Vec<u64>,
    kv_blocks_total: Vec<u64>,
}

impl SampleColumns {
    fn push(&mut self, s: &SampleRecord) {
        self.time_s.push(s.time_s);
        self.replica.push(s.replica);
        self.instance.push(s.instance.clone());
        self.waiting.push(s.waiting);
        self.running.push(s.running);
        self.swapped.push(s.swapped);
        self.kv_blocks_used.push(s.kv_blocks_used);
        self.kv_blocks_total.push(s.kv_blocks_total);
    }

    fn len(&self) -> usize {
        self.time_s.len()
    }

    fn take_frame(&mut self) -> PolarsResult<DataFrame> {
        let c = std::mem::take(self);
        DataFrame::new_infer_height(vec![
            Column::new("time_s".into(), c.time_s),
            Column::new("replica".into(), c.replica),
            Column::new("instance".into(), c.instance),
            Column::new("waiting".into(), c.waiting),
            Column::new("running".into(), c.running),
            Column::new("swapped".into(), c.swapped),
            Column::new("kv_blocks_used".into(), c.kv_blocks_used),
            Column::new("kv_blocks_total".into(), c.kv_blocks_total),
        ])
    }
}

/// A Parquet file written one row group at a time.
struct ParquetStream {
    path: std::path::PathBuf,
    writer: Option<polars::io::parquet::write::BatchedWriter<File>>,
}

impl ParquetStream {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            writer: None,
        }
    }

    fn write(&mut self, frame: &DataFrame) -> io::Result<()> {
        if self.writer.is_none() {
            let file = File::create(&self.path)?;
            let writer = ParquetWriter::new(file)
                .batched(frame.schema())
                .map_err(io::Error::other)?;
            self.writer = Some(writer);
        }
        self.writer
            .as_mut()
            .expect("just created")
            .write_batch(frame)
            .map_err(io::Error::other)
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(writer) = self.writer.take() {
            writer.finish().map_err(io::Error::other)?;
        }
        Ok(())
    }
}

/// Streams records to `requests.csv`, `requests.parquet`, `timeseries.csv` and
/// `timeseries.parquet` in a directory.
pub struct TableSink {
    csv: CsvSink,
    requests: RequestColumns,
    samples: SampleColumns,
    requests_parquet: ParquetStream,
    samples_parquet: ParquetStream,
}

impl TableSink {
    /// Creates the four files in `dir` (which must exist).
    pub fn create(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            csv: CsvSink::create(&dir.join("requests.csv"), &dir.join("timeseries.csv"))?,
            requests: RequestColumns::default(),
            samples: SampleColumns::default(),
            requests_parquet: ParquetStream::new(&dir.join("requests.parquet")),
            samples_parquet: ParquetStream::new(&dir.join("timeseries.parquet")),
        })
    }
}

impl RecordSink for TableSink {
    fn request(&mut self, record: &RequestRecord) -> io::Result<()> {
        self.csv.request(record)?;
        self.requests.push(record);
        if self.requests.len() >= ROW_GROUP {
            let frame = self.requests.take_frame().map_err(io::Error::other)?;
            self.requests_parquet.write(&frame)?;
        }
        Ok(())
    }

    fn sample(&mut self, sample: &SampleRecord) -> io::Result<()> {
        self.csv.sample(sample)?;
        self.samples.push(sample);
        if self.samples.len() >= ROW_GROUP {
            let frame = self.samples.take_frame().map_err(io::Error::other)?;
            self.samples_parquet.write(&frame)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.csv.finish()?;
        // Always write the (possibly empty) last row group so the file exists with its schema.
        let frame = self.requests.take_frame().map_err(io::Error::other)?;
        self.requests_parquet.write(&frame)?;
        self.requests_parquet.finish()?;
        let frame = self.samples.take_frame().map_err(io::Error::other)?;
        self.samples_parquet.write(&frame)?;
        self.samples_parquet.finish()
    }
}

/// Reads a Parquet file into a frame (for tests and plots).
pub fn read_parquet(path: &Path) -> PolarsResult<DataFrame> {
    ParquetReader::new(File::open(path)?).finish()
}

/// One column of a table built from rows of any type.
fn col<R, T>(rows: &[&R], name: &str, get: impl Fn(&R) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), rows.iter().map(|r| get(r)).collect::<Vec<T>>())
}

/// Writes `<stem>.csv` and `<stem>.parquet` in `dir`.
fn write_frame(mut frame: DataFrame, dir: &Path, stem: &str) -> PolarsResult<()> {
    CsvWriter::new(File::create(dir.join(format!("{stem}.csv")))?).finish(&mut frame)?;
    ParquetWriter::new(File::create(dir.join(format!("{stem}.parquet")))?).finish(&mut frame)?;
    Ok(())
}

/// The results table of an experiment as a frame, one row per simulated fleet.
pub fn results_frame(rows: &[&crate::runner::ResultRow]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        col(rows, "experiment", |r| r.experiment.clone()),
        col(rows, "config_hash", |r| r.config_hash.clone()),
        col(rows, "medley_version", |r| r.medley_version.clone()),
        col(rows, "point", |r| r.point),
        col(rows, "seed", |r| r.seed),
        col(rows, "rate_rps", |r| r.rate_rps),
        col(rows, "tpot_target", |r| r.tpot_target.clone()),
        col(rows, "ttft_target", |r| r.ttft_target.clone()),
        col(rows, "price_book", |r| r.price_book.clone()),
        col(rows, "price_overrides", |r| r.price_overrides.clone()),
        col(rows, "gpu_set", |r| r.gpu_set.clone()),
        col(rows, "router", |r| r.router.clone()),
        col(rows, "queue", |r| r.queue.clone()),
        col(rows, "autoscaler", |r| r.autoscaler.clone()),
        col(rows, "fleet", |r| r.fleet.clone()),
        col(rows, "fleet_type", |r| r.fleet_type.clone()),
        col(rows, "allocation", |r| r.allocation.clone()),
        col(rows, "gpus", |r| r.gpus),
        col(rows, "planned_usd_per_hour", |r| r.planned_usd_per_hour),
        col(rows, "usd_per_hour", |r| r.usd_per_hour),
        col(rows, "slo_met", |r| r.slo_met),
        col(rows, "attainment", |r| r.attainment),
        col(rows, "arrived", |r| r.arrived),
        col(rows, "completed", |r| r.completed),
        col(rows, "rejected", |r| r.rejected),
        col(rows, "ttft_p50_s", |r| r.ttft_p50_s),
        col(rows, "ttft_p90_s", |r| r.ttft_p90_s),
        col(rows, "ttft_p99_s", |r| r.ttft_p99_s),
        col(rows, "tpot_p50_s", |r| r.tpot_p50_s),
        col(rows, "tpot_p90_s", |r| r.tpot_p90_s),
        col(rows, "norm_latency_mean_s", |r| r.norm_latency_mean_s),
        col(rows, "busy_fraction", |r| r.busy_fraction),
        col(rows, "verify_rounds", |r| r.verify_rounds),
        col(rows, "first_plan_attainment", |r| r.first_plan_attainment),
        col(rows, "first_plan_slo_met", |r| r.first_plan_slo_met),
        col(rows, "first_plan_usd_per_hour", |r| {
            r.first_plan_usd_per_hour
        }),
        col(rows, "first_plan_allocation", |r| {
            r.first_plan_allocation.clone()
        }),
    ])
}

/// Writes `results.csv` and `results.parquet` in `dir`.
pub fn write_results(rows: &[&crate::runner::ResultRow], dir: &Path) -> PolarsResult<()> {
    write_frame(results_frame(rows)?, dir, "results")
}

/// The per-bucket efficiency table as a frame, one row per (instance type, bucket, SLO, prices).
pub fn profiles_frame(rows: &[&crate::efficiency::ProfileRow]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        col(rows, "experiment", |r| r.experiment.clone()),
        col(rows, "config_hash", |r| r.config_hash.clone()),
        col(rows, "medley_version", |r| r.medley_version.clone()),
        col(rows, "seed", |r| r.seed),
        col(rows, "tpot_target", |r| r.tpot_target.clone()),
        col(rows, "ttft_target", |r| r.ttft_target.clone()),
        col(rows, "slo", |r| r.slo.clone()),
        col(rows, "price_book", |r| r.price_book.clone()),
        col(rows, "price_overrides", |r| r.price_overrides.clone()),
        col(rows, "instance", |r| r.instance.clone()),
        col(rows, "gpu", |r| r.gpu.clone()),
        col(rows, "tp", |r| r.tp),
        col(rows, "input_bucket", |r| r.input_bucket),
        col(rows, "output_bucket", |r| r.output_bucket),
        col(rows, "input_range", |r| r.input_range.clone()),
        col(rows, "output_range", |r| r.output_range.clone()),
        col(rows, "bucket_share", |r| r.bucket_share),
        col(rows, "mean_input_tokens", |r| r.mean_input_tokens),
        col(rows, "mean_output_tokens", |r| r.mean_output_tokens),
        col(rows, "status", |r| r.status.clone()),
        col(rows, "capacity_rps", |r| r.capacity_rps),
        col(rows, "capacity_std_error_rps", |r| r.capacity_std_error_rps),
        col(rows, "usd_per_hour", |r| r.usd_per_hour),
        col(rows, "requests_per_dollar", |r| r.requests_per_dollar),
        col(rows, "output_tokens_per_dollar", |r| {
            r.output_tokens_per_dollar
        }),
        col(rows, "total_tokens_per_dollar", |r| {
            r.total_tokens_per_dollar
        }),
    ])
}

/// Writes `profiles.csv` and `profiles.parquet` in `dir`.
pub fn write_profiles(rows: &[&crate::efficiency::ProfileRow], dir: &Path) -> PolarsResult<()> {
    write_frame(profiles_frame(rows)?, dir, "profiles")
}
