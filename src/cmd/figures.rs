//! Figures of a results directory: every figure the finished grid points support, each as PNG
//! and SVG plus a `<stem>.json` holding exactly the data it was drawn from (so tests and users
//! can check a figure against the tables without reading pixels).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use experiments::efficiency::{ProfileRow, best_of};
use experiments::runner::{PointResult, ResultRow, ScalingTrace, unique_profile_rows};
use serde::Serialize;

/// Rows grouped by `key`, groups in key order, rows in input order.
fn group_by<'a, T, K: Ord>(
    rows: impl IntoIterator<Item = &'a T>,
    key: impl Fn(&T) -> K,
) -> BTreeMap<K, Vec<&'a T>> {
    let mut groups: BTreeMap<K, Vec<&'a T>> = BTreeMap::new();
    for row in rows {
        groups.entry(key(row)).or_default().push(row);
    }
    groups
}

/// Whether `values` hold more than one distinct value: a swept axis that a figure's name and
/// title must then carry.
fn varies<T: Ord>(values: impl IntoIterator<Item = T>) -> bool {
    values
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1
}

/// GPU count per type in a cluster spec.
fn counts(allocation: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for entry in sim::parse_spec(allocation).unwrap_or_default() {
        *counts
            .entry(sim::type_name(&entry.gpu, entry.tp))
            .or_insert(0) += entry.count;
    }
    counts
}

pub(crate) fn file_stem(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Figures written so far: their files, and the options every figure shares.
struct Figures<'a> {
    dir: &'a Path,
    written: Vec<PathBuf>,
}

impl Figures<'_> {
    /// Draws one figure and stores the data it was drawn from beside it as `<stem>.json`.
    fn draw<T: Serialize>(
        &mut self,
        data: &T,
        stem: &str,
        draw: impl FnOnce(&T, &Path, &str) -> Result<plots::RenderedFigure, plots::PlotError>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let figure = draw(data, self.dir, stem)?;
        let json = self.dir.join(format!("{stem}.json"));
        std::fs::write(&json, serde_json::to_string_pretty(data)?)?;
        self.written.push(figure.png);
        self.written.push(figure.svg);
        self.written.push(json);
        Ok(())
    }
}

/// The SLO of a row as text (`120ms`, `120ms+2s`).
fn slo_text(tpot: &str, ttft: &str) -> String {
    [tpot, ttft]
        .iter()
        .filter(|t| !t.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("+")
}

/// A file stem naming an SLO, price book, what-if prices and seed.
fn group_stem(slo: &str, book: &str, overrides: &str, seed: u64) -> String {
    let stem = file_stem(&format!(
        "{slo}_{book}{}{}",
        if overrides.is_empty() { "" } else { "_" },
        overrides
    ));
    if seed == 0 {
        stem
    } else {
        format!("{stem}_seed{seed}")
    }
}

/// Draws every figure the results support into `dir`; returns the files written (PNG, SVG and
/// the data of each). `sizes` picks the request sizes of the tokens-per-dollar-vs-SLO figures
/// (empty: the three most common buckets).
pub fn draw_figures(
    points: &[PointResult],
    dir: &Path,
    sizes: &[[u32; 2]],
) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    // Figures of an earlier run (another config, or points since left out) would stay beside
    // these as if drawn from the same results: the directory holds only this drawing's.
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let drawn = path
            .extension()
            .is_some_and(|ext| ext == "png" || ext == "svg" || ext == "json");
        if drawn && path.is_file() {
            std::fs::remove_file(&path)
                .map_err(|err| format!("{}: cannot remove: {err}", path.display()))?;
        }
    }
    let mut figures = Figures {
        dir,
        written: Vec::new(),
    };
    let rows: Vec<&ResultRow> = points.iter().flat_map(|p| &p.rows).collect();
    plan_figures(&mut figures, &rows)?;
    what_if_figures(&mut figures, &rows)?;
    policy_figures(&mut figures, points)?;
    scaling_figures(&mut figures, points)?;
    efficiency_figures(&mut figures, &unique_profile_rows(points), sizes)?;
    Ok(figures.written)
}

