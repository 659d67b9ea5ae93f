//! An exact branch and bound for the compact program, in pure Rust and without a general MIP solver.
//!
//! Variables: the instance count `n_t` of every type and, for every bucket `i` that two or more
//! types can serve, the slices `x_it ∈ 0..=k` it sends to each (buckets only one type can serve are
//! constant loads). Each node solves the LP relaxation with [`DualSimplex`], warm-started from the
//! basis the previous node left (bound changes keep it dual feasible), and prunes on bounds that do
//! not trust the LP's arithmetic. The LP's basis is priced with the true costs, and from those
//! duals come the Lagrangian function of the load constraints,
//!
//! `L(λ) = Σ_t min_{n_t ∈ box} (c_t − Σ_s λ_st) n_t + Σ_st λ_st f_st + Σ_i min_{x_i ∈ box, Σ x_i = k} Σ_t λ_st a_it x_it`,
//!
//! evaluated exactly (valid for any `λ ≥ 0`, equal to the LP bound at optimal duals), and a box
//! bound over all rows that also drives reduced-cost fixing. Branching is on fractional counts
//! first (the dearest type's, whose count moves the bound most), then on fractional slice counts;
//! the search dives into the nearer rounding and otherwise takes the open node with the least
//! bound. Incumbents come from the greedy plan, LP rounding, packing slices into the LP's counts
//! when those are integral (rounding and repair, then a small search over whole slices), and a
//! local search that frees whole instances; every plan is re-checked in exact arithmetic before
//! it is accepted. When that packing search proves a node's whole counts unpackable, the node is
//! split into children that leave exactly those counts out. The search stops when every open
//! node's bound reaches the incumbent (optimal to a relative `1e-9`, or within a relative gap
//! tolerance the caller gives), or at a node limit, with the least bound left unexplored kept as
//! the honest remaining gap.
//!
//! The LP relaxation does not see that slices come whole, so on instances whose LP optimum packs
//! types exactly full, the bound can stay flat while many slice assignments are tried; the node
//! limit is what keeps such searches finite.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::baseline::instances_for_load;
use crate::error::PlanError;
use crate::ilp::{CoreSolution, Demand, can_serve, greedy};
use crate::lp::{BasisSnapshot, DualSimplex, LpStatus, TruePricing};
use crate::problem::GpuType;

/// Values this close to an integer count as integral (below the planner's 1e-9 ceiling slack).
const INTEGRALITY_TOLERANCE: f64 = 1e-9;
/// Relative gap under which a node cannot hold a strictly better plan.
const RELATIVE_PRUNE_TOLERANCE: f64 = 1e-9;
/// Load slack accepted when a slice is moved into a type's spare capacity.
const MOVE_TOLERANCE: f64 = 1e-9;
/// Nodes between runs of the rounding heuristic once the search is past its first dive.
const HEURISTIC_INTERVAL: u64 = 8;
/// Nodes the packing search may spend on one count vector reached by the search (see
/// [`search_packing`]). On the simulated 12-type profiles, the optimal counts of mix 5 at 100
/// req/s pack after 54, and the two unpackable count vectors below the optimum of mix 2 at 300
/// req/s are proven so after 82 and 74, which closes a search that otherwise stopped unproven at
/// 20,000 nodes. 2,000 proved one more synthetic instance at 1,000 req/s but doubled the time;
/// raising the budget each time the same counts come back (doubling up to 6,400) cut the nodes of
/// profile mix 10 at 1,000 req/s from 2,470 to 67 but tripled the synthetic set's time.
const PACK_SEARCH_NODES: u64 = 400;

/// What the search did, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct SearchStats {
    /// Nodes whose relaxation was solved.
    pub nodes: u64,
    /// Simplex pivots over all nodes.
    pub lp_iterations: u64,
    /// When the node limit or the gap tolerance stopped the search short of a proof: the least
    /// bound of the nodes it left unexplored.
    pub unproven_bound: Option<f64>,
}

/// One bucket (of one class in one scenario) whose slices are variables.
struct Item {
    scenario: usize,
    class: usize,
    bucket: usize,
    /// `(type, load of one slice in instances, structural variable)` per type that can serve it.
    slots: Vec<(usize, f64, usize)>,
}

/// The compact program laid out for the search.
struct Model<'a> {
    types: &'a [GpuType],
    scenarios: usize,
    slice_factor: u32,
    items: Vec<Item>,
    /// Per structural slice variable (index − types): `(item, slot)`.
    slice_owner: Vec<(usize, usize)>,
    /// `[scenario][type]`: load of buckets only that type can serve.
    fixed_load: Vec<Vec<f64>>,
    /// Buckets one type serves alone: `(scenario, class, bucket, type)`.
    fixed_slices: Vec<(usize, usize, usize, usize)>,
}

impl Model<'_> {
    fn type_count(&self) -> usize {
        self.types.len()
    }

    fn load_row(&self, scenario: usize, gpu: usize) -> usize {
        self.items.len() + scenario * self.type_count() + gpu
    }

    /// Loads `[scenario][type]` of a slice assignment.
    fn loads(&self, slices: &[u32]) -> Vec<Vec<f64>> {
        let mut loads = self.fixed_load.clone();
        for item in &self.items {
            for &(gpu, load, variable) in &item.slots {
                let count = slices[variable - self.type_count()];
                if count > 0 {
                    loads[item.scenario][gpu] += f64::from(count) * load;
                }
            }
        }
        loads
    }

    /// The cheapest counts that carry `loads`, or `None` when a cap is exceeded.
    fn counts_for(&self, loads: &[Vec<f64>]) -> Option<Vec<u32>> {
        let mut counts = Vec::with_capacity(self.type_count());
        for (gpu, spec) in self.types.iter().enumerate() {
            let needed = loads
                .iter()
                .map(|scenario| instances_for_load(scenario[gpu]))
                .max()
                .unwrap_or(0)
                .max(spec.min_instances);
            if spec.max_instances.is_some_and(|cap| needed > cap) {
                return None;
            }
            counts.push(needed);
        }
        Some(counts)
    }

    fn cost(&self, counts: &[u32]) -> f64 {
        self.types
            .iter()
            .zip(counts)
            .map(|(gpu, &n)| gpu.hourly_cost * f64::from(n))
            .sum()
    }
}

/// A feasible plan: slices per slice variable, counts per type, and its cost.
#[derive(Debug, Clone)]
struct Incumbent {
    slices: Vec<u32>,
    counts: Vec<u32>,
    cost: f64,
}

/// Bound changes `(variable, lower, upper)` made at one node, linked to its parent's, so open
/// nodes share their ancestors' changes instead of copying them.
#[derive(Debug)]
struct Changes {
    parent: Option<Rc<Changes>>,
    own: Vec<(usize, f64, f64)>,
}

impl Changes {
    /// Every change from the root down, in order.
    fn from_root(self: &Rc<Self>) -> Vec<(usize, f64, f64)> {
        let mut chain = Vec::new();
        let mut link = Some(self);
        while let Some(changes) = link {
            chain.push(changes);
            link = changes.parent.as_ref();
        }
        chain
            .iter()
            .rev()
            .flat_map(|changes| changes.own.iter().copied())
            .collect()
    }
}

/// An open node: its parent's bound, its bound changes, and (for nodes left on the heap) the
/// basis its parent ended with, which is a much closer start than wherever the search is then.
#[derive(Debug, Clone)]
struct Node {
    bound: f64,
    sequence: u64,
    changes: Rc<Changes>,
    warm_start: Option<Rc<BasisSnapshot>>,
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Node {}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Node {
    /// The heap pops the least bound first, the oldest node on ties (deterministic).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .bound
            .total_cmp(&self.bound)
            .then_with(|| other.sequence.cmp(&self.sequence))
    }
}

