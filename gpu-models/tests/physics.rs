//! The latency and memory models make physical sense.

use gpu_models::{BatchSummary, Catalog, FitError, Instance, InstanceOptions, WeightDtype};

fn instance(model: &str, gpu: &str, tp: u32) -> Instance {
    Instance::from_catalog(
        &Catalog::builtin(),
        model,
        gpu,
        tp,
        &InstanceOptions::default(),
    )
    .expect("known names")
    .expect("fits")
}

#[test]
fn decode_step_is_faster_on_bigger_gpus() {
    let h100 = instance("Llama-2-7B", "H100-SXM", 1).decode_step_s(32, 1024);
    let a100 = instance("Llama-2-7B", "A100-80GB", 1).decode_step_s(32, 1024);
    let a10g = instance("Llama-2-7B", "A10G", 1).decode_step_s(32, 1024);
    assert!(h100 < a100, "H100 {h100} should beat A100 {a100}");
    assert!(a100 < a10g, "A100 {a100} should beat A10G {a10g}");
}

#[test]
fn time_grows_with_batch_tokens_and_context() {
    let inst = instance("Llama-2-7B", "A100-80GB", 1);
    let mut last = 0.0;
    for batch in [1, 2, 8, 32, 128] {
        let t = inst.decode_step_s(batch, 1024);
        assert!(t > last, "decode step must grow with batch: {batch} -> {t}");
        last = t;
    }
    let mut last = 0.0;
    for context in [128, 1024, 4000] {
        let t = inst.decode_step_s(32, context);
        assert!(
            t > last,
            "decode step must grow with context: {context} -> {t}"
        );
        last = t;
    }
    let mut last = 0.0;
    for tokens in [16, 256, 1024, 4096] {
        let t = inst.prefill_s(tokens);
        assert!(t > last, "prefill must grow with tokens: {tokens} -> {t}");
        last = t;
    }
    // Long prompts are compute-bound: doubling tokens at least nearly doubles the time.
    assert!(inst.prefill_s(4096) > 1.8 * inst.prefill_s(2048));
}

#[test]
fn chunked_prefill_with_context_costs_more_attention() {
    let inst = instance("Llama-2-7B", "A100-80GB", 1);
    let mut fresh = BatchSummary::default();
    fresh.add_prefill(512, 0, false);
    let mut late = BatchSummary::default();
    late.add_prefill(512, 3000, true);
    assert!(inst.latency.iteration_s(&late) > inst.latency.iteration_s(&fresh));
}

#[test]
fn llama2_70b_does_not_fit_one_a10g() {
    let result = Instance::from_catalog(
        &Catalog::builtin(),
        "Llama-2-70B",
        "A10G",
        1,
        &InstanceOptions::default(),
    )
    .unwrap();
    match result {
        Err(FitError::WeightsExceedMemory {
            weights_gb,
            usable_gb,
        }) => {
            assert!(weights_gb > 130.0 && usable_gb < 24.0);
        }
        other => panic!("expected WeightsExceedMemory, got {other:?}"),
    }
}

#[test]
fn llama2_7b_on_a100_80gb_holds_about_1e5_kv_tokens() {
    let inst = instance("Llama-2-7B", "A100-80GB", 1);
    assert!(
        (80_000..150_000).contains(&inst.kv_tokens),
        "{} KV tokens",
        inst.kv_tokens
    );
    assert_eq!(inst.kv_tokens, inst.kv_blocks * 16);
}

#[test]
fn no_room_for_a_max_length_request_is_reported() {
    // Llama-3.1-8B's 128k context does not fit beside its weights on a 24 GB L4.
    let result = Instance::from_catalog(
        &Catalog::builtin(),
        "Llama-3.1-8B",
        "L4",
        1,
        &InstanceOptions::default(),
    )
    .unwrap();
    assert!(matches!(result, Err(FitError::NoRoomForMaxRequest { .. })));
    // Capping the model length makes it fit.
    let capped = InstanceOptions {
        max_model_len: Some(8192),
        ..InstanceOptions::default()
    };
    let fits = Instance::from_catalog(&Catalog::builtin(), "Llama-3.1-8B", "L4", 1, &capped)
        .unwrap()
        .unwrap();
    assert!(fits.kv_tokens >= 8192);
}

#[test]
fn tensor_parallel_halves_compute_less_than_perfectly() {
    let one = instance("Llama-2-13B", "A100-80GB", 1);
    let two = instance("Llama-2-13B", "A100-80GB", 2);
    for (t1, t2) in [
        (one.prefill_s(2048), two.prefill_s(2048)),
        (one.decode_step_s(64, 1024), two.decode_step_s(64, 1024)),
    ] {
        assert!(t2 < t1, "TP=2 should be faster: {t2} vs {t1}");
        assert!(
            t2 > t1 / 2.0,
            "TP=2 cannot be a perfect halving: {t2} vs {t1}"
        );
    }
}

