//! Which (datapath, service proxy) pairs can carry service traffic: the one
//! table that says so. An impossible pair is refused when the user names it
//! and skipped in a default matrix; a pair predicted not to carry the
//! traffic is tried, and its failure is the expected result.

use crate::kinds::{Datapath, ProxyKind, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    /// Expected to work.
    Works,
    /// Tried, expected to fail for this reason (the cell is `unreachable`
    /// when it does, `failed` when it unexpectedly works).
    Unreachable(String),
    /// Cannot be built at all; the reason says why and what to use instead.
    Impossible(String),
}

/// What to expect from `proxy` on `datapath` for traffic to `target`.
pub fn pairing(datapath: Datapath, proxy: ProxyKind, target: Target) -> Pairing {
    use Datapath::*;
    if datapath == IpvlanEbpf && proxy != ProxyKind::Ebpf {
        return Pairing::Impossible(format!(
            "ipvlan-ebpf is ipvlan-l2 with the eBPF proxy: to measure the {proxy} proxy on ipvlan, use ipvlan-l2"
        ));
    }
    if datapath == NetkitEbpf && proxy != ProxyKind::Ebpf {
        return Pairing::Impossible(format!(
            "netkit-ebpf is netkit with the eBPF proxy: to measure the {proxy} proxy on netkit, use netkit"
        ));
    }
    // Node-port traffic is masqueraded by every NAT proxy (as kube-proxy
    // does for externalTrafficPolicy=Cluster), so its replies return
    // through the node whatever the wiring.
    if target != Target::ClusterIp || !proxy.uses_netfilter_nat() {
        return Pairing::Works;
    }
    match datapath {
        BridgeNfOff => Pairing::Unreachable(
            "with net.bridge.bridge-nf-call-iptables=0 the server's replies are switched at L2 and miss the reverse NAT, so they never come back from the cluster IP".into(),
        ),
        VethEbpf => Pairing::Unreachable(
            "eBPF host routing hands the server's replies straight to the client pod (bpf_redirect_peer), past the node's conntrack, so the reverse NAT never happens".into(),
        ),
        _ => Pairing::Works,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blog_pairs_work() {
        for d in [
            Datapath::VethRouted,
            Datapath::Bridge,
            Datapath::Macvlan,
            Datapath::IpvlanL2,
            Datapath::IpvlanL3,
            Datapath::Netkit,
        ] {
            for p in ProxyKind::ALL {
                assert_eq!(pairing(d, p, Target::ClusterIp), Pairing::Works, "{d}/{p}");
            }
        }
        assert_eq!(
            pairing(Datapath::VethEbpf, ProxyKind::Ebpf, Target::ClusterIp),
            Pairing::Works
        );
        assert_eq!(
            pairing(Datapath::IpvlanEbpf, ProxyKind::Ebpf, Target::ClusterIp),
            Pairing::Works
        );
        assert_eq!(
            pairing(Datapath::NetkitEbpf, ProxyKind::Ebpf, Target::ClusterIp),
            Pairing::Works
        );
        assert!(matches!(
            pairing(Datapath::NetkitEbpf, ProxyKind::Iptables, Target::ClusterIp),
            Pairing::Impossible(r) if r.contains("use netkit")
        ));
    }

    #[test]
    fn nat_proxies_on_bridge_nf_off_are_unreachable_but_not_socket_lb() {
        for p in [ProxyKind::Iptables, ProxyKind::Nftables, ProxyKind::Ipvs] {
            assert!(matches!(
                pairing(Datapath::BridgeNfOff, p, Target::ClusterIp),
                Pairing::Unreachable(r) if r.contains("reverse NAT")
            ));
            assert!(matches!(
                pairing(Datapath::VethEbpf, p, Target::ClusterIp),
                Pairing::Unreachable(r) if r.contains("bpf_redirect_peer")
            ));
            assert_eq!(
                pairing(Datapath::BridgeNfOff, p, Target::NodePort),
                Pairing::Works
            );
        }
        for p in [ProxyKind::Ebpf, ProxyKind::SocketLb] {
            assert_eq!(
                pairing(Datapath::BridgeNfOff, p, Target::ClusterIp),
                Pairing::Works
            );
        }
    }

    #[test]
    fn ipvlan_ebpf_takes_only_the_ebpf_proxy() {
        assert!(matches!(
            pairing(Datapath::IpvlanEbpf, ProxyKind::Iptables, Target::ClusterIp),
            Pairing::Impossible(r) if r.contains("ipvlan-l2")
        ));
        assert!(matches!(
            pairing(Datapath::IpvlanEbpf, ProxyKind::SocketLb, Target::PodIp),
            Pairing::Impossible(_)
        ));
    }
}
