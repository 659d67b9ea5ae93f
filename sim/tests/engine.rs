//! Correctness of the simulator: conservation, invariants, queueing theory, heterogeneity.

mod common;

use common::{cluster, cluster_with, poisson, random_stream, run};
use gpu_models::InstanceOptions;
use proptest::prelude::*;
use sim::{
    BatchingMode, EngineConfig, PreemptionMode, RequestStatus, RouterKind, SimConfig, SloTargets,
};
use workloads::Request;

fn config(batching: BatchingMode) -> SimConfig {
    SimConfig {
        engine: EngineConfig {
            batching,
            ..EngineConfig::default()
        },
        ..SimConfig::default()
    }
}

/// The e2e latency of one request alone on a fresh replica.
fn unloaded_e2e(spec: &str, cfg: &SimConfig, input: u32, output: u32) -> f64 {
    let (_, sink) = run(
        &cluster(spec),
        cfg,
        vec![Request::new(0, 0.0, input, output)],
    );
    sink.requests[0].e2e_s.unwrap()
}

#[test]
fn low_load_latency_equals_unloaded_latency() {
    for batching in [
        BatchingMode::Continuous,
        BatchingMode::Chunked,
        BatchingMode::Static,
    ] {
        let cfg = config(batching);
        let alone = unloaded_e2e("A10G:1", &cfg, 300, 80);
        let spaced: Vec<Request> = (0..20)
            .map(|i| Request::new(i, 100.0 * i as f64, 300, 80))
            .collect();
        let (summary, sink) = run(&cluster("A10G:1"), &cfg, spaced);
        assert_eq!(summary.requests.completed, 20);
        for record in &sink.requests {
            assert!(
                (record.e2e_s.unwrap() - alone).abs() < 1e-9,
                "{batching:?}: {} vs {alone}",
                record.e2e_s.unwrap()
            );
            assert_eq!(record.queue_delay_s, Some(0.0));
        }
    }
}

/// One replica, static batching with batch size 1, fixed-size requests, Poisson arrivals:
/// an M/D/1 queue, whose mean wait is ρ / (2μ(1 − ρ)).
#[test]
fn static_batch_of_one_is_an_md1_queue() {
    let mut cfg = config(BatchingMode::Static);
    cfg.engine.max_num_seqs = 1;
    let (input, output) = (200, 40);
    let service = unloaded_e2e("A100-80GB:1", &cfg, input, output);
    for (rho, seed) in [(0.3, 1), (0.6, 2), (0.8, 3)] {
        let n = 40_000;
        let requests = poisson(n, rho / service, input, output, seed);
        let (summary, sink) = run(&cluster("A100-80GB:1"), &cfg, requests);
        assert_eq!(summary.requests.completed, n as u64);
        // Every request is served in exactly the deterministic service time.
        for r in sink.requests.iter().take(100) {
            let served = r.e2e_s.unwrap() - r.queue_delay_s.unwrap();
            assert!((served - service).abs() < 1e-6, "{served} vs {service}");
        }
        let mut waits: Vec<f64> = Vec::with_capacity(n);
        let mut by_id = sink.requests.clone();
        by_id.sort_by_key(|r| r.id);
        waits.extend(by_id.iter().map(|r| r.queue_delay_s.unwrap()));
        let theory = rho * service / (2.0 * (1.0 - rho));
        // Waits are correlated: the standard error comes from 40 batch means.
        let batches: Vec<f64> = waits
            .chunks(n / 40)
            .map(|c| c.iter().sum::<f64>() / c.len() as f64)
            .collect();
        let mean = batches.iter().sum::<f64>() / batches.len() as f64;
        let var =
            batches.iter().map(|b| (b - mean).powi(2)).sum::<f64>() / (batches.len() - 1) as f64;
        let se = (var / batches.len() as f64).sqrt();
        assert!(
            (mean - theory).abs() < 4.0 * se,
            "rho {rho}: mean wait {mean:.4} s vs M/D/1 {theory:.4} s (se {se:.4})"
        );
    }
}