/// Solves the compact program exactly; `Ok(None)` when it is infeasible (only caps can make it so).
///
/// A node limit, or a relative gap tolerance, may end the search before the proof; it then
/// returns its best plan with the least bound of the nodes left unexplored
/// (`SearchStats::unproven_bound`), or an error if the node limit came before any plan.
pub(crate) fn solve_branch_and_bound(
    types: &[GpuType],
    scenarios: &[Vec<Demand<'_>>],
    slice_factor: u32,
    time_limit: Option<Duration>,
    node_limit: Option<u64>,
    relative_gap: f64,
) -> Result<Option<(CoreSolution, SearchStats)>, PlanError> {
    let start = Instant::now();
    let model = build_model(types, scenarios, slice_factor);
    let mut search = Search::new(&model, types, scenarios, slice_factor, relative_gap);
    let unproven_bound = search.run(start, time_limit, node_limit)?;
    let stats = SearchStats {
        nodes: search.nodes,
        lp_iterations: search.lp.iterations(),
        unproven_bound,
    };
    Ok(search
        .incumbent
        .take()
        .map(|best| (to_core(&model, scenarios, &best), stats)))
}

fn build_model<'a>(
    types: &'a [GpuType],
    scenarios: &[Vec<Demand<'_>>],
    slice_factor: u32,
) -> Model<'a> {
    let type_count = types.len();
    let mut items = Vec::new();
    let mut slice_owner = Vec::new();
    let mut fixed_load = vec![vec![0.0; type_count]; scenarios.len()];
    let mut fixed_slices = Vec::new();
    for (scenario, demands) in scenarios.iter().enumerate() {
        for (class, demand) in demands.iter().enumerate() {
            for (bucket, &rate) in demand.rates.iter().enumerate() {
                if rate <= 0.0 {
                    continue;
                }
                let servers: Vec<usize> = (0..type_count)
                    .filter(|&t| can_serve(&types[t], demand.capacity[t][bucket]))
                    .collect();
                if let [only] = servers[..] {
                    fixed_load[scenario][only] += rate / demand.capacity[only][bucket];
                    fixed_slices.push((scenario, class, bucket, only));
                    continue;
                }
                let item_index = items.len();
                let slots = servers
                    .iter()
                    .enumerate()
                    .map(|(slot, &t)| {
                        slice_owner.push((item_index, slot));
                        let load = rate / f64::from(slice_factor) / demand.capacity[t][bucket];
                        (t, load, type_count + slice_owner.len() - 1)
                    })
                    .collect();
                items.push(Item {
                    scenario,
                    class,
                    bucket,
                    slots,
                });
            }
        }
    }
    Model {
        types,
        scenarios: scenarios.len(),
        slice_factor,
        items,
        slice_owner,
        fixed_load,
        fixed_slices,
    }
}

fn to_core(model: &Model<'_>, scenarios: &[Vec<Demand<'_>>], best: &Incumbent) -> CoreSolution {
    let type_count = model.type_count();
    let mut slices: Vec<Vec<Vec<Vec<u32>>>> = scenarios
        .iter()
        .map(|demands| {
            demands
                .iter()
                .map(|demand| vec![vec![0_u32; type_count]; demand.rates.len()])
                .collect()
        })
        .collect();
    for &(scenario, class, bucket, gpu) in &model.fixed_slices {
        slices[scenario][class][bucket][gpu] = model.slice_factor;
    }
    for item in &model.items {
        for &(gpu, _, variable) in &item.slots {
            slices[item.scenario][item.class][item.bucket][gpu] +=
                best.slices[variable - type_count];
        }
    }
    CoreSolution {
        instances: best.counts.clone(),
        slices,
        search_nodes: None,
        unproven_bound: None,
    }
}

/// The search state.
struct Search<'m, 'a> {
    model: &'m Model<'a>,
    lp: DualSimplex,
    /// Root bounds of the counts (the upper one shrinks as incumbents improve).
    count_lower: Vec<f64>,
    count_upper: Vec<f64>,
    incumbent: Option<Incumbent>,
    nodes: u64,
    sequence: u64,
    /// Nodes whose bound is within this fraction of the incumbent's cost are not explored.
    relative_gap: f64,
    /// The least bound of the nodes left unexplored only because of `relative_gap`.
    gap_pruned_bound: f64,
    /// The LP that looks for room to pack whole slices into given counts (built on first use).
    packer: Option<DualSimplex>,
    /// Count vectors [`Search::pack`] has tried, with the search nodes it spent on each (with no
    /// more it would find the same packing again) and whether it proved that nothing packs.
    packed: HashMap<Vec<u32>, (u64, Packing)>,
}

