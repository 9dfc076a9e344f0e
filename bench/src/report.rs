//! `bench/RESULTS.md`: one section per scenario between markers; running a scenario replaces its
//! section and keeps the others.

use std::path::Path;

use anyhow::{Context, Result};

use crate::machine::Machine;

/// A markdown table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// As markdown.
    pub fn markdown(&self) -> String {
        let escape = |cell: &str| cell.replace('|', "\\|");
        let mut out = format!(
            "| {} |\n|{}\n",
            self.header
                .iter()
                .map(|h| escape(h))
                .collect::<Vec<_>>()
                .join(" | "),
            " --- |".repeat(self.header.len())
        );
        for row in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                row.iter()
                    .map(|c| escape(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        out
    }

    /// Aligned plain text for the terminal.
    pub fn plain(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut out = format!("  {}\n", line(&self.header));
        for row in &self.rows {
            out.push_str(&format!("  {}\n", line(row)));
        }
        out
    }
}

/// One line of a scenario's charts: a run's throughput and p99 at each connection count.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Curve {
    /// The run (`cached list`, `through our gateway`).
    pub label: String,
    /// By connection count, ascending.
    pub points: Vec<Point>,
}

/// One run of a sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Concurrent connections.
    pub connections: usize,
    /// Requests (or the scenario's unit) per second.
    pub rps: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
}

impl Curve {
    /// The curve of `results` (one per connection count).
    pub fn of(label: impl Into<String>, results: &[crate::load::LoadResult]) -> Self {
        let mut points: Vec<Point> = results
            .iter()
            .map(|r| Point {
                connections: r.connections,
                rps: r.rps,
                p99_ms: r.p99_ms,
            })
            .collect();
        points.sort_by_key(|p| p.connections);
        Self {
            label: label.into(),
            points,
        }
    }
}

/// Whether a budget was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Met.
    Pass,
    /// Missed.
    Fail,
    /// Not decidable from this run (errors, missing data).
    Invalid,
}

/// One budget line of DESIGN.md §7 with this run's figure.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The outcome.
    pub mark: Mark,
    /// E.g. "gateway req/s ÷ nginx req/s = 0.93 (budget ≥ 0.9)".
    pub text: String,
}

impl Verdict {
    fn markdown(&self) -> String {
        let mark = match self.mark {
            Mark::Pass => "**PASS**",
            Mark::Fail => "**FAIL**",
            Mark::Invalid => "**NOT MEASURED**",
        };
        format!("- {mark} — {}", self.text)
    }
}

/// What a scenario reports.
#[derive(Debug, Clone)]
pub struct Section {
    /// The scenario name (the section marker).
    pub scenario: &'static str,
    /// The heading after the name.
    pub title: String,
    /// Settings specific to the scenario (one line each).
    pub settings: Vec<String>,
    /// How the scenario works (one paragraph each).
    pub design: Vec<String>,
    /// The figures.
    pub table: Table,
    /// The budget lines.
    pub verdicts: Vec<Verdict>,
    /// Anything else worth knowing.
    pub notes: Vec<String>,
    /// The raw figures, also written as JSON under the work directory.
    pub json: serde_json::Value,
    /// Throughput and p99 by connection count, one curve per run (charted; empty when the
    /// scenario has no sweep).
    pub curves: Vec<Curve>,
}

/// Where and how a run happened.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// UTC date and time.
    pub date: String,
    /// The machine.
    pub machine: Machine,
    /// The commit.
    pub commit: String,
    /// The command as the user typed it (`cargo xtask bench ...`), if known.
    pub outer_command: Option<String>,
    /// This process's command line.
    pub command: String,
}

const PREAMBLE: &str = "# Benchmark results

Written by `cargo xtask bench` (the `bench/` crate, binary `lomash-bench`). DESIGN.md §7 is the
method and the budgets: the real platform's release binaries on loopback, driven by a separate
load-generating process. Running a scenario replaces its section and keeps the others. These are
measurements of one machine at one time; tests never assert timings.
";

fn begin_marker(scenario: &str) -> String {
    format!("<!-- bench:{scenario}:begin -->")
}

fn end_marker(scenario: &str) -> String {
    format!("<!-- bench:{scenario}:end -->")
}

/// The section as markdown, between its markers.
pub fn render(section: &Section, meta: &RunMeta) -> String {
    let mut out = String::new();
    out.push_str(&begin_marker(section.scenario));
    out.push('\n');
    out.push_str(&format!(
        "## `{}` — {}\n\n",
        section.scenario, section.title
    ));
    out.push_str(&format!("- **Date:** {}\n", meta.date));
    out.push_str(&format!(
        "- **Machine:** {}; load average at start {}\n",
        meta.machine.describe(),
        meta.machine.load_average
    ));
    out.push_str(&format!("- **Commit:** `{}`\n", meta.commit));
    match &meta.outer_command {
        Some(outer) => out.push_str(&format!(
            "- **Command:** `{outer}` (which ran `{}`)\n",
            meta.command
        )),
        None => out.push_str(&format!("- **Command:** `{}`\n", meta.command)),
    }
    for line in &section.settings {
        out.push_str(&format!("- {line}\n"));
    }
    out.push('\n');
    out.push_str(&section.table.markdown());
    out.push('\n');
    if !section.curves.is_empty() {
        out.push_str(&format!(
            "![`{0}`: throughput and p99 by concurrent connections]({1})\n\n",
            section.scenario,
            crate::charts::chart_name(section.scenario)
        ));
    }
    if !section.verdicts.is_empty() {
        out.push_str("**Budget (DESIGN.md §7)**\n\n");
        for verdict in &section.verdicts {
            out.push_str(&verdict.markdown());
            out.push('\n');
        }
        out.push('\n');
    }
    if !section.design.is_empty() {
        out.push_str("**How it is measured**\n\n");
        for paragraph in &section.design {
            out.push_str(&format!("- {paragraph}\n"));
        }
        out.push('\n');
    }
    if !section.notes.is_empty() {
        out.push_str("**Notes**\n\n");
        for note in &section.notes {
            out.push_str(&format!("- {note}\n"));
        }
        out.push('\n');
    }
    out.push_str(&end_marker(section.scenario));
    out.push('\n');
    out
}