#[test]
fn pinned_kv_blocks_override_the_memory_model() {
    let options = InstanceOptions {
        kv_blocks: Some(1000),
        ..InstanceOptions::default()
    };
    let inst = Instance::from_catalog(&Catalog::builtin(), "Llama-2-7B", "L4", 1, &options)
        .unwrap()
        .unwrap();
    assert_eq!(inst.kv_blocks, 1000);
    assert!(inst.kv_pinned);
}

#[test]
fn fp8_weights_halve_weight_bytes_and_speed_up_decode() {
    let bf16 = instance("Llama-2-7B", "H100-SXM", 1);
    let fp8 = Instance::from_catalog(
        &Catalog::builtin(),
        "Llama-2-7B",
        "H100-SXM",
        1,
        &InstanceOptions {
            dtype: WeightDtype::Fp8,
            ..InstanceOptions::default()
        },
    )
    .unwrap()
    .unwrap();
    assert!((fp8.weight_bytes * 2.0 - bf16.weight_bytes).abs() < 1.0);
    assert!(fp8.kv_tokens > bf16.kv_tokens);
    assert!(fp8.decode_step_s(1, 512) < bf16.decode_step_s(1, 512));
}

#[test]
fn published_parameter_counts_match_the_architecture() {
    for model in Catalog::builtin().models() {
        let counted = model.architecture_params();
        let relative = (counted - model.params).abs() / model.params;
        assert!(
            relative < 0.01,
            "{}: counted {counted:.4e} vs published {:.4e}",
            model.name,
            model.params
        );
    }
}

#[test]
fn every_builtin_fact_has_a_source() {
    let catalog = Catalog::builtin();
    for gpu in catalog.gpus() {
        assert!(gpu.source.len() > 10, "{} lacks a source", gpu.name);
        assert!(!gpu.efficiency.provenance.is_empty());
    }
    for model in catalog.models() {
        assert!(model.source.contains("config.json"), "{}", model.name);
    }
    for book in catalog.price_books() {
        for (gpu, price) in &book.prices {
            assert!(price.source.len() > 5, "{}/{gpu} lacks a source", book.name);
            assert!(
                catalog.gpu(gpu).is_ok(),
                "{}/{gpu} prices an unknown GPU",
                book.name
            );
        }
    }
    let melange = catalog.price_book(Some("melange-2024")).unwrap();
    for (gpu, usd) in [
        ("L4", 0.70),
        ("A10G", 1.01),
        ("A100-80GB", 3.67),
        ("H100", 7.516),
    ] {
        let name = &catalog.gpu(gpu).unwrap().name;
        assert_eq!(melange.usd_per_gpu_hour(name), Some(usd));
    }
}

#[test]
fn overlap_lies_between_max_and_sum_and_the_fast_path_matches_the_exact_one() {
    let catalog = Catalog::builtin();
    let model = catalog.model("Llama-2-70B").unwrap();
    for k in [1.0, 1.5, 2.0, 2.198, 2.556, 4.0] {
        let mut gpu = catalog.gpu("A100-80GB").unwrap().clone();
        gpu.efficiency.overlap_exponent = k;
        let roofline = gpu_models::Roofline::new(model, &gpu, 2, WeightDtype::Bf16);
        let mut additive = gpu.clone();
        additive.efficiency.overlap_exponent = 1.0;
        let sum = gpu_models::Roofline::new(model, &additive, 2, WeightDtype::Bf16);
        // Decode batches (memory-bound) through long prefills (compute-bound), and the mixed
        // batches in between where overlap matters most.
        for (prompt, decodes) in [
            (0u32, 1u32),
            (0, 64),
            (64, 8),
            (512, 0),
            (512, 32),
            (8192, 0),
        ] {
            let mut batch = BatchSummary::default();
            if prompt > 0 {
                batch.add_prefill(prompt, 0, true);
            }
            for _ in 0..decodes {
                batch.add_decode(1024);
            }
            let exact = roofline.iteration_s_exact(&batch);
            let fast = roofline.iteration_s(&batch);
            let tolerance = if k >= 2.0 { 1e-6 } else { 2e-3 };
            assert!(
                (fast - exact).abs() <= tolerance * exact,
                "k {k}, prompt {prompt}, decodes {decodes}: {fast} vs {exact}"
            );
            let parts = roofline.breakdown(&batch);
            assert!((parts.total_s() - exact).abs() <= 1e-12 * exact);
            // Overlap never makes an iteration longer than no overlap, nor shorter than the
            // slower of memory and compute alone.
            let summed = sum.iteration_s_exact(&batch);
            assert!(
                exact <= summed * (1.0 + 1e-12),
                "k {k}: {exact} vs sum {summed}"
            );
            let alone = sum.breakdown(&batch);
            let rest = alone.communication_s + alone.overhead_s;
            assert!(exact >= alone.memory_s.max(alone.compute_s) + rest - 1e-12);
        }
    }
}
