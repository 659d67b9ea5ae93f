//! Routing requests across replicas. A router sees only what a real router could see at that
//! moment: each replica's [`ReplicaStatus`], and the arriving request as a [`RouteRequest`],
//! which carries the *predicted* output length and never the true one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use workloads::{BucketEdges, Request};

use crate::replica::ReplicaStatus;

/// What a router may know about an arriving request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRequest {
    /// Request id.
    pub id: u64,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Output tokens as the predictor gave them.
    pub predicted_output_tokens: u32,
    /// Conversation it belongs to, if the source says.
    pub session_id: Option<u64>,
    /// SLO class or priority tier.
    pub slo_class: u16,
}

impl RouteRequest {
    /// The routable view of `request`, with its predicted output length.
    pub fn new(request: &Request, predicted_output_tokens: u32) -> Self {
        Self {
            id: request.id,
            input_tokens: request.input_tokens,
            predicted_output_tokens,
            session_id: request.session_id,
            slo_class: request.slo_class,
        }
    }
}

/// Chooses a replica for each arriving request.
pub trait Router: Send {
    /// Name for outputs.
    fn name(&self) -> &'static str;
    /// Picks one of `eligible` (indices into `replicas` that can hold the request; never empty).
    fn route(
        &mut self,
        request: &RouteRequest,
        replicas: &[ReplicaStatus],
        eligible: &[usize],
    ) -> usize;
}

/// Which router to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RouterKind {
    /// Cycle through replicas.
    RoundRobin,
    /// Uniformly at random (seeded).
    Random,
    /// Fewest requests waiting or running.
    #[default]
    LeastOutstanding,
    /// Fewest tokens queued or held in the KV cache.
    LeastTokens,
    /// Two random replicas, the one with fewer outstanding requests.
    PowerOfTwo,
    /// Mélange: random, weighted by each replica type's capacity for the request's size bucket.
    Melange,
    /// A session's requests go where its first one went (new sessions: least outstanding).
    SessionSticky,
    /// Most free KV blocks per running request, queued prompts counted as used (Llumnix).
    KvAware,
    /// Each predicted size bucket to the types an assignment table gives it, round-robin.
    SizeAware,
    /// A type drawn in proportion to its assigned load for the bucket, round-robin within.
    SolverProportional,
}

impl RouterKind {
    /// Every router, for help texts and sweeps.
    pub const ALL: [RouterKind; 10] = [
        RouterKind::RoundRobin,
        RouterKind::Random,
        RouterKind::LeastOutstanding,
        RouterKind::LeastTokens,
        RouterKind::PowerOfTwo,
        RouterKind::Melange,
        RouterKind::SessionSticky,
        RouterKind::KvAware,
        RouterKind::SizeAware,
        RouterKind::SolverProportional,
    ];

    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            RouterKind::RoundRobin => "round-robin",
            RouterKind::Random => "random",
            RouterKind::LeastOutstanding => "least-outstanding",
            RouterKind::LeastTokens => "least-tokens",
            RouterKind::PowerOfTwo => "power-of-two",
            RouterKind::Melange => "melange",
            RouterKind::SessionSticky => "session-sticky",
            RouterKind::KvAware => "kv-aware",
            RouterKind::SizeAware => "size-aware",
            RouterKind::SolverProportional => "solver-proportional",
        }
    }

    /// Whether the router needs a capacity table (melange) or an assignment table
    /// (size-aware, solver-proportional).
    pub fn needs_table(self) -> bool {
        matches!(
            self,
            RouterKind::Melange | RouterKind::SizeAware | RouterKind::SolverProportional
        )
    }

    /// Parses a kebab-case name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for RouterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Max sustainable request rate (req/s) of one replica of each type per size bucket, as the
/// solver's profiles (or Mélange's `gpu_info` `tputs`) give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityTable {
    /// Bucket edges the rows and columns refer to.
    #[serde(skip, default = "BucketEdges::melange")]
    pub edges: BucketEdges,
    /// Per type name (GPU or instance name): rows = input buckets, columns = output buckets.
    pub tputs: BTreeMap<String, Vec<Vec<f64>>>,
}

