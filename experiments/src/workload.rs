//! Workloads named by experiments and commands: a built-in preset or a trace file.

use std::path::{Path, PathBuf};

use workloads::{ReadOptions, Request, TraceReader};

/// A workload named in a config or on the command line: a preset or a trace file.
pub enum WorkloadSource {
    /// A built-in preset.
    Preset(workloads::presets::Preset),
    /// A trace file.
    Trace(PathBuf),
}

impl WorkloadSource {
    /// A preset by that name, else an existing file; anything else is an error listing both.
    pub fn resolve(text: &str) -> Result<Self, String> {
        if let Ok(preset) = workloads::presets::get(text) {
            return Ok(Self::Preset(preset));
        }
        let path = Path::new(text);
        if path.is_file() {
            return Ok(Self::Trace(path.to_path_buf()));
        }
        Err(format!(
            "workload '{text}': neither a preset ({}) nor a readable file",
            workloads::presets::NAMES.join(", ")
        ))
    }

    /// A preset's requests whose rate follows `shape` (relative rates, one per `step_s`,
    /// repeating), scaled so the mean over one cycle is `rate` (default: the preset's own).
    /// Arrivals within a step are Poisson; lengths are the preset's. Returns the requests, a
    /// description, and the mean rate.
    pub fn shaped_requests(
        &self,
        rate: Option<f64>,
        shape: &[f64],
        step_s: f64,
        duration_s: f64,
        seed: u64,
    ) -> Result<(Vec<Request>, String, f64), Box<dyn std::error::Error>> {
        let Self::Preset(preset) = self else {
            return Err(
                "workload.rate_shape applies to presets only: a trace has its own \
                        arrival times"
                    .into(),
            );
        };
        let rate = rate.unwrap_or(preset.default_rate_rps);
        let mean = shape.iter().sum::<f64>() / shape.len().max(1) as f64;
        if !(mean > 0.0 && mean.is_finite()) {
            return Err(format!(
                "workload.rate_shape {shape:?}: expected finite values >= 0, not all zero"
            )
            .into());
        }
        let rates: Vec<f64> = shape.iter().map(|v| rate * v / mean).collect();
        let profile = workloads::RateProfile::new(step_s, rates, true)?;
        let workload = workloads::Workload::new(
            workloads::ArrivalProcess::Profile(profile),
            preset.lengths.clone(),
        )?;
        let requests: Vec<Request> = workload.stream(duration_s, seed)?.collect();
        let description = format!(
            "preset {} at a mean {rate} req/s shaped by {} steps of {step_s} s, for {duration_s} s \
             (seed {seed})",
            preset.name,
            shape.len()
        );
        Ok((requests, description, rate))
    }

    /// The requests: a preset at `rate` (default: its own) for `duration_s`, or the whole trace
    /// with its arrivals rescaled to `rate` when one is given. Returns them, a description, and
    /// their mean rate.
    pub fn requests(
        &self,
        rate: Option<f64>,
        duration_s: f64,
        seed: u64,
    ) -> Result<(Vec<Request>, String, f64), Box<dyn std::error::Error>> {
        match self {
            Self::Preset(preset) => {
                let rate = rate.unwrap_or(preset.default_rate_rps);
                let requests: Vec<Request> = preset.stream(rate, duration_s, seed)?.collect();
                let description = format!(
                    "preset {} at {rate} req/s for {duration_s} s (seed {seed})",
                    preset.name
                );
                Ok((requests, description, rate))
            }
            Self::Trace(path) => {
                let mut reader = TraceReader::open(path, &ReadOptions::default())?;
                let mut requests: Vec<Request> = reader.by_ref().collect::<Result<_, _>>()?;
                // BurstGPT's failed requests (no response tokens) are left out of the replay;
                // the description says how many, so none vanish unreported.
                let failed = reader.counts().failed_excluded;
                if requests.len() < 2 {
                    return Err(format!(
                        "{}: {} requests; need at least 2 to know the rate",
                        path.display(),
                        requests.len()
                    )
                    .into());
                }
                let span = requests.last().map_or(0.0, |r| r.arrival_s);
                if span <= 0.0 {
                    return Err(format!(
                        "{}: every request arrives at the same time; the rate is undefined",
                        path.display()
                    )
                    .into());
                }
                // As `medley workload stats` reports it: gaps per second of span.
                let own_rate = (requests.len() - 1) as f64 / span;
                let rate = match rate {
                    Some(rate) if rate.is_finite() && rate > 0.0 => {
                        let factor = own_rate / rate;
                        for request in &mut requests {
                            request.arrival_s *= factor;
                        }
                        rate
                    }
                    Some(rate) => {
                        return Err(format!("rate {rate}: expected requests per second > 0").into());
                    }
                    None => own_rate,
                };
                let description = format!(
                    "trace {} ({} requests, {rate:.3} req/s{}{})",
                    path.display(),
                    requests.len(),
                    if rate == own_rate {
                        String::new()
                    } else {
                        format!(", rescaled from {own_rate:.3}")
                    },
                    if failed > 0 {
                        format!("; {failed} failed requests left out")
                    } else {
                        String::new()
                    }
                );
                Ok((requests, description, rate))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traces_left_out_failed_requests_are_reported() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads/tests/fixtures/burstgpt.csv");
        let source = WorkloadSource::Trace(path);
        let (requests, description, _) = source.requests(None, 600.0, 1).unwrap();
        // Two of the fixture's four rows have no response tokens: BurstGPT's failed requests.
        assert_eq!(requests.len(), 2);
        assert!(
            description.contains("2 failed requests left out"),
            "{description}"
        );
    }
}
