//! `dplab up`, `dplab down`, `dplab cleanup`: labs that outlive the command.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;

use crate::cli::{bad_input, Failure, EXIT_ERROR, EXIT_OK};
use crate::kinds::{Datapath, Overlay, ProxyKind, Target};
use crate::lab::Lab;
use crate::ledger::{self, Entry};
use crate::names::RunId;
use crate::service::{pairing, Pairing};
use crate::teardown::{self, TeardownReport};
use crate::topology::Plan;

/// Copy of the topology kept with a running lab, so `dplab test` sees the
/// same plan.
const TOPOLOGY_COPY: &str = "topology.toml";

pub async fn up(
    topology: &Path,
    datapath: Option<Datapath>,
    proxy: Option<ProxyKind>,
    overlay: Option<Overlay>,
) -> Result<u8, Failure> {
    let plan = super::load_plan(topology)?;
    let datapath = match datapath {
        Some(d) => d,
        None => plan
            .matrix
            .as_ref()
            .map(|m| m.datapaths[0])
            .unwrap_or(Datapath::VethRouted),
    };
    let proxy = proxy.unwrap_or_else(|| {
        plan.matrix
            .as_ref()
            .and_then(|m| m.proxies.first().copied())
            .unwrap_or(datapath.natural_proxy())
    });
    if let Pairing::Impossible(why) = pairing(datapath, proxy, Target::ClusterIp) {
        return Err(bad_input(format!("--proxy {proxy} on {datapath}: {why}")));
    }
    if plan.underlay.is_some() && !datapath.works_across_nodes() {
        return Err(bad_input(format!(
            "datapath {datapath} works on one node only; this topology has several"
        )));
    }
    let overlay = match overlay {
        Some(_) if plan.underlay.is_none() => {
            return Err(bad_input("--overlay: the topology has a single node"))
        }
        Some(o) => Some(o),
        None => plan
            .matrix
            .as_ref()
            .and_then(|m| m.overlays.first().copied()),
    };
    super::check_environment()?;
    super::require_root()?;
    let run = RunId::fresh();
    log::info!(
        "building {} with {datapath} and the {proxy} proxy as run {run}",
        plan.name
    );
    let lab = Lab::up(&plan, datapath, proxy, overlay, run.clone())
        .await
        .with_context(|| format!("building {} with {datapath} and {proxy}", plan.name))?;
    let text = std::fs::read_to_string(topology).context("re-reading the topology")?;
    std::fs::write(lab.ledger.dir().join(TOPOLOGY_COPY), text)
        .context("saving the topology with the lab")?;
    lab.ledger
        .record(&Entry::Detached)
        .context("journalling the lab as running")?;
    let namespaces = crate::netns::list_with_prefix(&run.prefix());
    let shown: Vec<&str> = namespaces.iter().take(6).map(String::as_str).collect();
    let more = namespaces.len().saturating_sub(shown.len());
    log::info!(
        "up in {:.0} ms; namespaces: {}{}",
        lab.setup_ms,
        shown.join(" "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    if let Some(kinds) = lab.bpf_attach() {
        log::info!(
            "eBPF programs attached by {kinds} ({})",
            describe_attach(&kinds)
        );
    }
    log::info!(
        "try `ip netns exec {} ping {}`",
        run.netns(&plan.pods[plan.pods.len() - 1].name),
        plan.pods[0].address
    );
    println!("{run}");
    Ok(EXIT_OK)
}

/// A running lab as `dplab up` left it: plan, datapath and proxy.
pub struct RunningLab {
    pub run: RunId,
    pub plan: Plan,
    pub datapath: Datapath,
    pub proxy: ProxyKind,
}

pub fn find_running(run: &str) -> Result<RunningLab, Failure> {
    let id = RunId::parse(run).ok_or_else(|| {
        bad_input(format!(
            "\"{run}\" is not a run id (4 hex digits, e.g. 3f9a)"
        ))
    })?;
    let journal = ledger::read_journal(&id).map_err(|_| {
        bad_input(format!(
            "no running lab {id} (see `dplab cleanup` for leftovers)"
        ))
    })?;
    let (datapath, proxy) = journal
        .iter()
        .find_map(|e| match e {
            Entry::Run {
                datapath, proxy, ..
            } => {
                let d = Datapath::from_str(datapath.split('+').next().unwrap_or(datapath)).ok()?;
                let p = match proxy {
                    Some(p) => ProxyKind::from_str(p).ok()?,
                    None => d.natural_proxy(),
                };
                Some((d, p))
            }
            _ => None,
        })
        .ok_or_else(|| bad_input(format!("run {id} is not a lab built by `dplab up`")))?;
    let copy = id.state_dir().join(TOPOLOGY_COPY);
    let plan = crate::topology::load(&copy).map_err(|e| bad_input(format!("run {id}: {e}")))?;
    Ok(RunningLab {
        run: id,
        plan,
        datapath,
        proxy,
    })
}

pub fn down(run: Option<&str>, all: bool) -> Result<u8, Failure> {
    super::require_root()?;
    let runs = if all {
        ledger::journaled_runs()
    } else {
        let Some(run) = run else {
            return Err(bad_input("name a run id or use --all"));
        };
        let id = RunId::parse(run).ok_or_else(|| {
            bad_input(format!(
                "\"{run}\" is not a run id (4 hex digits, e.g. 3f9a)"
            ))
        })?;
        if ledger::read_journal(&id).is_err()
            && crate::netns::list_with_prefix(&id.prefix()).is_empty()
        {
            return Err(bad_input(format!("no lab {id} is running")));
        }
        vec![id]
    };
    let mut status = EXIT_OK;
    for id in runs {
        if ledger::is_owned_by_live_process(&id) {
            log::warn!("run {id} belongs to a running dplab process; not touching it");
            status = EXIT_ERROR;
            continue;
        }
        let report = teardown::teardown_run(&id);
        print_report(&format!("down {id}"), &report);
        if !report.is_clean() {
            status = EXIT_ERROR;
        }
    }
    Ok(status)
}

pub fn cleanup() -> Result<u8, Failure> {
    super::require_root()?;
    let report = teardown::cleanup_all();
    print_report("cleanup", &report);
    Ok(if report.is_clean() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

pub fn print_report(what: &str, report: &TeardownReport) {
    if report.removed.is_empty() && report.errors.is_empty() {
        println!("{what}: nothing to remove");
    }
    for k in &report.kept {
        println!("{what}: kept {k}");
    }
    for r in &report.removed {
        println!("{what}: removed {r}");
    }
    for e in &report.errors {
        println!("{what}: FAILED {e}");
    }
    log::info!("{what} took {:.0} ms", report.elapsed_ms);
}

/// What each eBPF attach kind is, for `dplab up`'s log.
fn describe_attach(kinds: &str) -> String {
    kinds
        .split('+')
        .map(|k| match k {
            "tcx" => "TCX links",
            "netlink" => "clsact qdiscs and cls_bpf filters made over netlink: no TCX here, or DPLAB_TC_ATTACH=netlink",
            "netkit" => "netkit links",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("; ")
}
