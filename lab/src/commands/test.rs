//! `dplab test RUN --from POD --to POD|IP|service:NAME --workload W`: one
//! workload on a lab left running by `dplab up`.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::cli::{bad_input, Failure, EXIT_CELLS_FAILED, EXIT_OK};
use crate::kinds::Target;
use crate::ledger::Ledger;
use crate::proof;
use crate::results::{Cell, CellStatus, Metric};
use crate::runner::pids::JournalPids;
use crate::service;
use crate::topology::{Endpoint, Plan};
use crate::workload::pinning::CpuPinning;
use crate::workload::{self, Endpoints, Tool, Workload};

pub struct TestFlags {
    pub from: String,
    pub to: String,
    pub workload: Workload,
    pub duration: Duration,
    pub tool: Tool,
    pub cpus: CpuPinning,
    pub json: bool,
}

/// Where `--to` points: a pod, or a service's cluster IP.
struct Destination {
    server: Endpoint,
    target: Target,
    addr: SocketAddr,
    server_port: u16,
}

pub async fn run(run: &str, flags: TestFlags) -> Result<u8, Failure> {
    super::require_root()?;
    let lab = super::lifecycle::find_running(run)?;
    let plan = &lab.plan;
    let client = endpoint(plan, &flags.from).ok_or_else(|| {
        bad_input(format!(
            "--from: \"{}\" is neither a pod nor a node",
            flags.from
        ))
    })?;
    let (w, tool) = (flags.workload, flags.tool);
    workload::check_tool(tool, w).map_err(|e| bad_input(e.to_string()))?;
    let dest = destination(plan, &flags.to)?;
    if dest.server == client {
        return Err(bad_input("--from and --to are the same pod or node"));
    }
    let params = crate::workload::Params {
        cpus: flags.cpus,
        ..crate::runner::params_for(flags.duration)
    };
    let endpoints = Endpoints {
        client_netns: lab.run.netns(plan.endpoint_name(client)),
        server_netns: lab.run.netns(plan.endpoint_name(dest.server)),
        server_port: dest.server_port,
        target: dest.addr,
    };
    let ledger = Ledger::open(&lab.run).map_err(|e| Failure::Error(e.into()))?;
    let proxy = service::reopen(lab.proxy, &lab.run).map_err(|e| Failure::Error(e.into()))?;
    let counters = || {
        let mut proof = proxy.counters(&lab.run, plan)?;
        crate::overlay::add_vxlan_proof(&lab.run, plan, &mut proof)?;
        Ok::<_, crate::error::LabError>(proof)
    };
    let counters = || counters().map_err(|e| Failure::Error(e.into()));
    let before = counters()?;
    let sample = tokio::task::block_in_place(|| {
        workload::run_sample(w, tool, &params, &endpoints, &JournalPids(&ledger), None)
    });
    let proof = proof::delta(&before, &counters()?);
    let (status, reason, metrics) = match sample {
        Ok(s) => (
            CellStatus::Ok,
            None,
            s.metrics
                .into_iter()
                .map(|(k, v)| (k, Metric::from_samples(vec![v])))
                .collect(),
        ),
        Err(e) => (CellStatus::Failed, Some(e.to_string()), Default::default()),
    };
    let cell = Cell {
        datapath: lab.datapath.to_string(),
        target: dest.target.to_string(),
        service_proxy: dest.target.is_service().then(|| lab.proxy.to_string()),
        workload: w.to_string(),
        tool: tool.to_string(),
        client: plan.endpoint_name(client).to_string(),
        server: plan.endpoint_name(dest.server).to_string(),
        overlay: None,
        placement: None,
        services: None,
        endpoints: None,
        status,
        reason,
        setup_ms: None,
        teardown_ms: None,
        metrics,
        proof,
        conditions: None,
        bpf_attach: crate::ebpf::recorded_attach_kinds(lab.run.as_str()),
    };
    print_cell(&cell, flags.json);
    Ok(if cell.status == CellStatus::Ok {
        EXIT_OK
    } else {
        EXIT_CELLS_FAILED
    })
}

fn destination(plan: &Plan, to: &str) -> Result<Destination, Failure> {
    const PORT: u16 = 5201;
    if let Some(name) = to.strip_prefix("service:") {
        let s = plan
            .service(name)
            .map(|i| &plan.services[i])
            .ok_or_else(|| bad_input(format!("--to: unknown service \"{name}\"")))?;
        return Ok(Destination {
            server: Endpoint::Pod(s.backends[0]),
            target: Target::ClusterIp,
            addr: SocketAddr::from((s.cluster_ip, s.port)),
            server_port: s.target_port,
        });
    }
    let pod = match Ipv4Addr::from_str(to) {
        Ok(ip) => plan.pods.iter().position(|p| p.address == ip),
        Err(_) => plan.pod(to),
    };
    if let Some(pod) = pod {
        return Ok(Destination {
            server: Endpoint::Pod(pod),
            target: Target::PodIp,
            addr: SocketAddr::from((plan.pods[pod].address, PORT)),
            server_port: PORT,
        });
    }
    let node = match Ipv4Addr::from_str(to) {
        Ok(ip) => plan.nodes.iter().position(|n| n.underlay_ip == Some(ip)),
        Err(_) => plan.nodes.iter().position(|n| n.name == to),
    };
    if let Some(n) = node {
        let ip = plan.nodes[n].underlay_ip.ok_or_else(|| {
            bad_input(format!(
                "--to: node \"{to}\" has no address of its own in a single-node lab"
            ))
        })?;
        return Ok(Destination {
            server: Endpoint::Node(n),
            target: Target::NodeIp,
            addr: SocketAddr::from((ip, PORT)),
            server_port: PORT,
        });
    }
    if let Ok(ip) = Ipv4Addr::from_str(to) {
        if let Some(s) = plan.services.iter().find(|s| s.cluster_ip == ip) {
            return destination(plan, &format!("service:{}", s.name));
        }
    }
    Err(bad_input(format!(
        "--to: \"{to}\" is neither a pod, a pod IP, a cluster IP nor service:NAME of this lab"
    )))
}

fn print_cell(cell: &Cell, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(cell).expect("cells serialize")
        );
        return;
    }
    println!(
        "{} {} -> {} ({}, {}, {})",
        cell.workload, cell.client, cell.server, cell.target, cell.datapath, cell.tool
    );
    match cell.status {
        CellStatus::Ok => {
            for (name, m) in &cell.metrics {
                println!(
                    "  {name:22} {}",
                    crate::results::report::format_number(m.median)
                );
            }
        }
        _ => println!("  FAILED: {}", cell.reason.clone().unwrap_or_default()),
    }
    for (name, v) in &cell.proof {
        println!("  proof {name} {v}");
    }
}

/// A pod or node of the lab by name.
fn endpoint(plan: &Plan, name: &str) -> Option<Endpoint> {
    plan.pod(name).map(Endpoint::Pod).or_else(|| {
        plan.nodes
            .iter()
            .position(|n| n.name == name)
            .map(Endpoint::Node)
    })
}
