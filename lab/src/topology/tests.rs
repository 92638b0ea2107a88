//! Parsing and validation: every kind of bad input names file, line, field.

use std::path::Path;

use super::*;
use crate::kinds::{Datapath, Target};
use crate::topology::Endpoint;

const GOOD: &str = r#"
name = "t"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"
[[pods]]
name = "pod-b"
node = "node1"
[[services]]
name = "iperf"
cluster_ip = "10.96.0.100"
port = 5201
backends = ["pod-a"]
[matrix]
datapaths = ["veth-routed", "bridge"]
targets = ["pod-ip", "cluster-ip"]
client = "pod-b"
server = "pod-a"
duration = "2s"
repetitions = 2
"#;

fn parse_text(text: &str) -> Result<Plan, TopologyError> {
    parse(Path::new("t.toml"), text)
}

/// Replaces `from` by `to` in GOOD (which must contain it) and expects an
/// error on `line` whose field and message contain the given words.
fn expect_error(from: &str, to: &str, line: usize, field: &str, words: &str) {
    assert!(GOOD.contains(from), "fixture lacks {from}");
    let text = GOOD.replacen(from, to, 1);
    let err = parse_text(&text).expect_err("bad topology accepted");
    assert_eq!(err.line, line, "wrong line in: {err}");
    assert!(err.field.contains(field), "field {field} not in: {err}");
    assert!(err.message.contains(words), "\"{words}\" not in: {err}");
    let shown = err.to_string();
    assert!(shown.starts_with("t.toml:"), "file not named: {shown}");
}

#[test]
fn good_topology_resolves_names_and_addresses() {
    let plan = parse_text(GOOD).unwrap();
    assert_eq!(plan.pods[0].address.to_string(), "192.168.10.10");
    // .1 is the gateway, so the first free automatic address is .2
    assert_eq!(plan.pods[1].address.to_string(), "192.168.10.2");
    assert_eq!(plan.nodes[0].gateway.to_string(), "192.168.10.1");
    assert_eq!(plan.nodes[0].routed_gateway.to_string(), "169.254.10.24");
    assert_eq!(plan.services[0].target_port, 5201);
    let m = plan.matrix.unwrap();
    assert_eq!(m.datapaths, vec![Datapath::VethRouted, Datapath::Bridge]);
    let targets: Vec<Target> = m.paths.iter().map(|p| p.target).collect();
    assert_eq!(targets, vec![Target::PodIp, Target::ClusterIp]);
    assert_eq!(m.paths[1].client, Endpoint::Pod(1));
    assert_eq!(m.paths[1].server, Endpoint::Pod(0));
    assert_eq!((m.paths[0].service, m.paths[1].service), (None, Some(0)));
    assert!(m.overlays.is_empty());
    assert!(plan.underlay.is_none());
    assert_eq!(m.duration.as_secs(), 2);
    assert_eq!(m.repetitions, 2);
}

#[test]
fn shipped_topologies_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load(&path).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 2);
}

#[test]
fn unknown_field_is_named_with_its_line() {
    expect_error(
        "port = 5201",
        "port = 5201\nweight = 3",
        17,
        "",
        "unknown field `weight`",
    );
}

#[test]
fn syntax_error_has_a_line() {
    expect_error("repetitions = 2", "repetitions = ", 24, "", "");
}

#[test]
fn unknown_datapath() {
    expect_error(
        "\"veth-routed\", \"bridge\"",
        "\"veth-routed\", \"brigde\"",
        19,
        "matrix.datapaths",
        "unknown datapath \"brigde\"",
    );
}

#[test]
fn duplicate_pod_name() {
    expect_error(
        "name = \"pod-b\"",
        "name = \"pod-a\"",
        11,
        "pods[1].name",
        "defined twice",
    );
}

#[test]
fn pod_on_unknown_node() {
    expect_error(
        "node = \"node1\"\naddress",
        "node = \"node9\"\naddress",
        8,
        "pods[0].node",
        "unknown node \"node9\"",
    );
}

#[test]
fn address_outside_cidr() {
    expect_error(
        "192.168.10.10",
        "192.168.11.10",
        9,
        "pods[0].address",
        "not a host address",
    );
}

#[test]
fn address_on_the_gateway() {
    expect_error(
        "192.168.10.10",
        "192.168.10.1",
        9,
        "pods[0].address",
        "gateway",
    );
}

#[test]
fn network_address_is_not_a_host() {
    expect_error(
        "192.168.10.10",
        "192.168.10.0",
        9,
        "pods[0].address",
        "not a host address",
    );
}

