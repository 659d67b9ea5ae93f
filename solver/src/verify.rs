//! Validation by simulation, and the plan → simulate → fix loop.
//!
//! A plan rests on Mélange's additive-load assumption: a replica that sustains `T_b` req/s of
//! bucket `b` alone sustains any mix whose loads `Σ r_b / T_b` sum to at most one. Mixed batches,
//! burstiness and routing noise break it to varying degrees; simulating the chosen fleet on the
//! workload says by how much. When the fleet misses the SLO, the capacities of the instance types
//! that missed it are derated and the program re-solved, round after round.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sim::{
    AssignmentTable, CapacityTable, Cluster, RecordSink, RequestRecord, RequestStatus, SimConfig,
};
use workloads::{BucketEdges, Request};

use crate::plan::{Plan, solve};
use crate::problem::{PlanProblem, SolveOptions};
use crate::profile::{LatencySamples, ProfileSlo, SloVerdict};

/// The SLO verdict on one group of requests (a GPU type, or a size bucket).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupValidation {
    /// Instance name or bucket label.
    pub group: String,
    /// Requests completed in the group.
    pub completed: u64,
    /// Fraction of the group's requests, completed or turned away, that met every per-request
    /// target.
    pub attainment: f64,
    /// The profiled SLO statistics on the group.
    pub verdict: SloVerdict,
    /// Whether every statistic holds.
    pub met: bool,
}

/// What simulating one fleet on the workload showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    /// The fleet, as a cluster spec.
    pub allocation: String,
    /// Its price, $/h; for an autoscaled fleet, the dollars billed over the run (each
    /// replica's billed life) divided by the run's hours.
    pub usd_per_hour: f64,
    /// Simulated span of the run, seconds.
    pub span_s: f64,
    /// What the autoscaler did (autoscaled fleets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<sim::ScalingReport>,
    /// Requests that arrived.
    pub arrived: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests rejected (too long for every replica of the fleet).
    pub rejected: u64,
    /// Fraction of requests (completed or rejected) that met every per-request target.
    pub attainment: f64,
    /// The profiled SLO statistics over all completed requests.
    pub overall: SloVerdict,
    /// Whether the overall statistics hold.
    pub overall_met: bool,
    /// Per instance type.
    pub types: Vec<GroupValidation>,
    /// Per size bucket holding requests.
    pub buckets: Vec<GroupValidation>,
    /// Requests beyond the last bucket edge (counted in the totals, in no bucket row).
    pub beyond_buckets: u64,
    /// Median time to first token, seconds.
    pub ttft_p50_s: f64,
    /// 90th-percentile time to first token, seconds.
    pub ttft_p90_s: f64,
    /// 99th-percentile time to first token, seconds.
    pub ttft_p99_s: f64,
    /// Median TPOT `(e2e − ttft) / (out − 1)`, seconds.
    pub tpot_p50_s: f64,
    /// 90th-percentile TPOT, seconds.
    pub tpot_p90_s: f64,
    /// Mean e2e ÷ output tokens (Mélange's "TPOT"), seconds.
    pub norm_latency_mean_s: f64,
    /// Mean fraction of time replicas were busy.
    pub mean_busy_fraction: f64,
    /// TTFT at percentiles 0, 1, …, 100 of completed requests, seconds (empty if none): the
    /// whole distribution in 101 numbers, for CDF plots.
    pub ttft_percentiles_s: Vec<f64>,
    /// TPOT `(e2e − ttft) / (out − 1)` at percentiles 0, 1, …, 100, seconds (empty if none).
    pub tpot_percentiles_s: Vec<f64>,
}

/// Values at percentiles 0, 1, …, 100 (nearest rank on the sorted samples); empty for none.
pub fn percentiles(samples: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return Vec::new();
    }
    sorted.sort_by(f64::total_cmp);
    let last = sorted.len() - 1;
    (0..=100)
        .map(|percent| sorted[(percent * last + 50) / 100])
        .collect()
}

impl Validation {
    /// Whether the fleet passes: the overall statistics and every type's statistics hold, and
    /// per-request attainment reaches `target` when one is given.
    pub fn passes(&self, target: Option<f64>) -> bool {
        self.overall_met
            && self.types.iter().all(|t| t.completed == 0 || t.met)
            && target.is_none_or(|target| self.attainment >= target)
    }
}

#[derive(Default)]
struct Group {
    samples: LatencySamples,
    completed: u64,
    met: u64,
}

impl Group {
    fn finish(self, name: String, slo: &ProfileSlo) -> GroupValidation {
        let verdict = slo.evaluate(&self.samples);
        GroupValidation {
            group: name,
            completed: self.completed,
            attainment: self.met as f64 / (self.completed + self.samples.unserved).max(1) as f64,
            met: verdict.met(),
            verdict,
        }
    }
}