impl<'m, 'a> Search<'m, 'a> {
    fn new(
        model: &'m Model<'a>,
        types: &[GpuType],
        scenarios: &[Vec<Demand<'_>>],
        slice_factor: u32,
        relative_gap: f64,
    ) -> Self {
        let count_lower = types
            .iter()
            .map(|spec| f64::from(spec.min_instances))
            .collect();
        let count_upper = (0..types.len())
            .map(|gpu| most_useful_count(model, gpu))
            .collect();
        let mut lp = fresh_lp(model);
        if model.scenarios == 1 {
            lp.crash(&crash_basis(model, &lp));
        }
        let mut search = Self {
            model,
            lp,
            count_lower,
            count_upper,
            incumbent: None,
            nodes: 0,
            sequence: 0,
            relative_gap,
            gap_pruned_bound: f64::INFINITY,
            packer: None,
            packed: HashMap::new(),
        };
        // The greedy plan (each bucket on its cheapest type per unit of work) seeds the incumbent.
        if let Some(core) = greedy(types, scenarios, slice_factor) {
            let slices = model
                .slice_owner
                .iter()
                .map(|&(item, slot)| {
                    let item = &model.items[item];
                    core.slices[item.scenario][item.class][item.bucket][item.slots[slot].0]
                })
                .collect();
            search.offer(slices);
        }
        search
    }

    /// Records `slices` (improved by local search) as the incumbent if it is feasible and cheaper.
    fn offer(&mut self, mut slices: Vec<u32>) {
        let type_count = self.model.type_count();
        let complete = self.model.items.iter().all(|item| {
            let total: u32 = item
                .slots
                .iter()
                .map(|&(_, _, variable)| slices[variable - type_count])
                .sum();
            total == self.model.slice_factor
        });
        if !complete {
            return;
        }
        let loads = self.model.loads(&slices);
        let Some(mut counts) = self.model.counts_for(&loads) else {
            return;
        };
        free_instances(self.model, &mut slices, &mut counts);
        let cost = self.model.cost(&counts);
        if self
            .incumbent
            .as_ref()
            .is_none_or(|incumbent| cost < incumbent.cost - prune_tolerance(incumbent.cost))
        {
            self.incumbent = Some(Incumbent {
                slices,
                counts,
                cost,
            });
            self.tighten_count_uppers();
        }
    }

    /// Whole slices that fit into `targets` instances per type, if it can find them: with the
    /// counts fixed at `targets` and every slice free, an LP spreads the slices so that they
    /// take the least load (leaving the most room), and [`fit`] repairs its rounding. The
    /// search's own LP point at a node with whole counts is often packed to the brim, with no
    /// room for rounding; this one is not, unless nothing else fits. If the repair fails, a
    /// search of up to `search_nodes` nodes looks further (see [`search_packing`]).
    fn pack(&mut self, targets: &[u32], search_nodes: u64) -> Packing {
        match self.packed.get(targets) {
            Some((_, Packing::Impossible)) => return Packing::Impossible,
            Some((spent, _)) if *spent >= search_nodes => return Packing::Unknown,
            _ => {}
        }
        let outcome = self.try_pack(targets, search_nodes);
        // A packing found has been offered already; only a proof of the opposite is worth keeping.
        let remembered = match &outcome {
            Packing::Packed(_) => Packing::Unknown,
            other => other.clone(),
        };
        self.packed
            .insert(targets.to_vec(), (search_nodes, remembered));
        outcome
    }

    /// Whole slices that fit `targets` with each slice variable kept within `bounds` (a node's),
    /// from the packing LP rounded and repaired, if that works: no search, no memory. The
    /// search reaches the same counts again and again while it branches on slices (hundreds of
    /// times at 1,000 req/s), and each node's bounds steer the LP to another vertex, so a
    /// packing that one search of [`Search::pack`] missed often turns up this way. On the
    /// simulated profiles at 1,000 req/s it took mix 10 from 2,470 nodes to 512 and mix 6 from
    /// 460 to 237; on the synthetic tables at 1,000 req/s, seed 3 from 15,728 to 2,643.
    fn pack_within(&mut self, targets: &[u32], bounds: &[(f64, f64)]) -> Option<Vec<u32>> {
        let model = self.model;
        let lp = self.packer.as_mut()?;
        let type_count = model.type_count();
        for (gpu, &target) in targets.iter().enumerate() {
            lp.set_bounds(gpu, f64::from(target), f64::from(target));
        }
        for (index, &(lower, upper)) in bounds.iter().enumerate() {
            lp.set_bounds(type_count + index, lower, upper);
        }
        let limit = 20 * (lp.structurals() as u64 + 100);
        match lp.solve(limit) {
            LpStatus::Optimal => packed_lp_point(model, lp, targets),
            LpStatus::Singular => {
                self.packer = None;
                None
            }
            // Nothing fits within these bounds, which says nothing about the counts.
            LpStatus::Infeasible | LpStatus::Stalled => None,
        }
    }

    /// [`Search::pack`] without the memory of earlier attempts.
    fn try_pack(&mut self, targets: &[u32], search_nodes: u64) -> Packing {
        let model = self.model;
        let lp = self.packer.get_or_insert_with(|| {
            let mut lp = lp_with_objective(model, Objective::Load);
            // Start from every bucket on the type where its slices weigh least, with each
            // type's slack basic: the optimum whenever the counts leave room everywhere.
            let mut basic: Vec<usize> = model
                .items
                .iter()
                .map(|item| {
                    item.slots
                        .iter()
                        .min_by(|a, b| a.1.total_cmp(&b.1))
                        .map_or(0, |slot| slot.2)
                })
                .collect();
            let items = model.items.len();
            basic.extend((items..lp.rows()).map(|row| lp.structurals() + row));
            lp.crash(&basic);
            lp
        });
        let type_count = model.type_count();
        for (gpu, &target) in targets.iter().enumerate() {
            lp.set_bounds(gpu, f64::from(target), f64::from(target));
        }
        let slices = f64::from(model.slice_factor);
        for variable in type_count..lp.structurals() {
            lp.set_bounds(variable, 0.0, slices);
        }
        let limit = 20 * (lp.structurals() as u64 + 100);
        match lp.solve(limit) {
            LpStatus::Optimal => {}
            LpStatus::Singular => {
                // Start again from the slack basis next time; this packing is given up.
                self.packer = None;
                return Packing::Unknown;
            }
            LpStatus::Infeasible => return Packing::Impossible,
            LpStatus::Stalled => return Packing::Unknown,
        }
        match packed_lp_point(model, lp, targets) {
            Some(slices) => Packing::Packed(slices),
            None => search_packing(model, lp, targets, search_nodes),
        }
    }

    /// Starting from the LP's counts rounded up, packs whole slices (see [`Search::pack`]) and
    /// then takes instances away, dearest type first, while the rest still packs.
    fn descend(&mut self, counts: &[f64]) {
        let mut targets: Vec<u32> = counts
            .iter()
            .map(|count| (count - INTEGRALITY_TOLERANCE).ceil().max(0.0) as u32)
            .collect();
        let Packing::Packed(slices) = self.pack(&targets, 0) else {
            return;
        };
        self.offer(slices);
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by(|&a, &b| {
            self.model.types[b]
                .hourly_cost
                .total_cmp(&self.model.types[a].hourly_cost)
                .then(a.cmp(&b))
        });
        let mut improved = true;
        while improved {
            improved = false;
            for &gpu in &order {
                if targets[gpu] <= self.model.types[gpu].min_instances {
                    continue;
                }
                targets[gpu] -= 1;
                match self.pack(&targets, 0) {
                    Packing::Packed(slices) => {
                        self.offer(slices);
                        improved = true;
                    }
                    _ => targets[gpu] += 1,
                }
            }
        }
    }

    /// A better plan costs less than the incumbent, so `c_t n_t` < incumbent for every type.
    fn tighten_count_uppers(&mut self) {
        let Some(incumbent) = &self.incumbent else {
            return;
        };
        for (gpu, spec) in self.model.types.iter().enumerate() {
            if spec.hourly_cost > 0.0 {
                let by_cost = (incumbent.cost / spec.hourly_cost + 1e-9).floor();
                self.count_upper[gpu] = self.count_upper[gpu]
                    .min(by_cost)
                    .max(self.count_lower[gpu]);
            }
        }
    }

    /// Nodes whose bound reaches this cannot hold a plan better than the incumbent by more than
    /// the tolerances.
    fn threshold(&self) -> f64 {
        self.incumbent.as_ref().map_or(f64::INFINITY, |incumbent| {
            incumbent.cost
                - prune_tolerance(incumbent.cost).max(self.relative_gap * incumbent.cost.abs())
        })
    }

    /// Whether a node with `bound` is pruned; a node pruned only by the gap tolerance keeps its
    /// bound, since the plans under it are then not ruled out, only not worth the search.
    fn prune(&mut self, bound: f64) -> bool {
        if bound < self.threshold() {
            return false;
        }
        if let Some(incumbent) = &self.incumbent
            && bound < incumbent.cost - prune_tolerance(incumbent.cost)
        {
            self.gap_pruned_bound = self.gap_pruned_bound.min(bound);
        }
        true
    }

    /// Sets the LP's bounds to the root's and then applies `changes` in order; `false` when some
    /// variable's range became empty (the node holds no point).
    fn apply(&mut self, changes: &Rc<Changes>) -> bool {
        let changes = changes.from_root();
        let type_count = self.model.type_count();
        for gpu in 0..type_count {
            self.lp
                .set_bounds(gpu, self.count_lower[gpu], self.count_upper[gpu]);
        }
        let slices = f64::from(self.model.slice_factor);
        for variable in type_count..self.lp.structurals() {
            self.lp.set_bounds(variable, 0.0, slices);
        }
        for (variable, lower, upper) in changes {
            let (old_lower, old_upper) = self.lp.bounds(variable);
            let (lower, upper) = (lower.max(old_lower), upper.min(old_upper));
            if lower > upper {
                return false;
            }
            self.lp.set_bounds(variable, lower, upper);
        }
        true
    }

    /// Solves the node's relaxation; a singular basis is retried once from the slack basis.
    fn solve_lp(&mut self) -> Result<LpStatus, PlanError> {
        let limit = 20 * (self.lp.structurals() as u64 + 100);
        let status = self.lp.solve(limit);
        if status != LpStatus::Singular {
            return Ok(status);
        }
        let bounds: Vec<(f64, f64)> = (0..self.lp.structurals())
            .map(|variable| self.lp.bounds(variable))
            .collect();
        self.lp = fresh_lp(self.model);
        for (variable, (lower, upper)) in bounds.into_iter().enumerate() {
            self.lp.set_bounds(variable, lower, upper);
        }
        match self.lp.solve(limit * 4) {
            LpStatus::Singular => Err(PlanError::Solver {
                message: "branch and bound: the LP relaxation's basis became numerically \
                          singular; try the microlp backend"
                    .to_string(),
            }),
            status => Ok(status),
        }
    }

    /// Runs the search; `Some(bound)` when the node limit or the gap tolerance ended it before the
    /// proof, with the least bound of the unexplored nodes.
    fn run(
        &mut self,
        start: Instant,
        time_limit: Option<Duration>,
        node_limit: Option<u64>,
    ) -> Result<Option<f64>, PlanError> {
        let mut open = BinaryHeap::new();
        let mut current = Some(Node {
            bound: f64::NEG_INFINITY,
            sequence: 0,
            changes: Rc::new(Changes {
                parent: None,
                own: Vec::new(),
            }),
            warm_start: None,
        });
        loop {
            let node = match current.take() {
                Some(node) => node,
                None => match open.pop() {
                    Some(node) => node,
                    None => return Ok(self.gap_left()),
                },
            };
            if self.prune(node.bound) {
                continue;
            }
            if node_limit.is_some_and(|limit| self.nodes >= limit) {
                open.push(node);
                return match &self.incumbent {
                    Some(incumbent) => Ok(Some(self.open_bound(&open).min(incumbent.cost))),
                    None => Err(PlanError::Solver {
                        message: format!(
                            "branch and bound found no feasible plan within its limit of {} nodes \
                             (best bound ${:.4}/h); raise the node limit",
                            self.nodes,
                            self.open_bound(&open)
                        ),
                    }),
                };
            }
            if let Some(limit) = time_limit
                && start.elapsed() > limit
            {
                open.push(node);
                return Err(self.time_limit_error(&open, limit));
            }
            self.nodes += 1;
            current = self.process(node, &mut open)?;
        }
    }

    /// The least bound over the open nodes and those the gap tolerance left unexplored (which
    /// together hold every plan not yet ruled out).
    fn open_bound(&self, open: &BinaryHeap<Node>) -> f64 {
        open.iter()
            .map(|node| node.bound)
            .fold(self.gap_pruned_bound, f64::min)
    }

    /// Once the search is over: the bound left by nodes the gap tolerance did not explore, if it
    /// is below the incumbent (otherwise the incumbent is proven optimal).
    fn gap_left(&self) -> Option<f64> {
        let incumbent = self.incumbent.as_ref()?;
        (self.gap_pruned_bound < incumbent.cost - prune_tolerance(incumbent.cost))
            .then_some(self.gap_pruned_bound)
    }

    fn time_limit_error(&self, open: &BinaryHeap<Node>, limit: Duration) -> PlanError {
        let bound = self.open_bound(open);
        let message = match &self.incumbent {
            Some(incumbent) => format!(
                "branch and bound stopped at the {:.3} s time limit after {} nodes: best plan ${:.4}/h, \
                 best bound ${:.4}/h (gap {:.3}%), optimality not proven; raise or drop the time limit, \
                 or accept a stated gap (`--gap`)",
                limit.as_secs_f64(),
                self.nodes,
                incumbent.cost,
                bound,
                (incumbent.cost - bound) / incumbent.cost.max(1e-12) * 100.0
            ),
            None => format!(
                "branch and bound stopped at the {:.3} s time limit after {} nodes without a feasible plan; \
                 raise or drop the time limit",
                limit.as_secs_f64(),
                self.nodes
            ),
        };
        PlanError::Solver { message }
    }

    /// Solves one node; returns the child to dive into, pushing the other on `open`.
    fn process(
        &mut self,
        node: Node,
        open: &mut BinaryHeap<Node>,
    ) -> Result<Option<Node>, PlanError> {
        if !self.apply(&node.changes) {
            return Ok(None);
        }
        if let Some(snapshot) = &node.warm_start {
            // A failed restore keeps the current basis, which is as valid a start.
            self.lp.restore(snapshot);
        }
        let status = self.solve_lp()?;
        if status == LpStatus::Infeasible {
            return Ok(None);
        }
        let pricing = self.lp.true_pricing();
        let Some(bound) = self.lagrangian_bound(&pricing.duals) else {
            return Ok(None);
        };
        let bound = bound.max(pricing.bound).max(node.bound);
        if self.prune(bound) {
            return Ok(None);
        }
        let type_count = self.model.type_count();
        // Clamped into the bounds: a residual the LP tolerated must not make a branch that does
        // not shrink the box.
        let values: Vec<f64> = (0..self.lp.structurals())
            .map(|variable| {
                let (lower, upper) = self.lp.bounds(variable);
                self.lp.value(variable).clamp(lower, upper)
            })
            .collect();
        if self.nodes == 1 {
            self.descend(&values[..type_count]);
        }
        if self.nodes == 1 || self.nodes.is_multiple_of(HEURISTIC_INTERVAL) {
            let rounded = round_slices(self.model, &values[type_count..]);
            self.offer(rounded);
            if self.prune(bound) {
                return Ok(None);
            }
        }
        let counts_integral = values[..type_count]
            .iter()
            .all(|value| (value - value.round()).abs() <= INTEGRALITY_TOLERANCE);
        if counts_integral && status == LpStatus::Optimal {
            // The counts are settled in the LP; try to pack whole slices into exactly them,
            // which, when it works, matches this node's bound.
            let targets: Vec<u32> = values[..type_count]
                .iter()
                .map(|value| value.round().max(0.0) as u32)
                .collect();
            let mut slices = round_slices(self.model, &values[type_count..]);
            let packed = if fit(self.model, &targets, &mut slices) {
                Packing::Packed(slices)
            } else {
                match self.pack(&targets, PACK_SEARCH_NODES) {
                    // Counts the search comes back to: look again, within this node's slice bounds.
                    Packing::Unknown => {
                        let bounds: Vec<(f64, f64)> = (type_count..self.lp.structurals())
                            .map(|variable| self.lp.bounds(variable))
                            .collect();
                        self.pack_within(&targets, &bounds)
                            .map_or(Packing::Unknown, Packing::Packed)
                    }
                    other => other,
                }
            };
            match packed {
                Packing::Packed(slices) => {
                    self.offer(slices);
                    if self.prune(bound) {
                        return Ok(None);
                    }
                }
                Packing::Impossible => {
                    self.exclude(&targets, bound, node.changes, &pricing, open);
                    return Ok(None);
                }
                Packing::Unknown => {}
            }
        }
        let (first, second) = match self.branching_variable(&values) {
            Some(branch) => {
                let value = values[branch];
                let (lower, upper) = self.lp.bounds(branch);
                let down = (branch, lower, value.floor());
                let up = (branch, value.ceil(), upper);
                if value - value.floor() < 0.5 {
                    (down, up)
                } else {
                    (up, down)
                }
            }
            None => {
                // An integral-looking point: a plan whose cost the LP bound matches, up to the
                // tolerances. If the exact re-check finds it needs more (the LP tolerated a
                // residual, or stalled), the point proves nothing about the rest of the node, so
                // split a range instead of dropping the node.
                self.offer(round_slices(self.model, &values[type_count..]));
                if self.prune(bound) {
                    return Ok(None);
                }
                match self.widest_range() {
                    Some((variable, lower, upper)) => {
                        let middle = ((lower + upper) / 2.0).floor();
                        ((variable, lower, middle), (variable, middle + 1.0, upper))
                    }
                    None => return Ok(None),
                }
            }
        };
        let changes = self.with_fixings(&pricing, node.changes);
        self.sequence += 1;
        open.push(Node {
            bound,
            sequence: self.sequence,
            changes: Rc::new(Changes {
                parent: Some(Rc::clone(&changes)),
                own: vec![second],
            }),
            warm_start: Some(Rc::new(self.lp.snapshot())),
        });
        self.sequence += 1;
        Ok(Some(Node {
            bound,
            sequence: self.sequence,
            changes: Rc::new(Changes {
                parent: Some(changes),
                own: vec![first],
            }),
            warm_start: None,
        }))
    }

    /// Replaces a node whose LP counts are whole but proven unpackable (`counts`) by children
    /// that cover every other count vector of its box, disjointly: for each type t, counts at
    /// least `counts` for the types before t and below it for t; and for each type t, counts
    /// equal to `counts` before t, above it for t, at least it after t (one more instance of t
    /// costs its price, which bounds those children).
    fn exclude(
        &mut self,
        counts: &[u32],
        bound: f64,
        changes: Rc<Changes>,
        pricing: &TruePricing,
        open: &mut BinaryHeap<Node>,
    ) {
        let changes = self.with_fixings(pricing, changes);
        let warm_start = Rc::new(self.lp.snapshot());
        let cost = self.model.cost(counts);
        let mut children = Vec::new();
        // Counts below `counts` somewhere: the first such type is t.
        let mut at_least = Vec::new();
        for (gpu, &count) in counts.iter().enumerate() {
            let count = f64::from(count);
            let (lower, upper) = self.lp.bounds(gpu);
            if count > lower {
                let mut own = at_least.clone();
                own.push((gpu, lower, count - 1.0));
                children.push((bound, own));
            }
            at_least.push((gpu, count, upper));
        }
        // Counts at least `counts` everywhere and above it somewhere: the first such type is t,
        // one more instance of which costs its price.
        for (gpu, &count) in counts.iter().enumerate() {
            let count = f64::from(count);
            let (_, upper) = self.lp.bounds(gpu);
            if upper > count {
                let own: Vec<(usize, f64, f64)> = at_least
                    .iter()
                    .map(|&(other, at, most)| match other.cmp(&gpu) {
                        Ordering::Less => (other, at, at),
                        Ordering::Equal => (other, at + 1.0, most),
                        Ordering::Greater => (other, at, most),
                    })
                    .collect();
                let dearer = cost + self.model.types[gpu].hourly_cost;
                children.push((bound.max(dearer), own));
            }
        }
        for (child_bound, own) in children {
            if self.prune(child_bound) {
                continue;
            }
            self.sequence += 1;
            open.push(Node {
                bound: child_bound,
                sequence: self.sequence,
                changes: Rc::new(Changes {
                    parent: Some(Rc::clone(&changes)),
                    own,
                }),
                warm_start: Some(Rc::clone(&warm_start)),
            });
        }
    }

    /// The integer variable with the widest range (counts before slices, lowest index on ties).
    fn widest_range(&self) -> Option<(usize, f64, f64)> {
        let mut widest: Option<(usize, f64, f64)> = None;
        for variable in 0..self.lp.structurals() {
            let (lower, upper) = self.lp.bounds(variable);
            if upper > lower && widest.is_none_or(|(_, l, u)| upper - lower > u - l) {
                widest = Some((variable, lower, upper));
            }
        }
        widest
    }

    /// The fractional variable to branch on: counts first (the dearest type's, which on seeded
    /// 60 × 12 instances took a quarter less time overall than the cost-weighted most fractional),
    /// then slices (most fractional); `None` when the LP solution is integral.
    fn branching_variable(&self, values: &[f64]) -> Option<usize> {
        let type_count = self.model.type_count();
        let fraction = |value: f64| {
            let part = value - value.floor();
            part.min(1.0 - part)
        };
        let mut best: Option<(usize, f64)> = None;
        for (gpu, spec) in self.model.types.iter().enumerate() {
            let distance = fraction(values[gpu]);
            if distance > INTEGRALITY_TOLERANCE {
                let score = spec.hourly_cost;
                if best.is_none_or(|(_, best_score)| score > best_score) {
                    best = Some((gpu, score));
                }
            }
        }
        if best.is_some() {
            return best.map(|(variable, _)| variable);
        }
        for (variable, &value) in values.iter().enumerate().skip(type_count) {
            let distance = fraction(value);
            if distance > INTEGRALITY_TOLERANCE
                && best.is_none_or(|(_, best_distance)| distance > best_distance)
            {
                best = Some((variable, distance));
            }
        }
        best.map(|(variable, _)| variable)
    }

    /// `changes` followed by the reduced-cost fixings that `pricing` allows (see
    /// [`Search::fix_by_reduced_cost`]): what a node's children start from.
    fn with_fixings(&self, pricing: &TruePricing, changes: Rc<Changes>) -> Rc<Changes> {
        let mut fixed = Vec::new();
        self.fix_by_reduced_cost(pricing, &mut fixed);
        if fixed.is_empty() {
            changes
        } else {
            Rc::new(Changes {
                parent: Some(changes),
                own: fixed,
            })
        }
    }

    /// Narrows integer variables whose reduced cost alone would lift the bound past the
    /// incumbent: every point of the node costs at least `pricing.bound + |d_j|·(distance of x_j
    /// from the bound d_j favours)`.
    fn fix_by_reduced_cost(&self, pricing: &TruePricing, changes: &mut Vec<(usize, f64, f64)>) {
        let Some(incumbent) = &self.incumbent else {
            return;
        };
        let gap = incumbent.cost - pricing.bound;
        if gap < 0.0 {
            return;
        }
        for (variable, &reduced) in pricing.reduced.iter().enumerate() {
            let (lower, upper) = self.lp.bounds(variable);
            if upper <= lower || reduced.abs() <= 1e-12 {
                continue;
            }
            let reach = (gap / reduced.abs() + 1e-9).floor();
            if reduced > 0.0 && lower + reach < upper {
                changes.push((variable, lower, lower + reach));
            } else if reduced < 0.0 && upper - reach > lower {
                changes.push((variable, upper - reach, upper));
            }
        }
    }

    /// `L(λ)` at the LP's load-row duals under the current bounds; `None` if the bounds are empty.
    fn lagrangian_bound(&self, duals: &[f64]) -> Option<f64> {
        let model = self.model;
        let multiplier =
            |scenario: usize, gpu: usize| (-duals[model.load_row(scenario, gpu)]).max(0.0);
        let mut bound = 0.0;
        for (gpu, spec) in model.types.iter().enumerate() {
            let price: f64 = (0..model.scenarios).map(|s| multiplier(s, gpu)).sum();
            let (lower, upper) = self.lp.bounds(gpu);
            let reduced = spec.hourly_cost - price;
            bound += if reduced >= 0.0 {
                reduced * lower
            } else {
                reduced * upper
            };
            for scenario in 0..model.scenarios {
                bound += multiplier(scenario, gpu) * model.fixed_load[scenario][gpu];
            }
        }
        let mut slots: Vec<(f64, f64)> = Vec::new();
        for item in &model.items {
            slots.clear();
            let mut remaining = f64::from(model.slice_factor);
            for &(gpu, load, variable) in &item.slots {
                let (lower, upper) = self.lp.bounds(variable);
                let unit = multiplier(item.scenario, gpu) * load;
                bound += unit * lower;
                remaining -= lower;
                slots.push((unit, upper - lower));
            }
            if remaining < -INTEGRALITY_TOLERANCE {
                return None;
            }
            // Stable sort: equal prices keep slot order, so the bound is deterministic.
            slots.sort_by(|a, b| a.0.total_cmp(&b.0));
            for &(unit, room) in &slots {
                if remaining <= 0.0 {
                    break;
                }
                let take = room.min(remaining);
                bound += unit * take;
                remaining -= take;
            }
            if remaining > INTEGRALITY_TOLERANCE {
                return None;
            }
        }
        Some(bound)
    }
}

/// The relative-to-absolute pruning slack at a given cost.
fn prune_tolerance(cost: f64) -> f64 {
    RELATIVE_PRUNE_TOLERANCE * cost.abs().max(1.0)
}

/// No optimum needs more instances of a type than carry every bucket it can serve (or its minimum).
fn most_useful_count(model: &Model<'_>, gpu: usize) -> f64 {
    let mut most = 0.0_f64;
    for scenario in 0..model.scenarios {
        let mut load = model.fixed_load[scenario][gpu];
        for item in model.items.iter().filter(|item| item.scenario == scenario) {
            for &(slot_type, slice_load, _) in &item.slots {
                if slot_type == gpu {
                    load += slice_load * f64::from(model.slice_factor);
                }
            }
        }
        most = most.max(load);
    }
    let spec = &model.types[gpu];
    let mut bound = f64::from(instances_for_load(most).max(spec.min_instances));
    if let Some(cap) = spec.max_instances {
        bound = bound.min(f64::from(cap));
    }
    bound
}

/// A dual feasible starting basis for one scenario: every bucket's cover row holds its slices on
/// the type where they cost least (at the LP's working costs), every load row holds that type's
/// count. With counts priced at `c_t` in every load row, no other slice placement is cheaper, so
/// every non-basic reduced cost is non-negative; without caps this basis is already optimal.
fn crash_basis(model: &Model<'_>, lp: &DualSimplex) -> Vec<usize> {
    let mut basic = Vec::with_capacity(model.items.len() + model.type_count());
    for item in &model.items {
        let cheapest = item
            .slots
            .iter()
            .min_by(|a, b| {
                let cost = |slot: &(usize, f64, usize)| {
                    model.types[slot.0].hourly_cost * slot.1 + lp.working_cost(slot.2)
                };
                cost(a).total_cmp(&cost(b))
            })
            .map_or(0, |slot| slot.2);
        basic.push(cheapest);
    }
    basic.extend(0..model.type_count());
    basic
}

/// The relaxation of the model with every structural bound at zero (callers set them).
fn fresh_lp(model: &Model<'_>) -> DualSimplex {
    lp_with_objective(model, Objective::Cost)
}

/// What an LP over the model minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Objective {
    /// The plan's hourly cost (the relaxation the search bounds with).
    Cost,
    /// The total load of the slices, in instances of the types they sit on: with the counts
    /// fixed, it leaves the most room to round slices into.
    Load,
}

