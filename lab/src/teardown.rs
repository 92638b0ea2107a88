//! Teardown from the journal: processes, tc filters and qdiscs and eBPF
//! pins first (newest first), then cgroups (once empty), then namespaces
//! (which take their links, routes, iptables rules and sysctls
//! with them), in reverse order of creation. It goes on past errors and
//! reports them all; what is already gone counts as removed.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroup;
use crate::ledger::{self, Entry};
use crate::names::RunId;
use crate::netns;

/// What a teardown removed and what it could not.
#[derive(Debug, Default)]
pub struct TeardownReport {
    pub removed: Vec<String>,
    /// What was found but left on purpose (`dplab cleanup` keeps labs
    /// that `dplab up` left running).
    pub kept: Vec<String>,
    pub errors: Vec<String>,
    pub elapsed_ms: f64,
}

impl TeardownReport {
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    fn merge(&mut self, other: TeardownReport) {
        self.removed.extend(other.removed);
        self.kept.extend(other.kept);
        self.errors.extend(other.errors);
    }
}

/// Removes everything the run's journal names, then the journal itself.
pub fn teardown_run(run: &RunId) -> TeardownReport {
    let start = Instant::now();
    let mut report = TeardownReport::default();
    let entries = match ledger::read_journal(run) {
        Ok(e) => e,
        Err(e) => {
            report.errors.push(e.to_string());
            Vec::new()
        }
    };
    let ended: Vec<u32> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::ProcessEnded { pid } => Some(*pid),
            _ => None,
        })
        .collect();
    for entry in entries.iter().rev() {
        match entry {
            Entry::Process {
                pid,
                start_time,
                what,
            } if !ended.contains(pid) => match end_process(*pid, *start_time) {
                Ok(true) => report.removed.push(format!("process {pid} ({what})")),
                Ok(false) => {}
                Err(e) => report.errors.push(format!("process {pid} ({what}): {e}")),
            },
            Entry::BpfPins { path } => match remove_dir(path) {
                Ok(true) => report.removed.push(format!("bpf pins {}", path.display())),
                Ok(false) => {}
                Err(e) => report
                    .errors
                    .push(format!("bpf pins {}: {e}", path.display())),
            },
            Entry::TcFilter {
                netns,
                ifname,
                direction,
                priority,
                handle,
            } => match crate::ebpf::detach_filter(netns, ifname, direction, *priority, *handle) {
                Ok(true) => report
                    .removed
                    .push(format!("tc filter {netns}/{ifname} {direction}")),
                Ok(false) => {}
                Err(e) => report.errors.push(e.to_string()),
            },
            Entry::TcQdisc { netns, ifname } => match crate::ebpf::delete_clsact(netns, ifname) {
                Ok(true) => report
                    .removed
                    .push(format!("clsact qdisc {netns}/{ifname}")),
                Ok(false) => {}
                Err(e) => report.errors.push(e.to_string()),
            },
            _ => {}
        }
    }
    for entry in entries.iter().rev() {
        if let Entry::Cgroup { path } = entry {
            remove_cgroup(run, path, &mut report);
        }
    }
    // Started in reverse order of creation on a few threads at once:
    // namespaces do not depend on each other, and deleting a thousand one
    // by one took twice as long (measured: ~430 ms against ~210 ms).
    let names: Vec<String> = entries
        .iter()
        .rev()
        .filter_map(|e| match e {
            Entry::Netns { name } if netns::exists(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    for (name, result) in names.iter().zip(netns::pool::delete_all(&names)) {
        match result {
            Ok(()) => report.removed.push(format!("netns {name}")),
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    // Anything named after the run that the journal missed (a crash between
    // creating and journalling cannot happen, but a lost journal can).
    report.merge(remove_by_prefix(run));
    if report.errors.is_empty() {
        if let Err(e) = remove_dir(&run.state_dir()) {
            report
                .errors
                .push(format!("state {}: {e}", run.state_dir().display()));
        }
    }
    report.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    report
}

/// Removes the run's namespaces, cgroups and bpffs folder found by name
/// alone.
fn remove_by_prefix(run: &RunId) -> TeardownReport {
    let mut report = TeardownReport::default();
    let names = netns::list_with_prefix(&run.prefix());
    for (name, result) in names.iter().zip(netns::pool::delete_all(&names)) {
        match result {
            Ok(()) => report.removed.push(format!("netns {name}")),
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    if let Some(lab) = cgroup::lab_dir(run).filter(|d| d.exists()) {
        for dir in cgroup::tree::children(&lab).into_iter().chain([lab]) {
            remove_cgroup(run, &dir, &mut report);
        }
    }
    let pins = run.bpffs_dir();
    match remove_dir(&pins) {
        Ok(true) => report.removed.push(format!("bpf pins {}", pins.display())),
        Ok(false) => {}
        Err(e) => report
            .errors
            .push(format!("bpf pins {}: {e}", pins.display())),
    }
    report
}

/// Removes one of the run's cgroup folders: dplab itself leaves it if a
/// sample was interrupted inside, whatever still runs in it (a server, or a
/// child of a program `dplab exec` started) is ended by PID, then the empty
/// folder goes.
fn remove_cgroup(run: &RunId, path: &std::path::Path, report: &mut TeardownReport) {
    if !cgroup::is_of_run(path, run) {
        let e = cgroup::CgroupError::Foreign {
            path: path.to_path_buf(),
            run: run.to_string(),
        };
        return report.errors.push(e.to_string());
    }
    if let Err(e) = cgroup::join::leave_if_inside(path) {
        return report.errors.push(e.to_string());
    }
    let pids = match cgroup::procs(path) {
        Ok(pids) => pids,
        Err(e) => return report.errors.push(e.to_string()),
    };
    for pid in pids {
        let Some(start_time) = process_start_time(pid) else {
            continue;
        };
        match end_process(pid, start_time) {
            Ok(true) => report
                .removed
                .push(format!("process {pid} (in cgroup {})", path.display())),
            Ok(false) => {}
            Err(e) => report
                .errors
                .push(format!("process {pid} in cgroup {}: {e}", path.display())),
        }
    }
    match cgroup::tree::remove(path) {
        Ok(true) => report.removed.push(format!("cgroup {}", path.display())),
        Ok(false) => {}
        Err(e) => report.errors.push(e.to_string()),
    }
}

fn remove_dir(path: &std::path::Path) -> std::io::Result<bool> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Start time of a process in clock ticks since boot (field 22 of
/// /proc/PID/stat), to tell our process from a later one with the same PID.
pub fn process_start_time(pid: u32) -> Option<u64> {
    crate::pid_stat::PidStat::of_process(pid)?.start_time()
}

/// Ends process `pid` if it is still the one we started: SIGTERM, then
/// SIGKILL after a second. Returns whether it was running.
pub fn end_process(pid: u32, start_time: u64) -> Result<bool, String> {
    if process_start_time(pid) != Some(start_time) {
        return Ok(false);
    }
    let target = Pid::from_raw(pid as i32);
    kill(target, Signal::SIGTERM).map_err(|e| format!("SIGTERM: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        // Reap it if it is our child; otherwise just watch /proc.
        let _ = nix::sys::wait::waitpid(target, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        if process_start_time(pid) != Some(start_time) {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(target, Signal::SIGKILL).map_err(|e| format!("SIGKILL: {e}"))?;
    let _ = nix::sys::wait::waitpid(target, None);
    Ok(true)
}

/// `dplab cleanup`: tears down every run that no live dplab process owns
/// and that `dplab up` did not leave running on purpose (a crash, SIGKILL,
/// a failed teardown), and any namespace or pin folder with a dplab run
/// prefix but no journal. Running labs of other dplab users are untouched.
pub fn cleanup_all() -> TeardownReport {
    let start = Instant::now();
    let mut report = TeardownReport::default();
    let mut runs = ledger::journaled_runs();
    for name in netns::list_with_prefix(crate::names::PREFIX) {
        if let Some(run) = run_of_netns(&name) {
            runs.push(run);
        }
    }
    runs.extend(cgroup::lab_runs());
    if let Ok(dir) = std::fs::read_dir(crate::names::BPFFS_DIR) {
        runs.extend(
            dir.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| RunId::parse(&n)),
        );
    }
    runs.sort();
    runs.dedup();
    for run in runs {
        if ledger::is_owned_by_live_process(&run) {
            continue;
        }
        if ledger::is_detached(&run) {
            report.kept.push(format!(
                "lab {run}, left running by `dplab up` (remove it with `dplab down {run}`)"
            ));
            continue;
        }
        report.merge(teardown_run(&run));
    }
    report.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    report
}

/// The run a namespace belongs to, from its name (`dl3f9a-node1`).
pub fn run_of_netns(name: &str) -> Option<RunId> {
    let (head, _) = name.split_once('-')?;
    RunId::parse(head).filter(|_| head.starts_with(crate::names::PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_of_netns_reads_the_prefix() {
        assert_eq!(run_of_netns("dl3f9a-node1").unwrap().as_str(), "3f9a");
        assert!(run_of_netns("3f9a-node1").is_none());
        assert!(run_of_netns("dlzzzz-node1").is_none());
        assert!(run_of_netns("other").is_none());
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(process_start_time(std::process::id()).is_some());
    }
}
