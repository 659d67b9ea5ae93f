//! LLM architectures: the facts from each model's published `config.json`, and the derived
//! quantities the memory and latency models need.

use serde::{Deserialize, Serialize};

/// Numeric format of the weights (and so of the KV cache, which follows the activations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    /// 16-bit brain float: 2 bytes per parameter.
    #[default]
    Bf16,
    /// 8-bit float: 1 byte per parameter (needs FP8 tensor cores for the FP8 FLOPS rate).
    Fp8,
}

impl WeightDtype {
    /// Bytes per weight.
    pub fn bytes(self) -> f64 {
        match self {
            WeightDtype::Bf16 => 2.0,
            WeightDtype::Fp8 => 1.0,
        }
    }

    /// Parses `bf16` or `fp8`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "bf16" | "fp16" => Some(WeightDtype::Bf16),
            "fp8" => Some(WeightDtype::Fp8),
            _ => None,
        }
    }
}

/// A decoder-only transformer, as its `config.json` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Catalog name, e.g. `Llama-2-7B`.
    pub name: String,
    /// Transformer layers (`num_hidden_layers`).
    pub layers: u32,
    /// Model width (`hidden_size`).
    pub hidden: u32,
    /// Query heads (`num_attention_heads`).
    pub heads: u32,
    /// Key/value heads (`num_key_value_heads`; fewer than `heads` under grouped-query attention).
    pub kv_heads: u32,
    /// Dimension of one head (`head_dim`, or hidden / heads).
    pub head_dim: u32,
    /// MLP inner width (`intermediate_size`), gated (three matrices).
    pub ffn: u32,
    /// Vocabulary size (`vocab_size`).
    pub vocab: u32,
    /// Longest context the model accepts (`max_position_embeddings`), tokens.
    pub max_context: u32,
    /// Published parameter count.
    pub params: f64,
    /// Whether the output head shares the embedding matrix (`tie_word_embeddings`).
    pub tied_embeddings: bool,
    /// Where the facts come from.
    pub source: String,
}

impl ModelSpec {
    /// Parameters in the transformer layers (attention and MLP projections), per the architecture.
    pub fn layer_params(&self) -> f64 {
        let hidden = f64::from(self.hidden);
        let q_out = f64::from(self.heads * self.head_dim);
        let kv_out = f64::from(self.kv_heads * self.head_dim);
        let attention = hidden * q_out + 2.0 * hidden * kv_out + q_out * hidden;
        let mlp = 3.0 * hidden * f64::from(self.ffn);
        f64::from(self.layers) * (attention + mlp)
    }

    /// Parameters of the output head (vocabulary projection).
    pub fn lm_head_params(&self) -> f64 {
        f64::from(self.hidden) * f64::from(self.vocab)
    }

    /// Parameters counted from the architecture (layers, embeddings, output head).
    pub fn architecture_params(&self) -> f64 {
        let embeddings = self.lm_head_params();
        let head = if self.tied_embeddings {
            0.0
        } else {
            self.lm_head_params()
        };
        self.layer_params() + embeddings + head
    }

    /// Bytes of weights at the given precision, from the published parameter count.
    pub fn weight_bytes(&self, dtype: WeightDtype) -> f64 {
        self.params * dtype.bytes()
    }

    /// Bytes of KV cache per token: K and V, every layer, every KV head, 2-byte activations.
    pub fn kv_bytes_per_token(&self) -> f64 {
        2.0 * f64::from(self.layers) * f64::from(self.kv_heads) * f64::from(self.head_dim) * 2.0
    }
}

#[allow(clippy::too_many_arguments)]
fn model(
    name: &str,
    layers: u32,
    hidden: u32,
    heads: u32,
    kv_heads: u32,
    ffn: u32,
    vocab: u32,
    max_context: u32,
    params: f64,
    source: &str,
) -> ModelSpec {
    ModelSpec {
        name: name.to_string(),
        layers,
        hidden,
        heads,
        kv_heads,
        head_dim: hidden / heads,
        ffn,
        vocab,
        max_context,
        params,
        tied_embeddings: false,
        source: source.to_string(),
    }
}

/// The built-in models, from each model's `config.json` on the Hugging Face hub (the named
/// repository) and the parameter count on its model card.
pub fn builtin_models() -> Vec<ModelSpec> {
    vec![
        model(
            "Llama-2-7B",
            32,
            4096,
            32,
            32,
            11008,
            32000,
            4096,
            6.738e9,
            "meta-llama/Llama-2-7b-hf config.json; 6,738,415,616 parameters",
        ),
        model(
            "Llama-2-13B",
            40,
            5120,
            40,
            40,
            13824,
            32000,
            4096,
            13.016e9,
            "meta-llama/Llama-2-13b-hf config.json; 13,015,864,320 parameters",
        ),
        model(
            "Llama-2-70B",
            80,
            8192,
            64,
            8,
            28672,
            32000,
            4096,
            68.977e9,
            "meta-llama/Llama-2-70b-hf config.json; 68,976,648,192 parameters",
        ),
        model(
            "Llama-3.1-8B",
            32,
            4096,
            32,
            8,
            14336,
            128256,
            131072,
            8.030e9,
            "meta-llama/Llama-3.1-8B config.json; 8,030,261,248 parameters",
        ),
        model(
            "Llama-3.1-70B",
            80,
            8192,
            64,
            8,
            28672,
            128256,
            131072,
            70.554e9,
            "meta-llama/Llama-3.1-70B config.json; 70,553,706,496 parameters",
        ),
        model(
            "Mistral-7B",
            32,
            4096,
            32,
            8,
            14336,
            32000,
            32768,
            7.242e9,
            "mistralai/Mistral-7B-v0.1 config.json (max_position_embeddings 32768; sliding \
             window 4096 is not modelled); 7,241,732,096 parameters",
        ),
        model(
            "Qwen2.5-7B",
            28,
            3584,
            28,
            4,
            18944,
            152064,
            32768,
            7.616e9,
            "Qwen/Qwen2.5-7B config.json (max_position_embeddings 32768 without YaRN); 7.61B \
             parameters (model card)",
        ),
        model(
            "Qwen2.5-72B",
            80,
            8192,
            64,
            8,
            29568,
            152064,
            32768,
            72.706e9,
            "Qwen/Qwen2.5-72B config.json (max_position_embeddings 32768 without YaRN); 72.7B \
             parameters (model card)",
        ),
    ]
}
