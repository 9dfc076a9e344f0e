//! `soak`: the storefront mix (see [`super::storefront`]) for `--minutes`, in one-minute windows
//! at one connection count; after each window the resident memory (VmRSS) of every service and
//! the window's p99 are recorded. Memory must stay flat: a service whose RSS grew from the
//! first minute to the last by more than [`GROWTH_LIMIT`] (and at least [`GROWTH_FLOOR_KIB`]) is
//! flagged.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::Ctx;
use super::storefront;
use super::support;
use crate::load::{self, LoadResult};
use crate::report::{Mark, Section, Table, Verdict};
use crate::stats;

super::scenario!(
    "soak",
    "the storefront mix for --minutes at one connection count; RSS of every service and p99 each minute (memory must stay flat)"
);

/// Growth from the first minute to the last above this fraction is flagged...
pub const GROWTH_LIMIT: f64 = 0.10;
/// ...when it is also at least this much (small services move by allocator noise).
pub const GROWTH_FLOOR_KIB: u64 = 4 * 1024;
/// The soak's connection count unless `--connections` names others (then the nearest to it).
const CONNECTIONS: usize = 64;
/// One window.
const MINUTE: Duration = Duration::from_secs(60);

/// One minute of the soak.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Minute {
    /// 1, 2, ...
    pub minute: u64,
    /// The window's load.
    pub load: LoadResult,
    /// (service, VmRSS in KiB) after the window.
    pub rss_kib: Vec<(String, u64)>,
}

/// A service whose memory grew over the soak.
#[derive(Debug, Clone, PartialEq)]
pub struct Growth {
    /// The service.
    pub service: String,
    /// RSS after the first minute, KiB.
    pub first_kib: u64,
    /// RSS after the last minute, KiB.
    pub last_kib: u64,
}

/// The services whose RSS after the last minute exceeds the first minute's by more than
/// [`GROWTH_LIMIT`] and [`GROWTH_FLOOR_KIB`].
pub fn growth(minutes: &[Minute]) -> Vec<Growth> {
    let (Some(first), Some(last)) = (minutes.first(), minutes.last()) else {
        return Vec::new();
    };
    first
        .rss_kib
        .iter()
        .filter_map(|(service, first_kib)| {
            let last_kib = last.rss_kib.iter().find(|(s, _)| s == service)?.1;
            let grew = last_kib.saturating_sub(*first_kib);
            (grew >= GROWTH_FLOOR_KIB && grew as f64 > *first_kib as f64 * GROWTH_LIMIT).then(
                || Growth {
                    service: service.clone(),
                    first_kib: *first_kib,
                    last_kib,
                },
            )
        })
        .collect()
}

