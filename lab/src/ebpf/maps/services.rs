//! Programming services into one node's maps: a frontend key per cluster IP
//! (and per node address at a node port) pointing to a service id, and the
//! backends under that id. Each change touches one service only.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use super::layout::*;
use super::{ignore_missing, LbMaps};
use crate::ebpf::{EbpfError, Result};

/// One service port and its backends, as kube-proxy would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    /// Also reached at this port on the node's own addresses (NodePort).
    pub node_port: Option<u16>,
    pub backends: Vec<(Ipv4Addr, u16)>,
}

impl ServiceSpec {
    fn key(&self) -> ServiceKey {
        ServiceKey::new(self.cluster_ip, self.port, self.proto)
    }

    fn describe(&self) -> String {
        format!("{}:{}/{:?}", self.cluster_ip, self.port, self.proto)
    }
}

/// What makes a node's service maps its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeScope {
    /// The node's addresses where node ports answer (its underlay address,
    /// the gateway its pods use).
    pub addresses: Vec<Ipv4Addr>,
    /// The node's pods: node ports reach them without SNAT.
    pub local_pods: HashSet<Ipv4Addr>,
}

/// A service as the maps hold it, keyed by its cluster IP frontend.
#[derive(Debug, Clone, Default)]
pub(super) struct Programmed {
    id: u32,
    backend_count: u32,
    node_port_keys: Vec<ServiceKey>,
}

impl LbMaps {
    /// Rebuilds what the services map holds (an earlier process of the
    /// same run may have programmed it).
    pub(super) fn read_back(&mut self) -> Result<()> {
        let mut node_ports: HashMap<u32, Vec<ServiceKey>> = HashMap::new();
        for entry in self.services.iter() {
            let (key, value) = entry.map_err(|source| EbpfError::Map {
                map: SERVICES_MAP,
                op: "read back".into(),
                source: Box::new(source),
            })?;
            self.next_service_id = self.next_service_id.max(value.service_id + 1);
            if value.flags & SVC_F_NODE_PORT != 0 {
                node_ports.entry(value.service_id).or_default().push(key);
            } else {
                self.programmed.insert(
                    key,
                    Programmed {
                        id: value.service_id,
                        backend_count: value.backend_count,
                        node_port_keys: Vec::new(),
                    },
                );
            }
        }
        for p in self.programmed.values_mut() {
            p.node_port_keys = node_ports.remove(&p.id).unwrap_or_default();
        }
        Ok(())
    }

    /// Makes the maps hold exactly `services`.
    pub(in crate::ebpf) fn program_services(&mut self, services: &[ServiceSpec]) -> Result<()> {
        let mut wanted = HashSet::with_capacity(services.len());
        for spec in services {
            if !wanted.insert(spec.key()) {
                return Err(EbpfError::InvalidService {
                    service: spec.describe(),
                    reason: "listed twice".into(),
                });
            }
            self.upsert_service(spec)?;
        }
        let stale: Vec<ServiceKey> = self
            .programmed
            .keys()
            .filter(|k| !wanted.contains(*k))
            .copied()
            .collect();
        for key in stale {
            self.remove_service_key(key)?;
        }
        Ok(())
    }

    /// Adds one service or rewrites its frontends and backends in place.
    pub(in crate::ebpf) fn upsert_service(&mut self, spec: &ServiceSpec) -> Result<()> {
        let key = spec.key();
        let backend_count =
            u32::try_from(spec.backends.len()).map_err(|_| EbpfError::InvalidService {
                service: spec.describe(),
                reason: "too many backends".into(),
            })?;
        let old = match self.programmed.get(&key) {
            Some(p) => p.clone(),
            None => {
                let id = self.next_service_id;
                self.next_service_id += 1;
                Programmed {
                    id,
                    ..Default::default()
                }
            }
        };
        // Backends first, then the count that makes them reachable.
        for (index, &(ip, port)) in spec.backends.iter().enumerate() {
            let bkey = BackendKey {
                service_id: old.id,
                index: index as u32,
            };
            let value = BackendValue::new(ip, port, self.scope.local_pods.contains(&ip));
            self.backends
                .insert(bkey, value, 0)
                .map_err(|source| map_err(BACKENDS_MAP, "insert backend", spec, source))?;
        }
        let value = ServiceValue {
            backend_count,
            service_id: old.id,
            flags: 0,
            pad: 0,
        };
        self.services
            .insert(key, value, 0)
            .map_err(|source| map_err(SERVICES_MAP, "insert service", spec, source))?;
        let node_port_keys: Vec<ServiceKey> = match spec.node_port {
            Some(np) => self
                .scope
                .addresses
                .iter()
                .map(|&a| ServiceKey::new(a, np, spec.proto))
                .collect(),
            None => Vec::new(),
        };
        let node_port_value = ServiceValue {
            flags: SVC_F_NODE_PORT,
            ..value
        };
        for k in &node_port_keys {
            self.services
                .insert(*k, node_port_value, 0)
                .map_err(|source| map_err(SERVICES_MAP, "insert node port", spec, source))?;
        }
        for gone in old
            .node_port_keys
            .iter()
            .filter(|k| !node_port_keys.contains(k))
        {
            self.remove_frontend(*gone, old.id)?;
        }
        for index in backend_count..old.backend_count {
            self.remove_backend(old.id, index)?;
        }
        self.programmed.insert(
            key,
            Programmed {
                id: old.id,
                backend_count,
                node_port_keys,
            },
        );
        Ok(())
    }

    /// Removes the service whose cluster IP frontend is `key`, if any.
    pub(in crate::ebpf) fn remove_service_key(&mut self, key: ServiceKey) -> Result<()> {
        let Some(p) = self.programmed.remove(&key) else {
            return Ok(());
        };
        self.remove_frontend(key, p.id)?;
        for k in &p.node_port_keys {
            self.remove_frontend(*k, p.id)?;
        }
        for index in 0..p.backend_count {
            self.remove_backend(p.id, index)?;
        }
        Ok(())
    }

    fn remove_frontend(&mut self, key: ServiceKey, id: u32) -> Result<()> {
        ignore_missing(self.services.remove(&key)).map_err(|source| EbpfError::Map {
            map: SERVICES_MAP,
            op: format!("remove a frontend of service id {id}"),
            source: Box::new(source),
        })
    }

    fn remove_backend(&mut self, service_id: u32, index: u32) -> Result<()> {
        let key = BackendKey { service_id, index };
        ignore_missing(self.backends.remove(&key)).map_err(|source| EbpfError::Map {
            map: BACKENDS_MAP,
            op: format!("remove backend {index} of service id {service_id}"),
            source: Box::new(source),
        })
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
        op: format!("{op} for {}", spec.describe()),
        source: Box::new(source),
    }
}
