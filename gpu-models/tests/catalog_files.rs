//! User catalog files extend and override the built-ins, and bad files give clear errors.

use gpu_models::Catalog;

#[test]
fn overlay_overrides_one_field_and_adds_entries() {
    let mut catalog = Catalog::builtin();
    catalog
        .apply_toml(
            r#"
default_price_book = "mycloud"

[[gpu]]
name = "a10g"
dense_tflops = 125.0
source = "A10 datasheet"

[[gpu]]
name = "RTX-4090"
mem_gb = 24.0
mem_bw_gbs = 1008.0
dense_tflops = 165.0

[[model]]
name = "Tiny-1B"
layers = 16
hidden = 2048
heads = 16
kv_heads = 4
ffn = 5632
vocab = 32000
max_context = 2048

[price_books.mycloud]
source = "my invoice"
[price_books.mycloud.prices]
A10G = 0.5
RTX-4090 = { usd_per_hour = 0.4, source = "quote" }

[[kv_blocks]]
model = "Llama-2-7B"
gpu = "A10G"
blocks = 500
"#,
        )
        .unwrap();
    let a10g = catalog.gpu("A10G").unwrap();
    assert_eq!(a10g.dense_tflops, 125.0);
    assert_eq!(a10g.mem_gb, 24.0, "untouched fields keep built-in values");
    assert!(catalog.gpu("RTX-4090").is_ok());
    let tiny = catalog.model("tiny-1b").unwrap();
    assert!(tiny.params > 0.5e9 && tiny.params < 2e9, "{}", tiny.params);
    let book = catalog.price_book(None).unwrap();
    assert_eq!(book.name, "mycloud");
    assert_eq!(book.usd_per_gpu_hour("A10G"), Some(0.5));
    assert_eq!(book.prices["A10G"].source, "my invoice");
    assert_eq!(catalog.kv_pin("Llama-2-7B", "A10G", 1), Some(500));
}

#[test]
fn unknown_key_is_named() {
    let err = Catalog::builtin()
        .apply_toml("[[gpu]]\nname = \"A10G\"\nmem_gbs = 3\n")
        .unwrap_err();
    assert!(err.contains("mem_gbs"), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn new_gpu_missing_a_required_key_is_named() {
    let err = Catalog::builtin()
        .apply_toml("[[gpu]]\nname = \"X1\"\nmem_gb = 3\n")
        .unwrap_err();
    assert!(err.contains("mem_bw_gbs"), "{err}");
}

#[test]
fn bad_values_are_rejected() {
    let err = Catalog::builtin()
        .apply_toml("[[gpu]]\nname = \"A10G\"\nmem_gb = -3\n")
        .unwrap_err();
    assert!(err.contains("mem_gb") && err.contains("positive"), "{err}");
    let err = Catalog::builtin()
        .apply_toml("[price_books.x.prices]\nNOPE = 1.0\n")
        .unwrap_err();
    assert!(err.contains("NOPE"), "{err}");
    let err = Catalog::builtin()
        .apply_toml("[[gpu]]\nname = \"A10G\"\n[gpu.efficiency]\nflops_fraction = 1.5\n")
        .unwrap_err();
    assert!(err.contains("flops_fraction"), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let err = Catalog::load(&["/no/such/catalog.toml".into()]).unwrap_err();
    assert!(err.to_string().contains("/no/such/catalog.toml"));
}

#[test]
fn unknown_names_suggest_the_nearest() {
    let err = Catalog::builtin().gpu("A100-80G").unwrap_err().to_string();
    assert!(err.contains("did you mean 'A100-80GB'"), "{err}");
    assert_eq!(Catalog::builtin().gpu("h100").unwrap().name, "H100-SXM");
}
