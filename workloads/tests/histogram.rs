//! Bucket edges, size histograms, the Mélange `workload_distribution` matrix and bucket samplers.

use rand::SeedableRng;
use rand_pcg::Pcg64;
use workloads::histogram::{BucketEdges, BucketSampler, SizeHistogram};
use workloads::{Request, presets};

#[test]
fn melange_edges_give_60_buckets_with_documented_intervals() {
    let edges = BucketEdges::melange();
    assert_eq!(edges.shape(), (10, 6));
    assert_eq!(edges.bucket_of(0, 1), Some((0, 0)));
    assert_eq!(edges.bucket_of(25, 25), Some((0, 0)));
    assert_eq!(edges.bucket_of(26, 26), Some((1, 1)));
    assert_eq!(edges.bucket_of(16_000, 2_000), Some((9, 5)));
    assert_eq!(edges.bucket_of(16_001, 10), None);
    assert_eq!(edges.bucket_of(10, 2_001), None);
    assert_eq!(edges.input_range(1), Some((26, 100)));
    assert_eq!(edges.output_range(5), Some((1001, 2000)));
    assert_eq!(edges.input_range(10), None);
    assert_eq!(edges.representative(0, 0), (13, 13));
    assert_eq!(edges.representative(9, 5), (14_000, 1_500));
    for i in 0..10 {
        for j in 0..6 {
            let (input, output) = edges.representative(i, j);
            assert_eq!(edges.bucket_of(input, output), Some((i, j)));
        }
    }
    assert!(BucketEdges::new(vec![10, 5], vec![1]).is_err());
    assert!(BucketEdges::new(vec![], vec![1]).is_err());
}

#[test]
fn overflow_is_counted_not_dropped_and_fractions_sum_to_one() {
    let requests = vec![
        Request::new(0, 0.0, 10, 10),
        Request::new(1, 0.0, 10, 10),
        Request::new(2, 0.0, 3000, 300),
        Request::new(3, 0.0, 20_000, 5),
        Request::new(4, 0.0, 20_000, 5_000),
    ];
    let histogram = SizeHistogram::from_requests(BucketEdges::melange(), &requests);
    assert_eq!(histogram.counts[0][0], 2);
    assert_eq!(histogram.counts[6][3], 1);
    assert_eq!(histogram.in_range(), 3);
    assert_eq!(histogram.overflow, 2);
    assert_eq!(histogram.overflow_input, 2);
    assert_eq!(histogram.overflow_output, 1);
    assert_eq!(histogram.total(), 5);
    let sum: f64 = histogram.fractions().iter().flatten().sum();
    assert!((sum - 1.0).abs() < 1e-12);

    let json = histogram.melange_json();
    let matrix = json["workload_distribution"].as_array().unwrap();
    assert_eq!(matrix.len(), 10);
    assert!(matrix.iter().all(|row| row.as_array().unwrap().len() == 6));
    assert!((matrix[0][0].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(json["overflow_requests"], 2);

    let table = histogram.to_string();
    assert!(
        table.contains("16001") || table.contains("overflow"),
        "{table}"
    );
    assert!(
        table.contains("0-25") && table.contains("1001-2000"),
        "{table}"
    );
}

#[test]
fn empty_histogram_has_zero_fractions() {
    let histogram = SizeHistogram::new(BucketEdges::melange());
    assert!(histogram.fractions().iter().flatten().all(|f| *f == 0.0));
}

#[test]
fn bucket_sampler_draws_only_inside_its_bucket() {
    let edges = BucketEdges::melange();
    let preset = presets::get("azure-conv-2023").unwrap();
    let mut rng = Pcg64::seed_from_u64(1);
    let sampler =
        BucketSampler::from_model(&preset.lengths, &edges, (5, 2), 50_000, &mut rng).unwrap();
    assert!(sampler.pool_size() > 100);
    for request in sampler.batch(500, &mut rng) {
        assert_eq!(
            edges.bucket_of(request.input_tokens, request.output_tokens),
            Some((5, 2))
        );
    }
    // Azure conv never produces a 12k–16k prompt with a 1k–2k answer.
    assert!(BucketSampler::from_model(&preset.lengths, &edges, (9, 5), 10_000, &mut rng).is_err());
    assert!(BucketSampler::from_model(&preset.lengths, &edges, (10, 0), 10, &mut rng).is_err());

    let pairs = vec![(30, 30), (40, 50), (5000, 10)];
    let from_trace = BucketSampler::from_pairs(pairs, &edges, (1, 1)).unwrap();
    assert_eq!(from_trace.pool_size(), 2);
    let drawn = from_trace.sample(&mut rng);
    assert!(drawn == (30, 30) || drawn == (40, 50));
}