/// The model's LP with every structural bound at zero, minimising `objective`.
fn lp_with_objective(model: &Model<'_>, objective: Objective) -> DualSimplex {
    let type_count = model.type_count();
    let rows = model.items.len() + model.scenarios * type_count;
    let mut columns: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut cost = Vec::new();
    for (gpu, spec) in model.types.iter().enumerate() {
        columns.push(
            (0..model.scenarios)
                .map(|scenario| (model.load_row(scenario, gpu), -1.0))
                .collect(),
        );
        cost.push(match objective {
            Objective::Cost => spec.hourly_cost,
            Objective::Load => 0.0,
        });
    }
    for (item_index, item) in model.items.iter().enumerate() {
        for &(gpu, load, _) in &item.slots {
            columns.push(vec![
                (item_index, 1.0),
                (model.load_row(item.scenario, gpu), load),
            ]);
            cost.push(match objective {
                Objective::Cost => 0.0,
                Objective::Load => load,
            });
        }
    }
    let zeros = vec![0.0; columns.len()];
    let mut rhs = vec![f64::from(model.slice_factor); model.items.len()];
    for scenario in 0..model.scenarios {
        for gpu in 0..type_count {
            rhs.push(-model.fixed_load[scenario][gpu]);
        }
    }
    // A load row's slack is n_t − load ≤ n_t, so the count's bound bounds it too; finite bounds
    // keep every infeasibility certificate checkable.
    let mut slack_upper = vec![0.0; model.items.len()];
    for _ in 0..model.scenarios {
        for gpu in 0..type_count {
            slack_upper.push(most_useful_count(model, gpu));
        }
    }
    DualSimplex::new(
        rows,
        &columns,
        &cost,
        &zeros,
        &zeros,
        &rhs,
        &vec![0.0; rows],
        &slack_upper,
    )
}

