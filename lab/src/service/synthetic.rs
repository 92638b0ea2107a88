//! Synthetic services for a service-count sweep: at a point of N services
//! the proxy holds the topology's own services plus N minus that many
//! synthetic ones, each with its own cluster IP from the service CIDR and
//! its endpoints among the lab's pods. The synthetic services come first,
//! so a proxy that matches services in the order it was given them
//! (iptables' DPLAB-SERVICES chain) tries every one of them before the
//! topology's services: the measured service is its worst case.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::topology::{Plan, Protocol, ServicePlan};

/// Names of synthetic services start with this.
pub const NAME_PREFIX: &str = "sweep-";

/// Port of synthetic services (and target port of their endpoints).
const PORT: u16 = 80;
const TARGET_PORT: u16 = 8080;

/// The plan at a point of `services` services, each synthetic one with
/// `endpoints` endpoints; the matrix's service indexes follow the move.
pub fn plan_point(plan: &Plan, services: u32, endpoints: u32) -> Result<Plan, String> {
    let own = plan.services.len();
    let synthetic = (services as usize)
        .checked_sub(own)
        .ok_or_else(|| format!("{services} services are fewer than the topology's own {own}"))?;
    if let Some(s) = plan
        .services
        .iter()
        .find(|s| s.name.starts_with(NAME_PREFIX))
    {
        return Err(format!(
            "service \"{}\" takes the prefix \"{NAME_PREFIX}\" of synthetic services",
            s.name
        ));
    }
    let pods = plan.pods.len();
    if endpoints == 0 || endpoints as usize > pods {
        return Err(format!(
            "{endpoints} endpoints per service, but the topology has {pods} pods"
        ));
    }
    let mut free = free_addresses(plan);
    let mut extra = Vec::with_capacity(synthetic);
    for i in 0..synthetic {
        let cluster_ip = free.next().ok_or_else(|| {
            format!(
                "service_cidr {} has no cluster IP left for service {} of {services}",
                plan.service_cidr,
                own + i + 1
            )
        })?;
        extra.push(ServicePlan {
            name: format!("{NAME_PREFIX}{i}"),
            cluster_ip,
            port: PORT,
            target_port: TARGET_PORT,
            protocol: Protocol::Tcp,
            node_port: None,
            // Rotate over the pods, so that every pod backends as many.
            backends: (0..endpoints as usize).map(|k| (i + k) % pods).collect(),
        });
    }
    let mut point = plan.clone();
    point.services.splice(0..0, extra);
    if let Some(matrix) = point.matrix.as_mut() {
        for path in &mut matrix.paths {
            path.service = path.service.map(|s| s + synthetic);
        }
    }
    Ok(point)
}

/// Addresses of the service CIDR no service of `plan` uses, in order.
fn free_addresses(plan: &Plan) -> impl Iterator<Item = Ipv4Addr> {
    let taken: HashSet<Ipv4Addr> = plan.services.iter().map(|s| s.cluster_ip).collect();
    plan.service_cidr
        .hosts()
        .filter(move |ip| !taken.contains(ip))
}

/// The service a one-change update adds to `point`: a fresh cluster IP,
/// `port`, and as endpoints the `server` pod plus, if the lab has one, a
/// pod that is neither the client (if a pod) nor the server: the endpoint
/// the second change removes. Returns the service and that endpoint.
pub fn added_service(
    point: &Plan,
    server: usize,
    client: Option<usize>,
    port: u16,
) -> Result<(ServicePlan, Option<usize>), String> {
    let cluster_ip = free_addresses(point)
        .next()
        .ok_or_else(|| format!("service_cidr {} is full", point.service_cidr))?;
    let other = (0..point.pods.len()).find(|&p| p != server && Some(p) != client);
    let mut backends = vec![server];
    backends.extend(other);
    Ok((
        ServicePlan {
            name: format!("{NAME_PREFIX}added"),
            cluster_ip,
            port,
            target_port: port,
            protocol: Protocol::Tcp,
            node_port: None,
            backends,
        },
        other,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TOPO: &str = r#"
service_cidr = "10.96.0.0/22"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "pod-a"
node = "node1"
[[pods]]
name = "pod-b"
node = "node1"
[[pods]]
name = "pod-c"
node = "node1"
[[services]]
name = "web"
cluster_ip = "10.96.0.3"
port = 5201
backends = ["pod-a"]
[matrix]
datapaths = ["veth-routed"]
targets = ["cluster-ip"]
client = "pod-b"
server = "pod-a"
"#;

    fn plan() -> Plan {
        crate::topology::parse(Path::new("t.toml"), TOPO).unwrap()
    }

    #[test]
    fn synthetic_services_never_clash_and_the_measured_one_is_last() {
        let base = plan();
        let point = plan_point(&base, 1000, 2).unwrap();
        assert_eq!(point.services.len(), 1000);
        let ips: HashSet<Ipv4Addr> = point.services.iter().map(|s| s.cluster_ip).collect();
        assert_eq!(ips.len(), 1000, "a cluster IP is used twice");
        assert!(point
            .services
            .iter()
            .all(|s| base.service_cidr.contains(&s.cluster_ip)));
        assert!(point
            .services
            .iter()
            .all(|s| s.cluster_ip != base.service_cidr.network()
                && s.cluster_ip != base.service_cidr.broadcast()));
        let names: HashSet<&str> = point.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 1000, "a name is used twice");
        assert!(point.services[..999].iter().all(|s| s.backends.len() == 2));
        // The topology's service is last, and the matrix still measures it.
        assert_eq!(point.services[999], base.services[0]);
        let path = &point.matrix.as_ref().unwrap().paths[0];
        assert_eq!(path.service, Some(999));
        // Endpoints rotate over every pod.
        let mut per_pod = [0; 3];
        for s in &point.services[..999] {
            for &b in &s.backends {
                per_pod[b] += 1;
            }
        }
        assert!(per_pod.iter().all(|&n| n == 666), "{per_pod:?}");
    }

    #[test]
    fn the_added_service_takes_a_free_address_and_a_removable_endpoint() {
        let point = plan_point(&plan(), 1020, 1).unwrap();
        let (added, other) = added_service(&point, 0, Some(1), 5300).unwrap();
        assert!(point
            .services
            .iter()
            .all(|s| s.cluster_ip != added.cluster_ip));
        assert!(point.service_cidr.contains(&added.cluster_ip));
        assert_eq!(added.backends, vec![0, 2]);
        assert_eq!(other, Some(2));
    }

    #[test]
    fn a_full_cidr_or_too_few_services_is_an_error() {
        let base = plan();
        // /22: 1022 hosts.
        assert!(plan_point(&base, 1022, 1).is_ok());
        let e = plan_point(&base, 1023, 1).unwrap_err();
        assert!(e.contains("no cluster IP left"), "{e}");
        let full = plan_point(&base, 1022, 1).unwrap();
        assert!(added_service(&full, 0, Some(1), 5300)
            .unwrap_err()
            .contains("full"));
        assert!(plan_point(&base, 0, 1).unwrap_err().contains("fewer"));
        assert!(plan_point(&base, 10, 4).unwrap_err().contains("3 pods"));
    }
}
