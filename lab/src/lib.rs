//! dplab: builds pod network namespaces wired by a chosen Linux datapath,
//! measures workloads between them, reports, and tears everything down.

pub mod netns;
pub mod results;
pub mod workload;
