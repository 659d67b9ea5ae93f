//! `medley whatif`: re-plan the cheapest GPU mix as one GPU type's price varies, under one or
//! several price books, and find the prices where a type enters or leaves the mix.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use experiments::planning::{PlanSettings, WorkloadInput, plan_workload, reprice};
use gpu_models::Catalog;
use serde::Serialize;
use solver::{Formulation, ProfileSet, SolveOptions};
use workloads::SizeHistogram;

use super::CmdResult;
use super::common::workload_requests;
use super::profile::ProfileArgs;
use super::table::TextTable;

/// Arguments of `medley whatif`.
#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// The price range of one GPU type, `GPU=LOW:HIGH:STEP` in $/GPU-hour, e.g.
    /// `H100-SXM=1.5:8:0.5`.
    #[arg(long, value_name = "GPU=LOW:HIGH:STEP")]
    pub vary: String,
    /// Price books to compare side by side, comma-separated (default: --prices, or the
    /// catalog's default book).
    #[arg(long, value_name = "BOOK,BOOK")]
    pub price_books: Option<String>,
    /// Request rate, req/s (default: the workload's own).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Length of the stream drawn from a preset (its size histogram), e.g. `30m` (default 10m;
    /// presets only: a trace is replayed to its end).
    #[arg(long)]
    pub duration: Option<String>,
    /// Slices per bucket (Mélange's slice factor).
    #[arg(long, default_value_t = 8)]
    pub slice_factor: u32,
    /// Where the figures go.
    #[arg(long, default_value = "results/whatif")]
    pub out: PathBuf,
    /// Skip drawing figures.
    #[arg(long)]
    pub no_plots: bool,
    /// Print the sweep, crossovers and figures as JSON.
    #[arg(long)]
    pub json: bool,
    /// Profiling and workload inputs (--workload is required).
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// The optimal mix at one price.
#[derive(Debug, Clone, Serialize)]
pub struct WhatIfPoint {
    /// Price book.
    pub price_book: String,
    /// The varied GPU's price, $/GPU-hour.
    pub price: f64,
    /// Optimal hourly cost, $/h.
    pub usd_per_hour: f64,
    /// Instances per type in the optimal mix.
    pub mix: BTreeMap<String, u32>,
}

/// A price where the optimal mix changes.
#[derive(Debug, Clone, Serialize)]
pub struct Crossover {
    /// Price book.
    pub price_book: String,
    /// The price (to within `resolution`) where the mix changes, $/GPU-hour.
    pub price: f64,
    /// Half the width of the bracket the change was narrowed to, $/GPU-hour.
    pub resolution: f64,
    /// Mix just below the price.
    pub below: BTreeMap<String, u32>,
    /// Mix just above the price.
    pub above: BTreeMap<String, u32>,
    /// Types that enter the mix as the price rises past this point.
    pub entering: Vec<String>,
    /// Types that leave the mix as the price rises past this point.
    pub leaving: Vec<String>,
}

/// Parses `GPU=LOW:HIGH:STEP` into the GPU and its prices (LOW, LOW+STEP, …, up to HIGH).
pub fn parse_vary(text: &str) -> Result<(String, Vec<f64>), String> {
    let bad = |why: &str| {
        format!(
            "--vary '{text}': {why}; expected GPU=LOW:HIGH:STEP in $/GPU-hour, e.g. H100-SXM=1.5:8:0.5"
        )
    };
    let (gpu, range) = text.split_once('=').ok_or_else(|| bad("no '='"))?;
    let parts: Vec<&str> = range.split(':').collect();
    let [low, high, step] = parts[..] else {
        return Err(bad("the range needs three numbers"));
    };
    let number = |part: &str| {
        part.trim()
            .parse::<f64>()
            .map_err(|_| bad(&format!("'{part}' is not a number")))
    };
    let (low, high, step) = (number(low)?, number(high)?, number(step)?);
    if !(low > 0.0 && high.is_finite() && high >= low) {
        return Err(bad("need 0 < LOW <= HIGH"));
    }
    if !(step > 0.0 && step.is_finite()) {
        return Err(bad("STEP must be positive"));
    }
    let count = ((high - low) / step + 1e-9).floor() as usize + 1;
    if count > 10_000 {
        return Err(bad("more than 10,000 prices; take a bigger STEP"));
    }
    // Prices by index, not by accumulation, so 0.1 steps do not drift.
    let prices = (0..count).map(|i| low + step * i as f64).collect();
    Ok((gpu.trim().to_string(), prices))
}

