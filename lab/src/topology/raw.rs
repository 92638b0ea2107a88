//! The topology file as written, with the position of every value that
//! validation may complain about.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    /// The range cluster IPs come from (kube's --service-cluster-ip-range).
    pub service_cidr: Option<Spanned<String>>,
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub services: Vec<Service>,
    pub underlay: Option<Spanned<Underlay>>,
    pub matrix: Option<Spanned<Matrix>>,
    /// A service-count sweep (see `super::sweep`).
    pub sweep: Option<Spanned<super::sweep::RawSweep>>,
}

/// The network joining the nodes of a multi-node lab: a switch namespace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Underlay {
    pub cidr: Option<Spanned<String>>,
    pub mtu: Option<Spanned<u32>>,
    /// Shape every node's underlay link to this rate (tc tbf), e.g. "1gbit".
    pub rate: Option<Spanned<String>>,
}

/// One measured path of a multi-node matrix: client and server are pod or
/// node names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Path {
    pub client: Spanned<String>,
    pub server: Spanned<String>,
    pub target: Option<Spanned<String>>,
    /// node-port targets: the node whose address the client connects to
    /// (default: the server pod's node).
    pub via: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: Spanned<String>,
    pub pod_cidr: Spanned<String>,
    /// Gateway the pods of L2 datapaths use; default: first host of pod_cidr.
    pub gateway: Option<Spanned<String>>,
    /// Link-local gateway of routed datapaths; default 169.254.10.24.
    pub routed_gateway: Option<Spanned<String>>,
    /// Address on the underlay (multi-node labs); default: assigned in order.
    pub underlay_address: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    pub name: Spanned<String>,
    pub node: Spanned<String>,
    pub address: Option<Spanned<String>>,
    /// Interface name inside the pod; default eth0.
    pub interface: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Spanned<String>,
    pub cluster_ip: Spanned<String>,
    pub port: Spanned<u16>,
    pub target_port: Option<Spanned<u16>>,
    pub protocol: Option<Spanned<String>>,
    /// Port on every node's addresses that reaches the service (NodePort).
    pub node_port: Option<Spanned<u16>>,
    pub backends: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    pub datapaths: Spanned<Vec<Spanned<String>>>,
    /// Service proxies to measure (default: each datapath's natural one).
    pub service_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    pub targets: Option<Spanned<Vec<Spanned<String>>>>,
    pub workloads: Option<Spanned<Vec<Spanned<String>>>>,
    pub client: Option<Spanned<String>>,
    pub server: Option<Spanned<String>>,
    /// Multi-node labs: the paths to measure instead of client/server.
    pub paths: Option<Vec<Path>>,
    pub overlays: Option<Spanned<Vec<Spanned<String>>>>,
    /// Service measured by cluster-ip cells; default: the one backed by server.
    pub service: Option<Spanned<String>>,
    pub duration: Option<Spanned<toml::Value>>,
    pub repetitions: Option<Spanned<i64>>,
    pub tool: Option<Spanned<String>>,
}
