//! Jittered exponential backoff.

use std::time::Duration;

use rand::Rng;

/// The delay before attempt `attempt + 1` after `attempt` consecutive failures (≥ 1):
/// `base × 2^(attempt-1)`, capped at `max`, then "equal jitter" (between half and all of it).
pub(crate) fn delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let full = base.saturating_mul(1 << exponent).min(max);
    let half = full / 2;
    let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(rand::rng().random_range(0..=jitter_nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 1..40 {
            let d = delay(base, max, attempt);
            assert!(d <= max, "{d:?}");
            let full = base.saturating_mul(1 << (attempt - 1).min(20)).min(max);
            assert!(d >= full / 2, "{d:?} < half of {full:?}");
        }
    }
}
