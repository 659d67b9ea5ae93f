//! Simulator throughput: simulated requests per wall second on a mixed cluster.
//!
//! Run with `cargo bench -p sim`. The CLI's `medley bench` measures the large reference
//! workloads (a one-hour real trace, a one-million-request stream) with peak memory.

use gpu_models::{Catalog, InstanceOptions};
use sim::{Cluster, NullSink, SimConfig, parse_spec, simulate};
use workloads::Request;

fn main() {
    divan::main();
}

fn mixed_cluster() -> Cluster {
    let catalog = Catalog::builtin();
    Cluster::build(
        &parse_spec("L4:2,A10G:2,A100-80GB:1").expect("cluster spec"),
        &catalog,
        "Llama-2-7B",
        &InstanceOptions::default(),
        Some("melange-2024"),
    )
    .expect("cluster builds")
}

fn arena_stream(requests: usize, rate: f64) -> Vec<Request> {
    let preset = workloads::presets::get("arena").expect("arena preset");
    preset
        .stream(rate, requests as f64 / rate, 7)
        .expect("stream")
        .collect()
}

/// Arena-shaped chat at a moderate load, continuous batching (the default engine).
#[divan::bench(args = [2_000, 20_000])]
fn arena_mixed_cluster(bencher: divan::Bencher, requests: usize) {
    let cluster = mixed_cluster();
    let stream = arena_stream(requests, 12.0);
    let config = SimConfig::default();
    bencher
        .counter(divan::counter::ItemsCount::new(requests))
        .with_inputs(|| stream.clone())
        .bench_local_values(|stream| {
            simulate(&cluster, &config, None, stream, &mut NullSink, None).expect("simulates")
        });
}

/// The same stream under the heap-ordered queues and predictors: the policy overhead.
#[divan::bench(args = ["fcfs", "sjf", "srpt", "mlfq", "edf"])]
fn arena_queue_policies(bencher: divan::Bencher, queue: &str) {
    let cluster = mixed_cluster();
    let requests = 20_000;
    let stream = arena_stream(requests, 12.0);
    let config = SimConfig {
        queue: sim::QueueKind::parse(queue).expect("a queue policy"),
        predictor: sim::PredictorKind::Noisy { sigma: 0.5 },
        router: sim::RouterKind::KvAware,
        slo: sim::SloTargets {
            ttft_s: Some(2.0),
            ..sim::SloTargets::default()
        },
        ..SimConfig::default()
    };
    bencher
        .counter(divan::counter::ItemsCount::new(requests))
        .with_inputs(|| stream.clone())
        .bench_local_values(|stream| {
            simulate(&cluster, &config, None, stream, &mut NullSink, None).expect("simulates")
        });
}

/// The same stream under an HPA autoscaler starting from one replica of each type: the cost
/// of evaluations, cold starts and a replica set that grows and shrinks.
#[divan::bench]
fn arena_autoscaled(bencher: divan::Bencher) {
    let cluster = Cluster::build(
        &parse_spec("L4:1,A10G:1,A100-80GB:1").expect("cluster spec"),
        &Catalog::builtin(),
        "Llama-2-7B",
        &InstanceOptions::default(),
        Some("melange-2024"),
    )
    .expect("cluster builds");
    let requests = 20_000;
    let stream = arena_stream(requests, 12.0);
    let config = SimConfig {
        autoscale: sim::AutoscaleConfig {
            policy: sim::AutoscalePolicy::Hpa,
            ..sim::AutoscaleConfig::default()
        },
        ..SimConfig::default()
    };
    bencher
        .counter(divan::counter::ItemsCount::new(requests))
        .with_inputs(|| stream.clone())
        .bench_local_values(|stream| {
            simulate(&cluster, &config, None, stream, &mut NullSink, None).expect("simulates")
        });
}

/// The same stream on a prefill pool and a decode pool with KV transfers between them.
#[divan::bench]
fn arena_disaggregated(bencher: divan::Bencher) {
    let cluster = Cluster::build_disaggregated(
        &parse_spec("A10G:1").expect("prefill spec"),
        &parse_spec("A100-80GB:2").expect("decode spec"),
        &Catalog::builtin(),
        "Llama-2-7B",
        &InstanceOptions::default(),
        Some("melange-2024"),
    )
    .expect("cluster builds");
    let requests = 20_000;
    let stream = arena_stream(requests, 12.0);
    let config = SimConfig::default();
    bencher
        .counter(divan::counter::ItemsCount::new(requests))
        .with_inputs(|| stream.clone())
        .bench_local_values(|stream| {
            simulate(&cluster, &config, None, stream, &mut NullSink, None).expect("simulates")
        });
}
