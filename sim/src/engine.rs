//! The discrete-event loop: arrivals are routed to replicas, replicas run iterations, and
//! every outcome is recorded. An autoscaler may start and drain replicas at its evaluation
//! events; in a disaggregated cluster, prefilled requests move their KV cache to decode
//! replicas over a link (see [`crate::disagg`]).

use std::cmp::Reverse;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use workloads::{BucketEdges, Request};

use crate::autoscale::{
    AutoscaleConfig, AutoscalePolicy, Autoscaler, ReplicaCountPoint, ScaleMetric, ScalingReport,
    TypeObservation, TypeScaling,
};
use crate::cluster::{Cluster, ReplicaRole};
use crate::config::{BatchingMode, EngineConfig, SloTargets};
use crate::disagg::{DisaggReport, KvLink};
use crate::energy::{self, PowerConfig};
use crate::events::{EventKind, EventQueue};
use crate::hist::LogHistogram;
use crate::metrics::{MetricsAccumulator, ReplicaLife, Summary};
use crate::predict::{self, Predictor, PredictorKind};
use crate::queue::{DeadlineTable, QueueContext, QueueKind, QueueParams};
use crate::replica::{self, Finished, KvTransfer, Replica, ReplicaStatus, Seq};
use crate::router::{self, AssignmentTable, CapacityTable, RouteRequest, Router, RouterKind};
use crate::sink::{RecordSink, RequestRecord, RequestStatus, SampleRecord};
use crate::time::{Nanos, from_secs, to_secs};

/// Everything about a run except the cluster and the requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Engine settings of every replica.
    pub engine: EngineConfig,
    /// Router.
    pub router: RouterKind,
    /// Waiting-queue order.
    pub queue: QueueKind,
    /// SLO targets.
    pub slo: SloTargets,
    /// Seed of every random draw in the simulation (routers).
    pub seed: u64,
    /// Advance silent decode iterations without the event queue (same results, faster).
    pub fast_path: bool,
    /// Interval of the per-replica time series, seconds (none: no samples).
    pub sample_interval_s: Option<f64>,
    /// Stop at this simulated time, seconds; requests still in flight are reported as such.
    pub horizon_s: Option<f64>,
    /// Output-length predictor that queue orders and routers see.
    pub predictor: PredictorKind,
    /// Settings of the queue policies.
    pub queue_params: QueueParams,
    /// Per SLO class (index = `Request::slo_class`): targets that replace the global ones
    /// where set; they judge the class's requests and give deadline orders their deadlines.
    pub slo_classes: Vec<SloTargets>,
    /// GPU power as fractions of TDP, for energy.
    pub power: PowerConfig,
    /// Load per replica type and size bucket, for size-aware and solver-proportional routing.
    pub assignment: Option<AssignmentTable>,
    /// Autoscaling (static by default: the cluster as given).
    pub autoscale: AutoscaleConfig,
    /// The link KV caches cross from prefill to decode replicas (disaggregated clusters).
    pub kv_link: KvLink,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            router: RouterKind::default(),
            queue: QueueKind::default(),
            slo: SloTargets::default(),
            seed: 0,
            fast_path: true,
            sample_interval_s: None,
            horizon_s: None,
            predictor: PredictorKind::default(),
            queue_params: QueueParams::default(),
            slo_classes: Vec::new(),
            power: PowerConfig::default(),
            assignment: None,
            autoscale: AutoscaleConfig::default(),
            kv_link: KvLink::default(),
        }
    }
}

impl SimConfig {
    /// The targets a request of SLO class `class` is judged by.
    pub fn slo_for_class(&self, class: u16) -> SloTargets {
        match self.slo_classes.get(usize::from(class)) {
            Some(own) => SloTargets {
                ttft_s: own.ttft_s.or(self.slo.ttft_s),
                tpot_s: own.tpot_s.or(self.slo.tpot_s),
                norm_latency_s: own.norm_latency_s.or(self.slo.norm_latency_s),
            },
            None => self.slo,
        }
    }

    /// Checks the policy settings (predictor, queue, SLO classes, power, assignment, KV
    /// link); the autoscaler's are checked against the cluster when the run starts.
    pub fn validate_policies(&self) -> Result<(), String> {
        self.predictor.validate()?;
        self.queue_params.validate()?;
        self.power.validate()?;
        self.kv_link.validate()?;
        for (k, class) in std::iter::once(&self.slo)
            .chain(&self.slo_classes)
            .enumerate()
        {
            for (name, value) in [
                ("ttft_s", class.ttft_s),
                ("tpot_s", class.tpot_s),
                ("norm_latency_s", class.norm_latency_s),
            ] {
                if let Some(v) = value
                    && !(v.is_finite() && v >= 0.0)
                {
                    let place = if k == 0 {
                        "slo".to_string()
                    } else {
                        format!("slo_classes[{}]", k - 1)
                    };
                    return Err(format!(
                        "{place}.{name} must be a finite, non-negative number of seconds, found {v}"
                    ));
                }
            }
        }
        if self.queue.needs_ttft_target()
            && !DeadlineTable::from_slo(&self.slo, &self.slo_classes).any()
        {
            return Err(format!(
                "the {} queue orders by TTFT deadlines: set a TTFT target (--slo-ttft on the \
                 command line, slo.ttft in an experiment config)",
                self.queue
            ));
        }
        if let Some(table) = &self.assignment {
            table.validate()?;
        }
        Ok(())
    }
}

