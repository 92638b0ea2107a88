//! Checks the whole topology and resolves it into a [`Plan`]. Runs before any
//! kernel call, so a bad file never leaves anything behind.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use ipnet::Ipv4Net;
use toml::Spanned;

use super::error::TopologyError;
use super::plan::*;
use super::raw;
use crate::kinds::{Datapath, Overlay, ProxyKind, Target};
use crate::workload::{Tool, Workload};

const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
const DEFAULT_ROUTED_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 24);
const DEFAULT_UNDERLAY_CIDR: &str = "10.0.0.0/24";
const DEFAULT_UNDERLAY_MTU: u32 = 1500;
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
const DEFAULT_REPETITIONS: u32 = 3;
/// Node and pod names become namespace names (`dl3f9a-<name>`).
const NAME_MAX: usize = 40;

/// Collects the context every check needs to point at a place in the file.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: String,
    ) -> Result<T, TopologyError> {
        Err(TopologyError::at(
            self.path, self.text, span, field, message,
        ))
    }

    fn name(&self, value: &Spanned<String>, field: &str) -> Result<String, TopologyError> {
        let name = value.get_ref();
        let ok_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if name.is_empty() || name.len() > NAME_MAX || !ok_chars || name.starts_with('-') {
            return self.err(
                value.span(),
                field,
                format!(
                    "\"{name}\" is not a valid name: use 1 to {NAME_MAX} lower-case letters, digits and '-', not starting with '-'"
                ),
            );
        }
        if name == crate::overlay::UNDERLAY_NS {
            return self.err(
                value.span(),
                field,
                format!("\"{name}\" is reserved for the namespace of the underlay switch"),
            );
        }
        Ok(name.clone())
    }

    fn ipv4(&self, value: &Spanned<String>, field: &str) -> Result<Ipv4Addr, TopologyError> {
        Ipv4Addr::from_str(value.get_ref().trim()).or_else(|_| {
            self.err(
                value.span(),
                field,
                format!("\"{}\" is not an IPv4 address", value.get_ref()),
            )
        })
    }

    fn cidr(&self, value: &Spanned<String>, field: &str) -> Result<Ipv4Net, TopologyError> {
        let net = Ipv4Net::from_str(value.get_ref().trim()).or_else(|_| {
            self.err(
                value.span(),
                field,
                format!(
                    "\"{}\" is not an IPv4 CIDR like 192.168.10.0/24",
                    value.get_ref()
                ),
            )
        })?;
        if net.trunc() != net {
            return self.err(
                value.span(),
                field,
                format!("\"{net}\" has host bits set; did you mean {}?", net.trunc()),
            );
        }
        if net.prefix_len() > 30 {
            return self.err(
                value.span(),
                field,
                format!("\"{net}\" is too small: at most /30"),
            );
        }
        Ok(net)
    }
}

pub fn validate(path: &Path, text: &str, raw: raw::Topology) -> Result<Plan, TopologyError> {
    let c = Checker { path, text };
    let name = match &raw.name {
        Some(n) => c.name(n, "name")?,
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "topology".into()),
    };
    let service_cidr = match &raw.service_cidr {
        Some(s) => c.cidr(s, "service_cidr")?,
        None => DEFAULT_SERVICE_CIDR.parse().expect("default service CIDR"),
    };
    if raw.nodes.is_empty() {
        return c.err(0..0, "nodes", "the topology has no [[nodes]]".into());
    }
    let mut nodes = check_nodes(&c, &raw.nodes, service_cidr)?;
    let underlay = check_underlay(&c, &raw, &mut nodes, service_cidr)?;
    let pods = check_pods(&c, &raw.pods, &nodes)?;
    let services = check_services(&c, &raw.services, &nodes, &pods, service_cidr)?;
    let mut plan = Plan {
        name,
        description: raw.description,
        source: path.to_path_buf(),
        service_cidr,
        nodes,
        pods,
        services,
        underlay,
        matrix: None,
    };
    if let Some(m) = &raw.matrix {
        plan.matrix = Some(check_matrix(&c, m, &plan)?);
    }
    Ok(plan)
}

