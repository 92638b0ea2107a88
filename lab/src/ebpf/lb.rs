//! `ServiceLb`: loads the load balancer objects of one run, programs its
//! maps, and attaches its programs inside lab namespaces.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::programs::links::{FdLink, LinkOrder, PinnedLink};
use aya::programs::tc::{SchedClassifier, TcAttachOptions, TcAttachType};
use aya::{Ebpf, EbpfLoader, TestRun, TestRunOptions};

use super::maps::{
    BackendKey, BackendValue, CountersValue, EndpointValue, ServiceKey, ServiceValue, BACKENDS_MAP,
    COUNTERS_MAP, ENDPOINTS_MAP, ENDPOINT_F_PLAIN_REDIRECT, SERVICES_MAP,
};
use super::{iface, objects, pins, unavailable_reason, Counters, EbpfError, Proto, Result};
use crate::netns;

/// One service port and its backends, as kube-proxy would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    pub backends: Vec<(Ipv4Addr, u16)>,
}

/// The programs of the two objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbProgram {
    /// tc ingress of a pod's host-side veth (veth-ebpf).
    VethIngress,
    /// tc egress of a pod's eth0, inside the pod (ipvlan-ebpf).
    PodEgress,
    /// tc ingress of a pod's eth0, inside the pod (ipvlan-ebpf).
    PodIngress,
}

impl LbProgram {
    pub const fn name(self) -> &'static str {
        match self {
            LbProgram::VethIngress => "veth_ingress",
            LbProgram::PodEgress => "pod_egress",
            LbProgram::PodIngress => "pod_ingress",
        }
    }
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

/// Result of one BPF_PROG_TEST_RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutcome {
    /// The tc verdict (TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT).
    pub verdict: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
}

/// A program attached with a pinned TCX link.
struct Attachment {
    netns: String,
    ifname: String,
    direction: &'static str,
    link: PinnedLink,
}

/// The typed maps, shared by both objects through their pins.
struct LbMaps {
    services: BpfHashMap<MapData, ServiceKey, ServiceValue>,
    backends: BpfHashMap<MapData, BackendKey, BackendValue>,
    endpoints: BpfHashMap<MapData, [u8; 4], EndpointValue>,
    counters: PerCpuArray<MapData, CountersValue>,
}

/// The load balancer of one run: maps pinned under
/// /sys/fs/bpf/dplab/<run-id>/, programs loaded, attachments pinned in its
/// `links/` folder so they outlive this process (`dplab up`). Dropping it
/// leaves everything in place; [`ServiceLb::teardown`] or [`remove_pins`]
/// removes it.
///
/// [`remove_pins`]: super::remove_pins
pub struct ServiceLb {
    run_id: String,
    veth: Ebpf,
    pod: Ebpf,
    maps: LbMaps,
    /// What the services map holds: key -> (service id, backend count).
    programmed: HashMap<ServiceKey, ServiceValue>,
    next_service_id: u32,
    attachments: Vec<Attachment>,
}

impl ServiceLb {
    /// Creates the run's maps and pins them, or reuses the pins a previous
    /// load of the same run left; loads all three programs. Mounts bpffs at
    /// /sys/fs/bpf first if nothing is mounted there.
    pub fn load(run_id: &str) -> Result<Self> {
        if let Some(reason) = unavailable_reason() {
            return Err(EbpfError::Unavailable(reason));
        }
        let (Some(veth_obj), Some(pod_obj)) = (objects::veth(), objects::pod()) else {
            return Err(EbpfError::Unavailable(
                "eBPF objects were not compiled into this build".into(),
            ));
        };
        let pin_dir = pins::pin_dir(run_id)?;
        pins::ensure_bpffs()?;
        let fresh = !pin_dir.exists();
        let loaded = Self::load_into(run_id, veth_obj, pod_obj, &pin_dir);
        if loaded.is_err() && fresh {
            // Do not leave half-created pins behind (the error says why).
            let _ = pins::remove_pins(run_id);
        }
        loaded
    }

