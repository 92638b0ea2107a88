//! The measured paths of a matrix: a client/server pair of pods with its
//! targets (single node), or explicit [[matrix.paths]] between pods and
//! nodes (multi-node).

use std::str::FromStr;

use toml::Spanned;

use super::check::*;
use super::error::TopologyError;
use super::plan::*;
use super::raw;
use crate::kinds::Target;

/// Single-node form: one client and one server pod, measured on every target.
pub(super) fn check_client_server(
    c: &Checker,
    raw: &raw::Matrix,
    m: &Spanned<raw::Matrix>,
    plan: &Plan,
    client: &Spanned<String>,
    server: &Spanned<String>,
    targets: &[Target],
) -> Result<Vec<PathPlan>, TopologyError> {
    let pod_field = |v: &Spanned<String>, field: &str| {
        plan.pod(v.get_ref()).ok_or_else(|| {
            TopologyError::at(
                c.path,
                c.text,
                v.span(),
                field,
                format!("unknown pod \"{}\"", v.get_ref()),
            )
        })
    };
    let client = pod_field(client, "matrix.client")?;
    let server_pod = pod_field(server, "matrix.server")?;
    if client == server_pod {
        return c.err(
            server.span(),
            "matrix.server",
            "client and server are the same pod".into(),
        );
    }
    let service = match &raw.service {
        Some(s) => {
            let idx = plan.service(s.get_ref()).ok_or_else(|| {
                TopologyError::at(
                    c.path,
                    c.text,
                    s.span(),
                    "matrix.service",
                    format!("unknown service \"{}\"", s.get_ref()),
                )
            })?;
            if !plan.services[idx].backends.contains(&server_pod) {
                return c.err(
                    s.span(),
                    "matrix.service",
                    format!(
                        "service \"{}\" is not backed by the server pod",
                        s.get_ref()
                    ),
                );
            }
            Some(idx)
        }
        None => plan
            .services
            .iter()
            .position(|s| s.backends.contains(&server_pod)),
    };
    let targets_span = raw.targets.as_ref().map(|t| t.span()).unwrap_or(m.span());
    if targets.contains(&Target::ClusterIp) && service.is_none() {
        return c.err(
            targets_span,
            "matrix.targets",
            "cluster-ip is measured but no service is backed by the server pod".into(),
        );
    }
    if targets.contains(&Target::NodeIp) {
        return c.err(
            targets_span,
            "matrix.targets",
            "node-ip targets are measured with [[matrix.paths]] whose server is a node".into(),
        );
    }
    let node_port_service = match service {
        Some(s) if plan.services[s].node_port.is_some() => Some(s),
        _ => plan
            .services
            .iter()
            .position(|s| s.backends.contains(&server_pod) && s.node_port.is_some()),
    };
    if targets.contains(&Target::NodePort) && node_port_service.is_none() {
        return c.err(
            targets_span,
            "matrix.targets",
            "node-port is measured but no service with a node_port is backed by the server pod"
                .into(),
        );
    }
    Ok(targets
        .iter()
        .map(|&target| PathPlan {
            client: Endpoint::Pod(client),
            server: Endpoint::Pod(server_pod),
            target,
            service: match target {
                Target::ClusterIp => service,
                Target::NodePort => node_port_service,
                _ => None,
            },
            via: (target == Target::NodePort).then_some(plan.pods[server_pod].node),
        })
        .collect())
}

/// Multi-node form: explicit client -> server pairs of pods and nodes.
pub(super) fn check_paths(
    c: &Checker,
    paths: &[raw::Path],
    plan: &Plan,
) -> Result<Vec<PathPlan>, TopologyError> {
    if paths.is_empty() {
        return c.err(0..0, "matrix.paths", "no path to measure".into());
    }
    let endpoint = |v: &Spanned<String>, field: &str| -> Result<Endpoint, TopologyError> {
        if let Some(p) = plan.pod(v.get_ref()) {
            return Ok(Endpoint::Pod(p));
        }
        match plan.nodes.iter().position(|n| &n.name == v.get_ref()) {
            Some(n) => Ok(Endpoint::Node(n)),
            None => c.err(
                v.span(),
                field,
                format!("\"{}\" is neither a pod nor a node", v.get_ref()),
            ),
        }
    };
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let field = |f: &str| format!("matrix.paths[{i}].{f}");
        let client = endpoint(&p.client, &field("client"))?;
        let server = endpoint(&p.server, &field("server"))?;
        if client == server && matches!(client, Endpoint::Pod(_)) {
            return c.err(
                p.server.span(),
                &field("server"),
                "client and server are the same pod".into(),
            );
        }
        let default_target = match server {
            Endpoint::Pod(_) => Target::PodIp,
            Endpoint::Node(_) => Target::NodeIp,
        };
        let target = match &p.target {
            Some(t) => {
                Target::from_str(t.get_ref()).or_else(|e| c.err(t.span(), &field("target"), e))?
            }
            None => default_target,
        };
        let span = p
            .target
            .as_ref()
            .map(|t| t.span())
            .unwrap_or(p.server.span());
        let service =
            match (target, server) {
                (Target::NodeIp, Endpoint::Node(_)) | (Target::PodIp, Endpoint::Pod(_)) => None,
                (Target::NodePort, Endpoint::Pod(pod)) => {
                    match plan
                        .services
                        .iter()
                        .position(|s| s.backends.contains(&pod) && s.node_port.is_some())
                    {
                        Some(s) => Some(s),
                        None => return c.err(
                            span,
                            &field("target"),
                            "node-port needs a service with a node_port backed by the server pod"
                                .into(),
                        ),
                    }
                }
                (Target::ClusterIp, Endpoint::Pod(pod)) => {
                    match plan.services.iter().position(|s| s.backends.contains(&pod)) {
                        Some(s) => Some(s),
                        None => {
                            return c.err(
                                span,
                                &field("target"),
                                "cluster-ip needs a service backed by the server pod".into(),
                            )
                        }
                    }
                }
                (t, _) => {
                    return c.err(
                        span,
                        &field("target"),
                        format!("target {t} does not fit server \"{}\"", p.server.get_ref()),
                    )
                }
            };
        let via = match (&p.via, target, server) {
            (Some(v), Target::NodePort, _) => {
                match plan.nodes.iter().position(|n| &n.name == v.get_ref()) {
                    Some(n) => Some(n),
                    None => {
                        return c.err(
                            v.span(),
                            &field("via"),
                            format!("unknown node \"{}\"", v.get_ref()),
                        )
                    }
                }
            }
            (Some(v), _, _) => {
                return c.err(
                    v.span(),
                    &field("via"),
                    "via names the node of a node-port target only".into(),
                )
            }
            (None, Target::NodePort, s) => Some(plan.endpoint_node(s)),
            (None, _, _) => None,
        };
        out.push(PathPlan {
            client,
            server,
            target,
            service,
            via,
        });
    }
    Ok(out)
}