/// Groups completed requests' latencies by instance type and by bucket, and counts the
/// requests turned away.
struct ValidationSink<'a> {
    edges: &'a BucketEdges,
    overall: Group,
    types: BTreeMap<String, Group>,
    buckets: BTreeMap<(usize, usize), Group>,
    beyond_buckets: u64,
}

impl RecordSink for ValidationSink<'_> {
    fn request(&mut self, record: &RequestRecord) -> std::io::Result<()> {
        let bucket = self
            .edges
            .bucket_of(record.input_tokens, record.output_tokens);
        if bucket.is_none() {
            self.beyond_buckets += 1;
        }
        if record.status != RequestStatus::Completed {
            // Turned away (no type in the fleet holds it; runs here drain, so nothing is left in
            // flight): never served. It reached no replica, so only the overall and bucket
            // statistics count it.
            self.overall.samples.unserved += 1;
            if let Some(bucket) = bucket {
                self.buckets.entry(bucket).or_default().samples.unserved += 1;
            }
            return Ok(());
        }
        let met = u64::from(record.slo_met == Some(true));
        let add = |group: &mut Group| {
            group.samples.add(record);
            group.completed += 1;
            group.met += met;
        };
        add(&mut self.overall);
        add(self.types.entry(record.instance.clone()).or_default());
        if let Some(bucket) = bucket {
            add(self.buckets.entry(bucket).or_default());
        }
        Ok(())
    }
    fn sample(&mut self, _: &sim::SampleRecord) -> std::io::Result<()> {
        Ok(())
    }
}

/// The load a plan sends each type in each size bucket (planned req/s), as the size-aware and
/// solver-proportional routers read it; `None` when a bucket is not one of `edges`' cells (a
/// plan of Mélange's JSON names its buckets as it likes).
pub fn plan_assignment(plan: &Plan, edges: &BucketEdges) -> Option<AssignmentTable> {
    let mut table = AssignmentTable::new(edges.clone());
    for class in &plan.classes {
        for bucket in &class.buckets {
            let (input, output) = crate::melange::parse_bucket_label(&bucket.bucket)?;
            for share in &bucket.shares {
                let load =
                    table.load(&share.gpu_type, input, output) + bucket.rate * share.fraction;
                table.set(&share.gpu_type, input, output, load).ok()?;
            }
        }
    }
    Some(table)
}

/// Simulates `cluster` on `requests` and checks the profiled SLO overall, per type and per bucket.
pub fn validate(
    cluster: &Cluster,
    capacity: Option<&CapacityTable>,
    config: &SimConfig,
    slo: &ProfileSlo,
    edges: &BucketEdges,
    requests: impl IntoIterator<Item = Request>,
) -> Result<Validation, String> {
    let config = SimConfig {
        slo: slo.per_request_targets(),
        ..config.clone()
    };
    let mut sink = ValidationSink {
        edges,
        overall: Group::default(),
        types: BTreeMap::new(),
        buckets: BTreeMap::new(),
        beyond_buckets: 0,
    };
    let summary = sim::simulate(cluster, &config, capacity, requests, &mut sink, None)
        .map_err(|err| err.to_string())?;
    let overall = slo.evaluate(&sink.overall.samples);
    let answered = summary.requests.completed + summary.requests.rejected;
    let usd_per_hour = match &summary.autoscale {
        Some(scaling) if summary.span_s > 0.0 => {
            scaling.types.iter().fold(0.0, |sum, t| sum + t.billed_usd) / (summary.span_s / 3600.0)
        }
        _ => cluster.usd_per_hour(),
    };
    Ok(Validation {
        allocation: cluster.describe(),
        usd_per_hour,
        span_s: summary.span_s,
        scaling: summary.autoscale.clone(),
        arrived: summary.requests.arrived,
        completed: summary.requests.completed,
        rejected: summary.requests.rejected,
        attainment: sink.overall.met as f64 / answered.max(1) as f64,
        overall_met: overall.met(),
        overall,
        types: sink
            .types
            .into_iter()
            .map(|(name, group)| group.finish(name, slo))
            .collect(),
        buckets: sink
            .buckets
            .into_iter()
            .map(|((i, j), group)| group.finish(crate::melange::bucket_label(i, j), slo))
            .collect(),
        beyond_buckets: sink.beyond_buckets,
        ttft_p50_s: summary.latency.ttft_s.p50,
        ttft_p90_s: summary.latency.ttft_s.p90,
        ttft_p99_s: summary.latency.ttft_s.p99,
        tpot_p50_s: summary.latency.tpot_s.p50,
        tpot_p90_s: summary.latency.tpot_s.p90,
        norm_latency_mean_s: summary.latency.norm_latency_s.mean,
        mean_busy_fraction: summary
            .replicas
            .iter()
            .map(|r| r.busy_fraction)
            .sum::<f64>()
            / summary.replicas.len().max(1) as f64,
        ttft_percentiles_s: percentiles(&sink.overall.samples.ttft_s),
        tpot_percentiles_s: percentiles(&sink.overall.samples.tpot_s),
    })
}

