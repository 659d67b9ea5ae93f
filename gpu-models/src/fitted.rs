// Efficiency factors fitted by `medley calibrate` (see crate::calibrate). Regenerate with
// `medley calibrate --table ../shared/gpus/splitwise_sim_perf_model.csv --emit-rust`.

static FITTED_A100: std::sync::LazyLock<Efficiency> = std::sync::LazyLock::new(|| Efficiency {
    flops_fraction: 0.8729,
    bandwidth_fraction: 0.7014,
    iteration_overhead_us: 0.0,
    per_sequence_overhead_us: 200.0,
    per_prefill_overhead_us: 0.0,
    allreduce_step_us: 20.67,
    link_fraction: 0.3384,
    provenance: "fitted by medley calibrate to splitwise_sim_perf_model.csv (Llama-2-70B, TP 2 and 4; 205 rows): prefill MAPE 13.2%, decode MAPE 3.1%".to_string(),
});

static FITTED_H100: std::sync::LazyLock<Efficiency> = std::sync::LazyLock::new(|| Efficiency {
    flops_fraction: 0.7355,
    bandwidth_fraction: 0.6338,
    iteration_overhead_us: 1.4,
    per_sequence_overhead_us: 244.8,
    per_prefill_overhead_us: 1.1,
    allreduce_step_us: 13.22,
    link_fraction: 0.2845,
    provenance: "fitted by medley calibrate to splitwise_sim_perf_model.csv (Llama-2-70B, TP 2 and 4; 205 rows): prefill MAPE 14.4%, decode MAPE 1.4%".to_string(),
});

