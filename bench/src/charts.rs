//! `bench/results.json` and `bench/charts/<scenario>.svg`: every scenario's last recorded run
//! (its metadata, raw figures and throughput/p99 curves) in one file that a run merges its own
//! scenario into, and the charts drawn from that file — so rerunning one scenario redraws its
//! chart and keeps everyone else's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::report::{Curve, Point};

/// One scenario's last run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    /// UTC date and time.
    pub date: String,
    /// The machine.
    pub machine: String,
    /// The commit.
    pub commit: String,
    /// The command that ran it.
    pub command: String,
    /// Throughput and p99 by connection count (empty: nothing to chart).
    #[serde(default)]
    pub curves: Vec<Curve>,
    /// The scenario's raw figures.
    #[serde(default)]
    pub results: serde_json::Value,
}

/// Every scenario's last run, by name.
pub type Results = BTreeMap<String, Recorded>;

/// Reads the results file; a missing file is no results.
pub fn load(path: &Path) -> Result<Results> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("cannot read {}", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Results::new()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Puts `recorded` as `scenario`'s run into the results file at `path` (the others kept);
/// returns all of them.
pub fn record(path: &Path, scenario: &str, recorded: Recorded) -> Result<Results> {
    let mut results = load(path)?;
    results.insert(scenario.to_owned(), recorded);
    let text = serde_json::to_string_pretty(&results)?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(results)
}

/// The chart's file name for `scenario`, relative to the results file's directory.
pub fn chart_name(scenario: &str) -> String {
    format!("charts/{scenario}.svg")
}

/// Writes `<dir>/charts/<scenario>.svg` for every scenario of `results` with curves; returns
/// the files written.
pub fn write_all(dir: &Path, results: &Results) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (scenario, recorded) in results {
        if recorded.curves.iter().all(|c| c.points.is_empty()) {
            continue;
        }
        let path = dir.join(chart_name(scenario));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let svg = svg(scenario, &recorded.curves)?;
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn draw_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the chart: {error:?}")
}

/// One panel: a value of each point against its connection count.
struct Panel {
    title: &'static str,
    value: fn(&Point) -> Option<f64>,
}

const PANELS: [Panel; 2] = [
    Panel {
        title: "throughput (per second)",
        value: |p| Some(p.rps),
    },
    Panel {
        title: "p99 latency (ms)",
        value: |p| p.p99_ms,
    },
];

/// Two panels side by side — throughput and p99 against connections — with a line per curve.
pub fn svg(scenario: &str, curves: &[Curve]) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1000, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let root = root
            .titled(
                &format!("{scenario}: by concurrent connections"),
                ("sans-serif", 18),
            )
            .map_err(draw_error)?;
        let halves = root.split_evenly((1, 2));
        for (area, panel) in halves.iter().zip(PANELS) {
            let values = |curve: &Curve| -> Vec<(f64, f64)> {
                curve
                    .points
                    .iter()
                    .filter_map(|p| (panel.value)(p).map(|v| (p.connections as f64, v)))
                    .collect()
            };
            let max_x = curves
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.connections as f64))
                .fold(1.0, f64::max);
            let max_y = curves
                .iter()
                .flat_map(values)
                .map(|(_, y)| y)
                .fold(0.0, f64::max);
            let mut chart = ChartBuilder::on(area)
                .caption(panel.title, ("sans-serif", 15))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..max_x * 1.05, 0.0..(max_y * 1.15).max(1e-3))
                .map_err(draw_error)?;
            chart
                .configure_mesh()
                .x_desc("connections")
                .light_line_style(WHITE)
                .draw()
                .map_err(draw_error)?;
            for (i, curve) in curves.iter().enumerate() {
                let colour = Palette99::pick(i).to_rgba();
                let points = values(curve);
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                    .map_err(draw_error)?
                    .label(curve.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                    });
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|point| Circle::new(point, 3, colour.filled())),
                    )
                    .map_err(draw_error)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 11))
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(label: &str, points: &[(usize, f64, Option<f64>)]) -> Curve {
        Curve {
            label: label.to_owned(),
            points: points
                .iter()
                .map(|&(connections, rps, p99_ms)| Point {
                    connections,
                    rps,
                    p99_ms,
                })
                .collect(),
        }
    }

    fn recorded(date: &str, curves: Vec<Curve>) -> Recorded {
        Recorded {
            date: date.to_owned(),
            machine: "2 CPUs".to_owned(),
            commit: "abc".to_owned(),
            command: "lomash-bench".to_owned(),
            curves,
            results: serde_json::json!({"runs": []}),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn a_rerun_replaces_its_scenario_and_keeps_the_others() {
        let dir = scratch("results");
        let path = dir.join("results.json");
        assert!(load(&path).expect("missing is empty").is_empty());
        let gateway = curve("through our gateway", &[(10, 9000.0, Some(2.0))]);
        record(&path, "gateway", recorded("d1", vec![gateway.clone()])).expect("records");
        record(&path, "products", recorded("d1", vec![])).expect("records");
        let again = record(&path, "products", recorded("d2", vec![])).expect("records");
        assert_eq!(again.len(), 2);
        assert_eq!(again["products"].date, "d2");
        assert_eq!(again["gateway"].curves, vec![gateway]);
        // What is on disk is what was returned.
        assert_eq!(load(&path).expect("reads"), again);
        std::fs::write(&path, "not json").expect("writes");
        assert!(load(&path).is_err());
        assert!(record(&path, "gateway", Recorded::default()).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn charts_are_drawn_for_scenarios_with_curves() {
        let dir = scratch("charts");
        let mut results = Results::new();
        results.insert(
            "gateway".to_owned(),
            recorded(
                "d",
                vec![
                    curve(
                        "direct",
                        &[(10, 50_000.0, Some(0.4)), (64, 120_000.0, Some(1.1))],
                    ),
                    curve(
                        "through our gateway",
                        &[(10, 9_000.0, Some(2.9)), (64, 9_800.0, None)],
                    ),
                ],
            ),
        );
        results.insert("events".to_owned(), recorded("d", vec![]));
        let written = write_all(&dir, &results).expect("draws");
        assert_eq!(written, vec![dir.join("charts/gateway.svg")]);
        let svg = std::fs::read_to_string(&written[0]).expect("reads");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("through our gateway"));
        assert!(svg.contains("p99 latency (ms)"));
        assert!(svg.contains("connections"));
        assert!(svg.contains("<polyline") || svg.contains("<path"));
        assert!(!dir.join("charts/events.svg").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