/// Why a simulation could not run.
#[derive(Debug)]
pub enum SimError {
    /// A request arrived before the one preceding it.
    UnsortedArrivals {
        /// The offending request.
        id: u64,
        /// Its arrival time.
        arrival_s: f64,
        /// The previous arrival time.
        previous_s: f64,
    },
    /// A request arrives before 0 s, after `workloads::MAX_ARRIVAL_S`, or at no finite time.
    ArrivalOutOfRange {
        /// The offending request.
        id: u64,
        /// Its arrival time.
        arrival_s: f64,
    },
    /// A bad setting.
    Config(String),
    /// Writing records failed.
    Io(std::io::Error),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::UnsortedArrivals {
                id,
                arrival_s,
                previous_s,
            } => write!(
                f,
                "request {id} arrives at {arrival_s} s, before the previous request ({previous_s} s): \
                 arrivals must be sorted"
            ),
            SimError::ArrivalOutOfRange { id, arrival_s } => write!(
                f,
                "request {id} arrives at {arrival_s:e} s; expected a time from 0 to {:e} s \
                 (about 31 years; a trace rescaled to a tiny rate, or times in the wrong unit?)",
                workloads::MAX_ARRIVAL_S
            ),
            SimError::Config(message) => write!(f, "{message}"),
            SimError::Io(e) => write!(f, "writing records: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<std::io::Error> for SimError {
    fn from(e: std::io::Error) -> Self {
        SimError::Io(e)
    }
}

/// Progress of a run, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Simulated time, seconds.
    pub now_s: f64,
    /// Requests arrived.
    pub arrived: u64,
    /// Requests finished (completed or rejected).
    pub finished: u64,
}

/// Reasons a request is rejected.
pub const REJECT_TOO_LONG: &str = "longer than any replica can hold";

/// A request no running replica can hold, though a replica type of the cluster could (the
/// autoscaler has none of them running).
pub const REJECT_NO_REPLICA: &str = "no running replica can hold it";

/// Runs `requests` (sorted by arrival) through `cluster`.
pub fn simulate(
    cluster: &Cluster,
    config: &SimConfig,
    capacity: Option<&CapacityTable>,
    requests: impl IntoIterator<Item = Request>,
    sink: &mut dyn RecordSink,
    mut progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<Summary, SimError> {
    // A schedule may start from nothing; every other run needs replicas from the start.
    if cluster.replicas.is_empty() && config.autoscale.policy != AutoscalePolicy::Schedule {
        return Err(SimError::Config("the cluster has no replicas".into()));
    }
    if !(0.0..1.0).contains(&config.engine.watermark) {
        return Err(SimError::Config(format!(
            "engine.watermark must be in [0, 1), found {}",
            config.engine.watermark
        )));
    }
    if config.engine.max_num_seqs == 0 || config.engine.max_batched_tokens == Some(0) {
        return Err(SimError::Config(
            "engine.max_num_seqs and engine.max_batched_tokens must be positive".into(),
        ));
    }
    config.validate_policies().map_err(SimError::Config)?;
    let mut run = Run::new(cluster, config, capacity, sink)?;
    let horizon = config.horizon_s.map(from_secs);
    let sample_every = config
        .sample_interval_s
        .filter(|s| *s > 0.0)
        .map(from_secs)
        .map(|n| n.max(1));

    let mut stream = requests.into_iter();
    let mut pending: Option<Request> = None;
    let mut previous_arrival = 0.0f64;
    let mut next_arrival = |pending: &mut Option<Request>,
                            queue: &mut EventQueue|
     -> Result<Option<Nanos>, SimError> {
        let Some(request) = stream.next() else {
            return Ok(None);
        };
        if !(0.0..=workloads::MAX_ARRIVAL_S).contains(&request.arrival_s) {
            return Err(SimError::ArrivalOutOfRange {
                id: request.id,
                arrival_s: request.arrival_s,
            });
        }
        if request.arrival_s < previous_arrival {
            return Err(SimError::UnsortedArrivals {
                id: request.id,
                arrival_s: request.arrival_s,
                previous_s: previous_arrival,
            });
        }
        previous_arrival = request.arrival_s;
        let at = from_secs(request.arrival_s);
        queue.push(at, EventKind::Arrival);
        *pending = Some(request);
        Ok(Some(at))
    };
    let mut arrival_ns = next_arrival(&mut pending, &mut run.queue)?;
    let mut sample_ns = sample_every;
    if let Some(at) = sample_ns {
        run.queue.push(at, EventKind::Sample);
    }
    let mut autoscale_ns = run
        .scaling
        .as_ref()
        .and_then(|s| s.autoscaler.first_evaluation());
    if let Some(at) = autoscale_ns {
        run.queue.push(at, EventKind::Autoscale);
    }
    let mut stopped_at_horizon = false;

    while let Some(event) = run.queue.pop() {
        let now = event.time;
        if horizon.is_some_and(|h| now > h) {
            stopped_at_horizon = true;
            break;
        }
        let timer = matches!(
            event.kind,
            EventKind::Sample | EventKind::Autoscale | EventKind::ReplicaReady { .. }
        );
        if timer && !run.work_left(pending.is_some()) {
            // Once the last request has finished, a sample, an autoscaler evaluation or a replica
            // becoming ready changes nothing the run reports; handling it would only stretch the
            // span (and the billing) past the work. This check is also what ends the timers:
            // a timer handled here always queues its next one.
            continue;
        }
        run.last_time = now;
        run.events += 1;
        run.queue_events += 1;
        match event.kind {
            EventKind::Arrival => {
                let request = pending.take().expect("an arrival event has a request");
                run.arrive(now, request)?;
                arrival_ns = next_arrival(&mut pending, &mut run.queue)?;
            }
            EventKind::IterationEnd { replica } => {
                // Nobody outside the replica looks before the next arrival, sample, autoscaler
                // evaluation or the horizon.
                let earlier = |a: Option<Nanos>, b: Nanos| a.map_or(b, |a| a.min(b));
                let fast_limit = earlier(
                    arrival_ns,
                    earlier(
                        sample_ns,
                        earlier(autoscale_ns, horizon.unwrap_or(Nanos::MAX)),
                    ),
                );
                run.iteration_end(replica as usize, now, fast_limit)?;
            }
            EventKind::TransferDone { slot } => run.transfer_done(slot, now),
            EventKind::ReplicaReady { replica } => run.replica_ready(replica as usize, now),
            EventKind::Autoscale => {
                run.autoscale(now);
                // A timer that cannot move forward (its clock saturated at the end of the
                // nanosecond range) would fire for ever: it stops instead.
                let next = run
                    .scaling
                    .as_ref()
                    .and_then(|s| s.autoscaler.next_evaluation(now))
                    .filter(|&at| at > now);
                if let Some(at) = next {
                    run.queue.push(at, EventKind::Autoscale);
                }
                autoscale_ns = next;
            }
            EventKind::Sample => {
                run.sample(now)?;
                sample_ns = sample_every
                    .map(|every| now.saturating_add(every))
                    .filter(|&at| at > now);
                if let Some(at) = sample_ns {
                    run.queue.push(at, EventKind::Sample);
                }
            }
        }
        if run.events.is_multiple_of(4096)
            && let Some(report) = progress.as_deref_mut()
        {
            report(Progress {
                now_s: to_secs(now),
                arrived: run.metrics.arrived_count(),
                finished: run.done,
            });
        }
    }
    let end = match horizon {
        Some(h) if stopped_at_horizon => h,
        _ => run.last_time,
    };
    run.finish(end)
}

/// Where a replica is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Serving and taking new requests.
    Ready,
    /// Loading the model: billed, not serving yet.
    Starting,
    /// Taking no new requests; stops when the ones it has are done.
    Draining,
    /// No longer billed.
    Stopped,
}

