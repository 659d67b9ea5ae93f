//! End-to-end tests of the catalog commands: `medley gpus`, `models`, `prices`, `instance`,
//! `calibrate`, and `--catalog FILE` overlays (good and bad).

mod common;

use common::{TempDir, assert_close, count, fails, num, succeeds, succeeds_json};
use serde_json::Value;

/// The built-in GPU types, in catalog order (gpu-models/src/gpu.rs).
const BUILTIN_GPUS: [&str; 12] = [
    "T4",
    "L4",
    "A10G",
    "V100-16GB",
    "A100-40GB",
    "A100-80GB",
    "L40S",
    "H100-SXM",
    "H100-PCIe",
    "H200",
    "MI300X",
    "B200",
];

/// Bytes per 16-bit value (BF16 weights and KV cache).
const BF16_BYTES: f64 = 2.0;

/// Tokens per KV-cache block (vLLM's page size, which medley follows).
const BLOCK_TOKENS: u64 = 16;

fn find<'a>(items: &'a Value, name: &str) -> &'a Value {
    items
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
}

fn gpu_price(gpus_json: &Value, gpu: &str) -> Option<f64> {
    find(&gpus_json["gpus"], gpu)["usd_per_gpu_hour"].as_f64()
}

/// KV-cache bytes per token of a model from `medley models --json`: K and V for every layer
/// and KV head, BF16.
fn kv_bytes_per_token(model: &Value) -> f64 {
    2.0 * num(&model["layers"], "layers")
        * num(&model["kv_heads"], "kv_heads")
        * num(&model["head_dim"], "head_dim")
        * BF16_BYTES
}

fn instance_json(args: &[&str]) -> Value {
    let mut full = vec!["instance"];
    full.extend_from_slice(args);
    full.push("--json");
    succeeds_json(full)
}

