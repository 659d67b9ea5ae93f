//! Aggregating per-request outcomes into a run summary.

use std::collections::BTreeMap;

use serde::Serialize;
use workloads::BucketEdges;

use crate::autoscale::ScalingReport;
use crate::cluster::{Cluster, ReplicaRole};
use crate::config::SloTargets;
use crate::disagg::DisaggReport;
use crate::energy::EnergyReport;
use crate::hist::{LogHistogram, Quantiles};
use crate::replica::Replica;
use crate::sink::{RequestRecord, RequestStatus};
use crate::time::{Nanos, to_secs};

/// Request counts by fate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Requests that arrived.
    pub arrived: u64,
    /// Completed.
    pub completed: u64,
    /// Rejected (never admitted).
    pub rejected: u64,
    /// Still waiting or running at the end.
    pub in_flight: u64,
    /// Rejections by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
}

/// Latency distributions over completed requests, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latencies {
    /// Time to first token.
    pub ttft_s: Quantiles,
    /// Mean inter-token time after the first token, (e2e − ttft) / (out − 1); requests with one
    /// output token have none.
    pub tpot_s: Quantiles,
    /// Mélange's "TPOT": e2e / output tokens.
    pub norm_latency_s: Quantiles,
    /// Longest gap between two consecutive tokens of a request.
    pub max_itl_s: Quantiles,
    /// Arrival to first scheduled.
    pub queue_delay_s: Quantiles,
    /// Arrival to last token.
    pub e2e_s: Quantiles,
}

/// SLO verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SloReport {
    /// Targets checked.
    pub targets: SloTargets,
    /// Requests meeting every target.
    pub met: u64,
    /// met / arrived: rejected requests and those in flight at the horizon count as misses.
    pub attainment: f64,
    /// Requests per second that met the SLO.
    pub goodput_rps: f64,
    /// Mean e2e/out over completed requests ≤ the norm-latency target (Mélange's SLO), if set;
    /// never met when a request was rejected or none completed.
    pub mean_norm_latency_met: Option<bool>,
}

/// When a replica was asked for (and billed from), became ready, began draining and stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaLife {
    /// Billed from.
    pub started_ns: Nanos,
    /// Serving from (after its cold start).
    pub ready_ns: Nanos,
    /// Took no new requests from.
    pub drain_ns: Option<Nanos>,
    /// Billed until (none: until the end of the run).
    pub stopped_ns: Option<Nanos>,
}

impl ReplicaLife {
    /// Nanoseconds billed in a run that ended at `end`.
    pub fn billed_ns(&self, end: Nanos) -> Nanos {
        self.stopped_ns
            .unwrap_or(end)
            .min(end)
            .saturating_sub(self.started_ns)
    }
}

/// One replica's use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaReport {
    /// Index.
    pub replica: u32,
    /// Instance name.
    pub instance: String,
    /// Colocated, prefill or decode.
    pub role: ReplicaRole,
    /// Billed from, seconds (0 for the replicas the run starts with).
    pub started_s: f64,
    /// Serving from (after its cold start), seconds.
    pub ready_s: f64,
    /// Took no new requests from, seconds (none: never drained).
    pub drain_s: Option<f64>,
    /// Billed until, seconds (none: until the end of the run).
    pub stopped_s: Option<f64>,
    /// Seconds billed.
    pub billed_s: f64,
    /// Fraction of its billed life spent in iterations.
    pub busy_fraction: f64,
    /// Time-average fraction of KV blocks in use over its billed life.
    pub mean_kv_use: f64,
    /// Peak fraction of KV blocks in use.
    pub peak_kv_use: f64,
    /// Requests routed here.
    pub routed: u64,
    /// Requests completed here.
    pub completed: u64,
    /// Preemptions.
    pub preemptions: u64,
    /// Iterations run.
    pub iterations: u64,
    /// Output tokens produced.
    pub output_tokens: u64,
    /// Cost over its billed life, $.
    pub cost_usd: f64,
    /// Energy of its GPUs over its billed life, joules.
    pub energy_j: f64,
    /// Preemptions a queue policy asked for (SRPT, MLFQ), included in `preemptions`.
    pub policy_preemptions: u64,
}

