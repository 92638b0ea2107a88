//! CPU cost of a measurement: CPU time of the client and server threads (or
//! external processes) and the machine's softirq time over the measured
//! interval. Read from /proc, which works for any thread of this process from
//! any other thread, so the supervisor takes both snapshots itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Sample;
use crate::pid_stat::{ticks_per_second, PidStat};

/// Kernel thread id of the calling thread.
pub fn current_tid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

/// CPU seconds used so far by thread `tid` of this process.
pub fn thread_cpu_seconds(tid: u32) -> Option<f64> {
    PidStat::read(format!("/proc/self/task/{tid}/stat"))?.cpu_seconds()
}

/// CPU seconds used so far by process `pid` (all its threads).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    PidStat::of_process(pid)?.cpu_seconds()
}

/// CPU seconds of process `pid`, its reaped children (cutime, cstime) and
/// its live descendants: for servers that fork a child per client, as
/// qperf does. Descendants are read before the parent, so a child reaped
/// in between is counted twice rather than not at all (a tick at most).
pub fn process_tree_cpu_seconds(pid: u32) -> Option<f64> {
    let descendants: f64 = children_of(pid)
        .into_iter()
        .filter_map(process_tree_cpu_seconds)
        .sum();
    Some(PidStat::of_process(pid)?.cpu_seconds_with_reaped()? + descendants)
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Softirq seconds of all CPUs from the text of /proc/stat.
pub fn parse_proc_stat_softirq_seconds(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    // cpu user nice system idle iowait irq softirq ...
    let ticks: f64 = line.split_whitespace().nth(7)?.parse().ok()?;
    Some(ticks / ticks_per_second())
}

pub fn softirq_seconds() -> Option<f64> {
    parse_proc_stat_softirq_seconds(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Whether the kernel keeps softirq time out of task times
/// (CONFIG_IRQ_TIME_ACCOUNTING, the default of most distributions). Read
/// once from /proc/config.gz; assumed true when the kernel does not say.
pub fn softirq_separate_from_tasks() -> bool {
    static SEPARATE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEPARATE.get_or_init(|| {
        std::process::Command::new("gzip")
            .args(["-dc", "/proc/config.gz"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| config_has_irq_time_accounting(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or(true)
    })
}

pub fn config_has_irq_time_accounting(config: &str) -> bool {
    config
        .lines()
        .any(|l| l.trim() == "CONFIG_IRQ_TIME_ACCOUNTING=y")
}

/// Thread ids of one side (client or server), which workers register, and
/// the CPU that side is pinned to, if any.
#[derive(Clone, Default)]
pub struct TidSet {
    tids: Arc<Mutex<Vec<u32>>>,
    cpu: Option<usize>,
}

impl TidSet {
    pub fn pinned(cpu: Option<usize>) -> TidSet {
        TidSet {
            cpu,
            ..TidSet::default()
        }
    }

    pub fn cpu(&self) -> Option<usize> {
        self.cpu
    }

    pub fn register_current(&self) {
        self.tids.lock().unwrap().push(current_tid());
    }

    fn cpu_by_tid(&self) -> HashMap<u32, f64> {
        let tids = self.tids.lock().unwrap().clone();
        tids.into_iter()
            .filter_map(|t| thread_cpu_seconds(t).map(|s| (t, s)))
            .collect()
    }
}

/// CPU counters at one instant.
pub struct CpuSnapshot {
    client: HashMap<u32, f64>,
    server: HashMap<u32, f64>,
    softirq: Option<f64>,
    at: std::time::Instant,
}

/// The two sides whose CPU time a workload measures.
#[derive(Clone, Default)]
pub struct CpuMeter {
    pub client: TidSet,
    pub server: TidSet,
}

impl CpuMeter {
    /// A meter whose sides run on the CPUs of `pinning`.
    pub fn pinned(pinning: super::pinning::CpuPinning) -> CpuMeter {
        CpuMeter {
            client: TidSet::pinned(pinning.client),
            server: TidSet::pinned(pinning.server),
        }
    }

    pub fn snapshot(&self) -> CpuSnapshot {
        CpuSnapshot {
            client: self.client.cpu_by_tid(),
            server: self.server.cpu_by_tid(),
            softirq: softirq_seconds(),
            at: std::time::Instant::now(),
        }
    }
}

/// CPU seconds spent between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUsage {
    pub client_s: f64,
    pub server_s: f64,
    pub softirq_s: Option<f64>,
    pub wall_s: f64,
}

fn delta(start: &HashMap<u32, f64>, end: &HashMap<u32, f64>) -> f64 {
    // A thread that started inside the interval counts from zero.
    end.iter()
        .map(|(tid, e)| e - start.get(tid).copied().unwrap_or(0.0))
        .sum()
}

impl CpuUsage {
    pub fn between(start: &CpuSnapshot, end: &CpuSnapshot) -> CpuUsage {
        CpuUsage {
            client_s: delta(&start.client, &end.client),
            server_s: delta(&start.server, &end.server),
            softirq_s: match (start.softirq, end.softirq) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            wall_s: end.at.duration_since(start.at).as_secs_f64(),
        }
    }

    /// Adds cpu_client_percent, cpu_server_percent, cpu_softirq_percent
    /// (100 = one core) and, for streams, cpu_s_per_gb.
    pub fn add_to(&self, sample: &mut Sample, gigabytes: Option<f64>) {
        if self.wall_s <= 0.0 {
            return;
        }
        let percent = |s: f64| 100.0 * s / self.wall_s;
        sample.set("cpu_client_percent", percent(self.client_s));
        sample.set("cpu_server_percent", percent(self.server_s));
        if let Some(soft) = self.softirq_s {
            sample.set("cpu_softirq_percent", percent(soft));
        }
        if let Some(gb) = gigabytes.filter(|gb| *gb > 0.0) {
            // With tick accounting alone, a tick that lands in softirq is
            // charged to the interrupted thread *and* to /proc/stat softirq:
            // adding both would count it twice.
            let softirq = if softirq_separate_from_tasks() {
                self.softirq_s.unwrap_or(0.0)
            } else {
                0.0
            };
            sample.set(
                "cpu_s_per_gb",
                (self.client_s + self.server_s + softirq) / gb,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irq_time_accounting_from_config() {
        assert!(config_has_irq_time_accounting(
            "CONFIG_TICK_CPU_ACCOUNTING=y\nCONFIG_IRQ_TIME_ACCOUNTING=y\n"
        ));
        assert!(!config_has_irq_time_accounting(
            "CONFIG_TICK_CPU_ACCOUNTING=y\n# CONFIG_IRQ_TIME_ACCOUNTING is not set\n"
        ));
    }

    #[test]
    fn softirq_column() {
        let text = "cpu  10821 6603 5739 52824 410 0 648 12 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(
            parse_proc_stat_softirq_seconds(text),
            Some(648.0 / ticks_per_second())
        );
    }

    #[test]
    fn process_tree_includes_children() {
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(800));
        let me = std::process::id();
        let tree = process_tree_cpu_seconds(me).unwrap();
        let own = process_cpu_seconds(me).unwrap();
        let theirs = process_cpu_seconds(child.id()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(theirs > 0.0, "the child burnt CPU");
        assert!(
            tree >= own + theirs - 0.02,
            "tree {tree} own {own} child {theirs}"
        );
    }

    #[test]
    fn own_thread_cpu_is_readable() {
        let tid = current_tid();
        let t0 = thread_cpu_seconds(tid).expect("own stat readable");
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed().as_millis() < 100 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(thread_cpu_seconds(tid).unwrap() >= t0);
    }
}
