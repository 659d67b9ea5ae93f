//! Autoscaling: each policy on a time-varying stream (cost and attainment), following a
//! rising rate and scaling back down, cold starts billed, drained replicas taking nothing new,
//! and conservation of requests throughout.

mod common;

use std::collections::BTreeMap;

use common::{
    cluster, cluster_with, conservation_difference, fast_path_difference, stepped_stream,
};
use gpu_models::InstanceOptions;
use proptest::prelude::*;
use sim::{
    AutoscaleConfig, AutoscalePolicy, BatchingMode, Cluster, RequestStatus, ScaleLimits,
    ScaleMetric, ScheduleWindow, SimConfig, SloTargets, Summary, VecSink, simulate,
};
use workloads::Request;

fn run(spec: &str, config: &SimConfig, requests: Vec<Request>) -> (Summary, VecSink) {
    let mut sink = VecSink::default();
    let summary = simulate(&cluster(spec), config, None, requests, &mut sink, None).unwrap();
    (summary, sink)
}

fn scaled(autoscale: AutoscaleConfig) -> SimConfig {
    SimConfig {
        autoscale,
        slo: SloTargets {
            ttft_s: Some(2.0),
            tpot_s: Some(0.1),
            ..SloTargets::default()
        },
        sample_interval_s: None,
        ..SimConfig::default()
    }
}

fn hpa(metric: ScaleMetric, target: f64) -> AutoscaleConfig {
    AutoscaleConfig {
        policy: AutoscalePolicy::Hpa,
        metric,
        hpa_target: Some(target),
        interval_s: 15.0,
        cooldown_s: 60.0,
        ..AutoscaleConfig::default()
    }
}

fn reactive(metric: ScaleMetric, up: f64, down: f64) -> AutoscaleConfig {
    AutoscaleConfig {
        policy: AutoscalePolicy::Reactive,
        metric,
        scale_up_threshold: Some(up),
        scale_down_threshold: Some(down),
        interval_s: 15.0,
        cooldown_s: 30.0,
        ..AutoscaleConfig::default()
    }
}

/// Every arrival ends completed, rejected or in flight, and the per-replica counts add up.
fn assert_conserved(summary: &Summary, sink: &VecSink, arrived: usize) {
    let c = &summary.requests;
    assert_eq!(c.arrived, arrived as u64);
    assert_eq!(c.arrived, c.completed + c.rejected + c.in_flight, "{c:?}");
    assert_eq!(sink.requests.len(), arrived, "one record per request");
    let routed: u64 = summary.replicas.iter().map(|r| r.routed).sum();
    assert_eq!(
        routed,
        c.arrived - c.rejected,
        "every accepted request routed once"
    );
    let completed: u64 = summary.replicas.iter().map(|r| r.completed).sum();
    assert_eq!(completed, c.completed);
}

/// Ready replicas of type 0 at each series point: (time, ready).
fn ready_series(summary: &Summary) -> Vec<(f64, u32)> {
    summary
        .autoscale
        .as_ref()
        .unwrap()
        .series
        .iter()
        .map(|p| (p.time_s, p.ready[0]))
        .collect()
}

/// Most ready replicas within [from, to).
fn peak_ready(series: &[(f64, u32)], from: f64, to: f64) -> u32 {
    let before = series
        .iter()
        .take_while(|(t, _)| *t < from)
        .last()
        .map_or(0, |p| p.1);
    series
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|p| p.1)
        .fold(before, u32::max)
}

/// Ready replicas at time `at`.
fn ready_at(series: &[(f64, u32)], at: f64) -> u32 {
    series
        .iter()
        .take_while(|(t, _)| *t <= at)
        .last()
        .map_or(0, |p| p.1)
}

const RISE_AND_FALL: [f64; 8] = [1.0, 2.0, 5.0, 10.0, 10.0, 5.0, 1.0, 1.0];

/// A diurnal shape, one rate per "hour"; the tests compress an hour into a minute so a day
/// simulates in a blink (cold starts and intervals stay real seconds).
const DAY: [f64; 24] = [
    1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 2.5, 4.0, 6.0, 8.0, 9.0, 9.0, 9.0, 8.0, 8.0, 7.0, 6.0, 5.0, 4.0,
    3.0, 2.5, 2.0, 1.5, 1.0,
];