/// Use and SLO per instance type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeReport {
    /// Instance name.
    pub instance: String,
    /// Colocated, prefill or decode.
    pub role: ReplicaRole,
    /// Replicas of this type (every one that ran, under autoscaling).
    pub replicas: u32,
    /// Busy fraction of its replicas, weighted by each one's billed time.
    pub busy_fraction: f64,
    /// Time-average KV use of its replicas, weighted by each one's billed time.
    pub mean_kv_use: f64,
    /// Requests completed.
    pub completed: u64,
    /// Completed requests that met the SLO.
    pub slo_met: u64,
    /// slo_met / completed.
    pub attainment: f64,
    /// Preemptions.
    pub preemptions: u64,
    /// $/hour of its replicas averaged over the span: all of them in a static run, the billed
    /// replica-hours per hour under autoscaling.
    pub usd_per_hour: f64,
    /// $ over its replicas' billed lives.
    pub billed_usd: f64,
    /// Energy of all its replicas over the span, joules.
    pub energy_j: f64,
}

/// SLO per request-size bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketReport {
    /// Input-bucket index.
    pub input_bucket: usize,
    /// Output-bucket index.
    pub output_bucket: usize,
    /// Requests completed or rejected in the bucket.
    pub requests: u64,
    /// Met the SLO.
    pub slo_met: u64,
    /// slo_met / requests.
    pub attainment: f64,
}

/// Cost of the cluster over the simulated span.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostReport {
    /// Price book used.
    pub price_book: String,
    /// $/hour of the cluster as given (before any autoscaling).
    pub usd_per_hour: f64,
    /// $ of the cluster as given over the span: what the static fleet costs.
    pub total_usd: f64,
    /// $ integrated over each replica's billed life (price per GPU-hour × GPUs per replica ×
    /// hours from its start, cold start included, until it stopped or the run ended); the same
    /// as `total_usd`, up to rounding, without autoscaling.
    pub billed_usd: f64,
    /// Billed $ per million output tokens.
    pub usd_per_million_output_tokens: f64,
}

/// Everything a run reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Cluster, as `TYPE:COUNT,...`.
    pub cluster: String,
    /// Router.
    pub router: String,
    /// Waiting-queue order.
    pub queue: String,
    /// Output-length predictor the policies saw.
    pub predictor: String,
    /// Batching mode.
    pub batching: String,
    /// Simulated span: last event time (or the horizon), seconds.
    pub span_s: f64,
    /// Request counts.
    pub requests: Counts,
    /// Latency distributions (seconds).
    pub latency: Latencies,
    /// Completed requests per second of span.
    pub throughput_rps: f64,
    /// Output tokens per second of span.
    pub output_tokens_per_s: f64,
    /// SLO verdict, when targets were given.
    pub slo: Option<SloReport>,
    /// Per replica.
    pub replicas: Vec<ReplicaReport>,
    /// Per instance type.
    pub types: Vec<TypeReport>,
    /// Per size bucket (with SLO targets).
    pub buckets: Vec<BucketReport>,
    /// Cost.
    pub cost: CostReport,
    /// Energy, beside cost.
    pub energy: EnergyReport,
    /// What the autoscaler did (none: a static cluster).
    pub autoscale: Option<ScalingReport>,
    /// KV transfers between the prefill and decode pools (none: a colocated cluster).
    pub disaggregation: Option<DisaggReport>,
    /// Events processed (including iterations finished on the fast path).
    pub events: u64,
    /// Events that went through the event queue (the rest took the decode fast path).
    pub queue_events: u64,
    /// Engine iterations across replicas.
    pub iterations: u64,
}

/// Running accumulation of request outcomes.
pub struct MetricsAccumulator {
    slo: SloTargets,
    /// Whether to report SLO attainment: some target is set, globally or per class.
    report_slo: bool,
    edges: BucketEdges,
    counts: Counts,
    ttft: LogHistogram,
    tpot: LogHistogram,
    norm: LogHistogram,
    max_itl: LogHistogram,
    queue: LogHistogram,
    e2e: LogHistogram,
    met: u64,
    output_tokens: u64,
    per_type: Vec<(u64, u64)>,
    per_bucket: BTreeMap<(usize, usize), (u64, u64)>,
}

impl MetricsAccumulator {
    /// An empty accumulator for `types` instance types.
    pub fn new(slo: SloTargets, edges: BucketEdges, types: usize) -> Self {
        Self {
            slo,
            report_slo: slo.any(),
            edges,
            counts: Counts::default(),
            ttft: LogHistogram::default(),
            tpot: LogHistogram::default(),
            norm: LogHistogram::default(),
            max_itl: LogHistogram::default(),
            queue: LogHistogram::default(),
            e2e: LogHistogram::default(),
            met: 0,
            output_tokens: 0,
            per_type: vec![(0, 0); types],
            per_bucket: BTreeMap::new(),
        }
    }

