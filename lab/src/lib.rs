//! dplab: builds pod network namespaces wired by a chosen Linux datapath,
//! measures workloads between them, reports, and tears everything down.

pub mod ebpf;
pub mod netns;
pub mod results;