/// Requests per second one A10G replica serves within the SLO of [`scaled`] on 300/150-token
/// requests (what a capacity profile would give; measured on this stream, about 1.25).
const A10G_RPS: f64 = 1.25;

/// The schedule a planner would make from a perfect forecast of [`DAY`]: enough A10Gs for
/// each window's rate, applied early enough that new replicas are warm when it starts.
fn day_schedule(step_s: f64) -> AutoscaleConfig {
    AutoscaleConfig {
        policy: AutoscalePolicy::Schedule,
        schedule: DAY
            .iter()
            .enumerate()
            .map(|(k, rate)| ScheduleWindow {
                start_s: step_s * k as f64,
                counts: BTreeMap::from([("A10G".to_string(), (rate / A10G_RPS).ceil() as u32)]),
            })
            .collect(),
        schedule_lead_s: 10.0,
        ..AutoscaleConfig::default()
    }
}

#[test]
fn cost_and_attainment_per_policy_on_a_daily_curve() {
    let step_s = 60.0;
    let requests = stepped_stream(step_s, &DAY, 300, 150, 21);
    let n = requests.len();
    let peak_replicas = (9.0 / A10G_RPS).ceil() as u32;
    let mean_rate = DAY.iter().sum::<f64>() / DAY.len() as f64;
    let mean_replicas = (mean_rate / A10G_RPS).round() as u32;
    let policies = [
        (
            format!("static A10G:{peak_replicas} (peak)"),
            peak_replicas,
            AutoscaleConfig::default(),
        ),
        (
            format!("static A10G:{mean_replicas} (mean)"),
            mean_replicas,
            AutoscaleConfig::default(),
        ),
        (
            "reactive (outstanding 32/8)".to_string(),
            1,
            reactive(ScaleMetric::Outstanding, 32.0, 8.0),
        ),
        (
            "hpa (outstanding, target 24)".to_string(),
            1,
            hpa(ScaleMetric::Outstanding, 24.0),
        ),
        (
            "hpa (kv, target 0.5)".to_string(),
            1,
            hpa(ScaleMetric::Kv, 0.5),
        ),
        ("schedule (forecast)".to_string(), 1, day_schedule(step_s)),
    ];
    let mut results = BTreeMap::new();
    for (name, initial, autoscale) in policies {
        let (summary, sink) = run(
            &format!("A10G:{initial}"),
            &scaled(autoscale),
            requests.clone(),
        );
        assert_conserved(&summary, &sink, n);
        let attainment = summary.slo.as_ref().unwrap().attainment;
        let billed = summary.cost.billed_usd;
        let mean_billed = summary
            .autoscale
            .as_ref()
            .map_or(f64::from(initial), |a| a.types[0].mean_billed);
        eprintln!(
            "{name:32} attainment {attainment:.3}  billed ${billed:.3}  mean replicas \
             {mean_billed:.2}  span {:.0} s",
            summary.span_s
        );
        results.insert(name, (attainment, billed));
    }
    let static_peak = results[&format!("static A10G:{peak_replicas} (peak)")];
    let static_mean = results[&format!("static A10G:{mean_replicas} (mean)")];
    // A fleet sized for the peak meets the SLO and pays for it all day; one sized for the
    // mean is cheap and drowns at noon.
    assert!(static_peak.0 > 0.99, "{static_peak:?}");
    assert!(static_mean.0 < 0.5, "{static_mean:?}");
    for (name, &(attainment, billed)) in &results {
        if name.starts_with("static") {
            continue;
        }
        assert!(
            billed < 0.6 * static_peak.1,
            "{name}: ${billed:.3} vs static peak ${:.3}",
            static_peak.1
        );
        assert!(
            attainment > 0.9 && attainment > static_mean.0 + 0.3,
            "{name}: attainment {attainment:.3} vs static mean {:.3}",
            static_mean.0
        );
    }
    // A perfect forecast, applied a cold start early, loses nothing.
    assert!(results["schedule (forecast)"].0 > 0.99, "{results:?}");
}

