//! Prefill/decode disaggregation: prefill stalls leave decode latency, a lone request pays its
//! prefill then its KV transfer, decode blocks gate transfers, and requests are conserved.

mod common;

use std::collections::BTreeMap;

use common::{
    cluster, conservation_difference, fast_path_difference, poisson, random_stream, stepped_stream,
};
use gpu_models::{Catalog, InstanceOptions};
use proptest::prelude::*;
use sim::{
    AutoscaleConfig, AutoscalePolicy, BatchingMode, Cluster, ClusterEntry, EngineConfig, KvLink,
    REJECT_NO_REPLICA, REJECT_TOO_LONG, ReplicaRole, RequestStatus, ScaleLimits, ScaleMetric,
    ScheduleWindow, SimConfig, Summary, VecSink, parse_spec, simulate,
};
use workloads::Request;

/// A Llama-2-7B cluster with a prefill pool and a decode pool.
fn disaggregated(prefill: &str, decode: &str, options: &InstanceOptions) -> Cluster {
    Cluster::build_disaggregated(
        &parse_spec(prefill).unwrap(),
        &parse_spec(decode).unwrap(),
        &Catalog::builtin(),
        "Llama-2-7B",
        options,
        Some("melange-2024"),
    )
    .unwrap()
}

fn run(cluster: &Cluster, config: &SimConfig, requests: Vec<Request>) -> (Summary, VecSink) {
    let mut sink = VecSink::default();
    let summary = simulate(cluster, config, None, requests, &mut sink, None).unwrap();
    (summary, sink)
}

fn continuous() -> SimConfig {
    SimConfig {
        engine: EngineConfig {
            batching: BatchingMode::Continuous,
            ..EngineConfig::default()
        },
        sample_interval_s: None,
        ..SimConfig::default()
    }
}

/// Every arrival ends completed, rejected or in flight; one record each.
fn assert_conserved(summary: &Summary, sink: &VecSink, arrived: usize) {
    let c = &summary.requests;
    assert_eq!(c.arrived, arrived as u64);
    assert_eq!(c.arrived, c.completed + c.rejected + c.in_flight, "{c:?}");
    assert_eq!(sink.requests.len(), arrived);
    let completed: u64 = summary.replicas.iter().map(|r| r.completed).sum();
    assert_eq!(completed, c.completed);
}

