//! Workloads between two pod namespaces: dplab's own generators (`builtin`)
//! and adapters for the reference tools iperf3, qperf and ping.
//!
//! [`run_sample`] measures one repetition and returns its metrics; the caller
//! repeats, interleaves and aggregates. Every socket operation has a timeout,
//! so a broken path yields an error within `warmup + duration + timeout` (plus
//! a little grace for joining threads), never a hang.
//!
//! Metrics of each built-in sample (names carry units; CPU is 100 = one core):
//! - tcp-stream: throughput_gbps (receiver bytes), retransmits
//!   (tcpi_total_retrans delta), cpu_client/server/softirq_percent,
//!   cpu_s_per_gb (client + server + softirq CPU seconds per GB; softirq
//!   only where the kernel accounts it apart from tasks, see
//!   [`cpu::softirq_separate_from_tasks`]). cpu_softirq_percent is
//!   machine-wide.
//! - udp-stream: throughput_gbps (received), offered_gbps, loss_percent,
//!   jitter_ms (RFC 3550), out_of_order, CPU as tcp-stream.
//! - tcp-rr: transactions_per_s, latency_us_p50/p90/p99/max/mean (round
//!   trip), cpu_*_percent. tcp-crr: connections_per_s, the same latencies
//!   (connect to close) and connect_us_p1/p50/p99 (first-packet latency:
//!   the handshake alone, see [`connect_latency`]).
//! - http: requests_per_s, errors, latency_us_*, cpu_*_percent.
//! - ping: rtt_ms (mean), rtt_min_ms, rtt_max_ms, rtt_mdev_ms, loss_percent.
//!
//! Adapters report what their tool measures: iperf3 throughput_gbps,
//! retransmits or loss/jitter/out_of_order, cpu_client/server_percent (its
//! own); qperf throughput_gbps (+ offered_gbps, loss_percent from rates),
//! tcp_lat as latency_us_mean = 2 x its one-way figure (also
//! one_way_latency_us) and transactions_per_s, CPU from /proc; ping as the
//! built-in ping.

mod common;
pub mod connect_latency;
pub mod cpu;
mod generator;
pub mod histogram;
pub mod http;
mod http_client;
pub mod iperf3;
mod ping;
pub mod ping_tool;
pub mod pinning;
mod process;
pub mod qperf;
mod tcp_crr;
mod tcp_rr;
mod tcp_stream;
mod udp_stream;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

pub use process::find_in_path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    TcpStream,
    UdpStream,
    TcpRr,
    TcpCrr,
    Ping,
    Http,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::TcpStream,
        Workload::UdpStream,
        Workload::TcpRr,
        Workload::TcpCrr,
        Workload::Ping,
        Workload::Http,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::TcpStream => "tcp-stream",
            Workload::UdpStream => "udp-stream",
            Workload::TcpRr => "tcp-rr",
            Workload::TcpCrr => "tcp-crr",
            Workload::Ping => "ping",
            Workload::Http => "http",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = WorkloadError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| WorkloadError::UnknownName {
                kind: "workload",
                name: s.to_string(),
                known: "tcp-stream, udp-stream, tcp-rr, tcp-crr, ping, http",
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    Builtin,
    Iperf3,
    Qperf,
    Ping,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::Builtin, Tool::Iperf3, Tool::Qperf, Tool::Ping];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Builtin => "builtin",
            Tool::Iperf3 => "iperf3",
            Tool::Qperf => "qperf",
            Tool::Ping => "ping",
        }
    }

    /// The external program, or None for the built-in generators.
    pub fn program(self) -> Option<&'static str> {
        match self {
            Tool::Builtin => None,
            Tool::Iperf3 => Some("iperf3"),
            Tool::Qperf => Some("qperf"),
            Tool::Ping => Some("ping"),
        }
    }

    /// Workloads this tool can measure.
    pub fn supports(self, w: Workload) -> bool {
        match self {
            Tool::Builtin => true,
            Tool::Iperf3 => matches!(w, Workload::TcpStream | Workload::UdpStream),
            Tool::Qperf => matches!(
                w,
                Workload::TcpStream | Workload::UdpStream | Workload::TcpRr
            ),
            Tool::Ping => w == Workload::Ping,
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Tool {
    type Err = WorkloadError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tool::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| WorkloadError::UnknownName {
                kind: "tool",
                name: s.to_string(),
                known: "builtin, iperf3, qperf, ping",
            })
    }
}

