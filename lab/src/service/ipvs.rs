//! Cluster IPs and node ports with IPVS, shaped like kube-proxy's IPVS
//! mode: in each node namespace a dummy interface (kube-ipvs0) holds every
//! cluster IP as a /32 so that service traffic is delivered locally, where
//! IPVS takes it; one round-robin virtual server per cluster IP and port
//! and per node address and node port; one masquerading (NAT) real server
//! per endpoint. A few iptables rules masquerade what must come back
//! through the node (see `ipvs_rules`), with net.ipv4.vs.conntrack=1 so
//! that netfilter NAT sees IPVS connections.
//!
//! IPVS is programmed with `ipvsadm -R` batches inside the node namespace,
//! as the iptables proxy uses iptables-restore: the Rust IPVS netlink
//! crates are unmaintained or built on an older netlink stack than ours.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::ipvs_rules::{self, ipvs_batch, ipvs_change, masquerade_change, masquerade_rules};
use super::{ServiceChange, ServiceProxy};
use crate::command;
use crate::datapath::{self, LabNet};
use crate::error::{LabError, Result};
use crate::kinds::{Datapath, ProxyKind};
use crate::names::RunId;
use crate::netns;
use crate::proof::Proof;
use crate::topology::Plan;

/// Proof counter: packets IPVS translated (in and out), all nodes. Every
/// virtual server of a node namespace is dplab's.
pub const PACKETS: &str = "ipvs_packets";

/// Short name of the dummy link, after the run prefix: `dl3f9a-ipvs0`.
const DUMMY: &str = "ipvs0";

#[derive(Default)]
pub struct Ipvs {
    /// Time the last full load took, for the benchmark.
    program_ms: f64,
}

impl ServiceProxy for Ipvs {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Ipvs
    }

    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()> {
        let masquerade = datapath::cluster_ip_needs_masquerade(datapath);
        let start = Instant::now();
        for node in 0..lab.plan.nodes.len() {
            let ns = lab.node_ns(node);
            prepare_node(lab, &ns)?;
            let addresses = node_addresses(lab.plan, node, datapath);
            let cluster_ips: Vec<Ipv4Addr> =
                lab.plan.services.iter().map(|s| s.cluster_ip).collect();
            bind_cluster_ips(lab, &ns, &cluster_ips)?;
            ipvsadm_restore(&ns, &ipvs_batch(lab.plan, &addresses))?;
            iptables_restore(&ns, &masquerade_rules(lab.plan, node, masquerade))?;
        }
        self.program_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn apply(
        &mut self,
        lab: &LabNet<'_>,
        datapath: Datapath,
        change: &ServiceChange,
    ) -> Result<()> {
        let rules = masquerade_change(lab.plan, change);
        for node in 0..lab.plan.nodes.len() {
            let ns = lab.node_ns(node);
            if let ServiceChange::AddService(svc) = change {
                bind_cluster_ips(lab, &ns, &[svc.cluster_ip])?;
            }
            let addresses = node_addresses(lab.plan, node, datapath);
            ipvsadm_restore(&ns, &ipvs_change(lab.plan, &addresses, change))?;
            iptables_restore(&ns, &rules)?;
        }
        Ok(())
    }

    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof> {
        let mut packets = 0;
        let mut dnat = 0;
        for node in &plan.nodes {
            let ns = run.netns(&node.name);
            packets += ipvs_rules::percpu_packets(&read_percpu_stats(&ns)?)
                .map_err(|e| LabError::Other(format!("reading IPVS counters in {ns}: {e}")))?;
            // No DNAT rule is installed, and the proof shows it: a DNAT
            // packet would mean the traffic took another path.
            dnat += super::iptables::dnat_packets(&super::iptables::save_counters(&ns)?);
        }
        Ok(Proof::from([
            (PACKETS.to_string(), packets),
            (super::iptables::DNAT_PACKETS.to_string(), dnat),
        ]))
    }

    fn translation_counter(&self) -> &'static str {
        PACKETS
    }

    fn program_ms(&self) -> Option<f64> {
        Some(self.program_ms)
    }
}

