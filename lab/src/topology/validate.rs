//! Checks the whole topology and resolves it into a [`Plan`]. Runs before any
//! kernel call, so a bad file never leaves anything behind. Each section
//! has its own module; this one only puts them together.

use std::path::Path;

use super::check::Checker;
use super::error::TopologyError;
use super::matrix::check_matrix;
use super::nodes::{check_nodes, check_pods, check_underlay};
use super::plan::*;
use super::raw;
use super::services::check_services;
use super::sweep::{check_sweep, Room};

const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";

pub fn validate(path: &Path, text: &str, raw: raw::Topology) -> Result<Plan, TopologyError> {
    let c = Checker { path, text };
    let name = match &raw.name {
        Some(n) => c.name(n, "name")?,
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "topology".into()),
    };
    let service_cidr = match &raw.service_cidr {
        Some(s) => c.cidr(s, "service_cidr")?,
        None => DEFAULT_SERVICE_CIDR.parse().expect("default service CIDR"),
    };
    if raw.nodes.is_empty() {
        return c.err(0..0, "nodes", "the topology has no [[nodes]]".into());
    }
    let mut nodes = check_nodes(&c, &raw.nodes, service_cidr)?;
    let underlay = check_underlay(&c, &raw, &mut nodes, service_cidr)?;
    let pods = check_pods(&c, &raw.pods, &nodes)?;
    let services = check_services(&c, &raw.services, &nodes, &pods, service_cidr)?;
    let mut plan = Plan {
        name,
        description: raw.description,
        source: path.to_path_buf(),
        service_cidr,
        nodes,
        pods,
        services,
        underlay,
        matrix: None,
        sweep: None,
    };
    if let Some(m) = &raw.matrix {
        plan.matrix = Some(check_matrix(&c, m, &plan)?);
    }
    if let Some(s) = &raw.sweep {
        let room = Room {
            own_services: plan.services.len(),
            service_cidr,
        };
        plan.sweep = Some(check_sweep(&c, s, room, plan.pods.len())?);
    }
    Ok(plan)
}
