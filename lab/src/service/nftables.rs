//! Cluster IPs and node ports with nftables, as kube-proxy's nftables
//! mode: the ruleset of [`super::nftables_rules`] loaded by `nft -f -` inside
//! each node namespace, one atomic transaction per node (the full load, and
//! each change). Proof: the packet counters of the endpoint picks in the
//! service chains of the topology's own services (every packet the proxy
//! translates passes one, then its endpoint chain's DNAT), read chain by
//! chain with `nft -j list chain`
//! (listing the whole table of a 30,000-service sweep point takes seconds,
//! and synthetic services carry no traffic).
//!
//! Driven through the `nft` program, as kube-proxy does through knftables:
//! the text is what a person types or reads in `nft list`, so the golden
//! files are loadable rulesets, and nft encodes numgen, verdict maps with
//! concatenated keys and fib, which rustables 0.8 (the netlink crate) has
//! no expressions for; the `nftables` crate drives the same nft program
//! through JSON, adding a schema layer but no speed.

use serde_json::Value;

use super::nftables_rules::{render_change, render_ruleset, service_chain, TABLE};
use super::{ServiceChange, ServiceProxy};
use crate::command;
use crate::datapath::{self, LabNet};
use crate::error::{LabError, Result};
use crate::kinds::{Datapath, ProxyKind};
use crate::names::RunId;
use crate::proof::Proof;
use crate::topology::Plan;

/// Proof counter: packets dplab's nftables rules sent to an endpoint's
/// DNAT, all nodes.
pub const DNAT_PACKETS: &str = "nft_dnat_packets";

#[derive(Default)]
pub struct Nftables {
    /// Time the last full load took, for the benchmark.
    program_ms: f64,
}

impl ServiceProxy for Nftables {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Nftables
    }

    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()> {
        let masquerade = datapath::cluster_ip_needs_masquerade(datapath);
        let start = std::time::Instant::now();
        for node in 0..lab.plan.nodes.len() {
            load(
                &lab.node_ns(node),
                &render_ruleset(lab.plan, node, masquerade),
            )?;
        }
        self.program_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn apply(&mut self, lab: &LabNet<'_>, _: Datapath, change: &ServiceChange) -> Result<()> {
        let text = render_change(lab.plan, change);
        for node in 0..lab.plan.nodes.len() {
            load(&lab.node_ns(node), &text)?;
        }
        Ok(())
    }

    fn program_ms(&self) -> Option<f64> {
        Some(self.program_ms)
    }

    fn translation_counter(&self) -> &'static str {
        DNAT_PACKETS
    }

    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof> {
        // The iptables counters too: they prove no iptables rule translated.
        let mut proof = super::iptables::Iptables::default().counters(run, plan)?;
        let mut packets = 0;
        for node in &plan.nodes {
            let ns = run.netns(&node.name);
            for chain in measured_service_chains(plan) {
                let Some(json) = list_chain(&ns, &chain)? else {
                    continue;
                };
                packets += translated_packets(&json).map_err(|e| LabError::Command {
                    what: format!("nft -j list chain ip {TABLE} {chain} in {ns}"),
                    message: e,
                })?;
            }
        }
        proof.insert(DNAT_PACKETS.to_string(), packets);
        Ok(proof)
    }
}

/// Runs one `nft -f -` transaction inside namespace `ns`: all of `text`
/// applies, or nothing does.
pub fn load(ns: &str, text: &str) -> Result<()> {
    command::run_in(ns, "nft", &["-f", "-"], Some(text)).map(drop)
}

/// The service chains of the topology's own services, which are the ones
/// traffic is sent to; a sweep's synthetic services are left out.
fn measured_service_chains(plan: &Plan) -> Vec<String> {
    plan.services
        .iter()
        .filter(|s| !s.name.starts_with(super::synthetic::NAME_PREFIX))
        .map(service_chain)
        .collect()
}

/// `nft -j list chain ip dplab CHAIN` inside namespace `ns`; None when the
/// chain (or dplab's table) is not there, as before the proxy is installed.
fn list_chain(ns: &str, chain: &str) -> Result<Option<String>> {
    match command::run_in(
        ns,
        "nft",
        &["-j", "list", "chain", "ip", TABLE, chain],
        None,
    ) {
        Ok(json) => Ok(Some(json)),
        Err(LabError::Command { message, .. }) if message.contains("No such file or directory") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `nft -j list table ip dplab` inside namespace `ns`.
pub fn list_table(ns: &str) -> Result<String> {
    command::run_in(ns, "nft", &["-j", "list", "table", "ip", TABLE], None)
}

/// Sum of the packet counters of the rules that send packets to an
/// endpoint chain (`goto endpoint-…`), in `nft -j` output.
pub fn translated_packets(json: &str) -> std::result::Result<i64, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let objects = doc["nftables"]
        .as_array()
        .ok_or("no \"nftables\" array in the listing")?;
    let mut packets = 0;
    for rule in objects.iter().filter_map(|o| o.get("rule")) {
        let Some(exprs) = rule["expr"].as_array() else {
            continue;
        };
        let to_endpoint = exprs.iter().any(|e| {
            e.get("goto")
                .and_then(|g| g["target"].as_str())
                .is_some_and(|t| t.starts_with("endpoint-"))
        });
        if !to_endpoint {
            continue;
        }
        let counted = exprs
            .iter()
            .find_map(|e| e.get("counter")?.get("packets")?.as_i64())
            .ok_or_else(|| format!("endpoint pick without a counter: {rule}"))?;
        packets += counted;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_picks_are_summed_and_other_rules_ignored() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
          {"table": {"family": "ip", "name": "dplab", "handle": 3}},
          {"rule": {"chain": "service-web/tcp", "expr": [{"match": {"op": "==", "left": {"numgen": {"mode": "random", "mod": 2, "offset": 0}}, "right": 0}}, {"counter": {"packets": 3, "bytes": 180}}, {"goto": {"target": "endpoint-tcp__192.168.10.10/8080"}}]}},
          {"rule": {"chain": "service-web/tcp", "expr": [{"counter": {"packets": 4, "bytes": 240}}, {"goto": {"target": "endpoint-tcp__192.168.10.12/8080"}}]}},
          {"rule": {"chain": "external-web/tcp", "expr": [{"counter": {"packets": 50, "bytes": 1}}, {"goto": {"target": "service-web/tcp"}}]}},
          {"rule": {"chain": "x", "expr": [{"counter": {"packets": 99, "bytes": 1}}, {"accept": null}]}}]}"#;
        assert_eq!(translated_packets(json), Ok(7));
    }

    #[test]
    fn an_endpoint_pick_without_counter_is_an_error() {
        let json = r#"{"nftables": [{"rule": {"expr": [{"goto": {"target": "endpoint-a"}}]}}]}"#;
        assert!(translated_packets(json)
            .unwrap_err()
            .contains("without a counter"));
        assert!(translated_packets("[").unwrap_err().contains("not JSON"));
    }
}
