//! The command line: flags with their defaults and possible values, and
//! failures mapped to exit statuses (0 ok, 2 bad input with nothing
//! touched, 3 some cells failed, 1 anything else).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::cli_values::{duration, kind};
use crate::kinds::{Datapath, Overlay, ProxyKind};
use crate::workload::pinning::CpuPinning;
use crate::workload::{Tool, Workload};

pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_CELLS_FAILED: u8 = 3;

/// The git commit this binary was built from (`-dirty` with local changes).
pub const GIT_COMMIT: &str = env!("DPLAB_GIT_COMMIT");

/// `dplab --version`: the package version and the commit.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DPLAB_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "dplab",
    version = VERSION,
    about = "Compare Linux container datapaths side by side, reproducibly",
    after_help = "Exit status: 0 all done; 2 bad input (nothing in the kernel touched); \
                  3 the run finished but some cells failed; 1 any other error.\n\
                  Formats: docs/topology.md (topology files), docs/results.md (results.json)."
)]
pub struct Cli {
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(subcommand)]
    pub command: Command,
}

/// How much dplab says on stderr.
#[derive(Debug, Clone, Copy, Args)]
pub struct Verbosity {
    /// More diagnostics on stderr: -v adds debug lines, -vv traces
    /// [default: progress and warnings]
    #[arg(short, long, global = true, action = ArgAction::Count, help_heading = "Global options")]
    pub verbose: u8,
    /// Only warnings and errors on stderr (no progress)
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    pub quiet: bool,
}