#[test]
fn bigger_gpus_give_lower_tpot_on_the_same_stream() {
    let requests = poisson(400, 2.0, 500, 150, 7);
    let cfg = config(BatchingMode::Continuous);
    let (a100, _) = run(&cluster("A100-80GB:2"), &cfg, requests.clone());
    let (a10g, _) = run(&cluster("A10G:2"), &cfg, requests);
    assert!(
        a100.latency.tpot_s.mean < a10g.latency.tpot_s.mean,
        "A100 {} vs A10G {}",
        a100.latency.tpot_s.mean,
        a10g.latency.tpot_s.mean
    );
}

#[test]
fn a_cluster_that_is_too_small_queues_rather_than_loses_requests() {
    let requests = poisson(3000, 40.0, 800, 200, 11);
    let cfg = config(BatchingMode::Continuous);
    let (summary, sink) = run(&cluster("L4:1"), &cfg, requests);
    assert_eq!(summary.requests.completed, 3000);
    assert_eq!(summary.requests.rejected, 0);
    let mut by_id = sink.requests.clone();
    by_id.sort_by_key(|r| r.id);
    let early: f64 = by_id[..500]
        .iter()
        .map(|r| r.queue_delay_s.unwrap())
        .sum::<f64>()
        / 500.0;
    let late: f64 = by_id[2500..]
        .iter()
        .map(|r| r.queue_delay_s.unwrap())
        .sum::<f64>()
        / 500.0;
    assert!(
        late > 5.0 * early.max(1e-3),
        "queueing delay should rise: {early} -> {late}"
    );
}

#[test]
fn requests_longer_than_every_replica_are_rejected_and_counted() {
    let requests = vec![
        Request::new(0, 0.0, 100, 10),
        Request::new(1, 0.1, 5000, 10), // Llama-2-7B accepts 4096 tokens.
        Request::new(2, 0.2, 100, 10),
    ];
    let (summary, sink) = run(
        &cluster("A10G:1"),
        &config(BatchingMode::Continuous),
        requests,
    );
    assert_eq!(summary.requests.completed, 2);
    assert_eq!(summary.requests.rejected, 1);
    assert_eq!(
        summary.requests.rejected_by_reason[sim::engine::REJECT_TOO_LONG],
        1
    );
    let rejected = sink.requests.iter().find(|r| r.id == 1).unwrap();
    assert_eq!(rejected.status, RequestStatus::Rejected);
}

/// Static batching once reserved a prompt token and a generated token more than admission
/// checked for a request with an empty prompt or output, so such a request at the KV limit was
/// admitted but never fitted a batch: it blocked the queue, and the sampling timer kept the run
/// going for ever. Whatever the batching, requests up to the limit complete and longer ones are
/// rejected.
#[test]
fn requests_at_the_kv_limit_with_an_empty_prompt_or_output_complete() {
    let options = InstanceOptions {
        // 320 tokens, less the 1% watermark's block: a limit set by the KV cache.
        kv_blocks: Some(20),
        max_model_len: Some(320),
        ..InstanceOptions::default()
    };
    let cluster = cluster_with("A10G:1", &options);
    for batching in [
        BatchingMode::Continuous,
        BatchingMode::Chunked,
        BatchingMode::Static,
    ] {
        let mut cfg = config(batching);
        cfg.sample_interval_s = Some(0.5);
        // A regression stops at the horizon with requests in flight, instead of hanging.
        cfg.horizon_s = Some(3600.0);
        let limit =
            sim::replica::max_request_tokens(&cluster.types[0].instance, &cfg.engine) as u32;
        let requests = vec![
            Request::new(0, 0.0, limit, 0),
            Request::new(1, 0.5, 0, limit),
            Request::new(2, 1.0, limit - 1, 1),
            Request::new(3, 1.5, 10, 5),
            Request::new(4, 2.0, limit, 1),
            Request::new(5, 2.5, 1, limit),
        ];
        let (summary, sink) = run(&cluster, &cfg, requests);
        let status = |id: u64| sink.requests.iter().find(|r| r.id == id).unwrap().status;
        for id in [0, 1, 2, 3] {
            assert_eq!(
                status(id),
                RequestStatus::Completed,
                "{batching:?} request {id}"
            );
        }
        for id in [4, 5] {
            assert_eq!(
                status(id),
                RequestStatus::Rejected,
                "{batching:?} request {id}"
            );
        }
        assert_eq!(summary.requests.in_flight, 0, "{batching:?}");
    }
}

