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
}

impl Datapath {
    pub const ALL: [Datapath; 8] = [
        Datapath::VethRouted,
        Datapath::Bridge,
        Datapath::BridgeNfOff,
        Datapath::Macvlan,
        Datapath::IpvlanL2,
        Datapath::IpvlanL3,
        Datapath::VethEbpf,
        Datapath::IpvlanEbpf,
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
        }
    }

    /// The service proxy that makes cluster IPs work on this datapath.
    pub fn service_proxy(self) -> ServiceProxy {
        match self {
            Datapath::VethEbpf | Datapath::IpvlanEbpf => ServiceProxy::Ebpf,
            _ => ServiceProxy::Iptables,
        }
    }

    /// Whether the wiring works in multi-node labs: the eBPF datapaths
    /// redirect and reverse-translate only between local pods, and the
    /// child-link ones hang off a private uplink.
    pub fn works_across_nodes(self) -> bool {
        matches!(
            self,
            Datapath::VethRouted | Datapath::Bridge | Datapath::BridgeNfOff
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

/// Who translates cluster IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceProxy {
    Iptables,
    Ebpf,
}

impl ServiceProxy {
    pub fn name(self) -> &'static str {
        match self {
            ServiceProxy::Iptables => "iptables",
            ServiceProxy::Ebpf => "ebpf",
        }
    }
}

/// What the client connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    PodIp,
    ClusterIp,
    NodeIp,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::PodIp, Target::ClusterIp, Target::NodeIp];

    pub fn name(self) -> &'static str {
        match self {
            Target::PodIp => "pod-ip",
            Target::ClusterIp => "cluster-ip",
            Target::NodeIp => "node-ip",
        }
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown target \"{s}\" (known: pod-ip, cluster-ip, node-ip)"))
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
        assert!("vethrouted"
            .parse::<Datapath>()
            .unwrap_err()
            .contains("known:"));
    }
}
