//! `dplab exec RUN POD -- CMD ARGS...`: runs a program inside a pod (or
//! node) of a lab left running by `dplab up`: in its network namespace and,
//! when the lab has cgroups (the socket-lb proxy), in its cgroup, so the
//! program's sockets go through the lab's service hooks (`ip netns exec`
//! enters the namespace only). Stdio is inherited; dplab exits with the
//! program's status, 128 + the signal's number when a signal ended it.
//!
//! The program is journalled, so `dplab down` ends it if it still runs.
//! Signals that other processes send to dplab (SIGTERM, SIGHUP, SIGINT,
//! SIGQUIT) are relayed to it; those the terminal sends (Ctrl-C) already
//! reach it directly, as it shares dplab's process group, and are not
//! relayed twice.

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithRawSiginfo;
use signal_hook::iterator::SignalsInfo;

use crate::cli::{bad_input, Failure};
use crate::ledger::{Entry, Ledger};
use crate::teardown::process_start_time;

/// Exit statuses of a program that could not be started, as shells use them.
const NOT_EXECUTABLE: u8 = 126;
const NOT_FOUND: u8 = 127;

pub fn run(run: &str, pod: &str, command: &[String]) -> Result<u8, Failure> {
    super::require_root()?;
    let lab = super::lifecycle::find_running(run)?;
    let known = lab.plan.pod(pod).is_some() || lab.plan.nodes.iter().any(|n| n.name == pod);
    if !known {
        let pods: Vec<&str> = lab.plan.pods.iter().map(|p| p.name.as_str()).collect();
        return Err(bad_input(format!(
            "run {}: no pod or node \"{pod}\" (pods: {})",
            lab.run,
            pods.join(", ")
        )));
    }
    let Some((program, args)) = command.split_first() else {
        return Err(bad_input("name the program to run after `--`"));
    };
    let ns = lab.run.netns(pod);
    let mut cmd = crate::netns::command_in(&ns, program).context("opening the pod's namespace")?;
    cmd.args(args);
    if let Some(dir) = crate::cgroup::of_netns(&ns) {
        crate::cgroup::join::join_on_exec(&mut cmd, &dir).context("preparing the pod's cgroup")?;
    }
    let ledger = Ledger::open(&lab.run).context("opening the lab's journal")?;
    let relay = Relay::start().context("watching signals")?;
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            relay.stop();
            eprintln!("dplab: exec: {program}: {e}");
            return match e.kind() {
                std::io::ErrorKind::NotFound => Ok(NOT_FOUND),
                std::io::ErrorKind::PermissionDenied => Ok(NOT_EXECUTABLE),
                _ => Err(Failure::Error(
                    anyhow::Error::new(e).context(format!("starting {program} in {ns}")),
                )),
            };
        }
    };
    let pid = child.id();
    let journalled = ledger.record(&Entry::Process {
        pid,
        start_time: process_start_time(pid).unwrap_or(0),
        what: format!("dplab exec {pod}: {program}"),
    });
    if let Err(e) = journalled {
        eprintln!("dplab: warning: cannot journal process {pid}: {e}");
    }
    relay.running(pid);
    // Wait without reaping, so the PID stays the program's while the relay
    // may still signal it; then stop relaying and reap.
    let exited = loop {
        match waitid(
            Id::Pid(Pid::from_raw(pid as i32)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) {
            Err(nix::Error::EINTR) => continue,
            other => break other,
        }
    };
    relay.stop();
    let status = child.wait().context("waiting for the program")?;
    exited.context("waiting for the program")?;
    if let Err(e) = ledger.record(&Entry::ProcessEnded { pid }) {
        eprintln!("dplab: warning: cannot journal the end of process {pid}: {e}");
    }
    Ok(exit_code(status))
}

/// The program's exit code, or 128 + the signal that ended it.
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.saturating_add(signal as u8),
        (None, None) => 1,
    }
}

/// What the relay may signal.
enum Target {
    /// Not started yet: the first relayable signal waits for it.
    Starting(Option<Signal>),
    Running(Pid),
    Done,
}

/// Relays signals sent to dplab to the program.
struct Relay {
    target: Arc<Mutex<Target>>,
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
}

impl Relay {
    fn start() -> std::io::Result<Relay> {
        let mut signals = SignalsInfo::<WithRawSiginfo>::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])?;
        let handle = signals.handle();
        let target = Arc::new(Mutex::new(Target::Starting(None)));
        let shared = Arc::clone(&target);
        let thread = std::thread::spawn(move || {
            for info in signals.forever() {
                // The terminal's signals (SI_KERNEL) went to the whole
                // process group, the program included.
                if info.si_code == libc::SI_KERNEL {
                    continue;
                }
                let Ok(signal) = Signal::try_from(info.si_signo) else {
                    continue;
                };
                let mut target = shared.lock().unwrap_or_else(|p| p.into_inner());
                match &mut *target {
                    Target::Starting(pending) => *pending = Some(signal),
                    Target::Running(pid) => {
                        let _ = kill(*pid, signal);
                    }
                    Target::Done => {}
                }
            }
        });
        Ok(Relay {
            target,
            handle,
            thread,
        })
    }

    /// The program runs as `pid`: relay to it from now on, starting with a
    /// signal that came while it was being started.
    fn running(&self, pid: u32) {
        let pid = Pid::from_raw(pid as i32);
        let mut target = self.target.lock().unwrap_or_else(|p| p.into_inner());
        if let Target::Starting(Some(signal)) = *target {
            let _ = kill(pid, signal);
        }
        *target = Target::Running(pid);
    }

    /// Stops relaying (before the program's PID is reaped and may be reused).
    fn stop(self) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = Target::Done;
        self.handle.close();
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_codes_pass_through_and_signals_add_128() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}