impl CapacityTable {
    /// Capacity of `type_name` for a request's bucket (0 when unknown or out of range).
    pub fn capacity(&self, type_name: &str, request: &Request) -> f64 {
        self.capacity_for(type_name, request.input_tokens, request.output_tokens)
    }

    /// Capacity of `type_name` for the bucket of these lengths (0 when unknown or out of range).
    pub fn capacity_for(&self, type_name: &str, input_tokens: u32, output_tokens: u32) -> f64 {
        let Some((i, j)) = self.edges.bucket_of(input_tokens, output_tokens) else {
            return 0.0;
        };
        self.tputs
            .get(type_name)
            .and_then(|rows| rows.get(i))
            .and_then(|row| row.get(j))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Builds a router (without an assignment table).
pub fn build(
    kind: RouterKind,
    seed: u64,
    capacity: Option<&CapacityTable>,
    type_names: &[String],
) -> Result<Box<dyn Router>, String> {
    build_with(kind, seed, capacity, None, type_names)
}

/// Builds a router; `assignment` feeds size-aware and solver-proportional routing.
pub fn build_with(
    kind: RouterKind,
    seed: u64,
    capacity: Option<&CapacityTable>,
    assignment: Option<&AssignmentTable>,
    type_names: &[String],
) -> Result<Box<dyn Router>, String> {
    let rng = Pcg64::seed_from_u64(seed ^ 0x726f_7574_6572);
    let assignment_for = |name: &str| {
        let table = assignment.ok_or_else(|| {
            format!(
                "the {name} router needs an assignment table (load per GPU type and size bucket; \
                 --assignment FILE on the command line)"
            )
        })?;
        table.check_types(type_names)?;
        Ok::<_, String>(table)
    };
    Ok(match kind {
        RouterKind::RoundRobin => Box::new(RoundRobin { next: 0 }),
        RouterKind::Random => Box::new(RandomRouter { rng }),
        RouterKind::LeastOutstanding => Box::new(LeastOutstanding),
        RouterKind::LeastTokens => Box::new(LeastTokens),
        RouterKind::PowerOfTwo => Box::new(PowerOfTwo { rng }),
        RouterKind::Melange => {
            let table = capacity.ok_or_else(|| {
                "the melange router needs a capacity table (Mélange `gpu_info` tputs per GPU type)"
                    .to_string()
            })?;
            for name in type_names {
                if !table.tputs.contains_key(name) {
                    return Err(format!(
                        "the capacity table has no entry for replica type '{name}' (it has: {})",
                        table.tputs.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            Box::new(Melange {
                rng,
                table: table.clone(),
                type_names: type_names.to_vec(),
                weights: Vec::new(),
            })
        }
        RouterKind::SessionSticky => Box::new(SessionSticky {
            sessions: HashMap::new(),
        }),
        RouterKind::KvAware => Box::new(KvAware),
        RouterKind::SizeAware => {
            Box::new(SizeAware::new(assignment_for("size-aware")?, type_names))
        }
        RouterKind::SolverProportional => Box::new(SolverProportional::new(
            rng,
            assignment_for("solver-proportional")?,
            type_names,
        )),
    })
}

struct RoundRobin {
    next: usize,
}

impl Router for RoundRobin {
    fn name(&self) -> &'static str {
        "round-robin"
    }

    fn route(&mut self, _: &RouteRequest, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        // The next replica in cyclic order that can hold the request.
        let n = replicas.len();
        let choice = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|i| eligible.contains(i))
            .unwrap_or(eligible[0]);
        self.next = (choice + 1) % n;
        choice
    }
}

struct RandomRouter {
    rng: Pcg64,
}

impl Router for RandomRouter {
    fn name(&self) -> &'static str {
        "random"
    }

    fn route(&mut self, _: &RouteRequest, _: &[ReplicaStatus], eligible: &[usize]) -> usize {
        eligible[self.rng.random_range(0..eligible.len())]
    }
}

struct LeastOutstanding;

impl Router for LeastOutstanding {
    fn name(&self) -> &'static str {
        "least-outstanding"
    }

    fn route(&mut self, _: &RouteRequest, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        *eligible
            .iter()
            .min_by_key(|&&i| (replicas[i].outstanding(), i))
            .expect("eligible is not empty")
    }
}

struct LeastTokens;

impl Router for LeastTokens {
    fn name(&self) -> &'static str {
        "least-tokens"
    }

    fn route(&mut self, _: &RouteRequest, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        *eligible
            .iter()
            .min_by_key(|&&i| (replicas[i].load_tokens(), i))
            .expect("eligible is not empty")
    }
}

struct PowerOfTwo {
    rng: Pcg64,
}

impl Router for PowerOfTwo {
    fn name(&self) -> &'static str {
        "power-of-two"
    }