#[test]
fn hpa_and_reactive_follow_a_rising_rate_and_scale_back_down() {
    let requests = stepped_stream(300.0, &RISE_AND_FALL, 300, 150, 3);
    let n = requests.len();
    for (name, autoscale) in [
        ("hpa outstanding", hpa(ScaleMetric::Outstanding, 24.0)),
        ("hpa kv", hpa(ScaleMetric::Kv, 0.5)),
        (
            "reactive outstanding",
            reactive(ScaleMetric::Outstanding, 32.0, 8.0),
        ),
        ("reactive queue", reactive(ScaleMetric::Queue, 2.0, 0.1)),
    ] {
        let (summary, sink) = run("A10G:1", &scaled(autoscale), requests.clone());
        assert_conserved(&summary, &sink, n);
        let report = summary.autoscale.as_ref().unwrap();
        let series = ready_series(&summary);
        let per_step: Vec<u32> = (0..RISE_AND_FALL.len())
            .map(|k| peak_ready(&series, 300.0 * k as f64, 300.0 * (k + 1) as f64))
            .collect();
        let end = ready_at(&series, f64::INFINITY);
        eprintln!(
            "{name}: peak ready per 300 s step {per_step:?}, {end} at the end; {} started, {} \
             drained, {} evaluations",
            report.replicas_started, report.replicas_drained, report.evaluations
        );
        // 1 → 10 req/s: the fleet grows at least fourfold, step by step...
        assert_eq!(per_step[0], 1, "{name}: {per_step:?}");
        assert!(per_step[2] > per_step[0], "{name}: {per_step:?}");
        assert!(
            per_step[3].max(per_step[4]) >= 4 * per_step[0],
            "{name}: {per_step:?}"
        );
        // ...and once the rate is back at 1 req/s it shrinks to at most two replicas.
        assert!(
            end <= 2 && end < per_step[3],
            "{name}: {per_step:?}, end {end}"
        );
        assert!(report.replicas_drained > 0 && report.replicas_started > 0);
        // Peak counts billed replicas, starting and draining ones too.
        assert!(report.types[0].peak >= series.iter().map(|p| p.1).max().unwrap());
    }
}

#[test]
fn drained_replicas_take_no_new_requests_and_new_ones_serve_only_once_loaded() {
    let requests = stepped_stream(300.0, &RISE_AND_FALL, 300, 150, 8);
    let n = requests.len();
    for autoscale in [
        hpa(ScaleMetric::Outstanding, 24.0),
        reactive(ScaleMetric::Queue, 2.0, 0.1),
    ] {
        let (summary, sink) = run("A10G:1", &scaled(autoscale), requests.clone());
        assert_conserved(&summary, &sink, n);
        let mut drained_with_requests = 0;
        for replica in &summary.replicas {
            if let Some(drain) = replica.drain_s {
                let stopped = replica
                    .stopped_s
                    .expect("a drained replica stops once empty");
                assert!(stopped >= drain, "{replica:?}");
                assert!((replica.billed_s - (stopped - replica.started_s)).abs() < 1e-9);
                drained_with_requests += usize::from(replica.routed > 0);
            }
            assert!(replica.ready_s >= replica.started_s);
        }
        assert!(
            drained_with_requests > 0,
            "no replica was drained after serving"
        );
        for record in &sink.requests {
            assert_eq!(record.status, RequestStatus::Completed);
            let replica = &summary.replicas[record.replica as usize];
            if let Some(drain) = replica.drain_s {
                // Routed at arrival: before (or at the instant of) the drain decision.
                assert!(
                    record.arrival_s <= drain + 1e-9,
                    "{record:?} on {replica:?}"
                );
                assert!(record.completion_s.unwrap() <= replica.stopped_s.unwrap() + 1e-9);
            }
            assert!(
                record.first_scheduled_s.unwrap() >= replica.ready_s - 1e-9,
                "served before its model loaded: {record:?} on {replica:?}"
            );
        }
    }
}

/// One A10G, three from 100 s to 200 s, then one again, under a light steady load.
fn three_window_schedule(load_gbs: f64) -> AutoscaleConfig {
    let window = |start_s: f64, count: u32| ScheduleWindow {
        start_s,
        counts: BTreeMap::from([("A10G".to_string(), count)]),
    };
    AutoscaleConfig {
        policy: AutoscalePolicy::Schedule,
        schedule: vec![window(0.0, 1), window(100.0, 3), window(200.0, 1)],
        load_gbs,
        ..AutoscaleConfig::default()
    }
}