/// The autoscaler and what it has done.
struct Scaling {
    autoscaler: Autoscaler,
    metric: ScaleMetric,
    /// Model load time of a new replica, per type.
    cold_start_ns: Vec<Nanos>,
    /// Each replica's busy time at the last evaluation (for utilisation).
    busy_marks: Vec<u64>,
    last_evaluation: Nanos,
    /// Requests turned away for want of a running replica since the last evaluation: the
    /// demand that wakes a type scaled to zero.
    unserved: u64,
    evaluations: u64,
    started: u64,
    drained: u64,
    initial: Vec<u32>,
    /// Replica counts after every change.
    series: Vec<Counts>,
}

/// Replicas per type in each state from `at` on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    at: Nanos,
    ready: Vec<u32>,
    starting: Vec<u32>,
    draining: Vec<u32>,
}

impl Counts {
    /// Replicas of type `t` billed.
    fn billed(&self, t: usize) -> u32 {
        self.ready[t] + self.starting[t] + self.draining[t]
    }
}

/// KV transfers of a disaggregated cluster.
struct Transfers {
    link: KvLink,
    kv_bytes_per_token: f64,
    /// Longest request some decode replica can hold.
    decode_max_tokens: u64,
    /// Transfers on the link with their decode replica, by slot; freed slots are reused.
    on_link: Vec<Option<(usize, KvTransfer)>>,
    free_slots: Vec<u32>,
    /// Scratch: transfers that just got blocks.
    reserved: Vec<KvTransfer>,
    landed: u64,
    bytes: f64,
    transfer_s: LogHistogram,
    wait_s: LogHistogram,
    completed_at_prefill: u64,
}

impl Transfers {
    fn on_link_count(&self) -> usize {
        self.on_link.len() - self.free_slots.len()
    }
}

/// The state of one simulation run, apart from the request stream.
struct Run<'a> {
    cluster: &'a Cluster,
    config: &'a SimConfig,
    sink: &'a mut dyn RecordSink,
    replicas: Vec<Replica>,
    lives: Vec<ReplicaLife>,
    states: Vec<State>,
    queue: EventQueue,
    /// Colocated: picks every replica. Disaggregated: picks decode replicas.
    router: Box<dyn Router>,
    /// Disaggregated: picks prefill replicas (fewest queued and cached tokens).
    prefill_router: Option<Box<dyn Router>>,
    predictor: Box<dyn Predictor>,
    metrics: MetricsAccumulator,
    /// Targets per SLO class, resolved once; classes beyond the list use the global ones.
    class_slo: Vec<SloTargets>,
    deadlines: DeadlineTable,
    /// Longest request one replica of each type can hold.
    type_max_tokens: Vec<u64>,
    scaling: Option<Scaling>,
    transfers: Option<Transfers>,
    statuses: Vec<ReplicaStatus>,
    eligible: Vec<usize>,
    finished: Vec<Finished>,
    prefilled: Vec<Seq>,
    events: u64,
    queue_events: u64,
    last_time: Nanos,
    done: u64,
}