/// How to run one sample. `warmup` is run before and discarded; it is taken
/// as given (not clamped), so a caller wanting short samples sets it too.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Measured interval, after the warm-up.
    pub duration: Duration,
    /// Run before the measured interval and discarded (TCP slow start, ARP,
    /// conntrack entries, the first slow ping through proxy-ARP).
    pub warmup: Duration,
    /// Streams (tcp-stream, udp-stream) or connections/threads (tcp-rr, tcp-crr).
    pub parallel: u32,
    /// Request and response size of tcp-rr and tcp-crr (1 byte like netperf).
    pub message_size: usize,
    /// Size of each write of tcp-stream (128 KiB like iperf3).
    pub stream_write_size: usize,
    /// UDP payload size of udp-stream (1448 bytes, the TCP MSS of a 1500 MTU,
    /// so a datagram is never fragmented).
    pub udp_payload_size: usize,
    /// Offered UDP load in bit/s over all streams; None sends flat out.
    pub udp_rate_bps: Option<u64>,
    /// Keep-alive connections of the http client (like `ab -k -c 100`).
    pub http_concurrency: u32,
    /// Limit for each connect, read and write, and for a tool's overrun.
    pub timeout: Duration,
    /// CPUs the client and server run on; unpinned by default.
    pub cpus: pinning::CpuPinning,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            parallel: 1,
            message_size: 1,
            stream_write_size: 128 * 1024,
            udp_payload_size: 1448,
            udp_rate_bps: None,
            http_concurrency: 100,
            timeout: Duration::from_secs(3),
            cpus: pinning::CpuPinning::default(),
        }
    }
}

/// Where a sample runs. The server listens on 0.0.0.0:`server_port` inside
/// `server_netns`; the client in `client_netns` connects to `target`, which
/// may be a cluster IP whose port differs from `server_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub client_netns: String,
    pub server_netns: String,
    pub server_port: u16,
    pub target: SocketAddr,
}

/// Journal of external processes (iperf3 -s, qperf) so that a crashed run can
/// kill what it left behind.
pub trait PidRecorder: Sync {
    fn spawned(&self, pid: u32, what: &str);
    fn reaped(&self, pid: u32);
}

/// A recorder that journals nothing, for tests and one-off measurements.
pub struct NoPidRecorder;

impl PidRecorder for NoPidRecorder {
    fn spawned(&self, _pid: u32, _what: &str) {}
    fn reaped(&self, _pid: u32) {}
}

/// One repetition: metric name (with its unit) -> value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub metrics: BTreeMap<String, f64>,
}

impl Sample {
    pub fn set(&mut self, name: &str, value: f64) {
        self.metrics.insert(name.to_string(), value);
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
}

/// Live-rate callback, in the unit of [`headline_metric`].
pub type Progress<'a> = Option<&'a dyn Fn(f64)>;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("unknown {kind} {name:?} (known: {known})")]
    UnknownName {
        kind: &'static str,
        name: String,
        known: &'static str,
    },
    #[error("tool {tool} cannot measure workload {workload}")]
    Unsupported { tool: Tool, workload: Workload },
    #[error("tool {tool}: program {program} not found in PATH")]
    ToolMissing { tool: Tool, program: &'static str },
    #[error("invalid parameters: {0}")]
    BadParams(String),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("no connection to {target} within {timeout:?}: {source}")]
    Connect {
        target: SocketAddr,
        timeout: Duration,
        #[source]
        source: std::io::Error,
    },
    #[error("{workload} server on port {port} in {netns}: {op}: {source}")]
    Server {
        workload: Workload,
        netns: String,
        port: u16,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{workload} to {target}: {op}: {source}")]
    Transfer {
        workload: Workload,
        target: SocketAddr,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{workload} to {target}: {what}")]
    Failed {
        workload: Workload,
        target: SocketAddr,
        what: String,
    },
    #[error("{workload}: worker threads still running {waited:?} after the measurement ended")]
    Hung {
        workload: Workload,
        waited: Duration,
    },
    #[error("{tool}: {op}: {source}")]
    ToolIo {
        tool: Tool,
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} reported error: {message}")]
    ToolReported { tool: Tool, message: String },
    #[error("{tool}: cannot parse its output ({what}): {excerpt}")]
    ToolOutput {
        tool: Tool,
        what: String,
        excerpt: String,
    },
    #[error("{tool} did not finish within {limit:?}; killed")]
    ToolTimeout { tool: Tool, limit: Duration },
}

/// The metric a report leads with for workload `w`.
pub fn headline_metric(w: Workload) -> &'static str {
    match w {
        Workload::TcpStream | Workload::UdpStream => "throughput_gbps",
        Workload::TcpRr => "transactions_per_s",
        Workload::TcpCrr => "connections_per_s",
        Workload::Ping => "rtt_ms",
        Workload::Http => "requests_per_s",
    }
}

