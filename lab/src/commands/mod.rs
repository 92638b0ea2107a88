//! One file per subcommand; each returns the exit status or a [`Failure`].

pub mod exec;
pub mod lifecycle;
pub mod probe;
pub mod report;
pub mod run;
pub mod test;

use std::path::Path;

use crate::cli::{bad_input, Failure};
use crate::topology::{self, Plan};

/// Loads a topology; any problem with it is bad input (exit 2).
pub fn load_plan(path: &Path) -> Result<Plan, Failure> {
    topology::load(path).map_err(|e| bad_input(e.to_string()))
}

/// Settings read from the environment, checked before anything is built:
/// a bad one is bad input (exit 2).
pub fn check_environment() -> Result<(), Failure> {
    crate::ebpf::TcAttachMode::forced()
        .map(drop)
        .map_err(|e| bad_input(e.to_string()))
}

/// dplab changes namespaces, mounts and iptables: it must run as root.
pub fn require_root() -> Result<(), Failure> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(bad_input(
            "dplab must run as root (it creates network namespaces)",
        ))
    }
}