#[test]
fn overlapping_pod_cidrs() {
    let extra = "pod_cidr = \"192.168.10.0/24\"\n[[nodes]]\nname = \"node2\"\npod_cidr = \"192.168.0.0/16\"";
    expect_error(
        "pod_cidr = \"192.168.10.0/24\"",
        extra,
        8,
        "nodes[1].pod_cidr",
        "overlaps 192.168.10.0/24",
    );
}

#[test]
fn cluster_ip_inside_pod_cidr() {
    expect_error(
        "10.96.0.100",
        "192.168.10.200",
        15,
        "services[0].cluster_ip",
        "inside node",
    );
}

#[test]
fn cluster_ip_outside_service_cidr() {
    expect_error(
        "10.96.0.100",
        "172.16.0.1",
        15,
        "services[0].cluster_ip",
        "outside service_cidr",
    );
}

#[test]
fn unknown_backend() {
    expect_error(
        "backends = [\"pod-a\"]",
        "backends = [\"pod-z\"]",
        17,
        "services[0].backends",
        "unknown pod \"pod-z\"",
    );
}

#[test]
fn interface_name_longer_than_15_bytes() {
    expect_error(
        "node = \"node1\"\n[[services]]",
        "node = \"node1\"\ninterface = \"eth0-way-too-long\"\n[[services]]",
        13,
        "pods[1].interface",
        "15",
    );
}

#[test]
fn bad_name_characters() {
    expect_error(
        "name = \"pod-b\"",
        "name = \"Pod_B\"",
        11,
        "pods[1].name",
        "not a valid name",
    );
}

#[test]
fn zero_repetitions_and_bad_duration() {
    expect_error(
        "repetitions = 2",
        "repetitions = 0",
        24,
        "matrix.repetitions",
        "1 to 1000",
    );
    expect_error(
        "duration = \"2s\"",
        "duration = \"-1s\"",
        23,
        "matrix.duration",
        "positive",
    );
    expect_error(
        "duration = \"2s\"",
        "duration = \"soon\"",
        23,
        "matrix.duration",
        "not a duration",
    );
}

#[test]
fn matrix_client_unknown() {
    expect_error(
        "client = \"pod-b\"",
        "client = \"pod-q\"",
        21,
        "matrix.client",
        "unknown pod",
    );
}

const TWO_NODES: &str = r#"
[[nodes]]
name = "node-a"
pod_cidr = "10.244.1.0/24"
[[nodes]]
name = "node-b"
pod_cidr = "10.244.2.0/24"
[[pods]]
name = "pod-a1"
node = "node-a"
[[pods]]
name = "pod-b1"
node = "node-b"
[[services]]
name = "web"
cluster_ip = "10.96.0.80"
port = 80
backends = ["pod-b1"]
[matrix]
overlays = ["routed", "vxlan"]
datapaths = ["veth-routed"]
workloads = ["ping"]
[[matrix.paths]]
client = "node-a"
server = "node-b"
[[matrix.paths]]
client = "pod-a1"
server = "pod-b1"
target = "cluster-ip"
"#;

#[test]
fn multi_node_topology_gets_an_underlay_and_paths() {
    let plan = parse_text(TWO_NODES).unwrap();
    let underlay = plan.underlay.as_ref().unwrap();
    assert_eq!(underlay.cidr.to_string(), "10.0.0.0/24");
    assert_eq!(plan.nodes[0].underlay_ip.unwrap().to_string(), "10.0.0.1");
    assert_eq!(plan.nodes[1].underlay_ip.unwrap().to_string(), "10.0.0.2");
    let m = plan.matrix.unwrap();
    assert_eq!(m.overlays.len(), 2);
    assert_eq!(m.paths[0].target, Target::NodeIp);
    assert_eq!(m.paths[0].server, Endpoint::Node(1));
    assert_eq!(m.paths[1].target, Target::ClusterIp);
    assert_eq!(m.paths[1].service, Some(0));
}