/// `existing` with `scenario`'s section replaced by `rendered`; a new section goes before the
/// first section of a scenario that comes after it in `order`, else at the end.
pub fn merge(existing: &str, scenario: &str, rendered: &str, order: &[&str]) -> String {
    let begin = begin_marker(scenario);
    let end = end_marker(scenario);
    let base = if existing.trim().is_empty() {
        PREAMBLE.to_owned()
    } else {
        existing.to_owned()
    };
    if let Some(start) = base.find(&begin)
        && let Some(stop) = base[start..].find(&end).map(|i| start + i + end.len())
    {
        let after = base[stop..].strip_prefix('\n').unwrap_or(&base[stop..]);
        return format!("{}{rendered}{after}", &base[..start]);
    }
    let later = order
        .iter()
        .skip_while(|s| **s != scenario)
        .skip(1)
        .filter_map(|s| base.find(&begin_marker(s)))
        .min();
    if let Some(at) = later {
        return format!("{}{rendered}\n{}", &base[..at], &base[at..]);
    }
    let mut out = base.trim_end().to_owned();
    out.push_str("\n\n");
    out.push_str(rendered);
    out
}

/// Writes `section` into the results file at `path` (sections kept in `order`).
pub fn update_file(path: &Path, section: &Section, meta: &RunMeta, order: &[&str]) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    let merged = merge(&existing, section.scenario, &render(section, meta), order);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, merged).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(scenario: &'static str, cell: &str) -> Section {
        let mut table = Table::new(&["target", "req/s"]);
        table.row(vec!["direct".into(), cell.into()]);
        Section {
            scenario,
            title: "t".into(),
            settings: vec!["64 connections".into()],
            design: vec!["how".into()],
            table,
            verdicts: vec![Verdict {
                mark: Mark::Pass,
                text: "ratio 0.95 (budget ≥ 0.9)".into(),
            }],
            notes: vec![],
            json: serde_json::Value::Null,
            curves: vec![],
        }
    }

    fn meta() -> RunMeta {
        RunMeta {
            date: "2026-01-01 00:00 UTC".into(),
            machine: Machine::read(),
            commit: "abc".into(),
            outer_command: Some("cargo xtask bench gateway".into()),
            command: "lomash-bench gateway".into(),
        }
    }

    #[test]
    fn a_section_is_replaced_and_the_others_are_kept() {
        let meta = meta();
        let order = ["events", "gateway", "products"];
        let put = |base: &str, scenario: &'static str, cell: &str| {
            merge(
                base,
                scenario,
                &render(&section(scenario, cell), &meta),
                &order,
            )
        };
        let first = put("", "gateway", "100");
        assert!(first.starts_with("# Benchmark results"));
        // `events` comes first in the order, so it goes before `gateway`.
        let both = put(&first, "events", "7");
        let replaced = put(&both, "gateway", "200");
        assert!(replaced.contains("| direct | 200 |"));
        assert!(!replaced.contains("| direct | 100 |"));
        assert!(replaced.contains("| direct | 7 |"));
        assert_eq!(replaced.matches("bench:gateway:begin").count(), 1);
        let gateway_at = replaced.find("bench:gateway:begin").unwrap_or(0);
        let events_at = replaced.find("bench:events:begin").unwrap_or(usize::MAX);
        assert!(events_at < gateway_at);
        // A later scenario goes at the end.
        let three = put(&replaced, "products", "1");
        assert!(three.find("bench:products:begin") > three.find("bench:gateway:end"));
        // Replacing again changes nothing else.
        assert_eq!(put(&replaced, "gateway", "200"), replaced);
    }

    #[test]
    fn curves_are_sorted_by_connections() {
        let at = |connections: usize, rps: f64| crate::load::LoadResult {
            connections,
            rps,
            p99_ms: Some(rps / 100.0),
            ..Default::default()
        };
        let curve = Curve::of("cached list", &[at(256, 3.0), at(10, 1.0), at(64, 2.0)]);
        assert_eq!(curve.label, "cached list");
        let connections: Vec<usize> = curve.points.iter().map(|p| p.connections).collect();
        assert_eq!(connections, [10, 64, 256]);
        assert_eq!(curve.points[1].p99_ms, Some(0.02));
    }

    #[test]
    fn tables_render() {
        let mut table = Table::new(&["a", "b"]);
        table.row(vec!["x|y".into(), "1".into()]);
        assert_eq!(
            table.markdown(),
            "| a | b |\n| --- | --- |\n| x\\|y | 1 |\n"
        );
        assert!(table.plain().contains("x|y"));
        let mut with_curves = section("gateway", "1");
        let text = render(&with_curves, &meta());
        assert!(text.contains("**PASS** — ratio 0.95"));
        assert!(!text.contains("charts/gateway.svg"));
        with_curves.curves.push(Curve::default());
        let charted = render(&with_curves, &meta());
        assert!(charted.contains(
            "![`gateway`: throughput and p99 by concurrent connections](charts/gateway.svg)"
        ));
        assert!(text.contains("`cargo xtask bench gateway` (which ran `lomash-bench gateway`)"));
    }
}