/// What a packing attempt found.
#[derive(Debug, Clone, PartialEq)]
enum Packing {
    /// Whole slices that fit the counts.
    Packed(Vec<u32>),
    /// Proof that no whole slices fit them: the packing search ran to the end, every branch
    /// closed by an infeasible LP.
    Impossible,
    /// Neither within the budget.
    Unknown,
}

/// A node of [`search_packing`]: its bound changes from the root, keyed by the least load of its
/// parent's LP point (ties: the older node first).
struct PackingNode {
    load: f64,
    sequence: u64,
    changes: Vec<(usize, f64, f64)>,
}

impl PartialEq for PackingNode {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PackingNode {}

impl PartialOrd for PackingNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PackingNode {
    /// The heap pops the least load first, the oldest node on ties (deterministic).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .load
            .total_cmp(&self.load)
            .then_with(|| other.sequence.cmp(&self.sequence))
    }
}

/// Search for whole slices that fit `targets` (fixed in `lp`, the least-load LP, solved at its
/// root): branches on the fractional slice variable whose slices weigh most and dives into the
/// side nearer its value, re-solving at every node; when a dive ends, it resumes from the open
/// node whose parent left the most room (least total load), until a whole LP point that [`fit`]
/// accepts, or `budget` nodes. A search that closes every branch by an infeasible LP proves that
/// nothing packs. Measured on the simulated profiles: resuming from the roomiest node rather than
/// the deepest (plain depth-first) found the optimal packing of mix 10 at 1,000 req/s in about
/// 2,500 nodes instead of 3,000 to 10,000, and proves mix 2 at 300 req/s within the budget, which
/// depth-first no longer did once the infeasibility certificate was made sound; branching on
/// the heaviest rather than the most fractional variable took mixes 4 and 8 at 1,000 req/s from
/// 940 and 752 search nodes to 117 and 133 (mix 6 from 263 to 460) and proved one more synthetic
/// instance at 1,000 req/s.
fn search_packing(
    model: &Model<'_>,
    lp: &mut DualSimplex,
    targets: &[u32],
    budget: u64,
) -> Packing {
    let type_count = model.type_count();
    let slices = f64::from(model.slice_factor);
    let limit = 20 * (lp.structurals() as u64 + 100);
    // Load of one slice of each slice variable, in instances.
    let mut slice_load = vec![0.0; lp.structurals()];
    for item in &model.items {
        for &(_, load, variable) in &item.slots {
            slice_load[variable] = load;
        }
    }
    // The fractional slice variable whose slices weigh most (lowest index on ties): as in
    // first-fit decreasing, the big pieces are placed first and the light ones left to fill in.
    let heaviest_fractional = |lp: &DualSimplex| {
        (type_count..lp.structurals())
            .map(|variable| (variable, lp.value(variable)))
            .filter(|&(_, value)| (value - value.round()).abs() > INTEGRALITY_TOLERANCE)
            .min_by(|a, b| {
                slice_load[b.0]
                    .total_cmp(&slice_load[a.0])
                    .then(a.0.cmp(&b.0))
            })
    };
    // Total load of the LP point, in instances: what the packing LP minimises.
    let total_load = |lp: &DualSimplex| -> f64 {
        model
            .items
            .iter()
            .flat_map(|item| &item.slots)
            .map(|&(_, load, variable)| load * lp.value(variable))
            .sum()
    };
    let mut open: BinaryHeap<PackingNode> = BinaryHeap::new();
    let mut sequence = 0;
    // The root is solved already; every later node re-solves first.
    let mut current: Option<Vec<(usize, f64, f64)>> = Some(Vec::new());
    let mut solved = true;
    let mut nodes = 0;
    // Whether some branch closed for a reason other than proven infeasibility.
    let mut unsettled = false;
    loop {
        let changes = match current.take() {
            Some(changes) => changes,
            None => match open.pop() {
                Some(node) => node.changes,
                None => break,
            },
        };
        if !solved {
            if nodes >= budget {
                return Packing::Unknown;
            }
            nodes += 1;
            for variable in type_count..lp.structurals() {
                lp.set_bounds(variable, 0.0, slices);
            }
            for &(variable, lower, upper) in &changes {
                lp.set_bounds(variable, lower, upper);
            }
            match lp.solve(limit) {
                LpStatus::Optimal => {}
                LpStatus::Infeasible => continue,
                LpStatus::Stalled | LpStatus::Singular => {
                    unsettled = true;
                    continue;
                }
            }
        }
        solved = false;
        let Some((variable, value)) = heaviest_fractional(lp) else {
            match packed_lp_point(model, lp, targets) {
                Some(whole) => return Packing::Packed(whole),
                None => unsettled = true,
            }
            continue;
        };
        let (lower, upper) = lp.bounds(variable);
        let down = (variable, lower, value.floor());
        let up = (variable, value.ceil(), upper);
        let (near, far) = if value - value.floor() < 0.5 {
            (down, up)
        } else {
            (up, down)
        };
        let mut far_changes = changes.clone();
        far_changes.push(far);
        sequence += 1;
        open.push(PackingNode {
            load: total_load(lp),
            sequence,
            changes: far_changes,
        });
        let mut near_changes = changes;
        near_changes.push(near);
        current = Some(near_changes);
    }
    if unsettled {
        Packing::Unknown
    } else {
        Packing::Impossible
    }
}

