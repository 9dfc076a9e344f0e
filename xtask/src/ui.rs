//! Terminal output: indicatif progress on a terminal, plain lines under CI (`CI=true`) or when
//! stderr is not a terminal. Every step ends with one final line, the same in both modes.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The process-wide output.
pub struct Ui {
    multi: MultiProgress,
    plain: bool,
}

/// The shared [`Ui`].
pub fn ui() -> &'static Ui {
    static UI: OnceLock<Ui> = OnceLock::new();
    UI.get_or_init(|| {
        let plain = is_ci() || !console::Term::stderr().is_term();
        let multi = if plain {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        Ui { multi, plain }
    })
}

/// Whether we run under CI (`CI` set to anything but empty, `0` or `false`).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

impl Ui {
    /// Prints one line on stdout without tearing any progress bar.
    pub fn println(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        self.multi.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
    }

    /// An informational line.
    pub fn info(&self, line: impl AsRef<str>) {
        self.println(format!("{} {}", style("•").cyan(), line.as_ref()));
    }

    /// A warning line.
    pub fn warn(&self, line: impl AsRef<str>) {
        self.println(format!("{} {}", style("!").yellow().bold(), line.as_ref()));
    }

    /// Starts a step of unknown length (a spinner).
    pub fn step(&self, label: &str) -> Step {
        self.start(label, None)
    }

    /// Starts a step of `len` units (a bar).
    pub fn bar(&self, label: &str, len: u64) -> Step {
        self.start(label, Some(len))
    }

    fn start(&self, label: &str, len: Option<u64>) -> Step {
        if self.plain {
            self.println(format!("==> {label}"));
            return Step {
                bar: ProgressBar::hidden(),
                label: label.to_owned(),
                started: Instant::now(),
                done: false,
            };
        }
        let (bar, template) = match len {
            Some(len) => (
                ProgressBar::new(len),
                "{spinner:.cyan} {prefix:.bold} [{bar:28.cyan/blue}] {pos}/{len} {wide_msg:.dim} {elapsed}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{spinner:.cyan} {prefix:.bold} {wide_msg:.dim} {elapsed}",
            ),
        };
        let bar = self.multi.add(bar);
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Step {
            bar,
            label: label.to_owned(),
            started: Instant::now(),
            done: false,
        }
    }
}

/// One long-running step with its progress indicator.
pub struct Step {
    bar: ProgressBar,
    label: String,
    started: Instant,
    done: bool,
}

impl Step {
    /// Replaces the detail shown after the label (terminal only).
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Sets the bar position.
    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
    }

    /// Changes the bar length.
    pub fn set_length(&self, len: u64) {
        self.bar.set_length(len);
    }

    /// Advances the bar.
    pub fn inc(&self, by: u64) {
        self.bar.inc(by);
    }

    /// Ends the step successfully with a final line.
    pub fn finish(mut self, summary: impl AsRef<str>) {
        self.end(true, summary.as_ref());
    }

    /// Ends the step as failed with a final line.
    pub fn fail(mut self, summary: impl AsRef<str>) {
        self.end(false, summary.as_ref());
    }

    fn end(&mut self, ok: bool, summary: &str) {
        self.done = true;
        self.bar.finish_and_clear();
        let mark = if ok {
            style("✔").green().bold()
        } else {
            style("✘").red().bold()
        };
        let secs = self.started.elapsed().as_secs_f32();
        let summary = if summary.is_empty() {
            String::new()
        } else {
            format!(": {summary}")
        };
        ui().println(format!(
            "{mark} {}{summary} {}",
            self.label,
            style(format!("({secs:.1}s)")).dim()
        ));
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.done {
            self.bar.finish_and_clear();
        }
    }
}