impl<'a> Run<'a> {
    fn new(
        cluster: &'a Cluster,
        config: &'a SimConfig,
        capacity: Option<&CapacityTable>,
        sink: &'a mut dyn RecordSink,
    ) -> Result<Self, SimError> {
        let type_names: Vec<String> = cluster.types.iter().map(|t| t.name.clone()).collect();
        let disaggregated = cluster.is_disaggregated();
        let scaled = config.autoscale.policy != AutoscalePolicy::Static;
        // Each pool scales on its own: a prefill and a decode type are different types.
        let scaling_names = cluster.scaling_names();
        if scaled {
            config
                .autoscale
                .validate(&scaling_names)
                .map_err(SimError::Config)?;
        }
        if disaggregated {
            if config.engine.batching == BatchingMode::Static {
                return Err(SimError::Config(
                    "a disaggregated cluster needs continuous or chunked batching (static \
                     batches hold requests from prefill to their last token)"
                        .into(),
                ));
            }
            for role in [ReplicaRole::Prefill, ReplicaRole::Decode] {
                if !cluster
                    .replicas
                    .iter()
                    .any(|&t| cluster.types[t as usize].role == role)
                {
                    return Err(SimError::Config(format!(
                        "the disaggregated cluster has no {} replica",
                        role.name()
                    )));
                }
            }
        }
        let router = router::build_with(
            config.router,
            config.seed,
            capacity,
            config.assignment.as_ref(),
            &type_names,
        )
        .map_err(SimError::Config)?;
        let prefill_router = if disaggregated {
            Some(
                router::build(RouterKind::LeastTokens, config.seed, None, &type_names)
                    .map_err(SimError::Config)?,
            )
        } else {
            None
        };
        let deadlines = DeadlineTable::from_slo(&config.slo, &config.slo_classes);
        let edges = capacity
            .map(|c| c.edges.clone())
            .unwrap_or_else(BucketEdges::melange);
        let predictor = predict::build(config.predictor, config.seed, &edges);
        let class_slo: Vec<SloTargets> = (0..config.slo_classes.len())
            .map(|k| config.slo_for_class(k as u16))
            .collect();
        let metrics = MetricsAccumulator::new(config.slo, edges, cluster.types.len())
            .with_class_targets(class_slo.iter().any(SloTargets::any));
        let type_max_tokens = cluster
            .types
            .iter()
            .map(|t| replica::max_request_tokens(&t.instance, &config.engine))
            .collect();
        let transfers = disaggregated.then(|| Transfers {
            link: config.kv_link,
            kv_bytes_per_token: cluster.types[0].instance.model.kv_bytes_per_token(),
            decode_max_tokens: cluster
                .types
                .iter()
                .filter(|t| t.role == ReplicaRole::Decode)
                .map(|t| replica::max_request_tokens(&t.instance, &config.engine))
                .max()
                .unwrap_or(0),
            on_link: Vec::new(),
            free_slots: Vec::new(),
            reserved: Vec::new(),
            landed: 0,
            bytes: 0.0,
            transfer_s: LogHistogram::default(),
            wait_s: LogHistogram::default(),
            completed_at_prefill: 0,
        });
        let mut run = Self {
            cluster,
            config,
            sink,
            replicas: Vec::with_capacity(cluster.replicas.len()),
            lives: Vec::with_capacity(cluster.replicas.len()),
            states: Vec::with_capacity(cluster.replicas.len()),
            queue: EventQueue::default(),
            router,
            prefill_router,
            predictor,
            metrics,
            class_slo,
            deadlines,
            type_max_tokens,
            scaling: None,
            transfers,
            statuses: Vec::with_capacity(cluster.replicas.len()),
            eligible: Vec::with_capacity(cluster.replicas.len()),
            finished: Vec::new(),
            prefilled: Vec::new(),
            events: 0,
            queue_events: 0,
            last_time: 0,
            done: 0,
        };
        for &t in &cluster.replicas {
            run.add_replica(t as usize, ReplicaLife::default(), State::Ready);
        }
        if scaled {
            let mut initial = vec![0u32; cluster.types.len()];
            for &t in &cluster.replicas {
                initial[t as usize] += 1;
            }
            let limits = config.autoscale.resolved_limits(&scaling_names, &initial);
            let load_bytes_per_s = config.autoscale.load_gbs * 1e9;
            run.scaling = Some(Scaling {
                autoscaler: Autoscaler::new(&config.autoscale, &scaling_names, limits),
                metric: config.autoscale.metric,
                cold_start_ns: cluster
                    .types
                    .iter()
                    .map(|t| from_secs(t.instance.weight_bytes / load_bytes_per_s).max(1))
                    .collect(),
                busy_marks: vec![0; cluster.replicas.len()],
                last_evaluation: 0,
                unserved: 0,
                evaluations: 0,
                started: 0,
                drained: 0,
                initial,
                series: Vec::new(),
            });
            run.record_counts(0);
        }
        Ok(run)
    }

    /// Adds a replica of type `t`.
    fn add_replica(&mut self, t: usize, life: ReplicaLife, state: State) -> usize {
        let index = self.replicas.len();
        let ty = &self.cluster.types[t];
        let instance = Arc::clone(&ty.instance);
        let queue = self.config.queue.build_with(&QueueContext {
            params: self.config.queue_params.clone(),
            deadlines: self.deadlines.clone(),
            instance: Some(Arc::clone(&instance)),
        });
        let replica = Replica::new(index as u32, t as u32, instance, &self.config.engine, queue)
            .with_role(ty.role);
        self.replicas.push(replica);
        self.lives.push(life);
        self.states.push(state);
        index
    }

    fn refresh_statuses(&mut self) {
        self.statuses.clear();
        self.statuses
            .extend(self.replicas.iter().map(Replica::status));
    }

    /// Fills `eligible` with the replicas in `role` that take new requests and can hold
    /// `need` tokens; when none is ready, starting ones (the request waits for the model to
    /// load, as a load balancer holds requests for a scaled-up deployment).
    fn select(&mut self, role: ReplicaRole, need: u64) {
        self.eligible.clear();
        // In a colocated cluster every replica has the role asked for: skip the lookup.
        let check_role = self.transfers.is_some();
        for (i, status) in self.statuses.iter().enumerate() {
            if status.max_request_tokens >= need
                && self.states[i] == State::Ready
                && (!check_role || self.replicas[i].role() == role)
            {
                self.eligible.push(i);
            }
        }
        if self.eligible.is_empty() && self.scaling.is_some() {
            for (i, status) in self.statuses.iter().enumerate() {
                if status.max_request_tokens >= need
                    && self.states[i] == State::Starting
                    && self.replicas[i].role() == role
                {
                    self.eligible.push(i);
                }
            }
        }
    }

    /// Starts an iteration on an idle replica that has loaded its model.
    fn kick(&mut self, index: usize, now: Nanos) {
        let replica = &mut self.replicas[index];
        if !replica.is_busy()
            && self.lives[index].ready_ns <= now
            && let Some(end) = replica.start_iteration(now)
        {
            self.queue.push(
                end,
                EventKind::IterationEnd {
                    replica: index as u32,
                },
            );
        }
    }