/// The packing LP's current point rounded to whole slices and repaired by [`fit`] into
/// `targets`, if that works.
fn packed_lp_point(model: &Model<'_>, lp: &DualSimplex, targets: &[u32]) -> Option<Vec<u32>> {
    let slices = f64::from(model.slice_factor);
    let values: Vec<f64> = (model.type_count()..lp.structurals())
        .map(|variable| lp.value(variable).clamp(0.0, slices))
        .collect();
    let mut rounded = round_slices(model, &values);
    fit(model, targets, &mut rounded).then_some(rounded)
}

/// Rounds LP slice values to whole slices per bucket: floors, then the largest remainders.
fn round_slices(model: &Model<'_>, values: &[f64]) -> Vec<u32> {
    let type_count = model.type_count();
    let mut slices = vec![0_u32; values.len()];
    let mut remainders: Vec<(f64, usize)> = Vec::new();
    for item in &model.items {
        remainders.clear();
        let mut assigned = 0_u32;
        for &(_, _, variable) in &item.slots {
            let index = variable - type_count;
            let value = values[index].clamp(0.0, f64::from(model.slice_factor));
            let whole = (value + INTEGRALITY_TOLERANCE).floor();
            slices[index] = whole as u32;
            assigned += whole as u32;
            remainders.push((value - whole, index));
        }
        remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut cursor = 0;
        while assigned < model.slice_factor && !remainders.is_empty() {
            slices[remainders[cursor % remainders.len()].1] += 1;
            assigned += 1;
            cursor += 1;
        }
        // Floors of values clamped to k may still overshoot by rounding; trim from the smallest.
        while assigned > model.slice_factor {
            let index = remainders
                .iter()
                .rev()
                .map(|&(_, index)| index)
                .find(|&index| slices[index] > 0)
                .unwrap_or(remainders[0].1);
            slices[index] -= 1;
            assigned -= 1;
        }
    }
    slices
}