#[test]
fn disaggregation_removes_prefill_stalls_from_decode_latency() {
    // Long prompts, short answers: in a colocated cluster every arrival's prefill stalls the
    // decodes running beside it (continuous batching runs prompts in iterations of their
    // own). Disaggregated, the same GPUs decode without stalls, though in a smaller pool: with
    // long answers its bigger decode batches can cost more per token than the stalls did (the
    // trade-off DistServe sizes its pools for), so the gap metric is the one that shows the
    // stalls alone.
    let requests = poisson(3000, 5.0, 3000, 100, 17);
    let config = continuous();
    let (colocated, colocated_sink) = run(
        &cluster("H100-SXM:1,A100-80GB:2"),
        &config,
        requests.clone(),
    );
    let split = disaggregated("H100-SXM:1", "A100-80GB:2", &InstanceOptions::default());
    let (disagg, disagg_sink) = run(&split, &config, requests.clone());
    for (summary, sink) in [(&colocated, &colocated_sink), (&disagg, &disagg_sink)] {
        assert_conserved(summary, sink, requests.len());
        assert_eq!(summary.requests.completed, 3000);
    }
    let (c, d) = (&colocated.latency, &disagg.latency);
    eprintln!(
        "max inter-token gap p99: colocated {:.3} s, disaggregated {:.3} s; TPOT p99: {:.4} s vs \
         {:.4} s; TTFT p50: {:.3} s vs {:.3} s",
        c.max_itl_s.p99, d.max_itl_s.p99, c.tpot_s.p99, d.tpot_s.p99, c.ttft_s.p50, d.ttft_s.p50
    );
    assert!(
        d.max_itl_s.p99 < 0.5 * c.max_itl_s.p99,
        "{} vs {}",
        d.max_itl_s.p99,
        c.max_itl_s.p99
    );
    assert!(
        d.tpot_s.p99 < c.tpot_s.p99,
        "{} vs {}",
        d.tpot_s.p99,
        c.tpot_s.p99
    );

    // Every request was prefilled on the H100, moved once, and finished on an A100.
    let report = disagg.disaggregation.as_ref().unwrap();
    assert_eq!(report.prefill_pool, "H100-SXM:1");
    assert_eq!(report.decode_pool, "A100-80GB:2");
    assert_eq!(report.transfers, 3000);
    assert_eq!(report.completed_at_prefill, 0);
    assert_eq!(report.pending_at_end, 0);
    let kv_bytes = split.types[0].instance.model.kv_bytes_per_token();
    assert!((report.transferred_gb - 3000.0 * 3000.0 * kv_bytes / 1e9).abs() < 1e-6);
    assert!(disagg.replicas[1..].iter().all(|r| r.preemptions == 0));
    assert!(colocated.disaggregation.is_none());
    let roles: Vec<ReplicaRole> = disagg.replicas.iter().map(|r| r.role).collect();
    assert_eq!(
        roles,
        [
            ReplicaRole::Prefill,
            ReplicaRole::Decode,
            ReplicaRole::Decode
        ]
    );
    assert_eq!(disagg.replicas[0].routed, 3000);
    assert_eq!(disagg.replicas[1].routed + disagg.replicas[2].routed, 3000);
    assert_eq!(
        disagg.replicas[0].output_tokens, 3000,
        "one token each at prefill"
    );
    for record in &disagg_sink.requests {
        assert_eq!(record.instance, "A100-80GB");
        assert!(record.replica >= 1);
    }
    assert_eq!(disagg.cluster, "prefill H100-SXM:1 | decode A100-80GB:2");
}

#[test]
fn a_lone_request_pays_its_prefill_then_its_kv_transfer() {
    let request = vec![Request::new(0, 0.0, 1000, 10)];
    let config = SimConfig {
        kv_link: KvLink {
            bandwidth_gbs: 10.0,
            latency_s: 0.002,
        },
        ..continuous()
    };
    let split = disaggregated("H100-SXM:1", "A100-80GB:1", &InstanceOptions::default());
    let (summary, sink) = run(&split, &config, request.clone());
    let (_, on_h100) = run(&cluster("H100-SXM:1"), &config, request.clone());
    let (_, on_a100) = run(&cluster("A100-80GB:1"), &config, request);
    let (split, h100, a100) = (
        &sink.requests[0],
        &on_h100.requests[0],
        &on_a100.requests[0],
    );
    // TTFT ends when the prefill replica produces the first token.
    assert_eq!(split.ttft_s, h100.ttft_s);
    // Then the cache crosses the link, and the A100 decodes as it would have after its own
    // prefill.
    let kv_bytes = 1000.0 * 524_288.0; // Llama-2-7B: 2 × 32 layers × 32 heads × 128 × 2 bytes
    let transfer_s = kv_bytes / 10e9 + 0.002;
    let report = summary.disaggregation.as_ref().unwrap();
    assert!((report.transfer_s.mean - transfer_s).abs() < 1e-9);
    assert_eq!(
        report.decode_wait_s.max, 0.0,
        "an idle decode replica has room"
    );
    let decode_split = split.e2e_s.unwrap() - split.ttft_s.unwrap() - transfer_s;
    let decode_a100 = a100.e2e_s.unwrap() - a100.ttft_s.unwrap();
    assert!(
        (decode_split - decode_a100).abs() < 1e-8,
        "{decode_split} vs {decode_a100}"
    );
    assert!(split.max_itl_s.unwrap() > transfer_s);
}