    fn reject(&mut self, request: &Request, reason: &'static str) -> Result<(), SimError> {
        let record = rejected_record(request, reason);
        self.metrics.record(&record, None);
        self.sink.request(&record)?;
        self.done += 1;
        Ok(())
    }

    fn arrive(&mut self, now: Nanos, request: Request) -> Result<(), SimError> {
        self.metrics.arrived();
        self.refresh_statuses();
        let total = replica::footprint_tokens(&request);
        let (role, need, decode_fits) = match &self.transfers {
            // The prefill replica holds the prompt; some decode replica must hold it all.
            Some(t) => (
                ReplicaRole::Prefill,
                u64::from(request.input_tokens.max(1)),
                t.decode_max_tokens >= total,
            ),
            None => (ReplicaRole::Colocated, total, true),
        };
        if decode_fits {
            self.select(role, need);
        } else {
            self.eligible.clear();
        }
        if self.eligible.is_empty() {
            let some_type_fits = decode_fits
                && self
                    .cluster
                    .types
                    .iter()
                    .zip(&self.type_max_tokens)
                    .any(|(t, &max)| t.role == role && max >= need);
            let reason = if some_type_fits {
                if let Some(scaling) = self.scaling.as_mut() {
                    scaling.unserved += 1;
                }
                REJECT_NO_REPLICA
            } else {
                REJECT_TOO_LONG
            };
            return self.reject(&request, reason);
        }
        let predicted = self.predictor.predict(&request);
        let routed = RouteRequest::new(&request, predicted);
        let router = match self.prefill_router.as_mut() {
            Some(prefill) => prefill,
            None => &mut self.router,
        };
        let target = router.route(&routed, &self.statuses, &self.eligible);
        debug_assert!(self.eligible.contains(&target));
        self.replicas[target].enqueue(Seq::with_prediction(request, now, predicted));
        self.kick(target, now);
        Ok(())
    }

    /// Records the requests replica `index` has just completed (in `finished`).
    fn record_finished(&mut self, index: usize) -> Result<(), SimError> {
        let replica = &self.replicas[index];
        let at_prefill = replica.role() == ReplicaRole::Prefill;
        for f in self.finished.drain(..) {
            let seq = &f.seq;
            // The predictor learns a length only once the request has completed.
            self.predictor
                .observe(seq.request.input_tokens, seq.generated);
            let slo = self
                .class_slo
                .get(usize::from(seq.request.slo_class))
                .unwrap_or(&self.config.slo);
            let record = completed_record(&f, replica, self.cluster, slo);
            self.metrics.record(&record, Some(replica.type_index));
            self.sink.request(&record)?;
            self.done += 1;
            if at_prefill && let Some(t) = self.transfers.as_mut() {
                t.completed_at_prefill += 1;
            }
        }
        Ok(())
    }

    fn iteration_end(
        &mut self,
        index: usize,
        now: Nanos,
        fast_limit: Nanos,
    ) -> Result<(), SimError> {
        let role = self.replicas[index].role();
        // A draining replica's iterations go through the queue, so it stops in event order.
        let fast = self.config.fast_path && self.states[index] != State::Draining;
        let mut at = now;
        loop {
            self.replicas[index].finish_iteration(at, &mut self.finished);
            if !self.finished.is_empty() {
                self.record_finished(index)?;
            }
            match role {
                ReplicaRole::Colocated => {}
                ReplicaRole::Prefill => self.hand_off(index, at)?,
                // Completions freed blocks: transfers waiting here may fit now.
                ReplicaRole::Decode => self.reserve_transfers(index, at),
            }
            let Some(end) = self.replicas[index].start_iteration(at) else {
                break;
            };
            // With KV transfers, replicas interact through events of other replicas too:
            // nothing may be skipped past the next pending event of any kind.
            let limit = match self.transfers {
                Some(_) => fast_limit.min(self.queue.peek_time().unwrap_or(Nanos::MAX)),
                None => fast_limit,
            };
            if fast && self.replicas[index].iteration_is_silent() && end < limit {
                // Nobody can observe this replica before `end`: finish it here.
                at = end;
                self.last_time = self.last_time.max(at);
                self.events += 1;
                continue;
            }
            self.queue.push(
                end,
                EventKind::IterationEnd {
                    replica: index as u32,
                },
            );
            break;
        }
        if self.states[index] == State::Draining && self.replicas[index].is_empty() {
            self.stop(index, at);
        }
        Ok(())
    }

    /// Sends the requests a prefill replica just prefilled to decode replicas.
    fn hand_off(&mut self, index: usize, now: Nanos) -> Result<(), SimError> {
        let mut prefilled = std::mem::take(&mut self.prefilled);
        self.replicas[index].take_prefilled(&mut prefilled);
        if !prefilled.is_empty() {
            self.refresh_statuses();
        }
        for seq in prefilled.drain(..) {
            let need = replica::footprint_tokens(&seq.request);
            self.select(ReplicaRole::Decode, need);
            if self.eligible.is_empty() {
                // The autoscaler stopped or is stopping every decode replica that can hold it
                // (arrival only checked the cluster's types): one still draining serves it
                // before it stops; with none left it is turned away, never sent to a replica
                // too small to ever take it.
                self.eligible.extend((0..self.replicas.len()).filter(|&i| {
                    self.states[i] == State::Draining
                        && self.replicas[i].role() == ReplicaRole::Decode
                        && self.statuses[i].max_request_tokens >= need
                }));
            }
            if self.eligible.is_empty() {
                self.replicas[index].release_held(now, seq.kv_blocks_held());
                self.reject(&seq.request, REJECT_NO_REPLICA)?;
                continue;
            }
            let routed = RouteRequest::new(&seq.request, seq.predicted_output);
            let target = self.router.route(&routed, &self.statuses, &self.eligible);
            let source_blocks = seq.kv_blocks_held();
            self.replicas[target].push_transfer(KvTransfer {
                seq,
                source: index as u32,
                source_blocks,
                prefilled_ns: now,
            });
            self.reserve_transfers(target, now);
            self.statuses[target] = self.replicas[target].status();
        }
        self.prefilled = prefilled;
        Ok(())
    }

