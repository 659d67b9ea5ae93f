//! The measured-table predictor interpolates deterministically and rejects bad tables.

use std::path::Path;

use gpu_models::{BatchSummary, MeasuredTable, TableFilter};

fn fixture() -> MeasuredTable {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/measured_small.csv");
    MeasuredTable::from_csv(&path, &TableFilter::default()).unwrap()
}

#[test]
fn interpolates_between_and_at_points() {
    let table = fixture();
    assert!((table.prefill_s(512.0) - 0.050).abs() < 1e-12);
    assert!((table.prefill_s(320.0) - 0.035).abs() < 1e-12);
    assert!((table.decode_s(8.0, 512.0) - 0.014).abs() < 1e-12);
    // Context shifts decode time by the effect measured at batch 1.
    assert!((table.decode_s(8.0, 2048.0) - 0.015).abs() < 1e-12);
    // Beyond the table the end segment is extended.
    assert!(table.prefill_s(4096.0) > table.prefill_s(2048.0));
    assert!(table.prefill_s(1.0) >= 0.010);
}

#[test]
fn mixed_batches_pay_both_phases() {
    let table = fixture();
    let mut batch = BatchSummary::default();
    batch.add_prefill(512, 0, true);
    for _ in 0..8 {
        batch.add_decode(512);
    }
    assert!((table.iteration_s(&batch) - 0.064).abs() < 1e-12);
}

#[test]
fn bad_tables_say_where() {
    let err = MeasuredTable::from_csv_text(
        "phase,batch_size,tokens,context,time_ms\nprefill,1,abc,0,5\n",
        Path::new("m.csv"),
        &TableFilter::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("m.csv:2") && err.contains("tokens"), "{err}");
    let err = MeasuredTable::from_csv_text(
        "phase,batch_size,tokens,context,time_ms\nprefill,1,100,0,5\n",
        Path::new("m.csv"),
        &TableFilter::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("decode"), "{err}");
    let err =
        MeasuredTable::from_csv_text("", Path::new("m.csv"), &TableFilter::default()).unwrap_err();
    assert!(err.to_string().contains("empty"));
}
