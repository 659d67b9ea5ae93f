//! GPU types: datasheet facts with their sources, and the achieved-efficiency factors the
//! latency model uses (datasheet-derived defaults, or fitted to measurements).

use serde::{Deserialize, Serialize};

/// One GPU type's facts, as sold (one card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSpec {
    /// Catalog name, e.g. `A100-80GB`.
    pub name: String,
    /// Memory on the card in GB (10^9 bytes).
    pub mem_gb: f64,
    /// Peak memory bandwidth in GB/s (spec sheet).
    pub mem_bw_gbs: f64,
    /// Dense BF16 tensor TFLOPS (FP16 for cards without BF16), no sparsity.
    pub dense_tflops: f64,
    /// Dense FP8 tensor TFLOPS where the card has FP8 units.
    pub fp8_tflops: Option<f64>,
    /// Scale-up link bandwidth between GPUs of one server, GB/s both directions together
    /// (PCIe host link for cards without NVLink or Infinity Fabric).
    pub link_gbs_bidir: f64,
    /// Host link (PCIe) bandwidth GB/s, one direction; used for KV swap to host memory.
    pub host_link_gbs: f64,
    /// Board power (TDP) in watts.
    pub tdp_w: f64,
    /// Where the facts come from.
    pub source: String,
    /// Achieved fractions of peak and fixed costs used by the latency model.
    pub efficiency: Efficiency,
}

/// How much of its datasheet a GPU achieves in an inference engine, plus fixed costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    /// Fraction of dense peak FLOPS achieved by matrix multiplies and attention.
    pub flops_fraction: f64,
    /// Fraction of peak memory bandwidth achieved by weight and KV reads.
    pub bandwidth_fraction: f64,
    /// Fixed cost of one engine iteration (scheduling, sampling, launches), microseconds.
    pub iteration_overhead_us: f64,
    /// Cost per decoding sequence per iteration (input preparation, sampling), microseconds.
    pub per_sequence_overhead_us: f64,
    /// Cost per prompt (or prompt chunk) in an iteration (block tables, input preparation),
    /// microseconds.
    pub per_prefill_overhead_us: f64,
    /// Latency of one ring all-reduce step between GPUs, microseconds.
    pub allreduce_step_us: f64,
    /// Fraction of the scale-up link's one-way bandwidth that all-reduces achieve.
    pub link_fraction: f64,
    /// How an iteration's memory and compute times combine: their k-norm
    /// `(memory^k + compute^k)^(1/k)`. 1 adds them (no overlap); large values approach the
    /// pure roofline maximum (perfect overlap). Real kernels overlap weight streaming with
    /// matrix math only in part, so mid-sized prefills sit between the two.
    #[serde(default = "default_overlap_exponent")]
    pub overlap_exponent: f64,
    /// Where these numbers come from: `datasheet default` or the fit that produced them.
    pub provenance: String,
}

impl Efficiency {
    /// Typical achieved fractions for GPUs without measurements (see `DEFAULT_PROVENANCE`).
    pub fn datasheet_default() -> Self {
        Self {
            flops_fraction: 0.60,
            bandwidth_fraction: 0.75,
            iteration_overhead_us: 3000.0,
            per_sequence_overhead_us: 150.0,
            per_prefill_overhead_us: 1000.0,
            allreduce_step_us: 10.0,
            link_fraction: 0.7,
            overlap_exponent: DEFAULT_OVERLAP_EXPONENT,
            provenance: DEFAULT_PROVENANCE.to_string(),
        }
    }
}

/// Overlap exponent of GPUs without measurements: our assumption, between the fitted A100
/// and H100 values (about 2 and 2.6) and rounded down, i.e. towards less overlap.
pub const DEFAULT_OVERLAP_EXPONENT: f64 = 2.0;

fn default_overlap_exponent() -> f64 {
    DEFAULT_OVERLAP_EXPONENT
}

/// Why the default efficiency numbers are what they are.
pub const DEFAULT_PROVENANCE: &str = "datasheet default: 60% of dense peak FLOPS and 75% of peak \
    bandwidth (typical for vLLM-class engines; sustained HBM bandwidth is 80-90% of peak per \
    shared/gpus/README.md), 3 ms per iteration, 0.15 ms per decoding sequence, 1 ms per prompt, 10 us per all-reduce step, 70% of link \
    bandwidth in all-reduces, memory and compute combined as a 2-norm (partial overlap)";

/// The fitted efficiency of A100-80GB (see `crate::calibrate`).
fn fitted_a100() -> Efficiency {
    FITTED_A100.clone()
}

/// The fitted efficiency of H100-SXM (see `crate::calibrate`).
fn fitted_h100() -> Efficiency {
    FITTED_H100.clone()
}

include!("fitted.rs");