    /// Reserves blocks on decode replica `index` for the transfers waiting there and puts
    /// the ones that got them on the link.
    fn reserve_transfers(&mut self, index: usize, now: Nanos) {
        let Some(t) = self.transfers.as_mut() else {
            return;
        };
        self.replicas[index].reserve_transfers(now, &mut t.reserved);
        for transfer in t.reserved.drain(..) {
            let bytes = f64::from(transfer.seq.kv_tokens()) * t.kv_bytes_per_token;
            let duration = t.link.transfer_ns(bytes);
            t.wait_s.record(to_secs(now - transfer.prefilled_ns));
            t.transfer_s.record(to_secs(duration));
            t.bytes += bytes;
            let slot = match t.free_slots.pop() {
                Some(slot) => {
                    t.on_link[slot as usize] = Some((index, transfer));
                    slot
                }
                None => {
                    t.on_link.push(Some((index, transfer)));
                    (t.on_link.len() - 1) as u32
                }
            };
            self.queue.push(
                now.saturating_add(duration),
                EventKind::TransferDone { slot },
            );
        }
    }

    fn transfer_done(&mut self, slot: u32, now: Nanos) {
        let Some(t) = self.transfers.as_mut() else {
            return;
        };
        let Some((index, transfer)) = t.on_link.get_mut(slot as usize).and_then(Option::take)
        else {
            debug_assert!(false, "a transfer landed twice");
            return;
        };
        t.free_slots.push(slot);
        t.landed += 1;
        let source = transfer.source as usize;
        self.replicas[source].release_held(now, transfer.source_blocks);
        self.replicas[index].accept_transfer(transfer.seq);
        self.kick(index, now);
        // Freed blocks may let the prefill replica admit prompts it had to leave waiting.
        self.kick(source, now);
        // A draining prefill replica is billed until the last KV cache it held has left.
        if self.states[source] == State::Draining && self.replicas[source].is_empty() {
            self.stop(source, now);
        }
    }

    fn replica_ready(&mut self, index: usize, now: Nanos) {
        match self.states[index] {
            State::Starting => self.states[index] = State::Ready,
            // Cancelled while starting, with requests routed to it: it serves them, then stops.
            State::Draining => {}
            State::Ready | State::Stopped => return,
        }
        self.kick(index, now);
        self.record_counts(now);
    }

    fn stop(&mut self, index: usize, now: Nanos) {
        self.states[index] = State::Stopped;
        self.lives[index].stopped_ns = Some(now);
        self.record_counts(now);
    }

    fn drain(&mut self, index: usize, now: Nanos) {
        self.states[index] = State::Draining;
        self.lives[index].drain_ns = Some(now);
        if let Some(s) = self.scaling.as_mut() {
            s.drained += 1;
        }
        if self.replicas[index].is_empty() {
            self.stop(index, now);
        }
    }

    /// One replica's value of the scaling metric (0 while it loads the model, except for a
    /// queue the router had to leave there).
    fn observe(&self, index: usize, now: Nanos, scaling: &Scaling) -> f64 {
        let replica = &self.replicas[index];
        let ready = self.states[index] == State::Ready;
        match scaling.metric {
            ScaleMetric::Queue => f64::from(replica.status().waiting),
            ScaleMetric::Outstanding => f64::from(replica.status().outstanding()),
            ScaleMetric::Utilization if ready => {
                let interval = now.saturating_sub(scaling.last_evaluation);
                let busy = replica.busy_ns_at(now) - scaling.busy_marks[index];
                if interval > 0 {
                    busy as f64 / interval as f64
                } else {
                    0.0
                }
            }
            ScaleMetric::Kv if ready => {
                let (used, total) = replica.kv_blocks();
                used as f64 / total.max(1) as f64
            }
            ScaleMetric::Utilization | ScaleMetric::Kv => 0.0,
        }
    }

    fn autoscale(&mut self, now: Nanos) {
        let Some(scaling) = self.scaling.as_ref() else {
            return;
        };
        let mut observed = vec![TypeObservation::default(); self.cluster.types.len()];
        for index in 0..self.replicas.len() {
            if matches!(self.states[index], State::Ready | State::Starting) {
                let o = &mut observed[self.replicas[index].type_index as usize];
                o.current += 1;
                o.metric_sum += self.observe(index, now, scaling);
            }
        }
        let Some(scaling) = self.scaling.as_mut() else {
            return;
        };
        scaling.evaluations += 1;
        let unserved = std::mem::take(&mut scaling.unserved);
        let desired = scaling.autoscaler.decide(now, &observed, unserved);
        for (t, (&want, o)) in desired.iter().zip(&observed).enumerate() {
            for _ in o.current..want {
                self.start_replica(t, now);
            }
            if want < o.current {
                // Cancel starting replicas first (newest first), then drain the ready ones
                // with the fewest requests (newest first on ties).
                let mut candidates: Vec<(u8, usize, Reverse<usize>)> = (0..self.replicas.len())
                    .filter(|&i| self.replicas[i].type_index as usize == t)
                    .filter_map(|i| match self.states[i] {
                        State::Starting => Some((0, 0, Reverse(i))),
                        State::Ready => Some((1, self.replicas[i].in_flight(), Reverse(i))),
                        State::Draining | State::Stopped => None,
                    })
                    .collect();
                candidates.sort_unstable();
                for &(_, _, Reverse(index)) in candidates.iter().take((o.current - want) as usize) {
                    self.drain(index, now);
                }
            }
        }
        if let Some(scaling) = self.scaling.as_mut() {
            for (mark, replica) in scaling.busy_marks.iter_mut().zip(&self.replicas) {
                *mark = replica.busy_ns_at(now);
            }
            scaling.last_evaluation = now;
        }
        self.record_counts(now);
    }

