//! The validated plan: every name resolved, every address assigned. Nothing
//! downstream needs to check the topology again.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::kinds::{Datapath, Overlay, ProxyKind, Target};
use crate::workload::{Tool, Workload};

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub source: PathBuf,
    pub service_cidr: Ipv4Net,
    pub nodes: Vec<NodePlan>,
    pub pods: Vec<PodPlan>,
    pub services: Vec<ServicePlan>,
    /// Present when the lab has more than one node.
    pub underlay: Option<UnderlayPlan>,
    pub matrix: Option<Matrix>,
    /// `[sweep]`: service counts to measure the matrix at.
    pub sweep: Option<super::sweep::Sweep>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnderlayPlan {
    pub cidr: Ipv4Net,
    pub mtu: u32,
    /// tc tbf rate of every node's underlay link, e.g. "1gbit".
    pub rate: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    pub name: String,
    pub pod_cidr: Ipv4Net,
    /// Gateway of L2 datapaths (bridge, macvlan, ipvlan): inside pod_cidr.
    pub gateway: Ipv4Addr,
    /// Link-local gateway of routed datapaths (veth-routed, veth-ebpf).
    pub routed_gateway: Ipv4Addr,
    /// The node's own address on the underlay (multi-node labs).
    pub underlay_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodPlan {
    pub name: String,
    /// Index into `Plan::nodes`.
    pub node: usize,
    pub address: Ipv4Addr,
    pub interface: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub name: String,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub target_port: u16,
    pub protocol: Protocol,
    /// Port on every node's addresses that also reaches the service
    /// (kube's NodePort), if any.
    pub node_port: Option<u16>,
    /// Indexes into `Plan::pods`.
    pub backends: Vec<usize>,
}

/// A workload endpoint: a pod, or a node's own network (host network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Pod(usize),
    Node(usize),
}

/// One client -> server pair of the matrix and what the client connects to.
#[derive(Debug, Clone, PartialEq)]
pub struct PathPlan {
    pub client: Endpoint,
    pub server: Endpoint,
    pub target: Target,
    /// The service of cluster-ip and node-port targets.
    pub service: Option<usize>,
    /// The node whose address node-port targets connect to.
    pub via: Option<usize>,
}

/// What `dplab run` measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub datapaths: Vec<Datapath>,
    /// Service proxies to measure; empty: each datapath's natural proxy.
    pub proxies: Vec<ProxyKind>,
    /// Empty for single-node labs.
    pub overlays: Vec<Overlay>,
    pub paths: Vec<PathPlan>,
    pub workloads: Vec<Workload>,
    pub duration: Duration,
    pub repetitions: u32,
    pub tool: Tool,
}

impl Plan {
    pub fn pod(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.name == name)
    }

    pub fn service(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// Name of a pod or node endpoint.
    pub fn endpoint_name(&self, e: Endpoint) -> &str {
        match e {
            Endpoint::Pod(p) => &self.pods[p].name,
            Endpoint::Node(n) => &self.nodes[n].name,
        }
    }

    /// The node an endpoint lives on.
    pub fn endpoint_node(&self, e: Endpoint) -> usize {
        match e {
            Endpoint::Pod(p) => self.pods[p].node,
            Endpoint::Node(n) => n,
        }
    }

    /// Pods of one node, in file order.
    pub fn pods_of(&self, node: usize) -> impl Iterator<Item = (usize, &PodPlan)> {
        self.pods
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.node == node)
    }
}

/// Parses `10s`, `500ms`, `2m`, or a bare number of seconds. Must be > 0.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration \"{text}\" must be positive"));
    }
    if secs > 24.0 * 3600.0 {
        return Err(format!("duration \"{text}\" is longer than a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}
