//! results.json (`dplab.results/v2`; v1 files read the same: v2 only
//! adds the service-count sweep, see [`super::sweep`]), documented field
//! by field in docs/results.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::conditions::{CellConditions, Conditions};

pub const SCHEMA: &str = "dplab.results/v2";

/// Schemas `dplab report` and `dplab compare` read.
pub const SCHEMAS_READ: [&str; 2] = ["dplab.results/v1", SCHEMA];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema: String,
    pub run_id: String,
    pub topology: String,
    pub started_at: String,
    pub finished_at: String,
    pub host: Host,
    pub dplab_version: String,
    /// The git commit dplab was built from (`-dirty`: with local changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dplab_commit: Option<String>,
    /// The command line that made this run, to reproduce it.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub settings: Settings,
    /// A service-count sweep's points (v2), absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<super::sweep::SweepResults>,
    pub cells: Vec<Cell>,
    /// How quiet the machine was at the start, at the end and during cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// Benchmarks of dplab itself measured during the run (setup times,
    /// rule programming), name -> value with its unit in the name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub benchmarks: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Host {
    pub kernel: String,
    pub cpus: usize,
    pub hostname: String,
    #[serde(default)]
    pub cpu_model: String,
}

impl Host {
    /// Reads the machine this process runs on.
    pub fn current() -> Host {
        let uts = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Host {
            kernel: field(|u| u.release()),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            hostname: field(|u| u.nodename()),
            cpu_model,
        }
    }
}

/// How the run was asked to measure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Settings {
    pub duration_s: f64,
    pub repetitions: u32,
    pub tool: String,
    #[serde(default)]
    pub warmup_s: f64,
    /// Link shaping (multi-node underlay), if any, e.g. "tbf 1gbit".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shaping: Option<String>,
    /// `--cpus`: the CPU the client and the server were pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<crate::workload::pinning::CpuPinning>,
    /// How tc programs were attached, if any cell attached some: `tcx`
    /// (TCX links, Linux >= 6.6) or `netlink` (clsact qdisc + cls_bpf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc_attach: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CellStatus {
    Ok,
    Skipped,
    /// Predicted not to carry this traffic (e.g. bridge-nf-off with a NAT
    /// proxy), tried, and failed as predicted; `reason` explains.
    Unreachable,
    Failed,
}

/// One measured combination of datapath, target and workload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub datapath: String,
    pub target: String,
    /// How a service address becomes a backend (`iptables`, `nftables`,
    /// `ipvs`, `ebpf`, `socket-lb`) on cluster-ip and node-port cells;
    /// null on pod-ip and node-ip cells.
    pub service_proxy: Option<String>,
    pub workload: String,
    pub tool: String,
    pub client: String,
    pub server: String,
    /// Multi-node labs: `routed` or `vxlan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<String>,
    /// Multi-node labs: `same-node` or `cross-node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// Service-count sweeps (v2): services the proxy held when this cell
    /// was measured, and their endpoints in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<u32>,
    pub status: CellStatus,
    pub reason: Option<String>,
    pub setup_ms: Option<f64>,
    pub teardown_ms: Option<f64>,
    pub metrics: BTreeMap<String, Metric>,
    pub proof: BTreeMap<String, i64>,
    /// The worst machine conditions seen while the cell was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<CellConditions>,
    /// How the lab's eBPF programs were attached: `tcx`, `netlink` or
    /// `netkit` (joined by `+` if mixed); absent without eBPF programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_attach: Option<String>,
}

impl Cell {
    /// A stable key that names the cell across runs (for `compare`):
    /// `[overlay/]datapath[+proxy]/target/workload/client->server[@N]`, N
    /// the services of a sweep's cell. Cells without a proxy keep the key
    /// they had before proxies were an axis.
    pub fn key(&self) -> String {
        let datapath = match &self.service_proxy {
            Some(p) => format!("{}+{p}", self.datapath),
            None => self.datapath.clone(),
        };
        let mut key = format!(
            "{datapath}/{}/{}/{}->{}",
            self.target, self.workload, self.client, self.server
        );
        if let Some(o) = &self.overlay {
            key = format!("{o}/{key}");
        }
        if let Some(n) = self.services {
            key = format!("{key}@{n}");
        }
        key
    }
}

/// A metric over the repetitions of a cell. The unit is in its name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Metric {
    pub median: f64,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
    /// 95% confidence interval of the median (bootstrap).
    #[serde(default)]
    pub ci95_low: f64,
    #[serde(default)]
    pub ci95_high: f64,
    pub samples: Vec<f64>,
}
