//! The [sweep] section: how many services the proxy holds at each point of
//! a service-count sweep, and how many endpoints each synthetic service
//! has. `dplab run --services N1,N2,...` checks its list with the same
//! rules ([`check_counts`]).

use ipnet::Ipv4Net;
use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use super::error::TopologyError;

/// Endpoints of each synthetic service when the topology names none
/// (fewer if the lab has fewer pods).
pub const DEFAULT_ENDPOINTS_PER_SERVICE: u32 = 2;

/// `[sweep]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    /// Services the proxy holds at each point: the topology's own plus
    /// synthetic ones.
    pub services: Spanned<Vec<Spanned<i64>>>,
    pub endpoints_per_service: Option<Spanned<i64>>,
}

/// A validated sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Service counts, ascending, each at least the topology's own count.
    pub services: Vec<u32>,
    pub endpoints_per_service: u32,
}

/// What limits a sweep's service counts.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    /// The topology's own services (they count towards every point).
    pub own_services: usize,
    pub service_cidr: Ipv4Net,
}

impl Room {
    /// Cluster IPs the service CIDR holds (network and broadcast excluded).
    pub fn addresses(&self) -> u64 {
        let size = 1u64 << (32 - self.service_cidr.prefix_len());
        size.saturating_sub(2)
    }

    /// The largest point: every service needs a cluster IP of its own, and
    /// the one-change update adds one more service.
    pub fn max_services(&self) -> u64 {
        self.addresses().saturating_sub(1)
    }
}

/// Checks a list of service counts; the error says what is wrong without
/// naming the field (the caller knows whether it was the file or a flag).
pub fn check_counts(counts: &[i64], room: Room) -> Result<Vec<u32>, String> {
    if counts.is_empty() {
        return Err("no service count: list at least one, e.g. [1, 1000, 10000]".into());
    }
    let mut out: Vec<u32> = Vec::new();
    for &n in counts {
        if n < 1 {
            return Err(format!("{n} is not a service count: use 1 or more"));
        }
        if (n as u64) > room.max_services() {
            return Err(format!(
                "{n} services do not fit service_cidr {}: it holds {} cluster IPs and the sweep needs one per service plus one for the service its update adds (at most {})",
                room.service_cidr,
                room.addresses(),
                room.max_services()
            ));
        }
        if (n as u64) < room.own_services as u64 {
            return Err(format!(
                "{n} is fewer than the topology's own {} services (the sweep adds synthetic services to them)",
                room.own_services
            ));
        }
        let n = n as u32;
        if out.contains(&n) {
            return Err(format!("{n} is listed twice"));
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// Checks endpoints per service against the lab's pods.
pub fn check_endpoints(n: i64, pods: usize) -> Result<u32, String> {
    if n < 1 {
        return Err(format!("{n}: a service needs at least 1 endpoint"));
    }
    if n as u64 > pods as u64 {
        return Err(format!(
            "{n} endpoints per service, but the topology has {pods} pods to be endpoints"
        ));
    }
    Ok(n as u32)
}

/// The default endpoints per service for a lab of `pods` pods.
pub fn default_endpoints(pods: usize) -> u32 {
    DEFAULT_ENDPOINTS_PER_SERVICE.min(pods.max(1) as u32)
}

pub(super) fn check_sweep(
    c: &Checker,
    raw: &Spanned<RawSweep>,
    room: Room,
    pods: usize,
) -> Result<Sweep, TopologyError> {
    let raw = raw.get_ref();
    let counts: Vec<i64> = raw
        .services
        .get_ref()
        .iter()
        .map(|n| *n.get_ref())
        .collect();
    let services = check_counts(&counts, room).or_else(|message| {
        // Point at the offending number when there is one.
        let span = raw
            .services
            .get_ref()
            .iter()
            .find(|n| message.starts_with(&n.get_ref().to_string()))
            .map_or(raw.services.span(), |n| n.span());
        c.err(span, "sweep.services", message)
    })?;
    let endpoints_per_service = match &raw.endpoints_per_service {
        Some(n) => check_endpoints(*n.get_ref(), pods)
            .or_else(|m| c.err(n.span(), "sweep.endpoints_per_service", m))?,
        None => default_endpoints(pods),
    };
    Ok(Sweep {
        services,
        endpoints_per_service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(own: usize, cidr: &str) -> Room {
        Room {
            own_services: own,
            service_cidr: cidr.parse().unwrap(),
        }
    }

    #[test]
    fn counts_are_sorted_and_bounded_by_the_service_cidr() {
        let r = room(1, "10.96.0.0/16");
        assert_eq!(
            check_counts(&[30000, 1, 1000], r).unwrap(),
            vec![1, 1000, 30000]
        );
        assert_eq!(r.addresses(), 65534);
        assert_eq!(check_counts(&[65533], r).unwrap(), vec![65533]);
        let e = check_counts(&[65534], r).unwrap_err();
        assert!(e.contains("do not fit service_cidr 10.96.0.0/16"), "{e}");
        assert!(e.contains("at most 65533"), "{e}");
    }

    #[test]
    fn bad_counts_say_why() {
        let r = room(2, "10.96.0.0/24");
        for (counts, want) in [
            (vec![], "no service count"),
            (vec![0], "not a service count"),
            (vec![-5], "not a service count"),
            (vec![1], "fewer than the topology's own 2"),
            (vec![10, 10], "listed twice"),
            (vec![254], "do not fit"),
        ] {
            let e = check_counts(&counts, r).unwrap_err();
            assert!(e.contains(want), "{counts:?}: {e}");
        }
    }

    const TOPO: &str = r#"
service_cidr = "10.96.0.0/16"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "pod-a"
node = "node1"
[[pods]]
name = "pod-b"
node = "node1"
[[services]]
name = "web"
cluster_ip = "10.96.0.10"
port = 80
backends = ["pod-a"]
"#;

    fn parse(sweep: &str) -> Result<crate::topology::Plan, TopologyError> {
        let text = format!("{TOPO}[sweep]\n{sweep}\n");
        crate::topology::parse(std::path::Path::new("s.toml"), &text)
    }

    #[test]
    fn the_file_names_the_field_and_line() {
        let plan = parse("services = [1000, 1]").unwrap();
        let sweep = plan.sweep.unwrap();
        assert_eq!(sweep.services, vec![1, 1000]);
        assert_eq!(sweep.endpoints_per_service, 2);

        let e = parse("services = [1, 70000]").unwrap_err();
        assert_eq!(e.field, "sweep.services");
        assert_eq!(e.line, 18, "{e}");
        assert!(e.message.contains("do not fit"), "{e}");

        let e = parse("services = [10]\nendpoints_per_service = 3").unwrap_err();
        assert_eq!(e.field, "sweep.endpoints_per_service");
        assert!(e.message.contains("2 pods"), "{e}");

        let e = parse("services = [10]\nendpoints = 3").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn every_key_is_documented() {
        let docs = include_str!("../../../docs/topology.md");
        for key in ["[sweep]", "services", "endpoints_per_service", "--services"] {
            assert!(
                docs.contains(&format!("`{key}`")),
                "{key} is not in docs/topology.md"
            );
        }
    }

    #[test]
    fn endpoints_fit_the_pods() {
        assert_eq!(check_endpoints(2, 3).unwrap(), 2);
        assert!(check_endpoints(4, 3).unwrap_err().contains("3 pods"));
        assert!(check_endpoints(0, 3).unwrap_err().contains("at least 1"));
        assert_eq!(default_endpoints(1), 1);
        assert_eq!(default_endpoints(5), 2);
    }
}
