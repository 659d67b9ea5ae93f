//! Waiting-queue order at a replica: first-come-first-served, shortest-job-first, shortest
//! remaining processing time, earliest deadline, least slack, priority with aging, skip-join
//! multi-level feedback (FastServe) and SLO-ODBS (UELLM) for static batching.
//!
//! Every order except FCFS is a binary heap on a key fixed when the request enters the queue,
//! so a push or pop costs O(log n). Orders that depend on the current time still have fixed
//! keys: waiting time grows at the same rate for every waiting request, so `priority − w ×
//! (now − arrival)` orders exactly as `priority + w × arrival`, and a slack `deadline − now −
//! work` orders as `deadline − work`. Policies read a request's *predicted* output length
//! ([`Seq::predicted_output`]), never its true one.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::Arc;

use gpu_models::Instance;
use serde::{Deserialize, Serialize};

use crate::config::SloTargets;
use crate::replica::Seq;
use crate::time::to_secs;

/// Single-sequence decode step assumed when no instance is known, seconds.
const FALLBACK_DECODE_STEP_S: f64 = 0.02;

/// Top MLFQ quantum, in single-sequence decode steps, unless set. FastServe uses one
/// iteration, but it swaps preempted KV to host memory; here a policy preemption recomputes,
/// and with a one-step quantum short requests were demoted and preempted before finishing
/// (bimodal 20/800-token outputs on one A10G with 8 slots: short-request latency rose from
/// 14.3 s under FCFS to 18.8 s). 32 steps (about 1 s on an A10G) let a short request finish
/// in its first levels, so demotion singles out the long ones.
const MLFQ_QUANTUM_STEPS: f64 = 32.0;

/// The order in which a replica admits waiting requests.
pub trait QueuePolicy: Send {
    /// Short name for outputs.
    fn name(&self) -> &'static str;
    /// Adds a newly routed request.
    fn push(&mut self, seq: Seq);
    /// Returns a preempted request, which goes ahead of new ones.
    fn push_front(&mut self, seq: Seq);
    /// The request that would be admitted next.
    fn peek(&self) -> Option<&Seq>;
    /// Removes the request that would be admitted next.
    fn pop(&mut self) -> Option<Seq>;
    /// Requests waiting.
    fn len(&self) -> usize;
    /// Whether nothing waits.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Urgency of a request for preemption (lower goes first), or `None` when this policy
    /// never preempts running requests for waiting ones.
    fn preemption_rank(&self, _seq: &Seq) -> Option<f64> {
        None
    }
    /// Most times one request may be preempted for the sake of more urgent ones.
    fn max_preemptions(&self) -> u32 {
        0
    }
    /// Whether `candidate` may join a static batch being formed that already holds `batch`.
    fn joins_static_batch(&self, _batch: &StaticBatch, _candidate: &Seq) -> bool {
        true
    }
    /// Removes the next member of a static batch that holds `batch`, among requests the
    /// replica can take (`fits`); `None` closes the batch. By default only the head may join.
    fn pop_for_static_batch(
        &mut self,
        batch: &StaticBatch,
        fits: &dyn Fn(&Seq) -> bool,
    ) -> Option<Seq> {
        let head = self.peek()?;
        if fits(head) && self.joins_static_batch(batch, head) {
            self.pop()
        } else {
            None
        }
    }
}

/// The predicted shape of a static batch being formed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaticBatch {
    /// Requests in it.
    pub members: u32,
    /// Σ predicted output tokens.
    pub predicted_sum: u64,
    /// Largest predicted output.
    pub predicted_max: u32,
}

impl StaticBatch {
    /// Adds a member with this predicted output.
    pub fn add(&mut self, predicted_output: u32) {
        self.members += 1;
        self.predicted_sum += u64::from(predicted_output);
        self.predicted_max = self.predicted_max.max(predicted_output);
    }

    /// Fraction of decode slots padding would waste: 1 − Σ out / (members × max out).
    pub fn padding_waste(&self) -> f64 {
        if self.members == 0 || self.predicted_max == 0 {
            return 0.0;
        }
        1.0 - self.predicted_sum as f64 / (f64::from(self.members) * f64::from(self.predicted_max))
    }
}

/// First come, first served; preempted requests return to the head.
#[derive(Debug, Default)]
pub struct Fcfs {
    queue: VecDeque<Seq>,
}