#[test]
fn cold_starts_are_billed_and_cost_integrates_each_billed_life() {
    let requests = stepped_stream(300.0, &[1.0], 300, 150, 4);
    let n = requests.len();
    let weight_bytes = cluster("A10G:1").types[0].instance.weight_bytes;
    let usd_per_hour = cluster("A10G:1").types[0].usd_per_hour;
    let mut cold_starts = Vec::new();
    for load_gbs in [1.0, 4.0] {
        let (summary, sink) = run(
            "A10G:1",
            &scaled(three_window_schedule(load_gbs)),
            requests.clone(),
        );
        assert_conserved(&summary, &sink, n);
        let report = summary.autoscale.as_ref().unwrap();
        let cold_start = weight_bytes / (load_gbs * 1e9);
        assert!((report.types[0].cold_start_s - cold_start).abs() < 1e-9);
        cold_starts.push(report.types[0].cold_start_s);
        assert_eq!(report.replicas_started, 2);
        assert_eq!(report.replicas_drained, 2);
        assert_eq!(summary.replicas.len(), 3);
        for replica in &summary.replicas[1..] {
            assert_eq!(replica.started_s, 100.0);
            assert!(
                (replica.ready_s - (100.0 + cold_start)).abs() < 1e-9,
                "{replica:?}"
            );
        }
        // Two of the three drain at 200 s; each stops once its last request is done.
        let drained: Vec<_> = summary
            .replicas
            .iter()
            .filter(|r| r.drain_s.is_some())
            .collect();
        assert_eq!(drained.len(), 2);
        assert!(drained.iter().all(|r| r.drain_s == Some(200.0)));
        // Cost: each replica's price over its billed life, cold start included...
        let mut billed_s = 0.0;
        for replica in &summary.replicas {
            let until = replica.stopped_s.unwrap_or(summary.span_s);
            assert!((replica.billed_s - (until - replica.started_s)).abs() < 1e-9);
            assert!((replica.cost_usd - usd_per_hour * replica.billed_s / 3600.0).abs() < 1e-12);
            billed_s += replica.billed_s;
        }
        assert!(billed_s >= summary.span_s + 2.0 * 100.0, "{billed_s}");
        assert!((summary.cost.billed_usd - usd_per_hour * billed_s / 3600.0).abs() < 1e-9);
        assert!((summary.types[0].billed_usd - summary.cost.billed_usd).abs() < 1e-12);
        // ...which the replica-count series integrates to the same replica-seconds.
        let mean = report.types[0].mean_billed;
        assert!(
            (mean * summary.span_s - billed_s).abs() < 1e-6 * billed_s,
            "{mean}"
        );
        assert_eq!(report.types[0].peak, 3);
        assert_eq!(report.types[0].final_ready, 1);
        // The static price of the initial fleet is reported beside it.
        assert!((summary.cost.total_usd - usd_per_hour * summary.span_s / 3600.0).abs() < 1e-9);
        assert!(summary.cost.billed_usd > summary.cost.total_usd);
    }
    assert!(
        (cold_starts[0] - 4.0 * cold_starts[1]).abs() < 1e-9,
        "{cold_starts:?}"
    );

    // Without autoscaling, billed and static cost agree and there is no scaling report.
    let (summary, _) = run("A10G:2", &scaled(AutoscaleConfig::default()), requests);
    assert!(summary.autoscale.is_none());
    let relative =
        (summary.cost.billed_usd - summary.cost.total_usd).abs() / summary.cost.total_usd;
    assert!(relative < 1e-12, "{:?}", summary.cost);
}

