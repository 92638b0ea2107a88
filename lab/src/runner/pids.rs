//! Journals the external processes a workload starts (iperf3 -s, qperf), so
//! that teardown and `dplab cleanup` end them by PID.

use crate::ledger::{Entry, Ledger};
use crate::teardown::process_start_time;
use crate::workload::PidRecorder;

pub struct JournalPids<'a>(pub &'a Ledger);

impl PidRecorder for JournalPids<'_> {
    fn spawned(&self, pid: u32, what: &str) {
        let entry = Entry::Process {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            what: what.to_string(),
        };
        if let Err(e) = self.0.record(&entry) {
            log::warn!("cannot journal process {pid}: {e}");
        }
    }

    fn reaped(&self, pid: u32) {
        if let Err(e) = self.0.record(&Entry::ProcessEnded { pid }) {
            log::warn!("cannot journal end of process {pid}: {e}");
        }
    }
}