    fn route(&mut self, _: &RouteRequest, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        if eligible.len() == 1 {
            return eligible[0];
        }
        let first = self.rng.random_range(0..eligible.len());
        let mut second = self.rng.random_range(0..eligible.len() - 1);
        if second >= first {
            second += 1;
        }
        let (a, b) = (eligible[first], eligible[second]);
        if (replicas[b].outstanding(), b) < (replicas[a].outstanding(), a) {
            b
        } else {
            a
        }
    }
}

struct Melange {
    rng: Pcg64,
    table: CapacityTable,
    type_names: Vec<String>,
    weights: Vec<f64>,
}

impl Router for Melange {
    fn name(&self) -> &'static str {
        "melange"
    }

    fn route(
        &mut self,
        request: &RouteRequest,
        replicas: &[ReplicaStatus],
        eligible: &[usize],
    ) -> usize {
        self.weights.clear();
        let mut total = 0.0;
        for &i in eligible {
            let type_name = &self.type_names[replicas[i].type_index as usize];
            let weight = self
                .table
                .capacity_for(
                    type_name,
                    request.input_tokens,
                    request.predicted_output_tokens,
                )
                .max(0.0);
            total += weight;
            self.weights.push(weight);
        }
        if total <= 0.0 {
            // No type has a measured capacity for this bucket: spread uniformly.
            return eligible[self.rng.random_range(0..eligible.len())];
        }
        let mut target = self.rng.random::<f64>() * total;
        for (k, &weight) in self.weights.iter().enumerate() {
            if target < weight {
                return eligible[k];
            }
            target -= weight;
        }
        *eligible.last().expect("eligible is not empty")
    }
}

/// Load (req/s, or any non-negative weight) that a plan assigns to each replica type per
/// request-size bucket; the solver fills it, size-aware and solver-proportional routing read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentTable {
    /// Bucket edges the rows and columns refer to.
    #[serde(skip, default = "BucketEdges::melange")]
    pub edges: BucketEdges,
    /// Per type name: rows = input buckets, columns = output buckets.
    pub loads: BTreeMap<String, Vec<Vec<f64>>>,
}

impl AssignmentTable {
    /// An empty table over these edges.
    pub fn new(edges: BucketEdges) -> Self {
        Self {
            edges,
            loads: BTreeMap::new(),
        }
    }

    /// Sets the load of `type_name` in bucket (`input_bucket`, `output_bucket`).
    pub fn set(
        &mut self,
        type_name: &str,
        input_bucket: usize,
        output_bucket: usize,
        load: f64,
    ) -> Result<(), String> {
        let (rows, columns) = self.edges.shape();
        if input_bucket >= rows || output_bucket >= columns {
            return Err(format!(
                "assignment table: bucket ({input_bucket}, {output_bucket}) is outside the \
                 {rows} x {columns} grid"
            ));
        }
        if !(load.is_finite() && load >= 0.0) {
            return Err(format!(
                "assignment table: load of {type_name} in bucket ({input_bucket}, \
                 {output_bucket}) must be finite and >= 0, found {load}"
            ));
        }
        let grid = self
            .loads
            .entry(type_name.to_string())
            .or_insert_with(|| vec![vec![0.0; columns]; rows]);
        grid[input_bucket][output_bucket] = load;
        Ok(())
    }