#[test]
fn multi_node_errors_name_their_field() {
    let bad = |from: &str, to: &str, field: &str, words: &str| {
        let err = parse_text(&TWO_NODES.replacen(from, to, 1)).expect_err("accepted");
        assert!(
            err.field.contains(field) && err.message.contains(words),
            "{err}"
        );
    };
    bad(
        "overlays = [\"routed\", \"vxlan\"]",
        "overlays = [\"geneve\"]",
        "matrix.overlays",
        "unknown overlay",
    );
    bad(
        "datapaths = [\"veth-routed\"]",
        "datapaths = [\"macvlan\"]",
        "matrix.datapaths",
        "one node only",
    );
    bad(
        "server = \"node-b\"",
        "server = \"node-z\"",
        "matrix.paths[0].server",
        "neither a pod nor a node",
    );
    bad(
        "target = \"cluster-ip\"",
        "target = \"node-ip\"",
        "matrix.paths[1].target",
        "does not fit",
    );
    bad(
        "name = \"node-b\"",
        "name = \"underlay\"",
        "nodes[1].name",
        "reserved",
    );
    bad(
        "workloads = [\"ping\"]",
        "workloads = [\"ping\"]\ntargets = [\"pod-ip\"]",
        "matrix.targets",
        "each path names its target",
    );
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("10s").unwrap().as_secs(), 10);
    assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
    assert_eq!(parse_duration("2").unwrap().as_secs(), 2);
    assert_eq!(parse_duration("1m").unwrap().as_secs(), 60);
    assert!(parse_duration("0s").is_err());
}

#[test]
fn service_proxies_parse_and_bad_ones_name_their_line() {
    let with = GOOD.replacen(
        "datapaths = [\"veth-routed\", \"bridge\"]",
        "datapaths = [\"veth-routed\", \"bridge\"]\nservice_proxies = [\"nftables\", \"socket-lb\"]",
        1,
    );
    let plan = parse_text(&with).unwrap();
    assert_eq!(
        plan.matrix.unwrap().proxies,
        vec![
            crate::kinds::ProxyKind::Nftables,
            crate::kinds::ProxyKind::SocketLb
        ]
    );
    assert!(parse_text(GOOD).unwrap().matrix.unwrap().proxies.is_empty());
    let from = "datapaths = [\"veth-routed\", \"bridge\"]";
    let line = GOOD.lines().position(|l| l == from).unwrap() + 2;
    for (list, words) in [
        ("[\"kube-proxy\"]", "unknown service proxy"),
        ("[\"ebpf\", \"ebpf\"]", "listed twice"),
        ("[]", "empty list"),
    ] {
        expect_error(
            from,
            &format!("{from}\nservice_proxies = {list}"),
            line,
            "matrix.service_proxies",
            words,
        );
    }
}

#[test]
fn node_ports_are_checked_and_reach_the_node_port_target() {
    let with = GOOD
        .replacen("port = 5201", "port = 5201\nnode_port = 30201", 1)
        .replacen(
            "targets = [\"pod-ip\", \"cluster-ip\"]",
            "targets = [\"pod-ip\", \"node-port\"]",
            1,
        );
    let plan = parse_text(&with).unwrap();
    assert_eq!(plan.services[0].node_port, Some(30201));
    let path = &plan.matrix.unwrap().paths[1];
    assert_eq!(path.target, Target::NodePort);
    assert_eq!((path.service, path.via), (Some(0), Some(0)));
    // node-port without a node_port on the server's service
    expect_error(
        "targets = [\"pod-ip\", \"cluster-ip\"]",
        "targets = [\"pod-ip\", \"node-port\"]",
        20,
        "matrix.targets",
        "node_port",
    );
    expect_error(
        "port = 5201",
        "port = 5201\nnode_port = 0",
        17,
        "node_port",
        "port 0",
    );
    let twice = GOOD.replacen("port = 5201", "port = 5201\nnode_port = 30201", 1)
        + "[[services]]\nname = \"other\"\ncluster_ip = \"10.96.0.101\"\nport = 80\nnode_port = 30201\nbackends = [\"pod-b\"]\n";
    let err = parse_text(&twice).expect_err("two services on one node port");
    assert!(
        err.field == "services[1].node_port" && err.message.contains("taken"),
        "{err}"
    );
}

#[test]
fn node_port_paths_name_their_node() {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/nodeport.toml"),
    )
    .unwrap();
    let plan = parse_text(&shipped).unwrap();
    let node_b = plan.nodes.iter().position(|n| n.name == "node-b");
    let m = plan.matrix.unwrap();
    assert_eq!(m.paths[1].target, Target::NodePort);
    assert_eq!(m.paths[1].via, node_b);
    let bad = shipped.replacen("via = \"node-b\"", "via = \"node-z\"", 1);
    let err = parse_text(&bad).expect_err("unknown via node");
    assert!(
        err.field == "matrix.paths[1].via" && err.message.contains("unknown node"),
        "{err}"
    );
    let misplaced = shipped.replacen(
        "client = \"node-a\"\nserver = \"node-b\"",
        "client = \"node-a\"\nserver = \"node-b\"\nvia = \"node-b\"",
        1,
    );
    let err = parse_text(&misplaced).expect_err("via on a node-ip path");
    assert!(err.field == "matrix.paths[0].via", "{err}");
}