#[test]
fn tiny_kv_cache_forces_preemption_and_everything_still_completes() {
    for mode in [PreemptionMode::Recompute, PreemptionMode::Swap] {
        for batching in [BatchingMode::Continuous, BatchingMode::Chunked] {
            let options = InstanceOptions {
                kv_blocks: Some(400),
                max_model_len: Some(2048),
                ..InstanceOptions::default()
            };
            let mut cfg = config(batching);
            cfg.engine.preemption = mode;
            let requests = poisson(300, 20.0, 300, 400, 5);
            let (summary, sink) = run(&cluster_with("A10G:1", &options), &cfg, requests);
            assert_eq!(summary.requests.completed, 300, "{mode:?} {batching:?}");
            assert!(summary.replicas[0].preemptions > 0, "{mode:?} {batching:?}");
            assert!(summary.replicas[0].peak_kv_use <= 1.0);
            assert!(
                sink.requests
                    .iter()
                    .all(|r| r.generated_tokens == r.output_tokens)
            );
        }
    }
}

#[test]
fn same_seed_same_records() {
    let requests = poisson(500, 8.0, 400, 100, 3);
    for router in RouterKind::ALL {
        if router.needs_table() {
            continue;
        }
        let mut cfg = config(BatchingMode::Chunked);
        cfg.router = router;
        cfg.seed = 42;
        let (a, sa) = run(&cluster("A10G:2,A100-80GB:1"), &cfg, requests.clone());
        let (b, sb) = run(&cluster("A10G:2,A100-80GB:1"), &cfg, requests.clone());
        assert_eq!(sa.requests, sb.requests, "{router:?}");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }
}

#[test]
fn unsorted_arrivals_are_an_error() {
    let requests = vec![Request::new(0, 1.0, 10, 10), Request::new(1, 0.5, 10, 10)];
    let mut sink = sim::VecSink::default();
    let err = sim::simulate(
        &cluster("A10G:1"),
        &SimConfig::default(),
        None,
        requests,
        &mut sink,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("sorted"), "{err}");
}

/// An arrival past the nanosecond clock's range used to saturate it (completions before
/// arrivals) or keep the sampling timer spinning for hours; it is an error naming the request.
#[test]
fn arrivals_beyond_the_clock_are_an_error() {
    for (arrival_s, sample) in [(2e10, None), (f64::INFINITY, Some(1.0)), (1e300, Some(1.0))] {
        let requests = vec![
            Request::new(0, 0.0, 10, 10),
            Request::new(1, arrival_s, 10, 10),
        ];
        let mut sink = sim::VecSink::default();
        let config = SimConfig {
            sample_interval_s: sample,
            ..SimConfig::default()
        };
        let err = sim::simulate(&cluster("A10G:1"), &config, None, requests, &mut sink, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("request 1") && err.contains("1e9 s"), "{err}");
    }
}

#[test]
fn slo_attainment_counts_rejections_as_misses() {
    let mut cfg = config(BatchingMode::Continuous);
    cfg.slo = SloTargets {
        ttft_s: Some(10.0),
        ..SloTargets::default()
    };
    let requests = vec![
        Request::new(0, 0.0, 100, 10),
        Request::new(1, 0.1, 9000, 10),
    ];
    let (summary, _) = run(&cluster("A10G:1"), &cfg, requests);
    let slo = summary.slo.unwrap();
    assert_eq!(slo.met, 1);
    assert!((slo.attainment - 0.5).abs() < 1e-12);
}

