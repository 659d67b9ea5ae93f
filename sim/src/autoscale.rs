//! Autoscaling: policies that change how many replicas of each GPU type run while the
//! simulation goes on, deciding at periodic evaluation events from what a real autoscaler
//! could observe (queue lengths, busy time, KV-cache use), never from the future.
//!
//! - **static**: the cluster as given.
//! - **reactive**: one type's mean metric above a threshold adds replicas, below another removes
//!   them; after a change the type waits out a cooldown.
//! - **hpa**: the Kubernetes Horizontal Pod Autoscaler rule, desired = ⌈current × metric /
//!   target⌉, no change while metric / target is within a tolerance band (10% by default) of 1,
//!   and scale-down stabilised: the highest recommendation of the last `cooldown_s` wins.
//! - **schedule**: per-window counts given by the caller (a plan the solver made from a rate
//!   forecast, say), applied at each window's start.
//!
//! New replicas pay a cold start (model weights over a load bandwidth) and are billed from the
//! moment they are asked for; removed replicas stop taking requests and are billed until their
//! last request finishes. Starting replicas count towards the current replicas with a metric
//! of zero load (busy time and KV use zero; their queue, if the router had to queue there, as
//! it is), as the Kubernetes HPA treats pods that are not ready yet when scaling up.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::{Nanos, from_secs};

/// Replicas per type when no limit is given: a guard against runaway scaling.
pub const DEFAULT_MAX_REPLICAS: u32 = 64;

/// Which autoscaling policy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AutoscalePolicy {
    /// No scaling: the cluster as given.
    #[default]
    Static,
    /// Threshold rules on a metric, with a cooldown.
    Reactive,
    /// The Kubernetes Horizontal Pod Autoscaler rule.
    Hpa,
    /// Per-window counts given by the caller.
    Schedule,
}

impl AutoscalePolicy {
    /// Every policy, for help texts.
    pub const ALL: [AutoscalePolicy; 4] = [
        AutoscalePolicy::Static,
        AutoscalePolicy::Reactive,
        AutoscalePolicy::Hpa,
        AutoscalePolicy::Schedule,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            AutoscalePolicy::Static => "static",
            AutoscalePolicy::Reactive => "reactive",
            AutoscalePolicy::Hpa => "hpa",
            AutoscalePolicy::Schedule => "schedule",
        }
    }

    /// Parses a name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text))
    }

    /// Whether the policy decides from a measured metric (reactive, hpa).
    pub fn uses_metric(self) -> bool {
        matches!(self, AutoscalePolicy::Reactive | AutoscalePolicy::Hpa)
    }
}

impl fmt::Display for AutoscalePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the reactive and HPA policies measure, per replica, averaged over a type's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScaleMetric {
    /// Requests waiting for admission, at the evaluation instant.
    Queue,
    /// Requests waiting or running (the concurrency Knative scales on), at the instant. It
    /// grows in proportion to the arrival rate (Little's law), so it tracks load both ways.
    #[default]
    Outstanding,
    /// Fraction of the last evaluation interval spent in iterations (GPU utilisation). A
    /// replica counts as busy whenever an iteration runs, whatever its batch, so under
    /// continuous batching the sum over replicas stays near rate × service time however many
    /// replicas share the load: like GPU utilisation, it overstates the replicas needed.
    Utilization,
    /// Fraction of KV-cache blocks in use, at the instant.
    Kv,
}

impl ScaleMetric {
    /// Every metric, for help texts.
    pub const ALL: [ScaleMetric; 4] = [
        ScaleMetric::Queue,
        ScaleMetric::Outstanding,
        ScaleMetric::Utilization,
        ScaleMetric::Kv,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ScaleMetric::Queue => "queue",
            ScaleMetric::Outstanding => "outstanding",
            ScaleMetric::Utilization => "utilization",
            ScaleMetric::Kv => "kv",
        }
    }

    /// Parses a name (`utilisation` too).
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("utilisation") {
            return Some(ScaleMetric::Utilization);
        }
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(text))
    }

    /// Default (scale-up threshold, scale-down threshold, HPA target). Starting points, not
    /// tuned values: a request or two queued per replica means it is falling behind; 32 in
    /// flight is a moderately full vLLM batch of chat requests on a 24-80 GB GPU.
    pub fn default_thresholds(self) -> (f64, f64, f64) {
        match self {
            ScaleMetric::Queue => (2.0, 0.1, 1.0),
            ScaleMetric::Outstanding => (48.0, 16.0, 32.0),
            ScaleMetric::Utilization => (0.9, 0.5, 0.7),
            ScaleMetric::Kv => (0.8, 0.3, 0.6),
        }
    }
}