    /// Asks for a new replica of type `t`: billed from now, serving after its cold start.
    fn start_replica(&mut self, t: usize, now: Nanos) {
        let cold_start = self.scaling.as_ref().map_or(0, |s| s.cold_start_ns[t]);
        let life = ReplicaLife {
            started_ns: now,
            ready_ns: now.saturating_add(cold_start),
            drain_ns: None,
            stopped_ns: None,
        };
        let index = self.add_replica(t, life, State::Starting);
        if let Some(scaling) = self.scaling.as_mut() {
            scaling.busy_marks.push(0);
            scaling.started += 1;
        }
        self.queue.push(
            life.ready_ns,
            EventKind::ReplicaReady {
                replica: index as u32,
            },
        );
    }

    /// Appends the replica counts per type to the series, if they changed.
    fn record_counts(&mut self, now: Nanos) {
        let Some(scaling) = self.scaling.as_mut() else {
            return;
        };
        let types = self.cluster.types.len();
        let mut counts = Counts {
            at: now,
            ready: vec![0; types],
            starting: vec![0; types],
            draining: vec![0; types],
        };
        for (replica, state) in self.replicas.iter().zip(&self.states) {
            let t = replica.type_index as usize;
            match state {
                State::Ready => counts.ready[t] += 1,
                State::Starting => counts.starting[t] += 1,
                State::Draining => counts.draining[t] += 1,
                State::Stopped => {}
            }
        }
        match scaling.series.last_mut() {
            Some(last)
                if (&last.ready, &last.starting, &last.draining)
                    == (&counts.ready, &counts.starting, &counts.draining) => {}
            Some(last) if last.at == now => *last = counts,
            _ => scaling.series.push(counts),
        }
    }

    /// Whether requests remain: one still to arrive, in a replica, or on the KV link.
    fn work_left(&self, arrival_pending: bool) -> bool {
        arrival_pending
            || self.replicas.iter().any(|r| r.in_flight() > 0)
            || self
                .transfers
                .as_ref()
                .is_some_and(|t| t.on_link_count() > 0)
    }

    fn sample(&mut self, now: Nanos) -> Result<(), SimError> {
        for (replica, state) in self.replicas.iter().zip(&self.states) {
            if *state == State::Stopped {
                continue;
            }
            let (waiting, running, swapped) = replica.queue_lengths();
            let (used, total) = replica.kv_blocks();
            self.sink.sample(&SampleRecord {
                time_s: to_secs(now),
                replica: replica.index,
                instance: self.cluster.types[replica.type_index as usize].name.clone(),
                waiting: waiting as u32,
                running: running as u32,
                swapped: swapped as u32,
                kv_blocks_used: used,
                kv_blocks_total: total,
            })?;
        }
        Ok(())
    }

    fn finish(mut self, end: Nanos) -> Result<Summary, SimError> {
        for replica in &mut self.replicas {
            replica.close_integrals(end);
        }
        let pending_transfers = self.transfers.as_ref().map(|t| {
            let waiting: usize = self.replicas.iter().map(Replica::transfers_waiting).sum();
            (waiting + t.on_link_count()) as u64
        });
        let mut leftovers: Vec<RequestRecord> = Vec::new();
        for replica in &mut self.replicas {
            for seq in replica.drain_in_flight() {
                leftovers.push(in_flight_record(&seq, replica, self.cluster));
            }
        }
        if let Some(t) = self.transfers.as_mut() {
            for (slot, on_link) in t.on_link.iter_mut().enumerate() {
                let Some((destination, transfer)) = on_link.take() else {
                    continue;
                };
                t.free_slots.push(slot as u32);
                leftovers.push(in_flight_record(
                    &transfer.seq,
                    &self.replicas[destination],
                    self.cluster,
                ));
            }
        }
        leftovers.sort_by_key(|r| r.id);
        for record in &leftovers {
            self.metrics.record(record, None);
            self.sink.request(record)?;
        }
        self.sink.finish()?;
        let config = self.config;
        let cluster = self.cluster;
        let energy = energy::report(
            cluster,
            &self.replicas,
            &self.lives,
            &config.power,
            end,
            self.metrics.completed_count(),
            self.metrics.completed_output_tokens(),
        );
        let router_name = match &self.prefill_router {
            Some(_) => format!("{} (decode; prefill: least-tokens)", self.router.name()),
            None => self.router.name().to_string(),
        };
        let mut summary = self.metrics.finish(
            end,
            cluster,
            &self.replicas,
            &self.lives,
            "",
            config.engine.batching.name(),
            self.events,
            self.queue_events,
        );
        summary.router = router_name;
        for ((report, replica), life) in summary
            .replicas
            .iter_mut()
            .zip(&self.replicas)
            .zip(&self.lives)
        {
            let (idle, prefill, decode) =
                energy::replica_energy_j(replica, &config.power, life.billed_ns(end));
            report.energy_j = idle + prefill + decode;
            report.policy_preemptions = replica.counters.policy_preemptions;
        }
        for (t, report) in summary.types.iter_mut().enumerate() {
            report.energy_j = summary
                .replicas
                .iter()
                .zip(&self.replicas)
                .filter(|(_, r)| r.type_index as usize == t)
                .map(|(rep, _)| rep.energy_j)
                .sum();
        }
        summary.queue = config.queue.name().to_string();
        summary.predictor = config.predictor.to_string();
        summary.energy = energy;
        if let Some(scaling) = &self.scaling {
            summary.autoscale = Some(scaling_report(
                scaling,
                &config.autoscale,
                cluster,
                &self.replicas,
                &self.lives,
                end,
            ));
        }
        if let (Some(t), Some(pending_at_end)) = (&self.transfers, pending_transfers) {
            summary.disaggregation = Some(DisaggReport {
                prefill_pool: cluster.describe_role(ReplicaRole::Prefill),
                decode_pool: cluster.describe_role(ReplicaRole::Decode),
                link: t.link,
                transfers: t.landed,
                transferred_gb: t.bytes / 1e9,
                transfer_s: t.transfer_s.summary(),
                decode_wait_s: t.wait_s.summary(),
                completed_at_prefill: t.completed_at_prefill,
                pending_at_end,
            });
        }
        Ok(summary)
    }
}

