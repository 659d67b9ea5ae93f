//! Reading a 1-million-row normalized CSV through the streaming reader.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use workloads::trace::{ReadOptions, TraceReader};

const ROWS: u64 = 1_000_000;

fn main() {
    divan::main();
    if let Some(path) = trace_path_if_made() {
        let _ = std::fs::remove_dir_all(path.parent().expect("temp dir"));
    }
}

static TRACE: OnceLock<PathBuf> = OnceLock::new();

fn trace_path_if_made() -> Option<&'static PathBuf> {
    TRACE.get()
}

/// Writes the trace once per bench process, in a temporary directory.
fn trace_path() -> &'static PathBuf {
    TRACE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("workloads-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("million.csv");
        let mut out = BufWriter::new(std::fs::File::create(&path).expect("create bench trace"));
        writeln!(out, "arrival_s,input_tokens,output_tokens").unwrap();
        for row in 0..ROWS {
            // Deterministic, varied values: about 5.5 req/s with Azure-like lengths.
            let arrival = row as f64 * 0.180_812_345;
            writeln!(
                out,
                "{arrival},{},{}",
                2 + (row * 7919) % 14_000,
                7 + (row * 104_729) % 1000
            )
            .unwrap();
        }
        out.flush().unwrap();
        path
    })
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn read_1m_row_normalized_csv(bencher: divan::Bencher) {
    let path = trace_path();
    bencher.bench(|| {
        let reader = TraceReader::open(path, &ReadOptions::default()).expect("open");
        let mut tokens = 0u64;
        let mut rows = 0u64;
        for request in reader {
            let request = request.expect("valid row");
            tokens += request.total_tokens();
            rows += 1;
        }
        assert_eq!(rows, ROWS);
        divan::black_box(tokens)
    });
}
