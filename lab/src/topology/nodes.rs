//! The [[nodes]], [underlay] and [[pods]] sections: names, CIDRs and
//! addresses, resolved with their defaults.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::check::*;
use super::error::TopologyError;
use super::plan::*;
use super::raw;

const DEFAULT_ROUTED_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 24);
const DEFAULT_UNDERLAY_CIDR: &str = "10.0.0.0/24";
const DEFAULT_UNDERLAY_MTU: u32 = 1500;

pub(super) fn check_nodes(
    c: &Checker,
    raw: &[raw::Node],
    service_cidr: Ipv4Net,
) -> Result<Vec<NodePlan>, TopologyError> {
    let mut nodes: Vec<NodePlan> = Vec::new();
    for (i, n) in raw.iter().enumerate() {
        let field = |f: &str| format!("nodes[{i}].{f}");
        let name = c.name(&n.name, &field("name"))?;
        if nodes.iter().any(|o| o.name == name) {
            return c.err(
                n.name.span(),
                &field("name"),
                format!("node \"{name}\" is defined twice"),
            );
        }
        let pod_cidr = c.cidr(&n.pod_cidr, &field("pod_cidr"))?;
        if let Some(other) = nodes
            .iter()
            .find(|o| o.pod_cidr.contains(&pod_cidr) || pod_cidr.contains(&o.pod_cidr))
        {
            return c.err(
                n.pod_cidr.span(),
                &field("pod_cidr"),
                format!(
                    "{pod_cidr} overlaps {} of node \"{}\"",
                    other.pod_cidr, other.name
                ),
            );
        }
        if overlaps(pod_cidr, service_cidr) {
            return c.err(
                n.pod_cidr.span(),
                &field("pod_cidr"),
                format!("{pod_cidr} overlaps the service CIDR {service_cidr}"),
            );
        }
        let first_host = Ipv4Addr::from(u32::from(pod_cidr.network()) + 1);
        let gateway = match &n.gateway {
            Some(g) => {
                let ip = c.ipv4(g, &field("gateway"))?;
                if !is_host_of(pod_cidr, ip) {
                    return c.err(
                        g.span(),
                        &field("gateway"),
                        format!("{ip} is not a host address of {pod_cidr}"),
                    );
                }
                ip
            }
            None => first_host,
        };
        let routed_gateway = match &n.routed_gateway {
            Some(g) => {
                let ip = c.ipv4(g, &field("routed_gateway"))?;
                if pod_cidr.contains(&ip) || service_cidr.contains(&ip) {
                    return c.err(
                        g.span(),
                        &field("routed_gateway"),
                        format!("{ip} must lie outside the pod and service CIDRs (a link-local address such as 169.254.10.24)"),
                    );
                }
                ip
            }
            None => DEFAULT_ROUTED_GATEWAY,
        };
        nodes.push(NodePlan {
            name,
            pod_cidr,
            gateway,
            routed_gateway,
            underlay_ip: None,
        });
    }
    Ok(nodes)
}

/// Multi-node labs get an underlay: its CIDR must not overlap pod or
/// service CIDRs, and every node gets an address on it.
pub(super) fn check_underlay(
    c: &Checker,
    raw: &raw::Topology,
    nodes: &mut [NodePlan],
    service_cidr: Ipv4Net,
) -> Result<Option<UnderlayPlan>, TopologyError> {
    let explicit: Vec<_> = raw
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.underlay_address.as_ref().map(|a| (i, a)))
        .collect();
    if nodes.len() < 2 {
        if let Some(u) = &raw.underlay {
            return c.err(
                u.span(),
                "underlay",
                "an underlay joins nodes: this topology has only one".into(),
            );
        }
        if let Some((i, a)) = explicit.first() {
            return c.err(
                a.span(),
                &format!("nodes[{i}].underlay_address"),
                "an underlay address needs a second node".into(),
            );
        }
        return Ok(None);
    }
    let u = raw.underlay.as_ref().map(|u| u.get_ref());
    let cidr = match u.and_then(|u| u.cidr.as_ref()) {
        Some(s) => c.cidr(s, "underlay.cidr")?,
        None => DEFAULT_UNDERLAY_CIDR
            .parse()
            .expect("default underlay CIDR"),
    };
    let cidr_span = u
        .and_then(|u| u.cidr.as_ref())
        .map(|s| s.span())
        .unwrap_or(0..0);
    if overlaps(cidr, service_cidr) {
        return c.err(
            cidr_span,
            "underlay.cidr",
            format!("{cidr} overlaps the service CIDR {service_cidr}"),
        );
    }
    if let Some(n) = nodes.iter().find(|n| overlaps(cidr, n.pod_cidr)) {
        return c.err(
            cidr_span,
            "underlay.cidr",
            format!(
                "{cidr} overlaps node \"{}\"'s pod_cidr {}",
                n.name, n.pod_cidr
            ),
        );
    }
    let mtu = match u.and_then(|u| u.mtu.as_ref()) {
        Some(m) if !(1280..=9000).contains(m.get_ref()) => {
            return c.err(
                m.span(),
                "underlay.mtu",
                format!("MTU {} outside 1280..9000", m.get_ref()),
            )
        }
        Some(m) => *m.get_ref(),
        None => DEFAULT_UNDERLAY_MTU,
    };
    let rate = match u.and_then(|u| u.rate.as_ref()) {
        Some(r) => {
            let text = r.get_ref().trim().to_lowercase();
            let digits = text.trim_end_matches(|ch: char| ch.is_ascii_alphabetic());
            let unit = &text[digits.len()..];
            if digits.parse::<f64>().map_or(true, |v| v <= 0.0)
                || !["kbit", "mbit", "gbit"].contains(&unit)
            {
                return c.err(
                    r.span(),
                    "underlay.rate",
                    format!("\"{}\" is not a rate like 1gbit, 500mbit", r.get_ref()),
                );
            }
            Some(text)
        }
        None => None,
    };
    let mut used: Vec<Ipv4Addr> = Vec::new();
    for (i, a) in &explicit {
        let ip = c.ipv4(a, &format!("nodes[{i}].underlay_address"))?;
        if !is_host_of(cidr, ip) || used.contains(&ip) {
            return c.err(
                a.span(),
                &format!("nodes[{i}].underlay_address"),
                format!("{ip} is not a free host address of the underlay {cidr}"),
            );
        }
        used.push(ip);
        nodes[*i].underlay_ip = Some(ip);
    }
    let mut free = cidr.hosts().filter(|ip| !used.contains(ip));
    for n in nodes.iter_mut().filter(|n| n.underlay_ip.is_none()) {
        n.underlay_ip = Some(free.next().ok_or_else(|| {
            TopologyError::at(
                c.path,
                c.text,
                cidr_span.clone(),
                "underlay.cidr",
                format!("{cidr} has too few addresses for the nodes"),
            )
        })?);
    }
    Ok(Some(UnderlayPlan { cidr, mtu, rate }))
}

