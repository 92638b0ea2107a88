//! One point of a sweep on one lab: how long the proxy took to program
//! every service until the measured one carried traffic, and how long one
//! change took until it showed in fresh connections (see
//! [`super::sweep_probe`] for what "showed" means). Its readings gather in
//! a [`PointTally`] over the repetitions.

use std::collections::BTreeMap;
use std::time::Instant;

use super::sweep_probe::{ProbeServer, Prober, Until, STREAK};
use super::LabKey;
use crate::datapath::LabNet;
use crate::error::LabError;
use crate::lab::Lab;
use crate::results::sweep::SweepPoint;
use crate::results::{CellStatus, Metric};
use crate::service::{synthetic, ServiceChange};
use crate::topology::{Endpoint, Plan};
use crate::workload::Endpoints;

/// Port of the service a one-change update adds (its endpoints listen on
/// it only while the update is measured).
pub const PROBE_PORT: u16 = 5399;

/// What one (lab, service count) gathered over the repetitions.
pub(super) struct PointTally {
    pub key: LabKey,
    pub services: u32,
    pub endpoints: u32,
    pub measured_position: u32,
    samples: BTreeMap<String, Vec<f64>>,
    verdict: Option<(CellStatus, String)>,
    notes: Vec<String>,
}

impl PointTally {
    pub fn new(key: LabKey, plan: &Plan, measured: Option<usize>) -> PointTally {
        PointTally {
            key,
            services: plan.services.len() as u32,
            endpoints: plan.services.iter().map(|s| s.backends.len() as u32).sum(),
            measured_position: measured.map_or(0, |s| s as u32 + 1),
            samples: BTreeMap::new(),
            verdict: None,
            notes: Vec::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.verdict.is_some()
    }

    pub fn add(&mut self, name: &str, value: f64) {
        self.samples
            .entry(name.to_string())
            .or_default()
            .push(value);
    }

    pub fn note(&mut self, text: String) {
        if !self.notes.contains(&text) {
            self.notes.push(text);
        }
    }

    pub fn fail(&mut self, reason: String) {
        self.verdict.get_or_insert((CellStatus::Failed, reason));
    }

    pub fn skip(&mut self, reason: String) {
        self.verdict.get_or_insert((CellStatus::Skipped, reason));
    }

    pub fn build_failed(&mut self, e: &LabError) {
        if e.is_unsupported() {
            self.skip(e.to_string());
        } else {
            self.fail(format!("building the lab failed: {e}"));
        }
    }

    pub fn into_point(self) -> SweepPoint {
        let (status, reason) = match self.verdict {
            Some((s, r)) => (s, Some(r)),
            None if self.samples.is_empty() => {
                (CellStatus::Failed, Some("nothing was measured".into()))
            }
            None => (CellStatus::Ok, None),
        };
        SweepPoint {
            datapath: self.key.datapath.to_string(),
            service_proxy: self.key.proxy.to_string(),
            overlay: self.key.overlay.map(|o| o.to_string()),
            services: self.services,
            endpoints: self.endpoints,
            measured_position: self.measured_position,
            status,
            reason,
            metrics: self
                .samples
                .into_iter()
                .map(|(k, v)| (k, Metric::from_samples(v)))
                .collect(),
            notes: self.notes,
        }
    }
}

/// Full programming: the proxy's install call, and from its start until a
/// fresh connection to the measured service completes its handshake
/// (probing starts once the lab is up).
pub(super) fn programming(lab: &Lab, to: &Endpoints, tally: &mut PointTally) {
    tally.add("program_ms", lab.install.ms);
    let server = match ProbeServer::listen(&to.server_netns, to.server_port) {
        Ok(s) => s,
        Err(e) => return tally.fail(e),
    };
    let carried = Prober::ready(&to.client_netns, to.target, Until::Established).and_then(|p| {
        p.start(lab.install.started);
        p.wait()
    });
    server.close();
    match carried {
        Ok(at) => tally.add("program_to_traffic_ms", ms_since(lab.install.started, at)),
        Err(e) => tally.fail(format!(
            "the measured service {} carried no traffic after programming: {e}",
            to.target
        )),
    }
}

/// One-change updates on a lab holding `point`: add a service (timed until
/// a fresh connection to it completes), then remove one of its two
/// endpoints, the one that refuses connections (timed until a streak of
/// fresh connections all complete).
pub(super) fn updates(
    lab: &mut Lab,
    point: &Plan,
    client: Endpoint,
    server: Endpoint,
    tally: &mut PointTally,
) {
    let (Endpoint::Pod(server_pod), client_pod) = (server, client) else {
        return tally.note("updates not measured: the measured server is no pod".into());
    };
    let client_pod = match client_pod {
        Endpoint::Pod(p) => Some(p),
        Endpoint::Node(_) => None,
    };
    let (added, other) = match synthetic::added_service(point, server_pod, client_pod, PROBE_PORT) {
        Ok(a) => a,
        Err(e) => return tally.fail(format!("planning the added service: {e}")),
    };
    let target = std::net::SocketAddr::from((added.cluster_ip, PROBE_PORT));
    let client_ns = lab.endpoint_ns(client);
    let server = match ProbeServer::listen(&lab.endpoint_ns(server), PROBE_PORT) {
        Ok(s) => s,
        Err(e) => return tally.fail(e),
    };
    let mut after = point.clone();
    after.services.push(added.clone());
    let added_ok = change(
        lab,
        &after,
        ServiceChange::AddService(added),
        &client_ns,
        target,
        Until::Established,
        "update_add_service",
        tally,
    );
    match other {
        Some(pod) if added_ok => {
            let service = after.services.len() - 1;
            after.services[service].backends.retain(|&b| b != pod);
            change(
                lab,
                &after,
                ServiceChange::RemoveEndpoint { service, pod },
                &client_ns,
                target,
                Until::Streak(STREAK),
                "update_remove_endpoint",
                tally,
            );
        }
        Some(_) => {}
        None => tally.note(
            "update_remove_endpoint not measured: the lab has no pod besides the client and the server to be the removed endpoint".into(),
        ),
    }
    server.close();
}

/// Applies one change and times it: `{metric}_call_ms` until apply
/// returned, `{metric}_ms` until the prober saw it. Whether it showed.
#[allow(clippy::too_many_arguments)]
fn change(
    lab: &mut Lab,
    after: &Plan,
    change: ServiceChange,
    client_ns: &str,
    target: std::net::SocketAddr,
    until: Until,
    metric: &str,
    tally: &mut PointTally,
) -> bool {
    let prober = match Prober::ready(client_ns, target, until) {
        Ok(p) => p,
        Err(e) => {
            tally.fail(e);
            return false;
        }
    };
    let net = LabNet::with_links(&lab.run, after, &lab.ledger, Vec::new());
    let t0 = Instant::now();
    prober.start(t0);
    let applied = lab.proxy.apply(&net, lab.datapath, &change);
    let call_ms = ms_since(t0, Instant::now());
    match applied {
        Ok(()) => tally.add(&format!("{metric}_call_ms"), call_ms),
        Err(e) => {
            prober.cancel();
            let why = format!("{metric} not measured: the {} proxy: {e}", lab.proxy.kind());
            if e.is_unsupported() {
                tally.note(why);
            } else {
                tally.fail(why);
            }
            return false;
        }
    }
    match prober.wait() {
        Ok(at) => {
            tally.add(&format!("{metric}_ms"), ms_since(t0, at));
            true
        }
        Err(e) => {
            tally.fail(format!("{metric}: {e}"));
            false
        }
    }
}

fn ms_since(t0: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(t0).as_secs_f64() * 1000.0
}
