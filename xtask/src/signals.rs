//! SIGINT/SIGTERM/SIGHUP handling: the handler only counts; long loops poll [`count`] and shut
//! their children down themselves. A second signal makes shutdown skip the grace period.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};

static RECEIVED: AtomicUsize = AtomicUsize::new(0);

/// Installs the handler (once per process; later calls are no-ops).
pub fn install() -> Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                RECEIVED.fetch_add(1, Ordering::SeqCst);
            })
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
        .context("cannot install the Ctrl-C/SIGTERM handler")
}

/// How many termination signals have arrived.
pub fn count() -> usize {
    RECEIVED.load(Ordering::SeqCst)
}

/// Whether any termination signal has arrived.
pub fn interrupted() -> bool {
    count() > 0
}