pub(super) fn check_pods(
    c: &Checker,
    raw: &[raw::Pod],
    nodes: &[NodePlan],
) -> Result<Vec<PodPlan>, TopologyError> {
    let mut pods: Vec<PodPlan> = Vec::new();
    let mut taken: HashMap<Ipv4Addr, String> = HashMap::new();
    for n in nodes {
        taken.insert(n.gateway, format!("the gateway of node \"{}\"", n.name));
    }
    // Explicit addresses first, so automatic ones never steal them.
    for (i, p) in raw.iter().enumerate() {
        let field = |f: &str| format!("pods[{i}].{f}");
        let name = c.name(&p.name, &field("name"))?;
        if pods.iter().any(|o| o.name == name) {
            return c.err(
                p.name.span(),
                &field("name"),
                format!("pod \"{name}\" is defined twice"),
            );
        }
        if nodes.iter().any(|n| n.name == name) {
            return c.err(
                p.name.span(),
                &field("name"),
                format!("\"{name}\" is already the name of a node"),
            );
        }
        let node_name = p.node.get_ref();
        let Some(node) = nodes.iter().position(|n| &n.name == node_name) else {
            return c.err(
                p.node.span(),
                &field("node"),
                format!(
                    "unknown node \"{node_name}\" (known: {})",
                    nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        };
        let interface = match &p.interface {
            Some(ifname) => {
                crate::names::check_ifname(ifname.get_ref())
                    .or_else(|m| c.err(ifname.span(), &field("interface"), m))?;
                ifname.get_ref().clone()
            }
            None => "eth0".to_string(),
        };
        let address = match &p.address {
            Some(a) => {
                let ip = c.ipv4(a, &field("address"))?;
                let cidr = nodes[node].pod_cidr;
                if !is_host_of(cidr, ip) {
                    return c.err(
                        a.span(),
                        &field("address"),
                        format!(
                            "{ip} is not a host address of node \"{node_name}\"'s pod_cidr {cidr}"
                        ),
                    );
                }
                if let Some(owner) = taken.get(&ip) {
                    return c.err(
                        a.span(),
                        &field("address"),
                        format!("{ip} is already {owner}"),
                    );
                }
                taken.insert(ip, format!("the address of pod \"{name}\""));
                ip
            }
            None => Ipv4Addr::UNSPECIFIED,
        };
        pods.push(PodPlan {
            name,
            node,
            address,
            interface,
        });
    }
    for (i, pod) in pods.iter_mut().enumerate() {
        if pod.address.is_unspecified() {
            let cidr = nodes[pod.node].pod_cidr;
            let Some(ip) = cidr.hosts().find(|ip| !taken.contains_key(ip)) else {
                return c.err(
                    raw[i].name.span(),
                    &format!("pods[{i}].address"),
                    format!(
                        "node \"{}\"'s pod_cidr {cidr} has no free address left",
                        nodes[pod.node].name
                    ),
                );
            };
            taken.insert(ip, format!("the address of pod \"{}\"", pod.name));
            pod.address = ip;
        }
    }
    Ok(pods)
}