#[test]
fn limits_bound_every_type() {
    let requests = stepped_stream(300.0, &RISE_AND_FALL, 300, 150, 5);
    let n = requests.len();
    let limits = BTreeMap::from([
        ("L4".to_string(), ScaleLimits { min: 1, max: 2 }),
        ("A10G".to_string(), ScaleLimits { min: 1, max: 3 }),
    ]);
    let autoscale = AutoscaleConfig {
        limits,
        ..hpa(ScaleMetric::Outstanding, 24.0)
    };
    let (summary, sink) = run("L4:1,A10G:1", &scaled(autoscale), requests);
    assert_conserved(&summary, &sink, n);
    let report = summary.autoscale.as_ref().unwrap();
    let names: Vec<&str> = report.types.iter().map(|t| t.instance.as_str()).collect();
    assert_eq!(names, ["L4", "A10G"]);
    let max = [2, 3];
    let mut reached = [0, 0];
    for point in &report.series {
        for t in 0..2 {
            let current = point.ready[t] + point.starting[t];
            assert!((1..=max[t]).contains(&current), "{point:?}");
            reached[t] = reached[t].max(current);
        }
    }
    // 10 req/s needs far more than five replicas: both types hit their ceiling.
    assert_eq!(reached, max);
    assert_eq!((report.types[0].min, report.types[0].max), (1, 2));
}

#[test]
fn scaled_runs_conserve_requests_at_a_horizon_and_the_fast_path_changes_nothing() {
    let requests = stepped_stream(300.0, &RISE_AND_FALL, 300, 150, 6);
    let n = requests.len();
    for autoscale in [
        hpa(ScaleMetric::Utilization, 0.7),
        reactive(ScaleMetric::Kv, 0.8, 0.3),
        three_window_schedule(2.0),
    ] {
        let mut fast = scaled(autoscale);
        fast.sample_interval_s = Some(10.0);
        let slow = SimConfig {
            fast_path: false,
            ..fast.clone()
        };
        let (fast_summary, fast_sink) = run("A10G:1", &fast, requests.clone());
        let (slow_summary, slow_sink) = run("A10G:1", &slow, requests.clone());
        assert_conserved(&fast_summary, &fast_sink, n);
        assert_eq!(fast_sink.requests, slow_sink.requests);
        assert_eq!(fast_sink.samples, slow_sink.samples);
        let (mut a, mut b) = (fast_summary, slow_summary);
        assert!(a.queue_events < b.queue_events);
        a.queue_events = 0;
        b.queue_events = 0;
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );

        // Cut at 20 minutes, mid-peak: the unfinished are in flight, none lost.
        let cut = SimConfig {
            horizon_s: Some(1200.0),
            ..fast.clone()
        };
        let (summary, sink) = run("A10G:1", &cut, requests.clone());
        let arrived = requests.iter().filter(|r| r.arrival_s <= 1200.0).count();
        assert_conserved(&summary, &sink, arrived);
        assert!(summary.requests.in_flight > 0);
        assert_eq!(summary.span_s, 1200.0);
        for replica in &summary.replicas {
            assert!(replica.billed_s <= 1200.0 - replica.started_s + 1e-9);
        }
    }
}

#[test]
fn bad_autoscale_settings_are_clear_errors() {
    let requests = stepped_stream(10.0, &[1.0], 100, 10, 1);
    let err = |autoscale: AutoscaleConfig| {
        let mut sink = VecSink::default();
        simulate(
            &cluster("A10G:1"),
            &scaled(autoscale),
            None,
            requests.clone(),
            &mut sink,
            None,
        )
        .unwrap_err()
        .to_string()
    };
    let mut schedule = three_window_schedule(2.0);
    schedule.schedule[1].counts.insert("H100-SXM".into(), 2);
    let message = err(schedule);
    assert!(
        message.contains("'H100-SXM'") && message.contains("A10G"),
        "{message}"
    );
    // A count outside the type's limits would be clamped, running another fleet than the
    // schedule says.
    let mut schedule = three_window_schedule(2.0);
    schedule.schedule[1].counts.insert("A10G".into(), 100_000);
    let message = err(schedule);
    assert!(
        message.contains("100000 A10G") && message.contains("0 to 64"),
        "{message}"
    );
    let mut schedule = three_window_schedule(2.0);
    schedule.limits = BTreeMap::from([("A10G".to_string(), ScaleLimits { min: 2, max: 8 })]);
    let message = err(schedule);
    assert!(message.contains("2 to 8"), "{message}");
    let message = err(AutoscaleConfig {
        limits: BTreeMap::from([("A10G".to_string(), ScaleLimits { min: 4, max: 2 })]),
        ..hpa(ScaleMetric::Queue, 1.0)
    });
    assert!(message.contains("min 4 is above max 2"), "{message}");
    let message = err(AutoscaleConfig {
        load_gbs: -1.0,
        ..hpa(ScaleMetric::Queue, 1.0)
    });
    assert!(message.contains("load_gbs"), "{message}");
    // Times past the simulator's clock are refused, not wrapped around.
    for (name, config) in [
        (
            "interval_s",
            AutoscaleConfig {
                interval_s: 1e12,
                ..hpa(ScaleMetric::Queue, 1.0)
            },
        ),
        (
            "cooldown_s",
            AutoscaleConfig {
                cooldown_s: 1e12,
                ..reactive(ScaleMetric::Queue, 4.0, 1.0)
            },
        ),
    ] {
        let message = err(config);
        assert!(
            message.contains(name) && message.contains("1e8"),
            "{message}"
        );
    }
}