#[test]
fn decode_blocks_gate_transfers_and_nothing_is_lost() {
    // Small caches on both sides: prompts wait for prefill blocks that prefilled requests
    // still hold, and prefilled requests wait for decode blocks.
    let options = InstanceOptions {
        kv_blocks: Some(400),
        ..InstanceOptions::default()
    };
    let split = disaggregated("H100-SXM:1", "A10G:1", &options);
    let requests = poisson(400, 4.0, 1500, 200, 9);
    for batching in [BatchingMode::Continuous, BatchingMode::Chunked] {
        let mut config = continuous();
        config.engine.batching = batching;
        let (summary, sink) = run(&split, &config, requests.clone());
        assert_conserved(&summary, &sink, requests.len());
        assert_eq!(summary.requests.completed, 400, "{batching:?}");
        let report = summary.disaggregation.as_ref().unwrap();
        assert!(report.decode_wait_s.max > 1.0, "{batching:?}: {report:?}");
        for replica in &summary.replicas {
            assert!(replica.peak_kv_use <= 1.0);
        }
        // The prefill replica's cache filled with requests waiting to move.
        assert!(summary.replicas[0].peak_kv_use > 0.9, "{batching:?}");

        // Cut mid-run: waiting transfers and transfers on the link are in flight, not lost.
        let cut = SimConfig {
            horizon_s: Some(30.0),
            ..config.clone()
        };
        let (summary, sink) = run(&split, &cut, requests.clone());
        let arrived = requests.iter().filter(|r| r.arrival_s <= 30.0).count();
        assert_conserved(&summary, &sink, arrived);
        let report = summary.disaggregation.as_ref().unwrap();
        assert!(report.pending_at_end > 0, "{batching:?}: {report:?}");
        assert!(summary.requests.in_flight >= report.pending_at_end);

        // The fast path changes nothing but the queue-event count.
        let slow = SimConfig {
            fast_path: false,
            sample_interval_s: Some(2.0),
            ..config.clone()
        };
        let fast = SimConfig {
            sample_interval_s: Some(2.0),
            ..config
        };
        let (mut a, fast_sink) = run(&split, &fast, requests.clone());
        let (mut b, slow_sink) = run(&split, &slow, requests.clone());
        assert_eq!(fast_sink.requests, slow_sink.requests);
        assert_eq!(fast_sink.samples, slow_sink.samples);
        a.queue_events = 0;
        b.queue_events = 0;
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }
}

#[test]
fn one_token_answers_finish_at_prefill_and_long_requests_are_rejected() {
    let options = InstanceOptions {
        max_model_len: Some(2048),
        ..InstanceOptions::default()
    };
    let split = disaggregated("A10G:1", "L4:1", &options);
    let requests = vec![
        Request::new(0, 0.0, 500, 1),
        Request::new(1, 0.1, 500, 50),
        Request::new(2, 0.2, 2000, 100),
    ];
    let (summary, sink) = run(&split, &continuous(), requests);
    assert_conserved(&summary, &sink, 3);
    let report = summary.disaggregation.as_ref().unwrap();
    assert_eq!(report.completed_at_prefill, 1);
    assert_eq!(report.transfers, 1);
    let by_id = |id: u64| sink.requests.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by_id(0).instance, "A10G");
    assert_eq!(by_id(1).instance, "L4");
    assert_eq!(by_id(2).status, RequestStatus::Rejected);
    assert_eq!(by_id(2).reject_reason, REJECT_TOO_LONG);
}