/// What the autoscaler did, from its series and the replicas' billed lives.
fn scaling_report(
    scaling: &Scaling,
    config: &AutoscaleConfig,
    cluster: &Cluster,
    replicas: &[Replica],
    lives: &[ReplicaLife],
    end: Nanos,
) -> ScalingReport {
    let names = cluster.scaling_names();
    let types = cluster
        .types
        .iter()
        .enumerate()
        .map(|(t, ty)| {
            let mut weighted = 0.0;
            for (k, point) in scaling.series.iter().enumerate() {
                let until = scaling
                    .series
                    .get(k + 1)
                    .map_or(end, |next| next.at)
                    .min(end);
                weighted += f64::from(point.billed(t)) * until.saturating_sub(point.at) as f64;
            }
            let billed_ns: u64 = replicas
                .iter()
                .zip(lives)
                .filter(|(r, _)| r.type_index as usize == t)
                .map(|(_, life)| life.billed_ns(end))
                .sum();
            let hours = to_secs(billed_ns) / 3600.0;
            let limits = scaling.autoscaler.limits()[t];
            TypeScaling {
                instance: names[t].clone(),
                min: limits.min,
                max: limits.max,
                initial: scaling.initial[t],
                peak: scaling
                    .series
                    .iter()
                    .map(|p| p.billed(t))
                    .max()
                    .unwrap_or(0),
                final_ready: scaling.series.last().map_or(0, |p| p.ready[t]),
                mean_billed: if end > 0 {
                    weighted / end as f64
                } else {
                    f64::from(scaling.initial[t])
                },
                cold_start_s: to_secs(scaling.cold_start_ns[t]),
                billed_replica_hours: hours,
                billed_usd: hours * ty.usd_per_hour,
            }
        })
        .collect();
    ScalingReport {
        policy: config.policy.name().to_string(),
        metric: config
            .policy
            .uses_metric()
            .then(|| config.metric.name().to_string()),
        evaluations: scaling.evaluations,
        replicas_started: scaling.started,
        replicas_drained: scaling.drained,
        types,
        series: scaling
            .series
            .iter()
            .map(|point| ReplicaCountPoint {
                time_s: to_secs(point.at),
                ready: point.ready.clone(),
                starting: point.starting.clone(),
                draining: point.draining.clone(),
            })
            .collect(),
    }
}

fn rejected_record(request: &Request, reason: &'static str) -> RequestRecord {
    RequestRecord {
        id: request.id,
        arrival_s: request.arrival_s,
        input_tokens: request.input_tokens,
        output_tokens: request.output_tokens,
        status: RequestStatus::Rejected,
        reject_reason: reason,
        replica: -1,
        instance: String::new(),
        first_scheduled_s: None,
        first_token_s: None,
        completion_s: None,
        generated_tokens: 0,
        preemptions: 0,
        ttft_s: None,
        tpot_s: None,
        norm_latency_s: None,
        max_itl_s: None,
        queue_delay_s: None,
        e2e_s: None,
        slo_met: None,
    }
}

fn completed_record(
    finished: &Finished,
    replica: &Replica,
    cluster: &Cluster,
    slo: &SloTargets,
) -> RequestRecord {
    let seq = &finished.seq;
    let arrival = seq.arrival_ns;
    let first_token = seq.first_token_ns.unwrap_or(finished.completion_ns);
    let ttft = to_secs(first_token - arrival);
    let e2e = to_secs(finished.completion_ns - arrival);
    let out = seq.generated.max(1);
    let tpot = (out > 1).then(|| (e2e - ttft) / f64::from(out - 1));
    let norm = e2e / f64::from(out);
    RequestRecord {
        id: seq.request.id,
        arrival_s: seq.request.arrival_s,
        input_tokens: seq.request.input_tokens,
        output_tokens: seq.request.output_tokens,
        status: RequestStatus::Completed,
        reject_reason: "",
        replica: i64::from(replica.index),
        instance: cluster.types[replica.type_index as usize].name.clone(),
        first_scheduled_s: seq.first_scheduled_ns.map(to_secs),
        first_token_s: Some(to_secs(first_token)),
        completion_s: Some(to_secs(finished.completion_ns)),
        generated_tokens: seq.generated,
        preemptions: seq.preemptions,
        ttft_s: Some(ttft),
        tpot_s: tpot,
        norm_latency_s: Some(norm),
        max_itl_s: Some(to_secs(seq.max_itl_ns)),
        queue_delay_s: seq.first_scheduled_ns.map(|s| to_secs(s - arrival)),
        e2e_s: Some(e2e),
        slo_met: slo.any().then(|| slo.met(ttft, tpot.unwrap_or(0.0), norm)),
    }
}

fn in_flight_record(seq: &Seq, replica: &Replica, cluster: &Cluster) -> RequestRecord {
    RequestRecord {
        status: RequestStatus::InFlight,
        reject_reason: "",
        replica: i64::from(replica.index),
        instance: cluster.types[replica.type_index as usize].name.clone(),
        first_scheduled_s: seq.first_scheduled_ns.map(to_secs),
        first_token_s: seq.first_token_ns.map(to_secs),
        generated_tokens: seq.generated,
        preemptions: seq.preemptions,
        ..rejected_record(&seq.request, "")
    }
}
