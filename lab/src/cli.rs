//! The command line (CONTRACT.md): parse, dispatch, and map failures to exit
//! statuses (0 ok, 2 bad input with nothing touched, 3 some cells failed,
//! 1 anything else).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit statuses of CONTRACT.md.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_CELLS_FAILED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "dplab",
    version,
    about = "Compare Linux container datapaths side by side, reproducibly"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List each kernel and tool capability dplab uses, available or not
    Probe {
        #[arg(long)]
        json: bool,
    },
    /// Build a lab and leave it running; prints the run id last
    Up {
        topology: PathBuf,
        /// Datapath to wire (default: the first of the topology's matrix)
        #[arg(long)]
        datapath: Option<String>,
        /// Service proxy (default: the matrix's first, else the datapath's natural one)
        #[arg(long)]
        proxy: Option<String>,
        /// Multi-node labs: routed or vxlan (default: the matrix's first)
        #[arg(long)]
        overlay: Option<String>,
    },
    /// Run one workload on a running lab
    Test {
        run: String,
        #[arg(long)]
        from: String,
        /// A pod name, an IPv4 address, or service:NAME
        #[arg(long)]
        to: String,
        #[arg(long)]
        workload: String,
        #[arg(long)]
        duration: Option<String>,
        #[arg(long, default_value = "builtin")]
        tool: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a program inside a pod of a running lab: in its network namespace
    /// and, when the lab has one (socket-lb), its cgroup; stdio inherited,
    /// exit status passed through (128 + signal when a signal ended it)
    Exec {
        run: String,
        /// A pod (or node) of the lab
        pod: String,
        /// The program and its arguments, after `--`
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Tear a running lab down
    Down {
        run: Option<String>,
        #[arg(long, conflicts_with = "run")]
        all: bool,
    },
    /// Remove every object any dplab run left behind
    Cleanup,
    /// Measure the whole matrix of a topology
    Run {
        topology: PathBuf,
        /// Comma-separated datapaths to measure (default: the matrix's)
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<String>>,
        /// Comma-separated service proxies to measure on every datapath
        /// (default: the matrix's service_proxies, else each datapath's natural one)
        #[arg(long, value_delimiter = ',')]
        proxies: Option<Vec<String>>,
        #[arg(long)]
        duration: Option<String>,
        #[arg(long)]
        repetitions: Option<i64>,
        #[arg(long)]
        tool: Option<String>,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Extra synthetic services (2 backends each) to program besides the
        /// topology's, to measure how the proxy scales
        #[arg(long, default_value_t = 0)]
        extra_services: u32,
    },
    /// Render report.md and charts again from saved results
    Report {
        results: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cell-by-cell ratios of two runs
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        json: bool,
    },
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