impl Verbosity {
    pub fn level(self) -> log::LevelFilter {
        match (self.quiet, self.verbose) {
            (true, _) => log::LevelFilter::Warn,
            (false, 0) => log::LevelFilter::Info,
            (false, 1) => log::LevelFilter::Debug,
            (false, _) => log::LevelFilter::Trace,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List each kernel and tool capability dplab uses, available or not
    Probe {
        /// Print the capabilities as JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Build a lab and leave it running; prints the run id last on stdout
    Up {
        /// Topology file (TOML; format in docs/topology.md)
        topology: PathBuf,
        /// Datapath to wire [default: the first of the topology's [matrix]
        /// datapaths, else veth-routed]
        #[arg(long, value_name = "DATAPATH", value_parser = kind::<Datapath>())]
        datapath: Option<Datapath>,
        /// Service proxy that translates cluster IPs and node ports
        /// [default: the first of the topology's [matrix] service_proxies,
        /// else the datapath's natural one: ebpf for veth-ebpf and
        /// ipvlan-ebpf, iptables for the others]
        #[arg(long, value_name = "PROXY", value_parser = kind::<ProxyKind>())]
        proxy: Option<ProxyKind>,
        /// Multi-node labs only: how pod traffic crosses nodes [default: the
        /// first of the topology's [matrix] overlays]
        #[arg(long, value_name = "OVERLAY", value_parser = kind::<Overlay>())]
        overlay: Option<Overlay>,
    },
    /// Run one workload on a lab left running by `dplab up`
    Test {
        /// Run id that `dplab up` printed (4 hex digits, e.g. 3f9a)
        run: String,
        /// Client: a pod or node name of the lab
        #[arg(long, value_name = "POD")]
        from: String,
        /// Server: a pod name, a pod IP, a node name, a cluster IP, or
        /// service:NAME
        #[arg(long, value_name = "POD|IP|service:NAME")]
        to: String,
        /// What to measure
        #[arg(long, value_name = "WORKLOAD", value_parser = kind::<Workload>())]
        workload: Workload,
        /// Measured time, after a warm-up of half as long (1 s at most);
        /// e.g. 10s, 500ms, 2m
        #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = duration)]
        duration: Duration,
        /// Who generates the traffic: dplab's own generators or a system
        /// program (which must be installed)
        #[arg(long, value_name = "TOOL", default_value = "builtin", value_parser = kind::<Tool>())]
        tool: Tool,
        /// Pin the client and/or the server to a CPU, e.g. client=0,server=1
        /// [default: unpinned]
        #[arg(long, value_name = "client=N,server=M", value_parser = pinning)]
        cpus: Option<CpuPinning>,
        /// Print the cell as JSON (results.json's cell format)
        #[arg(long)]
        json: bool,
    },
    /// Run a program inside a pod of a running lab: in its network namespace
    /// and, when the lab has one (socket-lb), its cgroup; stdio inherited,
    /// exit status passed through (128 + signal when a signal ended it)
    Exec {
        /// Run id that `dplab up` printed (4 hex digits, e.g. 3f9a)
        run: String,
        /// A pod (or node) of the lab
        pod: String,
        /// The program and its arguments, after `--`
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Tear a lab down (one left running by `dplab up`, or a dead run's)
    Down {
        /// Run id to tear down (4 hex digits)
        #[arg(required_unless_present = "all")]
        run: Option<String>,
        /// Every lab no live dplab process owns, including those `dplab up`
        /// left running
        #[arg(long, conflicts_with = "run")]
        all: bool,
    },
    /// Remove every object a crashed or killed run left behind (labs left
    /// running by `dplab up` are kept)
    Cleanup,
    /// Measure the whole matrix of a topology: build, measure and tear down
    /// every datapath per repetition; write results.json, report.md, charts
    Run(RunArgs),
    /// Render report.md and charts again from saved results
    Report {
        /// A results.json written by `dplab run`
        results: PathBuf,
        /// Folder to write into [default: the folder of RESULTS]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Cell-by-cell ratios (B / A) of two runs
    Compare {
        /// The baseline results.json
        a: PathBuf,
        /// The results.json compared with it
        b: PathBuf,
        /// Print the comparison as JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// The flags of `dplab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Topology file with a [matrix] (TOML; format in docs/topology.md)
    pub topology: PathBuf,
    /// Comma-separated datapaths to measure instead of the matrix's
    /// [default: the topology's [matrix] datapaths]
    #[arg(long, value_name = "DATAPATH,...", value_delimiter = ',', value_parser = kind::<Datapath>())]
    pub only: Option<Vec<Datapath>>,
    /// Comma-separated service proxies, each measured on every datapath
    /// (a pair the compatibility table rules out is bad input when both
    /// --only and --proxies name it, else a skipped cell) [default: the
    /// topology's [matrix] service_proxies, else each datapath's natural
    /// proxy]
    #[arg(long, value_name = "PROXY,...", value_delimiter = ',', value_parser = kind::<ProxyKind>())]
    pub proxies: Option<Vec<ProxyKind>>,
    /// Measured time per sample, after a warm-up of half as long (1 s at
    /// most); e.g. 10s, 500ms, 2m [default: the topology's [matrix] value,
    /// else 10s]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub duration: Option<Duration>,
    /// Samples per cell, 1 to 1000; every datapath's lab is rebuilt for
    /// each [default: the topology's [matrix] value, else 3]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repetitions: Option<u32>,
    /// Who generates the traffic: dplab's own generators or a system
    /// program, which must be installed and able to measure every workload
    /// of the matrix [default: the topology's [matrix] value, else builtin]
    #[arg(long, value_name = "TOOL", value_parser = kind::<Tool>())]
    pub tool: Option<Tool>,
    /// Folder for results.json, report.md and the charts
    /// [default: results/<topology name>/<UTC start time>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Service-count sweep: measure the matrix while the proxy holds each
    /// of these numbers of services (the topology's own plus synthetic
    /// ones placed before them), e.g. 1,1000,10000,30000; also times
    /// programming and one-change updates [default: the topology's [sweep]
    /// services, else no sweep]
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub services: Option<Vec<i64>>,
    /// Pin the client and/or the server to a CPU, e.g. client=0,server=1
    /// [default: unpinned]
    #[arg(long, value_name = "client=N,server=M", value_parser = pinning)]
    pub cpus: Option<CpuPinning>,
}

fn pinning(text: &str) -> Result<CpuPinning, String> {
    text.parse()
}

/// A failure with the exit status it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Bad input: nothing in the kernel was touched.
    BadInput(String),
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => EXIT_BAD_INPUT,
            Failure::Error(_) => EXIT_ERROR,
        }
    }
}

pub fn bad_input(msg: impl Into<String>) -> Failure {
    Failure::BadInput(msg.into())
}