/// Solves the plan at one price.
struct Planner<'a> {
    profiles: &'a ProfileSet,
    workload: WorkloadInput<'a>,
    settings: PlanSettings,
    catalog: &'a Catalog,
    instance_options: gpu_models::InstanceOptions,
    gpu: String,
}

impl Planner<'_> {
    fn at(&self, book: &gpu_models::PriceBook, price: f64) -> Result<WhatIfPoint, String> {
        let priced = reprice(self.profiles, book, &[(self.gpu.clone(), price)])?;
        let report = plan_workload(
            priced,
            self.workload,
            &self.settings,
            self.catalog,
            &self.instance_options,
        )
        .map_err(|err| err.to_string())?;
        Ok(WhatIfPoint {
            price_book: book.name.clone(),
            price,
            usd_per_hour: report.plan.hourly_cost,
            mix: report
                .plan
                .allocations
                .iter()
                .filter(|a| a.instances > 0)
                .map(|a| (a.gpu_type.clone(), a.instances))
                .collect(),
        })
    }

    /// Every mix change between two prices whose mixes differ, each narrowed to within a cent
    /// by bisection (the solver is cheap). A bracket may hold several changes (one type enters
    /// at one price, another leaves at a higher one): a midpoint whose mix differs from both
    /// ends splits it, and both halves are searched.
    fn crossovers(
        &self,
        book: &gpu_models::PriceBook,
        below: &WhatIfPoint,
        above: &WhatIfPoint,
    ) -> Result<Vec<Crossover>, String> {
        if above.price - below.price <= 0.01 {
            return Ok(vec![Self::change(book, below, above)]);
        }
        let middle = self.at(book, (below.price + above.price) / 2.0)?;
        let mut found = Vec::new();
        if middle.mix != below.mix {
            found.extend(self.crossovers(book, below, &middle)?);
        }
        if middle.mix != above.mix {
            found.extend(self.crossovers(book, &middle, above)?);
        }
        Ok(found)
    }

    /// The change between two mixes a cent or less apart.
    fn change(book: &gpu_models::PriceBook, low: &WhatIfPoint, high: &WhatIfPoint) -> Crossover {
        let entering = high
            .mix
            .keys()
            .filter(|gpu| !low.mix.contains_key(*gpu))
            .cloned()
            .collect();
        let leaving = low
            .mix
            .keys()
            .filter(|gpu| !high.mix.contains_key(*gpu))
            .cloned()
            .collect();
        Crossover {
            price_book: book.name.clone(),
            price: (low.price + high.price) / 2.0,
            resolution: (high.price - low.price) / 2.0,
            below: low.mix.clone(),
            above: high.mix.clone(),
            entering,
            leaving,
        }
    }
}

