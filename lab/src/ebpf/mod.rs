//! eBPF host routing (the `veth-ebpf` and `netkit-ebpf` datapaths) and the
//! eBPF service proxy: the programs in `bpf/` (compiled by build.rs), their
//! maps, and attaching them inside lab namespaces (TCX links, or clsact +
//! cls_bpf over netlink before Linux 6.6, or netkit links).
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
pub mod cgroup_lb;
mod counters;
mod iface;
mod lb;
mod loader;
pub mod maps;
mod netkit_link;
mod pins;
mod programs;
mod tc_mode;
mod tc_netlink;
mod test_run;

pub use attach::recorded_attach_kinds;
pub use counters::{pinned_counters, Counters};
pub use iface::ifindex_and_mac;
pub use lb::ServiceLb;
pub use loader::{check_classifier, LbProgram};
pub use maps::{
    ConntrackTimeouts, Endpoint, NodeConfig, NodeScope, Proto, RedirectMode, ServiceSpec,
};
pub use netkit_link::NetkitHook;
pub use pins::{bpffs_mounted, ensure_bpffs, list_pinned_runs, node_pin_dir, pin_dir, remove_pins};
pub use tc_mode::{TcAttachMode, FORCE_ENV as TC_ATTACH_ENV};
pub use tc_netlink::{delete_clsact, detach_filter, has_clsact};
pub use test_run::TestRunOutcome;

/// Attach kinds of several load balancers (`tcx`, `netlink`, `netkit`,
/// each `+`-joined) as one sorted `+`-joined list, None when empty.
pub fn join_attach_kinds(kinds: impl Iterator<Item = String>) -> Option<String> {
    let mut all: Vec<String> = kinds
        .flat_map(|k| k.split('+').map(str::to_string).collect::<Vec<_>>())
        .collect();
    all.sort_unstable();
    all.dedup();
    (!all.is_empty()).then(|| all.join("+"))
}

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
    /// aya names only the failed call; its cause (the errno) is shown too.
    #[error(
        "eBPF program {program}: attach to {netns}/{ifname} {direction}: {}",
        with_causes(source.as_ref())
    )]
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
    #[error("eBPF program {program}: attach to {netns}/{ifname} {hook}: {op}: {source}")]
    Netkit {
        program: &'static str,
        netns: String,
        ifname: String,
        hook: &'static str,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Neither TCX nor the netlink fallback could attach a tc program.
    #[error("TCX attach failed ({tcx}), and so did netlink: {netlink}")]
    TcAttach {
        tcx: String,
        #[source]
        netlink: Box<EbpfError>,
    },
    #[error("{object} on {netns}/{ifname}: {op}: {message}")]
    TcObject {
        object: &'static str,
        netns: String,
        ifname: String,
        op: &'static str,
        message: String,
    },
    #[error("journal of the eBPF attachments: {0}")]
    Journal(String),
    /// A setting from the environment that dplab does not understand.
    #[error("{0}")]
    BadSetting(String),
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

/// An error with the chain of its sources, `a: b: c`.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Why the eBPF datapaths cannot run here, or None when they can: objects not
/// compiled (no clang at build time), not root, or no bpffs in the kernel.
/// Kernels without TCX (before 6.6) attach by netlink instead.
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
    None
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
