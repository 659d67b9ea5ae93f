//! Capacity profiling by simulation: answers that follow physics, statuses for what cannot be
//! served, a cache that answers identically, and a found capacity that holds up when simulated.

use gpu_models::{Catalog, InstanceOptions};
use sim::{Cluster, ClusterEntry, EngineConfig, RouterKind, SimConfig};
use solver::{
    BucketLengths, CellStatus, ProfileRequest, ProfileSet, ProfileSettings, ProfileSlo,
    ProfileTarget, SloStat, profile, validate,
};
use workloads::{BucketEdges, Request};

fn edges() -> BucketEdges {
    BucketEdges::new(vec![100, 1000, 16000], vec![100, 500]).expect("valid edges")
}

fn quick_settings() -> ProfileSettings {
    ProfileSettings {
        requests_per_trial: 200,
        replicates: 2,
        tolerance: 0.03,
        ..ProfileSettings::default()
    }
}

fn run(
    gpus: &[&str],
    slo: ProfileSlo,
    settings: &ProfileSettings,
    cache_dir: Option<&std::path::Path>,
) -> (ProfileSet, solver::ProfileRunStats) {
    run_with(
        gpus,
        slo,
        settings,
        cache_dir,
        &BucketLengths::Representative,
        None,
    )
}

/// [`run`] with the lengths to draw from and the buckets to profile.
fn run_with(
    gpus: &[&str],
    slo: ProfileSlo,
    settings: &ProfileSettings,
    cache_dir: Option<&std::path::Path>,
    lengths: &BucketLengths,
    needed: Option<&[Vec<bool>]>,
) -> (ProfileSet, solver::ProfileRunStats) {
    let catalog = Catalog::builtin();
    let targets: Vec<ProfileTarget> = gpus
        .iter()
        .map(|gpu| ProfileTarget {
            gpu: gpu.to_string(),
            tp: 1,
        })
        .collect();
    let edges = edges();
    let request = ProfileRequest {
        catalog: &catalog,
        model: "Llama-2-7B",
        instance_options: &InstanceOptions::default(),
        engine: &EngineConfig::default(),
        price_book: Some("melange-2024"),
        targets: &targets,
        edges: &edges,
        lengths,
        needed,
        slo,
        settings,
        cache_dir,
    };
    profile(&request, &|_| {}).expect("profiles")
}

fn capacity(set: &ProfileSet, instance: &str, bucket: (usize, usize)) -> f64 {
    let table = set
        .types
        .iter()
        .find(|t| t.instance == instance)
        .expect("type profiled");
    table.cells[bucket.0][bucket.1].capacity_rps
}

#[test]
fn capacity_grows_with_a_looser_slo_and_a_faster_gpu() {
    let settings = quick_settings();
    let tight = run(
        &["A10G", "H100-SXM"],
        ProfileSlo::melange(0.04),
        &settings,
        None,
    )
    .0;
    let loose = run(
        &["A10G", "H100-SXM"],
        ProfileSlo::melange(0.12),
        &settings,
        None,
    )
    .0;
    for bucket in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let a10g_tight = capacity(&tight, "A10G", bucket);
        let a10g_loose = capacity(&loose, "A10G", bucket);
        let h100_loose = capacity(&loose, "H100-SXM", bucket);
        assert!(
            a10g_loose > a10g_tight,
            "bucket {bucket:?}: 120 ms ({a10g_loose}) should beat 40 ms ({a10g_tight}) on A10G"
        );
        assert!(
            h100_loose > a10g_loose,
            "bucket {bucket:?}: H100 ({h100_loose}) should beat A10G ({a10g_loose})"
        );
    }
    // Longer outputs take longer per request: fewer of them per second.
    assert!(capacity(&loose, "A10G", (0, 0)) > capacity(&loose, "A10G", (0, 1)));
}

