// Efficiency factors fitted by `medley calibrate` (see crate::calibrate). Regenerate with
// `medley calibrate --table ../shared/gpus/splitwise_sim_perf_model.csv --emit-rust`.

static FITTED_A100: std::sync::LazyLock<Efficiency> = std::sync::LazyLock::new(|| Efficiency {
    flops_fraction: 0.6712,
    bandwidth_fraction: 0.6442,
    iteration_overhead_us: 0.2,
    per_sequence_overhead_us: 309.7,
    per_prefill_overhead_us: 2000.0,
    allreduce_step_us: 18.50,
    link_fraction: 0.3224,
    overlap_exponent: 2.198,
    provenance: "fitted by medley calibrate to splitwise_sim_perf_model.csv (Llama-2-70B, TP 2 and 4; 205 rows): prefill MAPE 7.3%, decode MAPE 3.1%".to_string(),
});

static FITTED_H100: std::sync::LazyLock<Efficiency> = std::sync::LazyLock::new(|| Efficiency {
    flops_fraction: 0.5293,
    bandwidth_fraction: 0.6303,
    iteration_overhead_us: 0.0,
    per_sequence_overhead_us: 296.1,
    per_prefill_overhead_us: 0.0,
    allreduce_step_us: 13.14,
    link_fraction: 0.3618,
    overlap_exponent: 2.556,
    provenance: "fitted by medley calibrate to splitwise_sim_perf_model.csv (Llama-2-70B, TP 2 and 4; 205 rows): prefill MAPE 5.5%, decode MAPE 1.4%".to_string(),
});
