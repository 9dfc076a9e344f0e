//! Latency samples and how they are shown.
//!
//! Every latency of a run is kept (nanoseconds, one `u64` each: a 15 s run at 50k req/s is
//! 6 MB), so percentiles are exact — nearest rank over the sorted samples — rather than bucketed.

use std::time::Duration;

/// The sorted latencies of one run, in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    sorted: Vec<u64>,
}

impl Latencies {
    /// Sorts `samples` (nanoseconds).
    pub fn from_samples(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Self { sorted: samples }
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `q`-quantile (0 < q ≤ 1) by nearest rank; `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.sorted.is_empty() {
            return None;
        }
        let n = self.sorted.len();
        // Nearest rank: the smallest sample with at least q·n samples at or below it.
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        self.sorted
            .get(rank - 1)
            .map(|ns| Duration::from_nanos(*ns))
    }

    /// The median.
    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.50)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }

    /// The largest sample.
    pub fn max(&self) -> Option<Duration> {
        self.sorted.last().map(|ns| Duration::from_nanos(*ns))
    }
}

/// `10`, `10 and 64`, `10, 64 and 256`.
pub fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().map(ToString::to_string).collect();
    match shown.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// A latency for a table: `0.412 ms`, `3.25 ms`, `1.84 s`; `–` when absent.
pub fn latency(value: Option<Duration>) -> String {
    let Some(value) = value else {
        return "–".to_owned();
    };
    let ms = value.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 1000.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{:.2} s", value.as_secs_f64())
    }
}

/// A signed difference of latencies in milliseconds: `+1.23 ms`, `-0.05 ms`.
pub fn delta_ms(ms: f64) -> String {
    format!("{ms:+.2} ms")
}

/// A rate with thousands separators: `12,345`.
pub fn rate(per_second: f64) -> String {
    thousands(per_second.round().max(0.0) as u64)
}

/// `1234567` → `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Parses `15s`, `500ms`, `2m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration such as 15s, 500ms or 2m, not `{text}`"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}` (ms, s, m)"
            ));
        }
    };
    if !seconds.is_finite() || !(0.0..=24.0 * 3600.0).contains(&seconds) {
        return Err(format!("duration `{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration as typed on a command line: `15s`, `500ms`.
pub fn show_duration(value: Duration) -> String {
    if value.subsec_millis() == 0 {
        format!("{}s", value.as_secs())
    } else {
        format!("{}ms", value.as_millis())
    }
}

/// Answers counted by HTTP status, for a table cell or a note: `3 × 409, 1 × no answer` (status
/// 0 is a request that got no HTTP answer), or `0` when there are none.
pub fn status_counts<'a>(counts: impl IntoIterator<Item = (&'a u16, &'a u64)>) -> String {
    let text = counts
        .into_iter()
        .map(|(status, n)| match status {
            0 => format!("{n} × no answer"),
            _ => format!("{n} × {status}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    if text.is_empty() {
        "0".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_read_as_counts_not_debug_output() {
        assert_eq!(status_counts(&std::collections::BTreeMap::new()), "0");
        let counts = std::collections::BTreeMap::from([(409, 3), (0, 1), (503, 2)]);
        assert_eq!(status_counts(&counts), "1 × no answer, 3 × 409, 2 × 503");
    }

    #[test]
    fn lists_read_as_english() {
        assert_eq!(list::<u32>(&[]), "");
        assert_eq!(list(&[10]), "10");
        assert_eq!(list(&[10, 64]), "10 and 64");
        assert_eq!(list(&[10, 64, 256]), "10, 64 and 256");
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let lat = Latencies::from_samples((1..=100).rev().map(|v| v * 1000).collect());
        assert_eq!(lat.p50(), Some(Duration::from_micros(50)));
        assert_eq!(lat.p99(), Some(Duration::from_micros(99)));
        assert_eq!(lat.quantile(1.0), Some(Duration::from_micros(100)));
        assert_eq!(lat.max(), Some(Duration::from_micros(100)));
        let one = Latencies::from_samples(vec![7]);
        assert_eq!(one.p99(), Some(Duration::from_nanos(7)));
        assert_eq!(Latencies::default().p50(), None);
    }

    #[test]
    fn values_format_for_tables() {
        assert_eq!(latency(Some(Duration::from_micros(412))), "0.412 ms");
        assert_eq!(latency(Some(Duration::from_micros(3250))), "3.25 ms");
        assert_eq!(latency(Some(Duration::from_millis(1840))), "1.84 s");
        assert_eq!(latency(None), "–");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(12_345.6), "12,346");
        assert_eq!(delta_ms(1.234), "+1.23 ms");
        assert_eq!(delta_ms(-0.05), "-0.05 ms");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
        assert_eq!(show_duration(Duration::from_secs(15)), "15s");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
    }
}
