//! Arrival processes: Poisson, Gamma with a given coefficient of variation, constant rate,
//! on/off bursts, and a time-varying rate from a piecewise-constant profile.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Gamma};
use serde::Serialize;

use crate::error::WorkloadError;

/// Highest arrival rate accepted, req/s (one arrival per 100 ns): beyond it arrivals crowd onto
/// the same nanoseconds of the simulated clock, and no fleet a run can hold would serve them.
pub const MAX_RATE_RPS: f64 = 1e7;

/// A piecewise-constant arrival rate over time (requests per second in each step).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateProfile {
    /// Width of each step in seconds.
    pub step_s: f64,
    /// Rate in requests per second during each step.
    pub rates_rps: Vec<f64>,
    /// Whether the profile repeats after its last step (a daily curve); otherwise the last
    /// step's rate holds forever.
    pub repeat: bool,
}

impl RateProfile {
    /// A profile from requests counted per minute (as the Azure 2024 plots show).
    pub fn per_minute_counts(counts: &[f64]) -> Result<Self, WorkloadError> {
        Self::new(60.0, counts.iter().map(|c| c / 60.0).collect(), false)
    }

    /// A repeating 24-hour curve from one rate (requests per second) per hour.
    pub fn daily_curve(hourly_rates_rps: &[f64]) -> Result<Self, WorkloadError> {
        if hourly_rates_rps.len() != 24 {
            return Err(WorkloadError::bad(
                "daily curve",
                hourly_rates_rps.len(),
                "24 hourly rates",
            ));
        }
        Self::new(3600.0, hourly_rates_rps.to_vec(), true)
    }

    /// A profile with the given step width and rates.
    pub fn new(step_s: f64, rates_rps: Vec<f64>, repeat: bool) -> Result<Self, WorkloadError> {
        if !(step_s > 0.0 && step_s.is_finite()) {
            return Err(WorkloadError::bad(
                "profile step",
                step_s,
                "a positive number of seconds",
            ));
        }
        if rates_rps.is_empty() || rates_rps.iter().any(|r| !(*r >= 0.0 && *r <= MAX_RATE_RPS)) {
            return Err(WorkloadError::bad(
                "profile rates",
                format!("{rates_rps:?}"),
                "one or more rates from 0 to 1e7 req/s",
            ));
        }
        if rates_rps.iter().all(|r| *r == 0.0) {
            return Err(WorkloadError::bad(
                "profile rates",
                "all zero",
                "at least one positive rate",
            ));
        }
        Ok(Self {
            step_s,
            rates_rps,
            repeat,
        })
    }

    /// Mean rate over one pass of the profile, in requests per second.
    pub fn mean_rate_rps(&self) -> f64 {
        self.rates_rps.iter().sum::<f64>() / self.rates_rps.len() as f64
    }

    /// The same shape multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            rates_rps: self.rates_rps.iter().map(|r| r * factor).collect(),
            ..self.clone()
        }
    }

    fn rate_in_step(&self, step: u64) -> f64 {
        let len = self.rates_rps.len() as u64;
        let index = if self.repeat {
            step % len
        } else {
            step.min(len - 1)
        };
        self.rates_rps[index as usize]
    }
}

/// How requests arrive.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArrivalProcess {
    /// Exponential inter-arrival times (coefficient of variation 1).
    Poisson {
        /// Requests per second.
        rate_rps: f64,
    },
    /// Gamma inter-arrival times with the given coefficient of variation (CV > 1 is bursty).
    Gamma {
        /// Requests per second.
        rate_rps: f64,
        /// Coefficient of variation of the inter-arrival time.
        cv: f64,
    },
    /// Evenly spaced arrivals.
    Constant {
        /// Requests per second.
        rate_rps: f64,
    },
    /// Poisson at `on_rate_rps` for `on_s` seconds, then silence for `off_s`, repeating.
    OnOff {
        /// Rate during the on phase.
        on_rate_rps: f64,
        /// Length of the on phase in seconds.
        on_s: f64,
        /// Length of the off phase in seconds.
        off_s: f64,
    },
    /// A non-homogeneous Poisson process following a rate profile.
    Profile(RateProfile),
}