/// Local search: for the dearest types first, tries to drop one instance by moving slices of the
/// type into the spare capacity other types already pay for (see [`fit`]); repeats until nothing
/// improves.
fn free_instances(model: &Model<'_>, slices: &mut Vec<u32>, counts: &mut Vec<u32>) {
    let type_count = model.type_count();
    let mut order: Vec<usize> = (0..type_count).collect();
    order.sort_by(|&a, &b| {
        model.types[b]
            .hourly_cost
            .total_cmp(&model.types[a].hourly_cost)
            .then(a.cmp(&b))
    });
    let mut improved = true;
    while improved {
        improved = false;
        for &gpu in &order {
            if counts[gpu] <= model.types[gpu].min_instances || model.types[gpu].hourly_cost <= 0.0
            {
                continue;
            }
            let mut targets = counts.clone();
            targets[gpu] -= 1;
            let mut trial = slices.clone();
            if fit(model, &targets, &mut trial)
                && let Some(fewer) = model.counts_for(&model.loads(&trial))
            {
                *slices = trial;
                *counts = fewer;
                improved = true;
            }
        }
    }
}

/// A slice that a type can pass on to a third type with room, in [`fit`]'s chain moves.
#[derive(Debug, Clone, Copy)]
struct OnwardMove {
    /// Load it frees on the passing type.
    released: f64,
    /// Its slice variable on the passing type.
    from: usize,
    /// Its slice variable on the receiving type.
    to: usize,
    /// Its bucket.
    item: usize,
}

/// A slice that could come back to the overloaded type in one of [`fit`]'s swaps.
#[derive(Debug, Clone, Copy)]
struct ReturnMove {
    /// Its bucket.
    item: usize,
    /// Load it frees on the type it sits on.
    released: f64,
    /// Its slice variable there.
    from: usize,
    /// Load it adds to the overloaded type.
    taken: f64,
    /// Its slice variable on the overloaded type.
    to: usize,
}

