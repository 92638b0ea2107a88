//! `ServiceLb`: the load balancer of one node of a run (or of a run without
//! nodes, for tests), tying together its loaded objects
//! ([`super::loader`]), its maps ([`super::maps`]) and the run's
//! attachments ([`super::attach`]).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::attach::Attachments;
use super::loader::LbProgram;
use super::maps::{Endpoint, LbMaps, NodeConfig, NodeScope, Proto, ServiceKey, ServiceSpec};
use super::netkit_link::NetkitHook;
use super::programs::Programs;
use super::{pins, unavailable_reason, Counters, EbpfError, Result, TcAttachMode};

/// The load balancer of one node: maps pinned under
/// /sys/fs/bpf/dplab/<run-id>/nodes/<node>/ (or the run's folder itself),
/// programs loaded, attachments pinned in the run's `links/` folder so they
/// outlive this process (`dplab up`). Dropping it leaves everything in
/// place; [`ServiceLb::teardown`] or [`remove_pins`] removes the whole run.
///
/// [`remove_pins`]: super::remove_pins
pub struct ServiceLb {
    run_id: String,
    programs: Programs,
    maps: LbMaps,
    attachments: Attachments,
}

impl ServiceLb {
    /// Creates the run's maps and pins them in the run's folder, or reuses
    /// the pins a previous load of the same run left; loads (verifies) all
    /// programs. Mounts bpffs at /sys/fs/bpf first if nothing is mounted
    /// there.
    pub fn load(run_id: &str) -> Result<Self> {
        let mut lb = Self::load_scoped(run_id, pins::pin_dir(run_id)?)?;
        for program in LbProgram::ALL {
            lb.programs.loaded(program)?;
        }
        Ok(lb)
    }

    /// The same for node `node` of run `run_id`, on its own maps as each
    /// node of a cluster has its own; a program is loaded when first
    /// attached (a lab attaches a few of the five).
    pub fn load_node(run_id: &str, node: &str) -> Result<Self> {
        Self::load_scoped(run_id, pins::node_pin_dir(run_id, node)?)
    }

    fn load_scoped(run_id: &str, maps_dir: PathBuf) -> Result<Self> {
        if let Some(reason) = unavailable_reason() {
            return Err(EbpfError::Unavailable(reason));
        }
        pins::ensure_bpffs()?;
        let fresh = !pins::pin_dir(run_id)?.exists();
        let loaded = Self::load_into(run_id, &maps_dir);
        if loaded.is_err() && fresh {
            // Do not leave half-created pins behind (the error says why).
            let _ = pins::remove_pins(run_id);
        }
        loaded
    }

    fn load_into(run_id: &str, maps_dir: &Path) -> Result<Self> {
        pins::create_dir(maps_dir)?;
        pins::create_dir(&pins::links_dir(run_id)?)?;
        let mut programs = Programs::new(maps_dir)?;
        let maps = LbMaps::take(programs.maps_object()?)?;
        let attachments = Attachments::recover(run_id)?;
        Ok(ServiceLb {
            run_id: run_id.to_string(),
            programs,
            maps,
            attachments,
        })
    }

    /// Says which node these maps serve: its addresses (node ports) and its
    /// pods (backends reached without SNAT). Set before programming services.
    pub fn set_node(&mut self, scope: NodeScope) {
        self.maps.set_scope(scope);
    }

    /// Writes the node's settings (SNAT and hairpin addresses, host routing,
    /// conntrack timeouts) where its programs read them.
    pub fn configure(&mut self, config: &NodeConfig) -> Result<()> {
        self.maps.configure(config)
    }

    /// Makes the service maps hold exactly `services`: adds and updates
    /// them, removes services programmed earlier that are no longer listed.
    /// A flow keeps its backend (conntrack) even if its service changes.
    pub fn program_services(&mut self, services: &[ServiceSpec]) -> Result<()> {
        self.maps.program_services(services)
    }

    /// Adds one service, or rewrites its node ports and backends in place;
    /// touches nothing else, however many services there are.
    pub fn upsert_service(&mut self, service: &ServiceSpec) -> Result<()> {
        self.maps.upsert_service(service)
    }

    /// Removes the service at `cluster_ip:port/proto`, if programmed.
    pub fn remove_service(&mut self, cluster_ip: Ipv4Addr, port: u16, proto: Proto) -> Result<()> {
        self.maps
            .remove_service_key(ServiceKey::new(cluster_ip, port, proto))
    }