impl ArrivalProcess {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let positive = |name: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(WorkloadError::bad(name, v, "a positive finite number"))
            }
        };
        let rate = |name: &str, v: f64| {
            if v > 0.0 && v <= MAX_RATE_RPS {
                Ok(())
            } else {
                Err(WorkloadError::bad(
                    name,
                    v,
                    "a rate above 0 and at most 1e7 req/s",
                ))
            }
        };
        match self {
            ArrivalProcess::Poisson { rate_rps } | ArrivalProcess::Constant { rate_rps } => {
                rate("rate_rps", *rate_rps)
            }
            ArrivalProcess::Gamma { rate_rps, cv } => {
                rate("rate_rps", *rate_rps)?;
                positive("cv", *cv)
            }
            ArrivalProcess::OnOff {
                on_rate_rps,
                on_s,
                off_s,
            } => {
                rate("on_rate_rps", *on_rate_rps)?;
                positive("on_s", *on_s)?;
                if *off_s >= 0.0 && off_s.is_finite() {
                    Ok(())
                } else {
                    Err(WorkloadError::bad("off_s", off_s, "a finite number >= 0"))
                }
            }
            ArrivalProcess::Profile(profile) => {
                RateProfile::new(profile.step_s, profile.rates_rps.clone(), profile.repeat)
                    .map(|_| ())
            }
        }
    }

    /// Long-run mean rate in requests per second.
    pub fn mean_rate_rps(&self) -> f64 {
        match self {
            ArrivalProcess::Poisson { rate_rps }
            | ArrivalProcess::Gamma { rate_rps, .. }
            | ArrivalProcess::Constant { rate_rps } => *rate_rps,
            ArrivalProcess::OnOff {
                on_rate_rps,
                on_s,
                off_s,
            } => on_rate_rps * on_s / (on_s + off_s),
            ArrivalProcess::Profile(profile) => profile.mean_rate_rps(),
        }
    }

    /// Arrival times (seconds from 0, non-decreasing), drawn with `rng`; endless.
    pub fn times<R: Rng>(&self, rng: R) -> Result<ArrivalTimes<R>, WorkloadError> {
        self.validate()?;
        let gamma = match self {
            ArrivalProcess::Gamma { rate_rps, cv } => {
                let shape = 1.0 / (cv * cv);
                Some(
                    Gamma::new(shape, 1.0 / (rate_rps * shape))
                        .map_err(|e| WorkloadError::bad("gamma", e, "valid shape and scale"))?,
                )
            }
            _ => None,
        };
        let profile = match self {
            ArrivalProcess::OnOff {
                on_rate_rps,
                on_s,
                off_s,
            } => {
                // Express on/off as a two-step repeating profile with a common step width.
                Some(OnOffProfile {
                    on_rate_rps: *on_rate_rps,
                    on_s: *on_s,
                    off_s: *off_s,
                })
            }
            _ => None,
        };
        Ok(ArrivalTimes {
            process: self.clone(),
            rng,
            now_s: 0.0,
            count: 0,
            gamma,
            on_off: profile,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct OnOffProfile {
    on_rate_rps: f64,
    on_s: f64,
    off_s: f64,
}

/// Endless iterator of arrival times in seconds; see [`ArrivalProcess::times`].
#[derive(Debug, Clone)]
pub struct ArrivalTimes<R> {
    process: ArrivalProcess,
    rng: R,
    now_s: f64,
    count: u64,
    gamma: Option<Gamma<f64>>,
    on_off: Option<OnOffProfile>,
}

/// A standard exponential draw (mean 1) by inversion, from an open-interval uniform.
fn unit_exponential<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 - U lies in (0, 1], so the log is finite.
    -(1.0 - rng.random::<f64>()).ln()
}

/// Advances from `now` through a piecewise-constant intensity by `work` units of cumulative
/// intensity (time rescaling: unit-exponential work gives a non-homogeneous Poisson process).
fn advance_profile(mut now: f64, mut work: f64, profile: &RateProfile) -> f64 {
    let step_s = profile.step_s;
    {
        // Bounded so a profile that is zero forever cannot hang (validation forbids all-zero).
        for _ in 0..100_000_000u64 {
            let step = (now / step_s).floor() as u64;
            let step_end = (step + 1) as f64 * step_s;
            let rate = profile.rate_in_step(step);
            if !profile.repeat && step as usize >= profile.rates_rps.len() - 1 && rate == 0.0 {
                return f64::INFINITY; // the profile has ended at rate zero: no more arrivals
            }
            let room = (step_end - now) * rate;
            if rate > 0.0 && room >= work {
                return now + work / rate;
            }
            work -= room.max(0.0);
            now = step_end;
        }
        now
    }
}

impl<R: Rng> Iterator for ArrivalTimes<R> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        let next = match &self.process {
            ArrivalProcess::Poisson { rate_rps } => {
                self.now_s + unit_exponential(&mut self.rng) / rate_rps
            }
            ArrivalProcess::Gamma { .. } => {
                let gap = self.gamma.as_ref().map_or(0.0, |g| g.sample(&mut self.rng));
                self.now_s + gap
            }
            ArrivalProcess::Constant { rate_rps } => self.count as f64 / rate_rps,
            ArrivalProcess::OnOff { .. } => {
                let on_off = self.on_off.expect("set for on/off");
                let work = unit_exponential(&mut self.rng);
                let period = on_off.on_s + on_off.off_s;
                // Walk phase by phase: only the on phase accrues intensity.
                let mut now = self.now_s;
                let mut work = work;
                loop {
                    let phase_start = (now / period).floor() * period;
                    let on_end = phase_start + on_off.on_s;
                    if now < on_end {
                        let room = (on_end - now) * on_off.on_rate_rps;
                        if room >= work {
                            break now + work / on_off.on_rate_rps;
                        }
                        work -= room;
                    }
                    now = phase_start + period;
                }
            }
            ArrivalProcess::Profile(profile) => {
                let work = unit_exponential(&mut self.rng);
                advance_profile(self.now_s, work, profile)
            }
        };
        if !next.is_finite() {
            return None;
        }
        self.count += 1;
        self.now_s = next;
        Some(next)
    }
}
