//! `dplab probe`: which kernel and tool capabilities dplab uses are present,
//! found by really trying them in a scratch namespace (journalled like a
//! lab, so a crash mid-probe is cleaned up by `dplab cleanup`).

use serde::Serialize;

use crate::ledger::{Entry, Ledger};
use crate::names::RunId;
use crate::netns::{
    self,
    netlink::{IpvlanMode, Netlink},
};
use crate::teardown::teardown_run;

#[derive(Debug, Clone, Serialize)]
pub struct Capability {
    pub name: String,
    pub available: bool,
    /// How it was found, or why it is missing.
    pub detail: String,
}

fn cap(name: &str, result: Result<String, String>) -> Capability {
    match result {
        Ok(detail) => Capability {
            name: name.into(),
            available: true,
            detail,
        },
        Err(detail) => Capability {
            name: name.into(),
            available: false,
            detail,
        },
    }
}

/// Runs every probe and removes the scratch namespace afterwards.
pub async fn probe() -> Vec<Capability> {
    let run = RunId::fresh();
    let mut caps = Vec::new();
    let ns = run.netns("probe");
    let ledger = Ledger::create(
        &run,
        Entry::Run {
            run_id: run.to_string(),
            topology: "probe".into(),
            datapath: "-".into(),
            proxy: None,
            owner_pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339(),
        },
    );
    let created = ledger
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|l| {
            l.record(&Entry::Netns { name: ns.clone() })
                .map_err(|e| e.to_string())
        })
        .and_then(|_| netns::create(&ns).map_err(|e| e.to_string()));
    caps.push(cap(
        "netns",
        created
            .clone()
            .map(|_| "created a named network namespace".into()),
    ));
    if created.is_ok() {
        match Netlink::open(&ns) {
            Ok(nl) => {
                caps.extend(link_probes(&run, &ns, &nl).await);
                caps.push(cap(
                    "ipvs",
                    crate::service::ipvs::check_kernel(&ns).map_err(|e| e.to_string()),
                ));
                if let Ok(l) = &ledger {
                    caps.push(cap("tc eBPF attach (TCX)", ebpf_attach(&run, &ns, l)));
                }
            }
            Err(e) => caps.push(cap("netlink", Err(e.to_string()))),
        }
    }
    drop(ledger);
    let report = teardown_run(&run);
    if !report.is_clean() {
        caps.push(cap("probe teardown", Err(report.errors.join("; "))));
    }
    caps.extend(file_probes());
    caps.extend(tool_probes());
    caps
}

/// Tries to create each link kind dplab uses.
async fn link_probes(run: &RunId, ns: &str, nl: &Netlink) -> Vec<Capability> {
    use rtnetlink::{LinkDummy, LinkVxlan};
    let up0 = run.link("pu0");
    let up1 = run.link("pu1");
    let mut caps = Vec::new();
    let veth = nl.add_veth(&up0, &up1).await;
    let veth_ok = veth.is_ok();
    caps.push(cap(
        "veth",
        veth.map(|_| "created a veth pair".into())
            .map_err(|e| e.to_string()),
    ));
    let found = |r: Result<(), crate::netns::netlink::NetlinkError>, what: &str| {
        r.map(|_| format!("created a {what} link"))
            .map_err(|e| explain(&e, what))
    };
    caps.push(cap(
        "bridge",
        found(nl.add_bridge(&run.link("pbr")).await, "bridge"),
    ));
    let bridge_nf = netns::read_sysctl(ns, "net/bridge/bridge-nf-call-iptables");
    caps.push(cap(
        "br_netfilter",
        bridge_nf
            .map(|v| format!("net.bridge.bridge-nf-call-iptables is per namespace (here {v})"))
            .map_err(|e| format!("no net.bridge.bridge-nf-call-iptables sysctl ({e})")),
    ));
    if veth_ok {
        caps.push(cap(
            "macvlan",
            found(nl.add_macvlan(&run.link("pmv"), &up0).await, "macvlan"),
        ));
        caps.push(cap(
            "ipvlan",
            found(
                nl.add_ipvlan(&run.link("piv"), &up0, IpvlanMode::L2).await,
                "ipvlan",
            ),
        ));
    }
    caps.push(cap(
        "vxlan",
        found(
            nl.add_link(
                LinkVxlan::new(&run.link("pvx"), 42).port(4789).build(),
                "vxlan",
            )
            .await,
            "vxlan",
        ),
    ));
    caps.push(cap(
        "dummy",
        found(
            nl.add_link(LinkDummy::new(&run.link("pdm")).build(), "dummy")
                .await,
            "dummy",
        ),
    ));
    caps
}

/// Loads dplab's eBPF programs and attaches one to the scratch veth, then
/// removes them again.
fn ebpf_attach(run: &RunId, ns: &str, ledger: &Ledger) -> Result<String, String> {
    if let Some(reason) = crate::ebpf::unavailable_reason() {
        return Err(reason);
    }
    ledger
        .record(&Entry::BpfPins {
            path: run.bpffs_dir(),
        })
        .map_err(|e| e.to_string())?;
    let mut lb = crate::ebpf::ServiceLb::load(run.as_str()).map_err(|e| e.to_string())?;
    let attached = lb
        .attach_veth_ingress(ns, &run.link("pu0"))
        .map_err(|e| e.to_string());
    let removed = lb.teardown().map_err(|e| e.to_string());
    attached?;
    removed?;
    Ok("loaded the service programs and attached one at tc ingress of a veth".into())
}

/// Turns a link creation error into the reason a datapath is skipped.
fn explain(e: &crate::netns::netlink::NetlinkError, what: &str) -> String {
    match e.errno() {
        Some(libc::EOPNOTSUPP) => format!(
            "kernel has no {what} support (EOPNOTSUPP creating {} {what} link)",
            article(what)
        ),
        _ => format!("creating a {what} link failed: {e}"),
    }
}

fn file_probes() -> Vec<Capability> {
    let exists = |path: &str, yes: &str, no: &str| {
        if std::path::Path::new(path).exists() {
            Ok(yes.to_string())
        } else {
            Err(no.to_string())
        }
    };
    vec![
        cap(
            "btf",
            exists(
                "/sys/kernel/btf/vmlinux",
                "/sys/kernel/btf/vmlinux present",
                "no /sys/kernel/btf/vmlinux",
            ),
        ),
        cap("bpffs", bpffs()),
    ]
}

fn bpffs() -> Result<String, String> {
    let mounts = std::fs::read_to_string("/proc/mounts").map_err(|e| e.to_string())?;
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf"))
    {
        Ok("bpffs mounted".into())
    } else {
        Err("no bpffs mounted (mount -t bpf bpf /sys/fs/bpf)".into())
    }
}

fn tool_probes() -> Vec<Capability> {
    [
        "iptables-restore",
        "iptables-save",
        "ipvsadm",
        "iperf3",
        "qperf",
        "ping",
    ]
    .iter()
    .map(|tool| {
        cap(
            tool,
            crate::workload::find_in_path(tool)
                .map(|p| p.display().to_string())
                .ok_or_else(|| format!("{tool} not found on PATH")),
        )
    })
    .collect()
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