/// Settings of the plan → simulate → fix loop.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    /// Per-request attainment the fleet must reach (besides the SLO statistics), if any.
    pub target_attainment: Option<f64>,
    /// Rounds before giving up.
    pub max_rounds: u32,
    /// Capacity factor applied to a type each round it misses the SLO (e.g. 0.85).
    pub derate_step: f64,
    /// Simulator settings (router, engine, seed).
    pub sim: SimConfig,
}

impl Default for VerifySettings {
    fn default() -> Self {
        Self {
            target_attainment: None,
            max_rounds: 6,
            derate_step: 0.85,
            sim: SimConfig {
                router: sim::RouterKind::Melange,
                ..SimConfig::default()
            },
        }
    }
}

/// One round: the plan solved with the current derating, and its simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyRound {
    /// Round number, from 1.
    pub round: u32,
    /// Capacity factor per type used in this round's program (1 = as profiled).
    pub derating: BTreeMap<String, f64>,
    /// The plan's cost, $/h.
    pub planned_usd_per_hour: f64,
    /// The simulated fleet.
    pub validation: Validation,
    /// Whether it passed.
    pub passed: bool,
}

/// The loop's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyOutcome {
    /// Every round, in order.
    pub rounds: Vec<VerifyRound>,
    /// The first plan's cost, $/h (what the solver alone would have bought).
    pub planned_usd_per_hour: f64,
    /// The cost of the fleet that passed, $/h (`None` if none did).
    pub verified_usd_per_hour: Option<f64>,
    /// The final plan (the passing one, or the last tried).
    pub final_plan: Plan,
    /// Why the loop stopped without a passing fleet, if it did.
    pub gave_up: Option<String>,
}

impl fmt::Display for VerifyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verification by simulation:")?;
        writeln!(
            f,
            "{:>5}  {:<36}  {:>8}  {:>10}  {:>8}  {:>6}  types missing the SLO",
            "round", "fleet", "$/h", "attainment", "rejected", "passed"
        )?;
        for round in &self.rounds {
            let missing: Vec<&str> = round
                .validation
                .types
                .iter()
                .filter(|t| t.completed > 0 && !t.met)
                .map(|t| t.group.as_str())
                .collect();
            writeln!(
                f,
                "{:>5}  {:<36}  {:>8.2}  {:>9.2}%  {:>8}  {:>6}  {}",
                round.round,
                round.validation.allocation,
                round.validation.usd_per_hour,
                round.validation.attainment * 100.0,
                round.validation.rejected,
                if round.passed { "yes" } else { "no" },
                if round.validation.overall_met && missing.is_empty() {
                    "-".to_string()
                } else if missing.is_empty() {
                    "(overall)".to_string()
                } else {
                    missing.join(", ")
                }
            )?;
        }
        match (self.verified_usd_per_hour, &self.gave_up) {
            (Some(verified), _) => writeln!(
                f,
                "planned ${:.2}/h, verified ${verified:.2}/h ({:+.1}%): the fleet to run is {}",
                self.planned_usd_per_hour,
                (verified / self.planned_usd_per_hour - 1.0) * 100.0,
                self.rounds
                    .iter()
                    .find(|r| r.passed)
                    .map_or("-", |r| r.validation.allocation.as_str())
            ),
            (None, Some(reason)) => writeln!(
                f,
                "planned ${:.2}/h; no fleet verified: {reason}",
                self.planned_usd_per_hour
            ),
            (None, None) => writeln!(f, "no fleet verified"),
        }
    }
}

