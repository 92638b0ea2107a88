//! One node's load balancer maps: their C layout ([`layout`]), services
//! ([`services`]), local endpoints, the node's settings and the counters.

mod layout;
mod services;

pub use layout::*;
pub use services::{NodeScope, ServiceSpec};

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::Ebpf;

use super::loader::take_map;
use super::{iface, Counters, EbpfError, Result};

/// How `veth_ingress` hands a packet to a local pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectMode {
    /// bpf_redirect_peer: straight into the pod's eth0 ingress.
    Peer,
    /// bpf_redirect to the pod's host-side veth egress (one more hop), for
    /// devices whose peer cannot be reached directly.
    Plain,
}

/// A local pod as the endpoint map stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod's host-side veth, in the node namespace.
    pub ifindex: u32,
    /// Written as destination MAC when delivering (all zero: left as is).
    pub pod_mac: [u8; 6],
    /// Written as source MAC when delivering.
    pub host_mac: [u8; 6],
    pub mode: RedirectMode,
}

impl Endpoint {
    /// redirect_peer without MAC rewrite: the peer path marks the packet as
    /// addressed to the host, so the pod accepts it whatever its MAC.
    pub fn peer(ifindex: u32) -> Self {
        Endpoint {
            ifindex,
            pod_mac: [0; 6],
            host_mac: [0; 6],
            mode: RedirectMode::Peer,
        }
    }

    /// Reads the host-side veth's index and MAC in `node_ns` and the pod's
    /// MAC in `pod_ns`, so delivered frames carry the right addresses.
    pub fn discover(
        node_ns: &str,
        host_ifname: &str,
        pod_ns: &str,
        pod_ifname: &str,
        mode: RedirectMode,
    ) -> Result<Self> {
        let (ifindex, host_mac) = iface::ifindex_and_mac(node_ns, host_ifname)?;
        let (_, pod_mac) = iface::ifindex_and_mac(pod_ns, pod_ifname)?;
        Ok(Endpoint {
            ifindex,
            pod_mac,
            host_mac,
            mode,
        })
    }

    fn to_value(self) -> EndpointValue {
        EndpointValue {
            ifindex: self.ifindex,
            flags: match self.mode {
                RedirectMode::Peer => 0,
                RedirectMode::Plain => ENDPOINT_F_PLAIN_REDIRECT,
            },
            pod_mac: self.pod_mac,
            host_mac: self.host_mac,
        }
    }
}

/// How long an unused conntrack entry lives; None: the programs' default
/// (TCP 6 h, other protocols 60 s, 10 s once a FIN or RST was seen, as
/// Cilium's defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConntrackTimeouts {
    pub tcp: Option<Duration>,
    pub other: Option<Duration>,
    pub closing: Option<Duration>,
}

/// A node's settings, as its programs read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node's own address: the source of node-port connections SNATed
    /// to a backend on another node (None: such connections are dropped).
    pub snat_addr: Option<Ipv4Addr>,
    /// The source of a pod's connection to itself through a service (None:
    /// 169.254.42.1).
    pub hairpin_addr: Option<Ipv4Addr>,
    /// The datapath hands packets to local pods itself (veth-ebpf).
    pub host_routing: bool,
    pub timeouts: ConntrackTimeouts,
}

impl NodeConfig {
    fn to_value(self) -> ConfigValue {
        let ns = |d: Option<Duration>| d.map_or(0, |d| d.as_nanos().max(1) as u64);
        let addr = |a: Option<Ipv4Addr>| a.map_or([0; 4], |a| a.octets());
        ConfigValue {
            snat_addr: addr(self.snat_addr),
            hairpin_addr: addr(self.hairpin_addr),
            flags: if self.host_routing {
                CFG_F_HOST_ROUTING
            } else {
                0
            },
            pad: 0,
            ct_tcp_ns: ns(self.timeouts.tcp),
            ct_other_ns: ns(self.timeouts.other),
            ct_closing_ns: ns(self.timeouts.closing),
        }
    }
}

/// The typed maps of one node, shared by its objects through their pins,
/// and what the services map holds so that a change touches one service.
pub(super) struct LbMaps {
    services: BpfHashMap<MapData, ServiceKey, ServiceValue>,
    backends: BpfHashMap<MapData, BackendKey, BackendValue>,
    endpoints: BpfHashMap<MapData, [u8; 4], EndpointValue>,
    counters: PerCpuArray<MapData, CountersValue>,
    config: Array<MapData, ConfigValue>,
    /// Cluster IP frontend -> what is programmed for that service.
    programmed: HashMap<ServiceKey, services::Programmed>,
    next_service_id: u32,
    scope: NodeScope,
}

impl LbMaps {
    /// Takes the maps out of `object` and reads back the services an earlier
    /// process of the same run programmed into the pinned maps.
    pub(super) fn take(object: &mut Ebpf) -> Result<Self> {
        let mut maps = LbMaps {
            services: take_map(object, SERVICES_MAP)?,
            backends: take_map(object, BACKENDS_MAP)?,
            endpoints: take_map(object, ENDPOINTS_MAP)?,
            counters: take_map(object, COUNTERS_MAP)?,
            config: take_map(object, CONFIG_MAP)?,
            programmed: HashMap::new(),
            next_service_id: 1,
            scope: NodeScope::default(),
        };
        maps.read_back()?;
        Ok(maps)
    }

    pub(super) fn set_scope(&mut self, scope: NodeScope) {
        self.scope = scope;
    }

    pub(super) fn configure(&mut self, config: &NodeConfig) -> Result<()> {
        self.config
            .set(0, config.to_value(), 0)
            .map_err(|source| EbpfError::Map {
                map: CONFIG_MAP,
                op: "write the node's settings".into(),
                source: Box::new(source),
            })
    }

    pub(super) fn set_endpoint(&mut self, ip: Ipv4Addr, endpoint: Endpoint) -> Result<()> {
        self.endpoints
            .insert(ip.octets(), endpoint.to_value(), 0)
            .map_err(|source| EbpfError::Map {
                map: ENDPOINTS_MAP,
                op: format!("insert endpoint {ip}"),
                source: Box::new(source),
            })
    }

    pub(super) fn remove_endpoint(&mut self, ip: Ipv4Addr) -> Result<()> {
        ignore_missing(self.endpoints.remove(&ip.octets())).map_err(|source| EbpfError::Map {
            map: ENDPOINTS_MAP,
            op: format!("remove endpoint {ip}"),
            source: Box::new(source),
        })
    }

    pub(super) fn counters(&self) -> Result<Counters> {
        let per_cpu = self.counters.get(&0, 0).map_err(|source| EbpfError::Map {
            map: COUNTERS_MAP,
            op: "read".into(),
            source: Box::new(source),
        })?;
        Ok(Counters::sum(per_cpu.iter()))
    }
}

fn ignore_missing(
    result: std::result::Result<(), aya::maps::MapError>,
) -> std::result::Result<(), aya::maps::MapError> {
    match result {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(())
        }
        other => other,
    }
}
