//! Trace readers: normalized CSV/Parquet, Azure LLM inference 2023/2024, BurstGPT, Mooncake JSONL.
//!
//! Text formats stream line by line through a buffered reader with hand-parsed fields, so a
//! trace of any length replays in memory independent of its row count. Parquet is read through
//! polars and is **materialized** (its three columns are held in memory while iterating).
//!
//! Every reader rebases arrivals so the first row arrives at 0 s; arrivals are seconds, lengths
//! are tokens. Arrivals that decrease are an error unless [`ReadOptions::allow_unsorted`] is set
//! (then [`load`] sorts). Malformed rows are an error naming file, line and column unless
//! [`ReadOptions::skip_bad_rows`] is set, in which case they are skipped and counted.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::error::TraceError;
use crate::request::Request;

/// A trace file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFormat {
    /// CSV with `arrival_s,input_tokens,output_tokens` (extra columns ignored; optional
    /// `session_id` and `slo_class` are read when present).
    Normalized,
    /// Parquet with the normalized columns, optional `session_id` and `slo_class` included (read
    /// through polars, materialized).
    Parquet,
    /// Azure LLM inference trace 2023/2024: `TIMESTAMP,ContextTokens,GeneratedTokens`.
    Azure,
    /// BurstGPT: `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`
    /// (optionally `Session ID`, `Elapsed time`).
    BurstGpt,
    /// Mooncake JSONL: `timestamp` (ms), `input_length`, `output_length`, `hash_ids`.
    Mooncake,
}

impl TraceFormat {
    /// All formats, for help text.
    pub const ALL: [TraceFormat; 5] = [
        TraceFormat::Normalized,
        TraceFormat::Parquet,
        TraceFormat::Azure,
        TraceFormat::BurstGpt,
        TraceFormat::Mooncake,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Normalized => "normalized",
            TraceFormat::Parquet => "parquet",
            TraceFormat::Azure => "azure",
            TraceFormat::BurstGpt => "burstgpt",
            TraceFormat::Mooncake => "mooncake",
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TraceFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "normalized" | "csv" => Ok(TraceFormat::Normalized),
            "parquet" => Ok(TraceFormat::Parquet),
            "azure" | "azure2023" | "azure2024" => Ok(TraceFormat::Azure),
            "burstgpt" => Ok(TraceFormat::BurstGpt),
            "mooncake" | "jsonl" => Ok(TraceFormat::Mooncake),
            other => Err(format!(
                "unknown trace format `{other}`: expected one of normalized, parquet, azure, burstgpt, mooncake"
            )),
        }
    }
}

/// Spreads requests that share one coarse timestamp across a window (Mooncake's ~3 s buckets).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Width of the window in seconds; a bucket is spread over `[t, t + min(window, gap to the
    /// next distinct timestamp))`, so spreading never reorders buckets.
    pub window_s: f64,
    /// Seed of the `Pcg64` that draws the offsets (uniform, then sorted).
    pub seed: u64,
}

/// How to read a trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadOptions {
    /// Force a format instead of detecting it from the extension and header.
    pub format: Option<TraceFormat>,
    /// Skip malformed rows (counted in the report) instead of stopping with an error.
    pub skip_bad_rows: bool,
    /// Accept decreasing arrivals; [`load`] then sorts (streams yield file order).
    pub allow_unsorted: bool,
    /// Keep failed requests (BurstGPT rows with zero response tokens) in the replay.
    pub include_failed: bool,
    /// Spread each run of equal timestamps across a window.
    pub spread: Option<Spread>,
}

/// Running tallies of a read, available from [`TraceReader::counts`] at any time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadCounts {
    /// Data rows read (not counting the header or blank lines).
    pub rows_read: u64,
    /// Malformed rows skipped (only with `skip_bad_rows`).
    pub rows_skipped_bad: u64,
    /// Failed requests (zero output tokens in BurstGPT) kept out of the replay.
    pub failed_excluded: u64,
    /// Failed requests kept in the replay (with `include_failed`).
    pub failed_included: u64,
    /// Requests yielded.
    pub requests: u64,
    /// The raw timestamp of the first row, which became 0 s.
    pub origin: Option<String>,
}

/// One parsed row before rebasing.
struct RawRow {
    line: u64,
    arrival_s: f64,
    input_tokens: u32,
    output_tokens: u32,
    session_id: Option<u64>,
    slo_class: u16,
    prefix_hashes: Vec<u64>,
    failed: bool,
    /// The timestamp as written, kept only for the first row (it becomes 0 s).
    raw_time: Option<String>,
}

/// Which column holds what, for the CSV formats.
#[derive(Debug, Clone)]
struct CsvLayout {
    format: TraceFormat,
    names: Vec<String>,
    time: usize,
    input: usize,
    output: usize,
    session: Option<usize>,
    slo_class: Option<usize>,
}