/// A cold start longer than the simulator's clock (weights loaded at a trickle) leaves the new
/// replicas starting for good; time never wraps around and every request is accounted for.
#[test]
fn an_endless_cold_start_neither_wraps_time_nor_loses_requests() {
    let requests = stepped_stream(100.0, &[1.0, 3.0, 1.0], 300, 150, 9);
    let arrived = requests.len();
    let (summary, sink) = run("A10G:1", &scaled(three_window_schedule(1e-12)), requests);
    assert_conserved(&summary, &sink, arrived);
    let last_arrival = sink
        .requests
        .iter()
        .map(|r| r.arrival_s)
        .fold(0.0, f64::max);
    assert!(
        summary.span_s >= last_arrival,
        "{} < {last_arrival}",
        summary.span_s
    );
    for record in &sink.requests {
        if let (Some(first), Some(done)) = (record.first_token_s, record.completion_s) {
            assert!(record.arrival_s <= first && first <= done, "{record:?}");
        }
    }
}

fn bursty_stream() -> impl Strategy<Value = Vec<Request>> {
    // Quiet and busy stretches, so autoscalers both start and drain replicas.
    proptest::collection::vec((0.0f64..0.6, 1u32..2500, 1u32..500, 0u32..4), 1..300).prop_map(
        |rows| {
            let mut t = 0.0;
            rows.into_iter()
                .enumerate()
                .map(|(i, (gap, input, output, lull))| {
                    t += gap + if lull == 0 { 20.0 } else { 0.0 };
                    Request::new(i as u64, t, input, output)
                })
                .collect()
        },
    )
}

fn any_autoscaler() -> impl Strategy<Value = AutoscaleConfig> {
    let metric = prop::sample::select(ScaleMetric::ALL.to_vec());
    let policy = prop::sample::select(vec![
        AutoscalePolicy::Reactive,
        AutoscalePolicy::Hpa,
        AutoscalePolicy::Schedule,
    ]);
    (policy, metric, 1.0f64..20.0, 0.0f64..30.0, 0.5f64..20.0).prop_map(
        |(policy, metric, interval_s, cooldown_s, load_gbs)| {
            let (_, _, target) = metric.default_thresholds();
            AutoscaleConfig {
                policy,
                metric,
                interval_s,
                cooldown_s,
                hpa_target: Some(target / 4.0),
                load_gbs,
                schedule: (0..6)
                    .map(|k| ScheduleWindow {
                        start_s: 15.0 * f64::from(k),
                        counts: BTreeMap::from([("A10G".to_string(), (k * 7) % 4)]),
                    })
                    .collect(),
                limits: BTreeMap::from([("A10G".to_string(), ScaleLimits { min: 0, max: 4 })]),
                ..AutoscaleConfig::default()
            }
        },
    )
}

