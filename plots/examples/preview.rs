//! Renders one example of every figure from small illustrative data (not simulation results)
//! into the directory given as the first argument (default: /tmp/plots-preview).

use std::path::PathBuf;

use plots::*;

fn fleet(name: &str, costs: &[Option<f64>]) -> FleetCosts {
    FleetCosts {
        fleet: name.to_string(),
        cost_per_hour: costs.to_vec(),
    }
}

fn main() -> Result<(), PlotError> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("/tmp/plots-preview"), PathBuf::from);
    let rates = vec![1.0, 2.0, 4.0, 8.0, 16.0];

    let cost = CostVsRate {
        title: "Illustrative: hourly cost by fleet".to_string(),
        rates: rates.clone(),
        mixed: fleet(
            "Mélange",
            &[Some(1.2), Some(2.1), Some(3.9), Some(7.0), Some(13.5)],
        ),
        baselines: vec![
            fleet("L4", &[Some(1.6), Some(3.2), Some(6.4), Some(12.8), None]),
            fleet(
                "A10G",
                &[Some(2.0), Some(3.0), Some(6.0), Some(11.0), Some(22.0)],
            ),
            fleet(
                "A100-80GB",
                &[Some(3.7), Some(3.7), Some(7.4), Some(11.1), Some(18.5)],
            ),
            fleet(
                "H100-SXM",
                &[Some(6.5), Some(6.5), Some(6.5), Some(13.0), Some(19.5)],
            ),
        ],
    };
    println!("{:?}", cost_vs_rate(&cost, &dir, "cost_vs_rate")?);

    let mix = GpuMixByRate {
        title: "Illustrative: GPU mix per rate".to_string(),
        rates: rates.clone(),
        mix: vec![
            GpuCounts {
                gpu_type: "L4".to_string(),
                counts: vec![1, 2, 3, 4, 6],
            },
            GpuCounts {
                gpu_type: "A10G".to_string(),
                counts: vec![1, 1, 2, 3, 5],
            },
            GpuCounts {
                gpu_type: "A100-80GB".to_string(),
                counts: vec![0, 0, 0, 1, 2],
            },
            GpuCounts {
                gpu_type: "H100-SXM".to_string(),
                counts: vec![0, 0, 0, 0, 1],
            },
        ],
    };
    println!("{:?}", gpu_mix_by_rate(&mix, &dir, "gpu_mix")?);

    let cell = |winner: &str, advantage_pct: Option<f64>| {
        Some(BestGpuCell {
            winner: winner.to_string(),
            advantage_pct,
        })
    };
    let heatmap = BestGpuHeatmap {
        title: "Illustrative: best GPU per request size".to_string(),
        metric: "tokens per $".to_string(),
        input_buckets: ["1-256", "257-1024", "1025-4096", "4097-16384"]
            .map(String::from)
            .to_vec(),
        output_buckets: ["1-64", "65-256", "257-1024", "1025-4096"]
            .map(String::from)
            .to_vec(),
        cells: vec![
            vec![
                cell("L4", Some(31.0)),
                cell("L4", Some(18.2)),
                cell("A10G", Some(4.4)),
                cell("A10G", Some(12.0)),
            ],
            vec![
                cell("L4", Some(9.0)),
                cell("A10G", Some(22.0)),
                cell("A10G", Some(15.0)),
                cell("A100-80GB", Some(7.5)),
            ],
            vec![
                cell("A10G", Some(3.1)),
                cell("A100-80GB", Some(26.0)),
                cell("A100-80GB", Some(41.0)),
                cell("H100-SXM", Some(12.0)),
            ],
            vec![
                cell("A100-80GB", Some(14.0)),
                cell("H100-SXM", Some(35.0)),
                cell("H100-SXM", None),
                None,
            ],
        ],
    };
    println!("{:?}", best_gpu_heatmap(&heatmap, &dir, "best_gpu")?);

    let tpot = vec![20.0, 40.0, 60.0, 80.0, 120.0, 160.0];
    let line = |name: &str, values: &[Option<f64>]| NamedSeries {
        name: name.to_string(),
        values: values.to_vec(),
    };
    let tokens = TokensPerDollarVsSlo {
        title: "Illustrative: tokens per dollar vs TPOT target".to_string(),
        tpot_targets_ms: tpot,
        series: vec![
            line(
                "L4",
                &[
                    None,
                    Some(0.9e6),
                    Some(1.6e6),
                    Some(2.1e6),
                    Some(2.4e6),
                    Some(2.5e6),
                ],
            ),
            line(
                "A10G",
                &[
                    None,
                    Some(1.2e6),
                    Some(1.8e6),
                    Some(2.0e6),
                    Some(2.2e6),
                    Some(2.25e6),
                ],
            ),
            line(
                "A100-80GB",
                &[
                    Some(0.8e6),
                    Some(1.5e6),
                    Some(1.7e6),
                    Some(1.8e6),
                    Some(1.85e6),
                    Some(1.9e6),
                ],
            ),
            line(
                "H100-SXM",
                &[
                    Some(1.1e6),
                    Some(1.4e6),
                    Some(1.5e6),
                    Some(1.55e6),
                    Some(1.6e6),
                    Some(1.6e6),
                ],
            ),
        ],
    };
    println!(
        "{:?}",
        tokens_per_dollar_vs_slo(&tokens, &dir, "tokens_per_dollar")?
    );

    // Deterministic exponential-shaped samples (inverse CDF at evenly spaced quantiles).
    let samples = |offset: f64, mean: f64, count: usize| -> Vec<f64> {
        (0..count)
            .map(|i| offset - mean * (1.0 - (i as f64 + 0.5) / count as f64).ln())
            .collect()
    };
    let cdf = LatencyCdf {
        title: "Illustrative: time to first token".to_string(),
        x_label: "TTFT (s)".to_string(),
        series: vec![
            LatencySamples {
                name: "Mélange".to_string(),
                latencies: samples(0.08, 0.12, 5000),
                served_fraction: 1.0,
            },
            LatencySamples {
                name: "A100-80GB".to_string(),
                latencies: samples(0.05, 0.08, 300),
                served_fraction: 1.0,
            },
            LatencySamples {
                name: "L4".to_string(),
                latencies: samples(0.15, 0.35, 3000),
                served_fraction: 1.0,
            },
        ],
        log_x: true,
        slo: Some(SloLine {
            value: 0.5,
            label: "TTFT SLO (0.5 s)".to_string(),
        }),
    };
    println!("{:?}", latency_cdf(&cdf, &dir, "ttft_cdf")?);

    let attainment = SloAttainmentVsRate {
        title: "Illustrative: SLO attainment vs rate".to_string(),
        rates: rates.clone(),
        series: vec![
            line(
                "least-loaded",
                &[Some(1.0), Some(1.0), Some(0.995), Some(0.97), Some(0.82)],
            ),
            line(
                "round-robin",
                &[Some(1.0), Some(0.99), Some(0.96), Some(0.88), Some(0.61)],
            ),
            line(
                "random",
                &[Some(0.998), Some(0.98), Some(0.93), Some(0.8), Some(0.52)],
            ),
        ],
        target: Some(0.95),
        as_percent: true,
    };
    println!(
        "{:?}",
        slo_attainment_vs_rate(&attainment, &dir, "slo_attainment")?
    );

    let time_s: Vec<f64> = (0..=120).map(|t| f64::from(t) * 5.0).collect();
    let wave = |phase: f64, scale: f64| -> Vec<f64> {
        time_s
            .iter()
            .map(|t| (scale * (1.0 + (t / 60.0 + phase).sin())).max(0.0))
            .collect()
    };
    let replica = |name: &str, phase: f64| ReplicaSeries {
        replica: name.to_string(),
        queue_len: wave(phase, 6.0)
            .iter()
            .map(|q| (q - 6.0).max(0.0).round())
            .collect(),
        running: wave(phase, 12.0).iter().map(|r| r.round()).collect(),
        kv_use: wave(phase, 0.45),
    };
    let series = RunTimeSeries {
        title: "Illustrative: one run over time".to_string(),
        time_s: time_s.clone(),
        replicas: vec![
            replica("L4#0", 0.0),
            replica("L4#1", 0.7),
            replica("A10G#0", 1.5),
            replica("A100-80GB#0", 2.4),
        ],
    };
    println!("{:?}", run_time_series(&series, &dir, "run_time_series")?);

    let prices: Vec<f64> = (0..12).map(|i| 0.5 + 0.125 * f64::from(i)).collect();
    let a10g: Vec<u32> = prices
        .iter()
        .map(|p| {
            if *p < 0.9 {
                6
            } else if *p < 1.3 {
                3
            } else {
                0
            }
        })
        .collect();
    let l4: Vec<u32> = prices
        .iter()
        .map(|p| {
            if *p < 0.9 {
                0
            } else if *p < 1.3 {
                3
            } else {
                6
            }
        })
        .collect();
    let h100: Vec<u32> = vec![1; prices.len()];
    let cost: Vec<f64> = prices
        .iter()
        .zip(a10g.iter().zip(&l4))
        .map(|(p, (a, l))| p * f64::from(*a) + 0.8 * f64::from(*l) + 6.5)
        .collect();
    let what_if = PriceWhatIf {
        title: "Illustrative: what if the A10G price changes".to_string(),
        gpu_type: "A10G".to_string(),
        prices_per_hour: prices,
        optimal_cost_per_hour: cost,
        mix: vec![
            GpuCounts {
                gpu_type: "L4".to_string(),
                counts: l4,
            },
            GpuCounts {
                gpu_type: "A10G".to_string(),
                counts: a10g,
            },
            GpuCounts {
                gpu_type: "H100-SXM".to_string(),
                counts: h100,
            },
        ],
    };
    println!("{:?}", price_what_if(&what_if, &dir, "price_what_if")?);
    Ok(())
}
