//! Instance types: a model served on `tp` GPUs of one type. Either it fits, with a KV-cache
//! capacity, or it is rejected with the reason.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::ModelError;
use crate::gpu::GpuSpec;
use crate::latency::{BatchSummary, LatencyModel, Roofline};
use crate::llm::{ModelSpec, WeightDtype};
use crate::measured::MeasuredTable;

/// Tokens per KV-cache block (vLLM's default page size).
pub const BLOCK_TOKENS: u32 = 16;

/// Knobs of the memory model; the defaults follow vLLM.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceOptions {
    /// Fraction of GPU memory the engine may use (vLLM `gpu_memory_utilization`).
    pub mem_utilization: f64,
    /// Weight precision.
    pub dtype: WeightDtype,
    /// Longest request (prompt + output) the engine accepts; the model's context when unset.
    pub max_model_len: Option<u32>,
    /// Tokens per iteration the engine plans for (sizes the activation reserve).
    pub max_batched_tokens: u32,
    /// Fixed per-GPU reserve for the CUDA context, library workspaces and NCCL buffers, GB.
    pub workspace_gb: f64,
    /// Pinned number of KV blocks (overrides the memory model; also settable in the catalog).
    pub kv_blocks: Option<u64>,
    /// A measured latency table to use instead of the roofline.
    pub measured: Option<Arc<MeasuredTable>>,
}

impl Default for InstanceOptions {
    fn default() -> Self {
        Self {
            mem_utilization: 0.9,
            dtype: WeightDtype::Bf16,
            max_model_len: None,
            max_batched_tokens: 8192,
            workspace_gb: 1.0,
            kv_blocks: None,
            measured: None,
        }
    }
}

/// Why an instance type cannot serve the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FitError {
    /// The weights alone exceed the memory the engine may use.
    WeightsExceedMemory {
        /// Weights, GB across the group.
        weights_gb: f64,
        /// Usable memory (utilisation × capacity − reserves), GB across the group.
        usable_gb: f64,
    },
    /// After the weights, the KV cache cannot hold one request of the maximum length.
    NoRoomForMaxRequest {
        /// KV tokens that fit.
        kv_tokens: u64,
        /// Tokens of one maximum-length request.
        max_model_len: u32,
    },
    /// The tensor-parallel degree does not divide the model's heads.
    BadTensorParallel {
        /// Requested degree.
        tp: u32,
        /// Query heads of the model.
        heads: u32,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::WeightsExceedMemory {
                weights_gb,
                usable_gb,
            } => write!(
                f,
                "weights alone ({weights_gb:.1} GB) exceed usable memory ({usable_gb:.1} GB)"
            ),
            FitError::NoRoomForMaxRequest {
                kv_tokens,
                max_model_len,
            } => write!(
                f,
                "KV cache holds {kv_tokens} tokens, less than one maximum-length request \
                 ({max_model_len} tokens); lower --max-model-len or add GPUs"
            ),
            FitError::BadTensorParallel { tp, heads } => write!(
                f,
                "tensor-parallel degree {tp} must divide the model's {heads} attention heads"
            ),
        }
    }
}

impl std::error::Error for FitError {}

/// A model on `tp` GPUs of one type that fits, with its memory plan and latency model.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The model.
    pub model: ModelSpec,
    /// The GPU type.
    pub gpu: GpuSpec,
    /// GPUs in the tensor-parallel group.
    pub tp: u32,
    /// Weight precision.
    pub dtype: WeightDtype,
    /// Weights, bytes across the group.
    pub weight_bytes: f64,
    /// Memory reserved for activations and workspaces, bytes across the group.
    pub reserve_bytes: f64,
    /// Tokens the KV cache holds.
    pub kv_tokens: u64,
    /// 16-token blocks the KV cache holds.
    pub kv_blocks: u64,
    /// Whether `kv_blocks` was pinned by the user rather than derived from memory.
    pub kv_pinned: bool,
    /// Longest request accepted, tokens.
    pub max_model_len: u32,
    /// Iteration-time predictor.
    pub latency: LatencyModel,
}