/// The built-in GPUs. Facts from `shared/gpus/specs_extended.csv` and its README, which cite:
/// glennklockwood.com (A100, H100, B200 pages), NVIDIA product briefs and datasheets,
/// mullet.se (L40S datasheet table), aiminingco.com (T4, H200), sysrqmts.com (T4), fpsbench.com
/// and grokipedia (L4), baseten.co (A10 vs A10G), developer.nvidia.com (V100), GPU Markets and
/// rocm.docs.amd.com (MI300X), docs.vultr.com (B200).
pub fn builtin_gpus() -> Vec<GpuSpec> {
    let default = Efficiency::datasheet_default;
    vec![
        gpu(
            "T4",
            16.0,
            320.0,
            65.0,
            None,
            32.0,
            16.0,
            70.0,
            "sysrqmts.com T4 page; aiminingco.com/gpu/t4/specs (FP16 65 TFLOPS: T4 has no BF16; \
             no NVLink, PCIe Gen3 x16)",
            default(),
        ),
        gpu(
            "L4",
            24.0,
            300.0,
            121.0,
            Some(242.0),
            64.0,
            32.0,
            72.0,
            "grokipedia NVIDIA L4 vs L40S (242 FP16 with sparsity -> 121 dense; 300 GB/s); \
             fpsbench.com L4 (72 W; PCIe Gen4 x16)",
            default(),
        ),
        gpu(
            "A10G",
            24.0,
            600.0,
            70.0,
            None,
            64.0,
            32.0,
            150.0,
            "baseten.co A10 vs A10G (24 GB, 600 GB/s; A10G tensor rate 70 dense vs A10 125 -- the \
             least certain compute figure in the catalog; Melange used 125); TDP 150 W is the \
             NVIDIA A10 board power (no A10G figure is published)",
            default(),
        ),
        gpu(
            "V100-16GB",
            16.0,
            900.0,
            125.0,
            None,
            300.0,
            16.0,
            300.0,
            "developer.nvidia.com (up to 125 Tensor TFLOPS, FP16: V100 has no BF16); V100 SXM2 \
             datasheet (900 GB/s, NVLink2 300 GB/s)",
            default(),
        ),
        gpu(
            "A100-40GB",
            40.0,
            1555.0,
            312.0,
            None,
            600.0,
            32.0,
            400.0,
            "glennklockwood.com/garden/processors/A100 (40 GB at 1.555 TB/s; BF16 312 dense) citing \
             NVIDIA's A100 datasheet; NVLink3 600 GB/s",
            default(),
        ),
        gpu(
            "A100-80GB",
            80.0,
            2039.0,
            312.0,
            None,
            600.0,
            32.0,
            400.0,
            "glennklockwood.com/garden/processors/A100 (80 GB at 2.039 TB/s; BF16 312 dense); \
             thundercompute.com (NVLink3 600 GB/s; PCIe card 1935 GB/s)",
            fitted_a100(),
        ),
        gpu(
            "L40S",
            48.0,
            864.0,
            362.0,
            Some(733.0),
            64.0,
            32.0,
            350.0,
            "mullet.se copy of NVIDIA's L40/L40S datasheet table (BF16 362.05 dense, FP8 733 \
             dense, 864 GB/s, PCIe Gen4 x16, 350 W)",
            default(),
        ),
        gpu(
            "H100-SXM",
            80.0,
            3350.0,
            989.0,
            Some(1979.0),
            900.0,
            64.0,
            700.0,
            "glennklockwood.com/garden/processors/h100 (BF16 989.4 dense, 3.35 TB/s, NVLink4 \
             900 GB/s, PCIe Gen5 128 GB/s)",
            fitted_h100(),
        ),
        gpu(
            "H100-PCIe",
            80.0,
            2000.0,
            756.0,
            Some(1513.0),
            600.0,
            64.0,
            350.0,
            "NVIDIA H100 PCIe product brief PB-11133-001 (>2,000 GB/s, 350 W); NVIDIA H100 \
             datasheet (756 dense BF16); NVLink bridge 600 GB/s",
            default(),
        ),
        gpu(
            "H200",
            141.0,
            4800.0,
            989.0,
            Some(1979.0),
            900.0,
            64.0,
            700.0,
            "aiminingco.com/gpu/h200/specs and lzwjava.github.io (141 GB HBM3e, 4.8 TB/s, NVLink4 \
             900 GB/s, 700 W); same GH100 compute as H100",
            default(),
        ),
        gpu(
            "MI300X",
            192.0,
            5300.0,
            1307.0,
            Some(2615.0),
            896.0,
            64.0,
            750.0,
            "GPU Markets MI300X page (FP16 1,307 dense, FP8 2,615, 5.3 TB/s, Infinity Fabric \
             896 GB/s, 750 W); rocm.docs.amd.com MI300 microarchitecture",
            default(),
        ),
        gpu(
            "B200",
            180.0,
            8000.0,
            2250.0,
            Some(4500.0),
            1800.0,
            128.0,
            1000.0,
            "glennklockwood.com/garden/processors/B200 (HGX B200 1000 W: BF16 2,250 dense, FP8 \
             4,500, 8 TB/s); docs.vultr.com HGX B200 (179-180 GB visible; NVLink5 1.8 TB/s)",
            default(),
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn gpu(
    name: &str,
    mem_gb: f64,
    mem_bw_gbs: f64,
    dense_tflops: f64,
    fp8_tflops: Option<f64>,
    link_gbs_bidir: f64,
    host_link_gbs: f64,
    tdp_w: f64,
    source: &str,
    efficiency: Efficiency,
) -> GpuSpec {
    GpuSpec {
        name: name.to_string(),
        mem_gb,
        mem_bw_gbs,
        dense_tflops,
        fp8_tflops,
        link_gbs_bidir,
        host_link_gbs,
        tdp_w,
        source: source.to_string(),
        efficiency,
    }
}
