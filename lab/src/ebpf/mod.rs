//! eBPF host routing (the `veth-ebpf` datapath) and the eBPF service proxy:
//! the programs in `bpf/` (compiled by build.rs), their maps, and attaching
//! them inside lab namespaces.
//!
//! Three objects share one set of maps per node, pinned by name under
//! /sys/fs/bpf/dplab/<run-id>/nodes/<node>/:
//! - `tc_veth_lb.o`, program `veth_ingress`: tc ingress of each pod's
//!   host-side veth; service DNAT and reverse NAT when services are
//!   programmed, redirect_peer into local pods.
//! - `tc_pod_lb.o`, programs `pod_egress` / `pod_ingress`: the pod's own eth0
//!   inside its namespace; DNAT on the way out, reverse NAT on the way in.
//! - `tc_netdev_lb.o`, programs `netdev_ingress` / `netdev_egress`: the
//!   node's underlay link and VXLAN device; node ports reached from other
//!   nodes, and with host routing the delivery of arriving packets to pods.

mod attach;
mod counters;
mod iface;
mod lb;
mod loader;
pub mod maps;
mod pins;
mod programs;
mod test_run;

pub use counters::{pinned_counters, Counters};
pub use iface::ifindex_and_mac;
pub use lb::ServiceLb;
pub use loader::{check_classifier, LbProgram};
pub use maps::{
    ConntrackTimeouts, Endpoint, NodeConfig, NodeScope, Proto, RedirectMode, ServiceSpec,
};
pub use pins::{
    bpffs_mounted, ensure_bpffs, list_pinned_runs, node_pin_dir, pin_dir, remove_pins, PIN_ROOT,
};
pub use test_run::TestRunOutcome;

use std::path::PathBuf;

/// tc verdicts the programs return (linux/pkt_cls.h).
pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_REDIRECT: u32 = 7;

#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("eBPF unavailable: {0}")]
    Unavailable(String),
    #[error("run id {0:?}: only letters, digits, '-', '_' and '.' make a pin folder name")]
    InvalidRunId(String),
    #[error("bpffs {path}: {op}: {source}")]
    Pins {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("eBPF object {object}: load: {source}")]
    LoadObject {
        object: &'static str,
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// Loading a program failed; the message carries the whole verifier log.
    #[error("eBPF program {program}: {op}: {source}")]
    Program {
        program: &'static str,
        op: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("eBPF map {map}: {op}: {source}")]
    Map {
        map: &'static str,
        op: String,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("eBPF program {program}: attach to {netns}/{ifname} {direction}: {source}")]
    Attach {
        program: &'static str,
        netns: String,
        ifname: String,
        direction: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("eBPF link on {netns}/{ifname}: take its fd: {source}")]
    LinkFd {
        netns: String,
        ifname: String,
        #[source]
        source: Box<aya::programs::links::LinkError>,
    },
    #[error("eBPF link {path}: pin: {source}")]
    PinLink {
        path: PathBuf,
        #[source]
        source: Box<aya::pin::PinError>,
    },
    #[error("interface {ifname} in netns {netns}: {op}: {source}")]
    Interface {
        netns: String,
        ifname: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("service {service}: {reason}")]
    InvalidService { service: String, reason: String },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("eBPF teardown of run {run_id}: {}", .errors.join("; "))]
    Teardown { run_id: String, errors: Vec<String> },
}

pub type Result<T> = std::result::Result<T, EbpfError>;

/// Why the eBPF datapaths cannot run here, or None when they can: objects not
/// compiled (no clang at build time), not root, no bpffs in the kernel, or a kernel without
/// TCX (attachments use TCX links, Linux >= 6.6).
pub fn unavailable_reason() -> Option<String> {
    if let Some(reason) = option_env!("DPLAB_BPF_MISSING") {
        return Some(reason.to_string());
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (CAP_BPF and CAP_NET_ADMIN)".to_string());
    }
    if !bpffs_mounted() && !pins::bpffs_supported() {
        return Some("kernel without bpffs (no \"bpf\" in /proc/filesystems)".to_string());
    }
    if !kernel_has_tcx() {
        return Some("kernel older than 6.6: no TCX links for tc programs".to_string());
    }
    None
}

fn kernel_has_tcx() -> bool {
    use aya::util::KernelVersion;
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
}

/// The compiled objects, embedded at build time.
mod objects {
    #[cfg(dplab_bpf)]
    pub fn veth() -> Option<&'static [u8]> {
        Some(aya::include_bytes_aligned!(concat!(
            env!("OUT_DIR"),
            "/tc_veth_lb.o"
        )))
    }
    #[cfg(dplab_bpf)]
    pub fn pod() -> Option<&'static [u8]> {
        Some(aya::include_bytes_aligned!(concat!(
            env!("OUT_DIR"),
            "/tc_pod_lb.o"
        )))
    }
    #[cfg(dplab_bpf)]
    pub fn netdev() -> Option<&'static [u8]> {
        Some(aya::include_bytes_aligned!(concat!(
            env!("OUT_DIR"),
            "/tc_netdev_lb.o"
        )))
    }
    #[cfg(not(dplab_bpf))]
    pub fn veth() -> Option<&'static [u8]> {
        None
    }
    #[cfg(not(dplab_bpf))]
    pub fn netdev() -> Option<&'static [u8]> {
        None
    }
    #[cfg(not(dplab_bpf))]
    pub fn pod() -> Option<&'static [u8]> {
        None
    }
}