#[test]
fn gpus_lists_the_twelve_builtin_types_with_facts_and_sources() {
    let out = succeeds_json(["gpus", "--json"]);
    assert_eq!(out["price_book"], "hyperscaler", "the default price book");
    let names: Vec<&str> = out["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BUILTIN_GPUS);
    for gpu in out["gpus"].as_array().unwrap() {
        let name = gpu["name"].as_str().unwrap();
        for key in ["mem_gb", "mem_bw_gbs", "dense_tflops", "tdp_w"] {
            assert!(num(&gpu[key], key) > 0.0, "{name}: {key} = {}", gpu[key]);
        }
        assert!(
            !gpu["source"].as_str().unwrap_or("").is_empty(),
            "{name} has no source"
        );
        assert!(
            !gpu["efficiency"]["provenance"]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "{name} has no latency-factor provenance"
        );
        // The hyperscaler book prices every built-in type.
        assert!(gpu_price(&out, name).is_some_and(|p| p > 0.0), "{name}");
    }
    // Datasheet memory sizes (NVIDIA product briefs).
    for (gpu, mem_gb) in [
        ("L4", 24.0),
        ("A10G", 24.0),
        ("A100-80GB", 80.0),
        ("H100-SXM", 80.0),
    ] {
        assert_eq!(
            num(&find(&out["gpus"], gpu)["mem_gb"], gpu),
            mem_gb,
            "{gpu}"
        );
    }

    let text = succeeds(["gpus"]);
    for name in BUILTIN_GPUS {
        assert!(text.contains(name), "table lacks {name}:\n{text}");
    }
}

#[test]
fn gpus_with_the_melange_book_show_melange_table_one_prices() {
    let out = succeeds_json(["gpus", "--prices", "melange-2024", "--json"]);
    assert_eq!(out["price_book"], "melange-2024");
    // Griggs et al. 2024 (arXiv 2404.14527), Table 1.
    assert_eq!(gpu_price(&out, "L4"), Some(0.70));
    assert_eq!(gpu_price(&out, "A10G"), Some(1.01));
    assert_eq!(gpu_price(&out, "A100-80GB"), Some(3.67));
    // The paper priced four types; the others are absent, not zero.
    assert_eq!(gpu_price(&out, "T4"), None);
    assert_eq!(gpu_price(&out, "B200"), None);

    let err = fails(["gpus", "--prices", "no-such-book"]);
    assert!(err.contains("unknown price book 'no-such-book'"), "{err}");
    assert!(err.contains("melange-2024"), "lists the known books: {err}");
}

#[test]
fn prices_lists_every_book_with_a_source_for_every_price() {
    let books = succeeds_json(["prices", "--json"]);
    let names: Vec<&str> = books
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hyperscaler", "neocloud", "melange-2024"]);
    for book in books.as_array().unwrap() {
        let prices = book["prices"].as_object().unwrap();
        assert!(!prices.is_empty(), "{} is empty", book["name"]);
        for (gpu, price) in prices {
            assert!(BUILTIN_GPUS.contains(&gpu.as_str()), "unknown GPU {gpu}");
            assert!(num(&price["usd_per_hour"], gpu) > 0.0, "{gpu}");
            assert!(
                !price["source"].as_str().unwrap_or("").is_empty(),
                "{} {gpu} has no source",
                book["name"]
            );
        }
    }
    let melange = find(&books, "melange-2024");
    assert_eq!(melange["prices"]["L4"]["usd_per_hour"], 0.70);
    assert_eq!(melange["prices"]["A10G"]["usd_per_hour"], 1.01);
    assert_eq!(melange["prices"]["A100-80GB"]["usd_per_hour"], 3.67);

    let text = succeeds(["prices"]);
    assert!(text.contains("hyperscaler (default)"), "{text}");
}

#[test]
fn models_lists_published_architectures() {
    let models = succeeds_json(["models", "--json"]);
    // Llama-2-7B's config.json: 32 layers, 4096 hidden, 32 heads, full multi-head KV, 4k context.
    let llama7 = find(&models, "Llama-2-7B");
    assert_eq!(llama7["layers"], 32);
    assert_eq!(llama7["hidden"], 4096);
    assert_eq!(llama7["heads"], 32);
    assert_eq!(llama7["kv_heads"], 32);
    assert_eq!(llama7["max_context"], 4096);
    // Llama-2-70B uses grouped-query attention with 8 KV heads.
    assert_eq!(find(&models, "Llama-2-70B")["kv_heads"], 8);
    // Llama 3.1 accepts 128k tokens.
    assert_eq!(find(&models, "Llama-3.1-8B")["max_context"], 131_072);
    for model in models.as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        assert!(num(&model["params"], "params") > 1e9, "{name}");
        assert!(
            !model["source"].as_str().unwrap_or("").is_empty(),
            "{name} has no source"
        );
        let heads = count(&model["heads"], "heads");
        let kv_heads = count(&model["kv_heads"], "kv_heads");
        assert_eq!(heads % kv_heads, 0, "{name}: heads {heads}, kv {kv_heads}");
    }
}

#[test]
fn a_model_too_big_for_the_gpu_is_rejected_with_the_reason() {
    let out = instance_json(&["--model", "Llama-2-70B", "--gpu", "L4"]);
    assert_eq!(out["fits"], false);
    let reason = out["reason"].as_str().expect("a reason");
    assert!(reason.contains("weights"), "reason: {reason}");
    // 70 billion BF16 weights are far more than an L4's 24 GB.
    assert!(num(&out["weights_gb"], "weights_gb") > 24.0);
    assert!(out["kv_blocks"].is_null() && out["kv_tokens"].is_null());
    assert!(out["decode"].as_array().unwrap().is_empty());

    let text = succeeds(["instance", "--model", "Llama-2-70B", "--gpu", "L4"]);
    assert!(text.contains("fits: no"), "{text}");
}

