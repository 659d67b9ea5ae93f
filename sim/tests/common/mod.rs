//! Shared helpers for the simulator's tests.
#![allow(dead_code)]

use gpu_models::{Catalog, InstanceOptions};
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use rand_pcg::Pcg64;
use sim::{Cluster, SimConfig, Summary, VecSink, parse_spec, simulate};
use workloads::Request;

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