    /// Also reports SLO attainment when some SLO class has targets of its own.
    pub fn with_class_targets(mut self, any_class_target: bool) -> Self {
        self.report_slo |= any_class_target;
        self
    }

    /// Requests completed so far.
    pub fn completed_count(&self) -> u64 {
        self.counts.completed
    }

    /// Output tokens of the requests completed so far.
    pub fn completed_output_tokens(&self) -> u64 {
        self.output_tokens
    }

    /// Counts an arrival.
    pub fn arrived(&mut self) {
        self.counts.arrived += 1;
    }

    /// Requests arrived so far.
    pub fn arrived_count(&self) -> u64 {
        self.counts.arrived
    }

    /// The SLO targets.
    pub fn slo(&self) -> &SloTargets {
        &self.slo
    }

    /// Adds a finished record (completed, rejected or in flight).
    pub fn record(&mut self, record: &RequestRecord, type_index: Option<u32>) {
        let bucket = self
            .edges
            .bucket_of(record.input_tokens, record.output_tokens);
        match record.status {
            RequestStatus::Completed => {
                self.counts.completed += 1;
                self.output_tokens += u64::from(record.generated_tokens);
                let get = |v: Option<f64>| v.unwrap_or(0.0);
                self.ttft.record(get(record.ttft_s));
                if let Some(tpot) = record.tpot_s {
                    self.tpot.record(tpot);
                }
                self.norm.record(get(record.norm_latency_s));
                self.max_itl.record(get(record.max_itl_s));
                self.queue.record(get(record.queue_delay_s));
                self.e2e.record(get(record.e2e_s));
                let met = record.slo_met == Some(true);
                self.met += u64::from(met);
                if let Some(t) = type_index {
                    let entry = &mut self.per_type[t as usize];
                    entry.0 += 1;
                    entry.1 += u64::from(met);
                }
                if let Some(b) = bucket {
                    let entry = self.per_bucket.entry(b).or_default();
                    entry.0 += 1;
                    entry.1 += u64::from(met);
                }
            }
            RequestStatus::Rejected => {
                self.counts.rejected += 1;
                *self
                    .counts
                    .rejected_by_reason
                    .entry(record.reject_reason.to_string())
                    .or_default() += 1;
                if let Some(b) = bucket {
                    self.per_bucket.entry(b).or_default().0 += 1;
                }
            }
            RequestStatus::InFlight => self.counts.in_flight += 1,
        }
    }