impl QueuePolicy for Fcfs {
    fn name(&self) -> &'static str {
        "fcfs"
    }

    fn push(&mut self, seq: Seq) {
        self.queue.push_back(seq);
    }

    fn push_front(&mut self, seq: Seq) {
        self.queue.push_front(seq);
    }

    fn peek(&self) -> Option<&Seq> {
        self.queue.front()
    }

    fn pop(&mut self) -> Option<Seq> {
        self.queue.pop_front()
    }

    fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Which queue policy replicas use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum QueueKind {
    /// First come, first served.
    #[default]
    Fcfs,
    /// Shortest predicted output first.
    Sjf,
    /// Shortest predicted total (prompt + output) first.
    SjfTotal,
    /// Shortest predicted remaining output first; preempts longer running requests (capped).
    Srpt,
    /// Earliest TTFT deadline (arrival + the SLO class's TTFT target) first.
    Edf,
    /// Least slack to the TTFT deadline (deadline − now − remaining prefill time) first.
    LeastSlack,
    /// Lowest `priority − w × waiting time` first; the priority is the request's SLO class.
    Priority,
    /// FastServe's skip-join multi-level feedback queue; preempts demoted requests (capped).
    Mlfq,
    /// UELLM's SLO-ODBS: by deadline + 0.5 × predicted decode time, static batches grouped
    /// while padding waste stays under a bound.
    SloOdbs,
}

impl QueueKind {
    /// Every policy, for help texts and sweeps.
    pub const ALL: [QueueKind; 9] = [
        QueueKind::Fcfs,
        QueueKind::Sjf,
        QueueKind::SjfTotal,
        QueueKind::Srpt,
        QueueKind::Edf,
        QueueKind::LeastSlack,
        QueueKind::Priority,
        QueueKind::Mlfq,
        QueueKind::SloOdbs,
    ];

    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            QueueKind::Fcfs => "fcfs",
            QueueKind::Sjf => "sjf",
            QueueKind::SjfTotal => "sjf-total",
            QueueKind::Srpt => "srpt",
            QueueKind::Edf => "edf",
            QueueKind::LeastSlack => "least-slack",
            QueueKind::Priority => "priority",
            QueueKind::Mlfq => "mlfq",
            QueueKind::SloOdbs => "slo-odbs",
        }
    }

    /// Parses a policy name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(text.trim()))
    }

    /// Whether the policy needs a TTFT target (global or per SLO class) for its deadlines.
    pub fn needs_ttft_target(self) -> bool {
        matches!(self, QueueKind::Edf | QueueKind::LeastSlack)
    }

    /// Builds a fresh queue with default settings and no SLO targets.
    pub fn build(self) -> Box<dyn QueuePolicy> {
        self.build_with(&QueueContext::default())
    }

    /// Builds a fresh queue for one replica.
    pub fn build_with(self, context: &QueueContext) -> Box<dyn QueuePolicy> {
        match self {
            QueueKind::Fcfs => Box::new(Fcfs::default()),
            kind => Box::new(Ordered::new(kind, context)),
        }
    }
}

impl fmt::Display for QueueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings of the queue policies, shared by every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueParams {
    /// Priority aging `w`: priority units forgiven per second of waiting.
    pub aging_per_s: f64,
    /// Most preemptions one request suffers for more urgent ones (SRPT, MLFQ).
    pub max_preemptions: u32,
    /// MLFQ levels.
    pub mlfq_levels: u32,
    /// Quantum of the top MLFQ level, seconds (level k gets 2^k times it); unset: 32 of the
    /// replica's single-sequence decode steps.
    pub mlfq_base_quantum_s: Option<f64>,
    /// SLO-ODBS: largest fraction of a static batch's decode slots that padding may waste,
    /// judged on predicted output lengths.
    pub odbs_max_padding: f64,
    /// SLO-ODBS weight of the predicted decode time in the order key (UELLM: 0.5).
    pub odbs_output_weight: f64,
    /// SLO-ODBS: requests looked at, in order, when filling one static batch (bounds the
    /// O(window × log n) cost of forming it).
    pub odbs_scan_window: u32,
}

impl Default for QueueParams {
    fn default() -> Self {
        Self {
            // A request of class 1 that has waited 10 s ranks with a fresh one of class 0.
            aging_per_s: 0.1,
            max_preemptions: 2,
            mlfq_levels: 8,
            mlfq_base_quantum_s: None,
            odbs_max_padding: 0.3,
            odbs_output_weight: 0.5,
            odbs_scan_window: 64,
        }
    }
}