impl Instance {
    /// Builds an instance type from catalog names.
    pub fn from_catalog(
        catalog: &Catalog,
        model: &str,
        gpu: &str,
        tp: u32,
        options: &InstanceOptions,
    ) -> Result<Result<Self, FitError>, ModelError> {
        let model = catalog.model(model)?;
        let gpu = catalog.gpu(gpu)?;
        let mut options = options.clone();
        if options.kv_blocks.is_none() {
            options.kv_blocks = catalog.kv_pin(&model.name, &gpu.name, tp);
        }
        Ok(Self::new(model, gpu, tp, &options))
    }

    /// Builds an instance type, or says why the model does not fit.
    pub fn new(
        model: &ModelSpec,
        gpu: &GpuSpec,
        tp: u32,
        options: &InstanceOptions,
    ) -> Result<Self, FitError> {
        let tp = tp.max(1);
        if !model.heads.is_multiple_of(tp) {
            return Err(FitError::BadTensorParallel {
                tp,
                heads: model.heads,
            });
        }
        let tp_f = f64::from(tp);
        let weight_bytes = model.weight_bytes(options.dtype);
        // Peak activations of one forward pass over max_batched_tokens (hidden states, the
        // gated MLP's intermediate, the logits of one token per sequence), bf16, split by TP.
        let activation_bytes = f64::from(options.max_batched_tokens)
            * (4.0 * f64::from(model.hidden) + 3.0 * f64::from(model.ffn) / tp_f)
            * 2.0
            + 256.0 * f64::from(model.vocab) * 4.0;
        let reserve_bytes = tp_f * (options.workspace_gb * 1e9 + activation_bytes);
        let usable = tp_f * gpu.mem_gb * 1e9 * options.mem_utilization - reserve_bytes;
        if weight_bytes >= usable {
            return Err(FitError::WeightsExceedMemory {
                weights_gb: weight_bytes / 1e9,
                usable_gb: usable.max(0.0) / 1e9,
            });
        }
        let max_model_len = options.max_model_len.unwrap_or(model.max_context);
        let (kv_blocks, kv_pinned) = match options.kv_blocks {
            Some(blocks) => (blocks, true),
            None => {
                let kv_tokens = ((usable - weight_bytes) / model.kv_bytes_per_token()) as u64;
                (kv_tokens / u64::from(BLOCK_TOKENS), false)
            }
        };
        let kv_tokens = kv_blocks * u64::from(BLOCK_TOKENS);
        if kv_tokens < u64::from(max_model_len) {
            return Err(FitError::NoRoomForMaxRequest {
                kv_tokens,
                max_model_len,
            });
        }
        let latency = match &options.measured {
            Some(table) => LatencyModel::Measured(Arc::clone(table)),
            None => LatencyModel::Roofline(Roofline::new(model, gpu, tp, options.dtype)),
        };
        Ok(Self {
            model: model.clone(),
            gpu: gpu.clone(),
            tp,
            dtype: options.dtype,
            weight_bytes,
            reserve_bytes,
            kv_tokens,
            kv_blocks,
            kv_pinned,
            max_model_len,
            latency,
        })
    }

    /// Display name: `Llama-2-7B@A100-80GB` or `Llama-2-70B@H100-SXMx4`.
    pub fn name(&self) -> String {
        if self.tp == 1 {
            format!("{}@{}", self.model.name, self.gpu.name)
        } else {
            format!("{}@{}x{}", self.model.name, self.gpu.name, self.tp)
        }
    }

    /// Prefill time of one prompt of `tokens` tokens alone in an iteration, seconds.
    pub fn prefill_s(&self, tokens: u32) -> f64 {
        let mut batch = BatchSummary::default();
        batch.add_prefill(tokens, 0, true);
        self.latency.iteration_s(&batch)
    }

    /// One decode step of `batch_size` sequences each holding `context` tokens, seconds.
    pub fn decode_step_s(&self, batch_size: u32, context: u32) -> f64 {
        let mut batch = BatchSummary::default();
        for _ in 0..batch_size {
            batch.add_decode(context);
        }
        self.latency.iteration_s(&batch)
    }

    /// $/hour of the whole instance under a price book, if the book prices the GPU.
    pub fn usd_per_hour(&self, book: &crate::prices::PriceBook) -> Option<f64> {
        book.usd_per_gpu_hour(&self.gpu.name)
            .map(|p| p * f64::from(self.tp))
    }
}
