//! dplab: builds pod network namespaces wired by a chosen Linux datapath,
//! measures workloads between them, reports, and tears everything down.

// Every unsafe block and impl says why it is sound, right above it.
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod cgroup;
pub mod cli;
pub mod cli_values;
pub mod command;
pub mod commands;
pub mod datapath;
pub mod ebpf;
pub mod error;
pub mod kinds;
pub mod lab;
pub mod ledger;
pub mod machine;
pub mod names;
pub mod netns;
pub mod overlay;
pub mod pid_stat;
pub mod probe;
pub mod proof;
pub mod results;
pub mod runner;
pub mod service;
pub mod signals;
pub mod teardown;
pub mod terminal;
pub mod topology;
pub mod workload;
