//! The [[services]] section: cluster IPs, ports, node ports and backends.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::check::*;
use super::error::TopologyError;
use super::plan::*;
use super::raw;

pub(super) fn check_services(
    c: &Checker,
    raw: &[raw::Service],
    nodes: &[NodePlan],
    pods: &[PodPlan],
    service_cidr: Ipv4Net,
) -> Result<Vec<ServicePlan>, TopologyError> {
    let mut services: Vec<ServicePlan> = Vec::new();
    let mut endpoints: HashSet<(Ipv4Addr, u16, Protocol)> = HashSet::new();
    for (i, s) in raw.iter().enumerate() {
        let field = |f: &str| format!("services[{i}].{f}");
        let name = c.name(&s.name, &field("name"))?;
        if services.iter().any(|o| o.name == name) {
            return c.err(
                s.name.span(),
                &field("name"),
                format!("service \"{name}\" is defined twice"),
            );
        }
        let cluster_ip = c.ipv4(&s.cluster_ip, &field("cluster_ip"))?;
        if let Some(n) = nodes.iter().find(|n| n.pod_cidr.contains(&cluster_ip)) {
            return c.err(
                s.cluster_ip.span(),
                &field("cluster_ip"),
                format!(
                    "{cluster_ip} lies inside node \"{}\"'s pod_cidr {}",
                    n.name, n.pod_cidr
                ),
            );
        }
        if !service_cidr.contains(&cluster_ip) {
            return c.err(
                s.cluster_ip.span(),
                &field("cluster_ip"),
                format!("{cluster_ip} lies outside service_cidr {service_cidr}"),
            );
        }
        let port = *s.port.get_ref();
        if port == 0 {
            return c.err(
                s.port.span(),
                &field("port"),
                "port 0 is not a service port".into(),
            );
        }
        let target_port = match &s.target_port {
            Some(t) if *t.get_ref() == 0 => {
                return c.err(
                    t.span(),
                    &field("target_port"),
                    "port 0 is not a target port".into(),
                )
            }
            Some(t) => *t.get_ref(),
            None => port,
        };
        let protocol = match s
            .protocol
            .as_ref()
            .map(|p| (p.get_ref().as_str(), p.span()))
        {
            None | Some(("tcp", _)) => Protocol::Tcp,
            Some(("udp", _)) => Protocol::Udp,
            Some((other, span)) => {
                return c.err(
                    span,
                    &field("protocol"),
                    format!("unknown protocol \"{other}\" (tcp or udp)"),
                )
            }
        };
        let node_port = match &s.node_port {
            Some(n) if *n.get_ref() == 0 => {
                return c.err(
                    n.span(),
                    &field("node_port"),
                    "port 0 is not a node port".into(),
                )
            }
            Some(n) => {
                let taken = services
                    .iter()
                    .find(|o| o.node_port == Some(*n.get_ref()) && o.protocol == protocol);
                if let Some(o) = taken {
                    return c.err(
                        n.span(),
                        &field("node_port"),
                        format!(
                            "node port {}/{} is taken by service \"{}\"",
                            n.get_ref(),
                            protocol.name(),
                            o.name
                        ),
                    );
                }
                Some(*n.get_ref())
            }
            None => None,
        };
        if !endpoints.insert((cluster_ip, port, protocol)) {
            return c.err(
                s.cluster_ip.span(),
                &field("cluster_ip"),
                format!(
                    "{cluster_ip}:{port}/{} is used by another service",
                    protocol.name()
                ),
            );
        }
        if s.backends.get_ref().is_empty() {
            return c.err(
                s.backends.span(),
                &field("backends"),
                "a service needs at least one backend pod".into(),
            );
        }
        let mut backends = Vec::new();
        for b in s.backends.get_ref() {
            let Some(pod) = pods.iter().position(|p| &p.name == b.get_ref()) else {
                return c.err(
                    b.span(),
                    &field("backends"),
                    format!("unknown pod \"{}\"", b.get_ref()),
                );
            };
            if backends.contains(&pod) {
                return c.err(
                    b.span(),
                    &field("backends"),
                    format!("pod \"{}\" is listed twice", b.get_ref()),
                );
            }
            backends.push(pod);
        }
        services.push(ServicePlan {
            name,
            cluster_ip,
            port,
            target_port,
            protocol,
            node_port,
            backends,
        });
    }
    Ok(services)
}
