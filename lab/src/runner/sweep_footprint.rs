//! What a proxy holds, per point of a sweep, where it can be read without
//! costing more than the measurement: the rules and chains the iptables
//! proxy loaded (one atomic restore: the kernel holds exactly those; a
//! read-back costs iptables-nft tens of seconds at 10,000 services), the
//! chains of an nftables ruleset, and the kernel memory charged to eBPF
//! maps (`memlock` in the map's fdinfo). And dplab's own peak memory.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use crate::datapath;
use crate::kinds::{Datapath, ProxyKind};
use crate::names::RunId;
use crate::topology::Plan;

/// Readings by metric name, and why some proxy has none.
pub type Footprint = (BTreeMap<String, f64>, Option<String>);

pub fn read(kind: ProxyKind, datapath: Datapath, run: &RunId, plan: &Plan) -> Footprint {
    let mut out = BTreeMap::new();
    let note = match kind {
        ProxyKind::Iptables => {
            let masquerade = datapath::cluster_ip_needs_masquerade(datapath);
            let (mut rules, mut chains) = (0usize, 0usize);
            for node in 0..plan.nodes.len() {
                let text = crate::service::iptables::render_rules(plan, node, masquerade);
                rules += text.lines().filter(|l| l.starts_with("-A ")).count();
                chains += text.lines().filter(|l| l.starts_with(':')).count();
            }
            out.insert("kernel_rules".into(), rules as f64);
            out.insert("kernel_chains".into(), chains as f64);
            None
        }
        ProxyKind::Nftables => match nft_chains(run, plan) {
            Ok(n) => {
                out.insert("kernel_chains".into(), n as f64);
                None
            }
            Err(e) => Some(format!("nftables chains not read: {e}")),
        },
        ProxyKind::Ebpf | ProxyKind::SocketLb => match map_memlock(&run.bpffs_dir()) {
            Ok(bytes) => {
                out.insert("kernel_map_bytes".into(), bytes as f64);
                None
            }
            Err(e) => Some(format!("eBPF map memory not read: {e}")),
        },
        ProxyKind::Ipvs => Some("what IPVS holds in the kernel is not read".into()),
    };
    (out, note)
}

/// Chains of every nftables table in the lab's nodes.
fn nft_chains(run: &RunId, plan: &Plan) -> Result<usize, String> {
    let mut chains = 0;
    for node in &plan.nodes {
        let listed =
            crate::command::run_in(&run.netns(&node.name), "nft", &["list", "chains"], None)
                .map_err(|e| e.to_string())?;
        chains += listed
            .lines()
            .filter(|l| l.trim_start().starts_with("chain "))
            .count();
    }
    Ok(chains)
}

/// Kernel memory charged to the eBPF maps pinned under `dir` and its
/// folders (the tc proxy pins per node, in `nodes/<node>/`; not `links/`),
/// summed over maps; a pin that is no map is skipped.
fn map_memlock(dir: &Path) -> Result<u64, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut total = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "links" {
                total += map_memlock(&path)?;
            }
            continue;
        }
        let Ok(info) = aya::maps::MapInfo::from_pin(&path) else {
            continue;
        };
        // A pinned program (socket-lb's `cgroup/`) parses as map info but
        // yields no map fd: not a map.
        let Ok(fd) = info.fd() else {
            continue;
        };
        total += memlock(fd.as_fd().as_raw_fd())
            .ok_or_else(|| format!("{}: no memlock in its fdinfo", path.display()))?;
    }
    Ok(total)
}

fn memlock(fd: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Starts measuring dplab's peak memory afresh (Linux >= 4.0: writing 5 to
/// clear_refs resets the process's high-water mark).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// dplab's peak resident memory since the last reset, in MB.
pub fn peak_rss_mb() -> Option<f64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_follows_a_large_allocation() {
        reset_peak_rss();
        let before = peak_rss_mb().expect("VmHWM is readable");
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let after = peak_rss_mb().unwrap();
        drop(big);
        assert!(after >= before + 60.0, "{before} -> {after}");
    }
}
