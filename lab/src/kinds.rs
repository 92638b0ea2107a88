//! The names a topology or a command line may use for datapaths, targets
//! and tools (docs/topology.md), parsed once into enums.

use std::fmt;
use std::str::FromStr;

/// How pods are wired to their node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Datapath {
    VethRouted,
    Bridge,
    BridgeNfOff,
    Macvlan,
    IpvlanL2,
    IpvlanL3,
    VethEbpf,
    IpvlanEbpf,
    Netkit,
    NetkitEbpf,
}

impl Datapath {
    pub const ALL: [Datapath; 10] = [
        Datapath::VethRouted,
        Datapath::Bridge,
        Datapath::BridgeNfOff,
        Datapath::Macvlan,
        Datapath::IpvlanL2,
        Datapath::IpvlanL3,
        Datapath::VethEbpf,
        Datapath::IpvlanEbpf,
        Datapath::Netkit,
        Datapath::NetkitEbpf,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Datapath::VethRouted => "veth-routed",
            Datapath::Bridge => "bridge",
            Datapath::BridgeNfOff => "bridge-nf-off",
            Datapath::Macvlan => "macvlan",
            Datapath::IpvlanL2 => "ipvlan-l2",
            Datapath::IpvlanL3 => "ipvlan-l3",
            Datapath::VethEbpf => "veth-ebpf",
            Datapath::IpvlanEbpf => "ipvlan-ebpf",
            Datapath::Netkit => "netkit",
            Datapath::NetkitEbpf => "netkit-ebpf",
        }
    }

    /// The service proxy a datapath gets when the topology and the command
    /// line name none: the blog's pairing (eBPF datapaths with the eBPF
    /// proxy, the others with kube-proxy's iptables mode).
    pub fn natural_proxy(self) -> ProxyKind {
        match self {
            Datapath::VethEbpf | Datapath::IpvlanEbpf | Datapath::NetkitEbpf => ProxyKind::Ebpf,
            _ => ProxyKind::Iptables,
        }
    }

    /// Whether the wiring works in multi-node labs: the child-link ones
    /// (macvlan, ipvlan, and so ipvlan-ebpf) hang off a private uplink.
    /// veth-ebpf does: each node's host routing hands over to the stack (and
    /// the overlay) what is not for its own pods.
    pub fn works_across_nodes(self) -> bool {
        matches!(
            self,
            Datapath::VethRouted | Datapath::Bridge | Datapath::BridgeNfOff | Datapath::VethEbpf
        )
    }

    pub fn names() -> String {
        Datapath::ALL.map(|d| d.name()).join(", ")
    }
}

impl FromStr for Datapath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Datapath::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown datapath \"{s}\" (known: {})", Datapath::names()))
    }
}

impl fmt::Display for Datapath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who turns a cluster IP (or a node port) into a backend pod: an axis of
/// its own, combined with any wiring the compatibility table allows
/// ([`crate::service::pairing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProxyKind {
    /// kube-proxy's iptables mode: NAT chains loaded by iptables-restore.
    Iptables,
    /// kube-proxy's nftables mode: one table, verdict maps, numgen picks.
    Nftables,
    /// kube-proxy's IPVS mode: virtual servers on a dummy interface.
    Ipvs,
    /// Per-packet translation in tc programs, as Cilium.
    Ebpf,
    /// cgroup connect/sendmsg hooks rewrite the destination at the socket,
    /// as Cilium's socket-level load balancing: no packet is NATed.
    SocketLb,
}

impl ProxyKind {
    pub const ALL: [ProxyKind; 5] = [
        ProxyKind::Iptables,
        ProxyKind::Nftables,
        ProxyKind::Ipvs,
        ProxyKind::Ebpf,
        ProxyKind::SocketLb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Iptables => "iptables",
            ProxyKind::Nftables => "nftables",
            ProxyKind::Ipvs => "ipvs",
            ProxyKind::Ebpf => "ebpf",
            ProxyKind::SocketLb => "socket-lb",
        }
    }

    /// Whether the proxy rewrites packets with netfilter NAT, whose reverse
    /// translation needs the replies to pass the node's conntrack.
    pub fn uses_netfilter_nat(self) -> bool {
        matches!(
            self,
            ProxyKind::Iptables | ProxyKind::Nftables | ProxyKind::Ipvs
        )
    }

    pub fn names() -> String {
        ProxyKind::ALL.map(|p| p.name()).join(", ")
    }
}

impl FromStr for ProxyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProxyKind::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown service proxy \"{s}\" (known: {})",
                    ProxyKind::names()
                )
            })
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the client connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    PodIp,
    ClusterIp,
    NodeIp,
    /// A node's address at a service's node port (kube's NodePort).
    NodePort,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::PodIp,
        Target::ClusterIp,
        Target::NodeIp,
        Target::NodePort,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::PodIp => "pod-ip",
            Target::ClusterIp => "cluster-ip",
            Target::NodeIp => "node-ip",
            Target::NodePort => "node-port",
        }
    }

    /// Whether a service proxy translates this target (and so a cell to it
    /// names its proxy and must show the proxy's proof).
    pub fn is_service(self) -> bool {
        matches!(self, Target::ClusterIp | Target::NodePort)
    }

    pub fn names() -> String {
        Target::ALL.map(|t| t.name()).join(", ")
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown target \"{s}\" (known: {})", Target::names()))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How pod traffic crosses nodes in a multi-node lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Overlay {
    /// Each node routes the other nodes' pod CIDRs via their underlay
    /// addresses, no encapsulation (Calico's BGP mode).
    Routed,
    /// A VXLAN device per node with static FDB and neighbour entries
    /// (Flannel's vxlan backend).
    Vxlan,
}

impl Overlay {
    pub const ALL: [Overlay; 2] = [Overlay::Routed, Overlay::Vxlan];

    pub fn name(self) -> &'static str {
        match self {
            Overlay::Routed => "routed",
            Overlay::Vxlan => "vxlan",
        }
    }
}

impl FromStr for Overlay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Overlay::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| format!("unknown overlay \"{s}\" (known: routed, vxlan)"))
    }
}

impl fmt::Display for Overlay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_datapath_name_round_trips() {
        for d in Datapath::ALL {
            assert_eq!(d.name().parse::<Datapath>().unwrap(), d);
        }
        for p in ProxyKind::ALL {
            assert_eq!(p.name().parse::<ProxyKind>().unwrap(), p);
        }
        for t in Target::ALL {
            assert_eq!(t.name().parse::<Target>().unwrap(), t);
        }
        assert!("vethrouted"
            .parse::<Datapath>()
            .unwrap_err()
            .contains("known:"));
    }
}
