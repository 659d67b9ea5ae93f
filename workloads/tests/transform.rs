//! Stream transformations: rate scaling, windows, context limits (counted) and tiling.

use workloads::Request;
use workloads::transform::{self, ContextLimit, OverLimit};

fn stream() -> Vec<Request> {
    (0..10)
        .map(|i| Request::new(i, i as f64, 100 * (i as u32 + 1), 50))
        .collect()
}

#[test]
fn scaling_the_rate_compresses_time() {
    let scaled: Vec<Request> = transform::scale_rate(stream().into_iter(), 2.0).collect();
    assert_eq!(scaled[4].arrival_s, 2.0);
    assert_eq!(scaled.len(), 10);
}

#[test]
fn a_window_keeps_and_rebases_its_arrivals() {
    let kept: Vec<Request> = transform::window(stream().into_iter(), 3.0, 6.0).collect();
    assert_eq!(
        kept.iter().map(|r| r.arrival_s).collect::<Vec<_>>(),
        vec![0.0, 1.0, 2.0]
    );
    assert_eq!(kept[0].id, 3);
    let renumbered: Vec<Request> = transform::renumber(kept.into_iter()).collect();
    assert_eq!(
        renumbered.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn context_limit_drops_and_counts() {
    let mut limited = ContextLimit::new(stream().into_iter(), 550, OverLimit::Drop);
    let kept: Vec<Request> = limited.by_ref().collect();
    assert_eq!(kept.len(), 5);
    assert_eq!(limited.dropped(), 5);
    assert_eq!(limited.clipped(), 0);
}

#[test]
fn context_limit_clips_and_counts() {
    let mut limited = ContextLimit::new(stream().into_iter(), 550, OverLimit::Clip);
    let kept: Vec<Request> = limited.by_ref().collect();
    assert_eq!(kept.len(), 10);
    assert_eq!(limited.clipped(), 5);
    assert!(kept.iter().all(|r| r.total_tokens() <= 550));
    assert_eq!(kept[9].input_tokens, 500);
    // An output longer than the limit is cut too.
    let mut long_output = ContextLimit::new(
        vec![Request::new(0, 0.0, 10, 1000)].into_iter(),
        100,
        OverLimit::Clip,
    );
    let clipped = long_output.next().unwrap();
    assert_eq!((clipped.input_tokens, clipped.output_tokens), (1, 99));
}

#[test]
fn tiling_repeats_to_the_duration_with_an_ordinary_seam_gap() {
    let source = stream();
    let tiled: Vec<Request> = transform::tile(&source, 25.0).collect();
    // Period = span 9 s + mean gap 1 s = 10 s: copies at 0, 10, 20 (the last cut at 25 s).
    assert_eq!(tiled.len(), 25);
    assert_eq!(tiled[10].arrival_s, 10.0);
    assert_eq!(tiled[10].input_tokens, source[0].input_tokens);
    assert!(
        tiled
            .windows(2)
            .all(|w| w[1].arrival_s - w[0].arrival_s == 1.0)
    );
    assert_eq!(
        tiled.iter().map(|r| r.id).collect::<Vec<_>>(),
        (0..25).collect::<Vec<u64>>()
    );
    assert_eq!(transform::tile(&[], 10.0).count(), 0);
    // Every request at the same instant: copies a second apart, not an endless stream.
    let burst: Vec<Request> = (0..3).map(|id| Request::new(id, 5.0, 100, 10)).collect();
    let tiled: Vec<Request> = transform::tile(&burst, 4.5).collect();
    assert_eq!(tiled.len(), 15);
    assert_eq!(tiled[3].arrival_s, 1.0);
    assert_eq!(tiled[14].arrival_s, 4.0);
}