#[test]
fn unsupported_combinations_are_clear_errors() {
    let split = disaggregated("A10G:1", "L4:1", &InstanceOptions::default());
    let requests = poisson(5, 1.0, 100, 10, 1);
    let error = |config: SimConfig| {
        let mut sink = VecSink::default();
        simulate(&split, &config, None, requests.clone(), &mut sink, None)
            .unwrap_err()
            .to_string()
    };
    let mut static_batching = continuous();
    static_batching.engine.batching = BatchingMode::Static;
    assert!(error(static_batching).contains("continuous or chunked"));
    // Each pool scales on its own, so limits name the pool too.
    let unqualified = SimConfig {
        autoscale: AutoscaleConfig {
            policy: AutoscalePolicy::Hpa,
            limits: BTreeMap::from([("A10G".to_string(), ScaleLimits { min: 1, max: 2 })]),
            ..AutoscaleConfig::default()
        },
        ..continuous()
    };
    let message = error(unqualified);
    assert!(
        message.contains("prefill/A10G") && message.contains("decode/L4"),
        "{message}"
    );
    let bad_link = SimConfig {
        kv_link: KvLink {
            bandwidth_gbs: 0.0,
            latency_s: 0.0,
        },
        ..continuous()
    };
    assert!(error(bad_link).contains("bandwidth_gbs"));
    // A link so slow (or a latency so long) that one transfer would outlast the simulated
    // clock's range once hung the run; both are refused.
    for (bandwidth_gbs, latency_s, key) in [(1e-12, 0.0, "bandwidth_gbs"), (10.0, 1e9, "latency_s")]
    {
        let message = error(SimConfig {
            kv_link: KvLink {
                bandwidth_gbs,
                latency_s,
            },
            ..continuous()
        });
        assert!(message.contains(key), "{message}");
    }
    let err = Cluster::build_disaggregated(
        &parse_spec("A10G:1").unwrap(),
        &[ClusterEntry {
            gpu: "L4".into(),
            count: 0,
            tp: 1,
        }],
        &Catalog::builtin(),
        "Llama-2-7B",
        &InstanceOptions::default(),
        None,
    )
    .unwrap_err();
    assert!(err.contains("decode pool has no replicas"), "{err}");
}

/// Ready replicas of type `t` at each change: (time, ready).
fn ready_series(summary: &Summary, t: usize) -> Vec<(f64, u32)> {
    let report = summary.autoscale.as_ref().unwrap();
    report
        .series
        .iter()
        .map(|p| (p.time_s, p.ready[t]))
        .collect()
}

#[test]
fn each_pool_of_a_disaggregated_cluster_scales_with_the_rate() {
    // Long prompts and long answers on one A10G per pool, rate 1 → 8 → 1 req/s: both pools
    // must grow under HPA on outstanding requests and shrink again once the rate falls.
    let rates = [1.0, 1.0, 4.0, 8.0, 8.0, 4.0, 1.0, 1.0, 1.0];
    let requests = stepped_stream(300.0, &rates, 1500, 300, 5);
    let n = requests.len();
    let split = disaggregated("A10G:1", "A10G:1", &InstanceOptions::default());
    assert_eq!(split.scaling_names(), ["prefill/A10G", "decode/A10G"]);
    let config = SimConfig {
        autoscale: AutoscaleConfig {
            policy: AutoscalePolicy::Hpa,
            metric: ScaleMetric::Outstanding,
            hpa_target: Some(8.0),
            interval_s: 15.0,
            cooldown_s: 60.0,
            ..AutoscaleConfig::default()
        },
        ..continuous()
    };
    let (summary, sink) = run(&split, &config, requests);
    assert_conserved(&summary, &sink, n);
    assert_eq!(summary.requests.rejected, 0);
    let report = summary.autoscale.as_ref().unwrap();
    let names: Vec<&str> = report.types.iter().map(|t| t.instance.as_str()).collect();
    assert_eq!(names, ["prefill/A10G", "decode/A10G"]);
    for (t, pool) in names.iter().enumerate() {
        let series = ready_series(&summary, t);
        let peak = series.iter().map(|p| p.1).max().unwrap();
        let end = series.last().unwrap().1;
        eprintln!("{pool}: peak {peak} ready, {end} at the end; {series:?}");
        assert!(peak >= 2, "{pool} never scaled up: {series:?}");
        assert!(end < peak, "{pool} never scaled back down: {series:?}");
    }
    // Every replica of each pool keeps its role, and the bill is each replica's billed life
    // (both pools are A10Gs, one price).
    for replica in &summary.replicas {
        assert_ne!(replica.role, ReplicaRole::Colocated);
        if let Some(stopped) = replica.stopped_s {
            assert!((replica.billed_s - (stopped - replica.started_s)).abs() < 1e-9);
        }
    }
    let billed: f64 = report.types.iter().map(|t| t.billed_usd).sum();
    let by_replica: f64 = summary
        .replicas
        .iter()
        .map(|r| r.billed_s / 3600.0 * split.types[0].usd_per_hour)
        .sum();
    assert!(
        (billed - by_replica).abs() < 1e-9,
        "{billed} vs {by_replica}"
    );
    // Decode latency still excludes prefill stalls: every multi-token request was moved.
    let disagg = summary.disaggregation.as_ref().unwrap();
    assert_eq!(disagg.pending_at_end, 0);
    assert_eq!(
        disagg.transfers,
        summary.requests.completed - disagg.completed_at_prefill
    );
}