fn run_on(cluster: &Cluster, config: &SimConfig, requests: Vec<Request>) -> (Summary, VecSink) {
    let mut sink = VecSink::default();
    let summary = simulate(cluster, config, None, requests, &mut sink, None).unwrap();
    (summary, sink)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Under any autoscaler: every arrival ends completed, rejected or in flight; no request
    /// goes to a replica after its drain or is served before its model loaded; billing never
    /// exceeds a replica's life; and the fast path changes nothing.
    #[test]
    fn autoscaled_runs_conserve_requests_and_respect_replica_lives(
        requests in bursty_stream(),
        autoscale in any_autoscaler(),
        batching in prop::sample::select(vec![BatchingMode::Continuous, BatchingMode::Chunked, BatchingMode::Static]),
        horizon in prop::option::of(5.0f64..80.0),
    ) {
        let options = InstanceOptions { kv_blocks: Some(600), max_model_len: Some(4096), ..InstanceOptions::default() };
        let cluster = cluster_with("A10G:1", &options);
        let mut config = scaled(autoscale);
        config.engine.batching = batching;
        config.horizon_s = horizon;
        config.sample_interval_s = Some(3.0);
        let (summary, sink) = run_on(&cluster, &config, requests.clone());
        let broken = conservation_difference(&requests, horizon, &summary, &sink);
        prop_assert!(broken.is_none(), "{:?}", broken);
        for record in &sink.requests {
            if record.replica < 0 {
                prop_assert_eq!(record.status, RequestStatus::Rejected);
                continue;
            }
            let replica = &summary.replicas[record.replica as usize];
            if let Some(drain) = replica.drain_s {
                prop_assert!(record.arrival_s <= drain + 1e-9);
            }
            if let Some(first) = record.first_scheduled_s {
                prop_assert!(first >= replica.ready_s - 1e-9);
            }
        }
        for replica in &summary.replicas {
            prop_assert!(replica.billed_s <= summary.span_s - replica.started_s + 1e-9);
        }
        let difference = fast_path_difference(&cluster, &config, requests, (&summary, &sink));
        prop_assert!(difference.is_none(), "{:?}", difference);
    }
}

/// Timers due after the last request has finished (a sample an hour out, a schedule window six
/// hours out) change nothing, so the span, and the billing with it, ends with the work.
#[test]
fn timers_after_the_last_request_do_not_stretch_the_span() {
    let requests = stepped_stream(20.0, &[1.0], 300, 150, 3);
    let arrived = requests.len();
    let last_completion = |sink: &VecSink| {
        sink.requests
            .iter()
            .filter_map(|r| r.completion_s)
            .fold(0.0, f64::max)
    };
    let sampled = SimConfig {
        sample_interval_s: Some(3600.0),
        ..scaled(AutoscaleConfig::default())
    };
    let late_window = AutoscaleConfig {
        policy: AutoscalePolicy::Schedule,
        schedule: vec![
            ScheduleWindow {
                start_s: 0.0,
                counts: BTreeMap::from([("A10G".to_string(), 2)]),
            },
            ScheduleWindow {
                start_s: 6.0 * 3600.0,
                counts: BTreeMap::from([("A10G".to_string(), 4)]),
            },
        ],
        ..AutoscaleConfig::default()
    };
    for config in [sampled, scaled(late_window)] {
        let (summary, sink) = run("A10G:2", &config, requests.clone());
        assert_conserved(&summary, &sink, arrived);
        assert_eq!(summary.requests.completed, arrived as u64);
        let end = last_completion(&sink);
        assert!(end > 0.0);
        assert!(
            (summary.span_s - end).abs() < 1e-6,
            "span {} s, last completion {end} s",
            summary.span_s
        );
    }
}

/// A schedule may bring the first replicas of an empty fleet; the window that starts at `t`
/// serves the requests arriving at `t` (a trace's first request arrives at 0). They once met
/// the old, empty fleet and were turned away.
#[test]
fn a_schedule_window_serves_the_requests_that_arrive_as_it_starts() {
    let empty = Cluster::build(
        &sim::parse_spec_types("A10G:0").unwrap(),
        &gpu_models::Catalog::builtin(),
        "Llama-2-7B",
        &InstanceOptions::default(),
        Some("melange-2024"),
    )
    .unwrap();
    let config = scaled(AutoscaleConfig {
        policy: AutoscalePolicy::Schedule,
        schedule: vec![ScheduleWindow {
            start_s: 0.0,
            counts: BTreeMap::from([("A10G".to_string(), 1)]),
        }],
        ..AutoscaleConfig::default()
    });
    let requests: Vec<Request> = (0..3)
        .map(|id| Request::new(id, 0.0, 200, 20))
        .chain((3..6).map(|id| Request::new(id, id as f64, 200, 20)))
        .collect();
    let mut sink = VecSink::default();
    let summary = simulate(&empty, &config, None, requests, &mut sink, None).unwrap();
    assert_conserved(&summary, &sink, 6);
    assert_eq!(summary.requests.completed, 6, "{:?}", summary.requests);
}

