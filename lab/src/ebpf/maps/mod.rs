//! The load balancer's maps: their C layout ([`layout`]) and programming
//! them with services, backends and local endpoints ([`LbMaps`]).

mod layout;

pub use layout::*;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::Ebpf;

use super::loader::take_map;
use super::{iface, Counters, EbpfError, Result};

/// One service port and its backends, as kube-proxy would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    pub backends: Vec<(Ipv4Addr, u16)>,
}

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

/// The typed maps, shared by both objects through their pins, and what the
/// services map holds so updates touch only what changed.
pub(super) struct LbMaps {
    services: BpfHashMap<MapData, ServiceKey, ServiceValue>,
    backends: BpfHashMap<MapData, BackendKey, BackendValue>,
    endpoints: BpfHashMap<MapData, [u8; 4], EndpointValue>,
    counters: PerCpuArray<MapData, CountersValue>,
    /// What the services map holds: key -> (service id, backend count).
    programmed: HashMap<ServiceKey, ServiceValue>,
    next_service_id: u32,
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
            programmed: HashMap::new(),
            next_service_id: 1,
        };
        for entry in maps.services.iter() {
            let (key, value) = entry.map_err(|source| EbpfError::Map {
                map: SERVICES_MAP,
                op: "read back".into(),
                source: Box::new(source),
            })?;
            maps.next_service_id = maps.next_service_id.max(value.service_id + 1);
            maps.programmed.insert(key, value);
        }
        Ok(maps)
    }

    /// See [`super::ServiceLb::program_services`].
    pub(super) fn program_services(&mut self, services: &[ServiceSpec]) -> Result<()> {
        let mut wanted = HashSet::with_capacity(services.len());
        for spec in services {
            let key = ServiceKey::new(spec.cluster_ip, spec.port, spec.proto);
            if !wanted.insert(key) {
                return Err(EbpfError::InvalidService {
                    service: describe(spec),
                    reason: "listed twice".into(),
                });
            }
            self.program_one(key, spec)?;
        }
        let stale: Vec<ServiceKey> = self
            .programmed
            .keys()
            .filter(|k| !wanted.contains(*k))
            .copied()
            .collect();
        for key in stale {
            self.remove_service(key)?;
        }
        Ok(())
    }

    fn program_one(&mut self, key: ServiceKey, spec: &ServiceSpec) -> Result<()> {
        let count = u32::try_from(spec.backends.len()).map_err(|_| EbpfError::InvalidService {
            service: describe(spec),
            reason: "too many backends".into(),
        })?;
        let (service_id, old_count) = match self.programmed.get(&key) {
            Some(v) => (v.service_id, v.backend_count),
            None => {
                let id = self.next_service_id;
                self.next_service_id += 1;
                (id, 0)
            }
        };
        // Backends first, then the count that makes them reachable.
        for (index, (ip, port)) in spec.backends.iter().enumerate() {
            let bkey = BackendKey {
                service_id,
                index: index as u32,
            };
            self.backends
                .insert(bkey, BackendValue::new(*ip, *port), 0)
                .map_err(|source| map_err(BACKENDS_MAP, "insert backend", spec, source))?;
        }
        let value = ServiceValue {
            backend_count: count,
            service_id,
        };
        if self.programmed.get(&key) != Some(&value) {
            self.services
                .insert(key, value, 0)
                .map_err(|source| map_err(SERVICES_MAP, "insert service", spec, source))?;
            self.programmed.insert(key, value);
        }
        for index in count..old_count {
            self.remove_backend(service_id, index)?;
        }
        Ok(())
    }

    fn remove_service(&mut self, key: ServiceKey) -> Result<()> {
        let Some(value) = self.programmed.remove(&key) else {
            return Ok(());
        };
        ignore_missing(self.services.remove(&key)).map_err(|source| EbpfError::Map {
            map: SERVICES_MAP,
            op: format!("remove service id {}", value.service_id),
            source: Box::new(source),
        })?;
        for index in 0..value.backend_count {
            self.remove_backend(value.service_id, index)?;
        }
        Ok(())
    }

    fn remove_backend(&mut self, service_id: u32, index: u32) -> Result<()> {
        let key = BackendKey { service_id, index };
        ignore_missing(self.backends.remove(&key)).map_err(|source| EbpfError::Map {
            map: BACKENDS_MAP,
            op: format!("remove backend {index} of service id {service_id}"),
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

fn map_err(
    map: &'static str,
    op: &str,
    spec: &ServiceSpec,
    source: aya::maps::MapError,
) -> EbpfError {
    EbpfError::Map {
        map,
        op: format!("{op} for {}", describe(spec)),
        source: Box::new(source),
    }
}

fn describe(spec: &ServiceSpec) -> String {
    format!("{}:{}/{:?}", spec.cluster_ip, spec.port, spec.proto)
}
