//! What else the machine is doing while dplab measures: load average, CPU
//! time of other processes, steal time, CPU frequency, other dplab labs.
//! Read from /proc and /sys; a value the kernel does not expose is None.

mod labs;
mod watch;

pub use labs::{other_labs, OtherLab};
pub use watch::Watch;

use std::time::Instant;

use crate::pid_stat::ticks_per_second;
use crate::results::conditions::MachineState;

/// Counters at one instant; CPU shares come from two of them.
#[derive(Debug, Clone)]
pub struct Reading {
    at: Instant,
    cpu: Option<CpuTicks>,
    /// CPU seconds of this process, its threads and its children (tools).
    own_s: Option<f64>,
}

impl Reading {
    pub fn now() -> Reading {
        Reading {
            at: Instant::now(),
            cpu: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|t| CpuTicks::parse(&t)),
            own_s: crate::workload::cpu::process_tree_cpu_seconds(std::process::id()),
        }
    }
}

/// The machine-wide `cpu` line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTicks {
    /// user + nice + system: time in tasks (softirq and irq apart).
    pub tasks: u64,
    pub steal: u64,
    /// Every column but guest time (already counted in user).
    pub total: u64,
}

impl CpuTicks {
    pub fn parse(proc_stat: &str) -> Option<CpuTicks> {
        let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal [guest guest_nice]
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Some(CpuTicks {
            tasks: at(0) + at(1) + at(2),
            steal: at(7),
            total: (0..8).map(at).sum(),
        })
    }
}

/// The three load averages of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut f = text.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([f.next()??, f.next()??, f.next()??])
}

/// Other processes' CPU time between two readings, in CPUs.
pub fn others_cpus(a: &Reading, b: &Reading) -> Option<f64> {
    let (ca, cb) = (a.cpu?, b.cpu?);
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let tasks_s = cb.tasks.saturating_sub(ca.tasks) as f64 / ticks_per_second();
    let own_s = b.own_s? - a.own_s?;
    // Tick granularity can make it dip below zero on a quiet machine.
    (secs > 0.0).then(|| ((tasks_s - own_s) / secs).max(0.0))
}

/// Steal time between two readings, percent of all CPU time.
pub fn steal_percent(a: &Reading, b: &Reading) -> Option<f64> {
    let (ca, cb) = (a.cpu?, b.cpu?);
    let total = cb.total.saturating_sub(ca.total);
    (total > 0).then(|| 100.0 * cb.steal.saturating_sub(ca.steal) as f64 / total as f64)
}

/// Lowest and highest current CPU frequency in MHz (cpufreq), if exposed.
pub fn cpu_mhz() -> Option<(f64, f64)> {
    let khz: Vec<f64> = std::fs::read_dir("/sys/devices/system/cpu")
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("cpufreq/scaling_cur_freq")).ok())
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let lo = khz.iter().copied().reduce(f64::min)?;
    let hi = khz.iter().copied().reduce(f64::max)?;
    Some((lo / 1000.0, hi / 1000.0))
}

/// The machine now, with CPU shares over the interval since `since`.
pub fn state(since: &Reading, now: &Reading, labs: &[OtherLab]) -> MachineState {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg(&t))
        .unwrap_or_default();
    let mhz = cpu_mhz();
    MachineState {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        load_1m: load[0],
        load_5m: load[1],
        load_15m: load[2],
        others_cpus: others_cpus(since, now),
        steal_percent: steal_percent(since, now),
        cpu_mhz_min: mhz.map(|m| m.0),
        cpu_mhz_max: mhz.map(|m| m.1),
        other_labs: labs.iter().map(|l| l.run.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_cpu_line() {
        let text = "cpu  58266 10 7452 47970 771 3 98 100 5 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        let c = CpuTicks::parse(text).unwrap();
        assert_eq!(c.tasks, 58266 + 10 + 7452);
        assert_eq!(c.steal, 100);
        assert_eq!(c.total, 58266 + 10 + 7452 + 47970 + 771 + 3 + 98 + 100);
    }

    #[test]
    fn loadavg_line() {
        assert_eq!(
            parse_loadavg("4.12 2.14 0.96 4/113 10809\n"),
            Some([4.12, 2.14, 0.96])
        );
        assert_eq!(parse_loadavg("x"), None);
    }

    #[test]
    fn own_cpu_is_not_counted_as_others() {
        let hz = ticks_per_second();
        let a = Reading {
            at: Instant::now(),
            cpu: Some(CpuTicks {
                tasks: 0,
                steal: 0,
                total: 0,
            }),
            own_s: Some(0.0),
        };
        // One second in which tasks used 1.5 CPUs, of which 1.0 was ours.
        let b = Reading {
            at: a.at + std::time::Duration::from_secs(1),
            cpu: Some(CpuTicks {
                tasks: (1.5 * hz) as u64,
                steal: (0.1 * hz) as u64,
                total: (2.0 * hz) as u64,
            }),
            own_s: Some(1.0),
        };
        assert!((others_cpus(&a, &b).unwrap() - 0.5).abs() < 1e-9);
        assert!((steal_percent(&a, &b).unwrap() - 5.0).abs() < 1e-9);
    }

    #[test]
    fn the_cpu_of_child_processes_is_ours() {
        let a = Reading::now();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh runs");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let child_s = crate::workload::cpu::process_cpu_seconds(child.id()).unwrap();
        let b = Reading::now();
        let _ = child.kill();
        let _ = child.wait();
        let own = b.own_s.unwrap() - a.own_s.unwrap();
        assert!(child_s > 0.0, "the child did not run");
        assert!(own >= child_s - 0.011, "own {own} s < child {child_s} s");
    }
}