impl CsvLayout {
    fn needed(&self) -> usize {
        [
            Some(self.time),
            Some(self.input),
            Some(self.output),
            self.session,
            self.slo_class,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
            + 1
    }
}

enum Source {
    Lines(Box<dyn BufRead>),
    Columns {
        arrival: Vec<Option<f64>>,
        input: Vec<Option<f64>>,
        output: Vec<Option<f64>>,
        /// `session_id` (a number, or any label hashed as in CSV), if the file has it.
        session: Option<Vec<Option<u64>>>,
        /// `slo_class`, if the file has it.
        class: Option<Vec<Option<f64>>>,
        next: usize,
    },
}

/// Streams the requests of one trace file; see the module docs for the rules.
pub struct TraceReader {
    path: PathBuf,
    format: TraceFormat,
    options: ReadOptions,
    source: Source,
    /// Column layout for the CSV formats (None for JSONL and Parquet).
    layout: Option<CsvLayout>,
    /// The current line, reused across rows so reading allocates nothing per row.
    buf: Vec<u8>,
    /// Byte ranges of the current row's fields, reused across rows.
    field_ranges: Vec<(usize, usize)>,
    line: u64,
    /// Azure: day number (since 1970-01-01) of the first row, the origin of raw arrivals.
    day_origin: Option<i64>,
    first_raw: Option<f64>,
    previous_s: f64,
    next_id: u64,
    counts: ReadCounts,
    done: bool,
    spread_rng: Option<Pcg64>,
    /// Spread mode: the rebased requests ready to yield, in order, then any error that ended the bucket.
    ready: std::collections::VecDeque<Result<Request, TraceError>>,
    /// Spread mode: the first row of the next bucket.
    carry: Option<Request>,
}

/// Detects the format of a trace from its extension and first line.
pub fn detect_format(path: &Path) -> Result<TraceFormat, TraceError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "parquet" || ext == "pq" {
        return Ok(TraceFormat::Parquet);
    }
    if ext == "jsonl" || ext == "ndjson" {
        return Ok(TraceFormat::Mooncake);
    }
    let file = File::open(path).map_err(|source| TraceError::Io {
        path: path.into(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 4];
    let mut first = Vec::new();
    let got = reader.read(&mut magic).map_err(|source| TraceError::Io {
        path: path.into(),
        source,
    })?;
    if got == 4 && &magic == b"PAR1" {
        return Ok(TraceFormat::Parquet);
    }
    first.extend_from_slice(&magic[..got]);
    // The first line that is not blank (the readers skip blank lines too), without a BOM.
    // Each read ends at a newline (or the end), so the lines gathered are whole.
    let header = loop {
        let read = reader
            .read_until(b'\n', &mut first)
            .map_err(|source| TraceError::Io {
                path: path.into(),
                source,
            })?;
        let text = String::from_utf8_lossy(&first);
        let header = text
            .trim_start_matches('\u{feff}')
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty());
        if let Some(header) = header {
            break header.to_string();
        }
        if read == 0 {
            return Err(TraceError::Empty { path: path.into() });
        }
    };
    if header.starts_with('{') {
        return Ok(TraceFormat::Mooncake);
    }
    csv_format_of(path, &header)
}

fn csv_format_of(path: &Path, header: &str) -> Result<TraceFormat, TraceError> {
    let names = split_header(header);
    let has = |n: &str| names.iter().any(|c| c == n);
    if has("timestamp") && has("contexttokens") && has("generatedtokens") {
        return Ok(TraceFormat::Azure);
    }
    if has("request tokens") && has("response tokens") {
        return Ok(TraceFormat::BurstGpt);
    }
    if has("arrival_s") && has("input_tokens") && has("output_tokens") {
        return Ok(TraceFormat::Normalized);
    }
    Err(TraceError::UnknownFormat {
        path: path.into(),
        found: header.to_string(),
        hint: format_hint(header),
    })
}

fn format_hint(header: &str) -> String {
    let delimiter = [';', '\t', '|']
        .into_iter()
        .find(|d| header.contains(*d) && !header.contains(','));
    let expected = "expected a comma-separated header: normalized `arrival_s,input_tokens,output_tokens`, \
                    Azure `TIMESTAMP,ContextTokens,GeneratedTokens`, BurstGPT `Timestamp,Model,Request tokens,\
                    Response tokens,Total tokens,Log Type`, or Mooncake JSON lines (or force one with --format)";
    match delimiter {
        Some(d) => format!("it looks delimited by {:?}, not commas; {expected}", d),
        None => expected.to_string(),
    }
}

/// Lower-cased, trimmed, unquoted header names.
fn split_header(header: &str) -> Vec<String> {
    header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(|c| c.trim().trim_matches('"').trim().to_ascii_lowercase())
        .collect()
}

fn layout_for(path: &Path, format: TraceFormat, header: &str) -> Result<CsvLayout, TraceError> {
    let names = split_header(header);
    let find = |n: &str| names.iter().position(|c| c == n);
    let need = |n: &str, shown: &str| {
        find(n).ok_or_else(|| TraceError::MissingColumn {
            path: path.into(),
            column: shown.to_string(),
            header: header.to_string(),
        })
    };
    let (time, input, output, session, slo_class) = match format {
        TraceFormat::Normalized => (
            need("arrival_s", "arrival_s")?,
            need("input_tokens", "input_tokens")?,
            need("output_tokens", "output_tokens")?,
            find("session_id"),
            find("slo_class"),
        ),
        TraceFormat::Azure => (
            need("timestamp", "TIMESTAMP")?,
            need("contexttokens", "ContextTokens")?,
            need("generatedtokens", "GeneratedTokens")?,
            None,
            None,
        ),
        TraceFormat::BurstGpt => (
            need("timestamp", "Timestamp")?,
            need("request tokens", "Request tokens")?,
            need("response tokens", "Response tokens")?,
            find("session id"),
            None,
        ),
        TraceFormat::Parquet | TraceFormat::Mooncake => unreachable!("not a CSV layout"),
    };
    Ok(CsvLayout {
        format,
        names,
        time,
        input,
        output,
        session,
        slo_class,
    })
}

impl TraceReader {
    /// Opens a trace, detecting its format unless `options.format` forces one.
    pub fn open(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Self, TraceError> {
        let path = path.as_ref().to_path_buf();
        if let Some(spread) = options.spread
            && !(spread.window_s.is_finite() && spread.window_s > 0.0)
        {
            // A negative or NaN window would quietly turn spreading off; an infinite one would
            // send arrivals to infinity.
            return Err(TraceError::BadOption {
                path,
                option: "spread window",
                found: format!("{} s", spread.window_s),
                expected: "a finite number of seconds > 0",
            });
        }
        let format = match options.format {
            Some(format) => format,
            None => detect_format(&path)?,
        };
        let io_err = |source| TraceError::Io {
            path: path.clone(),
            source,
        };
        let (source, layout, line) = match format {
            TraceFormat::Parquet => (read_parquet_columns(&path)?, None, 0),
            TraceFormat::Mooncake => {
                let file = File::open(&path).map_err(io_err)?;
                (
                    Source::Lines(Box::new(BufReader::with_capacity(1 << 16, file))),
                    None,
                    0,
                )
            }
            TraceFormat::Normalized | TraceFormat::Azure | TraceFormat::BurstGpt => {
                let file = File::open(&path).map_err(io_err)?;
                let mut reader = BufReader::with_capacity(1 << 16, file);
                let mut header = Vec::new();
                let mut line = 0;
                // The header is the first non-blank line.
                loop {
                    header.clear();
                    let got = reader.read_until(b'\n', &mut header).map_err(io_err)?;
                    if got == 0 {
                        return Err(TraceError::Empty { path });
                    }
                    line += 1;
                    if !header.iter().all(|b| b.is_ascii_whitespace()) {
                        break;
                    }
                }
                let header = String::from_utf8_lossy(&header).trim().to_string();
                let layout = layout_for(&path, format, &header).map_err(|err| match err {
                    // A header with no comma at all is more likely a wrong delimiter.
                    TraceError::MissingColumn { .. } if !header.contains(',') => {
                        TraceError::UnknownFormat {
                            path: path.clone(),
                            found: header.clone(),
                            hint: format_hint(&header),
                        }
                    }
                    other => other,
                })?;
                (Source::Lines(Box::new(reader)), Some(layout), line)
            }
        };
        if format == TraceFormat::Mooncake {
            // An empty JSONL file is reported as empty rather than as a zero-request trace.
            let meta = std::fs::metadata(&path).map_err(|source| TraceError::Io {
                path: path.clone(),
                source,
            })?;
            if meta.len() == 0 {
                return Err(TraceError::Empty { path });
            }
        }
        Ok(Self {
            spread_rng: options.spread.map(|s| Pcg64::seed_from_u64(s.seed)),
            path,
            format,
            options: options.clone(),
            source,
            layout,
            buf: Vec::new(),
            field_ranges: Vec::new(),
            line,
            day_origin: None,
            first_raw: None,
            previous_s: f64::NEG_INFINITY,
            next_id: 0,
            counts: ReadCounts::default(),
            done: false,
            ready: Default::default(),
            carry: None,
        })
    }

    /// The format being read.
    pub fn format(&self) -> TraceFormat {
        self.format
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tallies so far (rows read, skipped, failed).
    pub fn counts(&self) -> &ReadCounts {
        &self.counts
    }

    fn bad(
        &self,
        line: u64,
        column: usize,
        column_name: &str,
        found: &str,
        expected: &str,
    ) -> TraceError {
        TraceError::BadField {
            path: self.path.clone(),
            line,
            column: column as u64 + 1,
            column_name: column_name.to_string(),
            found: found.to_string(),
            expected: expected.to_string(),
        }
    }

    /// Reads the next raw row: Ok(None) at end of input.
    fn next_raw(&mut self) -> Result<Option<RawRow>, TraceError> {
        loop {
            match &mut self.source {
                Source::Columns {
                    arrival,
                    input,
                    output,
                    session,
                    class,
                    next,
                } => {
                    if *next >= arrival.len() {
                        return Ok(None);
                    }
                    let row = *next;
                    *next += 1;
                    self.line = row as u64 + 1;
                    self.counts.rows_read += 1;
                    let values = ParquetValues {
                        arrival: arrival[row],
                        input: input[row],
                        output: output[row],
                        session: session.as_ref().and_then(|column| column[row]),
                        class: class.as_ref().and_then(|column| column[row]),
                    };
                    return self.parquet_row(values).map(Some);
                }
                Source::Lines(reader) => {
                    self.buf.clear();
                    let got = reader.read_until(b'\n', &mut self.buf).map_err(|source| {
                        TraceError::Io {
                            path: self.path.clone(),
                            source,
                        }
                    })?;
                    if got == 0 {
                        return Ok(None);
                    }
                    self.line += 1;
                    if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                        continue; // blank lines are not rows
                    }
                }
            }
            self.counts.rows_read += 1;
            // Moved out and back so the row parsers can borrow `self` mutably; no allocation.
            let line_bytes = std::mem::take(&mut self.buf);
            let layout = self.layout.take();
            let result = match &layout {
                Some(layout) => self.csv_row(&line_bytes, layout),
                None => self.jsonl_row(&line_bytes),
            };
            self.buf = line_bytes;
            self.layout = layout;
            return result.map(Some);
        }
    }

    fn parquet_row(&self, values: ParquetValues) -> Result<RawRow, TraceError> {
        let line = self.line;
        let arrival_s = match values.arrival {
            Some(v) if v.is_finite() => v,
            Some(v) => {
                return Err(self.bad(
                    line,
                    0,
                    "arrival_s",
                    &v.to_string(),
                    "a finite number of seconds",
                ));
            }
            None => {
                return Err(self.bad(line, 0, "arrival_s", "null", "a finite number of seconds"));
            }
        };
        let tokens = |v: Option<f64>, col: usize, name: &str| -> Result<u32, TraceError> {
            match v {
                Some(v)
                    if v.is_finite()
                        && v >= 0.0
                        && v.fract() == 0.0
                        && v <= f64::from(u32::MAX) =>
                {
                    Ok(v as u32)
                }
                Some(v) => Err(self.bad(line, col, name, &v.to_string(), TOKENS_EXPECTED)),
                None => Err(self.bad(line, col, name, "null", TOKENS_EXPECTED)),
            }
        };
        let slo_class = match values.class {
            Some(v)
                if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u16::MAX) =>
            {
                v as u16
            }
            Some(v) => {
                return Err(self.bad(
                    line,
                    4,
                    "slo_class",
                    &v.to_string(),
                    "an integer class 0..=65535",
                ));
            }
            None => 0,
        };
        Ok(RawRow {
            line,
            arrival_s,
            input_tokens: tokens(values.input, 1, "input_tokens")?,
            output_tokens: tokens(values.output, 2, "output_tokens")?,
            session_id: values.session,
            slo_class,
            prefix_hashes: Vec::new(),
            failed: false,
            raw_time: self.first_raw.is_none().then(|| format!("{arrival_s} s")),
        })
    }