/// Plan experiments over rates: cost, mix and attainment per (SLO, prices, seed).
fn plan_figures(
    figures: &mut Figures<'_>,
    rows: &[&ResultRow],
) -> Result<(), Box<dyn std::error::Error>> {
    let by_group = group_by(rows.iter().copied().filter(|r| r.fleet != "given"), |row| {
        (
            row.tpot_target.clone(),
            row.ttft_target.clone(),
            row.price_book.clone(),
            row.price_overrides.clone(),
            row.gpu_set.clone(),
            row.seed,
        )
    });
    // The GPU set goes into names and titles only when a sweep varies it.
    let several_sets = varies(by_group.keys().map(|key| &key.4));
    for ((tpot, ttft, book, overrides, set, seed), group) in &by_group {
        let mut rates: Vec<f64> = group.iter().map(|r| r.rate_rps).collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        if rates.len() < 2 {
            continue;
        }
        let slo = slo_text(tpot, ttft);
        let mut stem = group_stem(&slo, book, overrides, *seed);
        if several_sets {
            stem = file_stem(&format!("{stem}_{set}"));
        }
        let cost_of = |fleet: &str, fleet_type: &str, rate: f64| {
            group
                .iter()
                .find(|r| r.fleet == fleet && r.fleet_type == fleet_type && r.rate_rps == rate)
                .and_then(|r| r.slo_met.then_some(r.usd_per_hour))
        };
        let mut types: Vec<String> = group
            .iter()
            .filter(|r| r.fleet == "single")
            .map(|r| r.fleet_type.clone())
            .collect();
        types.sort();
        types.dedup();
        let title_suffix = if several_sets {
            format!("SLO {slo}, {book} prices, GPUs {set}")
        } else {
            format!("SLO {slo}, {book} prices")
        };
        figures.draw(
            &plots::CostVsRate {
                title: format!("Cost of fleets that met the SLO in simulation ({title_suffix})"),
                rates: rates.clone(),
                mixed: plots::FleetCosts {
                    fleet: "mixed (verified)".into(),
                    cost_per_hour: rates.iter().map(|r| cost_of("mixed", "", *r)).collect(),
                },
                baselines: types
                    .iter()
                    .map(|t| plots::FleetCosts {
                        fleet: t.clone(),
                        cost_per_hour: rates.iter().map(|r| cost_of("single", t, *r)).collect(),
                    })
                    .collect(),
            },
            &format!("cost_vs_rate_{stem}"),
            plots::cost_vs_rate,
        )?;
        let mixed_counts: Vec<BTreeMap<String, u32>> = rates
            .iter()
            .map(|rate| {
                group
                    .iter()
                    .find(|r| r.fleet == "mixed" && r.rate_rps == *rate)
                    .map(|r| counts(&r.allocation))
                    .unwrap_or_default()
            })
            .collect();
        figures.draw(
            &plots::GpuMixByRate {
                title: format!("Verified mixed fleet ({title_suffix})"),
                rates: rates.clone(),
                mix: stacked(&mixed_counts),
            },
            &format!("gpu_mix_{stem}"),
            plots::gpu_mix_by_rate,
        )?;
        let attainment = |fleet: &str, fleet_type: &str| -> Vec<Option<f64>> {
            rates
                .iter()
                .map(|rate| {
                    group
                        .iter()
                        .find(|r| {
                            r.fleet == fleet && r.fleet_type == fleet_type && r.rate_rps == *rate
                        })
                        .map(|r| r.attainment)
                })
                .collect()
        };
        let mut series = vec![plots::NamedSeries {
            name: "mixed (verified)".into(),
            values: attainment("mixed", ""),
        }];
        // The solver's first plan, before derating: where it falls short of the verified
        // fleet, Mélange's additive-load assumption overstated capacity.
        let first_plan: Vec<Option<f64>> = rates
            .iter()
            .map(|rate| {
                group
                    .iter()
                    .find(|r| r.fleet == "mixed" && r.rate_rps == *rate)
                    .and_then(|r| r.first_plan_attainment)
            })
            .collect();
        if first_plan.iter().any(Option::is_some) {
            series.push(plots::NamedSeries {
                name: "mixed (first plan)".into(),
                values: first_plan,
            });
        }
        series.extend(types.iter().map(|t| plots::NamedSeries {
            name: t.clone(),
            values: attainment("single", t),
        }));
        figures.draw(
            &plots::SloAttainmentVsRate {
                title: format!("Per-request SLO attainment in simulation ({title_suffix})"),
                rates: rates.clone(),
                series,
                target: None,
                as_percent: true,
            },
            &format!("attainment_vs_rate_{stem}"),
            plots::slo_attainment_vs_rate,
        )?;
    }
    Ok(())
}