impl fmt::Display for ScaleMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Fewest and most replicas of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleLimits {
    /// Fewest replicas.
    pub min: u32,
    /// Most replicas.
    pub max: u32,
}

/// One window of a scaling schedule: from `start_s` on, run `counts` replicas per type
/// (types it does not name: none, or their minimum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleWindow {
    /// Start of the window, simulated seconds.
    pub start_s: f64,
    /// Replicas per type name.
    pub counts: BTreeMap<String, u32>,
}

/// Autoscaling settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoscaleConfig {
    /// Policy.
    pub policy: AutoscalePolicy,
    /// What reactive and HPA measure.
    pub metric: ScaleMetric,
    /// Seconds between evaluations (reactive, hpa).
    pub interval_s: f64,
    /// Reactive: mean metric above which a type gains `step` replicas (default per metric).
    pub scale_up_threshold: Option<f64>,
    /// Reactive: mean metric below which a type loses `step` replicas (default per metric).
    pub scale_down_threshold: Option<f64>,
    /// Reactive: replicas added or removed per decision.
    pub step: u32,
    /// Reactive: seconds after a type's change before it may change again. HPA: the
    /// scale-down stabilisation window (the highest recommendation within it wins).
    pub cooldown_s: f64,
    /// HPA: target value of the metric per replica (default per metric).
    pub hpa_target: Option<f64>,
    /// HPA: no change while |metric / target − 1| is at most this (Kubernetes: 0.1).
    pub hpa_tolerance: f64,
    /// Schedule: the windows, in increasing start order.
    pub schedule: Vec<ScheduleWindow>,
    /// Schedule: apply each window this many seconds before it starts, so its new replicas
    /// are warm when it begins.
    pub schedule_lead_s: f64,
    /// Limits per type name; unlisted types: min 1 (reactive, hpa; 0 if the type starts
    /// with no replicas) or 0 (schedule), max [`DEFAULT_MAX_REPLICAS`].
    pub limits: BTreeMap<String, ScaleLimits>,
    /// Bandwidth at which a new replica loads the model weights, GB/s: its cold start is
    /// weight bytes / this. The default 2 GB/s is our assumption for a local NVMe read;
    /// loading from remote object storage is slower.
    pub load_gbs: f64,
}

impl Default for AutoscaleConfig {
    fn default() -> Self {
        Self {
            policy: AutoscalePolicy::Static,
            metric: ScaleMetric::default(),
            interval_s: 15.0,
            scale_up_threshold: None,
            scale_down_threshold: None,
            step: 1,
            cooldown_s: 60.0,
            hpa_target: None,
            hpa_tolerance: 0.1,
            schedule: Vec::new(),
            schedule_lead_s: 0.0,
            limits: BTreeMap::new(),
            load_gbs: 2.0,
        }
    }
}