fn arbitrary_stream() -> impl Strategy<Value = Vec<Request>> {
    random_stream(1.0, 3000, 400, 150)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever the pools, caches and link: every arrival ends completed, rejected or in
    /// flight (KV limits are asserted inside the engine), each completed request with more
    /// than one token moved once, and the fast path changes nothing.
    #[test]
    fn disaggregated_runs_conserve_requests(
        requests in arbitrary_stream(),
        pools in prop::sample::select(vec![("H100-SXM:1", "A100-80GB:1"), ("A10G:1", "L4:2"), ("L4:2", "A10G:1,L4:1")]),
        batching in prop::sample::select(vec![BatchingMode::Continuous, BatchingMode::Chunked]),
        kv_blocks in prop::option::of(300u64..1500),
        bandwidth_gbs in 0.5f64..100.0,
        horizon in prop::option::of(1.0f64..60.0),
    ) {
        let options = InstanceOptions { kv_blocks, max_model_len: Some(4096), ..InstanceOptions::default() };
        let split = disaggregated(pools.0, pools.1, &options);
        let mut config = continuous();
        config.engine.batching = batching;
        config.kv_link = KvLink { bandwidth_gbs, latency_s: 1e-3 };
        config.horizon_s = horizon;
        config.sample_interval_s = Some(2.0);
        let (summary, sink) = run(&split, &config, requests.clone());
        let broken = conservation_difference(&requests, horizon, &summary, &sink);
        prop_assert!(broken.is_none(), "{:?}", broken);
        let c = &summary.requests;
        let report = summary.disaggregation.as_ref().unwrap();
        let multi_token = sink
            .requests
            .iter()
            .filter(|r| r.status == RequestStatus::Completed && r.generated_tokens > 1)
            .count() as u64;
        prop_assert_eq!(report.completed_at_prefill, c.completed - multi_token);
        prop_assert!(report.transfers >= multi_token);
        if horizon.is_none() {
            prop_assert_eq!(report.pending_at_end, 0);
            prop_assert_eq!(c.in_flight, 0);
        }
        let difference = fast_path_difference(&split, &config, requests, (&summary, &sink));
        prop_assert!(difference.is_none(), "{:?}", difference);
    }

    /// Autoscaled pools, including schedules that leave a pool empty for a while: every
    /// arrival ends completed, rejected or in flight; prefill replicas take arrivals only
    /// before their drain; billing never exceeds a replica's life; the fast path changes
    /// nothing.
    #[test]
    fn autoscaled_disaggregated_runs_conserve_requests(
        requests in arbitrary_stream(),
        policy in prop::sample::select(vec![AutoscalePolicy::Reactive, AutoscalePolicy::Hpa, AutoscalePolicy::Schedule]),
        metric in prop::sample::select(ScaleMetric::ALL.to_vec()),
        interval_s in 1.0f64..10.0,
        cooldown_s in 0.0f64..20.0,
        horizon in prop::option::of(5.0f64..60.0),
    ) {
        let options = InstanceOptions { kv_blocks: Some(600), max_model_len: Some(4096), ..InstanceOptions::default() };
        let split = disaggregated("A10G:1", "L4:1", &options);
        let (_, _, target) = metric.default_thresholds();
        let limits = ScaleLimits { min: 0, max: 3 };
        let mut config = continuous();
        config.autoscale = AutoscaleConfig {
            policy,
            metric,
            interval_s,
            cooldown_s,
            hpa_target: Some(target / 4.0),
            load_gbs: 20.0,
            schedule: (0..8)
                .map(|k| ScheduleWindow {
                    start_s: 8.0 * f64::from(k),
                    counts: BTreeMap::from([
                        ("prefill/A10G".to_string(), (k * 5) % 3),
                        ("decode/L4".to_string(), (k * 7) % 4),
                    ]),
                })
                .collect(),
            limits: BTreeMap::from([
                ("prefill/A10G".to_string(), limits),
                ("decode/L4".to_string(), limits),
            ]),
            ..AutoscaleConfig::default()
        };
        config.horizon_s = horizon;
        config.sample_interval_s = Some(3.0);
        let (summary, sink) = run(&split, &config, requests.clone());
        let broken = conservation_difference(&requests, horizon, &summary, &sink);
        prop_assert!(broken.is_none(), "{:?}", broken);
        let c = &summary.requests;
        if horizon.is_none() {
            prop_assert_eq!(c.in_flight, 0);
            prop_assert_eq!(summary.disaggregation.as_ref().unwrap().pending_at_end, 0);
        }
        for record in &sink.requests {
            // A request finishes on a replica that had loaded its model.
            if let Some(done) = record.completion_s {
                let replica = &summary.replicas[record.replica as usize];
                prop_assert!(done >= replica.ready_s - 1e-9);
            }
        }
        for replica in &summary.replicas {
            prop_assert!(replica.billed_s <= summary.span_s - replica.started_s + 1e-9);
        }
        let difference = fast_path_difference(&split, &config, requests, (&summary, &sink));
        prop_assert!(difference.is_none(), "{:?}", difference);
    }
}

