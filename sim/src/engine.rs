//! The discrete-event loop: arrivals are routed to replicas, replicas run iterations, and
//! every outcome is recorded.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use workloads::{BucketEdges, Request};

use crate::cluster::Cluster;
use crate::config::{EngineConfig, SloTargets};
use crate::energy::{self, PowerConfig};
use crate::events::{EventKind, EventQueue};
use crate::metrics::{MetricsAccumulator, Summary};
use crate::predict::{self, PredictorKind};
use crate::queue::{DeadlineTable, QueueContext, QueueKind, QueueParams};
use crate::replica::{Finished, Replica, ReplicaStatus, Seq};
use crate::router::{self, AssignmentTable, CapacityTable, RouteRequest, RouterKind};
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

    /// Checks the policy settings (predictor, queue, SLO classes, power, assignment).
    pub fn validate_policies(&self) -> Result<(), String> {
        self.predictor.validate()?;
        self.queue_params.validate()?;
        self.power.validate()?;
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
                "the {} queue orders by TTFT deadlines: set a TTFT target (slo.ttft_s or \
                 slo_classes[k].ttft_s; --slo-ttft on the command line)",
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

/// Runs `requests` (sorted by arrival) through `cluster`.
pub fn simulate(
    cluster: &Cluster,
    config: &SimConfig,
    capacity: Option<&CapacityTable>,
    requests: impl IntoIterator<Item = Request>,
    sink: &mut dyn RecordSink,
    mut progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<Summary, SimError> {
    if cluster.replicas.is_empty() {
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
    let type_names: Vec<String> = cluster.types.iter().map(|t| t.name.clone()).collect();
    let mut router = router::build_with(
        config.router,
        config.seed,
        capacity,
        config.assignment.as_ref(),
        &type_names,
    )
    .map_err(SimError::Config)?;
    let deadlines = DeadlineTable::from_slo(&config.slo, &config.slo_classes);
    let mut replicas: Vec<Replica> = cluster
        .replicas
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let instance = Arc::clone(&cluster.types[t as usize].instance);
            let queue = config.queue.build_with(&QueueContext {
                params: config.queue_params.clone(),
                deadlines: deadlines.clone(),
                instance: Some(Arc::clone(&instance)),
            });
            Replica::new(i as u32, t, instance, &config.engine, queue)
        })
        .collect();
    let edges = capacity
        .map(|c| c.edges.clone())
        .unwrap_or_else(BucketEdges::melange);
    let mut predictor = predict::build(config.predictor, config.seed, &edges);
    // Targets per SLO class, resolved once; classes beyond the list use the global ones.
    let class_slo: Vec<SloTargets> = (0..config.slo_classes.len())
        .map(|k| config.slo_for_class(k as u16))
        .collect();
    let slo_of = |class: u16| class_slo.get(usize::from(class)).unwrap_or(&config.slo);
    let mut metrics = MetricsAccumulator::new(config.slo, edges, cluster.types.len())
        .with_class_targets(class_slo.iter().any(SloTargets::any));
    let horizon = config.horizon_s.map(from_secs);
    let sample_every = config
        .sample_interval_s
        .filter(|s| *s > 0.0)
        .map(from_secs)
        .map(|n| n.max(1));

    let mut queue = EventQueue::default();
    let mut stream = requests.into_iter();
    let mut pending: Option<Request> = None;
    let mut previous_arrival = 0.0f64;
    let mut next_arrival = |pending: &mut Option<Request>,
                            queue: &mut EventQueue|
     -> Result<Option<Nanos>, SimError> {
        let Some(request) = stream.next() else {
            return Ok(None);
        };
        if request.arrival_s < previous_arrival || !request.arrival_s.is_finite() {
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
    let mut arrival_ns = next_arrival(&mut pending, &mut queue)?;
    let mut sample_ns = sample_every;
    if let Some(at) = sample_ns {
        queue.push(at, EventKind::Sample);
    }

    let mut statuses: Vec<ReplicaStatus> = Vec::with_capacity(replicas.len());
    let mut eligible: Vec<usize> = Vec::with_capacity(replicas.len());
    let mut finished: Vec<Finished> = Vec::new();
    let mut events: u64 = 0;
    let mut queue_events: u64 = 0;
    let mut last_time: Nanos = 0;
    let mut done: u64 = 0;
    let mut stopped_at_horizon = false;

    while let Some(event) = queue.pop() {
        let now = event.time;
        if horizon.is_some_and(|h| now > h) {
            stopped_at_horizon = true;
            break;
        }
        last_time = now;
        events += 1;
        queue_events += 1;
        match event.kind {
            EventKind::Arrival => {
                let request = pending.take().expect("an arrival event has a request");
                metrics.arrived();
                statuses.clear();
                statuses.extend(replicas.iter().map(Replica::status));
                eligible.clear();
                let need = request.total_tokens();
                eligible.extend(
                    statuses
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.max_request_tokens >= need)
                        .map(|(i, _)| i),
                );
                if eligible.is_empty() {
                    let record = rejected_record(&request, REJECT_TOO_LONG);
                    metrics.record(&record, None);
                    sink.request(&record)?;
                    done += 1;
                } else {
                    let predicted = predictor.predict(&request);
                    let routed = RouteRequest::new(&request, predicted);
                    let target = router.route(&routed, &statuses, &eligible);
                    debug_assert!(eligible.contains(&target));
                    let replica = &mut replicas[target];
                    replica.enqueue(Seq::with_prediction(request, now, predicted));
                    if !replica.is_busy()
                        && let Some(end) = replica.start_iteration(now)
                    {
                        queue.push(
                            end,
                            EventKind::IterationEnd {
                                replica: target as u32,
                            },
                        );
                    }
                }
                arrival_ns = next_arrival(&mut pending, &mut queue)?;
            }
            EventKind::IterationEnd { replica: index } => {
                let fast_limit = [arrival_ns, sample_ns, horizon]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(Nanos::MAX);
                let replica = &mut replicas[index as usize];
                let mut at = now;
                loop {
                    replica.finish_iteration(at, &mut finished);
                    for f in finished.drain(..) {
                        // The predictor learns a length only once the request has completed.
                        predictor.observe(f.seq.request.input_tokens, f.seq.generated);
                        let slo = slo_of(f.seq.request.slo_class);
                        let record = completed_record(&f, replica, cluster, slo);
                        metrics.record(&record, Some(replica.type_index));
                        sink.request(&record)?;
                        done += 1;
                    }
                    let Some(end) = replica.start_iteration(at) else {
                        break;
                    };
                    if config.fast_path && replica.iteration_is_silent() && end < fast_limit {
                        // Nobody can observe this replica before `end`: finish it here.
                        at = end;
                        last_time = last_time.max(at);
                        events += 1;
                        continue;
                    }
                    queue.push(end, EventKind::IterationEnd { replica: index });
                    break;
                }
            }
            EventKind::Sample => {
                for replica in &replicas {
                    let (waiting, running, swapped) = replica.queue_lengths();
                    let (used, total) = replica.kv_blocks();
                    sink.sample(&SampleRecord {
                        time_s: to_secs(now),
                        replica: replica.index,
                        instance: cluster.types[replica.type_index as usize].name.clone(),
                        waiting: waiting as u32,
                        running: running as u32,
                        swapped: swapped as u32,
                        kv_blocks_used: used,
                        kv_blocks_total: total,
                    })?;
                }
                let work_left = pending.is_some() || replicas.iter().any(|r| r.in_flight() > 0);
                sample_ns = match (work_left, sample_every) {
                    (true, Some(every)) => {
                        queue.push(now + every, EventKind::Sample);
                        Some(now + every)
                    }
                    _ => None,
                };
            }
        }
        if events.is_multiple_of(4096)
            && let Some(report) = progress.as_deref_mut()
        {
            report(Progress {
                now_s: to_secs(now),
                arrived: metrics.arrived_count(),
                finished: done,
            });
        }
    }
    let end = match horizon {
        Some(h) if stopped_at_horizon => h,
        _ => last_time,
    };
    for replica in &mut replicas {
        replica.close_integrals(end);
    }
    let mut leftovers: Vec<RequestRecord> = Vec::new();
    for replica in &mut replicas {
        for seq in replica.drain_in_flight() {
            leftovers.push(in_flight_record(&seq, replica, cluster));
        }
    }
    leftovers.sort_by_key(|r| r.id);
    for record in &leftovers {
        metrics.record(record, None);
        sink.request(record)?;
    }
    sink.finish()?;
    let batching = config.engine.batching.name();
    let energy = energy::report(
        cluster,
        &replicas,
        &config.power,
        end,
        metrics.completed_count(),
        metrics.completed_output_tokens(),
    );
    let mut summary = metrics.finish(
        end,
        cluster,
        &replicas,
        router.name(),
        batching,
        events,
        queue_events,
    );
    for (report, replica) in summary.replicas.iter_mut().zip(&replicas) {
        let (idle, prefill, decode) = energy::replica_energy_j(replica, &config.power, end);
        report.energy_j = idle + prefill + decode;
        report.policy_preemptions = replica.counters.policy_preemptions;
    }
    for (t, report) in summary.types.iter_mut().enumerate() {
        report.energy_j = summary
            .replicas
            .iter()
            .zip(&replicas)
            .filter(|(_, r)| r.type_index as usize == t)
            .map(|(rep, _)| rep.energy_j)
            .sum();
    }
    summary.queue = config.queue.name().to_string();
    summary.predictor = config.predictor.to_string();
    summary.energy = energy;
    Ok(summary)
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
        slo_met: Some(slo.met(ttft, tpot.unwrap_or(0.0), norm)),
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