/// Fails if `tool` cannot measure `w` or its program is not installed.
/// dplab never falls back to another tool silently.
pub fn check_tool(tool: Tool, w: Workload) -> Result<(), WorkloadError> {
    if !tool.supports(w) {
        return Err(WorkloadError::Unsupported { tool, workload: w });
    }
    match tool.program() {
        Some(program) if process::find_in_path(program).is_none() => {
            Err(WorkloadError::ToolMissing { tool, program })
        }
        _ => Ok(()),
    }
}

/// Measures one sample of workload `w` with `tool` between the endpoints.
pub fn run_sample(
    w: Workload,
    tool: Tool,
    p: &Params,
    e: &Endpoints,
    pids: &dyn PidRecorder,
    progress: Progress<'_>,
) -> Result<Sample, WorkloadError> {
    check_tool(tool, w)?;
    validate(w, p)?;
    // In a lab with cgroups (socket-lb) the client's sockets must be made
    // in the client pod's cgroup. The built-in generators are threads of
    // dplab, so dplab joins that cgroup for the sample (and leaves after);
    // external tools join it themselves before exec.
    let _in_client_cgroup = match tool {
        Tool::Builtin => crate::cgroup::join::SampleCgroup::enter_for_netns(&e.client_netns)?,
        _ => None,
    };
    match tool {
        Tool::Builtin => match w {
            Workload::TcpStream => tcp_stream::run(p, e, progress),
            Workload::UdpStream => udp_stream::run(p, e, progress),
            Workload::TcpRr => tcp_rr::run(p, e, progress),
            Workload::TcpCrr => tcp_crr::run(p, e, progress),
            // The built-in ping is its client on the caller's thread.
            Workload::Ping => {
                let _pin = pinning::PinnedHere::new(p.cpus.client)?;
                ping::run(p, e, progress)
            }
            Workload::Http => http::run(p, e, progress),
        },
        Tool::Iperf3 => iperf3::run(w, p, e, pids),
        Tool::Qperf => qperf::run(w, p, e, pids),
        Tool::Ping => ping_tool::run(p, e, pids),
    }
}

fn validate(w: Workload, p: &Params) -> Result<(), WorkloadError> {
    let bad = |s: &str| Err(WorkloadError::BadParams(s.to_string()));
    if p.duration.is_zero() {
        return bad("duration must be positive");
    }
    if p.timeout.is_zero() {
        return bad("timeout must be positive");
    }
    if p.parallel == 0 {
        return bad("parallel must be at least 1");
    }
    match w {
        Workload::TcpRr | Workload::TcpCrr if p.message_size == 0 => {
            bad("message_size must be at least 1 byte")
        }
        Workload::TcpStream if p.stream_write_size == 0 => {
            bad("stream_write_size must be positive")
        }
        Workload::UdpStream
            if p.udp_payload_size < udp_stream::HEADER_LEN || p.udp_payload_size > 65507 =>
        {
            bad("udp_payload_size must be between 24 and 65507 bytes")
        }
        Workload::Http if p.http_concurrency == 0 => bad("http_concurrency must be at least 1"),
        _ => Ok(()),
    }
}