fn mix_text(mix: &BTreeMap<String, u32>) -> String {
    if mix.is_empty() {
        return "-".into();
    }
    mix.iter()
        .map(|(gpu, count)| format!("{gpu}:{count}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `medley whatif`.
pub fn run(args: WhatIfArgs, catalog: &Catalog) -> CmdResult {
    let (gpu, prices) = parse_vary(&args.vary)?;
    let gpu = catalog.gpu(&gpu)?.name.clone();
    let Some(workload) = args.profile.workload.clone() else {
        return Err("whatif: give --workload PRESET|TRACE (the sizes to plan for)".into());
    };
    if args.slice_factor == 0 {
        return Err("--slice-factor: expected at least 1".into());
    }
    let books: Vec<&gpu_models::PriceBook> = match &args.price_books {
        Some(list) => list
            .split(',')
            .map(|name| catalog.price_book(Some(name.trim())))
            .collect::<Result<_, _>>()?,
        None => vec![catalog.price_book(args.profile.prices.as_deref())?],
    };
    let (requests, description, rate_rps) = workload_requests(
        &workload,
        args.rate,
        args.duration.as_deref(),
        args.profile.seed,
    )?;
    let histogram = SizeHistogram::from_requests(args.profile.edges()?, &requests);
    // Capacities do not depend on prices: profile once (cached), re-plan per price.
    let profiles = args.profile.run(catalog, Some(&requests))?;
    if !profiles.types.iter().any(|t| t.gpu == gpu) {
        return Err(format!(
            "--vary {gpu}: not among the profiled types (--gpus {})",
            args.profile.gpus
        )
        .into());
    }
    let planner = Planner {
        profiles: &profiles,
        workload: WorkloadInput {
            requests: &requests,
            description: &description,
            rate_rps,
            histogram: &histogram,
        },
        settings: PlanSettings {
            slice_factor: args.slice_factor,
            options: SolveOptions {
                formulation: Formulation::Compact,
                ..SolveOptions::default()
            },
            ..PlanSettings::default()
        },
        catalog,
        instance_options: args.profile.engine.instance_options()?,
        gpu: gpu.clone(),
    };
    let mut sweep = Vec::new();
    let mut crossovers = Vec::new();
    for book in &books {
        let points: Vec<WhatIfPoint> = prices
            .iter()
            .map(|price| planner.at(book, *price))
            .collect::<Result<_, _>>()?;
        for pair in points.windows(2) {
            if pair[0].mix != pair[1].mix {
                crossovers.extend(planner.crossovers(book, &pair[0], &pair[1])?);
            }
        }
        sweep.extend(points);
    }
    let mut figures = Vec::new();
    if !args.no_plots {
        std::fs::create_dir_all(&args.out)?;
        for book in &books {
            let points: Vec<&WhatIfPoint> =
                sweep.iter().filter(|p| p.price_book == book.name).collect();
            let mixes: Vec<BTreeMap<String, u32>> = points.iter().map(|p| p.mix.clone()).collect();
            let data = plots::PriceWhatIf {
                title: format!(
                    "Optimal mix as the {gpu} price varies ({rate_rps:.2} req/s, {}, {} prices)",
                    profiles.slo_text, book.name
                ),
                gpu_type: gpu.clone(),
                prices_per_hour: points.iter().map(|p| p.price).collect(),
                optimal_cost_per_hour: points.iter().map(|p| p.usd_per_hour).collect(),
                mix: super::figures::stacked(&mixes),
            };
            let stem = super::figures::file_stem(&format!("whatif_{gpu}_{}", book.name));
            let figure = plots::price_what_if(&data, &args.out, &stem)?;
            let json = args.out.join(format!("{stem}.json"));
            std::fs::write(&json, serde_json::to_string_pretty(&data)?)?;
            figures.extend([figure.png, figure.svg, json]);
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "workload": description,
                "rate_rps": rate_rps,
                "slo": profiles.slo_text,
                "gpu": gpu,
                "sweep": sweep,
                "crossovers": crossovers,
                "figures": figures,
            }))?
        );
        return Ok(());
    }
    println!(
        "what if {gpu} cost something else? {description}; SLO {}; slice factor {}",
        profiles.slo_text, args.slice_factor
    );
    let mut table = TextTable::new(["prices", &format!("{gpu} $/h"), "optimal $/h", "mix"]);
    for point in &sweep {
        table.row([
            point.price_book.clone(),
            format!("{:.2}", point.price),
            format!("{:.2}", point.usd_per_hour),
            mix_text(&point.mix),
        ]);
    }
    print!("{}", table.render());
    if crossovers.is_empty() {
        println!("\nthe optimal mix is the same at every price tried");
    } else {
        println!("\ncrossovers (as the {gpu} price rises):");
        for crossover in &crossovers {
            let mut change = Vec::new();
            if !crossover.entering.is_empty() {
                change.push(format!("{} enters", crossover.entering.join(", ")));
            }
            if !crossover.leaving.is_empty() {
                change.push(format!("{} leaves", crossover.leaving.join(", ")));
            }
            if change.is_empty() {
                change.push("counts change".into());
            }
            println!(
                "  {}: at ${:.2} ± {:.3}/GPU-hour {}: {} -> {}",
                crossover.price_book,
                crossover.price,
                crossover.resolution,
                change.join(", "),
                mix_text(&crossover.below),
                mix_text(&crossover.above)
            );
        }
    }
    for figure in &figures {
        println!("  {}", figure.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_parses_ranges_and_rejects_nonsense() {
        let (gpu, prices) = parse_vary("H100-SXM=1.5:3:0.5").unwrap();
        assert_eq!(gpu, "H100-SXM");
        assert_eq!(prices, vec![1.5, 2.0, 2.5, 3.0]);
        let (_, prices) = parse_vary("A10G=0.1:0.3:0.1").unwrap();
        assert_eq!(prices.len(), 3, "{prices:?}");
        for bad in [
            "H100",
            "H100=1:2",
            "H100=2:1:0.5",
            "H100=1:2:0",
            "H100=a:2:1",
        ] {
            let err = parse_vary(bad).unwrap_err();
            assert!(err.contains("GPU=LOW:HIGH:STEP"), "{bad}: {err}");
        }
    }
}