/// Requests still in flight at the horizon have not met their targets either: attainment is
/// over every arrival. Mélange's mean over requests is never met once one was rejected (it is
/// never served), nor with nothing completed; without targets no record claims to meet one.
#[test]
fn slo_verdicts_count_every_arrival() {
    let mut cfg = config(BatchingMode::Continuous);
    cfg.slo = SloTargets {
        norm_latency_s: Some(10.0),
        ..SloTargets::default()
    };
    cfg.horizon_s = Some(1.0);
    // The last arrives just before the horizon and is still decoding its 500 tokens.
    let requests = vec![
        Request::new(0, 0.0, 100, 10),
        Request::new(1, 0.2, 100, 10),
        Request::new(2, 0.9, 100, 500),
    ];
    let (summary, _) = run(&cluster("A10G:1"), &cfg, requests.clone());
    assert_eq!(summary.requests.in_flight, 1);
    let slo = summary.slo.unwrap();
    assert_eq!(slo.met, 2);
    assert!(
        (slo.attainment - 2.0 / 3.0).abs() < 1e-12,
        "{}",
        slo.attainment
    );
    assert_eq!(slo.mean_norm_latency_met, Some(true));

    cfg.horizon_s = None;
    let mut with_too_long = requests.clone();
    with_too_long.push(Request::new(3, 1.0, 9000, 10));
    let (summary, _) = run(&cluster("A10G:1"), &cfg, with_too_long);
    assert_eq!(summary.requests.rejected, 1);
    assert_eq!(summary.slo.unwrap().mean_norm_latency_met, Some(false));
    let (summary, _) = run(
        &cluster("A10G:1"),
        &cfg,
        vec![Request::new(0, 0.0, 9000, 10)],
    );
    assert_eq!(summary.requests.completed, 0);
    assert_eq!(summary.slo.unwrap().mean_norm_latency_met, Some(false));

    let (summary, sink) = run(
        &cluster("A10G:1"),
        &config(BatchingMode::Continuous),
        requests,
    );
    assert!(summary.slo.is_none());
    assert!(sink.requests.iter().all(|r| r.slo_met.is_none()));
}