    fn csv_row(&mut self, bytes: &[u8], layout: &CsvLayout) -> Result<RawRow, TraceError> {
        let mut end = bytes.len();
        while end > 0 && (bytes[end - 1] == b'\n' || bytes[end - 1] == b'\r') {
            end -= 1;
        }
        let bytes = &bytes[..end];
        // Locate the first `needed` fields; extra columns are ignored.
        let needed = layout.needed();
        let mut ranges = std::mem::take(&mut self.field_ranges);
        ranges.clear();
        let mut count = 0;
        let mut start = 0;
        for (index, byte) in bytes.iter().enumerate() {
            if *byte == b',' {
                if count < needed {
                    ranges.push((start, index));
                }
                count += 1;
                start = index + 1;
            }
        }
        if count < needed {
            ranges.push((start, bytes.len()));
        }
        count += 1;
        let result = if count < needed {
            let missing = count.min(needed - 1);
            let name = layout.names.get(missing).cloned().unwrap_or_default();
            let found = String::from_utf8_lossy(bytes).to_string();
            Err(self.bad(
                self.line,
                missing,
                &name,
                &found,
                &format!(
                    "{} comma-separated fields (found {count})",
                    layout.names.len().max(needed)
                ),
            ))
        } else {
            self.csv_fields(bytes, layout, &ranges)
        };
        self.field_ranges = ranges;
        result
    }