/// Checks that the kernel has IPVS and dummy links (both are tried, so the
/// reason names every missing one), creates the dummy link and lets
/// netfilter NAT see IPVS connections.
fn prepare_node(lab: &LabNet<'_>, ns: &str) -> Result<()> {
    let ipvs = check_kernel(ns);
    let dummy = block_on(create_dummy(lab, ns));
    match (ipvs, dummy) {
        (Err(LabError::Unsupported(a)), Err(LabError::Unsupported(b))) => {
            return Err(LabError::Unsupported(format!("{a}; {b}")))
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
        _ => {}
    }
    // Without it IPVS connections bypass conntrack and the masquerade
    // rules never see them (kube-proxy sets it too).
    netns::write_sysctl(ns, "net/ipv4/vs/conntrack", "1")?;
    Ok(())
}

/// Tries IPVS in namespace `ns` (ipvsadm loads the module if it can):
/// Ok with what ipvsadm said, Unsupported if the kernel has none.
pub fn check_kernel(ns: &str) -> Result<String> {
    if crate::workload::find_in_path("ipvsadm").is_none() {
        return Err(LabError::Other(
            "ipvsadm not found on PATH: the ipvs proxy programs IPVS with it (scripts/install-deps.sh installs it)".into(),
        ));
    }
    match command::run_in(ns, "ipvsadm", &["-L", "-n"], None) {
        Ok(out) => Ok(out.lines().next().unwrap_or("IPVS answered").to_string()),
        Err(LabError::Command { message, .. })
            if message.contains("Can't initialize ipvs")
                || message.contains("Protocol not available") =>
        {
            let said = message
                .lines()
                .find(|l| l.contains("Can't initialize ipvs"))
                .unwrap_or(&message);
            Err(LabError::Unsupported(format!(
                "kernel has no IPVS (ipvsadm -L -n in {ns}: {said})"
            )))
        }
        Err(e) => Err(e),
    }
}

/// Creates the dummy link (journalled first), left down like kube-ipvs0:
/// an address on a down link still gets its local route.
async fn create_dummy(lab: &LabNet<'_>, ns: &str) -> Result<()> {
    let name = lab.run.link(DUMMY);
    lab.journal_link(ns, &name)?;
    let msg = rtnetlink::LinkDummy::new(&name).build();
    match lab
        .nl(ns)
        .add_link(msg, &format!("dummy link {name}"))
        .await
    {
        Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => Err(LabError::Unsupported(format!(
            "kernel has no dummy links (EOPNOTSUPP creating dummy link {name} in {ns})"
        ))),
        other => Ok(other?),
    }
}

/// Binds cluster IPs to the dummy link as /32s (each once: services may
/// share a cluster IP on different ports).
fn bind_cluster_ips(lab: &LabNet<'_>, ns: &str, ips: &[Ipv4Addr]) -> Result<()> {
    let name = lab.run.link(DUMMY);
    block_on(async {
        let mut done: Vec<Ipv4Addr> = Vec::new();
        for &ip in ips {
            if done.contains(&ip) {
                continue;
            }
            match lab.nl(ns).add_address(&name, ip, 32).await {
                Err(e) if e.errno() == Some(libc::EEXIST) => {}
                other => other?,
            }
            done.push(ip);
        }
        Ok(())
    })
}

/// The node's own addresses that node ports listen on: the address its
/// pods use as gateway, and its underlay address in multi-node labs (the
/// ones `Lab::node_address` hands to node-port clients).
pub fn node_addresses(plan: &Plan, node: usize, datapath: Datapath) -> Vec<Ipv4Addr> {
    let n = &plan.nodes[node];
    let mut out = vec![datapath::pod_gateway(datapath, n)];
    out.extend(n.underlay_ip);
    out
}

/// IPVS's per-CPU counters of namespace `ns`. /proc/net follows the
/// process's namespace, /proc/thread-self/net the entering thread's.
fn read_percpu_stats(ns: &str) -> Result<String> {
    const STATS: &str = "/proc/thread-self/net/ip_vs_stats_percpu";
    netns::run_in(ns, || std::fs::read_to_string(STATS))?
        .map_err(|e| LabError::Other(format!("reading IPVS counters in {ns}: {STATS}: {e}")))
}

/// Loads a batch with one `ipvsadm -R` inside namespace `ns`.
fn ipvsadm_restore(ns: &str, batch: &str) -> Result<()> {
    command::run_in(ns, "ipvsadm", &["-R"], Some(batch)).map(drop)
}

fn iptables_restore(ns: &str, rules: &str) -> Result<()> {
    command::run_in(
        ns,
        "iptables-restore",
        &["--noflush", "--wait"],
        Some(rules),
    )
    .map(drop)
}

/// Runs netlink work from the proxy's synchronous methods: they are called
/// inside the multi-threaded runtime whose tasks drive the lab's netlink
/// connections, so this thread may block while the others serve them.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
