//! A lab: the namespaces, links and services of one topology wired by one
//! datapath. `Lab::up` journals and builds it; on any failure it tears down
//! what it built before returning the error.

use std::sync::Mutex;
use std::time::Instant;

use crate::datapath::{self, LabNet};
use crate::error::{LabError, Result};
use crate::kinds::{Datapath, Overlay, ProxyKind};
use crate::ledger::{Entry, Ledger};
use crate::names::RunId;
use crate::netns::netlink::Netlink;
use crate::proof::Proof;
use crate::service::{self, ServiceProxy};
use crate::teardown::{teardown_run, TeardownReport};
use crate::topology::{PathPlan, Plan};

/// Held while a lab is being built or torn down, so that a signal handler
/// tearing down never races with a half-created object.
pub static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The run a signal should tear down, if any.
pub static ACTIVE_RUN: Mutex<Option<RunId>> = Mutex::new(None);

pub struct Lab {
    pub run: RunId,
    pub plan: Plan,
    pub datapath: Datapath,
    pub overlay: Option<Overlay>,
    pub ledger: Ledger,
    pub setup_ms: f64,
    pub proxy: Box<dyn ServiceProxy>,
    /// How the wiring's own eBPF programs (host routing) were attached.
    routing_attach: Option<String>,
    /// When the proxy's install began and how long the call took.
    pub install: ProxyInstall,
}

/// The proxy's install call inside [`Lab::up`], timed.
#[derive(Debug, Clone, Copy)]
pub struct ProxyInstall {
    pub started: Instant,
    pub ms: f64,
}

impl Lab {
    /// Builds the lab. On failure everything created is removed again and
    /// the error says what failed (plus any teardown problem).
    // The build lock is a plain mutex on purpose: only the signal thread
    // (not a task) ever waits for it.
    #[allow(clippy::await_holding_lock)]
    pub async fn up(
        plan: &Plan,
        datapath: Datapath,
        proxy: ProxyKind,
        overlay: Option<Overlay>,
        run: RunId,
    ) -> Result<Lab> {
        let start = Instant::now();
        let guard = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        *ACTIVE_RUN.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.clone());
        let ledger = Ledger::create(
            &run,
            Entry::Run {
                run_id: run.to_string(),
                topology: plan.name.clone(),
                datapath: match overlay {
                    Some(o) => format!("{datapath}+{o}"),
                    None => datapath.to_string(),
                },
                proxy: Some(proxy.to_string()),
                owner_pid: std::process::id(),
                started_at: chrono::Utc::now().to_rfc3339(),
            },
        )?;
        let built = match service::create(proxy) {
            Ok(mut proxy) => build(plan, datapath, overlay, &run, &ledger, proxy.as_mut())
                .await
                .map(|(install, routing)| (proxy, install, routing)),
            Err(e) => Err(e),
        };
        match built {
            Ok((proxy, install, routing_attach)) => {
                drop(guard);
                Ok(Lab {
                    run,
                    plan: plan.clone(),
                    datapath,
                    overlay,
                    ledger,
                    setup_ms: start.elapsed().as_secs_f64() * 1000.0,
                    proxy,
                    routing_attach,
                    install,
                })
            }
            Err(e) => {
                // Still holding the journal's owner lock, so a concurrent
                // `dplab cleanup` leaves this teardown alone.
                let err = fail(&run, e);
                drop(ledger);
                drop(guard);
                Err(err)
            }
        }
    }

    /// How the lab's eBPF programs (host routing and proxy) were attached:
    /// `tcx`, `netlink`, `netkit`, `+`-joined; None without eBPF programs.
    pub fn bpf_attach(&self) -> Option<String> {
        crate::ebpf::join_attach_kinds(
            self.routing_attach
                .clone()
                .into_iter()
                .chain(self.proxy.bpf_attach()),
        )
    }

    /// Counters of the service proxy and the overlay (proof of path).
    pub fn proof(&self) -> Result<Proof> {
        let mut proof = self.proxy.counters(&self.run, &self.plan)?;
        crate::datapath::add_proof(self.datapath, &self.run, &mut proof)?;
        crate::overlay::add_vxlan_proof(&self.run, &self.plan, &mut proof)?;
        Ok(proof)
    }

    /// Why a sample's proof delta on `path` contradicts what this lab is:
    /// its proxy, its wiring and its overlay each judge their own counters;
    /// eBPF drops are named too, whichever else contradicts (a drop is
    /// often why a translation or a redirect counter did not move).
    pub fn contradiction(&self, path: &PathPlan, proof: &Proof) -> Option<String> {
        let pod_traffic_crosses = crate::overlay::pod_traffic_crosses_nodes(&self.plan, path);
        let path_contradiction = self
            .proxy
            .contradiction(path.target, proof)
            .or_else(|| crate::datapath::contradiction(self.datapath, &self.plan, path, proof))
            .or_else(|| crate::overlay::contradiction(self.overlay, pod_traffic_crosses, proof));
        with_drops(path_contradiction, proof)
    }

    /// The address a client reaches node `node` at: its underlay address in
    /// multi-node labs, else the gateway its pods use.
    pub fn node_address(&self, node: usize) -> std::net::Ipv4Addr {
        let n = &self.plan.nodes[node];
        n.underlay_ip
            .unwrap_or_else(|| crate::datapath::pod_gateway(self.datapath, n))
    }

    /// Namespace of a pod or node endpoint.
    pub fn endpoint_ns(&self, e: crate::topology::Endpoint) -> String {
        self.run.netns(self.plan.endpoint_name(e))
    }

    /// Tears the lab down and reports what was removed.
    pub fn down(self) -> TeardownReport {
        let _guard = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        drop(self.proxy);
        drop(self.ledger);
        let report = teardown_run(&self.run);
        *ACTIVE_RUN.lock().unwrap_or_else(|p| p.into_inner()) = None;
        report
    }
}