#[test]
fn unservable_buckets_have_zero_capacity_and_say_why() {
    let settings = quick_settings();
    let (set, _) = run(&["A10G"], ProfileSlo::melange(0.12), &settings, None);
    // Llama-2-7B holds 4,096 tokens: the 1,001–16,000 input row's midpoint (8,500) cannot fit.
    for cell in &set.types[0].cells[2] {
        assert_eq!(cell.status, CellStatus::TooLong);
        assert_eq!(cell.capacity_rps, 0.0);
    }
    // A 1 ms TPOT is beyond any GPU even with no queueing.
    let hopeless = ProfileSlo {
        tpot: Some((SloStat::P50, 0.001)),
        ttft: None,
    };
    let (set, _) = run(&["A10G"], hopeless, &settings, None);
    assert_eq!(set.types[0].cells[0][0].status, CellStatus::SloUnattainable);
    assert_eq!(set.types[0].cells[0][0].capacity_rps, 0.0);
    // A model that does not fit the GPU at all is marked unusable, not an error.
    let catalog = Catalog::builtin();
    let targets = [ProfileTarget {
        gpu: "L4".into(),
        tp: 1,
    }];
    let request = ProfileRequest {
        catalog: &catalog,
        model: "Llama-2-70B",
        instance_options: &InstanceOptions::default(),
        engine: &EngineConfig::default(),
        price_book: None,
        targets: &targets,
        edges: &edges(),
        lengths: &BucketLengths::Representative,
        needed: None,
        slo: ProfileSlo::melange(0.12),
        settings: &settings,
        cache_dir: None,
    };
    let (set, stats) = profile(&request, &|_| {}).expect("profiles");
    assert!(set.types[0].unusable.is_some());
    assert_eq!(stats.simulated_cells, 0);
    assert!(set.types[0].tputs().iter().flatten().all(|c| *c == 0.0));
}

