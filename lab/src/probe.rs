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
                    let netkit = caps.iter().any(|c| c.name == "netkit" && c.available);
                    caps.extend(ebpf_probes(&run, &ns, l, netkit));
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
    use rtnetlink::packet_route::link::NetkitMode;
    use rtnetlink::{LinkDummy, LinkNetkit, LinkVxlan};
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
    let netkit = LinkNetkit::new(&run.link("pnk0"), &run.link("pnk1"), NetkitMode::L3);
    caps.push(cap(
        "netkit",
        found(nl.add_link(netkit.build(), "netkit").await, "netkit"),
    ));
    caps
}

/// Loads dplab's eBPF programs and attaches one to the scratch veth in
/// each tc attach mode (then to the scratch netkit pair, if there is one),
/// removing them again each time; says which tc mode labs will use.
fn ebpf_probes(run: &RunId, ns: &str, ledger: &Ledger, netkit: bool) -> Vec<Capability> {
    use crate::ebpf::TcAttachMode;
    if let Some(reason) = crate::ebpf::unavailable_reason() {
        return vec![cap("eBPF", Err(reason))];
    }
    if let Err(e) = ledger.record(&Entry::BpfPins {
        path: run.bpffs_dir(),
    }) {
        return vec![cap("eBPF", Err(e.to_string()))];
    }
    let veth = run.link("pu0");
    let tcx = ebpf_attach(run, |lb| {
        lb.set_tc_attach_mode(TcAttachMode::Tcx);
        lb.attach_veth_ingress(ns, &veth)?;
        Ok("attached a program at tc ingress of a veth with a TCX link".into())
    });
    let netlink = ebpf_attach(run, |lb| {
        lb.set_tc_attach_mode(TcAttachMode::Netlink);
        lb.attach_veth_ingress(ns, &veth)?;
        let made = crate::ebpf::has_clsact(ns, &veth)?;
        Ok(format!(
            "attached a program at tc ingress of a veth with a clsact qdisc{} and a cls_bpf filter",
            if made { "" } else { " (not found afterwards!)" }
        ))
    });
    let env = crate::ebpf::TC_ATTACH_ENV;
    let chosen = match TcAttachMode::forced() {
        Err(e) => Err(e.to_string()),
        Ok(Some(m)) => match if m == TcAttachMode::Tcx {
            &tcx
        } else {
            &netlink
        } {
            Ok(_) => Ok(format!("{m} (forced by {env})")),
            Err(e) => Err(format!("{m} is forced by {env} but fails: {e}")),
        },
        Ok(None) => match (&tcx, &netlink) {
            (Ok(_), _) => Ok("tcx".into()),
            (Err(why), Ok(_)) => Ok(format!("netlink (TCX: {why})")),
            (Err(a), Err(b)) => Err(format!("TCX: {a}; netlink: {b}")),
        },
    };
    let mut caps = vec![
        cap("tc attach: TCX", tcx),
        cap("tc attach: clsact + cls_bpf (netlink)", netlink),
        cap("tc attach mode", chosen),
    ];
    if netkit {
        let nk = run.link("pnk0");
        caps.push(cap(
            "netkit eBPF attach",
            ebpf_attach(run, |lb| {
                lb.attach_netkit_peer(ns, &nk)?;
                Ok(
                    "attached a program at the peer hook of a netkit pair with a netkit link"
                        .into(),
                )
            }),
        ));
    }
    caps
}

/// Loads the programs for the probe run, runs `attach`, and tears the
/// programs and attachments down again.
fn ebpf_attach(
    run: &RunId,
    attach: impl FnOnce(&mut crate::ebpf::ServiceLb) -> Result<String, crate::ebpf::EbpfError>,
) -> Result<String, String> {
    let mut lb = crate::ebpf::ServiceLb::load(run.as_str()).map_err(|e| e.to_string())?;
    let attached = attach(&mut lb).map_err(|e| e.to_string());
    let removed = lb.teardown().map_err(|e| e.to_string());
    let detail = attached?;
    removed?;
    Ok(detail)
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