fn mb(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let s = &ctx.settings;
    let connections = s
        .connections
        .iter()
        .copied()
        .min_by_key(|c| c.abs_diff(CONNECTIONS))
        .unwrap_or(CONNECTIONS);
    let shop = storefront::start(ctx, "soak").await?;
    let settings = load::LoadSettings {
        duration: MINUTE,
        warmup: Duration::ZERO,
        ..s.load(connections)
    };
    let mut minutes = Vec::new();
    for minute in 1..=s.minutes {
        for process in shop.alive() {
            process.check_alive()?;
        }
        let load = load::run(&shop.target, &settings).await?;
        let rss_kib: Vec<(String, u64)> = shop
            .pids()
            .into_iter()
            .map(|(name, pid)| (name, support::rss_kib(pid).unwrap_or(0)))
            .collect();
        println!(
            "  minute {minute}/{}: {}; RSS {}",
            s.minutes,
            load.summary(),
            rss_kib
                .iter()
                .map(|(name, kib)| format!("{name} {} MB", mb(*kib)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        minutes.push(Minute {
            minute,
            load,
            rss_kib,
        });
    }
    Ok(section(ctx, connections, &minutes))
}

fn section(ctx: &Ctx, connections: usize, minutes: &[Minute]) -> Section {
    let services: Vec<String> = minutes
        .first()
        .map(|m| m.rss_kib.iter().map(|(s, _)| s.clone()).collect())
        .unwrap_or_default();
    let mut header = vec![
        "minute".to_owned(),
        "req/s".to_owned(),
        "p50".to_owned(),
        "p99".to_owned(),
        "non-2xx / errors".to_owned(),
    ];
    header.extend(services.iter().map(|s| format!("{s} RSS (MB)")));
    let mut table = Table {
        header,
        rows: Vec::new(),
    };
    for m in minutes {
        let mut row = vec![
            m.minute.to_string(),
            stats::rate(m.load.rps),
            stats::latency(m.load.p50()),
            stats::latency(m.load.p99()),
            format!("{} / {}", m.load.non_2xx, m.load.errors),
        ];
        row.extend(m.rss_kib.iter().map(|(_, kib)| mb(*kib)));
        table.row(row);
    }
    let grown = growth(minutes);
    let verdict = Verdict {
        mark: if minutes.len() < 2 {
            Mark::Invalid
        } else if grown.is_empty() {
            Mark::Pass
        } else {
            Mark::Fail
        },
        text: if grown.is_empty() {
            format!(
                "memory flat over {} minute(s): no service's RSS grew by more than {:.0}% (and \
                 {} MB) from the first minute to the last",
                minutes.len(),
                GROWTH_LIMIT * 100.0,
                GROWTH_FLOOR_KIB / 1024
            )
        } else {
            format!(
                "RSS grew over {} minutes: {}",
                minutes.len(),
                grown
                    .iter()
                    .map(|g| format!("{} {} → {} MB", g.service, mb(g.first_kib), mb(g.last_kib)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    };
    Section {
        scenario: "soak",
        title: "soak: the storefront mix, RSS and p99 minute by minute".to_owned(),
        settings: vec![format!(
            "{} minute(s) of the storefront mix at {connections} connections, in one-minute \
             windows; {}",
            ctx.settings.minutes,
            ctx.settings.tool.describe()
        )],
        design: vec![
            "After each window, VmRSS of every service process (from /proc) and the window's \
             latencies. The first minute is the baseline: it includes the caches filling."
                .to_owned(),
        ],
        table,
        verdicts: vec![verdict],
        notes: Vec::new(),
        json: json!({ "connections": connections, "minutes": minutes }),
        curves: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(n: u64, rss: &[(&str, u64)]) -> Minute {
        Minute {
            minute: n,
            load: LoadResult::default(),
            rss_kib: rss.iter().map(|(s, k)| ((*s).to_owned(), *k)).collect(),
        }
    }

    #[test]
    fn growth_is_flagged_only_when_large_in_both_senses() {
        let minutes = [
            minute(
                1,
                &[("product", 40_000), ("gateway", 14_000), ("auth", 20_000)],
            ),
            minute(
                2,
                &[("product", 60_000), ("gateway", 16_500), ("auth", 20_100)],
            ),
            // product +50% and +20 MB: flagged; gateway +18% but only 2.5 MB: noise; auth flat.
            minute(
                3,
                &[("product", 60_000), ("gateway", 16_500), ("auth", 20_100)],
            ),
        ];
        assert_eq!(
            growth(&minutes),
            vec![Growth {
                service: "product".to_owned(),
                first_kib: 40_000,
                last_kib: 60_000,
            }]
        );
        // Large in KiB but small as a share: not flagged.
        let big = [
            minute(1, &[("content", 400_000)]),
            minute(2, &[("content", 420_000)]),
        ];
        assert!(growth(&big).is_empty());
        // Shrinking never is, and no minutes give nothing.
        let shrink = [
            minute(1, &[("content", 40_000)]),
            minute(2, &[("content", 20_000)]),
        ];
        assert!(growth(&shrink).is_empty());
        assert!(growth(&[]).is_empty());
    }

    #[test]
    fn the_section_lists_every_minute_and_the_verdict() {
        let settings = crate::scenarios::tests_support::settings();
        let ctx = Ctx {
            settings,
            cleanup: std::sync::Arc::new(crate::cleanup::Cleanup::new(
                "postgres://127.0.0.1/postgres",
                "redis://127.0.0.1",
            )),
            suffix: "t".to_owned(),
        };
        let minutes = [
            minute(1, &[("product", 40_000)]),
            minute(2, &[("product", 90_000)]),
        ];
        let section = section(&ctx, 64, &minutes);
        assert_eq!(section.table.rows.len(), 2);
        assert_eq!(
            section.table.header.last().map(String::as_str),
            Some("product RSS (MB)")
        );
        assert_eq!(section.verdicts[0].mark, Mark::Fail);
        assert!(section.verdicts[0].text.contains("product 39.1 → 87.9 MB"));
        let flat = section_of(
            &ctx,
            &[
                minute(1, &[("product", 40_000)]),
                minute(2, &[("product", 40_100)]),
            ],
        );
        assert_eq!(flat.verdicts[0].mark, Mark::Pass);
        let one = section_of(&ctx, &[minute(1, &[("product", 40_000)])]);
        assert_eq!(one.verdicts[0].mark, Mark::Invalid);
    }

    fn section_of(ctx: &Ctx, minutes: &[Minute]) -> Section {
        section(ctx, 64, minutes)
    }
}
