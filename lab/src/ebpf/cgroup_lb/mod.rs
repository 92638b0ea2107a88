//! The socket-level load balancer (`bpf/cgroup_sock_lb.c`): four cgroup
//! sock_addr programs (connect4, sendmsg4, recvmsg4, getpeername4) that
//! rewrite service addresses at the socket. Its services and backends are
//! the tc programs' maps, programmed by the same code ([`LbMaps`]); its own
//! maps hold the per-socket translations, the nodes' addresses (node
//! ports) and the counters. Everything is pinned under
//! /sys/fs/bpf/dplab/<run-id>/ (links in its `cgroup/` folder).

mod layout;
mod links;

pub use layout::*;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray};
use aya::programs::links::PinnedLink;
use aya::programs::CgroupSockAddr;
use aya::{Ebpf, EbpfLoader};

use super::loader::take_map;
use super::maps::{LbMaps, ServiceSpec, CONNTRACK_MAP, ENDPOINTS_MAP};
use super::{pins, EbpfError};

/// The four programs, by their function names in the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockProgram {
    Connect4,
    Sendmsg4,
    Recvmsg4,
    Getpeername4,
}

impl SockProgram {
    pub const ALL: [SockProgram; 4] = [
        SockProgram::Connect4,
        SockProgram::Sendmsg4,
        SockProgram::Recvmsg4,
        SockProgram::Getpeername4,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            SockProgram::Connect4 => "sock4_connect",
            SockProgram::Sendmsg4 => "sock4_sendmsg",
            SockProgram::Recvmsg4 => "sock4_recvmsg",
            SockProgram::Getpeername4 => "sock4_getpeername",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupLbError {
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    #[error("cgroup {path}: {op}: {source}")]
    Cgroup {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("eBPF program {program}: attach to cgroup {cgroup}: {source}")]
    Attach {
        program: &'static str,
        cgroup: PathBuf,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("eBPF link of {program} on cgroup {cgroup}: take its fd: {source}")]
    LinkFd {
        program: &'static str,
        cgroup: PathBuf,
        #[source]
        source: Box<aya::programs::links::LinkError>,
    },
    #[error("run {run_id} has no socket-lb maps pinned under {path} (not a socket-lb lab?)")]
    NotPinned { run_id: String, path: PathBuf },
}

pub type Result<T> = std::result::Result<T, CgroupLbError>;

/// Why the socket hooks cannot run here, or None when they can: objects not
/// compiled, not root, or no bpffs. (A cgroup2 mount is the cgroup module's
/// to find.) Attaching uses bpf_link, Linux >= 5.7.
pub fn unavailable_reason() -> Option<String> {
    if let Some(reason) = option_env!("DPLAB_BPF_MISSING") {
        return Some(reason.to_string());
    }
    if object().is_none() {
        return Some("eBPF objects were not compiled into this build".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (CAP_BPF and CAP_NET_ADMIN)".into());
    }
    if !pins::bpffs_mounted() && !pins::bpffs_supported() {
        return Some("kernel without bpffs (no \"bpf\" in /proc/filesystems)".into());
    }
    let linkable = aya::util::KernelVersion::current()
        .is_ok_and(|v| v >= aya::util::KernelVersion::new(5, 7, 0));
    (!linkable).then(|| "kernel older than 5.7: no bpf_link for cgroup programs".into())
}

/// The socket-level load balancer of one run. Dropping it leaves its pins
/// (maps and links) in place; [`CgroupLb::detach_all`] or removing the
/// run's pin folder detaches it.
pub struct CgroupLb {
    run_id: String,
    object: Ebpf,
    maps: LbMaps,
    node_addrs: BpfHashMap<MapData, [u8; 4], u32>,
    counters: PerCpuArray<MapData, SockCountersValue>,
    links: Vec<PinnedLink>,
}

impl CgroupLb {
    /// Creates the run's maps and pins them (or reuses the pins of an
    /// earlier load of the same run) and loads (verifies) the four programs.
    pub fn load(run_id: &str) -> Result<Self> {
        if let Some(reason) = unavailable_reason() {
            return Err(EbpfError::Unavailable(reason).into());
        }
        pins::ensure_bpffs()?;
        let pin_dir = pins::pin_dir(run_id)?;
        let fresh = !pin_dir.exists();
        let loaded = Self::open_object(run_id, &pin_dir).and_then(|mut lb| {
            for program in SockProgram::ALL {
                sock_addr_mut(&mut lb.object, program)?
                    .load()
                    .map_err(|source| EbpfError::Program {
                        program: program.name(),
                        op: "load",
                        source: Box::new(source),
                    })?;
            }
            Ok(lb)
        });
        if loaded.is_err() && fresh {
            // Do not leave half-created pins behind (the error says why).
            let _ = pins::remove_pins(run_id);
        }
        loaded
    }

    /// The pinned maps of a running socket-lb lab, to read its counters or
    /// change its services; no program is loaded.
    pub fn open(run_id: &str) -> Result<Self> {
        let pin_dir = pins::pin_dir(run_id)?;
        if !pin_dir.join(SOCK_COUNTERS_MAP).exists() {
            return Err(CgroupLbError::NotPinned {
                run_id: run_id.to_string(),
                path: pin_dir,
            });
        }
        Self::open_object(run_id, &pin_dir)
    }

    fn open_object(run_id: &str, pin_dir: &Path) -> Result<Self> {
        pins::create_dir(pin_dir)?;
        let mut object = EbpfLoader::new()
            .default_map_pin_directory(pin_dir)
            // The shared header also declares the tc programs' conntrack
            // and local endpoints, which sockets never use: keep them tiny.
            .map_max_entries(CONNTRACK_MAP, 1)
            .map_max_entries(ENDPOINTS_MAP, 1)
            .load(object().ok_or_else(|| {
                EbpfError::Unavailable("eBPF objects were not compiled into this build".into())
            })?)
            .map_err(|source| EbpfError::LoadObject {
                object: "cgroup_sock_lb.o",
                source: Box::new(source),
            })?;
        let maps = LbMaps::take(&mut object)?;
        let node_addrs = take_map(&mut object, NODE_ADDRS_MAP)?;
        let counters = take_map(&mut object, SOCK_COUNTERS_MAP)?;
        Ok(CgroupLb {
            run_id: run_id.to_string(),
            object,
            maps,
            node_addrs,
            counters,
            links: Vec::new(),
        })
    }

    /// Makes the service maps hold exactly `services` (node ports are
    /// services at address 0.0.0.0), updating them in place.
    pub fn program_services(&mut self, services: &[ServiceSpec]) -> Result<()> {
        Ok(self.maps.program_services(services)?)
    }

    /// Adds one service, or rewrites its backends in place; touches nothing
    /// else, however many services there are.
    pub fn upsert_service(&mut self, service: &ServiceSpec) -> Result<()> {
        Ok(self.maps.upsert_service(service)?)
    }

    /// Makes the node address map hold exactly `addrs`: a connect to one of
    /// them at a node port goes to the service's backends.
    pub fn set_node_addrs(&mut self, addrs: &[Ipv4Addr]) -> Result<()> {
        let map_err = |op: String, source| EbpfError::Map {
            map: NODE_ADDRS_MAP,
            op,
            source: Box::new(source),
        };
        let wanted: HashSet<[u8; 4]> = addrs.iter().map(|a| a.octets()).collect();
        let present: Vec<[u8; 4]> = self
            .node_addrs
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| map_err("read back".into(), e))?;
        for key in present.iter().filter(|k| !wanted.contains(*k)) {
            self.node_addrs
                .remove(key)
                .map_err(|e| map_err(format!("remove {}", Ipv4Addr::from(*key)), e))?;
        }
        for key in &wanted {
            self.node_addrs
                .insert(key, 1, 0)
                .map_err(|e| map_err(format!("insert {}", Ipv4Addr::from(*key)), e))?;
        }
        Ok(())
    }

    /// Attaches the four programs to cgroup `cgroup` (a folder of the
    /// cgroup2 mount) and pins their links.
    pub fn attach(&mut self, cgroup: &Path) -> Result<()> {
        let dir = links::links_dir(&self.run_id)?;
        pins::create_dir(&dir)?;
        for program in SockProgram::ALL {
            let prog = sock_addr_mut(&mut self.object, program)?;
            self.links.push(links::attach(prog, program, cgroup, &dir)?);
        }
        Ok(())
    }

    /// Detaches every program of the run from its cgroup (unpins the links).
    pub fn detach_all(&mut self) -> Result<()> {
        let dir = links::links_dir(&self.run_id)?;
        let errors = links::detach_all(std::mem::take(&mut self.links), &dir);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EbpfError::Teardown {
                run_id: self.run_id.clone(),
                errors,
            }
            .into())
        }
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<SockCounters> {
        read_counters(&self.counters, &self.run_id)
    }
}

/// Reads a run's socket-lb counters from the pinned map alone.
pub fn pinned_sock_counters(run_id: &str) -> Result<SockCounters> {
    let path = pins::pin_dir(run_id)?.join(SOCK_COUNTERS_MAP);
    let err = |source| EbpfError::Map {
        map: SOCK_COUNTERS_MAP,
        op: format!("open pin (run {run_id})"),
        source: Box::new(source),
    };
    let data = MapData::from_pin(&path).map_err(err)?;
    let map = Map::from_map_data(data).map_err(err)?;
    let array = PerCpuArray::try_from(map).map_err(err)?;
    read_counters(&array, run_id)
}

fn read_counters(
    array: &PerCpuArray<MapData, SockCountersValue>,
    run_id: &str,
) -> Result<SockCounters> {
    let per_cpu = array.get(&0, 0).map_err(|source| EbpfError::Map {
        map: SOCK_COUNTERS_MAP,
        op: format!("read (run {run_id})"),
        source: Box::new(source),
    })?;
    Ok(SockCounters::sum(per_cpu.iter()))
}

fn sock_addr_mut(object: &mut Ebpf, program: SockProgram) -> Result<&mut CgroupSockAddr> {
    let err = |op, source| EbpfError::Program {
        program: program.name(),
        op,
        source: Box::new(source),
    };
    let prog = object.program_mut(program.name()).ok_or_else(|| {
        err(
            "find in object",
            aya::programs::ProgramError::UnexpectedProgramType,
        )
    })?;
    Ok(prog
        .try_into()
        .map_err(|e| err("use as cgroup sock_addr program", e))?)
}

/// The compiled object, embedded at build time.
#[cfg(dplab_bpf)]
fn object() -> Option<&'static [u8]> {
    Some(aya::include_bytes_aligned!(concat!(
        env!("OUT_DIR"),
        "/cgroup_sock_lb.o"
    )))
}

#[cfg(not(dplab_bpf))]
fn object() -> Option<&'static [u8]> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_lb_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<CgroupLb>();
    }
}