impl QueueParams {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.aging_per_s.is_finite() && self.aging_per_s >= 0.0) {
            return Err(format!(
                "queue_params.aging_per_s must be finite and >= 0, found {}",
                self.aging_per_s
            ));
        }
        if !(1..=32).contains(&self.mlfq_levels) {
            return Err(format!(
                "queue_params.mlfq_levels must be in 1..=32, found {}",
                self.mlfq_levels
            ));
        }
        if let Some(q) = self.mlfq_base_quantum_s
            && !(q.is_finite() && q > 0.0)
        {
            return Err(format!(
                "queue_params.mlfq_base_quantum_s must be a positive number of seconds, found {q}"
            ));
        }
        if !(0.0..=1.0).contains(&self.odbs_max_padding) {
            return Err(format!(
                "queue_params.odbs_max_padding must be a fraction in [0, 1], found {}",
                self.odbs_max_padding
            ));
        }
        if !(self.odbs_output_weight.is_finite() && self.odbs_output_weight >= 0.0) {
            return Err(format!(
                "queue_params.odbs_output_weight must be finite and >= 0, found {}",
                self.odbs_output_weight
            ));
        }
        if self.odbs_scan_window == 0 {
            return Err("queue_params.odbs_scan_window must be at least 1".into());
        }
        Ok(())
    }
}

/// TTFT target of each SLO class, seconds: the class's own, else the global one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadlineTable {
    /// Per SLO class (index = `Request::slo_class`).
    pub per_class: Vec<Option<f64>>,
    /// For classes beyond the list or without a target of their own.
    pub default_s: Option<f64>,
}

impl DeadlineTable {
    /// From the global targets and the per-class ones.
    pub fn from_slo(global: &SloTargets, classes: &[SloTargets]) -> Self {
        Self {
            per_class: classes.iter().map(|c| c.ttft_s).collect(),
            default_s: global.ttft_s,
        }
    }

    /// The TTFT target of an SLO class.
    pub fn ttft_s(&self, class: u16) -> Option<f64> {
        self.per_class
            .get(usize::from(class))
            .copied()
            .flatten()
            .or(self.default_s)
    }

    /// Whether some class has a target.
    pub fn any(&self) -> bool {
        self.default_s.is_some() || self.per_class.iter().any(Option::is_some)
    }
}

/// What a queue needs to know beyond the requests: settings, deadlines, and the replica's
/// instance for service-time estimates.
#[derive(Debug, Clone, Default)]
pub struct QueueContext {
    /// Policy settings.
    pub params: QueueParams,
    /// TTFT targets per SLO class.
    pub deadlines: DeadlineTable,
    /// The replica's instance (no estimates without one: prefill takes no time).
    pub instance: Option<Arc<Instance>>,
}

/// A waiting request and its fixed key.
struct Entry {
    key: f64,
    arrival_s: f64,
    /// Insertion order: positive and rising for pushes, negative and falling for
    /// preempted requests, so among equal keys those go first and the rest in arrival order.
    order: i64,
    seq: Seq,
}

impl Entry {
    fn rank(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.arrival_s.total_cmp(&other.arrival_s))
            .then(self.order.cmp(&other.order))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.rank(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and the smallest key goes first.
        other.rank(self)
    }
}

/// Every order but FCFS: a heap on a key computed when the request enters.
struct Ordered {
    kind: QueueKind,
    params: QueueParams,
    deadlines: DeadlineTable,
    instance: Option<Arc<Instance>>,
    /// Top MLFQ quantum, seconds.
    base_quantum_s: f64,
    /// Single-sequence decode step, seconds (turns predicted tokens into time).
    decode_step_s: f64,
    heap: BinaryHeap<Entry>,
    pushes: i64,
}

impl Ordered {
    fn new(kind: QueueKind, context: &QueueContext) -> Self {
        let decode_step_s = context
            .instance
            .as_ref()
            .map_or(FALLBACK_DECODE_STEP_S, |i| i.decode_step_s(1, 1));
        Self {
            kind,
            params: context.params.clone(),
            deadlines: context.deadlines.clone(),
            instance: context.instance.clone(),
            base_quantum_s: context
                .params
                .mlfq_base_quantum_s
                .unwrap_or(MLFQ_QUANTUM_STEPS * decode_step_s),
            decode_step_s,
            heap: BinaryHeap::new(),
            pushes: 0,
        }
    }

