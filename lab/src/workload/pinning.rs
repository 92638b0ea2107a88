//! `--cpus client=0,server=1`: each side of a measurement on a CPU of its
//! own, so that runs compare like with like (left alone, the scheduler
//! moves client and server between CPUs and onto the one busy with
//! softirqs). Built-in generators pin their worker threads; external tools
//! are pinned between fork and exec, so every thread they start inherits it.

use std::fmt;
use std::str::FromStr;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::WorkloadError;

/// The CPU of each side; None leaves that side to the scheduler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuPinning {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<usize>,
}

impl CpuPinning {
    pub fn is_set(&self) -> bool {
        self.client.is_some() || self.server.is_some()
    }
}

impl fmt::Display for CpuPinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sides: Vec<String> = [("client", self.client), ("server", self.server)]
            .into_iter()
            .filter_map(|(side, cpu)| cpu.map(|c| format!("{side}={c}")))
            .collect();
        f.write_str(&sides.join(","))
    }
}

/// Parses `client=N,server=M` (either may be left out) and checks that
/// this process may run on those CPUs.
impl FromStr for CpuPinning {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut pinning = CpuPinning::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (side, cpu) = part
                .split_once('=')
                .ok_or_else(|| format!("\"{part}\": expected client=N or server=N"))?;
            let cpu: usize = cpu
                .trim()
                .parse()
                .map_err(|_| format!("\"{part}\": {cpu:?} is not a CPU number"))?;
            let slot = match side.trim() {
                "client" => &mut pinning.client,
                "server" => &mut pinning.server,
                other => return Err(format!("\"{other}\": the sides are client and server")),
            };
            if slot.replace(cpu).is_some() {
                return Err(format!("{} named twice", side.trim()));
            }
            let allowed = allowed_cpus();
            if !allowed.contains(&cpu) {
                return Err(format!(
                    "CPU {cpu} is not one this process may run on ({})",
                    allowed
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if !pinning.is_set() {
            return Err("name client=N, server=N or both".into());
        }
        Ok(pinning)
    }
}

/// CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn only(cpu: usize) -> Result<CpuSet, WorkloadError> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .map_err(|e| WorkloadError::BadParams(format!("CPU {cpu}: {e}")))?;
    Ok(set)
}

/// Pins the calling thread to `cpu`; threads it starts later inherit it.
pub fn pin_current_thread(cpu: usize) -> Result<(), WorkloadError> {
    // Pid 0 is the calling thread, not the whole process.
    sched_setaffinity(Pid::from_raw(0), &only(cpu)?)
        .map_err(|e| WorkloadError::BadParams(format!("pinning a thread to CPU {cpu}: {e}")))
}

/// Makes `cmd`'s process start pinned to `cpu`, before it runs any code of
/// its own.
pub fn pin_command(cmd: &mut std::process::Command, cpu: usize) -> Result<(), WorkloadError> {
    use std::os::unix::process::CommandExt;
    let set = only(cpu)?;
    // SAFETY: sched_setaffinity is a plain syscall on a set built before
    // the fork; nothing is allocated between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)
        });
    }
    Ok(())
}

/// Pins the calling thread for as long as it lives, then gives it back the
/// CPUs it had (for samples measured on the caller's own thread).
pub struct PinnedHere {
    before: Option<CpuSet>,
}

impl PinnedHere {
    pub fn new(cpu: Option<usize>) -> Result<PinnedHere, WorkloadError> {
        let Some(cpu) = cpu else {
            return Ok(PinnedHere { before: None });
        };
        let before = sched_getaffinity(Pid::from_raw(0))
            .map_err(|e| WorkloadError::BadParams(format!("reading CPU affinity: {e}")))?;
        pin_current_thread(cpu)?;
        Ok(PinnedHere {
            before: Some(before),
        })
    }
}

impl Drop for PinnedHere {
    fn drop(&mut self) {
        if let Some(before) = &self.before {
            // Failing leaves the thread pinned, which only slows later work.
            let _ = sched_setaffinity(Pid::from_raw(0), before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_sides_and_rejects_nonsense() {
        let cpu = allowed_cpus()[0];
        let p: CpuPinning = format!("client={cpu},server={cpu}").parse().unwrap();
        assert_eq!((p.client, p.server), (Some(cpu), Some(cpu)));
        assert_eq!(p.to_string(), format!("client={cpu},server={cpu}"));
        let p: CpuPinning = format!("server={cpu}").parse().unwrap();
        assert_eq!((p.client, p.server), (None, Some(cpu)));
        assert!("client".parse::<CpuPinning>().is_err());
        assert!("middle=0".parse::<CpuPinning>().is_err());
        assert!("client=x".parse::<CpuPinning>().is_err());
        assert!("client=0,client=0".parse::<CpuPinning>().is_err());
        assert!("".parse::<CpuPinning>().is_err());
        let err = "client=100000".parse::<CpuPinning>().unwrap_err();
        assert!(err.contains("may run on"), "{err}");
    }

    #[test]
    fn a_pinned_thread_runs_on_its_cpu_and_gets_its_cpus_back() {
        let allowed = allowed_cpus();
        let cpu = *allowed.last().unwrap();
        std::thread::spawn(move || {
            {
                let _pin = PinnedHere::new(Some(cpu)).unwrap();
                assert_eq!(allowed_cpus(), vec![cpu]);
                assert_eq!(nix::sched::sched_getcpu().unwrap(), cpu);
            }
            assert_eq!(allowed_cpus(), allowed);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_pinned_command_starts_on_its_cpu() {
        let cpu = *allowed_cpus().last().unwrap();
        let mut cmd = std::process::Command::new("grep");
        cmd.args(["Cpus_allowed_list", "/proc/self/status"]);
        pin_command(&mut cmd, cpu).unwrap();
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.split_whitespace().last(),
            Some(cpu.to_string().as_str())
        );
    }
}