fn check_nodes(
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
fn check_underlay(
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

fn check_pods(
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

fn check_services(
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

fn check_matrix(
    c: &Checker,
    m: &Spanned<raw::Matrix>,
    plan: &Plan,
) -> Result<Matrix, TopologyError> {
    let raw = m.get_ref();
    let mut datapaths = Vec::new();
    for d in raw.datapaths.get_ref() {
        let dp =
            Datapath::from_str(d.get_ref()).or_else(|e| c.err(d.span(), "matrix.datapaths", e))?;
        if datapaths.contains(&dp) {
            return c.err(
                d.span(),
                "matrix.datapaths",
                format!("\"{dp}\" is listed twice"),
            );
        }
        datapaths.push(dp);
    }
    if datapaths.is_empty() {
        return c.err(
            raw.datapaths.span(),
            "matrix.datapaths",
            "no datapath to measure".into(),
        );
    }
    let mut proxies = Vec::new();
    if let Some(list) = &raw.service_proxies {
        for p in list.get_ref() {
            let proxy = ProxyKind::from_str(p.get_ref())
                .or_else(|e| c.err(p.span(), "matrix.service_proxies", e))?;
            if proxies.contains(&proxy) {
                return c.err(
                    p.span(),
                    "matrix.service_proxies",
                    format!("\"{proxy}\" is listed twice"),
                );
            }
            proxies.push(proxy);
        }
        if proxies.is_empty() {
            return c.err(
                list.span(),
                "matrix.service_proxies",
                "an empty list measures nothing: leave the key out for each datapath's natural proxy".into(),
            );
        }
    }
    let mut targets = Vec::new();
    match &raw.targets {
        None => targets.push(Target::PodIp),
        Some(list) => {
            for t in list.get_ref() {
                let target = Target::from_str(t.get_ref())
                    .or_else(|e| c.err(t.span(), "matrix.targets", e))?;
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
    }
    let mut workloads = Vec::new();
    match &raw.workloads {
        None => workloads.push(Workload::TcpStream),
        Some(list) => {
            for w in list.get_ref() {
                let workload = Workload::from_str(w.get_ref())
                    .or_else(|e| c.err(w.span(), "matrix.workloads", e.to_string()))?;
                if !workloads.contains(&workload) {
                    workloads.push(workload);
                }
            }
        }
    }
    let overlays = check_overlays(c, raw, plan)?;
    if !overlays.is_empty() {
        if let Some(d) = datapaths.iter().find(|d| !d.works_across_nodes()) {
            return c.err(
                raw.datapaths.span(),
                "matrix.datapaths",
                format!(
                    "datapath \"{d}\" works on one node only; across nodes use {}",
                    Datapath::ALL
                        .iter()
                        .filter(|d| d.works_across_nodes())
                        .map(|d| d.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    let paths = match (&raw.paths, &raw.client, &raw.server) {
        (Some(paths), None, None) => {
            // Paths name their own targets and services: anything else
            // would be silently ignored.
            if let Some(t) = &raw.targets {
                return c.err(
                    t.span(),
                    "matrix.targets",
                    "with [[matrix.paths]] each path names its target".into(),
                );
            }
            if let Some(s) = &raw.service {
                return c.err(
                    s.span(),
                    "matrix.service",
                    "with [[matrix.paths]] a cluster-ip path uses the service of its server pod"
                        .into(),
                );
            }
            check_paths(c, paths, plan)?
        }
        (Some(_), _, _) => {
            return c.err(
                m.span(),
                "matrix.paths",
                "give either paths or client and server, not both".into(),
            )
        }
        (None, Some(client), Some(server)) => {
            check_client_server(c, raw, m, plan, client, server, &targets)?
        }
        (None, _, _) => {
            return c.err(
                m.span(),
                "matrix",
                "name the client and server pods, or [[matrix.paths]]".into(),
            )
        }
    };
    let duration = match &raw.duration {
        None => DEFAULT_DURATION,
        Some(v) => {
            let text = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => other.to_string(),
            };
            parse_duration(&text).or_else(|e| c.err(v.span(), "matrix.duration", e))?
        }
    };
    let repetitions = match &raw.repetitions {
        None => DEFAULT_REPETITIONS,
        Some(r) if *r.get_ref() < 1 || *r.get_ref() > 1000 => {
            return c.err(
                r.span(),
                "matrix.repetitions",
                format!("{} repetitions: use 1 to 1000", r.get_ref()),
            )
        }
        Some(r) => *r.get_ref() as u32,
    };
    let tool = match &raw.tool {
        None => Tool::Builtin,
        Some(t) => Tool::from_str(t.get_ref())
            .or_else(|e| c.err(t.span(), "matrix.tool", e.to_string()))?,
    };
    Ok(Matrix {
        datapaths,
        proxies,
        overlays,
        paths,
        workloads,
        duration,
        repetitions,
        tool,
    })
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// An address a pod may hold: inside the CIDR, neither network nor broadcast.
fn is_host_of(cidr: Ipv4Net, ip: Ipv4Addr) -> bool {
    cidr.contains(&ip) && ip != cidr.network() && ip != cidr.broadcast()
}

/// Overlays are chosen for multi-node labs only; default: routed.
fn check_overlays(
    c: &Checker,
    raw: &raw::Matrix,
    plan: &Plan,
) -> Result<Vec<Overlay>, TopologyError> {
    let Some(list) = &raw.overlays else {
        return Ok(if plan.nodes.len() > 1 {
            vec![Overlay::Routed]
        } else {
            Vec::new()
        });
    };
    if plan.nodes.len() < 2 {
        return c.err(
            list.span(),
            "matrix.overlays",
            "an overlay joins nodes: this topology has only one".into(),
        );
    }
    let mut overlays = Vec::new();
    for o in list.get_ref() {
        let overlay =
            Overlay::from_str(o.get_ref()).or_else(|e| c.err(o.span(), "matrix.overlays", e))?;
        if !overlays.contains(&overlay) {
            overlays.push(overlay);
        }
    }
    Ok(overlays)
}

/// Single-node form: one client and one server pod, measured on every target.
fn check_client_server(
    c: &Checker,
    raw: &raw::Matrix,
    m: &Spanned<raw::Matrix>,
    plan: &Plan,
    client: &Spanned<String>,
    server: &Spanned<String>,
    targets: &[Target],
) -> Result<Vec<PathPlan>, TopologyError> {
    let pod_field = |v: &Spanned<String>, field: &str| {
        plan.pod(v.get_ref()).ok_or_else(|| {
            TopologyError::at(
                c.path,
                c.text,
                v.span(),
                field,
                format!("unknown pod \"{}\"", v.get_ref()),
            )
        })
    };
    let client = pod_field(client, "matrix.client")?;
    let server_pod = pod_field(server, "matrix.server")?;
    if client == server_pod {
        return c.err(
            server.span(),
            "matrix.server",
            "client and server are the same pod".into(),
        );
    }
    let service = match &raw.service {
        Some(s) => {
            let idx = plan.service(s.get_ref()).ok_or_else(|| {
                TopologyError::at(
                    c.path,
                    c.text,
                    s.span(),
                    "matrix.service",
                    format!("unknown service \"{}\"", s.get_ref()),
                )
            })?;
            if !plan.services[idx].backends.contains(&server_pod) {
                return c.err(
                    s.span(),
                    "matrix.service",
                    format!(
                        "service \"{}\" is not backed by the server pod",
                        s.get_ref()
                    ),
                );
            }
            Some(idx)
        }
        None => plan
            .services
            .iter()
            .position(|s| s.backends.contains(&server_pod)),
    };
    let targets_span = raw.targets.as_ref().map(|t| t.span()).unwrap_or(m.span());
    if targets.contains(&Target::ClusterIp) && service.is_none() {
        return c.err(
            targets_span,
            "matrix.targets",
            "cluster-ip is measured but no service is backed by the server pod".into(),
        );
    }
    if targets.contains(&Target::NodeIp) {
        return c.err(
            targets_span,
            "matrix.targets",
            "node-ip targets are measured with [[matrix.paths]] whose server is a node".into(),
        );
    }
    let node_port_service = match service {
        Some(s) if plan.services[s].node_port.is_some() => Some(s),
        _ => plan
            .services
            .iter()
            .position(|s| s.backends.contains(&server_pod) && s.node_port.is_some()),
    };
    if targets.contains(&Target::NodePort) && node_port_service.is_none() {
        return c.err(
            targets_span,
            "matrix.targets",
            "node-port is measured but no service with a node_port is backed by the server pod"
                .into(),
        );
    }
    Ok(targets
        .iter()
        .map(|&target| PathPlan {
            client: Endpoint::Pod(client),
            server: Endpoint::Pod(server_pod),
            target,
            service: match target {
                Target::ClusterIp => service,
                Target::NodePort => node_port_service,
                _ => None,
            },
            via: (target == Target::NodePort).then_some(plan.pods[server_pod].node),
        })
        .collect())
}

/// Multi-node form: explicit client -> server pairs of pods and nodes.
fn check_paths(
    c: &Checker,
    paths: &[raw::Path],
    plan: &Plan,
) -> Result<Vec<PathPlan>, TopologyError> {
    if paths.is_empty() {
        return c.err(0..0, "matrix.paths", "no path to measure".into());
    }
    let endpoint = |v: &Spanned<String>, field: &str| -> Result<Endpoint, TopologyError> {
        if let Some(p) = plan.pod(v.get_ref()) {
            return Ok(Endpoint::Pod(p));
        }
        match plan.nodes.iter().position(|n| &n.name == v.get_ref()) {
            Some(n) => Ok(Endpoint::Node(n)),
            None => c.err(
                v.span(),
                field,
                format!("\"{}\" is neither a pod nor a node", v.get_ref()),
            ),
        }
    };
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let field = |f: &str| format!("matrix.paths[{i}].{f}");
        let client = endpoint(&p.client, &field("client"))?;
        let server = endpoint(&p.server, &field("server"))?;
        if client == server && matches!(client, Endpoint::Pod(_)) {
            return c.err(
                p.server.span(),
                &field("server"),
                "client and server are the same pod".into(),
            );
        }
        let default_target = match server {
            Endpoint::Pod(_) => Target::PodIp,
            Endpoint::Node(_) => Target::NodeIp,
        };
        let target = match &p.target {
            Some(t) => {
                Target::from_str(t.get_ref()).or_else(|e| c.err(t.span(), &field("target"), e))?
            }
            None => default_target,
        };
        let span = p
            .target
            .as_ref()
            .map(|t| t.span())
            .unwrap_or(p.server.span());
        let service =
            match (target, server) {
                (Target::NodeIp, Endpoint::Node(_)) | (Target::PodIp, Endpoint::Pod(_)) => None,
                (Target::NodePort, Endpoint::Pod(pod)) => {
                    match plan
                        .services
                        .iter()
                        .position(|s| s.backends.contains(&pod) && s.node_port.is_some())
                    {
                        Some(s) => Some(s),
                        None => return c.err(
                            span,
                            &field("target"),
                            "node-port needs a service with a node_port backed by the server pod"
                                .into(),
                        ),
                    }
                }
                (Target::ClusterIp, Endpoint::Pod(pod)) => {
                    match plan.services.iter().position(|s| s.backends.contains(&pod)) {
                        Some(s) => Some(s),
                        None => {
                            return c.err(
                                span,
                                &field("target"),
                                "cluster-ip needs a service backed by the server pod".into(),
                            )
                        }
                    }
                }
                (t, _) => {
                    return c.err(
                        span,
                        &field("target"),
                        format!("target {t} does not fit server \"{}\"", p.server.get_ref()),
                    )
                }
            };
        let via = match (&p.via, target, server) {
            (Some(v), Target::NodePort, _) => {
                match plan.nodes.iter().position(|n| &n.name == v.get_ref()) {
                    Some(n) => Some(n),
                    None => {
                        return c.err(
                            v.span(),
                            &field("via"),
                            format!("unknown node \"{}\"", v.get_ref()),
                        )
                    }
                }
            }
            (Some(v), _, _) => {
                return c.err(
                    v.span(),
                    &field("via"),
                    "via names the node of a node-port target only".into(),
                )
            }
            (None, Target::NodePort, s) => Some(plan.endpoint_node(s)),
            (None, _, _) => None,
        };
        out.push(PathPlan {
            client,
            server,
            target,
            service,
            via,
        });
    }
    Ok(out)
}
