//! Seeded synthetic request streams: an arrival process plus a length model.

use rand::SeedableRng;
use rand_pcg::Pcg64;

use crate::arrivals::{ArrivalProcess, ArrivalTimes};
use crate::error::WorkloadError;
use crate::lengths::LengthModel;
use crate::request::Request;

/// Offset between the arrival and length seeds, so the two draw from unrelated streams and
/// changing the arrival process leaves the length sequence unchanged.
const LENGTH_SEED_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;

/// A synthetic workload: how requests arrive and how long they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Arrival process.
    pub arrivals: ArrivalProcess,
    /// Length model.
    pub lengths: LengthModel,
}

impl Workload {
    /// A workload; fails if the arrival parameters are invalid.
    pub fn new(arrivals: ArrivalProcess, lengths: LengthModel) -> Result<Self, WorkloadError> {
        arrivals.validate()?;
        Ok(Self { arrivals, lengths })
    }

    /// Requests arriving in `[0, duration_s)`; the same seed gives the same stream.
    pub fn stream(&self, duration_s: f64, seed: u64) -> Result<SyntheticStream, WorkloadError> {
        // Arrivals past the simulator's clock would be refused one by one; say so up front.
        if !(0.0..=crate::request::MAX_ARRIVAL_S).contains(&duration_s) {
            return Err(WorkloadError::bad(
                "duration_s",
                duration_s,
                "a number of seconds from 0 to 1e9 (about 31 years)",
            ));
        }
        Ok(SyntheticStream {
            times: self.arrivals.times(Pcg64::seed_from_u64(seed))?,
            lengths: self.lengths.clone(),
            length_rng: Pcg64::seed_from_u64(seed.wrapping_add(LENGTH_SEED_OFFSET)),
            duration_s,
            next_id: 0,
        })
    }
}

/// Iterator of synthetic requests; see [`Workload::stream`].
#[derive(Debug, Clone)]
pub struct SyntheticStream {
    times: ArrivalTimes<Pcg64>,
    lengths: LengthModel,
    length_rng: Pcg64,
    duration_s: f64,
    next_id: u64,
}

impl Iterator for SyntheticStream {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        let arrival_s = self.times.next()?;
        if arrival_s >= self.duration_s {
            return None;
        }
        let (input, output) = self.lengths.sample(&mut self.length_rng);
        let request = Request::new(self.next_id, arrival_s, input, output);
        self.next_id += 1;
        Some(request)
    }
}
