//! Where per-request records and time-series samples go as the simulation produces them, so
//! memory stays bounded by the requests in flight.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// All output tokens produced.
    Completed,
    /// Never admitted anywhere (reason in the record).
    Rejected,
    /// Still waiting or running when the simulation stopped at its horizon.
    InFlight,
}

impl RequestStatus {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RequestStatus::Completed => "completed",
            RequestStatus::Rejected => "rejected",
            RequestStatus::InFlight => "in_flight",
        }
    }
}

/// One request's fate and latencies (seconds; `None` where it does not apply).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Request id.
    pub id: u64,
    /// Arrival time.
    pub arrival_s: f64,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Output tokens asked for.
    pub output_tokens: u32,
    /// Completed, rejected or in flight.
    pub status: RequestStatus,
    /// Why it was rejected (empty otherwise).
    pub reject_reason: &'static str,
    /// Replica it was routed to (−1 if rejected).
    pub replica: i64,
    /// GPU type (instance name) of that replica.
    pub instance: String,
    /// When it first entered a batch.
    pub first_scheduled_s: Option<f64>,
    /// When its first token was produced.
    pub first_token_s: Option<f64>,
    /// When its last token was produced.
    pub completion_s: Option<f64>,
    /// Output tokens produced.
    pub generated_tokens: u32,
    /// Times it was preempted.
    pub preemptions: u32,
    /// Time to first token.
    pub ttft_s: Option<f64>,
    /// Mean time per output token after the first: (e2e − ttft) / (out − 1).
    pub tpot_s: Option<f64>,
    /// Mélange's per-request "TPOT": e2e / out.
    pub norm_latency_s: Option<f64>,
    /// Longest gap between consecutive tokens.
    pub max_itl_s: Option<f64>,
    /// Time from arrival to first entering a batch.
    pub queue_delay_s: Option<f64>,
    /// End-to-end latency.
    pub e2e_s: Option<f64>,
    /// Whether it met every SLO target set (completed requests only).
    pub slo_met: Option<bool>,
}

/// One replica's state at a sampling instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleRecord {
    /// Simulated time.
    pub time_s: f64,
    /// Replica index.
    pub replica: u32,
    /// Instance name.
    pub instance: String,
    /// Requests waiting.
    pub waiting: u32,
    /// Requests running.
    pub running: u32,
    /// Requests swapped to host memory.
    pub swapped: u32,
    /// KV blocks in use.
    pub kv_blocks_used: u64,
    /// KV blocks in total.
    pub kv_blocks_total: u64,
}

/// Receives records as they are produced.
pub trait RecordSink {
    /// One request's record (completions in completion order; rejections at arrival; requests
    /// still in flight at the end, last).
    fn request(&mut self, record: &RequestRecord) -> io::Result<()>;
    /// One time-series sample.
    fn sample(&mut self, sample: &SampleRecord) -> io::Result<()>;
    /// Flushes buffered output.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Discards everything.
#[derive(Debug, Default)]
pub struct NullSink;

impl RecordSink for NullSink {
    fn request(&mut self, _: &RequestRecord) -> io::Result<()> {
        Ok(())
    }
    fn sample(&mut self, _: &SampleRecord) -> io::Result<()> {
        Ok(())
    }
}

/// Keeps everything in memory (tests and small runs).
#[derive(Debug, Default)]
pub struct VecSink {
    /// Request records in emission order.
    pub requests: Vec<RequestRecord>,
    /// Samples in time order.
    pub samples: Vec<SampleRecord>,
}

impl RecordSink for VecSink {
    fn request(&mut self, record: &RequestRecord) -> io::Result<()> {
        self.requests.push(record.clone());
        Ok(())
    }
    fn sample(&mut self, sample: &SampleRecord) -> io::Result<()> {
        self.samples.push(sample.clone());
        Ok(())
    }
}

/// Column names of the per-request CSV.
pub const REQUEST_COLUMNS: &str = "id,arrival_s,input_tokens,output_tokens,status,reject_reason,\
replica,instance,first_scheduled_s,first_token_s,completion_s,generated_tokens,preemptions,\
ttft_s,tpot_s,norm_latency_s,max_itl_s,queue_delay_s,e2e_s,slo_met";

/// Column names of the time-series CSV.
pub const SAMPLE_COLUMNS: &str =
    "time_s,replica,instance,waiting,running,swapped,kv_blocks_used,kv_blocks_total";

/// Streams records to two CSV files.
pub struct CsvSink {
    requests: BufWriter<File>,
    samples: BufWriter<File>,
}

impl CsvSink {
    /// Creates (truncates) `requests.csv` and `timeseries.csv` paths given.
    pub fn create(requests: &Path, samples: &Path) -> io::Result<Self> {
        let mut requests = BufWriter::new(File::create(requests)?);
        let mut samples = BufWriter::new(File::create(samples)?);
        writeln!(requests, "{REQUEST_COLUMNS}")?;
        writeln!(samples, "{SAMPLE_COLUMNS}")?;
        Ok(Self { requests, samples })
    }
}

fn opt(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.9}")).unwrap_or_default()
}

impl RecordSink for CsvSink {
    fn request(&mut self, r: &RequestRecord) -> io::Result<()> {
        writeln!(
            self.requests,
            "{},{:.9},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.id,
            r.arrival_s,
            r.input_tokens,
            r.output_tokens,
            r.status.name(),
            r.reject_reason,
            r.replica,
            r.instance,
            opt(r.first_scheduled_s),
            opt(r.first_token_s),
            opt(r.completion_s),
            r.generated_tokens,
            r.preemptions,
            opt(r.ttft_s),
            opt(r.tpot_s),
            opt(r.norm_latency_s),
            opt(r.max_itl_s),
            opt(r.queue_delay_s),
            opt(r.e2e_s),
            r.slo_met.map(|m| m.to_string()).unwrap_or_default(),
        )
    }

    fn sample(&mut self, s: &SampleRecord) -> io::Result<()> {
        writeln!(
            self.samples,
            "{:.6},{},{},{},{},{},{},{}",
            s.time_s,
            s.replica,
            s.instance,
            s.waiting,
            s.running,
            s.swapped,
            s.kv_blocks_used,
            s.kv_blocks_total
        )
    }

    fn finish(&mut self) -> io::Result<()> {
        self.requests.flush()?;
        self.samples.flush()
    }
}