    fn csv_fields(
        &mut self,
        bytes: &[u8],
        layout: &CsvLayout,
        ranges: &[(usize, usize)],
    ) -> Result<RawRow, TraceError> {
        let line = self.line;
        let field = |col: usize| trim_field(&bytes[ranges[col].0..ranges[col].1]);
        let text = |col: usize| String::from_utf8_lossy(field(col)).to_string();
        let bad = |col: usize, expected: &str| {
            self.bad(line, col, &layout.names[col], &text(col), expected)
        };
        let input_tokens =
            parse_tokens(field(layout.input)).ok_or_else(|| bad(layout.input, TOKENS_EXPECTED))?;
        let output_tokens = parse_tokens(field(layout.output))
            .ok_or_else(|| bad(layout.output, TOKENS_EXPECTED))?;
        let session_id = match layout.session {
            Some(col) if !field(col).is_empty() => Some(session_of(field(col))),
            _ => None,
        };
        let slo_class = match layout.slo_class {
            Some(col) if !field(col).is_empty() => std::str::from_utf8(field(col))
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| bad(col, "an integer class 0..=65535"))?,
            _ => 0,
        };
        let time_field = field(layout.time);
        let arrival_s = match layout.format {
            TraceFormat::Azure => {
                let (day, seconds) = parse_datetime(time_field).ok_or_else(|| {
                    bad(
                        layout.time,
                        "a date-time like `2023-11-16 18:17:03.9799600` or `2024-05-10 00:00:00.009930+00:00`",
                    )
                })?;
                let origin = *self.day_origin.get_or_insert(day);
                (day - origin) as f64 * 86_400.0 + seconds
            }
            _ => parse_seconds(time_field)
                .ok_or_else(|| bad(layout.time, "a finite number of seconds"))?,
        };
        Ok(RawRow {
            line,
            arrival_s,
            input_tokens,
            output_tokens,
            session_id,
            slo_class,
            prefix_hashes: Vec::new(),
            failed: layout.format == TraceFormat::BurstGpt && output_tokens == 0,
            raw_time: self.first_raw.is_none().then(|| text(layout.time)),
        })
    }

