//! The [matrix] section: datapaths, service proxies, overlays, targets,
//! workloads and how long to measure.

use std::str::FromStr;
use std::time::Duration;

use toml::Spanned;

use super::check::*;
use super::error::TopologyError;
use super::paths::{check_client_server, check_paths};
use super::plan::*;
use super::raw;
use crate::kinds::{Datapath, Overlay, ProxyKind, Target};
use crate::workload::{Tool, Workload};

const DEFAULT_DURATION: Duration = Duration::from_secs(10);
const DEFAULT_REPETITIONS: u32 = 3;

pub(super) fn check_matrix(
    c: &Checker,
    m: &Spanned<raw::Matrix>,
    plan: &Plan,
) -> Result<Matrix, TopologyError> {
    let raw = m.get_ref();
    let mut datapaths = Vec::new();
    for d in raw.datapaths.get_ref() {
        let dp =
            Datapath::from_str(d.get_ref()).or_else(|e| c.err(d.span(), "matrix.datapaths", e))?;
        if datapaths.contains(&dp) {
            return c.err(
                d.span(),
                "matrix.datapaths",
                format!("\"{dp}\" is listed twice"),
            );
        }
        datapaths.push(dp);
    }
    if datapaths.is_empty() {
        return c.err(
            raw.datapaths.span(),
            "matrix.datapaths",
            "no datapath to measure".into(),
        );
    }
    let mut proxies = Vec::new();
    if let Some(list) = &raw.service_proxies {
        for p in list.get_ref() {
            let proxy = ProxyKind::from_str(p.get_ref())
                .or_else(|e| c.err(p.span(), "matrix.service_proxies", e))?;
            if proxies.contains(&proxy) {
                return c.err(
                    p.span(),
                    "matrix.service_proxies",
                    format!("\"{proxy}\" is listed twice"),
                );
            }
            proxies.push(proxy);
        }
        if proxies.is_empty() {
            return c.err(
                list.span(),
                "matrix.service_proxies",
                "an empty list measures nothing: leave the key out for each datapath's natural proxy".into(),
            );
        }
    }
    let mut targets = Vec::new();
    match &raw.targets {
        None => targets.push(Target::PodIp),
        Some(list) => {
            for t in list.get_ref() {
                let target = Target::from_str(t.get_ref())
                    .or_else(|e| c.err(t.span(), "matrix.targets", e))?;
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
    }
    let mut workloads = Vec::new();
    match &raw.workloads {
        None => workloads.push(Workload::TcpStream),
        Some(list) => {
            for w in list.get_ref() {
                let workload = Workload::from_str(w.get_ref())
                    .or_else(|e| c.err(w.span(), "matrix.workloads", e.to_string()))?;
                if !workloads.contains(&workload) {
                    workloads.push(workload);
                }
            }
        }
    }
    let overlays = check_overlays(c, raw, plan)?;
    if !overlays.is_empty() {
        if let Some(d) = datapaths.iter().find(|d| !d.works_across_nodes()) {
            return c.err(
                raw.datapaths.span(),
                "matrix.datapaths",
                format!(
                    "datapath \"{d}\" works on one node only; across nodes use {}",
                    Datapath::ALL
                        .iter()
                        .filter(|d| d.works_across_nodes())
                        .map(|d| d.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    let paths = match (&raw.paths, &raw.client, &raw.server) {
        (Some(paths), None, None) => {
            // Paths name their own targets and services: anything else
            // would be silently ignored.
            if let Some(t) = &raw.targets {
                return c.err(
                    t.span(),
                    "matrix.targets",
                    "with [[matrix.paths]] each path names its target".into(),
                );
            }
            if let Some(s) = &raw.service {
                return c.err(
                    s.span(),
                    "matrix.service",
                    "with [[matrix.paths]] a cluster-ip path uses the service of its server pod"
                        .into(),
                );
            }
            check_paths(c, paths, plan)?
        }
        (Some(_), _, _) => {
            return c.err(
                m.span(),
                "matrix.paths",
                "give either paths or client and server, not both".into(),
            )
        }
        (None, Some(client), Some(server)) => {
            check_client_server(c, raw, m, plan, client, server, &targets)?
        }
        (None, _, _) => {
            return c.err(
                m.span(),
                "matrix",
                "name the client and server pods, or [[matrix.paths]]".into(),
            )
        }
    };
    let duration = match &raw.duration {
        None => DEFAULT_DURATION,
        Some(v) => {
            let text = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => other.to_string(),
            };
            parse_duration(&text).or_else(|e| c.err(v.span(), "matrix.duration", e))?
        }
    };
    let repetitions = match &raw.repetitions {
        None => DEFAULT_REPETITIONS,
        Some(r) if *r.get_ref() < 1 || *r.get_ref() > 1000 => {
            return c.err(
                r.span(),
                "matrix.repetitions",
                format!("{} repetitions: use 1 to 1000", r.get_ref()),
            )
        }
        Some(r) => *r.get_ref() as u32,
    };
    let tool = match &raw.tool {
        None => Tool::Builtin,
        Some(t) => Tool::from_str(t.get_ref())
            .or_else(|e| c.err(t.span(), "matrix.tool", e.to_string()))?,
    };
    Ok(Matrix {
        datapaths,
        proxies,
        overlays,
        paths,
        workloads,
        duration,
        repetitions,
        tool,
    })
}

/// Overlays are chosen for multi-node labs only; default: routed.
fn check_overlays(
    c: &Checker,
    raw: &raw::Matrix,
    plan: &Plan,
) -> Result<Vec<Overlay>, TopologyError> {
    let Some(list) = &raw.overlays else {
        return Ok(if plan.nodes.len() > 1 {
            vec![Overlay::Routed]
        } else {
            Vec::new()
        });
    };
    if plan.nodes.len() < 2 {
        return c.err(
            list.span(),
            "matrix.overlays",
            "an overlay joins nodes: this topology has only one".into(),
        );
    }
    let mut overlays = Vec::new();
    for o in list.get_ref() {
        let overlay =
            Overlay::from_str(o.get_ref()).or_else(|e| c.err(o.span(), "matrix.overlays", e))?;
        if !overlays.contains(&overlay) {
            overlays.push(overlay);
        }
    }
    Ok(overlays)
}
