//! Generated streams match their targets statistically. Every tolerance is 5 standard errors,
//! computed from the sample size and the target distribution's variance; seeds are fixed.

use rand::SeedableRng;
use rand_pcg::Pcg64;
use workloads::arrivals::{ArrivalProcess, RateProfile};
use workloads::lengths::{LengthDist, LengthModel, QuantileTable};
use workloads::presets;
use workloads::{Request, Workload};

const Z: f64 = 5.0;

fn gaps(process: &ArrivalProcess, count: usize, seed: u64) -> Vec<f64> {
    let times: Vec<f64> = process
        .times(Pcg64::seed_from_u64(seed))
        .unwrap()
        .take(count)
        .collect();
    let mut previous = 0.0;
    times
        .iter()
        .map(|t| {
            let gap = t - previous;
            previous = *t;
            gap
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Checks the mean gap (1/rate) and the second moment E[g²] (which fixes the CV) of a renewal
/// process against gamma(shape, scale) moments: E[g^k] = scale^k · shape(shape+1)…(shape+k−1).
fn check_gamma_gaps(process: &ArrivalProcess, shape: f64, rate: f64, seed: u64) {
    let n = 200_000;
    let gaps = gaps(process, n, seed);
    let scale = 1.0 / (rate * shape);
    let rising = |k: i32| (0..k).map(|i| shape + f64::from(i)).product::<f64>() * scale.powi(k);
    let (m1, m2, m4) = (rising(1), rising(2), rising(4));
    let sample_m1 = mean(&gaps);
    let sample_m2 = mean(&gaps.iter().map(|g| g * g).collect::<Vec<_>>());
    let tol_m1 = Z * ((m2 - m1 * m1) / n as f64).sqrt();
    let tol_m2 = Z * ((m4 - m2 * m2) / n as f64).sqrt();
    assert!(
        (sample_m1 - m1).abs() < tol_m1,
        "mean gap {sample_m1} vs {m1} ± {tol_m1}"
    );
    assert!(
        (sample_m2 - m2).abs() < tol_m2,
        "E[g²] {sample_m2} vs {m2} ± {tol_m2}"
    );
    let cv = (sample_m2 / (sample_m1 * sample_m1) - 1.0).sqrt();
    println!(
        "rate {rate}, shape {shape}: mean gap {sample_m1:.5} (target {m1:.5}), CV {cv:.4} (target {:.4})",
        (1.0 / shape).sqrt()
    );
}

#[test]
fn poisson_gaps_have_the_rate_and_cv_one() {
    check_gamma_gaps(&ArrivalProcess::Poisson { rate_rps: 4.0 }, 1.0, 4.0, 1);
}

#[test]
fn gamma_gaps_have_the_rate_and_cv() {
    check_gamma_gaps(
        &ArrivalProcess::Gamma {
            rate_rps: 10.0,
            cv: 2.0,
        },
        0.25,
        10.0,
        2,
    );
    check_gamma_gaps(
        &ArrivalProcess::Gamma {
            rate_rps: 3.0,
            cv: 0.5,
        },
        4.0,
        3.0,
        3,
    );
}

#[test]
fn poisson_count_in_a_window_matches_the_rate() {
    let rate = 50.0;
    let duration = 2_000.0;
    let workload = Workload::new(
        ArrivalProcess::Poisson { rate_rps: rate },
        LengthModel::independent(
            LengthDist::Fixed { tokens: 10 },
            LengthDist::Fixed { tokens: 5 },
        )
        .unwrap(),
    )
    .unwrap();
    let count = workload.stream(duration, 9).unwrap().count() as f64;
    let expected = rate * duration;
    assert!(
        (count - expected).abs() < Z * expected.sqrt(),
        "{count} vs {expected}"
    );
}

#[test]
fn constant_arrivals_are_evenly_spaced() {
    let times: Vec<f64> = ArrivalProcess::Constant { rate_rps: 4.0 }
        .times(Pcg64::seed_from_u64(0))
        .unwrap()
        .take(5)
        .collect();
    assert_eq!(times, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
}

#[test]
fn on_off_arrivals_fall_only_in_on_phases_at_the_on_rate() {
    let process = ArrivalProcess::OnOff {
        on_rate_rps: 20.0,
        on_s: 10.0,
        off_s: 30.0,
    };
    let times: Vec<f64> = process
        .times(Pcg64::seed_from_u64(4))
        .unwrap()
        .take_while(|t| *t < 40_000.0)
        .collect();
    assert!(
        times.iter().all(|t| t % 40.0 <= 10.0),
        "an arrival in an off phase"
    );
    // 1,000 periods × 10 s on × 20 req/s.
    let expected = 200_000.0;
    assert!(
        (times.len() as f64 - expected).abs() < Z * expected.sqrt(),
        "{} vs {expected}",
        times.len()
    );
    assert_eq!(process.mean_rate_rps(), 5.0);
}

#[test]
fn profile_arrivals_follow_each_step_rate() {
    let profile = RateProfile::per_minute_counts(&[600.0, 60.0, 0.0, 1800.0]).unwrap();
    let process = ArrivalProcess::Profile(RateProfile {
        repeat: true,
        ..profile
    });
    let times: Vec<f64> = process
        .times(Pcg64::seed_from_u64(5))
        .unwrap()
        .take_while(|t| *t < 240.0 * 100.0)
        .collect();
    let mut per_step = [0.0f64; 4];
    for t in &times {
        per_step[((t / 60.0) as usize) % 4] += 1.0;
    }
    for (step, expected_per_cycle) in [600.0f64, 60.0, 0.0, 1800.0].into_iter().enumerate() {
        let expected = expected_per_cycle * 100.0;
        let tol = Z * expected.sqrt();
        assert!(
            (per_step[step] - expected).abs() <= tol,
            "step {step}: {} vs {expected} ± {tol}",
            per_step[step]
        );
    }
}

#[test]
fn a_non_repeating_profile_that_ends_at_zero_ends_the_stream() {
    let process = ArrivalProcess::Profile(RateProfile::new(10.0, vec![5.0, 0.0], false).unwrap());
    let times: Vec<f64> = process.times(Pcg64::seed_from_u64(6)).unwrap().collect();
    assert!(times.iter().all(|t| *t < 10.0));
    assert!(!times.is_empty());
}

#[test]
fn daily_curve_needs_24_hours() {
    assert!(RateProfile::daily_curve(&[1.0; 23]).is_err());
    assert!(
        (RateProfile::daily_curve(&[2.0; 24])
            .unwrap()
            .mean_rate_rps()
            - 2.0)
            .abs()
            < 1e-12
    );
}

fn check_length_mean(dist: &LengthDist, seed: u64) {
    let n = 200_000;
    let mut rng = Pcg64::seed_from_u64(seed);
    let sample: Vec<f64> = (0..n).map(|_| f64::from(dist.sample(&mut rng))).collect();
    // Rounding to whole tokens moves the mean by at most half a token.
    let tol = Z * (dist.variance() / n as f64).sqrt() + 0.5;
    let got = mean(&sample);
    assert!(
        (got - dist.mean()).abs() < tol,
        "{dist:?}: mean {got} vs {} ± {tol}",
        dist.mean()
    );
}

#[test]
fn length_distributions_match_their_means() {
    check_length_mean(&LengthDist::Uniform { min: 10, max: 1000 }, 1);
    check_length_mean(
        &LengthDist::Normal {
            mean: 500.0,
            std_dev: 100.0,
        },
        2,
    );
    check_length_mean(&LengthDist::lognormal_with_mean(300.0, 0.8).unwrap(), 3);
    check_length_mean(&LengthDist::Zipf { n: 1000, s: 1.2 }, 4);
    check_length_mean(
        &LengthDist::Quantiles(
            QuantileTable::new(&[(0.0, 10.0), (0.5, 100.0), (0.9, 1000.0), (1.0, 4000.0)]).unwrap(),
        ),
        5,
    );
    check_length_mean(
        &LengthDist::Empirical(std::sync::Arc::new(vec![1, 5, 100, 7000])),
        6,
    );
    let mut rng = Pcg64::seed_from_u64(7);
    assert!((0..100).all(|_| LengthDist::Fixed { tokens: 42 }.sample(&mut rng) == 42));
}

#[test]
fn quantile_tables_reject_bad_points() {
    assert!(QuantileTable::new(&[(0.0, 5.0)]).is_err());
    assert!(QuantileTable::new(&[(0.1, 5.0), (1.0, 6.0)]).is_err());
    assert!(QuantileTable::new(&[(0.0, 5.0), (1.0, 4.0)]).is_err());
    assert!(QuantileTable::new(&[(0.0, f64::NAN), (1.0, 4.0)]).is_err());
    let table = QuantileTable::new(&[(0.0, 0.0), (0.5, 10.0), (1.0, 30.0)]).unwrap();
    assert_eq!(table.quantile(0.25), 5.0);
    assert_eq!(table.quantile(0.75), 20.0);
    assert_eq!(table.mean(), 0.5 * 5.0 + 0.5 * 20.0);
}

#[test]
fn joint_pairs_keep_their_coupling() {
    let model = LengthModel::pairs(vec![(100, 1), (1, 100)]).unwrap();
    let mut rng = Pcg64::seed_from_u64(8);
    for _ in 0..1000 {
        let pair = model.sample(&mut rng);
        assert!(pair == (100, 1) || pair == (1, 100));
    }
}

#[test]
fn lengths_resampled_from_a_trace_come_from_its_rows() {
    let trace = vec![Request::new(0, 0.0, 7, 70), Request::new(1, 1.0, 9000, 3)];
    let model = LengthModel::from_requests(&trace).unwrap();
    let mut rng = Pcg64::seed_from_u64(10);
    let draws: Vec<(u32, u32)> = (0..1000).map(|_| model.sample(&mut rng)).collect();
    assert!(draws.iter().all(|d| *d == (7, 70) || *d == (9000, 3)));
    // 1000 fair draws: the count of one pair is within 5 standard errors of 500.
    let first = draws.iter().filter(|d| **d == (7, 70)).count() as f64;
    assert!(
        (first - 500.0).abs() < Z * (1000.0f64 * 0.25).sqrt(),
        "{first}"
    );
    assert!(LengthModel::from_requests(&[]).is_err());
}

#[test]
fn mixture_matches_its_weighted_mean() {
    let short = LengthModel::independent(
        LengthDist::Fixed { tokens: 100 },
        LengthDist::Fixed { tokens: 200 },
    )
    .unwrap();
    let long = LengthModel::independent(
        LengthDist::Fixed { tokens: 4000 },
        LengthDist::Fixed { tokens: 300 },
    )
    .unwrap();
    let model = LengthModel::mixture(vec![(8.0, short), (2.0, long)]).unwrap();
    let n = 100_000;
    let mut rng = Pcg64::seed_from_u64(9);
    let long_count = (0..n).filter(|_| model.sample(&mut rng).0 == 4000).count() as f64;
    let tol = Z * (n as f64 * 0.2 * 0.8).sqrt();
    assert!((long_count - 0.2 * n as f64).abs() < tol, "{long_count}");
    let ((mean_input, _), (mean_output, _)) = model.moments();
    assert!((mean_input - (0.8 * 100.0 + 0.2 * 4000.0)).abs() < 1e-9);
    assert!((mean_output - 220.0).abs() < 1e-9);
}

#[test]
fn same_seed_same_stream_other_seed_other_stream() {
    let preset = presets::get("mixed").unwrap();
    let a: Vec<Request> = preset.stream(5.0, 100.0, 11).unwrap().collect();
    let b: Vec<Request> = preset.stream(5.0, 100.0, 11).unwrap().collect();
    let c: Vec<Request> = preset.stream(5.0, 100.0, 12).unwrap().collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.windows(2).all(|w| w[1].arrival_s >= w[0].arrival_s));
    assert!(a.iter().all(|r| r.arrival_s < 100.0));
}

#[test]
fn bad_parameters_are_errors() {
    assert!(
        ArrivalProcess::Poisson { rate_rps: 0.0 }
            .validate()
            .is_err()
    );
    assert!(
        ArrivalProcess::Gamma {
            rate_rps: 1.0,
            cv: -1.0
        }
        .validate()
        .is_err()
    );
    assert!(RateProfile::new(60.0, vec![0.0, 0.0], true).is_err());
    // Rates past one arrival per 100 ns: arrivals would pile onto the same nanoseconds, and a
    // run would grow without bound (1e300 req/s once filled gigabytes).
    for rate_rps in [1e300, 2e7] {
        assert!(ArrivalProcess::Poisson { rate_rps }.validate().is_err());
        assert!(RateProfile::new(60.0, vec![1.0, rate_rps], true).is_err());
    }
    assert!(ArrivalProcess::Poisson { rate_rps: 1e7 }.validate().is_ok());
    assert!(
        presets::get("arena")
            .unwrap()
            .stream(f64::NAN, 10.0, 0)
            .is_err()
    );
    assert!(presets::get("arena").unwrap().stream(1.0, -1.0, 0).is_err());
    assert!(LengthModel::mixture(vec![]).is_err());
    let err = presets::get("nope").unwrap_err().to_string();
    assert!(err.contains("azure-conv-2023"), "{err}");
}