fn arbitrary_stream() -> impl Strategy<Value = Vec<Request>> {
    random_stream(2.0, 3000, 600, 120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every arrived request ends completed, rejected or in flight; KV and batch limits hold
    /// (asserted inside the engine); nothing is scheduled before it arrives; TTFT covers at
    /// least the request's own prefill.
    #[test]
    fn conservation_and_invariants(
        requests in arbitrary_stream(),
        spec in prop::sample::select(vec!["A10G:1", "L4:2", "A10G:1,A100-80GB:1", "H100-SXM:1,L4:1"]),
        batching in prop::sample::select(vec![BatchingMode::Continuous, BatchingMode::Chunked, BatchingMode::Static]),
        router in prop::sample::select(vec![RouterKind::RoundRobin, RouterKind::Random, RouterKind::LeastOutstanding, RouterKind::LeastTokens, RouterKind::PowerOfTwo]),
        kv_blocks in prop::option::of(300u64..2000),
        horizon in prop::option::of(1.0f64..60.0),
        max_num_seqs in 1u32..64,
    ) {
        let options = InstanceOptions { kv_blocks, max_model_len: Some(4096), ..InstanceOptions::default() };
        let cluster = cluster_with(spec, &options);
        let mut cfg = config(batching);
        cfg.router = router;
        cfg.horizon_s = horizon;
        cfg.engine.max_num_seqs = max_num_seqs;
        cfg.sample_interval_s = Some(0.5);
        let arrived = requests.iter().filter(|r| horizon.is_none_or(|h| r.arrival_s <= h)).count() as u64;
        let (summary, sink) = run(&cluster, &cfg, requests);
        let counts = &summary.requests;
        prop_assert_eq!(counts.arrived, arrived);
        prop_assert_eq!(counts.completed + counts.rejected + counts.in_flight, arrived);
        prop_assert_eq!(sink.requests.len() as u64, arrived);
        if horizon.is_none() {
            prop_assert_eq!(counts.in_flight, 0);
        }
        for r in &sink.requests {
            if let Some(first) = r.first_scheduled_s {
                prop_assert!(first >= r.arrival_s - 1e-9);
            }
            if r.status == RequestStatus::Completed {
                let inst = &cluster.types.iter().find(|t| t.name == r.instance).unwrap().instance;
                let prefill = inst.prefill_s(r.input_tokens);
                prop_assert!(r.ttft_s.unwrap() >= prefill * (1.0 - 1e-6) - 1e-9,
                    "ttft {} < prefill {}", r.ttft_s.unwrap(), prefill);
                prop_assert_eq!(r.generated_tokens, r.output_tokens);
            }
        }
        let mut last = 0.0;
        for s in &sink.samples {
            prop_assert!(s.time_s >= last);
            prop_assert!(s.kv_blocks_used <= s.kv_blocks_total);
            last = s.time_s;
        }
        for replica in &summary.replicas {
            prop_assert!(replica.peak_kv_use <= 1.0 + 1e-12);
            prop_assert!(replica.busy_fraction <= 1.0 + 1e-9);
        }
    }

    /// The decode fast path gives exactly the step-by-step results.
    #[test]
    fn fast_path_matches_step_by_step(
        requests in arbitrary_stream(),
        spec in prop::sample::select(vec!["A10G:1", "A10G:2,A100-80GB:1"]),
        batching in prop::sample::select(vec![BatchingMode::Continuous, BatchingMode::Chunked, BatchingMode::Static]),
        kv_blocks in prop::option::of(300u64..2000),
        horizon in prop::option::of(1.0f64..60.0),
    ) {
        let options = InstanceOptions { kv_blocks, max_model_len: Some(4096), ..InstanceOptions::default() };
        let cluster = cluster_with(spec, &options);
        let mut fast = config(batching);
        fast.horizon_s = horizon;
        fast.sample_interval_s = Some(1.0);
        let slow = SimConfig { fast_path: false, ..fast.clone() };
        let (fast_summary, fast_sink) = run(&cluster, &fast, requests.clone());
        let (slow_summary, slow_sink) = run(&cluster, &slow, requests);
        prop_assert_eq!(&fast_sink.requests, &slow_sink.requests);
        prop_assert_eq!(&fast_sink.samples, &slow_sink.samples);
        let mut a = fast_summary.clone();
        let mut b = slow_summary.clone();
        a.queue_events = 0;
        b.queue_events = 0;
        prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    }
}

/// The fast path is taken: a long decode after one arrival needs a handful of queue events.
#[test]
fn fast_path_skips_queue_events_for_silent_decodes() {
    let requests = vec![Request::new(0, 0.0, 100, 500)];
    let cfg = config(BatchingMode::Continuous);
    let slow = SimConfig {
        fast_path: false,
        ..cfg.clone()
    };
    let (fast_summary, _) = run(&cluster("A10G:1"), &cfg, requests.clone());
    let (slow_summary, _) = run(&cluster("A10G:1"), &slow, requests);
    assert_eq!(fast_summary.iterations, 500);
    assert_eq!(slow_summary.iterations, 500);
    // Both process the same events; the fast path pushes almost none through the queue.
    assert_eq!(fast_summary.events, slow_summary.events);
    assert!(slow_summary.queue_events > 500);
    assert!(
        fast_summary.queue_events < 10,
        "{} queue events",
        fast_summary.queue_events
    );
}
