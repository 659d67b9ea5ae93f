//! Shared helpers for the simulator's tests.
#![allow(dead_code)]

use gpu_models::{Catalog, InstanceOptions};
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use rand_pcg::Pcg64;
use sim::{Cluster, SimConfig, Summary, VecSink, parse_spec, simulate};
use workloads::{ArrivalProcess, LengthDist, LengthModel, RateProfile, Request, Workload};

/// A Llama-2-7B cluster from a spec like `A10G:2,A100-80GB:1`.
pub fn cluster(spec: &str) -> Cluster {
    cluster_with(spec, &InstanceOptions::default())
}

/// A Llama-2-7B cluster with instance options.
pub fn cluster_with(spec: &str, options: &InstanceOptions) -> Cluster {
    Cluster::build(
        &parse_spec(spec).unwrap(),
        &Catalog::builtin(),
        "Llama-2-7B",
        options,
        Some("melange-2024"),
    )
    .unwrap()
}

/// Poisson arrivals at `rate` of requests with the given lengths.
pub fn poisson(n: usize, rate: f64, input: u32, output: u32, seed: u64) -> Vec<Request> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let gaps = Exp::new(rate).unwrap();
    let mut t = 0.0;
    (0..n)
        .map(|i| {
            t += gaps.sample(&mut rng);
            Request::new(i as u64, t, input, output)
        })
        .collect()
}

/// Runs and keeps every record.
pub fn run(cluster: &Cluster, config: &SimConfig, requests: Vec<Request>) -> (Summary, VecSink) {
    let mut sink = VecSink::default();
    let summary = simulate(cluster, config, None, requests, &mut sink, None).unwrap();
    (summary, sink)
}

/// Re-runs `config` on `requests` without the fast path and returns what differs from the
/// fast run (`fast`): records, samples, or the summary apart from its queue-event count.
pub fn fast_path_difference(
    cluster: &Cluster,
    config: &SimConfig,
    requests: Vec<Request>,
    fast: (&Summary, &VecSink),
) -> Option<String> {
    let slow = SimConfig {
        fast_path: false,
        ..config.clone()
    };
    let (slow_summary, slow_sink) = run(cluster, &slow, requests);
    let (fast_summary, fast_sink) = fast;
    if fast_sink.requests != slow_sink.requests {
        return Some("request records differ".into());
    }
    if fast_sink.samples != slow_sink.samples {
        return Some("time-series samples differ".into());
    }
    let text = |summary: &Summary| {
        let mut summary = summary.clone();
        summary.queue_events = 0;
        serde_json::to_string(&summary).expect("summary serialises")
    };
    let (fast_text, slow_text) = (text(fast_summary), text(&slow_summary));
    (fast_text != slow_text).then(|| format!("summaries differ:\n{fast_text}\n{slow_text}"))
}

/// Requests of fixed lengths arriving at a piecewise-constant rate (`step_s` per rate).
pub fn stepped_stream(
    step_s: f64,
    rates: &[f64],
    input: u32,
    output: u32,
    seed: u64,
) -> Vec<Request> {
    let profile = RateProfile::new(step_s, rates.to_vec(), false).unwrap();
    let lengths = LengthModel::independent(
        LengthDist::Fixed { tokens: input },
        LengthDist::Fixed { tokens: output },
    )
    .unwrap();
    let workload = Workload::new(ArrivalProcess::Profile(profile), lengths).unwrap();
    workload
        .stream(step_s * rates.len() as f64, seed)
        .unwrap()
        .collect()
}

/// What breaks conservation in a run of `requests` cut at `horizon_s`, if anything: every
/// request arriving by the horizon counted as arrived, each ending completed, rejected or in
/// flight, and each with one record.
pub fn conservation_difference(
    requests: &[Request],
    horizon_s: Option<f64>,
    summary: &Summary,
    sink: &VecSink,
) -> Option<String> {
    let arrived = requests
        .iter()
        .filter(|r| horizon_s.is_none_or(|h| r.arrival_s <= h))
        .count() as u64;
    let c = &summary.requests;
    if c.arrived != arrived {
        return Some(format!("{} counted as arrived, {arrived} did", c.arrived));
    }
    if c.arrived != c.completed + c.rejected + c.in_flight {
        return Some(format!("{c:?} does not add up"));
    }
    if sink.requests.len() as u64 != arrived {
        return Some(format!(
            "{} records for {arrived} requests",
            sink.requests.len()
        ));
    }
    None
}

/// Random request streams for property tests: 1 to `max_requests - 1` requests, gaps below
/// `max_gap_s`, prompts below `max_input` and answers below `max_output` tokens.
pub fn random_stream(
    max_gap_s: f64,
    max_input: u32,
    max_output: u32,
    max_requests: usize,
) -> impl proptest::strategy::Strategy<Value = Vec<Request>> {
    use proptest::prelude::*;
    proptest::collection::vec(
        (0.0f64..max_gap_s, 1u32..max_input, 1u32..max_output),
        1..max_requests,
    )
    .prop_map(|rows| {
        let mut t = 0.0;
        rows.into_iter()
            .enumerate()
            .map(|(i, (gap, input, output))| {
                t += gap;
                Request::new(i as u64, t, input, output)
            })
            .collect()
    })
}