/// A prompt only the big decode type can hold, prefilled after a schedule stopped that type:
/// it is turned away (counted), not sent to the small decode replica that could never take it.
#[test]
fn a_hand_off_no_running_decode_replica_can_hold_is_rejected_not_stranded() {
    let options = InstanceOptions {
        // Just under what an L4's KV cache holds, so its admission watermark leaves it a little
        // short of the longest request the A100 takes.
        max_model_len: Some(11_900),
        ..InstanceOptions::default()
    };
    let split = disaggregated("A100-80GB:1", "L4:1,A100-80GB:1", &options);
    let decode_max = |name: &str| {
        split
            .types
            .iter()
            .find(|t| t.role == ReplicaRole::Decode && t.name == name)
            .map(|t| sim::replica::max_request_tokens(&t.instance, &continuous().engine))
            .unwrap()
    };
    let (l4, a100) = (decode_max("L4"), decode_max("A100-80GB"));
    assert!(l4 < a100, "L4 {l4} tokens, A100 {a100}");
    let long = u32::try_from(a100).unwrap() - 10;
    let window = |start_s: f64, big_decode: u32| ScheduleWindow {
        start_s,
        counts: BTreeMap::from([
            ("prefill/A100-80GB".to_string(), 1),
            ("decode/L4".to_string(), 1),
            ("decode/A100-80GB".to_string(), big_decode),
        ]),
    };
    let config = SimConfig {
        autoscale: AutoscaleConfig {
            policy: AutoscalePolicy::Schedule,
            schedule: vec![window(0.0, 1), window(0.2, 0)],
            ..AutoscaleConfig::default()
        },
        ..continuous()
    };
    let requests = vec![
        Request::new(0, 0.0, long, 10),
        Request::new(1, 0.1, 500, 10),
    ];
    let (summary, sink) = run(&split, &config, requests);
    assert_conserved(&summary, &sink, 2);
    assert_eq!(summary.requests.in_flight, 0);
    let by_id = |id: u64| sink.requests.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by_id(0).status, RequestStatus::Rejected);
    assert_eq!(by_id(0).reject_reason, REJECT_NO_REPLICA);
    assert_eq!(by_id(1).status, RequestStatus::Completed);
    assert_eq!(by_id(1).instance, "L4");
}
