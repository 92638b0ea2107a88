//! Other dplab labs alive on this machine, decided as teardown decides it:
//! a live dplab process holds the run's owner lock, or `dplab up` left the
//! lab running on purpose (and its namespaces are still there).

use crate::ledger::{self, Entry};
use crate::names::RunId;

#[derive(Debug, Clone, PartialEq)]
pub struct OtherLab {
    pub run: RunId,
    /// The dplab process that owns it; None for a lab `dplab up` left.
    pub owner_pid: Option<u32>,
}

impl std::fmt::Display for OtherLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.owner_pid {
            Some(pid) => write!(f, "{} of dplab process {pid}", self.run),
            None => write!(
                f,
                "{} left running by `dplab up`; `dplab down {}` removes it",
                self.run, self.run
            ),
        }
    }
}

/// Labs alive now that process `own_pid` did not make.
pub fn other_labs(own_pid: u32) -> Vec<OtherLab> {
    ledger::journaled_runs()
        .into_iter()
        .filter_map(|run| {
            let journal = ledger::read_journal(&run).ok()?;
            let owner = journal.iter().find_map(|e| match e {
                Entry::Run { owner_pid, .. } => Some(*owner_pid),
                _ => None,
            });
            if owner == Some(own_pid) {
                return None;
            }
            if ledger::is_owned_by_live_process(&run) {
                return Some(OtherLab {
                    run,
                    owner_pid: owner,
                });
            }
            let left_up = journal.contains(&Entry::Detached)
                && !crate::netns::list_with_prefix(&run.prefix()).is_empty();
            left_up.then_some(OtherLab {
                run,
                owner_pid: None,
            })
        })
        .collect()
}