/// A type allowed down to zero replicas scales to zero while idle and comes back when requests
/// return: the first ones after the gap are turned away (counted as rejected), the rest served.
#[test]
fn a_type_scaled_to_zero_comes_back_when_requests_return() {
    let requests = stepped_stream(120.0, &[1.0, 0.0, 0.0, 0.0, 1.0], 300, 150, 5);
    let arrived = requests.len();
    let after_gap = requests.iter().filter(|r| r.arrival_s >= 480.0).count();
    assert!(after_gap > 20, "{after_gap} requests after the gap");
    for policy in [
        reactive(ScaleMetric::Outstanding, 4.0, 0.5),
        hpa(ScaleMetric::Outstanding, 4.0),
    ] {
        let config = scaled(AutoscaleConfig {
            limits: BTreeMap::from([("A10G".to_string(), ScaleLimits { min: 0, max: 4 })]),
            ..policy
        });
        let (summary, sink) = run("A10G:1", &config, requests.clone());
        assert_conserved(&summary, &sink, arrived);
        let series = ready_series(&summary);
        assert_eq!(
            ready_at(&series, 470.0),
            0,
            "idle through the gap: {series:?}"
        );
        assert!(
            peak_ready(&series, 480.0, 700.0) >= 1,
            "back after the gap: {series:?}"
        );
        let served_after_gap = sink
            .requests
            .iter()
            .filter(|r| r.arrival_s >= 480.0 && r.status == RequestStatus::Completed)
            .count();
        assert!(
            served_after_gap > after_gap / 2,
            "{served_after_gap} of {after_gap} served after the gap"
        );
    }
}

/// Under autoscaling a type's figures weigh each replica by its billed life: its $/h is the
/// billed cost per hour of span, its busy fraction and KV use billed-time averages.
#[test]
fn per_type_figures_weigh_each_replica_by_its_billed_life() {
    let requests = stepped_stream(100.0, &[1.0, 3.0, 1.0], 300, 150, 7);
    let config = scaled(three_window_schedule(2.0));
    let (summary, _) = run("A10G:1", &config, requests);
    let ty = &summary.types[0];
    let mine: Vec<_> = summary
        .replicas
        .iter()
        .filter(|r| r.instance == ty.instance)
        .collect();
    assert!(
        mine.len() >= 3,
        "the schedule starts replicas: {}",
        mine.len()
    );
    let lives: Vec<f64> = mine.iter().map(|r| r.billed_s).collect();
    assert!(
        lives.iter().any(|&l| l < summary.span_s * 0.9),
        "some replica lives less than the span: {lives:?}"
    );
    let billed_s: f64 = lives.iter().sum();
    let busy: f64 = mine
        .iter()
        .map(|r| r.busy_fraction * r.billed_s)
        .sum::<f64>()
        / billed_s;
    let kv: f64 = mine.iter().map(|r| r.mean_kv_use * r.billed_s).sum::<f64>() / billed_s;
    assert!(
        (ty.busy_fraction - busy).abs() < 1e-12,
        "{} vs {busy}",
        ty.busy_fraction
    );
    assert!(
        (ty.mean_kv_use - kv).abs() < 1e-12,
        "{} vs {kv}",
        ty.mean_kv_use
    );
    let per_hour = ty.billed_usd / (summary.span_s / 3600.0);
    assert!(
        (ty.usd_per_hour - per_hour).abs() < 1e-9,
        "{} vs {per_hour}",
        ty.usd_per_hour
    );
    // Fewer replica-hours than every replica that ran kept for the whole span.
    let price = ty.billed_usd / (billed_s / 3600.0);
    assert!(ty.usd_per_hour < price * mine.len() as f64 - 1e-9);
}