impl AutoscaleConfig {
    /// The policies that read the setting `key` (a field name, as in a config file); `None` for
    /// a key that is not a setting. A setting no running policy reads is a mistake worth an
    /// error, not a silent no-op.
    pub fn readers_of(key: &str) -> Option<&'static [AutoscalePolicy]> {
        use AutoscalePolicy::{Hpa, Reactive, Schedule, Static};
        Some(match key {
            "policy" => &[Static, Reactive, Hpa, Schedule],
            "metric" | "interval_s" | "cooldown_s" => &[Reactive, Hpa],
            "scale_up_threshold" | "scale_down_threshold" | "step" => &[Reactive],
            "hpa_target" | "hpa_tolerance" => &[Hpa],
            "schedule" | "schedule_lead_s" => &[Schedule],
            "limits" | "load_gbs" => &[Reactive, Hpa, Schedule],
            _ => return None,
        })
    }

    /// Scale-up threshold, scale-down threshold and HPA target, defaults filled in.
    pub fn thresholds(&self) -> (f64, f64, f64) {
        let (up, down, target) = self.metric.default_thresholds();
        (
            self.scale_up_threshold.unwrap_or(up),
            self.scale_down_threshold.unwrap_or(down),
            self.hpa_target.unwrap_or(target),
        )
    }

    /// The limits of each type (`initial`: its replicas at the start), defaults filled in.
    pub fn resolved_limits(&self, type_names: &[String], initial: &[u32]) -> Vec<ScaleLimits> {
        type_names
            .iter()
            .zip(initial)
            .map(|(name, &count)| {
                self.limits.get(name).copied().unwrap_or(ScaleLimits {
                    min: u32::from(self.policy.uses_metric() && count > 0),
                    max: DEFAULT_MAX_REPLICAS,
                })
            })
            .collect()
    }

    /// Checks the settings' numbers (those the policy reads), naming each setting by `key`
    /// applied to its config key, so a caller can name its own flags instead.
    pub fn check_numbers(&self, key: &dyn Fn(&str) -> String) -> Result<(), String> {
        // The ceiling (about three years, in seconds) keeps every time the settings lead to
        // within the simulator's clock.
        let in_range = |name: &str, value: f64, positive: bool| {
            if value.is_finite() && (value > 0.0 || (!positive && value == 0.0)) && value <= 1e8 {
                Ok(())
            } else {
                let bound = if positive { "> 0" } else { ">= 0" };
                Err(format!(
                    "{} must be a finite number {bound} and at most 1e8, found {value}",
                    key(name)
                ))
            }
        };
        in_range("load_gbs", self.load_gbs, true)?;
        match self.policy {
            AutoscalePolicy::Static => {}
            AutoscalePolicy::Reactive | AutoscalePolicy::Hpa => {
                in_range("interval_s", self.interval_s, true)?;
                in_range("cooldown_s", self.cooldown_s, false)?;
                let (up, down, target) = self.thresholds();
                for (name, value) in [("scale_up_threshold", up), ("scale_down_threshold", down)] {
                    in_range(name, value, false)?;
                }
                if self.policy == AutoscalePolicy::Reactive {
                    if down >= up {
                        return Err(format!(
                            "{} ({down}) must be below {} ({up}); defaults for the {} metric \
                             fill in whichever is not given",
                            key("scale_down_threshold"),
                            key("scale_up_threshold"),
                            self.metric.name()
                        ));
                    }
                    if self.step == 0 {
                        return Err(format!("{} must be at least 1", key("step")));
                    }
                } else {
                    in_range("hpa_target", target, true)?;
                    if !(0.0..1.0).contains(&self.hpa_tolerance) {
                        return Err(format!(
                            "{} must be in [0, 1), found {}",
                            key("hpa_tolerance"),
                            self.hpa_tolerance
                        ));
                    }
                }
            }
            AutoscalePolicy::Schedule => in_range("schedule_lead_s", self.schedule_lead_s, false)?,
        }
        Ok(())
    }

    /// Checks the settings against the cluster's type names.
    pub fn validate(&self, type_names: &[String]) -> Result<(), String> {
        let known = || type_names.join(", ");
        self.check_numbers(&|name| format!("autoscale.{name}"))?;
        for (name, limits) in &self.limits {
            if !type_names.contains(name) {
                return Err(format!(
                    "autoscale limits name '{name}', which the cluster lacks (it has: {}); add \
                     it to the cluster with 0 replicas to let the autoscaler start some",
                    known()
                ));
            }
            if limits.min > limits.max {
                return Err(format!(
                    "autoscale limits for {name}: min {} is above max {}",
                    limits.min, limits.max
                ));
            }
        }
        match self.policy {
            AutoscalePolicy::Static | AutoscalePolicy::Reactive | AutoscalePolicy::Hpa => {}
            AutoscalePolicy::Schedule => {
                if self.schedule.is_empty() {
                    return Err("the schedule autoscaler needs at least one window".into());
                }
                let mut previous = None;
                for (k, window) in self.schedule.iter().enumerate() {
                    if !(window.start_s.is_finite() && window.start_s >= 0.0) {
                        return Err(format!(
                            "schedule window {k}: start must be a finite number of seconds \
                             >= 0, found {}",
                            window.start_s
                        ));
                    }
                    if previous.is_some_and(|p| window.start_s <= p) {
                        return Err(format!(
                            "schedule window {k} starts at {} s, not after the window before \
                             it: windows must be in increasing start order",
                            window.start_s
                        ));
                    }
                    previous = Some(window.start_s);
                    for (name, &count) in &window.counts {
                        if !type_names.contains(name) {
                            return Err(format!(
                                "schedule window {k} names '{name}', which the cluster lacks \
                                 (it has: {}); add it to the cluster with 0 replicas",
                                known()
                            ));
                        }
                        // The limits clamp every count the autoscaler asks for; a schedule
                        // asking outside them would silently run another fleet than it says.
                        let (min, max, whose) = match self.limits.get(name) {
                            Some(limits) => (limits.min, limits.max, "its limits"),
                            None => (0, DEFAULT_MAX_REPLICAS, "the default limits"),
                        };
                        if !(min..=max).contains(&count) {
                            return Err(format!(
                                "schedule window {k} asks for {count} {name} replicas, outside \
                                 {whose} ({min} to {max}); change the count or the type's \
                                 limits (--scale-limits, or autoscale.limits in a config)"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// When each schedule window is applied (its start less the lead, not before 0).
    pub fn schedule_times(&self) -> Vec<Nanos> {
        self.schedule
            .iter()
            .map(|w| from_secs((w.start_s - self.schedule_lead_s).max(0.0)))
            .collect()
    }
}

/// What the autoscaler observes of one type at an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TypeObservation {
    /// Replicas ready or starting (draining ones no longer count).
    pub current: u32,
    /// The metric summed over those replicas (starting ones count as idle).
    pub metric_sum: f64,
}

/// The decision state of an autoscaler: cooldowns, HPA recommendation history, schedule.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    config: AutoscaleConfig,
    limits: Vec<ScaleLimits>,
    type_names: Vec<String>,
    /// Reactive: when each type last changed.
    last_change: Vec<Option<Nanos>>,
    /// HPA: recent (time, recommendation) per type, for scale-down stabilisation.
    history: Vec<VecDeque<(Nanos, u32)>>,
    schedule_times: Vec<Nanos>,
}

impl Autoscaler {
    /// An autoscaler for types `type_names` whose resolved limits are `limits`.
    pub fn new(config: &AutoscaleConfig, type_names: &[String], limits: Vec<ScaleLimits>) -> Self {
        let types = type_names.len();
        Self {
            schedule_times: config.schedule_times(),
            config: config.clone(),
            limits,
            type_names: type_names.to_vec(),
            last_change: vec![None; types],
            history: vec![VecDeque::new(); types],
        }
    }

    /// The limits per type.
    pub fn limits(&self) -> &[ScaleLimits] {
        &self.limits
    }

    /// When to evaluate next after an evaluation at `now` (none: never again).
    pub fn next_evaluation(&self, now: Nanos) -> Option<Nanos> {
        match self.config.policy {
            AutoscalePolicy::Static => None,
            AutoscalePolicy::Reactive | AutoscalePolicy::Hpa => {
                Some(now.saturating_add(from_secs(self.config.interval_s).max(1)))
            }
            AutoscalePolicy::Schedule => self.schedule_times.iter().copied().find(|&t| t > now),
        }
    }

    /// The first evaluation time.
    pub fn first_evaluation(&self) -> Option<Nanos> {
        match self.config.policy {
            AutoscalePolicy::Schedule => self.schedule_times.first().copied(),
            _ => self.next_evaluation(0),
        }
    }

    /// Desired replicas per type at `now`, within the limits; `unserved` counts the requests
    /// turned away for want of a running replica since the last evaluation.
    ///
    /// A type at zero replicas has nothing to measure, so under the metric policies it wakes
    /// with one replica when the cluster needs more: requests were turned away, or the running
    /// replicas of the other types are, on average, past the scale-up threshold (reactive) or
    /// past the target beyond the tolerance (hpa).
    pub fn decide(&mut self, now: Nanos, observed: &[TypeObservation], unserved: u64) -> Vec<u32> {
        let (up, down, target) = self.config.thresholds();
        let window = from_secs(self.config.cooldown_s);
        let running: u32 = observed.iter().map(|o| o.current).sum();
        let metric_total: f64 = observed.iter().map(|o| o.metric_sum).sum();
        let pressed = running > 0 && {
            let mean = metric_total / f64::from(running);
            match self.config.policy {
                AutoscalePolicy::Reactive => mean > up,
                AutoscalePolicy::Hpa => mean / target > 1.0 + self.config.hpa_tolerance,
                AutoscalePolicy::Static | AutoscalePolicy::Schedule => false,
            }
        };
        let wake = u32::from(unserved > 0 || pressed);
        let active_window = match self.config.policy {
            AutoscalePolicy::Schedule => self.schedule_times.iter().rposition(|&t| t <= now),
            _ => None,
        };
        (0..observed.len())
            .map(|t| {
                let TypeObservation {
                    current,
                    metric_sum,
                } = observed[t];
                let desired = match self.config.policy {
                    AutoscalePolicy::Static => current,
                    AutoscalePolicy::Reactive => {
                        let cooling =
                            self.last_change[t].is_some_and(|at| now < at.saturating_add(window));
                        if current == 0 {
                            wake
                        } else if cooling {
                            current
                        } else {
                            let mean = metric_sum / f64::from(current);
                            if mean > up {
                                current.saturating_add(self.config.step)
                            } else if mean < down {
                                current.saturating_sub(self.config.step)
                            } else {
                                current
                            }
                        }
                    }
                    AutoscalePolicy::Hpa => {
                        let recommendation = if current == 0 {
                            wake
                        } else {
                            hpa_recommendation(
                                current,
                                metric_sum,
                                target,
                                self.config.hpa_tolerance,
                            )
                        };
                        let history = &mut self.history[t];
                        history.push_back((now, recommendation));
                        while history
                            .front()
                            .is_some_and(|&(at, _)| at.saturating_add(window) < now)
                        {
                            history.pop_front();
                        }
                        if recommendation >= current {
                            recommendation
                        } else {
                            // Scale down only as far as every recent recommendation allows.
                            history
                                .iter()
                                .map(|&(_, r)| r)
                                .max()
                                .unwrap_or(recommendation)
                                .min(current)
                        }
                    }
                    AutoscalePolicy::Schedule => match active_window {
                        Some(k) => self.config.schedule[k]
                            .counts
                            .get(&self.type_names[t])
                            .copied()
                            .unwrap_or(0),
                        None => current,
                    },
                };
                let limits = self.limits[t];
                let desired = desired.clamp(limits.min, limits.max);
                if desired != current {
                    self.last_change[t] = Some(now);
                }
                desired
            })
            .collect()
    }
}

/// The Kubernetes HPA rule: ⌈current × (metric / current) / target⌉, unchanged within the
/// tolerance band. With no replica there is nothing to measure, so nothing changes.
pub fn hpa_recommendation(current: u32, metric_sum: f64, target: f64, tolerance: f64) -> u32 {
    if current == 0 {
        return 0;
    }
    let ratio = metric_sum / (f64::from(current) * target);
    if (ratio - 1.0).abs() <= tolerance {
        return current;
    }
    // ⌈current × ratio⌉ = ⌈metric_sum / target⌉; the small slack keeps a product that is an
    // integer up to rounding (2 × 1.5 = 3.0000000000000004) from rounding up once more.
    let desired = (metric_sum / target - 1e-9).ceil();
    if desired <= 0.0 {
        0
    } else {
        desired.min(f64::from(u32::MAX)) as u32
    }
}

/// Replica counts per type at one instant (types in the order of [`ScalingReport::types`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaCountPoint {
    /// Simulated time, seconds.
    pub time_s: f64,
    /// Replicas serving.
    pub ready: Vec<u32>,
    /// Replicas loading the model (billed, not serving yet).
    pub starting: Vec<u32>,
    /// Replicas finishing their requests before they stop (billed, taking none).
    pub draining: Vec<u32>,
}

/// Scaling of one type over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeScaling {
    /// Instance name (`prefill/NAME` or `decode/NAME` in a disaggregated cluster).
    pub instance: String,
    /// Limits applied.
    pub min: u32,
    /// Limits applied.
    pub max: u32,
    /// Replicas at the start.
    pub initial: u32,
    /// Most replicas billed at once.
    pub peak: u32,
    /// Replicas ready at the end.
    pub final_ready: u32,
    /// Time-average of replicas billed.
    pub mean_billed: f64,
    /// Model load time of one new replica, seconds.
    pub cold_start_s: f64,
    /// Replica-hours billed.
    pub billed_replica_hours: f64,
    /// $ billed.
    pub billed_usd: f64,
}

/// What the autoscaler did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingReport {
    /// Policy.
    pub policy: String,
    /// Metric (reactive, hpa).
    pub metric: Option<String>,
    /// Evaluations run.
    pub evaluations: u64,
    /// Replicas started.
    pub replicas_started: u64,
    /// Replicas drained (including ones cancelled while starting).
    pub replicas_drained: u64,
    /// Per type.
    pub types: Vec<TypeScaling>,
    /// Replica counts after every change, from time 0 to the end of the run.
    pub series: Vec<ReplicaCountPoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("T{i}")).collect()
    }

    /// HPA at a target of 10 with a 60 s stabilisation window.
    fn hpa_target_10() -> AutoscaleConfig {
        AutoscaleConfig {
            policy: AutoscalePolicy::Hpa,
            hpa_target: Some(10.0),
            cooldown_s: 60.0,
            ..AutoscaleConfig::default()
        }
    }

    /// Reactive on the queue: up past 4, down below 1, 30 s cooldown.
    fn reactive_queue_4_1() -> AutoscaleConfig {
        AutoscaleConfig {
            policy: AutoscalePolicy::Reactive,
            metric: ScaleMetric::Queue,
            scale_up_threshold: Some(4.0),
            scale_down_threshold: Some(1.0),
            cooldown_s: 30.0,
            ..AutoscaleConfig::default()
        }
    }

    fn obs(current: u32, mean: f64) -> TypeObservation {
        TypeObservation {
            current,
            metric_sum: mean * f64::from(current),
        }
    }

    #[test]
    fn hpa_rule_with_tolerance_band() {
        // 4 replicas at twice the target: 8.
        assert_eq!(hpa_recommendation(4, 4.0 * 64.0, 32.0, 0.1), 8);
        // Within 10%: unchanged, both ways.
        assert_eq!(hpa_recommendation(4, 4.0 * 35.0, 32.0, 0.1), 4);
        assert_eq!(hpa_recommendation(4, 4.0 * 29.0, 32.0, 0.1), 4);
        // Just outside the band: ⌈4 × 36/32⌉ = ⌈4.5⌉ = 5; ⌈4 × 20/32⌉ = ⌈2.5⌉ = 3.
        assert_eq!(hpa_recommendation(4, 4.0 * 36.0, 32.0, 0.1), 5);
        assert_eq!(hpa_recommendation(4, 4.0 * 20.0, 32.0, 0.1), 3);
        // An exact product is not rounded up once more.
        assert_eq!(hpa_recommendation(2, 2.0 * 1.5, 1.0, 0.1), 3);
        // Idle: down to zero (limits clamp it); nothing to measure without replicas.
        assert_eq!(hpa_recommendation(3, 0.0, 32.0, 0.1), 0);
        assert_eq!(hpa_recommendation(0, 0.0, 32.0, 0.1), 0);
    }

    #[test]
    fn hpa_scales_up_at_once_and_down_after_the_stabilisation_window() {
        let limits = vec![ScaleLimits { min: 1, max: 10 }];
        let mut scaler = Autoscaler::new(&hpa_target_10(), &names(1), limits);
        let s = |x: f64| from_secs(x);
        assert_eq!(scaler.decide(s(15.0), &[obs(2, 30.0)], 0), vec![6]);
        // Load falls: the recommendation (2) waits until the high one leaves the window.
        assert_eq!(scaler.decide(s(30.0), &[obs(6, 3.3)], 0), vec![6]);
        assert_eq!(scaler.decide(s(60.0), &[obs(6, 3.3)], 0), vec![6]);
        assert_eq!(scaler.decide(s(76.0), &[obs(6, 3.3)], 0), vec![2]);
        // Limits clamp.
        assert_eq!(scaler.decide(s(90.0), &[obs(2, 500.0)], 0), vec![10]);
    }

    #[test]
    fn reactive_steps_by_thresholds_and_waits_out_its_cooldown() {
        let limits = vec![
            ScaleLimits { min: 1, max: 3 },
            ScaleLimits { min: 0, max: 5 },
        ];
        let mut scaler = Autoscaler::new(&reactive_queue_4_1(), &names(2), limits);
        let s = |x: f64| from_secs(x);
        assert_eq!(
            scaler.decide(s(10.0), &[obs(1, 5.0), obs(2, 0.5)], 0),
            vec![2, 1]
        );
        // Both cooling down.
        assert_eq!(
            scaler.decide(s(20.0), &[obs(2, 9.0), obs(1, 0.0)], 0),
            vec![2, 1]
        );
        assert_eq!(
            scaler.decide(s(40.0), &[obs(2, 9.0), obs(1, 2.0)], 0),
            vec![3, 1]
        );
        // At its max.
        assert_eq!(
            scaler.decide(s(80.0), &[obs(3, 9.0), obs(1, 2.0)], 0),
            vec![3, 1]
        );
        assert_eq!(
            scaler.decide(s(120.0), &[obs(3, 0.0), obs(1, 0.0)], 0),
            vec![2, 0]
        );
    }

    #[test]
    fn a_type_at_zero_wakes_when_the_cluster_needs_more() {
        let s = |x: f64| from_secs(x);
        let limits = || {
            vec![
                ScaleLimits { min: 1, max: 8 },
                ScaleLimits { min: 0, max: 4 },
            ]
        };
        let mut scaler = Autoscaler::new(&reactive_queue_4_1(), &names(2), limits());
        // Calm: T1 stays at zero.
        assert_eq!(
            scaler.decide(s(10.0), &[obs(2, 2.0), obs(0, 0.0)], 0),
            vec![2, 0]
        );
        // T0's queue is past the threshold: T0 steps up and T1 starts one.
        assert_eq!(
            scaler.decide(s(20.0), &[obs(2, 6.0), obs(0, 0.0)], 0),
            vec![3, 1]
        );
        let hpa = hpa_target_10();
        let mut scaler = Autoscaler::new(&hpa, &names(2), limits());
        // Within the tolerance of the target: nothing wakes.
        assert_eq!(
            scaler.decide(s(15.0), &[obs(2, 10.5), obs(0, 0.0)], 0),
            vec![2, 0]
        );
        // Requests were turned away for want of a replica: T1 wakes even though T0 is calm.
        assert_eq!(
            scaler.decide(s(30.0), &[obs(2, 10.0), obs(0, 0.0)], 3),
            vec![2, 1]
        );
        // Every type at zero (the cluster scaled itself in while idle): turned-away requests
        // wake one replica of each.
        let mut scaler = Autoscaler::new(&hpa, &names(2), vec![ScaleLimits { min: 0, max: 8 }; 2]);
        assert_eq!(
            scaler.decide(s(15.0), &[obs(0, 0.0), obs(0, 0.0)], 0),
            vec![0, 0]
        );
        assert_eq!(
            scaler.decide(s(30.0), &[obs(0, 0.0), obs(0, 0.0)], 5),
            vec![1, 1]
        );
    }

    #[test]
    fn schedule_applies_each_window_at_its_start_less_the_lead() {
        let window = |start_s: f64, a: u32| ScheduleWindow {
            start_s,
            counts: BTreeMap::from([("T0".to_string(), a)]),
        };
        let config = AutoscaleConfig {
            policy: AutoscalePolicy::Schedule,
            schedule: vec![window(0.0, 1), window(100.0, 4), window(200.0, 2)],
            schedule_lead_s: 10.0,
            ..AutoscaleConfig::default()
        };
        config.validate(&names(2)).unwrap();
        let limits = config.resolved_limits(&names(2), &[1, 1]);
        assert_eq!(limits[0], ScaleLimits { min: 0, max: 64 });
        let mut scaler = Autoscaler::new(&config, &names(2), limits);
        let s = |x: f64| from_secs(x);
        assert_eq!(scaler.first_evaluation(), Some(0));
        assert_eq!(scaler.next_evaluation(0), Some(s(90.0)));
        assert_eq!(scaler.next_evaluation(s(190.0)), None);
        // T1 is not in the schedule: none.
        assert_eq!(scaler.decide(0, &[obs(1, 0.0), obs(1, 0.0)], 0), vec![1, 0]);
        assert_eq!(
            scaler.decide(s(90.0), &[obs(1, 0.0), obs(0, 0.0)], 0),
            vec![4, 0]
        );
        assert_eq!(
            scaler.decide(s(190.0), &[obs(4, 0.0), obs(0, 0.0)], 0),
            vec![2, 0]
        );
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let types = names(1);
        let bad = |config: AutoscaleConfig, needle: &str| {
            let err = config.validate(&types).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        };
        let reactive = AutoscaleConfig {
            policy: AutoscalePolicy::Reactive,
            ..AutoscaleConfig::default()
        };
        bad(
            AutoscaleConfig {
                interval_s: 0.0,
                ..reactive.clone()
            },
            "interval_s",
        );
        bad(
            AutoscaleConfig {
                scale_up_threshold: Some(1.0),
                scale_down_threshold: Some(2.0),
                ..reactive.clone()
            },
            "below",
        );
        bad(
            AutoscaleConfig {
                limits: BTreeMap::from([("T0".into(), ScaleLimits { min: 3, max: 2 })]),
                ..reactive.clone()
            },
            "above max",
        );
        bad(
            AutoscaleConfig {
                limits: BTreeMap::from([("Z".into(), ScaleLimits { min: 0, max: 2 })]),
                ..reactive.clone()
            },
            "'Z'",
        );
        bad(
            AutoscaleConfig {
                load_gbs: 0.0,
                ..reactive.clone()
            },
            "load_gbs",
        );
        bad(
            AutoscaleConfig {
                policy: AutoscalePolicy::Hpa,
                hpa_target: Some(0.0),
                ..reactive.clone()
            },
            "hpa_target",
        );
        let schedule = AutoscaleConfig {
            policy: AutoscalePolicy::Schedule,
            ..AutoscaleConfig::default()
        };
        bad(schedule.clone(), "at least one window");
        let window = |start_s: f64, name: &str| ScheduleWindow {
            start_s,
            counts: BTreeMap::from([(name.to_string(), 1)]),
        };
        bad(
            AutoscaleConfig {
                schedule: vec![window(10.0, "T0"), window(5.0, "T0")],
                ..schedule.clone()
            },
            "increasing",
        );
        bad(
            AutoscaleConfig {
                schedule: vec![window(0.0, "H100")],
                ..schedule
            },
            "'H100'",
        );
        for policy in AutoscalePolicy::ALL {
            assert_eq!(AutoscalePolicy::parse(policy.name()), Some(policy));
        }
        for metric in ScaleMetric::ALL {
            assert_eq!(ScaleMetric::parse(metric.name()), Some(metric));
        }
    }
}