    fn jsonl_row(&mut self, bytes: &[u8]) -> Result<RawRow, TraceError> {
        #[derive(Deserialize)]
        struct MooncakeRow {
            timestamp: f64,
            input_length: u64,
            output_length: u64,
            #[serde(default)]
            hash_ids: Vec<u64>,
        }
        let line = self.line;
        // A byte-order mark before the first object, as the CSV readers allow.
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        let row: MooncakeRow =
            serde_json::from_slice(bytes).map_err(|err| TraceError::BadField {
                path: self.path.clone(),
                line,
                column: err.column() as u64,
                column_name: String::new(),
                found: String::from_utf8_lossy(bytes).trim().to_string(),
                expected: format!(
                    "a JSON object with timestamp (ms), input_length, output_length ({err})"
                ),
            })?;
        let tokens = |v: u64, name: &str| {
            u32::try_from(v).map_err(|_| TraceError::BadField {
                path: self.path.clone(),
                line,
                column: 0,
                column_name: name.to_string(),
                found: v.to_string(),
                expected: TOKENS_EXPECTED.to_string(),
            })
        };
        if !row.timestamp.is_finite() {
            return Err(self.bad(
                line,
                0,
                "timestamp",
                &row.timestamp.to_string(),
                "a finite number of milliseconds",
            ));
        }
        Ok(RawRow {
            line,
            arrival_s: row.timestamp / 1000.0,
            input_tokens: tokens(row.input_length, "input_length")?,
            output_tokens: tokens(row.output_length, "output_length")?,
            session_id: None,
            slo_class: 0,
            prefix_hashes: row.hash_ids,
            failed: false,
            raw_time: self
                .first_raw
                .is_none()
                .then(|| format!("{} ms", row.timestamp)),
        })
    }

    /// Reads, validates and rebases the next request in file order (before spreading).
    fn next_plain(&mut self) -> Option<Result<Request, TraceError>> {
        loop {
            if self.done {
                return None;
            }
            let raw = match self.next_raw() {
                Ok(Some(raw)) => raw,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(err) if err.is_row_error() && self.options.skip_bad_rows => {
                    self.counts.rows_skipped_bad += 1;
                    continue;
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            };
            if raw.failed {
                if self.options.include_failed {
                    self.counts.failed_included += 1;
                } else {
                    self.counts.failed_excluded += 1;
                    continue;
                }
            }
            let first = *self.first_raw.get_or_insert_with(|| {
                self.counts.origin = raw.raw_time.clone();
                raw.arrival_s
            });
            let arrival_s = raw.arrival_s - first;
            if !(-crate::request::MAX_ARRIVAL_S..=crate::request::MAX_ARRIVAL_S)
                .contains(&arrival_s)
            {
                self.done = true;
                return Some(Err(TraceError::BadField {
                    path: self.path.clone(),
                    line: raw.line,
                    column: 0,
                    column_name: "arrival".to_string(),
                    found: format!("{arrival_s} s after the first row"),
                    expected: format!(
                        "arrivals within {:e} s of the first row (about 31 years; check the \
                         time unit)",
                        crate::request::MAX_ARRIVAL_S
                    ),
                }));
            }
            if arrival_s < self.previous_s && !self.options.allow_unsorted {
                self.done = true;
                return Some(Err(TraceError::Unsorted {
                    path: self.path.clone(),
                    line: raw.line,
                    found_s: arrival_s,
                    previous_s: self.previous_s,
                }));
            }
            self.previous_s = self.previous_s.max(arrival_s);
            let request = Request {
                id: 0,
                arrival_s,
                input_tokens: raw.input_tokens,
                output_tokens: raw.output_tokens,
                session_id: raw.session_id,
                slo_class: raw.slo_class,
                prefix_hashes: raw.prefix_hashes,
            };
            return Some(Ok(request));
        }
    }

    /// Spread mode: fills `ready` with the next bucket of equal timestamps, spread out.
    fn fill_bucket(&mut self, window_s: f64) {
        let mut bucket: Vec<Request> = Vec::new();
        if let Some(first) = self.carry.take() {
            bucket.push(first);
        }
        let mut ending_error = None;
        loop {
            match self.next_plain() {
                Some(Ok(request)) => {
                    if bucket.is_empty() || request.arrival_s == bucket[0].arrival_s {
                        bucket.push(request);
                    } else {
                        self.carry = Some(request);
                        break;
                    }
                }
                Some(Err(err)) => {
                    ending_error = Some(err);
                    break;
                }
                None => break,
            }
        }
        if let Some(start) = bucket.first().map(|r| r.arrival_s) {
            let width = match &self.carry {
                Some(next) if next.arrival_s > start => window_s.min(next.arrival_s - start),
                _ => window_s,
            };
            let rng = self.spread_rng.as_mut().expect("spread mode has an rng");
            let mut offsets: Vec<f64> = (0..bucket.len())
                .map(|_| rng.random::<f64>() * width)
                .collect();
            offsets.sort_by(f64::total_cmp);
            for (request, offset) in bucket.iter_mut().zip(offsets) {
                request.arrival_s = start + offset;
            }
            self.ready.extend(bucket.into_iter().map(Ok));
        }
        if let Some(err) = ending_error {
            self.ready.push_back(Err(err));
        }
    }
}

const TOKENS_EXPECTED: &str = "a non-negative integer token count no larger than 4294967295";

impl Iterator for TraceReader {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.options.spread {
            Some(spread) if spread.window_s > 0.0 => {
                if self.ready.is_empty() {
                    self.fill_bucket(spread.window_s);
                }
                self.ready.pop_front()?
            }
            _ => self.next_plain()?,
        };
        Some(item.map(|mut request| {
            request.id = self.next_id;
            self.next_id += 1;
            self.counts.requests += 1;
            request
        }))
    }
}