    /// Declares `ip` a pod of this node, reached through `endpoint`.
    pub fn set_endpoint(&mut self, ip: Ipv4Addr, endpoint: Endpoint) -> Result<()> {
        self.maps.set_endpoint(ip, endpoint)
    }

    pub fn remove_endpoint(&mut self, ip: Ipv4Addr) -> Result<()> {
        self.maps.remove_endpoint(ip)
    }

    /// veth-ebpf: attaches `veth_ingress` at tc ingress of the host-side veth
    /// `ifname` in namespace `netns`.
    pub fn attach_veth_ingress(&mut self, netns: &str, ifname: &str) -> Result<()> {
        self.attach(LbProgram::VethIngress, netns, ifname, "ingress")
    }

    /// The eBPF proxy without host routing: attaches `pod_egress` and
    /// `pod_ingress` to the pod's `ifname` inside the pod namespace `netns`.
    pub fn attach_pod(&mut self, netns: &str, ifname: &str) -> Result<()> {
        self.attach(LbProgram::PodEgress, netns, ifname, "egress")?;
        self.attach(LbProgram::PodIngress, netns, ifname, "ingress")
    }

    /// netkit-ebpf: attaches `veth_ingress` at the peer hook of the netkit
    /// pair whose primary device is `primary` in the node namespace `netns`,
    /// so it sees every packet the pod sends (as on a host-side veth's tc
    /// ingress). netkit's verdicts are tc's: pass, drop, redirect.
    pub fn attach_netkit_peer(&mut self, netns: &str, primary: &str) -> Result<()> {
        let program = LbProgram::VethIngress;
        let classifier = self.programs.loaded(program)?;
        self.attachments
            .attach_netkit(classifier, program, netns, primary, NetkitHook::Peer)
    }

    /// Multi-node labs: attaches `netdev_ingress` and `netdev_egress` to a
    /// node's underlay link or VXLAN device `ifname` in namespace `netns`.
    pub fn attach_netdev(&mut self, netns: &str, ifname: &str) -> Result<()> {
        self.attach(LbProgram::NetdevIngress, netns, ifname, "ingress")?;
        self.attach(LbProgram::NetdevEgress, netns, ifname, "egress")
    }

    fn attach(
        &mut self,
        program: LbProgram,
        ns: &str,
        ifname: &str,
        direction: &'static str,
    ) -> Result<()> {
        let classifier = self.programs.loaded(program)?;
        self.attachments
            .attach_tc(classifier, program, ns, ifname, direction)
    }

    /// Makes every later tc attachment of this load balancer use `mode`
    /// instead of trying TCX first (and `DPLAB_TC_ATTACH`).
    pub fn set_tc_attach_mode(&mut self, mode: TcAttachMode) {
        self.attachments.set_tc_mode(mode);
    }

    /// How this run's programs are attached (`tcx`, `netlink`, `netkit`,
    /// joined by `+` when mixed), or None before the first attachment.
    pub fn attach_kinds(&self) -> Option<String> {
        self.attachments.kinds()
    }

    /// The tc attach mode in use, and why it is netlink when TCX was tried
    /// and refused; None before the first tc attachment.
    pub fn tc_attach_mode(&self) -> Option<(TcAttachMode, Option<&str>)> {
        self.attachments.tc_mode()
    }

    /// (netns, ifname, direction) of every attachment this run holds.
    pub fn attachments(&self) -> Vec<(String, String, &'static str)> {
        self.attachments.list()
    }

    /// Detaches every program of this run (unpins and closes the links).
    pub fn detach_all(&mut self) -> Result<()> {
        self.attachments.detach_all()
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

    /// This node's counters summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        self.maps.counters()
    }

    /// Kernel ids of the loaded programs (to find them in `bpftool prog
    /// show`).
    pub fn program_ids(&self) -> Result<Vec<u32>> {
        LbProgram::ALL
            .into_iter()
            .filter_map(|p| self.programs.get(p).map(|prog| (p, prog)))
            .map(|(p, prog)| {
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

    /// `program` if it is loaded.
    pub(super) fn program(
        &self,
        program: LbProgram,
    ) -> Result<&aya::programs::tc::SchedClassifier> {
        self.programs
            .get(program)
            .ok_or_else(|| EbpfError::Program {
                program: program.name(),
                op: "use (not loaded in this load balancer)",
                source: Box::new(aya::programs::ProgramError::NotLoaded),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_lb_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<ServiceLb>();
    }
}