/// Plans, simulates the plan, and re-plans with derated capacities until the fleet passes.
///
/// `build_cluster` turns a plan into a cluster (it knows the catalog, model and options); the
/// capacity table feeds Mélange's router; `requests` is replayed unchanged every round.
pub fn plan_and_verify(
    problem: &PlanProblem,
    options: &SolveOptions,
    capacity: &CapacityTable,
    slo: &ProfileSlo,
    requests: &[Request],
    settings: &VerifySettings,
    build_cluster: &dyn Fn(&Plan) -> Result<Cluster, String>,
) -> Result<VerifyOutcome, String> {
    if settings.max_rounds == 0 {
        return Err("verification needs at least one round".into());
    }
    if !(settings.derate_step > 0.0 && settings.derate_step < 1.0) {
        return Err(format!(
            "derate step {}: expected a factor in (0, 1)",
            settings.derate_step
        ));
    }
    let mut derating: BTreeMap<String, f64> = problem
        .gpu_types
        .iter()
        .map(|gpu| (gpu.name.clone(), 1.0))
        .collect();
    let mut rounds = Vec::new();
    let mut first_cost = None;
    let mut last_plan: Option<Plan> = None;
    let mut gave_up = None;
    for round in 1..=settings.max_rounds {
        let mut derated = problem.clone();
        for class in &mut derated.classes {
            for (gpu, table) in problem.gpu_types.iter().zip(&mut class.capacity) {
                let factor = derating[&gpu.name];
                table.iter_mut().for_each(|value| *value *= factor);
            }
        }
        let plan = match solve(&derated, options) {
            Ok(plan) => plan,
            Err(err) if round > 1 => {
                gave_up = Some(format!(
                    "after derating, the program has no solution ({err}); caps or the SLO are too tight"
                ));
                break;
            }
            Err(err) => return Err(err.to_string()),
        };
        first_cost.get_or_insert(plan.hourly_cost);
        let cluster = build_cluster(&plan)?;
        // Routers that follow an assignment (size-aware, solver-proportional) follow this
        // round's plan, unless the caller gave a table of its own.
        let sim = match &settings.sim.assignment {
            Some(_) => settings.sim.clone(),
            None => SimConfig {
                assignment: plan_assignment(&plan, &capacity.edges),
                ..settings.sim.clone()
            },
        };
        let validation = validate(
            &cluster,
            Some(capacity),
            &sim,
            slo,
            &capacity.edges,
            requests.iter().cloned(),
        )?;
        let passed = validation.passes(settings.target_attainment);
        let failing: Vec<String> = validation
            .types
            .iter()
            .filter(|t| t.completed > 0 && !t.met)
            .map(|t| t.group.clone())
            .collect();
        let answered = (validation.completed + validation.rejected).max(1) as f64;
        let best_possible = 1.0 - validation.rejected as f64 / answered;
        rounds.push(VerifyRound {
            round,
            derating: derating.clone(),
            planned_usd_per_hour: plan.hourly_cost,
            validation,
            passed,
        });
        last_plan = Some(plan);
        if passed {
            break;
        }
        if let Some(target) = settings.target_attainment
            && best_possible < target
        {
            gave_up = Some(format!(
                "{:.2}% of requests are too long for every instance in the fleet, so attainment cannot reach {:.2}%",
                (1.0 - best_possible) * 100.0,
                target * 100.0
            ));
            break;
        }
        if let Some(check) = rounds.last().and_then(|r| {
            r.validation
                .overall
                .checks
                .iter()
                .find(|c| c.fails_on_unserved_alone)
        }) {
            // More capacity of the same types cannot serve a request none of them holds.
            let rejected = rounds.last().map_or(0, |r| r.validation.rejected);
            let (requests, are, them) = if rejected == 1 {
                ("request", "is", "it")
            } else {
                ("requests", "are", "them")
            };
            gave_up = Some(format!(
                "{rejected} {requests} {are} too long for every instance in the fleet, and the \
                 SLO counts {them} as never served, so its {} {} cannot be met however fast the \
                 rest are: add a GPU type that holds {them}, or drop {them} from the workload",
                check.stat, check.metric
            ));
            break;
        }
        // Derate the types that missed; when none did (the overall statistic or attainment
        // missed), derate every type in use.
        let to_derate: Vec<String> = if failing.is_empty() {
            let plan = last_plan.as_ref().expect("just set");
            plan.allocations
                .iter()
                .filter(|a| a.instances > 0)
                .map(|a| a.gpu_type.clone())
                .collect()
        } else {
            failing
        };
        for name in to_derate {
            if let Some(factor) = derating.get_mut(&name) {
                *factor *= settings.derate_step;
            }
        }
        if round == settings.max_rounds {
            gave_up = Some(format!(
                "the fleet still misses the SLO after {} rounds",
                settings.max_rounds
            ));
        }
    }
    let verified = rounds
        .iter()
        .find(|r| r.passed)
        .map(|r| r.validation.usd_per_hour);
    Ok(VerifyOutcome {
        planned_usd_per_hour: first_cost.unwrap_or(0.0),
        verified_usd_per_hour: verified,
        final_plan: last_plan.expect("at least one round ran"),
        gave_up: if verified.is_some() { None } else { gave_up },
        rounds,
    })
}