fn trim_field(field: &[u8]) -> &[u8] {
    let mut start = 0;
    let mut end = field.len();
    while start < end && field[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && field[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    if end - start >= 2 && field[start] == b'"' && field[end - 1] == b'"' {
        start += 1;
        end -= 1;
    }
    &field[start..end]
}

/// Parses a token count: digits, or an integral decimal like `12.0`; rejects signs, overflow.
fn parse_tokens(field: &[u8]) -> Option<u32> {
    if field.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for (index, &byte) in field.iter().enumerate() {
        match byte {
            b'0'..=b'9' => {
                value = value * 10 + u64::from(byte - b'0');
                if value > u64::from(u32::MAX) {
                    return None;
                }
            }
            b'.' => {
                // Integral decimals (`12.0`, written by some tools) are accepted; fractions are not.
                return (index > 0 && field[index + 1..].iter().all(|b| *b == b'0'))
                    .then_some(value as u32);
            }
            _ => return None,
        }
    }
    Some(value as u32)
}

fn parse_seconds(field: &[u8]) -> Option<f64> {
    let value: f64 = std::str::from_utf8(field).ok()?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// FNV-1a of a session text that is not a plain integer: stable across runs and platforms.
fn session_of(field: &[u8]) -> u64 {
    if let Some(id) = std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return id;
    }
    field.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|±HH:MM]` into (UTC day number, seconds of day).
/// Seconds of day may fall outside 0..86400 after the offset is applied; callers add them up.
pub(crate) fn parse_datetime(field: &[u8]) -> Option<(i64, f64)> {
    fn digits(bytes: &[u8]) -> Option<u32> {
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        bytes.iter().try_fold(0u32, |acc, b| {
            acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
        })
    }
    if field.len() < 19 || field[4] != b'-' || field[7] != b'-' || !matches!(field[10], b' ' | b'T')
    {
        return None;
    }
    if field[13] != b':' || field[16] != b':' {
        return None;
    }
    let year = digits(&field[0..4])?;
    let month = digits(&field[5..7])?;
    let day = digits(&field[8..10])?;
    let hour = digits(&field[11..13])?;
    let minute = digits(&field[14..16])?;
    let second = digits(&field[17..19])?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    // A day the month does not have (02-31) would otherwise roll into the next month.
    if !(1..=12).contains(&month)
        || !(1..=days_in_month).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &field[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let len = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 12 {
            return None;
        }
        fraction = f64::from(digits(&after_dot[..len.min(9)])?) / 10f64.powi(len.min(9) as i32);
        rest = &after_dot[len..];
    }
    let offset_s = match rest {
        [] | [b'Z'] => 0i64,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = i64::from(digits(&[*h1, *h2])?);
            let minutes = i64::from(digits(&[*m1, *m2])?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = hours * 3600 + minutes * 60;
            if *sign == b'+' { magnitude } else { -magnitude }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = f64::from(hour * 3600 + minute * 60 + second) + fraction - offset_s as f64;
    Some((days, seconds))
}

fn read_parquet_columns(path: &Path) -> Result<Source, TraceError> {
    use polars::prelude::*;
    let polars_err = |err: PolarsError| TraceError::Polars {
        path: path.into(),
        message: err.to_string(),
    };
    let file = File::open(path).map_err(|source| TraceError::Io {
        path: path.into(),
        source,
    })?;
    // A corrupt file must give an error, not a panic, even if the decoder panics on it.
    let frame = std::panic::catch_unwind(move || ParquetReader::new(file).finish())
        .map_err(|_| TraceError::Polars {
            path: path.into(),
            message: "the Parquet decoder failed on this file".into(),
        })?
        .map_err(polars_err)?;
    let header = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let column = |name: &str| -> Result<Vec<Option<f64>>, TraceError> {
        let col = frame.column(name).map_err(|_| TraceError::MissingColumn {
            path: path.into(),
            column: name.into(),
            header: header.clone(),
        })?;
        let cast = col.cast(&DataType::Float64).map_err(polars_err)?;
        let values = cast.f64().map_err(polars_err)?;
        Ok(values.iter().collect())
    };
    let present = |name: &str| frame.column(name).is_ok();
    let session = if present("session_id") {
        let cast = frame
            .column("session_id")
            .and_then(|col| col.cast(&DataType::String))
            .map_err(polars_err)?;
        let labels = cast.str().map_err(polars_err)?;
        Some(
            labels
                .iter()
                .map(|label| label.map(|label| session_of(label.as_bytes())))
                .collect(),
        )
    } else {
        None
    };
    let class = if present("slo_class") {
        Some(column("slo_class")?)
    } else {
        None
    };
    Ok(Source::Columns {
        arrival: column("arrival_s")?,
        input: column("input_tokens")?,
        output: column("output_tokens")?,
        session,
        class,
        next: 0,
    })
}

/// One Parquet row's values, before validation.
struct ParquetValues {
    arrival: Option<f64>,
    input: Option<f64>,
    output: Option<f64>,
    session: Option<u64>,
    class: Option<f64>,
}

/// What [`load`] did to a trace: rows read, skipped, excluded, and how arrivals were rebased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// The file read.
    pub path: String,
    /// Its format.
    pub format: TraceFormat,
    /// Tallies from the reader.
    pub counts: ReadCounts,
    /// Requests in the loaded trace.
    pub requests: u64,
    /// Whether arrivals were sorted (only with `allow_unsorted`).
    pub sorted: bool,
    /// Whether sorting changed the order.
    pub reordered: bool,
    /// Seconds subtracted so the earliest arrival is 0 (relative to the first row's timestamp).
    pub rebased_note: String,
    /// The spreading window applied to coarse timestamps, in seconds, if any.
    pub spread_window_s: Option<f64>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trace: {} (format {})", self.path, self.format)?;
        writeln!(
            f,
            "rows read: {}; bad rows skipped: {}; failed requests excluded: {}; failed kept: {}; requests: {}",
            self.counts.rows_read,
            self.counts.rows_skipped_bad,
            self.counts.failed_excluded,
            self.counts.failed_included,
            self.requests
        )?;
        write!(f, "arrivals: {}", self.rebased_note)?;
        if self.sorted {
            write!(
                f,
                "; sorted ({})",
                if self.reordered {
                    "order changed"
                } else {
                    "already in order"
                }
            )?;
        }
        if let Some(window) = self.spread_window_s {
            write!(f, "; equal timestamps spread over up to {window} s")?;
        }
        Ok(())
    }
}

/// A whole trace in memory plus what reading it did.
#[derive(Debug, Clone)]
pub struct LoadedTrace {
    /// Requests in arrival order, ids 0.., first arrival at 0 s.
    pub requests: Vec<Request>,
    /// What was read, skipped and rebased.
    pub report: LoadReport,
}

/// Reads a whole trace into memory, sorting when `options.allow_unsorted` is set.
pub fn load(path: impl AsRef<Path>, options: &ReadOptions) -> Result<LoadedTrace, TraceError> {
    let path = path.as_ref();
    let mut reader = TraceReader::open(path, options)?;
    let mut requests = Vec::new();
    for request in reader.by_ref() {
        requests.push(request?);
    }
    let mut reordered = false;
    if options.allow_unsorted {
        reordered = requests.windows(2).any(|w| w[1].arrival_s < w[0].arrival_s);
        if reordered {
            // Stable, so requests with equal arrivals keep file order.
            requests.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
            let earliest = requests.first().map_or(0.0, |r| r.arrival_s);
            for (id, request) in requests.iter_mut().enumerate() {
                request.arrival_s -= earliest;
                request.id = id as u64;
            }
        }
    }
    let origin = reader
        .counts()
        .origin
        .clone()
        .unwrap_or_else(|| "none (no rows)".into());
    let report = LoadReport {
        path: path.display().to_string(),
        format: reader.format(),
        counts: reader.counts().clone(),
        requests: requests.len() as u64,
        sorted: options.allow_unsorted,
        reordered,
        rebased_note: format!(
            "seconds, rebased so the {} arrival is 0 s (first row's timestamp: {origin})",
            if reordered { "earliest" } else { "first" }
        ),
        spread_window_s: options.spread.map(|s| s.window_s),
    };
    Ok(LoadedTrace { requests, report })
}

/// Writes requests as a normalized trace: CSV (streamed) or Parquet (by `.parquet` extension,
/// materialized through polars, with `session_id` (null when none) and `slo_class` columns too).
/// Returns the number of rows written. CSV has only the three normalized columns, so a request
/// with a session or a non-zero SLO class is an error there (the file is removed).
pub fn write_normalized(
    path: impl AsRef<Path>,
    requests: impl IntoIterator<Item = Request>,
) -> Result<u64, TraceError> {
    let path = path.as_ref();
    let io_err = |source| TraceError::Write {
        path: path.into(),
        source,
    };
    let is_parquet = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if is_parquet {
        use polars::prelude::*;
        let (mut arrival, mut input, mut output) = (Vec::new(), Vec::new(), Vec::new());
        let (mut session, mut class) = (Vec::new(), Vec::new());
        for request in requests {
            arrival.push(request.arrival_s);
            input.push(request.input_tokens);
            output.push(request.output_tokens);
            session.push(request.session_id);
            class.push(u32::from(request.slo_class));
        }
        let rows = arrival.len() as u64;
        let polars_err = |err: PolarsError| TraceError::Polars {
            path: path.into(),
            message: err.to_string(),
        };
        let mut frame = DataFrame::new_infer_height(vec![
            Column::new("arrival_s".into(), arrival),
            Column::new("input_tokens".into(), input),
            Column::new("output_tokens".into(), output),
            Column::new("session_id".into(), session),
            Column::new("slo_class".into(), class),
        ])
        .map_err(polars_err)?;
        let file = File::create(path).map_err(io_err)?;
        ParquetWriter::new(file)
            .finish(&mut frame)
            .map_err(polars_err)?;
        return Ok(rows);
    }
    let file = File::create(path).map_err(io_err)?;
    let mut out = BufWriter::new(file);
    writeln!(out, "arrival_s,input_tokens,output_tokens").map_err(io_err)?;
    let mut rows = 0;
    for request in requests {
        // The header is written before the stream is seen, and has no columns for these: a
        // request that carries them is an error (with the way to keep them), never a silent loss.
        if request.session_id.is_some() || request.slo_class != 0 {
            drop(out);
            let _ = std::fs::remove_file(path);
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "request {} (row {}) has session_id {} and slo_class {}, which a normalized \
                     CSV trace (arrival_s,input_tokens,output_tokens) cannot hold; write a \
                     .parquet file to keep them",
                    request.id,
                    rows + 1,
                    request
                        .session_id
                        .map_or_else(|| "none".to_string(), |id| id.to_string()),
                    request.slo_class
                ),
            )));
        }
        writeln!(
            out,
            "{},{},{}",
            request.arrival_s, request.input_tokens, request.output_tokens
        )
        .map_err(io_err)?;
        rows += 1;
    }
    out.flush().map_err(io_err)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_formats_of_both_azure_releases_parse() {
        let (day, secs) = parse_datetime(b"2023-11-16 18:17:03.9799600").unwrap();
        assert_eq!(day, days_from_civil(2023, 11, 16));
        assert!((secs - (18.0 * 3600.0 + 17.0 * 60.0 + 3.97996)).abs() < 1e-9);
        let (_, with_tz) = parse_datetime(b"2024-05-10 00:00:00.009930+00:00").unwrap();
        assert!((with_tz - 0.00993).abs() < 1e-12);
        let (_, no_fraction) = parse_datetime(b"2024-05-10 00:00:01+00:00").unwrap();
        assert_eq!(no_fraction, 1.0);
        let (_, east) = parse_datetime(b"2024-05-10 02:00:00+02:00").unwrap();
        assert_eq!(east, 0.0);
        assert!(parse_datetime(b"2024-13-10 00:00:00").is_none());
        assert!(parse_datetime(b"yesterday").is_none());
        // Days a month does not have are errors, not the next month; leap years count.
        assert!(parse_datetime(b"2023-02-31 00:00:00").is_none());
        assert!(parse_datetime(b"2023-04-31 00:00:00").is_none());
        assert!(parse_datetime(b"2023-02-29 00:00:00").is_none());
        assert!(parse_datetime(b"2024-02-29 00:00:00").is_some());
        assert!(parse_datetime(b"1900-02-29 00:00:00").is_none());
        assert!(parse_datetime(b"2000-02-29 00:00:00").is_some());
        assert!(parse_datetime(b"2023-12-31 00:00:00").is_some());
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            days_from_civil(2024, 5, 10) - days_from_civil(2024, 5, 9),
            1
        );
    }

    #[test]
    fn token_parsing_rejects_signs_fractions_and_overflow() {
        assert_eq!(parse_tokens(b"123"), Some(123));
        assert_eq!(parse_tokens(b"12.0"), Some(12));
        assert_eq!(parse_tokens(b"12.5"), None);
        assert_eq!(parse_tokens(b"-3"), None);
        assert_eq!(parse_tokens(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_tokens(b"4294967296"), None);
        assert_eq!(parse_tokens(b""), None);
    }
}