/// GPU counts per type across several fleets, one stacked series per type.
pub(crate) fn stacked(fleets: &[BTreeMap<String, u32>]) -> Vec<plots::GpuCounts> {
    let mut types: Vec<String> = fleets.iter().flat_map(|c| c.keys().cloned()).collect();
    types.sort();
    types.dedup();
    types
        .iter()
        .map(|t| plots::GpuCounts {
            gpu_type: t.clone(),
            counts: fleets
                .iter()
                .map(|c| c.get(t).copied().unwrap_or(0))
                .collect(),
        })
        .collect()
}

/// What-if prices: the mixed fleet against one GPU's price, per (SLO, rate).
fn what_if_figures(
    figures: &mut Figures<'_>,
    rows: &[&ResultRow],
) -> Result<(), Box<dyn std::error::Error>> {
    // One line per varied GPU, holding every other swept axis fixed: the SLO, the price book
    // (a what-if price replaces one book's price), the GPU set, the rate and the seed.
    type WhatIfKey = (String, String, String, String, String, u64);
    let mut by_price: BTreeMap<WhatIfKey, Vec<&ResultRow>> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r.fleet == "mixed" && !r.price_overrides.is_empty())
    {
        let Some((gpu, _)) = row.price_overrides.split_once('=') else {
            continue;
        };
        if row.price_overrides.contains(',') {
            continue; // several GPUs varied at once: no single price axis
        }
        by_price
            .entry((
                gpu.to_string(),
                slo_text(&row.tpot_target, &row.ttft_target),
                row.price_book.clone(),
                row.gpu_set.clone(),
                format!("{}", row.rate_rps),
                row.seed,
            ))
            .or_default()
            .push(row);
    }
    let several_books = varies(by_price.keys().map(|key| &key.2));
    let several_sets = varies(by_price.keys().map(|key| &key.3));
    for ((gpu, slo, book, set, rate, seed), mut group) in by_price {
        let price = |row: &ResultRow| {
            row.price_overrides
                .split_once('=')
                .and_then(|(_, p)| p.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        group.sort_by(|a, b| price(a).total_cmp(&price(b)));
        if group.len() < 2 {
            continue;
        }
        let all_counts: Vec<BTreeMap<String, u32>> =
            group.iter().map(|r| counts(&r.allocation)).collect();
        figures.draw(
            &plots::PriceWhatIf {
                title: format!(
                    "Verified mixed fleet as the {gpu} price varies (SLO {slo}, {rate} req/s, {book}{})",
                    if several_sets { format!(", GPUs {set}") } else { String::new() }
                ),
                gpu_type: gpu.clone(),
                prices_per_hour: group.iter().map(|r| price(r)).collect(),
                optimal_cost_per_hour: group.iter().map(|r| r.usd_per_hour).collect(),
                mix: stacked(&all_counts),
            },
            &file_stem(&{
                // Book and GPU set in the name only when they vary, so the usual one-book sweep
                // keeps its short names.
                let mut stem = format!("whatif_{gpu}_{slo}_{rate}rps");
                if several_books {
                    stem.push_str(&format!("_{book}"));
                }
                if several_sets {
                    stem.push_str(&format!("_{set}"));
                }
                if seed != 0 {
                    stem.push_str(&format!("_seed{seed}"));
                }
                stem
            }),
            plots::price_what_if,
        )?;
    }
    Ok(())
}

/// A simulated row with its latency distribution.
type PolicyRow<'a> = (
    &'a ResultRow,
    Option<&'a experiments::runner::LatencyPercentiles>,
);