    fn prefill_s(&self, tokens: u32) -> f64 {
        match &self.instance {
            Some(instance) if tokens > 0 => instance.prefill_s(tokens),
            _ => 0.0,
        }
    }

    /// Arrival plus the class's TTFT target (just the arrival without a target).
    fn deadline_s(&self, seq: &Seq) -> f64 {
        to_secs(seq.arrival_ns) + self.deadlines.ttft_s(seq.request.slo_class).unwrap_or(0.0)
    }

    /// Predicted output tokens still to come (at least 1).
    fn remaining_output(seq: &Seq) -> f64 {
        f64::from(seq.predicted_output.saturating_sub(seq.generated).max(1))
    }

    /// Skip-join MLFQ level: the first level whose quantum covers the prompt's prefill, then
    /// one level down for each quantum of service used up.
    fn mlfq_level(&self, seq: &Seq) -> u32 {
        let top = self.params.mlfq_levels.max(1) - 1;
        let quantum = |level: u32| self.base_quantum_s * f64::from(1u32 << level.min(31));
        let first_iteration = self.prefill_s(seq.request.input_tokens.max(1));
        let mut level = 0;
        while level < top && quantum(level) < first_iteration {
            level += 1;
        }
        let mut service = to_secs(seq.service_ns());
        while level < top && service >= quantum(level) {
            service -= quantum(level);
            level += 1;
        }
        level
    }

    fn key(&self, seq: &Seq) -> f64 {
        let predicted = f64::from(seq.predicted_output.max(1));
        match self.kind {
            QueueKind::Fcfs => to_secs(seq.arrival_ns),
            QueueKind::Sjf => predicted,
            QueueKind::SjfTotal => predicted + f64::from(seq.request.input_tokens),
            QueueKind::Srpt => Self::remaining_output(seq),
            QueueKind::Edf => self.deadline_s(seq),
            QueueKind::LeastSlack => {
                self.deadline_s(seq) - self.prefill_s(seq.remaining_prefill_tokens())
            }
            QueueKind::Priority => {
                f64::from(seq.request.slo_class) + self.params.aging_per_s * to_secs(seq.arrival_ns)
            }
            QueueKind::Mlfq => f64::from(self.mlfq_level(seq)),
            QueueKind::SloOdbs => {
                self.deadline_s(seq)
                    + self.params.odbs_output_weight * predicted * self.decode_step_s
            }
        }
    }

    fn insert(&mut self, seq: Seq, order: i64) {
        let key = self.key(&seq);
        self.heap.push(Entry {
            key,
            arrival_s: to_secs(seq.arrival_ns),
            order,
            seq,
        });
    }
}

impl QueuePolicy for Ordered {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn push(&mut self, seq: Seq) {
        self.pushes += 1;
        let order = self.pushes;
        self.insert(seq, order);
    }

    fn push_front(&mut self, seq: Seq) {
        self.pushes += 1;
        let order = -self.pushes;
        self.insert(seq, order);
    }

    fn peek(&self) -> Option<&Seq> {
        self.heap.peek().map(|e| &e.seq)
    }