    /// The summary at the end of a run of `span` over `replicas`, which lived `lives`.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        self,
        span: Nanos,
        cluster: &Cluster,
        replicas: &[Replica],
        lives: &[ReplicaLife],
        router: &str,
        batching: &str,
        events: u64,
        queue_events: u64,
    ) -> Summary {
        let span_s = to_secs(span);
        let per_s = |n: u64| if span_s > 0.0 { n as f64 / span_s } else { 0.0 };
        let hours = span_s / 3600.0;
        let replica_reports: Vec<ReplicaReport> = replicas
            .iter()
            .zip(lives)
            .map(|(r, life)| {
                let c = &r.counters;
                let (_, total) = r.kv_blocks();
                let total = total.max(1) as f64;
                let ty = &cluster.types[r.type_index as usize];
                let billed = life.billed_ns(span);
                ReplicaReport {
                    replica: r.index,
                    instance: ty.name.clone(),
                    role: ty.role,
                    started_s: to_secs(life.started_ns),
                    ready_s: to_secs(life.ready_ns),
                    drain_s: life.drain_ns.map(to_secs),
                    stopped_s: life.stopped_ns.map(to_secs),
                    billed_s: to_secs(billed),
                    busy_fraction: if billed > 0 {
                        c.busy_ns as f64 / billed as f64
                    } else {
                        0.0
                    },
                    mean_kv_use: if billed > 0 {
                        c.kv_block_ns as f64 / billed as f64 / total
                    } else {
                        0.0
                    },
                    peak_kv_use: c.peak_kv_blocks as f64 / total,
                    routed: c.routed,
                    completed: c.completed,
                    preemptions: c.preemptions,
                    iterations: c.iterations,
                    output_tokens: c.output_tokens,
                    cost_usd: ty.usd_per_hour * to_secs(billed) / 3600.0,
                    energy_j: 0.0,
                    policy_preemptions: 0,
                }
            })
            .collect();
        let types = cluster
            .types
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                let mine: Vec<&ReplicaReport> = replica_reports
                    .iter()
                    .zip(replicas)
                    .filter(|(_, r)| r.type_index as usize == i)
                    .map(|(rep, _)| rep)
                    .collect();
                // Weighted by billed time, so a replica that lived a minute counts a minute's
                // worth under autoscaling (in a static run every replica lives the whole span).
                // Folded from +0.0: an empty f64 sum is -0.0, printed "-0.0%".
                let billed_s = mine.iter().fold(0.0, |sum, r| sum + r.billed_s);
                let weighted = |value: fn(&ReplicaReport) -> f64| {
                    if billed_s > 0.0 {
                        mine.iter().fold(0.0, |sum, r| sum + value(r) * r.billed_s) / billed_s
                    } else {
                        0.0
                    }
                };
                // From +0.0: a sum over nothing is -0.0, printed as "-0.000" for a type that
                // never ran.
                let billed_usd = mine.iter().fold(0.0, |sum, r| sum + r.cost_usd);
                let (completed, met) = self.per_type[i];
                TypeReport {
                    instance: ty.name.clone(),
                    role: ty.role,
                    replicas: mine.len() as u32,
                    busy_fraction: weighted(|r| r.busy_fraction),
                    mean_kv_use: weighted(|r| r.mean_kv_use),
                    completed,
                    slo_met: met,
                    attainment: if completed > 0 {
                        met as f64 / completed as f64
                    } else {
                        0.0
                    },
                    preemptions: mine.iter().map(|r| r.preemptions).sum(),
                    usd_per_hour: if span_s > 0.0 {
                        billed_usd / (span_s / 3600.0)
                    } else {
                        ty.usd_per_hour * mine.len() as f64
                    },
                    billed_usd,
                    energy_j: 0.0,
                }
            })
            .collect();
        let slo = self.report_slo.then(|| {
            // Rejected requests and those still in flight at a horizon have not met their
            // targets: leaving them out of the denominator would credit a fleet for what it
            // turned away or had not finished.
            let arrived = self.counts.arrived;
            SloReport {
                targets: self.slo,
                met: self.met,
                attainment: if arrived > 0 {
                    self.met as f64 / arrived as f64
                } else {
                    0.0
                },
                goodput_rps: per_s(self.met),
                // A rejected request is never served, so no mean over requests can meet a
                // target once one is; with nothing completed there is no mean to meet it.
                mean_norm_latency_met: self.slo.norm_latency_s.map(|t| {
                    self.counts.completed > 0 && self.counts.rejected == 0 && self.norm.mean() <= t
                }),
            }
        });
        let buckets = if self.report_slo {
            self.per_bucket
                .iter()
                .map(|(&(i, j), &(requests, met))| BucketReport {
                    input_bucket: i,
                    output_bucket: j,
                    requests,
                    slo_met: met,
                    attainment: if requests > 0 {
                        met as f64 / requests as f64
                    } else {
                        0.0
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        let usd_per_hour = cluster.usd_per_hour();
        let total_usd = usd_per_hour * hours;
        let billed_usd = replica_reports.iter().fold(0.0, |sum, r| sum + r.cost_usd);
        Summary {
            cluster: cluster.describe(),
            router: router.to_string(),
            queue: String::new(),
            predictor: String::new(),
            batching: batching.to_string(),
            span_s,
            requests: self.counts.clone(),
            latency: Latencies {
                ttft_s: self.ttft.summary(),
                tpot_s: self.tpot.summary(),
                norm_latency_s: self.norm.summary(),
                max_itl_s: self.max_itl.summary(),
                queue_delay_s: self.queue.summary(),
                e2e_s: self.e2e.summary(),
            },
            throughput_rps: per_s(self.counts.completed),
            output_tokens_per_s: per_s(self.output_tokens),
            slo,
            replicas: replica_reports,
            types,
            buckets,
            cost: CostReport {
                price_book: cluster.price_book.clone(),
                usd_per_hour,
                total_usd,
                billed_usd,
                usd_per_million_output_tokens: if self.output_tokens > 0 {
                    billed_usd / self.output_tokens as f64 * 1e6
                } else {
                    0.0
                },
            },
            energy: EnergyReport::default(),
            autoscale: None,
            disaggregation: None,
            events,
            queue_events,
            iterations: replicas.iter().map(|r| r.counters.iterations).sum(),
        }
    }
}