/// Which policy dimension a figure compares, the others held at a base value.
#[derive(Clone, Copy)]
enum Facet {
    Routers,
    Queues,
    Clusters,
    Autoscalers,
}

impl Facet {
    fn name(self) -> &'static str {
        match self {
            Facet::Routers => "routers",
            Facet::Queues => "queues",
            Facet::Clusters => "clusters",
            Facet::Autoscalers => "autoscalers",
        }
    }

    /// The row's value on this dimension (the legend name).
    fn of(self, row: &ResultRow) -> String {
        match self {
            Facet::Routers => row.router.clone(),
            Facet::Queues => row.queue.clone(),
            Facet::Clusters => row.allocation.clone(),
            Facet::Autoscalers => row.autoscaler.clone(),
        }
    }
}

/// The value of a dimension other figures hold fixed: `preferred` if present, else the first.
fn base_value(
    rows: &[PolicyRow<'_>],
    get: impl Fn(&ResultRow) -> String,
    preferred: &str,
) -> String {
    let mut values: Vec<String> = rows.iter().map(|(r, _)| get(r)).collect();
    values.sort();
    values.dedup();
    if values.iter().any(|v| v == preferred) {
        preferred.to_string()
    } else {
        values.into_iter().next().unwrap_or_default()
    }
}

/// Simulate experiments: for each policy dimension with several values (routers, queue
/// orders, clusters), attainment vs rate and TTFT/TPOT CDFs per rate, one line per value with
/// the other dimensions at their base (fcfs, least-outstanding, the first cluster).
fn policy_figures(
    figures: &mut Figures<'_>,
    points: &[PointResult],
) -> Result<(), Box<dyn std::error::Error>> {
    let given: Vec<PolicyRow<'_>> = points
        .iter()
        .flat_map(|p| {
            p.rows
                .iter()
                .enumerate()
                .map(move |(i, row)| (row, p.latency.get(i)))
        })
        .filter(|(row, _)| row.fleet == "given")
        .collect();
    if given.is_empty() {
        return Ok(());
    }
    // The first seed only, so a line is one run.
    let seed = given.iter().map(|(r, _)| r.seed).min();
    let given: Vec<PolicyRow<'_>> = given
        .into_iter()
        .filter(|(r, _)| Some(r.seed) == seed)
        .collect();
    // One SLO and one price setting per figure too (a latency CDF has one line per policy,
    // and a line per policy and target would repeat names): the first of each, named in the
    // titles when the sweep varies them.
    let slo_of = |r: &ResultRow| slo_text(&r.tpot_target, &r.ttft_target);
    let several_slos = varies(given.iter().map(|(r, _)| slo_of(r)));
    let several_prices = varies(given.iter().map(|(r, _)| r.prices_label()));
    let base_slo = base_value(&given, slo_of, "");
    let base_prices = base_value(&given, |r| r.prices_label(), "");
    let given: Vec<PolicyRow<'_>> = given
        .into_iter()
        .filter(|(r, _)| slo_of(r) == base_slo && r.prices_label() == base_prices)
        .collect();
    let mut fixed = String::new();
    if several_slos {
        fixed.push_str(&format!(", SLO {base_slo}"));
    }
    if several_prices {
        fixed.push_str(&format!(", {base_prices} prices"));
    }
    let base_router = base_value(&given, |r| r.router.clone(), "least-outstanding");
    let base_queue = base_value(&given, |r| r.queue.clone(), "fcfs");
    let base_cluster = base_value(&given, |r| r.allocation.clone(), "");
    let base_autoscaler = base_value(&given, |r| r.autoscaler.clone(), "static");
    let mut rates: Vec<f64> = given.iter().map(|(r, _)| r.rate_rps).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    for facet in [
        Facet::Routers,
        Facet::Queues,
        Facet::Clusters,
        Facet::Autoscalers,
    ] {
        let rows: Vec<PolicyRow<'_>> = given
            .iter()
            .filter(|(r, _)| {
                (matches!(facet, Facet::Routers) || r.router == base_router)
                    && (matches!(facet, Facet::Queues) || r.queue == base_queue)
                    && (matches!(facet, Facet::Clusters) || r.allocation == base_cluster)
                    && (matches!(facet, Facet::Autoscalers) || r.autoscaler == base_autoscaler)
            })
            .copied()
            .collect();
        let mut names: Vec<String> = rows.iter().map(|(r, _)| facet.of(r)).collect();
        names.sort();
        names.dedup();
        if names.len() < 2 {
            continue;
        }
        let held = match facet {
            Facet::Routers => format!("queue {base_queue}, {base_cluster}{fixed}"),
            Facet::Queues => format!("router {base_router}, {base_cluster}{fixed}"),
            Facet::Clusters => format!("router {base_router}, queue {base_queue}{fixed}"),
            Facet::Autoscalers => format!("{base_cluster} at the start{fixed}"),
        };
        if matches!(facet, Facet::Autoscalers) && rates.len() >= 2 {
            let series = per_name_and_rate(&names, &rates, &rows, facet, |r| r.usd_per_hour);
            figures.draw(
                &plots::CostPerPolicy {
                    title: format!("Cost billed by autoscaler ({held})"),
                    rates: rates.clone(),
                    series,
                },
                "cost_vs_rate_autoscalers",
                plots::cost_per_policy,
            )?;
        }
        if rates.len() >= 2 {
            let series = per_name_and_rate(&names, &rates, &rows, facet, |r| r.attainment);
            figures.draw(
                &plots::SloAttainmentVsRate {
                    title: format!("SLO attainment by {} ({held})", facet.name()),
                    rates: rates.clone(),
                    series,
                    target: None,
                    as_percent: true,
                },
                &format!("attainment_vs_rate_{}", facet.name()),
                plots::slo_attainment_vs_rate,
            )?;
        }
        for rate in &rates {
            let at_rate: Vec<(&ResultRow, &experiments::runner::LatencyPercentiles)> = rows
                .iter()
                .filter(|(r, _)| r.rate_rps == *rate)
                .filter_map(|(r, latency)| latency.map(|l| (*r, l)))
                .collect();
            for metric in ["ttft", "tpot"] {
                let series: Vec<plots::LatencySamples> = at_rate
                    .iter()
                    .map(|(r, l)| plots::LatencySamples {
                        name: facet.of(r),
                        // Rejected requests have no latency: the curve stops below 1 by them.
                        served_fraction: if r.arrived > 0 {
                            r.completed as f64 / r.arrived as f64
                        } else {
                            1.0
                        },
                        latencies: if metric == "ttft" {
                            l.ttft_s.clone()
                        } else {
                            l.tpot_s.clone()
                        },
                    })
                    .filter(|s| !s.latencies.is_empty())
                    .collect();
                if series.len() < 2 {
                    continue;
                }
                let target = at_rate.first().map_or("", |(r, _)| {
                    if metric == "ttft" {
                        r.ttft_target.as_str()
                    } else {
                        r.tpot_target.as_str()
                    }
                });
                // TTFTs span orders of magnitude under overload: a log axis keeps both ends.
                let log_x =
                    metric == "ttft" && series.iter().all(|s| s.latencies.iter().all(|v| *v > 0.0));
                figures.draw(
                    &plots::LatencyCdf {
                        title: format!(
                            "{} by {} at {} req/s ({held})",
                            metric.to_uppercase(),
                            facet.name(),
                            format_rate(*rate)
                        ),
                        x_label: if metric == "ttft" {
                            "TTFT (s)".into()
                        } else {
                            "TPOT, mean inter-token time (s)".into()
                        },
                        series,
                        log_x,
                        slo: sim::parse_duration_s(target).map(|value| plots::SloLine {
                            value,
                            label: format!("SLO ({target})"),
                        }),
                    },
                    &file_stem(&format!(
                        "cdf_{metric}_{}_{}rps",
                        facet.name(),
                        format_rate(*rate)
                    )),
                    plots::latency_cdf,
                )?;
            }
        }
    }
    Ok(())
}

/// The replicas figure of one autoscaled run.
pub(crate) fn replicas_figure(trace: &ScalingTrace, title: String) -> plots::ReplicasOverTime {
    let column = |rows: &[Vec<u32>], t: usize| rows.iter().map(|row| f64::from(row[t])).collect();
    plots::ReplicasOverTime {
        title,
        time_s: trace.time_s.clone(),
        end_s: trace.end_s,
        types: trace
            .types
            .iter()
            .enumerate()
            .map(|(t, name)| plots::TypeReplicaCounts {
                name: name.clone(),
                billed: column(&trace.billed, t),
                ready: column(&trace.ready, t),
            })
            .collect(),
        rate_time_s: (0..trace.arrivals.len())
            .map(|k| k as f64 * trace.window_s)
            .collect(),
        rate_rps: trace
            .arrivals
            .iter()
            .map(|&n| f64::from(n) / trace.window_s)
            .collect(),
    }
}

/// Simulate experiments with autoscaling: replicas over time for each autoscaled point of the
/// first seed whose router and queue order are the base ones the policy figures hold fixed
/// (one figure per policy, rate and cluster rather than one per grid point), named by policy
/// and rate (and the point, when several share those).
fn scaling_figures(
    figures: &mut Figures<'_>,
    points: &[PointResult],
) -> Result<(), Box<dyn std::error::Error>> {
    let seed = points
        .iter()
        .filter(|p| p.scaling.is_some())
        .map(|p| p.point.seed)
        .min();
    let first_seed: Vec<PolicyRow<'_>> = points
        .iter()
        .filter(|p| Some(p.point.seed) == seed)
        .filter_map(|p| Some((p.rows.first()?, None)))
        .collect();
    let base_router = base_value(&first_seed, |r| r.router.clone(), "least-outstanding");
    let base_queue = base_value(&first_seed, |r| r.queue.clone(), "fcfs");
    let scaled: Vec<(&PointResult, &ScalingTrace, &ResultRow)> = points
        .iter()
        .filter(|p| Some(p.point.seed) == seed)
        .filter_map(|p| Some((p, p.scaling.as_ref()?, p.rows.first()?)))
        .filter(|(_, _, row)| row.router == base_router && row.queue == base_queue)
        .collect();
    let stem_of = |trace: &ScalingTrace, row: &ResultRow| {
        file_stem(&format!(
            "replicas_{}_{}rps",
            trace.policy,
            format_rate(row.rate_rps)
        ))
    };
    for (point, trace, row) in &scaled {
        let mut stem = stem_of(trace, row);
        if scaled
            .iter()
            .filter(|(_, t, r)| stem_of(t, r) == stem)
            .count()
            > 1
        {
            stem = format!("{stem}_p{}", point.point.index);
        }
        let title = format!(
            "{} autoscaling at {} req/s, from {}",
            trace.policy,
            format_rate(row.rate_rps),
            row.allocation
        );
        figures.draw(
            &replicas_figure(trace, title),
            &stem,
            plots::replicas_over_time,
        )?;
    }
    Ok(())
}

/// One series per name: the value of its row at each rate (`None` where it has none).
fn per_name_and_rate(
    names: &[String],
    rates: &[f64],
    rows: &[PolicyRow<'_>],
    facet: Facet,
    value: impl Fn(&ResultRow) -> f64,
) -> Vec<plots::NamedSeries> {
    names
        .iter()
        .map(|name| plots::NamedSeries {
            name: name.clone(),
            values: rates
                .iter()
                .map(|rate| {
                    rows.iter()
                        .find(|(r, _)| facet.of(r) == *name && r.rate_rps == *rate)
                        .map(|(r, _)| value(r))
                })
                .collect(),
        })
        .collect()
}

fn format_rate(rate: f64) -> String {
    format!("{rate}")
}

/// Efficiency experiments: the best GPU per bucket (heat map) per SLO and prices, and tokens
/// per dollar against the TPOT target for a few sizes.
fn efficiency_figures(
    figures: &mut Figures<'_>,
    rows: &[&ProfileRow],
    sizes: &[[u32; 2]],
) -> Result<(), Box<dyn std::error::Error>> {
    if rows.is_empty() {
        return Ok(());
    }
    // Heat maps only for efficiency experiments' own interest would be too narrow: any
    // profiled grid supports one, so draw one per (SLO, prices, seed).
    let by_slo = group_by(rows.iter().copied(), |row| {
        (
            row.tpot_target.clone(),
            row.ttft_target.clone(),
            row.price_book.clone(),
            row.price_overrides.clone(),
            row.seed,
        )
    });
    for ((tpot, ttft, book, overrides, seed), group) in &by_slo {
        let input_buckets = labels(group, |r| (r.input_bucket, r.input_range.clone()));
        let output_buckets = labels(group, |r| (r.output_bucket, r.output_range.clone()));
        let cells = (0..input_buckets.len())
            .map(|i| {
                (0..output_buckets.len())
                    .map(|j| {
                        let cell: Vec<&ProfileRow> = group
                            .iter()
                            .filter(|r| {
                                r.input_bucket as usize == i && r.output_bucket as usize == j
                            })
                            .copied()
                            .collect();
                        best_of(&cell).map(|(winner, advantage_pct)| plots::BestGpuCell {
                            winner,
                            advantage_pct,
                        })
                    })
                    .collect()
            })
            .collect();
        let slo = slo_text(tpot, ttft);
        figures.draw(
            &plots::BestGpuHeatmap {
                title: format!("Best GPU per request size (SLO {slo}, {book})"),
                metric: "output tokens per $".into(),
                input_buckets: input_buckets.iter().map(|l| format!("{l} in")).collect(),
                output_buckets: output_buckets.iter().map(|l| format!("{l} out")).collect(),
                cells,
            },
            &format!("best_gpu_{}", group_stem(&slo, book, overrides, *seed)),
            plots::best_gpu_heatmap,
        )?;
    }
    // Tokens per dollar vs TPOT target: per (TTFT target, prices, seed), one figure per size.
    let by_prices = group_by(
        rows.iter().copied().filter(|r| !r.tpot_target.is_empty()),
        |row| {
            (
                row.ttft_target.clone(),
                row.price_book.clone(),
                row.price_overrides.clone(),
                row.seed,
            )
        },
    );
    for ((ttft, book, overrides, seed), group) in &by_prices {
        let mut targets: Vec<(f64, String)> = group
            .iter()
            .filter_map(|r| {
                sim::parse_duration_s(&r.tpot_target).map(|s| (s * 1e3, r.tpot_target.clone()))
            })
            .collect();
        targets.sort_by(|a, b| a.0.total_cmp(&b.0));
        targets.dedup_by(|a, b| a.0 == b.0);
        if targets.len() < 2 {
            continue;
        }
        for (input_bucket, output_bucket) in chosen_buckets(group, sizes) {
            let in_bucket: Vec<&&ProfileRow> = group
                .iter()
                .filter(|r| r.input_bucket == input_bucket && r.output_bucket == output_bucket)
                .collect();
            let Some(first) = in_bucket.first() else {
                continue;
            };
            let mut instances: Vec<String> = in_bucket.iter().map(|r| r.instance.clone()).collect();
            instances.sort();
            instances.dedup();
            let series = instances
                .iter()
                .map(|instance| plots::NamedSeries {
                    name: instance.clone(),
                    values: targets
                        .iter()
                        .map(|(_, target)| {
                            in_bucket
                                .iter()
                                .find(|r| r.instance == *instance && r.tpot_target == *target)
                                .map(|r| r.output_tokens_per_dollar)
                                .filter(|v| *v > 0.0)
                        })
                        .collect(),
                })
                .collect();
            let size = format!(
                "{} in / {} out tokens",
                first.input_range, first.output_range
            );
            let stem = group_stem(
                &format!("in{input_bucket}_out{output_bucket}"),
                book,
                overrides,
                *seed,
            );
            let ttft_note = if ttft.is_empty() {
                String::new()
            } else {
                format!(", TTFT {ttft}")
            };
            let data = plots::TokensPerDollarVsSlo {
                title: format!("Output tokens per $ vs TPOT target ({size}{ttft_note}, {book})"),
                tpot_targets_ms: targets.iter().map(|(ms, _)| *ms).collect(),
                series,
            };
            // A bucket no type serves at any target has nothing to draw.
            if data
                .series
                .iter()
                .all(|s| s.values.iter().all(Option::is_none))
            {
                continue;
            }
            figures.draw(
                &data,
                &format!("tokens_per_dollar_vs_slo_{stem}"),
                plots::tokens_per_dollar_vs_slo,
            )?;
        }
    }
    Ok(())
}

/// Bucket labels in index order.
fn labels(rows: &[&ProfileRow], key: impl Fn(&ProfileRow) -> (u32, String)) -> Vec<String> {
    let mut by_index: BTreeMap<u32, String> = BTreeMap::new();
    for row in rows {
        let (index, label) = key(row);
        by_index.insert(index, label);
    }
    by_index.into_values().collect()
}

/// The buckets of the requested sizes, or the three most common buckets.
fn chosen_buckets(rows: &[&ProfileRow], sizes: &[[u32; 2]]) -> Vec<(u32, u32)> {
    let mut buckets: Vec<(u32, u32)> = Vec::new();
    if sizes.is_empty() {
        let mut shares: BTreeMap<(u32, u32), f64> = BTreeMap::new();
        for row in rows {
            shares.insert((row.input_bucket, row.output_bucket), row.bucket_share);
        }
        let mut ranked: Vec<((u32, u32), f64)> = shares.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        buckets.extend(ranked.iter().take(3).map(|(bucket, _)| *bucket));
    } else {
        for [input, output] in sizes {
            let found = rows
                .iter()
                .find(|r| within(&r.input_range, *input) && within(&r.output_range, *output));
            if let Some(row) = found {
                let bucket = (row.input_bucket, row.output_bucket);
                if !buckets.contains(&bucket) {
                    buckets.push(bucket);
                }
            }
        }
    }
    buckets
}

/// Whether `tokens` lies in an inclusive `lo-hi` range label.
fn within(range: &str, tokens: u32) -> bool {
    range
        .split_once('-')
        .and_then(|(low, high)| Some((low.parse::<u32>().ok()?, high.parse::<u32>().ok()?)))
        .is_some_and(|(low, high)| low <= tokens && tokens <= high)
}