    fn pop(&mut self) -> Option<Seq> {
        self.heap.pop().map(|e| e.seq)
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn preemption_rank(&self, seq: &Seq) -> Option<f64> {
        match self.kind {
            QueueKind::Srpt => Some(Self::remaining_output(seq)),
            QueueKind::Mlfq => Some(f64::from(self.mlfq_level(seq))),
            _ => None,
        }
    }

    fn max_preemptions(&self) -> u32 {
        match self.kind {
            QueueKind::Srpt | QueueKind::Mlfq => self.params.max_preemptions,
            _ => 0,
        }
    }

    fn joins_static_batch(&self, batch: &StaticBatch, candidate: &Seq) -> bool {
        if self.kind != QueueKind::SloOdbs || batch.members == 0 {
            return true;
        }
        let mut grown = *batch;
        grown.add(candidate.predicted_output.max(1));
        grown.padding_waste() <= self.params.odbs_max_padding
    }

    fn pop_for_static_batch(
        &mut self,
        batch: &StaticBatch,
        fits: &dyn Fn(&Seq) -> bool,
    ) -> Option<Seq> {
        let window = match self.kind {
            QueueKind::SloOdbs => self.params.odbs_scan_window.max(1) as usize,
            _ => 1,
        };
        // Greedy grouping: the first request in order, within the window, that fits and keeps
        // the padding under the bound; those passed over go back with their keys unchanged.
        let mut passed: Vec<Entry> = Vec::new();
        let mut found = None;
        while passed.len() < window {
            let Some(entry) = self.heap.pop() else {
                break;
            };
            if fits(&entry.seq) && self.joins_static_batch(batch, &entry.seq) {
                found = Some(entry.seq);
                break;
            }
            passed.push(entry);
        }
        self.heap.extend(passed);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::Request;

    fn seq(id: u64, arrival_s: f64, input: u32, predicted: u32, class: u16) -> Seq {
        let mut request = Request::new(id, arrival_s, input, predicted);
        request.slo_class = class;
        Seq::with_prediction(request, crate::time::from_secs(arrival_s), predicted)
    }

    fn drain(queue: &mut dyn QueuePolicy) -> Vec<u64> {
        std::iter::from_fn(|| queue.pop().map(|s| s.request.id)).collect()
    }

    #[test]
    fn names_parse_and_display() {
        for kind in QueueKind::ALL {
            assert_eq!(QueueKind::parse(kind.name()), Some(kind));
            assert_eq!(kind.to_string(), kind.name());
            assert_eq!(kind.build().name(), kind.name());
        }
        assert_eq!(QueueKind::parse("SJF"), Some(QueueKind::Sjf));
        assert_eq!(QueueKind::parse("lifo"), None);
    }

    #[test]
    fn sjf_orders_by_prediction_then_arrival() {
        let mut queue = QueueKind::Sjf.build();
        queue.push(seq(0, 0.0, 10, 500, 0));
        queue.push(seq(1, 1.0, 900, 20, 0));
        queue.push(seq(2, 2.0, 10, 20, 0));
        queue.push(seq(3, 3.0, 10, 100, 0));
        assert_eq!(drain(queue.as_mut()), vec![1, 2, 3, 0]);
        let mut total = QueueKind::SjfTotal.build();
        total.push(seq(0, 0.0, 10, 500, 0));
        total.push(seq(1, 1.0, 900, 20, 0));
        total.push(seq(2, 2.0, 10, 20, 0));
        assert_eq!(drain(total.as_mut()), vec![2, 0, 1]);
    }

    #[test]
    fn edf_uses_the_class_deadline() {
        let context = QueueContext {
            deadlines: DeadlineTable {
                per_class: vec![Some(0.5), Some(20.0)],
                default_s: None,
            },
            ..QueueContext::default()
        };
        let mut queue = QueueKind::Edf.build_with(&context);
        queue.push(seq(0, 0.0, 10, 10, 1)); // deadline 20
        queue.push(seq(1, 5.0, 10, 10, 0)); // deadline 5.5
        queue.push(seq(2, 6.0, 10, 10, 0)); // deadline 6.5
        queue.push(seq(3, 1.0, 10, 10, 1)); // deadline 21
        assert_eq!(drain(queue.as_mut()), vec![1, 2, 0, 3]);
    }

    #[test]
    fn priority_ages_waiting_requests() {
        let order = |aging_per_s: f64| {
            let context = QueueContext {
                params: QueueParams {
                    aging_per_s,
                    ..QueueParams::default()
                },
                ..QueueContext::default()
            };
            let mut queue = QueueKind::Priority.build_with(&context);
            queue.push(seq(0, 0.0, 10, 10, 2)); // low priority, waiting longest
            queue.push(seq(1, 8.0, 10, 10, 1));
            queue.push(seq(2, 9.0, 10, 10, 0)); // top priority, newest
            drain(queue.as_mut())
        };
        // Without aging, strictly by class.
        assert_eq!(order(0.0), vec![2, 1, 0]);
        // At 1 unit per second, 9 s of waiting outweighs two classes.
        assert_eq!(order(1.0), vec![0, 1, 2]);
    }

    #[test]
    fn preempted_requests_go_ahead_of_equal_keys() {
        let mut queue = QueueKind::Sjf.build();
        queue.push(seq(0, 0.0, 10, 50, 0));
        queue.push_front(seq(1, 3.0, 10, 50, 0));
        queue.push(seq(2, 1.0, 10, 40, 0));
        assert_eq!(drain(queue.as_mut()), vec![2, 0, 1]);
        let mut fcfs = QueueKind::Fcfs.build();
        fcfs.push(seq(0, 0.0, 10, 50, 0));
        fcfs.push_front(seq(1, 3.0, 10, 50, 0));
        assert_eq!(drain(fcfs.as_mut()), vec![1, 0]);
    }

    #[test]
    fn mlfq_skip_joins_by_prompt_and_demotes_by_service() {
        let catalog = gpu_models::Catalog::builtin();
        let instance = Instance::from_catalog(
            &catalog,
            "Llama-2-7B",
            "A10G",
            1,
            &gpu_models::InstanceOptions::default(),
        )
        .unwrap()
        .unwrap();
        let context = QueueContext {
            instance: Some(Arc::new(instance)),
            params: QueueParams {
                mlfq_base_quantum_s: Some(0.05),
                ..QueueParams::default()
            },
            ..QueueContext::default()
        };
        let queue = Ordered::new(QueueKind::Mlfq, &context);
        let short = seq(0, 0.0, 8, 10, 0);
        let long = seq(1, 0.0, 3000, 10, 0);
        let short_level = queue.mlfq_level(&short);
        let long_level = queue.mlfq_level(&long);
        assert!(long_level > short_level, "{long_level} vs {short_level}");
        // An 8-token prompt prefills in about 33 ms on an A10G: the top level's 50 ms covers it.
        assert_eq!(short_level, 0);
        // 0.05 + 0.1 + 0.2 s of service moves a top-level request down three levels.
        let mut served = seq(2, 0.0, 8, 10, 0);
        served.add_service_ns(crate::time::from_secs(0.36));
        assert_eq!(queue.mlfq_level(&served), 3);
        assert_eq!(queue.preemption_rank(&served), Some(3.0));
    }

    #[test]
    fn odbs_groups_while_padding_stays_under_the_bound() {
        let context = QueueContext {
            params: QueueParams {
                odbs_max_padding: 0.25,
                ..QueueParams::default()
            },
            ..QueueContext::default()
        };
        let queue = QueueKind::SloOdbs.build_with(&context);
        let mut batch = StaticBatch::default();
        assert!(queue.joins_static_batch(&batch, &seq(0, 0.0, 10, 100, 0)));
        batch.add(100);
        assert!(queue.joins_static_batch(&batch, &seq(1, 0.0, 10, 80, 0)));
        batch.add(80);
        // 100, 80, 20: waste 1 − 200/300 = 0.33 > 0.25.
        assert!(!queue.joins_static_batch(&batch, &seq(2, 0.0, 10, 20, 0)));
        assert!((batch.padding_waste() - 0.1).abs() < 1e-12);
        // FCFS never refuses.
        assert!(
            QueueKind::Fcfs
                .build()
                .joins_static_batch(&batch, &seq(2, 0.0, 10, 20, 0))
        );
    }

    #[test]
    fn odbs_passes_over_misfits_to_fill_a_batch() {
        let context = QueueContext {
            params: QueueParams {
                odbs_max_padding: 0.2,
                ..QueueParams::default()
            },
            ..QueueContext::default()
        };
        let mut queue = QueueKind::SloOdbs.build_with(&context);
        for (id, predicted) in [(0, 100), (1, 10), (2, 90), (3, 10), (4, 95)] {
            queue.push(seq(id, id as f64, 10, predicted, 0));
        }
        let mut batch = StaticBatch::default();
        let mut members = Vec::new();
        while let Some(s) = queue.pop_for_static_batch(&batch, &|_| true) {
            batch.add(s.predicted_output);
            members.push(s.request.id);
        }
        assert_eq!(members, vec![0, 2, 4]);
        // The short ones wait, still in order.
        assert_eq!(drain(queue.as_mut()), vec![1, 3]);
        // FCFS takes only its head, and stops at the first that does not fit.
        let mut fcfs = QueueKind::Fcfs.build();
        fcfs.push(seq(0, 0.0, 10, 100, 0));
        fcfs.push(seq(1, 1.0, 10, 10, 0));
        let empty = StaticBatch::default();
        assert!(
            fcfs.pop_for_static_batch(&empty, &|s| s.request.id == 1)
                .is_none()
        );
        assert_eq!(fcfs.len(), 2);
    }

    #[test]
    fn params_are_validated() {
        assert!(QueueParams::default().validate().is_ok());
        for bad in [
            QueueParams {
                aging_per_s: -1.0,
                ..QueueParams::default()
            },
            QueueParams {
                mlfq_levels: 0,
                ..QueueParams::default()
            },
            QueueParams {
                mlfq_base_quantum_s: Some(0.0),
                ..QueueParams::default()
            },
            QueueParams {
                odbs_max_padding: 1.5,
                ..QueueParams::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