/// Tears down a failed build and folds teardown problems into the error.
fn fail(run: &RunId, err: LabError) -> LabError {
    let report = teardown_run(run);
    *ACTIVE_RUN.lock().unwrap_or_else(|p| p.into_inner()) = None;
    if report.is_clean() {
        err
    } else {
        let msg = format!("{err}; teardown also failed: {}", report.errors.join("; "));
        if err.is_unsupported() {
            LabError::Unsupported(msg)
        } else {
            LabError::Other(msg)
        }
    }
}

async fn build(
    plan: &Plan,
    datapath: Datapath,
    overlay: Option<Overlay>,
    run: &RunId,
    ledger: &Ledger,
    proxy: &mut dyn ServiceProxy,
) -> Result<(ProxyInstall, Option<String>)> {
    // Journal every namespace with one sync, then create them all on a few
    // threads, each opening its netlink connection while inside.
    let namespaces = LabNet::namespaces(run, plan);
    let entries: Vec<Entry> = namespaces
        .iter()
        .map(|name| Entry::Netns { name: name.clone() })
        .collect();
    ledger.record_all(&entries)?;
    let links = Netlink::create_all(&namespaces)?;
    let mut net = LabNet::with_links(run, plan, ledger, links);
    let overlay = match (plan.underlay.is_some(), overlay) {
        (true, None) => Some(Overlay::Routed),
        (_, o) => o,
    };
    net.pod_mtu = crate::overlay::pod_mtu(&net, overlay);
    net.overlay = overlay.filter(|_| plan.underlay.is_some());
    datapath::wire(datapath, &net).await?;
    if let (Some(o), true) = (overlay, plan.underlay.is_some()) {
        crate::overlay::wire(&net, o).await?;
    }
    let routing_attach = datapath::finish(datapath, &net)?;
    inject_fault("after-wiring")?;
    let started = Instant::now();
    proxy.install(&net, datapath)?;
    Ok((
        ProxyInstall {
            started,
            ms: started.elapsed().as_secs_f64() * 1000.0,
        },
        routing_attach,
    ))
}

/// Test hook: `DPLAB_INJECT_FAULT=<step>` makes setup fail at that step, to
/// prove that a failure half way leaves nothing behind.
fn inject_fault(step: &str) -> Result<()> {
    match std::env::var("DPLAB_INJECT_FAULT") {
        Ok(v) if v == step => Err(LabError::Other(format!(
            "fault injected at {step} (DPLAB_INJECT_FAULT)"
        ))),
        _ => Ok(()),
    }
}

/// A sample's verdict with its eBPF drops named: the drops alone, or after
/// the other contradiction they likely explain.
fn with_drops(contradiction: Option<String>, proof: &Proof) -> Option<String> {
    let drops = datapath::ebpf_routing::drop_contradiction(proof);
    match (contradiction, drops) {
        (Some(other), Some(drops)) => Some(format!("{other}; {drops}")),
        (other, drops) => other.or(drops),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_named_alone_or_after_another_contradiction() {
        let clean = Proof::from([(datapath::DROPPED.to_string(), 0)]);
        let dropped = Proof::from([(datapath::DROPPED.to_string(), 7)]);
        assert_eq!(with_drops(None, &clean), None);
        assert_eq!(
            with_drops(Some("proof: x".into()), &clean).as_deref(),
            Some("proof: x")
        );
        let alone = with_drops(None, &dropped).unwrap();
        assert!(
            alone.starts_with("proof: the eBPF programs dropped 7"),
            "{alone}"
        );
        let both = with_drops(Some("proof: no hits".into()), &dropped).unwrap();
        assert!(
            both.starts_with(
                "proof: no hits; proof: the eBPF programs dropped 7 packets (bpf_dropped = 7)"
            ),
            "{both}"
        );
    }
}