#[test]
fn the_cache_answers_identically_and_a_changed_input_misses_it() {
    let dir = std::env::temp_dir().join(format!("medley-profile-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = quick_settings();
    let slo = ProfileSlo::melange(0.12);
    let (first, first_stats) = run(&["A10G"], slo, &settings, Some(&dir));
    assert_eq!(first_stats.cached_cells, 0);
    assert!(first_stats.simulated_cells > 0);
    let (second, second_stats) = run(&["A10G"], slo, &settings, Some(&dir));
    assert_eq!(second_stats.simulated_cells, 0);
    assert_eq!(second_stats.cached_cells, first_stats.simulated_cells);
    assert_eq!(first, second);
    // Without the cache the same seed gives the same answer: the cache stores, it does not invent.
    let (fresh, _) = run(&["A10G"], slo, &settings, None);
    assert_eq!(first, fresh);
    let other_seed = ProfileSettings {
        seed: 99,
        ..settings.clone()
    };
    let (_, stats) = run(&["A10G"], slo, &other_seed, Some(&dir));
    assert_eq!(
        stats.cached_cells, 0,
        "a new seed must not reuse cached cells"
    );
    // The queue order changes what a replica sustains (verification simulates the plan under
    // it), so it is measured under it and is part of the key.
    let shortest_first = ProfileSettings {
        queue: sim::QueueKind::Sjf,
        ..settings.clone()
    };
    let (_, stats) = run(&["A10G"], slo, &shortest_first, Some(&dir));
    assert_eq!(
        stats.cached_cells, 0,
        "another queue order is another profile"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replicates_report_their_spread() {
    let settings = ProfileSettings {
        replicates: 3,
        ..quick_settings()
    };
    let (set, _) = run(&["A10G"], ProfileSlo::melange(0.12), &settings, None);
    let cell = &set.types[0].cells[1][1];
    assert_eq!(cell.status, CellStatus::Profiled);
    assert_eq!(cell.replicate_rps.len(), 3);
    let mean = cell.replicate_rps.iter().sum::<f64>() / 3.0;
    assert!((cell.capacity_rps - mean).abs() < 1e-12);
    assert!(cell.std_error_rps >= 0.0 && cell.std_error_rps < 0.25 * mean);
}

fn poisson_bucket_stream(rate: f64, count: usize, lengths: (u32, u32), seed: u64) -> Vec<Request> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut clock = 0.0;
    (0..count)
        .map(|id| {
            clock += -(1.0 - rng.random::<f64>()).ln() / rate;
            Request::new(id as u64, clock, lengths.0, lengths.1)
        })
        .collect()
}

#[test]
fn a_found_capacity_holds_below_it_and_breaks_well_above_it() {
    let settings = ProfileSettings {
        requests_per_trial: 400,
        replicates: 1,
        ..quick_settings()
    };
    let slo = ProfileSlo::melange(0.06);
    let (set, _) = run(&["A10G"], slo, &settings, None);
    let found = capacity(&set, "A10G", (1, 0));
    assert!(found > 0.0);
    let catalog = Catalog::builtin();
    let cluster = Cluster::build(
        &[ClusterEntry {
            gpu: "A10G".into(),
            count: 1,
            tp: 1,
        }],
        &catalog,
        "Llama-2-7B",
        &InstanceOptions::default(),
        None,
    )
    .expect("fits");
    let lengths = edges().representative(1, 0);
    let config = SimConfig {
        router: RouterKind::RoundRobin,
        ..SimConfig::default()
    };
    // An independent stream (other seed, more requests) checks the answer out of sample.
    let below = validate(
        &cluster,
        None,
        &config,
        &slo,
        &edges(),
        poisson_bucket_stream(0.8 * found, 1500, lengths, 4242),
    )
    .expect("simulates");
    let above = validate(
        &cluster,
        None,
        &config,
        &slo,
        &edges(),
        poisson_bucket_stream(1.5 * found, 1500, lengths, 4242),
    )
    .expect("simulates");
    assert!(
        below.overall_met,
        "80% of capacity should meet the SLO: {below:?}"
    );
    assert!(
        !above.overall_met,
        "150% of capacity should miss the SLO: {above:?}"
    );
}

/// Plans for a mix of two buckets on A10G and A100 with capacities overstated threefold: the
/// first fleet must miss the SLO in simulation, and derating must recover a fleet that meets it
/// at a higher cost than planned.
#[test]
fn verification_catches_overstated_capacities_and_repairs_the_plan() {
    use solver::{
        GpuType, PlanProblem, SolveOptions, VerifySettings, WorkloadClass, plan_and_verify,
    };
    let settings = ProfileSettings {
        requests_per_trial: 300,
        replicates: 1,
        ..quick_settings()
    };
    let slo = ProfileSlo::melange(0.08);
    let (set, _) = run(&["A10G", "A100-80GB"], slo, &settings, None);
    let buckets = [(0usize, 1usize), (1, 0)];
    let overstated: Vec<Vec<f64>> = set
        .types
        .iter()
        .map(|t| {
            buckets
                .iter()
                .map(|&(i, j)| 3.0 * t.cells[i][j].capacity_rps)
                .collect()
        })
        .collect();
    let rate = 12.0;
    let problem = PlanProblem {
        gpu_types: set
            .types
            .iter()
            .map(|t| GpuType::new(t.instance.clone(), t.usd_per_hour))
            .collect(),
        classes: vec![WorkloadClass {
            name: "two buckets".into(),
            request_rate: rate,
            bucket_labels: vec!["in0/out1".into(), "in1/out0".into()],
            bucket_fractions: vec![0.5, 0.5],
            capacity: overstated,
        }],
        slice_factor: 4,
        headroom: 0.0,
    };
    // The workload: Poisson arrivals, half from each bucket's representative lengths.
    let edges = edges();
    let mut requests = Vec::new();
    {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        let mut clock = 0.0;
        for id in 0..3000u64 {
            clock += -(1.0 - rng.random::<f64>()).ln() / rate;
            let (i, j) = buckets[usize::from(rng.random::<bool>())];
            let (input, output) = edges.representative(i, j);
            requests.push(Request::new(id, clock, input, output));
        }
    }
    let catalog = Catalog::builtin();
    let build = |plan: &solver::Plan| {
        let entries: Vec<ClusterEntry> = plan
            .allocations
            .iter()
            .filter(|a| a.instances > 0)
            .map(|a| ClusterEntry {
                gpu: a.gpu_type.clone(),
                count: a.instances,
                tp: 1,
            })
            .collect();
        Cluster::build(
            &entries,
            &catalog,
            "Llama-2-7B",
            &InstanceOptions::default(),
            Some("melange-2024"),
        )
    };
    let mut capacity = set.capacity_table();
    // The router must see the same (overstated) table the planner used.
    for rows in capacity.tputs.values_mut() {
        rows.iter_mut().flatten().for_each(|c| *c *= 3.0);
    }
    let verify = |requests: &[Request]| {
        plan_and_verify(
            &problem,
            &SolveOptions::default(),
            &capacity,
            &slo,
            requests,
            &VerifySettings {
                max_rounds: 12,
                derate_step: 0.7,
                ..VerifySettings::default()
            },
            &build,
        )
        .expect("verification runs")
    };
    let outcome = verify(&requests);
    assert!(
        !outcome.rounds[0].passed,
        "threefold capacities should fail: {outcome}"
    );
    let verified = outcome
        .verified_usd_per_hour
        .unwrap_or_else(|| panic!("derating should find a passing fleet: {outcome}"));
    assert!(verified > outcome.planned_usd_per_hour, "{outcome}");
    let last = outcome.rounds.last().unwrap();
    assert!(last.passed && last.validation.overall_met);
    assert!(last.derating.values().any(|factor| *factor < 1.0));

    // One request longer than any instance holds (Llama-2-7B takes 4,096 tokens): the SLO
    // counts it as never served, which no derating can change, so verification says so after
    // the first round instead of adding GPUs for nothing.
    let mut with_too_long = requests.clone();
    let last_arrival = requests.last().unwrap().arrival_s;
    with_too_long.push(Request::new(3000, last_arrival + 0.1, 9000, 10));
    let outcome = verify(&with_too_long);
    assert_eq!(outcome.rounds.len(), 1, "{outcome}");
    assert_eq!(outcome.rounds[0].validation.rejected, 1);
    assert!(outcome.verified_usd_per_hour.is_none());
    let why = outcome.gave_up.as_deref().unwrap_or_default();
    assert!(why.contains("1 request is too long"), "{outcome}");
}

/// A request no profiled type holds leaves the load tests instead of making the whole bucket
/// too long: one 9,000-token prompt among 2,000-token ones (Llama-2-7B holds 4,096) once took
/// the bucket out of every type's profile, and its load out of the plan.
#[test]
fn a_request_no_type_holds_does_not_make_its_bucket_too_long() {
    let mut pairs = vec![(2000, 50); 9];
    pairs.push((9000, 50));
    let needed = [vec![false, false], vec![false, false], vec![true, false]];
    let profile_with = |pairs: Vec<(u32, u32)>| {
        let lengths = BucketLengths::Sampled(pairs);
        let settings = quick_settings();
        let slo = ProfileSlo::melange(0.12);
        run_with(&["A10G"], slo, &settings, None, &lengths, Some(&needed)).0
    };
    let cell = profile_with(pairs).types[0].cells[2][0].clone();
    assert_eq!(cell.status, CellStatus::Profiled, "{cell:?}");
    assert!(cell.capacity_rps > 0.0);
    // With nothing a type holds, the bucket is still too long.
    let cell = profile_with(vec![(9000, 50); 3]).types[0].cells[2][0].clone();
    assert_eq!(cell.status, CellStatus::TooLong);
}