    /// Load of `type_name` in a bucket (0 when absent).
    pub fn load(&self, type_name: &str, input_bucket: usize, output_bucket: usize) -> f64 {
        self.loads
            .get(type_name)
            .and_then(|rows| rows.get(input_bucket))
            .and_then(|row| row.get(output_bucket))
            .copied()
            .unwrap_or(0.0)
    }

    /// The bucket of these lengths; lengths beyond the last edge count in the last bucket,
    /// the nearest one the plan knows.
    pub fn bucket_of(&self, input_tokens: u32, output_tokens: u32) -> (usize, usize) {
        let index = |edges: &[u32], tokens: u32| {
            edges
                .partition_point(|edge| *edge < tokens)
                .min(edges.len().saturating_sub(1))
        };
        (
            index(&self.edges.input, input_tokens),
            index(&self.edges.output, output_tokens),
        )
    }

    /// Checks every grid's shape and values.
    pub fn validate(&self) -> Result<(), String> {
        let (rows, columns) = self.edges.shape();
        for (name, grid) in &self.loads {
            if grid.len() != rows || grid.iter().any(|row| row.len() != columns) {
                return Err(format!(
                    "assignment table: loads of '{name}' must be {rows} rows of {columns} \
                     (input x output buckets)"
                ));
            }
            for (i, row) in grid.iter().enumerate() {
                for (j, &load) in row.iter().enumerate() {
                    if !(load.is_finite() && load >= 0.0) {
                        return Err(format!(
                            "assignment table: loads of '{name}' at [{i}][{j}] must be finite \
                             and >= 0, found {load}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the table against the cluster's type names: valid, every type with load
    /// present in the cluster, and some cluster type with load.
    fn check_types(&self, type_names: &[String]) -> Result<(), String> {
        self.validate()?;
        for (name, grid) in &self.loads {
            let has_load = grid.iter().flatten().any(|&l| l > 0.0);
            if has_load && !type_names.contains(name) {
                return Err(format!(
                    "assignment table assigns load to '{name}', which the cluster lacks (it has: {})",
                    type_names.join(", ")
                ));
            }
        }
        let any = type_names.iter().any(|t| {
            self.loads
                .get(t)
                .is_some_and(|g| g.iter().flatten().any(|&l| l > 0.0))
        });
        if !any {
            return Err(format!(
                "assignment table assigns no load to any of the cluster's types ({})",
                type_names.join(", ")
            ));
        }
        Ok(())
    }

    /// Per bucket (row-major), per cluster type: the load.
    fn per_bucket(&self, type_names: &[String]) -> Vec<Vec<f64>> {
        let (rows, columns) = self.edges.shape();
        let mut out = Vec::with_capacity(rows * columns);
        for i in 0..rows {
            for j in 0..columns {
                out.push(type_names.iter().map(|t| self.load(t, i, j)).collect());
            }
        }
        out
    }

    fn bucket_index(&self, request: &RouteRequest) -> usize {
        let (i, j) = self.bucket_of(request.input_tokens, request.predicted_output_tokens);
        i * self.edges.output.len() + j
    }
}

struct SessionSticky {
    /// Session → the replica its latest request went to. Only looked up, never iterated, so
    /// the hash order cannot reach an output.
    sessions: HashMap<u64, usize>,
}

impl Router for SessionSticky {
    fn name(&self) -> &'static str {
        "session-sticky"
    }

    fn route(
        &mut self,
        request: &RouteRequest,
        replicas: &[ReplicaStatus],
        eligible: &[usize],
    ) -> usize {
        if let Some(session) = request.session_id
            && let Some(&previous) = self.sessions.get(&session)
            && eligible.contains(&previous)
        {
            return previous;
        }
        // A new session, no session, or its replica cannot hold this request: the least
        // loaded, and the session moves there.
        let choice = LeastOutstanding.route(request, replicas, eligible);
        if let Some(session) = request.session_id {
            self.sessions.insert(session, choice);
        }
        choice
    }
}

struct KvAware;

impl KvAware {
    /// Llumnix's freeness numerator: free blocks minus those the queued prompts will take.
    fn virtual_free(status: &ReplicaStatus) -> i128 {
        let queued = status
            .queued_prompt_tokens
            .div_ceil(u64::from(gpu_models::BLOCK_TOKENS));
        i128::from(status.kv_blocks_free()) - i128::from(queued)
    }
}

impl Router for KvAware {
    fn name(&self) -> &'static str {
        "kv-aware"
    }

    fn route(&mut self, _: &RouteRequest, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        // Free blocks per running request, the arrival counted as one more (so an idle
        // replica's score is its free blocks); compared by cross-multiplying, exactly.
        let mut best = eligible[0];
        for &i in &eligible[1..] {
            let (a, b) = (&replicas[i], &replicas[best]);
            let lhs = Self::virtual_free(a) * i128::from(b.running + 1);
            let rhs = Self::virtual_free(b) * i128::from(a.running + 1);
            if lhs > rhs {
                best = i;
            }
        }
        best
    }
}

struct SizeAware {
    table: AssignmentTable,
    /// Per bucket, per type: whether the type serves the bucket.
    allowed: Vec<Vec<bool>>,
    /// Per bucket: the replica index to try first.
    cursors: Vec<usize>,
    fallback: RoundRobin,
}

impl SizeAware {
    fn new(table: &AssignmentTable, type_names: &[String]) -> Self {
        let allowed: Vec<Vec<bool>> = table
            .per_bucket(type_names)
            .into_iter()
            .map(|loads| loads.into_iter().map(|l| l > 0.0).collect())
            .collect();
        Self {
            cursors: vec![0; allowed.len()],
            allowed,
            table: table.clone(),
            fallback: RoundRobin { next: 0 },
        }
    }
}

impl Router for SizeAware {
    fn name(&self) -> &'static str {
        "size-aware"
    }

    fn route(
        &mut self,
        request: &RouteRequest,
        replicas: &[ReplicaStatus],
        eligible: &[usize],
    ) -> usize {
        let bucket = self.table.bucket_index(request);
        let allowed = &self.allowed[bucket];
        let n = replicas.len();
        let start = self.cursors[bucket] % n.max(1);
        // `eligible` is sorted: the first allowed one at or after the cursor, else wrap.
        let is_allowed = |&&i: &&usize| allowed[replicas[i].type_index as usize];
        let choice = eligible
            .iter()
            .filter(is_allowed)
            .find(|&&i| i >= start)
            .or_else(|| eligible.iter().find(is_allowed))
            .copied();
        match choice {
            Some(i) => {
                self.cursors[bucket] = i + 1;
                i
            }
            // No assigned type can hold it (or the bucket has no assignment): any replica.
            None => self.fallback.route(request, replicas, eligible),
        }
    }
}

struct SolverProportional {
    rng: Pcg64,
    table: AssignmentTable,
    /// Per bucket, per type: the assigned load.
    loads: Vec<Vec<f64>>,
    /// Per type: the replica index to try first.
    cursors: Vec<usize>,
    /// Per type: whether an eligible replica has it (scratch).
    present: Vec<bool>,
}

impl SolverProportional {
    fn new(rng: Pcg64, table: &AssignmentTable, type_names: &[String]) -> Self {
        Self {
            rng,
            loads: table.per_bucket(type_names),
            table: table.clone(),
            cursors: vec![0; type_names.len()],
            present: vec![false; type_names.len()],
        }
    }
}

impl Router for SolverProportional {
    fn name(&self) -> &'static str {
        "solver-proportional"
    }

    fn route(
        &mut self,
        request: &RouteRequest,
        replicas: &[ReplicaStatus],
        eligible: &[usize],
    ) -> usize {
        let loads = &self.loads[self.table.bucket_index(request)];
        self.present.iter_mut().for_each(|p| *p = false);
        for &i in eligible {
            self.present[replicas[i].type_index as usize] = true;
        }
        let total: f64 = loads
            .iter()
            .zip(&self.present)
            .filter(|(_, present)| **present)
            .map(|(load, _)| load)
            .sum();
        // One draw per request whatever happens, so the stream stays aligned.
        let draw = self.rng.random::<f64>();
        if total <= 0.0 {
            // No type with load for this bucket can hold it: uniformly over the eligible.
            return eligible[((draw * eligible.len() as f64) as usize).min(eligible.len() - 1)];
        }
        let mut target = draw * total;
        let mut chosen = None;
        for (t, (&load, &present)) in loads.iter().zip(&self.present).enumerate() {
            if !present || load <= 0.0 {
                continue;
            }
            chosen = Some(t);
            if target < load {
                break;
            }
            target -= load;
        }
        let chosen = chosen.expect("total > 0 means some type has load");
        // Round-robin among the eligible replicas of that type.
        let start = self.cursors[chosen];
        let of_type = |&&i: &&usize| replicas[i].type_index as usize == chosen;
        let replica = *eligible
            .iter()
            .filter(of_type)
            .find(|&&i| i >= start)
            .or_else(|| eligible.iter().find(of_type))
            .expect("the chosen type has an eligible replica");
        self.cursors[chosen] = replica + 1;
        replica
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(index: u32, type_index: u32, running: u32, used: u64, total: u64) -> ReplicaStatus {
        ReplicaStatus {
            index,
            type_index,
            waiting: 0,
            running,
            queued_prompt_tokens: 0,
            kv_blocks_used: used,
            kv_blocks_total: total,
            max_request_tokens: 4096,
        }
    }

    fn request(input: u32, predicted: u32, session: Option<u64>) -> RouteRequest {
        RouteRequest {
            id: 0,
            input_tokens: input,
            predicted_output_tokens: predicted,
            session_id: session,
            slo_class: 0,
        }
    }

    #[test]
    fn names_parse_and_display() {
        for kind in RouterKind::ALL {
            assert_eq!(RouterKind::parse(kind.name()), Some(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
    }

    #[test]
    fn kv_aware_picks_most_free_blocks_per_running_request() {
        let mut router = build(RouterKind::KvAware, 0, None, &["A".into()]).unwrap();
        let replicas = [
            status(0, 0, 10, 500, 1000), // 500 free / 11
            status(1, 0, 1, 900, 1000),  // 100 free / 2 = 50: the most per request
            status(2, 0, 0, 960, 1000),  // 40 free / 1
        ];
        assert_eq!(
            router.route(&request(10, 10, None), &replicas, &[0, 1, 2]),
            1
        );
        // Least-outstanding would pick the idle but nearly full replica 2.
        let mut least = build(RouterKind::LeastOutstanding, 0, None, &["A".into()]).unwrap();
        assert_eq!(
            least.route(&request(10, 10, None), &replicas, &[0, 1, 2]),
            2
        );
        // Queued prompts count against free blocks: 100 free but 1600 queued tokens (100 blocks).
        let mut queued = replicas;
        queued[1].queued_prompt_tokens = 1600;
        assert_eq!(router.route(&request(10, 10, None), &queued, &[0, 1, 2]), 0);
        // Only the eligible count.
        assert_eq!(router.route(&request(10, 10, None), &replicas, &[0, 2]), 0);
    }

    #[test]
    fn sticky_keeps_sessions_and_balances_new_ones() {
        let mut router = build(RouterKind::SessionSticky, 0, None, &["A".into()]).unwrap();
        let mut replicas = [status(0, 0, 0, 0, 100), status(1, 0, 0, 0, 100)];
        assert_eq!(
            router.route(&request(10, 10, Some(7)), &replicas, &[0, 1]),
            0
        );
        replicas[0].running = 5;
        // Session 7 stays on the busier replica; a new session goes to the idle one.
        assert_eq!(
            router.route(&request(10, 10, Some(7)), &replicas, &[0, 1]),
            0
        );
        assert_eq!(
            router.route(&request(10, 10, Some(8)), &replicas, &[0, 1]),
            1
        );
        // Its replica cannot hold the request: it moves, and stays moved.
        assert_eq!(router.route(&request(10, 10, Some(7)), &replicas, &[1]), 1);
        assert_eq!(
            router.route(&request(10, 10, Some(7)), &replicas, &[0, 1]),
            1
        );
    }

    fn two_type_table() -> AssignmentTable {
        let mut table = AssignmentTable::new(BucketEdges::melange());
        // Short outputs (bucket 0-25) to type A only; long ones (501-1000) split 1:3.
        table.set("A", 1, 0, 2.0).unwrap();
        table.set("A", 1, 4, 1.0).unwrap();
        table.set("B", 1, 4, 3.0).unwrap();
        table
    }

    #[test]
    fn size_aware_round_robins_within_the_assigned_types() {
        let names = vec!["A".to_string(), "B".to_string()];
        let table = two_type_table();
        let mut router = build_with(RouterKind::SizeAware, 0, None, Some(&table), &names).unwrap();
        let replicas = [
            status(0, 0, 0, 0, 100),
            status(1, 1, 0, 0, 100),
            status(2, 0, 0, 0, 100),
            status(3, 1, 0, 0, 100),
        ];
        let all = [0, 1, 2, 3];
        let short: Vec<usize> = (0..4)
            .map(|_| router.route(&request(50, 10, None), &replicas, &all))
            .collect();
        assert_eq!(short, vec![0, 2, 0, 2]);
        let long: Vec<usize> = (0..4)
            .map(|_| router.route(&request(50, 700, None), &replicas, &all))
            .collect();
        assert_eq!(long, vec![0, 1, 2, 3]);
        // Type A cannot hold it: the fallback spreads over the eligible.
        assert_eq!(router.route(&request(50, 10, None), &replicas, &[1, 3]), 1);
    }

    #[test]
    fn solver_proportional_splits_by_assigned_load() {
        let names = vec!["A".to_string(), "B".to_string()];
        let table = two_type_table();
        let mut router = build_with(
            RouterKind::SolverProportional,
            3,
            None,
            Some(&table),
            &names,
        )
        .unwrap();
        let replicas = [
            status(0, 0, 0, 0, 100),
            status(1, 1, 0, 0, 100),
            status(2, 1, 0, 0, 100),
        ];
        let n = 40_000;
        let mut per_replica = [0u32; 3];
        for _ in 0..n {
            per_replica[router.route(&request(50, 700, None), &replicas, &[0, 1, 2])] += 1;
        }
        let share_a = f64::from(per_replica[0]) / f64::from(n);
        assert!((share_a - 0.25).abs() < 0.01, "{share_a}");
        // Round-robin within B splits its share evenly.
        assert!(
            per_replica[1].abs_diff(per_replica[2]) <= 1,
            "{per_replica:?}"
        );
        for _ in 0..100 {
            assert_eq!(
                router.route(&request(50, 10, None), &replicas, &[0, 1, 2]),
                0
            );
        }
    }

    #[test]
    fn assignment_tables_are_checked() {
        let names = vec!["A".to_string()];
        assert!(build(RouterKind::SizeAware, 0, None, &names).is_err());
        let table = two_type_table(); // assigns load to B, absent here
        let err = build_with(RouterKind::SizeAware, 0, None, Some(&table), &names)
            .err()
            .unwrap();
        assert!(err.contains("'B'"), "{err}");
        let empty = AssignmentTable::new(BucketEdges::melange());
        assert!(build_with(RouterKind::SizeAware, 0, None, Some(&empty), &names).is_err());
        let mut bad = AssignmentTable::new(BucketEdges::melange());
        assert!(bad.set("A", 99, 0, 1.0).is_err());
        assert!(bad.set("A", 0, 0, -1.0).is_err());
        bad.loads.insert("A".into(), vec![vec![1.0]]);
        assert!(bad.validate().is_err());
    }
}
