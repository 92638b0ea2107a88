//! Ctrl-C (SIGINT) and SIGTERM tear down the lab being built or measured
//! before the process exits, so an interrupted run leaves nothing behind.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::lab::{ACTIVE_RUN, BUILD_LOCK};
use crate::teardown::teardown_run;

/// Starts the thread that waits for the signals.
pub fn install() {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot watch signals ({e}); an interrupted run needs `dplab cleanup`");
            return;
        }
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            // Wait for a build step in progress to finish, so the journal
            // names everything that exists.
            let _guard = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let run = ACTIVE_RUN.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(run) = run {
                let _ = crate::terminal::bars().clear();
                log::warn!("interrupted: tearing down run {run}");
                let report = teardown_run(&run);
                for e in &report.errors {
                    log::error!("teardown: {e}");
                }
            }
            std::process::exit(128 + signal);
        }
    });
}
