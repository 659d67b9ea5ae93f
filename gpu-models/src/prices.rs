//! Price books: named tables of on-demand $/GPU-hour, each price with its source.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One GPU's price in a book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// US dollars per GPU-hour.
    pub usd_per_hour: f64,
    /// Where the price comes from.
    pub source: String,
}

/// A named table of $/GPU-hour prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceBook {
    /// Book name, e.g. `hyperscaler`.
    pub name: String,
    /// What kind of prices these are.
    pub description: String,
    /// Price per GPU type (catalog names).
    pub prices: BTreeMap<String, Price>,
}

impl PriceBook {
    /// $/GPU-hour of a GPU type, if the book prices it.
    pub fn usd_per_gpu_hour(&self, gpu: &str) -> Option<f64> {
        self.prices.get(gpu).map(|p| p.usd_per_hour)
    }
}

/// The book used when none is named.
pub const DEFAULT_BOOK: &str = "hyperscaler";

fn book(name: &str, description: &str, entries: &[(&str, f64, &str)]) -> PriceBook {
    PriceBook {
        name: name.to_string(),
        description: description.to_string(),
        prices: entries
            .iter()
            .map(|(gpu, usd, source)| {
                (
                    gpu.to_string(),
                    Price {
                        usd_per_hour: *usd,
                        source: source.to_string(),
                    },
                )
            })
            .collect(),
    }
}

/// The built-in price books (sources: `shared/gpus/README.md` and `specs.csv`, which cite the
/// pages each price was read from).
pub fn builtin_price_books() -> Vec<PriceBook> {
    vec![
        book(
            "hyperscaler",
            "big-cloud on-demand list prices per GPU-hour (AWS, GCP, Azure; US regions; 8-GPU \
             instances divided by 8)",
            &[
                ("T4", 0.526, "AWS g4dn.xlarge on-demand us-east-1"),
                (
                    "L4",
                    0.70,
                    "GCP g2-standard-4 (the price Melange used); AWS g6.xlarge is 0.805",
                ),
                (
                    "A10G",
                    1.006,
                    "AWS g5.xlarge on-demand us-east-1 (factualminds.com, June 2026)",
                ),
                ("V100-16GB", 3.06, "AWS p3.2xlarge on-demand us-east-1"),
                (
                    "A100-40GB",
                    3.67,
                    "GCP a2-highgpu-1g; AWS p4d is 4.10 per GPU",
                ),
                (
                    "A100-80GB",
                    3.67,
                    "Azure NC24ads_A100_v4 (rmmartins.com 2026), the price Melange used",
                ),
                ("L40S", 1.86, "AWS g6e.xlarge on-demand us-east-1"),
                (
                    "H100-SXM",
                    12.29,
                    "AWS p5.48xlarge 98.32/h / 8 (awsnegotiations.com 2026), before the June-2025 \
                     cut of up to ~45%",
                ),
                (
                    "H100-PCIe",
                    6.98,
                    "Azure NC40ads_H100_v5 (H100 NVL); no big cloud rents the 80 GB PCIe card singly",
                ),
                (
                    "H200",
                    13.38,
                    "AWS p5e.48xlarge ~107/h / 8 (estimate, awsnegotiations.com May 2026)",
                ),
                (
                    "MI300X",
                    6.00,
                    "Azure ND MI300X v5 per GPU (also Oracle; cliffcenter.com 2026-05)",
                ),
                (
                    "B200",
                    14.24,
                    "AWS p6-b200.48xlarge ~113.9/h / 8 (packet.ai 2026, upper end)",
                ),
            ],
        ),
        book(
            "neocloud",
            "small-provider on-demand prices per GPU-hour (Lambda, Modal, TensorWave, specialty \
             clouds); 2-5x lower than big clouds for H100-class parts",
            &[
                ("T4", 0.59, "Modal T4 (techbytes.app, May 2026)"),
                ("L4", 0.80, "Modal L4 (techbytes.app, May 2026)"),
                (
                    "A10G",
                    0.86,
                    "Lambda 1x A10 (the A10 card, not the AWS-only A10G; techbytes.app May 2026)",
                ),
                (
                    "A100-40GB",
                    1.48,
                    "Lambda A100 40GB (techbytes.app, May 2026)",
                ),
                (
                    "A100-80GB",
                    2.50,
                    "Modal A100 80GB (techbytes.app, May 2026); range 1.49-2.49",
                ),
                ("L40S", 1.95, "Modal L40S (techbytes.app, May 2026)"),
                (
                    "H100-SXM",
                    2.99,
                    "Lambda 8x H100 SXM per GPU (cliffcenter.com 2026-05); 1x is 3.78",
                ),
                (
                    "H100-PCIe",
                    2.86,
                    "Lambda 1x H100 PCIe (techbytes.app, May 2026)",
                ),
                (
                    "H200",
                    4.00,
                    "specialty-cloud range 3.50-4.50 (mercatus-ai.com, May 2026)",
                ),
                (
                    "MI300X",
                    1.50,
                    "TensorWave (cliffcenter.com 2026-05); Vultr 1.85",
                ),
                (
                    "B200",
                    5.25,
                    "specialty-cloud average 4.50-6.00 (lyceum.technology, Mar 2026)",
                ),
            ],
        ),
        book(
            "melange-2024",
            "the Melange paper's Table 1 (Griggs et al. 2024, arXiv 2404.14527)",
            &[
                ("L4", 0.70, "Melange Table 1 (GCP g2-standard-4)"),
                ("A10G", 1.01, "Melange Table 1 (AWS g5.xlarge)"),
                (
                    "A100-80GB",
                    3.67,
                    "Melange Table 1 (Azure NC24ads_A100_v4, a PCIe part)",
                ),
                (
                    "H100-SXM",
                    7.516,
                    "Melange Table 1: RunPod H100 4.69 / RunPod A100-80G 2.29 x 3.67 (not a list \
                     price)",
                ),
            ],
        ),
    ]
}