#[test]
fn llama_7b_fits_an_a100_with_a_kv_cache_that_fills_the_memory_left() {
    let models = succeeds_json(["models", "--json"]);
    let model = find(&models, "Llama-2-7B");
    let gpus = succeeds_json(["gpus", "--json"]);
    let mem_gb = num(&find(&gpus["gpus"], "A100-80GB")["mem_gb"], "mem_gb");

    let out = instance_json(&["--model", "Llama-2-7B", "--gpu", "A100-80GB"]);
    assert_eq!(out["fits"], true, "{out}");
    assert_eq!(out["instance"], "Llama-2-7B@A100-80GB");
    let kv_blocks = count(&out["kv_blocks"], "kv_blocks");
    let kv_tokens = count(&out["kv_tokens"], "kv_tokens");
    assert!(kv_blocks > 0);
    assert_eq!(kv_tokens, kv_blocks * BLOCK_TOKENS);
    assert_eq!(out["max_model_len"], model["max_context"]);
    assert!(
        kv_tokens >= count(&model["max_context"], "max_context"),
        "the cache holds one longest request"
    );

    // Weights: two bytes per published parameter.
    let weights_gb = num(&out["weights_gb"], "weights_gb");
    assert_close(
        weights_gb,
        num(&model["params"], "params") * BF16_BYTES / 1e9,
        0.01,
        "weights GB",
    );
    // Weights and cache together stay within the 90% of memory the engine may use.
    let used_gb = weights_gb + kv_tokens as f64 * kv_bytes_per_token(model) / 1e9;
    assert!(
        used_gb <= 0.9 * mem_gb,
        "weights + KV = {used_gb} GB > 90% of {mem_gb} GB"
    );

    // Longer prompts take longer; bigger decode batches give more tokens per second.
    let prefill: Vec<f64> = out["prefill_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| num(&pair[1], "prefill ms"))
        .collect();
    assert_eq!(prefill.len(), 3, "default prompt lengths 128, 512, 2048");
    assert!(
        prefill.windows(2).all(|w| w[0] > 0.0 && w[0] < w[1]),
        "{prefill:?}"
    );
    let decode = out["decode"].as_array().unwrap();
    for pair in decode.windows(2) {
        assert!(num(&pair[0]["tokens_per_s"], "t/s") < num(&pair[1]["tokens_per_s"], "t/s"));
    }
    for row in decode {
        let batch = count(&row["batch_size"], "batch_size");
        let context = count(&row["context"], "context");
        assert_eq!(row["fits_in_kv"], batch * context <= kv_tokens, "{row}");
        assert_close(
            num(&row["tokens_per_s"], "tokens_per_s"),
            batch as f64 / (num(&row["step_ms"], "step_ms") / 1e3),
            1e-9,
            "tokens/s = batch / step",
        );
    }
    let price = gpu_price(&gpus, "A100-80GB").unwrap();
    assert_eq!(num(&out["usd_per_hour"], "usd_per_hour"), price);
}

#[test]
fn kv_tokens_grow_with_the_memory_fraction() {
    let models = succeeds_json(["models", "--json"]);
    let bytes_per_token = kv_bytes_per_token(find(&models, "Llama-2-7B"));
    let kv_tokens_at = |mem_util: &str| {
        let out = instance_json(&[
            "--model",
            "Llama-2-7B",
            "--gpu",
            "A100-80GB",
            "--mem-util",
            mem_util,
        ]);
        count(&out["kv_tokens"], "kv_tokens")
    };
    let tokens: Vec<u64> = ["0.5", "0.7", "0.9"]
        .iter()
        .map(|u| kv_tokens_at(u))
        .collect();
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    // Weights and reserves do not depend on the fraction, so 20% more of 80 GB is all cache
    // (up to one block of rounding at each end).
    let added_bytes = (tokens[2] - tokens[1]) as f64 * bytes_per_token;
    let expected_bytes = 0.2 * 80e9;
    let block_bytes = BLOCK_TOKENS as f64 * bytes_per_token;
    assert!(
        (added_bytes - expected_bytes).abs() <= 2.0 * block_bytes,
        "0.7 -> 0.9 added {added_bytes} bytes of KV, expected about {expected_bytes}"
    );

    for bad in ["1.5", "0", "-0.2"] {
        let err = fails([
            "instance",
            "--model",
            "Llama-2-7B",
            "--gpu",
            "A100-80GB",
            "--mem-util",
            bad,
        ]);
        assert!(err.contains("--mem-util"), "{bad}: {err}");
    }
}

#[test]
fn tensor_parallel_splits_a_big_model_and_multiplies_the_price() {
    let single = instance_json(&["--model", "Llama-2-70B", "--gpu", "A100-80GB"]);
    assert_eq!(single["fits"], false, "140 GB of weights on one 80 GB card");
    let four = instance_json(&["--model", "Llama-2-70B", "--gpu", "A100-80GB", "--tp", "4"]);
    assert_eq!(four["fits"], true, "{four}");
    assert_eq!(four["instance"], "Llama-2-70B@A100-80GBx4");
    assert!(count(&four["kv_blocks"], "kv_blocks") > 0);
    let gpus = succeeds_json(["gpus", "--json"]);
    assert_close(
        num(&four["usd_per_hour"], "usd_per_hour"),
        4.0 * gpu_price(&gpus, "A100-80GB").unwrap(),
        1e-12,
        "4 GPUs cost 4 times one",
    );
}

#[test]
fn instance_rejects_bad_arguments_clearly() {
    let err = fails(["instance", "--model", "Llama-2-7B", "--gpu", "A100-80G"]);
    assert!(err.contains("unknown GPU 'A100-80G'"), "{err}");
    assert!(err.contains("did you mean 'A100-80GB'"), "{err}");
    let err = fails(["instance", "--model", "Llama-9-7B", "--gpu", "L4"]);
    assert!(err.contains("unknown model 'Llama-9-7B'"), "{err}");
    // Zero GPUs or a zero-token limit are not instances (they used to be accepted silently).
    let err = fails([
        "instance",
        "--model",
        "Llama-2-7B",
        "--gpu",
        "L4",
        "--tp",
        "0",
    ]);
    assert!(err.contains("--tp"), "{err}");
    let err = fails([
        "instance",
        "--model",
        "Llama-2-7B",
        "--gpu",
        "L4",
        "--max-model-len",
        "0",
    ]);
    assert!(err.contains("--max-model-len"), "{err}");
    let err = fails([
        "instance",
        "--model",
        "Llama-2-7B",
        "--gpu",
        "L4",
        "--dtype",
        "int3",
    ]);
    assert!(err.contains("--dtype") && err.contains("int3"), "{err}");
    // An empty decode batch printed a 0 ms step and NaN tokens/s; prompts and contexts past the
    // model length were timed as if the engine could run them.
    let base = ["instance", "--model", "Llama-2-7B", "--gpu", "A10G"];
    for (flag, value, says) in [
        ("--decode-batch", "8,0", "--decode-batch"),
        ("--prefill", "0", "--prefill"),
        ("--prefill", "512,5000", "max model length (4096"),
        ("--context", "4096", "max model length (4096"),
    ] {
        let err = fails(base.iter().copied().chain([flag, value]));
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
}

#[test]
fn short_names_resolve_to_catalog_names() {
    let out = instance_json(&["--model", "llama-2-7b", "--gpu", "A100"]);
    assert_eq!(out["instance"], "Llama-2-7B@A100-80GB");
}

/// A made-up GPU and a price book for it, in the catalog file format.
const OVERLAY_NEW_GPU: &str = r#"
[[gpu]]
name = "Test-48G"
mem_gb = 48.0
mem_bw_gbs = 900.0
dense_tflops = 180.0
source = "medley CLI test: a made-up card"

[price_books.test-book]
description = "prices for the CLI tests"
source = "medley CLI test"
prices = { "Test-48G" = 1.5, L4 = 0.5 }
"#;

#[test]
fn a_catalog_file_adds_a_gpu_and_a_price_book() {
    let dir = TempDir::new("catalog-add");
    let overlay = dir.write("extra.toml", OVERLAY_NEW_GPU);
    let overlay = overlay.to_str().unwrap();

    let out = succeeds_json([
        "--catalog",
        overlay,
        "gpus",
        "--prices",
        "test-book",
        "--json",
    ]);
    let gpus = out["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), BUILTIN_GPUS.len() + 1);
    let added = gpus.last().unwrap();
    assert_eq!(added["name"], "Test-48G", "user additions come last");
    assert_eq!(added["mem_gb"], 48.0);
    assert_eq!(added["source"], "medley CLI test: a made-up card");
    assert_eq!(gpu_price(&out, "Test-48G"), Some(1.5));
    assert_eq!(gpu_price(&out, "L4"), Some(0.5));
    assert_eq!(gpu_price(&out, "A10G"), None);

    let books = succeeds_json(["--catalog", overlay, "prices", "--json"]);
    let book = find(&books, "test-book");
    assert_eq!(book["description"], "prices for the CLI tests");
    assert_eq!(book["prices"]["Test-48G"]["source"], "medley CLI test");

    // The new card serves a model: twice an L4's memory holds a bigger cache.
    let on_new = instance_json(&[
        "--catalog",
        overlay,
        "--model",
        "Llama-2-7B",
        "--gpu",
        "Test-48G",
        "--prices",
        "test-book",
    ]);
    assert_eq!(on_new["fits"], true, "{on_new}");
    assert_eq!(on_new["usd_per_hour"], 1.5);
    let on_l4 = instance_json(&["--model", "Llama-2-7B", "--gpu", "L4"]);
    assert!(count(&on_new["kv_tokens"], "new") > count(&on_l4["kv_tokens"], "L4"));

    // Without the file the card is unknown.
    let err = fails(["instance", "--model", "Llama-2-7B", "--gpu", "Test-48G"]);
    assert!(err.contains("unknown GPU 'Test-48G'"), "{err}");
}

#[test]
fn catalog_files_apply_in_order_and_may_follow_the_subcommand() {
    let dir = TempDir::new("catalog-order");
    let first = dir.write(
        "first.toml",
        "[price_books.test-book.prices]\nL4 = 0.5\n\n[[gpu]]\nname = \"L4\"\nmem_gb = 48.0\n",
    );
    let second = dir.write("second.toml", "[price_books.test-book.prices]\nL4 = 0.6\n");
    let (first, second) = (first.to_str().unwrap(), second.to_str().unwrap());
    let price_after = |files: [&str; 2]| {
        let out = succeeds_json([
            "gpus",
            "--catalog",
            files[0],
            "--catalog",
            files[1],
            "--prices",
            "test-book",
            "--json",
        ]);
        let l4 = find(&out["gpus"], "L4");
        (gpu_price(&out, "L4").unwrap(), num(&l4["mem_gb"], "mem_gb"))
    };
    assert_eq!(
        price_after([first, second]),
        (0.6, 48.0),
        "the later file wins"
    );
    assert_eq!(
        price_after([second, first]),
        (0.5, 48.0),
        "the later file wins"
    );
    // Overriding one field of a built-in GPU keeps the rest.
    let builtin = succeeds_json(["gpus", "--json"]);
    let patched = succeeds_json(["gpus", "--json", "--catalog", first]);
    let (builtin_l4, patched_l4) = (find(&builtin["gpus"], "L4"), find(&patched["gpus"], "L4"));
    assert_eq!(patched_l4["mem_bw_gbs"], builtin_l4["mem_bw_gbs"]);
    assert_eq!(patched_l4["source"], builtin_l4["source"]);
}

#[test]
fn a_bad_catalog_file_is_an_error_naming_the_file_and_the_key() {
    let dir = TempDir::new("catalog-bad");
    let cases = [
        (
            "unknown_key.toml",
            "[[gpu]]\nname = \"L4\"\nmem_gbb = 30\n",
            "mem_gbb",
        ),
        (
            "wrong_type.toml",
            "[[gpu]]\nname = \"L4\"\nmem_gb = \"lots\"\n",
            "mem_gb",
        ),
        (
            "negative.toml",
            "[[gpu]]\nname = \"L4\"\nmem_gb = -3\n",
            "mem_gb",
        ),
        (
            "incomplete.toml",
            "[[gpu]]\nname = \"X1\"\nmem_gb = 10\n",
            "mem_bw_gbs",
        ),
        (
            "unknown_gpu_price.toml",
            "[price_books.mine.prices]\nZZ-9 = 1.0\n",
            "ZZ-9",
        ),
        ("unknown_section.toml", "[[gpus]]\nname = \"L4\"\n", "gpus"),
        // A name cluster specs cannot spell, and memory that overflowed the KV-token count.
        (
            "empty_name.toml",
            "[[gpu]]\nname = \"\"\nmem_gb = 10\nmem_bw_gbs = 100\ndense_tflops = 10\n\
             link_gbs_bidir = 10\nhost_link_gbs = 10\ntdp_w = 100\n",
            "a name must be non-empty",
        ),
        (
            "huge_memory.toml",
            "[[gpu]]\nname = \"L4\"\nmem_gb = 1e308\n",
            "mem_gb",
        ),
        ("not_toml.toml", "this is not toml [", "not_toml.toml"),
    ];
    for (file, text, key) in cases {
        let path = dir.write(file, text);
        for command in [
            &["gpus"][..],
            &["instance", "--model", "Llama-2-7B", "--gpu", "L4"],
        ] {
            let mut args = vec!["--catalog", path.to_str().unwrap()];
            args.extend_from_slice(command);
            let err = fails(&args);
            assert!(
                err.contains(file),
                "{file}: stderr does not name the file:\n{err}"
            );
            assert!(
                err.contains(key),
                "{file}: stderr does not name `{key}`:\n{err}"
            );
        }
    }
    let missing = dir.path().join("absent.toml");
    let err = fails(["--catalog", missing.to_str().unwrap(), "models"]);
    assert!(
        err.contains("absent.toml") && err.contains("cannot read"),
        "{err}"
    );
}

/// Writes a splitwise-sim style measurement table for Llama-2-7B on A100-80GB whose times are
/// medley's own predictions (from `medley instance`) times `slowdown`.
fn predicted_table(slowdown: f64) -> String {
    const GENERATED_TOKENS: u32 = 256;
    let mut table = String::from(
        "model,hardware,prompt_size,batch_size,token_size,prompt_time,token_time,tensor_parallel\n",
    );
    // Lone prompts: `instance` times the prefill of one prompt and a decode step of one
    // sequence, which is what batch-1 rows measure.
    for prompt in [128u32, 512, 1024, 2048] {
        // calibrate times a decode step at the mean context prompt + generated / 2.
        let context = prompt + GENERATED_TOKENS / 2;
        let (prefill_ms, step_ms) = predicted_times(None, prompt, 1, context);
        table.push_str(&format!(
            "Llama-2-7B,A100-80GB,{prompt},1,{GENERATED_TOKENS},{},{},1\n",
            prefill_ms * slowdown,
            step_ms * slowdown
        ));
    }
    table
}

fn predicted_times(catalog: Option<&str>, prompt: u32, batch: u32, context: u32) -> (f64, f64) {
    let prompt = prompt.to_string();
    let batch = batch.to_string();
    let context = context.to_string();
    let mut args = Vec::new();
    if let Some(file) = catalog {
        args.extend(["--catalog", file]);
    }
    args.extend([
        "--model",
        "Llama-2-7B",
        "--gpu",
        "A100-80GB",
        "--prefill",
        &prompt,
        "--decode-batch",
        &batch,
        "--context",
        &context,
    ]);
    let out = instance_json(&args);
    (
        num(&out["prefill_ms"][0][1], "prefill ms"),
        num(&out["decode"][0]["step_ms"], "step ms"),
    )
}

#[test]
fn calibrate_recovers_its_own_predictions_and_fits_a_slower_card() {
    let dir = TempDir::new("calibrate");
    // Measurements equal to the model's own predictions: nothing to correct. (`instance`
    // predicts as the simulator does, with the memory/compute overlap interpolated from a
    // table; calibrate evaluates it exactly: they agree to within 3e-7, i.e. 3e-5 percent.)
    let exact = dir.write("exact.csv", &predicted_table(1.0));
    let report = succeeds_json(["calibrate", "--table", exact.to_str().unwrap(), "--json"]);
    assert_eq!(report["rows_read"], 4);
    assert!(report["excluded"].as_array().unwrap().is_empty());
    let group = &report["fits"][0]["groups"][0];
    assert_eq!(report["fits"][0]["gpu"], "A100-80GB");
    assert!(
        num(&group["prefill_mape_before"], "before") < 3e-5,
        "{group}"
    );
    assert!(
        num(&group["decode_mape_before"], "before") < 3e-5,
        "{group}"
    );

    // Everything 25% slower: the catalog's factors are off by |1 - 1.25| / 1.25 = 20%.
    let slower = dir.write("slower.csv", &predicted_table(1.25));
    let slower = slower.to_str().unwrap();
    let report = succeeds_json(["calibrate", "--table", slower, "--json"]);
    let fit = &report["fits"][0];
    let group = &fit["groups"][0];
    assert_close(
        num(&group["prefill_mape_before"], "p"),
        20.0,
        1e-6,
        "prefill MAPE before",
    );
    assert_close(
        num(&group["decode_mape_before"], "d"),
        20.0,
        1e-6,
        "decode MAPE before",
    );
    assert!(num(&group["prefill_mape_after"], "p") < 2.0, "{group}");
    assert!(num(&group["decode_mape_after"], "d") < 2.0, "{group}");

    // The fitted factors, put into a catalog file, make `instance` predict the slower card.
    let after = &fit["after"];
    let mut overlay = String::from("[[gpu]]\nname = \"A100-80GB\"\n\n[gpu.efficiency]\n");
    for key in [
        "flops_fraction",
        "bandwidth_fraction",
        "iteration_overhead_us",
        "per_sequence_overhead_us",
        "per_prefill_overhead_us",
        "allreduce_step_us",
        "link_fraction",
        "overlap_exponent",
    ] {
        overlay.push_str(&format!("{key} = {}\n", num(&after[key], key)));
    }
    overlay.push_str("provenance = \"medley CLI test fit\"\n");
    let fitted = dir.write("fitted.toml", &overlay);
    let fitted = fitted.to_str().unwrap();
    for prompt in [128, 2048] {
        let (base_prefill, base_step) = predicted_times(None, prompt, 1, prompt + 128);
        let (fit_prefill, fit_step) = predicted_times(Some(fitted), prompt, 1, prompt + 128);
        assert_close(fit_prefill, 1.25 * base_prefill, 0.03, "fitted prefill");
        assert_close(fit_step, 1.25 * base_step, 0.03, "fitted decode step");
    }

    // The text report says whether every group meets the 10% target after fitting; a table that
    // times every batch twice, once twice as slow, cannot be fitted within it.
    let text = succeeds(["calibrate", "--table", slower]);
    assert!(
        text.contains("every GPU and TP group is within the 10% MAPE target"),
        "{text}"
    );
    let doubled = predicted_table(2.0);
    let contradictory = format!(
        "{}{}",
        predicted_table(1.0),
        doubled.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n"
    );
    let contradictory = dir.write("contradictory.csv", &contradictory);
    let text = succeeds(["calibrate", "--table", contradictory.to_str().unwrap()]);
    assert!(
        text.contains("above the 10% MAPE target: A100-80GB TP1 prefill")
            && text.contains("A100-80GB TP1 decode"),
        "{text}"
    );

    // The Rust form carries the fitted numbers (to the 4 decimals it prints).
    let rust = succeeds(["calibrate", "--table", slower, "--emit-rust"]);
    let flops = format!(
        "flops_fraction: {:.4}",
        num(&after["flops_fraction"], "flops_fraction")
    );
    assert!(
        rust.contains("FITTED_A100") && rust.contains(&flops),
        "{flops}:\n{rust}"
    );

    let err = fails([
        "calibrate",
        "--table",
        dir.path().join("absent.csv").to_str().unwrap(),
    ]);
    assert!(err.contains("absent.csv"), "{err}");
    let headless = dir.write("headless.csv", "model,hardware\nLlama-2-7B,A100-80GB\n");
    let err = fails(["calibrate", "--table", headless.to_str().unwrap()]);
    assert!(
        err.contains("headless.csv") && err.contains("prompt_size"),
        "{err}"
    );
}

#[test]
fn a_bad_catalog_file_stops_every_command() {
    // `workload presets` does not use the catalog, but a bad file must still stop it rather
    // than be ignored.
    let dir = TempDir::new("catalog-everywhere");
    let bad = dir.write("bad.toml", "[[gpu]]\nname = \"L4\"\nmem_gbb = 1\n");
    let bad = bad.to_str().unwrap();
    for command in [
        &["models"][..],
        &["prices"],
        &["workload", "presets"],
        &[
            "simulate",
            "--preset",
            "arena",
            "--rate",
            "1",
            "--duration",
            "1s",
            "--cluster",
            "L4:1",
        ],
    ] {
        let mut args = vec!["--catalog", bad];
        args.extend_from_slice(command);
        let err = fails(&args);
        assert!(err.contains("bad.toml"), "{command:?}: {err}");
    }
}

/// The example in docs/catalog.md is a working catalog file: it adds a GPU, a model and a
/// price book that become the default.
#[test]
fn the_documented_catalog_example_loads() {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/catalog.md"),
    )
    .expect("docs/catalog.md");
    let start = docs.find("```toml\n").expect("a TOML example") + "```toml\n".len();
    let end = start + docs[start..].find("```").expect("the example ends");
    let dir = TempDir::new("catalog-docs");
    let file = dir.write("example.toml", &docs[start..end]);
    let file = file.to_str().unwrap();
    let gpus = succeeds(["--catalog", file, "gpus"]);
    assert!(gpus.contains("MI325X"), "{gpus}");
    let models = succeeds(["--catalog", file, "models"]);
    assert!(models.contains("My-13B"), "{models}");
    let prices = succeeds(["--catalog", file, "prices"]);
    assert!(prices.contains("my-cloud (default)"), "{prices}");
}