    fn load_into(run_id: &str, veth_obj: &[u8], pod_obj: &[u8], pin_dir: &Path) -> Result<Self> {
        pins::create_dir(pin_dir)?;
        pins::create_dir(&pins::links_dir(run_id)?)?;

        let mut veth = load_object("tc_veth_lb.o", veth_obj, pin_dir)?;
        let mut pod = load_object("tc_pod_lb.o", pod_obj, pin_dir)?;
        load_program(&mut veth, LbProgram::VethIngress)?;
        load_program(&mut pod, LbProgram::PodEgress)?;
        load_program(&mut pod, LbProgram::PodIngress)?;

        let maps = LbMaps {
            services: take_map(&mut veth, SERVICES_MAP)?,
            backends: take_map(&mut veth, BACKENDS_MAP)?,
            endpoints: take_map(&mut veth, ENDPOINTS_MAP)?,
            counters: take_map(&mut veth, COUNTERS_MAP)?,
        };
        let mut lb = ServiceLb {
            run_id: run_id.to_string(),
            veth,
            pod,
            maps,
            programmed: HashMap::new(),
            next_service_id: 1,
            attachments: Vec::new(),
        };
        lb.recover_state()?;
        Ok(lb)
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Picks up services and link pins an earlier process of this run left.
    fn recover_state(&mut self) -> Result<()> {
        for entry in self.maps.services.iter() {
            let (key, value) = entry.map_err(|source| EbpfError::Map {
                map: SERVICES_MAP,
                op: "read back".into(),
                source: Box::new(source),
            })?;
            self.next_service_id = self.next_service_id.max(value.service_id + 1);
            self.programmed.insert(key, value);
        }
        let links_dir = pins::links_dir(&self.run_id)?;
        for entry in std::fs::read_dir(&links_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            let Some((netns, ifname, direction)) = parse_link_pin_name(&path) else {
                continue;
            };
            if let Ok(link) = PinnedLink::from_pin(&path) {
                self.attachments.push(Attachment {
                    netns,
                    ifname,
                    direction,
                    link,
                });
            }
        }
        Ok(())
    }

    /// Makes the service maps hold exactly `services`: adds and updates
    /// them, removes services programmed earlier that are no longer listed.
    /// A flow keeps its backend (conntrack) even if its service changes.
    pub fn program_services(&mut self, services: &[ServiceSpec]) -> Result<()> {
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
            self.maps
                .backends
                .insert(bkey, BackendValue::new(*ip, *port), 0)
                .map_err(|source| map_err(BACKENDS_MAP, "insert backend", spec, source))?;
        }
        let value = ServiceValue {
            backend_count: count,
            service_id,
        };
        if self.programmed.get(&key) != Some(&value) {
            self.maps
                .services
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
        ignore_missing(self.maps.services.remove(&key)).map_err(|source| EbpfError::Map {
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
        ignore_missing(self.maps.backends.remove(&key)).map_err(|source| EbpfError::Map {
            map: BACKENDS_MAP,
            op: format!("remove backend {index} of service id {service_id}"),
            source: Box::new(source),
        })
    }

    /// Declares `ip` a pod of this node, reached through `endpoint`.
    pub fn set_endpoint(&mut self, ip: Ipv4Addr, endpoint: Endpoint) -> Result<()> {
        self.maps
            .endpoints
            .insert(ip.octets(), endpoint.to_value(), 0)
            .map_err(|source| EbpfError::Map {
                map: ENDPOINTS_MAP,
                op: format!("insert endpoint {ip}"),
                source: Box::new(source),
            })
    }

    pub fn remove_endpoint(&mut self, ip: Ipv4Addr) -> Result<()> {
        ignore_missing(self.maps.endpoints.remove(&ip.octets())).map_err(|source| EbpfError::Map {
            map: ENDPOINTS_MAP,
            op: format!("remove endpoint {ip}"),
            source: Box::new(source),
        })
    }

    /// veth-ebpf: attaches `veth_ingress` at tc ingress of the host-side veth
    /// `ifname` in namespace `netns`.
    pub fn attach_veth_ingress(&mut self, netns: &str, ifname: &str) -> Result<()> {
        self.attach(LbProgram::VethIngress, netns, ifname, TcAttachType::Ingress)
    }

    /// ipvlan-ebpf: attaches `pod_egress` and `pod_ingress` to the pod's
    /// `ifname` inside the pod namespace `netns`.
    pub fn attach_pod(&mut self, netns: &str, ifname: &str) -> Result<()> {
        self.attach(LbProgram::PodEgress, netns, ifname, TcAttachType::Egress)?;
        self.attach(LbProgram::PodIngress, netns, ifname, TcAttachType::Ingress)
    }

    fn attach(
        &mut self,
        program: LbProgram,
        ns: &str,
        ifname: &str,
        attach_type: TcAttachType,
    ) -> Result<()> {
        let direction = match attach_type {
            TcAttachType::Egress => "egress",
            _ => "ingress",
        };
        let attach_err = |source| EbpfError::Attach {
            program: program.name(),
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            direction,
            source: Box::new(source),
        };
        let pin_path = pins::links_dir(&self.run_id)?.join(link_pin_name(ns, ifname, direction));
        let classifier = classifier_mut(self.object_mut(program), program)?;
        // The interface name resolves, and the TCX link attaches, in the
        // calling thread's namespace.
        let link_id = netns::run_in(ns, || {
            classifier.attach_with_options(
                ifname,
                attach_type,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
        })?
        .map_err(attach_err)?;
        let link = classifier.take_link(link_id).map_err(attach_err)?;
        let link = FdLink::try_from(link).map_err(|source| EbpfError::LinkFd {
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            source: Box::new(source),
        })?;
        let link = link.pin(&pin_path).map_err(|source| EbpfError::PinLink {
            path: pin_path.clone(),
            source: Box::new(source),
        })?;
        self.attachments.push(Attachment {
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            direction,
            link,
        });
        Ok(())
    }

    /// (netns, ifname, direction) of every attachment this run holds.
    pub fn attachments(&self) -> Vec<(String, String, &'static str)> {
        self.attachments
            .iter()
            .map(|a| (a.netns.clone(), a.ifname.clone(), a.direction))
            .collect()
    }

    /// Detaches every program of this run (unpins and closes the links).
    pub fn detach_all(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        for attachment in self.attachments.drain(..) {
            let what = format!(
                "{}/{} {}",
                attachment.netns, attachment.ifname, attachment.direction
            );
            match attachment.link.unpin() {
                Ok(fd_link) => drop(fd_link),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(format!("unpin link of {what}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EbpfError::Teardown {
                run_id: self.run_id.clone(),
                errors,
            })
        }
    }

    /// Detaches everything, closes the maps and programs and removes the
    /// run's pin folder. Keeps going on errors and reports them all.
    pub fn teardown(mut self) -> Result<()> {
        let mut errors = Vec::new();
        if let Err(EbpfError::Teardown { errors: e, .. }) = self.detach_all() {
            errors.extend(e);
        }
        let run_id = std::mem::take(&mut self.run_id);
        drop(self);
        if let Err(e) = pins::remove_pins(&run_id) {
            errors.push(e.to_string());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EbpfError::Teardown { run_id, errors })
        }
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let per_cpu = self
            .maps
            .counters
            .get(&0, 0)
            .map_err(|source| EbpfError::Map {
                map: COUNTERS_MAP,
                op: "read".into(),
                source: Box::new(source),
            })?;
        Ok(Counters::sum(per_cpu.iter()))
    }

    /// Kernel ids of the three loaded programs (to find them in
    /// `bpftool prog show`).
    pub fn program_ids(&self) -> Result<Vec<u32>> {
        [
            LbProgram::VethIngress,
            LbProgram::PodEgress,
            LbProgram::PodIngress,
        ]
        .into_iter()
        .map(|p| {
            let prog = classifier(self.object(p), p)?;
            prog.info()
                .map(|i| i.id())
                .map_err(|source| EbpfError::Program {
                    program: p.name(),
                    op: "read info",
                    source: Box::new(source),
                })
        })
        .collect()
    }

    /// Runs `program` once on `frame` with BPF_PROG_TEST_RUN (no device: a
    /// redirect shows only as the verdict). Maps are the run's real maps.
    pub fn test_run(&self, program: LbProgram, frame: &[u8]) -> Result<TestRunOutcome> {
        let prog = classifier(self.object(program), program)?;
        let mut out = vec![0u8; frame.len() + 256];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: 1,
                ..Default::default()
            })
            .map_err(|source| EbpfError::Program {
                program: program.name(),
                op: "BPF_PROG_TEST_RUN",
                source: Box::new(source),
            })?;
        out.truncate(result.data_size_out as usize);
        Ok(TestRunOutcome {
            verdict: result.return_value,
            frame: out,
        })
    }

    fn object(&self, program: LbProgram) -> &Ebpf {
        match program {
            LbProgram::VethIngress => &self.veth,
            LbProgram::PodEgress | LbProgram::PodIngress => &self.pod,
        }
    }

    fn object_mut(&mut self, program: LbProgram) -> &mut Ebpf {
        match program {
            LbProgram::VethIngress => &mut self.veth,
            LbProgram::PodEgress | LbProgram::PodIngress => &mut self.pod,
        }
    }
}

fn load_object(name: &'static str, bytes: &[u8], pin_dir: &Path) -> Result<Ebpf> {
    EbpfLoader::new()
        .default_map_pin_directory(pin_dir)
        .load(bytes)
        .map_err(|source| EbpfError::LoadObject {
            object: name,
            source: Box::new(source),
        })
}

/// Loads (verifies) one program; a rejection carries the verifier log.
fn load_program(object: &mut Ebpf, program: LbProgram) -> Result<()> {
    classifier_mut(object, program)?
        .load()
        .map_err(|source| EbpfError::Program {
            program: program.name(),
            op: "load",
            source: Box::new(source),
        })
}

fn classifier(object: &Ebpf, program: LbProgram) -> Result<&SchedClassifier> {
    let prog = object
        .program(program.name())
        .ok_or_else(|| missing_program(program))?;
    prog.try_into().map_err(|source| EbpfError::Program {
        program: program.name(),
        op: "use as tc classifier",
        source: Box::new(source),
    })
}

fn classifier_mut(object: &mut Ebpf, program: LbProgram) -> Result<&mut SchedClassifier> {
    let prog = object
        .program_mut(program.name())
        .ok_or_else(|| missing_program(program))?;
    prog.try_into().map_err(|source| EbpfError::Program {
        program: program.name(),
        op: "use as tc classifier",
        source: Box::new(source),
    })
}

fn missing_program(program: LbProgram) -> EbpfError {
    EbpfError::Program {
        program: program.name(),
        op: "find in object",
        source: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
    }
}

fn take_map<T>(object: &mut Ebpf, name: &'static str) -> Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = object.take_map(name).ok_or_else(|| EbpfError::Map {
        map: name,
        op: "find in object".into(),
        source: Box::new(aya::maps::MapError::InvalidName {
            name: name.to_string(),
        }),
    })?;
    T::try_from(map).map_err(|source| EbpfError::Map {
        map: name,
        op: "open with its key and value types".into(),
        source: Box::new(source),
    })
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

/// Link pins are named `<netns>__<ifname>__<direction>`; netns and interface
/// names never hold "__" in dplab (run id + short names).
fn link_pin_name(ns: &str, ifname: &str, direction: &str) -> String {
    format!("{ns}__{ifname}__{direction}")
}

fn parse_link_pin_name(path: &Path) -> Option<(String, String, &'static str)> {
    let name = path.file_name()?.to_str()?;
    let mut parts = name.rsplitn(3, "__");
    let direction = match parts.next()? {
        "ingress" => "ingress",
        "egress" => "egress",
        _ => return None,
    };
    let ifname = parts.next()?.to_string();
    let ns = parts.next()?.to_string();
    Some((ns, ifname, direction))
}

/// Loads (verifies) classifier `program` of an object given as bytes and
/// drops it again, with the same error a lab load would give: a rejection
/// carries the whole verifier log. For tests and diagnosis of new programs.
pub fn check_classifier(object: &'static str, bytes: &[u8], program: &'static str) -> Result<()> {
    let mut ebpf = EbpfLoader::new()
        .load(bytes)
        .map_err(|source| EbpfError::LoadObject {
            object,
            source: Box::new(source),
        })?;
    let prog = ebpf.program_mut(program).ok_or(EbpfError::Program {
        program,
        op: "find",
        source: Box::new(aya::programs::ProgramError::NotLoaded),
    })?;
    let classifier: &mut SchedClassifier =
        prog.try_into().map_err(|source| EbpfError::Program {
            program,
            op: "use as tc classifier",
            source: Box::new(source),
        })?;
    classifier.load().map_err(|source| EbpfError::Program {
        program,
        op: "load",
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_lb_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<ServiceLb>();
    }

    #[test]
    fn link_pin_names_round_trip() {
        let name = link_pin_name("dl3f9a-node1", "h-pod-a", "ingress");
        let parsed = parse_link_pin_name(Path::new(&name)).unwrap();
        assert_eq!(parsed, ("dl3f9a-node1".into(), "h-pod-a".into(), "ingress"));
    }
}