/// Repairs `slices` so that every type's load fits `targets` instances, by moving single slices
/// out of overloaded types into spare capacity, directly or through one intermediate type, or by
/// swapping one for a lighter slice of another type; `false` when it gets stuck.
fn fit(model: &Model<'_>, targets: &[u32], slices: &mut [u32]) -> bool {
    let type_count = model.type_count();
    let mut loads = model.loads(slices);
    // Slices on each (scenario, type): once a type gives up its last one, its load is reset to
    // the exact fixed load, so the residue of subtracting tiny loads cannot leave it needing an
    // instance for no work.
    let mut held = vec![vec![0_u32; type_count]; loads.len()];
    for item in &model.items {
        for &(gpu, _, variable) in &item.slots {
            held[item.scenario][gpu] += slices[variable - type_count];
        }
    }
    let fits = |load: f64, target: u32| f64::from(instances_for_load(load)) <= f64::from(target);
    // A type with no instances has no room at all: any load, however small, needs one.
    let spare = |loads: &[Vec<f64>], scenario: usize, gpu: usize| {
        if targets[gpu] == 0 {
            f64::NEG_INFINITY
        } else {
            f64::from(targets[gpu]) - loads[scenario][gpu] + MOVE_TOLERANCE
        }
    };
    // Each step moves one or two slices; a plan needs at most about one move per slice.
    let budget = model.items.len() * usize::try_from(model.slice_factor).unwrap_or(1) + 16;
    for _ in 0..budget {
        // The most overloaded (scenario, type).
        let mut worst: Option<(usize, usize, f64)> = None;
        for (scenario, scenario_loads) in loads.iter().enumerate() {
            for (gpu, &load) in scenario_loads.iter().enumerate() {
                if !fits(load, targets[gpu]) {
                    let over = load - f64::from(targets[gpu]);
                    if worst.is_none_or(|(_, _, most)| over > most) {
                        worst = Some((scenario, gpu, over));
                    }
                }
            }
        }
        let Some((scenario, gpu, _)) = worst else {
            return true;
        };
        // Slices on the overloaded type: `(item, freed load, variable)`.
        let sources: Vec<(&Item, f64, usize)> = model
            .items
            .iter()
            .filter(|item| item.scenario == scenario)
            .filter_map(|item| {
                let &(_, freed, from) = item.slots.iter().find(|slot| slot.0 == gpu)?;
                (slices[from - type_count] > 0).then_some((item, freed, from))
            })
            .collect();
        // Direct move into another type's spare room, freeing the most load.
        let mut moves: Vec<(usize, usize)> = Vec::new();
        let mut most_freed = 0.0;
        for &(item, freed, from) in &sources {
            for &(other, added, to) in &item.slots {
                if other != gpu && added <= spare(&loads, scenario, other) && freed > most_freed {
                    most_freed = freed;
                    moves = vec![(from, to)];
                }
            }
        }
        // Otherwise a chain: the slice goes to `via`, which passes one of its own slices on to a
        // third type with room. Per `via`, the two onward moves (from different buckets) that
        // release the most load; the source's own bucket cannot pass its slice straight on.
        if moves.is_empty() {
            let mut onward: Vec<[Option<OnwardMove>; 2]> = vec![[None, None]; type_count];
            for (next_index, next) in model.items.iter().enumerate() {
                if next.scenario != scenario {
                    continue;
                }
                for &(via, released, onward_from) in &next.slots {
                    if via == gpu || slices[onward_from - type_count] == 0 {
                        continue;
                    }
                    let Some(&(_, _, onward_to)) = next.slots.iter().find(|&&(third, taken, _)| {
                        third != via && third != gpu && taken <= spare(&loads, scenario, third)
                    }) else {
                        continue;
                    };
                    let candidate = Some(OnwardMove {
                        released,
                        from: onward_from,
                        to: onward_to,
                        item: next_index,
                    });
                    let best = &mut onward[via];
                    if best[0].is_none_or(|most| released > most.released) {
                        best[1] = best[0];
                        best[0] = candidate;
                    } else if best[1].is_none_or(|most| released > most.released) {
                        best[1] = candidate;
                    }
                }
            }
            'search: for &(item, _, from) in &sources {
                let item_index = model.slice_owner[from - type_count].0;
                for &(via, added, to) in &item.slots {
                    if via == gpu {
                        continue;
                    }
                    let needed = added - spare(&loads, scenario, via);
                    let chosen = onward[via]
                        .iter()
                        .flatten()
                        .find(|onward| onward.item != item_index);
                    if let Some(onward) = chosen
                        && onward.released >= needed
                    {
                        moves = vec![(onward.from, onward.to), (from, to)];
                        break 'search;
                    }
                }
            }
        }
        // Otherwise a swap: the slice goes to `other`, which sends back a slice of another bucket
        // that weighs less on the overloaded type; the swap that relieves it most.
        if moves.is_empty() {
            // Per type, its slices that could come back: `(item, released, from, taken, to)`.
            let mut returns: Vec<Vec<ReturnMove>> = vec![Vec::new(); type_count];
            for (back_index, back) in model.items.iter().enumerate() {
                if back.scenario != scenario {
                    continue;
                }
                let Some(&(_, taken, back_to)) = back.slots.iter().find(|slot| slot.0 == gpu)
                else {
                    continue;
                };
                for &(other, released, back_from) in &back.slots {
                    if other != gpu && slices[back_from - type_count] > 0 {
                        returns[other].push(ReturnMove {
                            item: back_index,
                            released,
                            from: back_from,
                            taken,
                            to: back_to,
                        });
                    }
                }
            }
            let mut most_relief = 0.0;
            for &(item, freed, from) in &sources {
                let item_index = model.slice_owner[from - type_count].0;
                for &(other, added, to) in &item.slots {
                    if other == gpu || targets[other] == 0 {
                        continue;
                    }
                    let room = spare(&loads, scenario, other);
                    for back in &returns[other] {
                        let relief = freed - back.taken;
                        if back.item != item_index
                            && relief > most_relief
                            && added - back.released <= room
                        {
                            most_relief = relief;
                            moves = vec![(from, to), (back.from, back.to)];
                        }
                    }
                }
            }
        }
        if moves.is_empty() {
            return false;
        }
        for (from, to) in moves {
            slices[from - type_count] -= 1;
            slices[to - type_count] += 1;
            let (item_index, from_slot) = model.slice_owner[from - type_count];
            let (_, to_slot) = model.slice_owner[to - type_count];
            let item = &model.items[item_index];
            let (source, released, _) = item.slots[from_slot];
            let (target, added, _) = item.slots[to_slot];
            held[scenario][source] -= 1;
            loads[scenario][source] = if held[scenario][source] == 0 {
                model.fixed_load[scenario][source]
            } else {
                loads[scenario][source] - released
            };
            held[scenario][target] += 1;
            loads[scenario][target] += added;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of one bucket served by every type in `capacities` (req/s per instance) at
    /// `rate` req/s, in `slice_factor` slices.
    fn one_bucket<'a>(
        types: &'a [GpuType],
        labels: &'a [String],
        capacities: &'a [Vec<f64>],
        rate: f64,
        slice_factor: u32,
    ) -> Model<'a> {
        let demand = Demand {
            class_name: "test",
            bucket_labels: labels,
            rates: vec![rate],
            capacity: capacities,
        };
        build_model(types, &[vec![demand]], slice_factor)
    }

    #[test]
    fn fit_never_moves_load_onto_a_type_with_no_instances() {
        // A bucket so light that a slice weighs under the move tolerance on every type: the
        // repair used to park slices on the first type with "room" within that tolerance, which
        // then needed an instance of its own, and so on round the types until it gave up.
        let types: Vec<GpuType> = (0..3).map(|t| GpuType::new(format!("g{t}"), 1.0)).collect();
        let labels = vec!["b".to_string()];
        let capacities = vec![vec![10.0]; 3];
        let model = one_bucket(&types, &labels, &capacities, 1e-9, 8);
        // Every slice on type 1, which gets no instance; type 2 gets one.
        let mut slices = vec![0, 8, 0];
        assert!(fit(&model, &[0, 0, 1], &mut slices));
        assert_eq!(slices, vec![0, 0, 8]);
        assert_eq!(model.counts_for(&model.loads(&slices)), Some(vec![0, 0, 1]));
    }

    #[test]
    fn fit_swaps_slices_when_no_single_move_fits() {
        // Slice factor 1, two types; loads per bucket (type A, type B): p (0.7, 0.45), q (0.4,
        // 0.9), r (0.6 on B, 0.2 on A). A holds p and q (1.1 > 1); B holds r (0.6). Neither p
        // nor q fits B's 0.4 of room and there is no third type to chain through, but p and r
        // can trade places: A then carries q and r (0.6), B carries p (0.45).
        let types: Vec<GpuType> = (0..2).map(|t| GpuType::new(format!("g{t}"), 1.0)).collect();
        let labels: Vec<String> = ["p", "q", "r"].map(String::from).to_vec();
        let capacities = vec![
            vec![1.0 / 0.7, 1.0 / 0.4, 1.0 / 0.2],
            vec![1.0 / 0.45, 1.0 / 0.9, 1.0 / 0.6],
        ];
        let demand = Demand {
            class_name: "test",
            bucket_labels: &labels,
            rates: vec![1.0; 3],
            capacity: &capacities,
        };
        let model = build_model(&types, &[vec![demand]], 1);
        // Variables per bucket, type A then type B.
        let mut slices = vec![1, 0, 1, 0, 0, 1];
        assert!(fit(&model, &[1, 1], &mut slices));
        assert_eq!(slices, vec![0, 1, 1, 0, 1, 0]);
    }

    #[test]
    fn fit_empties_a_type_exactly() {
        // A slice weighs 0.1 instances; three of them summed and taken away one at a time leave
        // 5.6e-17 in floating point, which needs an instance unless an emptied type's load is
        // reset to exactly what it still carries.
        let types: Vec<GpuType> = (0..2).map(|t| GpuType::new(format!("g{t}"), 1.0)).collect();
        let labels = vec!["b".to_string()];
        let capacities = vec![vec![1.0]; 2];
        let model = one_bucket(&types, &labels, &capacities, 0.3, 3);
        let mut slices = vec![3, 0];
        assert!(fit(&model, &[0, 1], &mut slices));
        assert_eq!(slices, vec![0, 3]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Counts that some whole slices fit are never "proven" unpackable, and any packing the
        /// search returns fits them: the counts are those a random whole assignment needs, so
        /// they are tight (each type less than one instance above its load).
        #[test]
        fn packing_never_rules_out_counts_that_pack(
            types in 2_usize..7,
            buckets in 2_usize..25,
            slice_factor in proptest::sample::select(vec![1_u32, 2, 4, 8]),
            capacities in proptest::collection::vec(0.3_f64..20.0, 6 * 24),
            rates in proptest::collection::vec(0.1_f64..30.0, 24),
            choices in proptest::collection::vec(0_usize..6, 97),
        ) {
            let gpu_types: Vec<GpuType> = (0..types)
                .map(|t| GpuType::new(format!("g{t}"), 1.0 + t as f64))
                .collect();
            let labels: Vec<String> = (0..buckets).map(|b| format!("b{b}")).collect();
            let capacity: Vec<Vec<f64>> = (0..types)
                .map(|t| (0..buckets).map(|b| capacities[t * 24 + b]).collect())
                .collect();
            let demand = Demand {
                class_name: "test",
                bucket_labels: &labels,
                rates: rates[..buckets].to_vec(),
                capacity: &capacity,
            };
            let scenarios = vec![vec![demand]];
            let model = build_model(&gpu_types, &scenarios, slice_factor);
            // Each bucket's slices go one by one to a type picked by `choices`.
            let mut slices = vec![0_u32; model.slice_owner.len()];
            let mut pick = choices.iter().cycle();
            for item in &model.items {
                for _ in 0..slice_factor {
                    let slot = pick.next().unwrap() % item.slots.len();
                    slices[item.slots[slot].2 - types] += 1;
                }
            }
            let counts = model.counts_for(&model.loads(&slices)).unwrap();
            let mut search = Search::new(&model, &gpu_types, &scenarios, slice_factor, 0.0);
            match search.pack(&counts, 20_000) {
                Packing::Impossible => {
                    proptest::prop_assert!(false, "{counts:?} pack ({slices:?}) but were ruled out")
                }
                Packing::Packed(found) => {
                    let needed = model.counts_for(&model.loads(&found)).unwrap();
                    proptest::prop_assert!(
                        needed.iter().zip(&counts).all(|(n, c)| n <= c),
                        "{found:?} needs {needed:?}, more than {counts:?}"
                    );
                }
                Packing::Unknown => {}
            }
        }
    }
}
