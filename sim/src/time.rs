//! Simulated time: integer nanoseconds, so event order is exact.

/// Simulated time or duration in nanoseconds.
pub type Nanos = u64;

/// Nanoseconds per second.
pub const NANOS_PER_S: f64 = 1e9;

/// Seconds to nanoseconds, rounded to the nearest nanosecond (negative or NaN → 0).
#[inline]
pub fn from_secs(seconds: f64) -> Nanos {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * NANOS_PER_S).round() as Nanos
    } else {
        0
    }
}

/// Nanoseconds to seconds.
#[inline]
pub fn to_secs(nanos: Nanos) -> f64 {
    nanos as f64 / NANOS_PER_S
}
