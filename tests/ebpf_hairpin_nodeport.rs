//! BPF_PROG_TEST_RUN tests of the translations beyond a plain cluster IP:
//! a pod reaching a service whose backend is itself (hairpin SNAT), node
//! ports reached from another node at the node's edge (DNAT to a local
//! backend; DNAT and SNAT to a remote one, with a SNAT port of its own per
//! client), and node ports reached by the node's own pods. The oracle is
//! the frame the test expects, read back and checksum-checked by
//! etherparse (ebpf_frames). Need root; skip loudly otherwise.

mod ebpf_frames;

use std::collections::HashSet;
use std::net::Ipv4Addr;

use dplab::ebpf::{
    LbProgram, NodeConfig, NodeScope, Proto, ServiceSpec, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT,
};
use ebpf_frames::*;

const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const REMOTE_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);
const REMOTE_CLIENT2: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 3);
const REMOTE_BACKEND: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 9);
const HAIRPIN: Ipv4Addr = Ipv4Addr::new(169, 254, 42, 7);
const LOCAL_PORT: u16 = 30080;
const REMOTE_PORT: u16 = 30081;
const TARGET: u16 = 5201;

fn checked(frame: &[u8]) -> Flow {
    assert!(ip_checksum_valid(frame), "IP checksum");
    assert!(l4_checksum_valid(frame), "L4 checksum");
    parse(frame)
}

fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Flow {
    Flow {
        proto: Proto::Tcp,
        src,
        dst,
    }
}

/// A node at NODE_IP whose pods include BACKEND (and CLIENT): node port
/// LOCAL_PORT reaches BACKEND, REMOTE_PORT a pod of another node.
fn edge_lab(name: &str) -> Option<Lab> {
    let mut lab = Lab::new(name)?;
    lab.lb().set_node(NodeScope {
        addresses: vec![NODE_IP],
        local_pods: HashSet::from([BACKEND, CLIENT]),
    });
    lab.lb()
        .configure(&NodeConfig {
            snat_addr: Some(NODE_IP),
            ..Default::default()
        })
        .unwrap();
    let svc = |ip, port, backend| ServiceSpec {
        cluster_ip: ip,
        port: 80,
        proto: Proto::Tcp,
        node_port: Some(port),
        backends: vec![(backend, TARGET)],
    };
    lab.lb()
        .program_services(&[
            svc(CLUSTER_IP, LOCAL_PORT, BACKEND),
            svc(Ipv4Addr::new(10, 96, 0, 101), REMOTE_PORT, REMOTE_BACKEND),
        ])
        .unwrap();
    Some(lab)
}

fn hairpin(name: &str, program: LbProgram, reply_program: LbProgram, verdict: u32) {
    let Some(mut lab) = Lab::new(name) else {
        return;
    };
    lab.lb()
        .configure(&NodeConfig {
            hairpin_addr: Some(HAIRPIN),
            ..Default::default()
        })
        .unwrap();
    lab.lb()
        .program_services(&[service(Proto::Tcp, 80, &[(CLIENT, TARGET)])])
        .unwrap();
    let before = lab.lb().counters().unwrap();
    let flow = client_flow(Proto::Tcp, 40001, 80);
    let (v, out) = lab.run(program, &frame(flow, b"to myself"));
    assert_eq!(v, verdict);
    let seen = checked(&out);
    assert_eq!(seen.dst, (CLIENT, TARGET), "to the backend: the pod itself");
    assert_eq!(seen.src, (HAIRPIN, 40001), "from the hairpin address");
    if verdict == TC_ACT_REDIRECT {
        assert_eq!(&out[0..6], &out[6..12], "looped back to the pod's own MAC");
    }

    let (v, back) = lab.run(reply_program, &frame(seen.reply(), b"hello me"));
    assert_eq!(v, verdict);
    let back = checked(&back);
    assert_eq!(
        back.src,
        (CLUSTER_IP, 80),
        "the reply comes from the service"
    );
    assert_eq!(back.dst, flow.src, "to the pod's own socket");
    let d = lab.lb().counters().unwrap().delta(&before);
    assert_eq!(
        (d.dnat, d.snat, d.rev_nat, d.dropped),
        (1, 1, 1, 0),
        "{d:?}"
    );
}

#[test]
fn hairpin_at_the_node_side_veth() {
    // No endpoint programmed: the node's stack delivers.
    hairpin(
        "hp-veth",
        LbProgram::VethIngress,
        LbProgram::VethIngress,
        TC_ACT_OK,
    );
}

#[test]
fn hairpin_in_the_pod_loops_back_into_it() {
    hairpin(
        "hp-pod",
        LbProgram::PodEgress,
        LbProgram::PodEgress,
        TC_ACT_REDIRECT,
    );
}

#[test]
fn node_port_to_a_local_backend_from_another_node() {
    let Some(mut lab) = edge_lab("np-local") else {
        return;
    };
    let flow = tcp((REMOTE_CLIENT, 40000), (NODE_IP, LOCAL_PORT));
    let (v, out) = lab.run(LbProgram::NetdevIngress, &frame(flow, b"hi"));
    assert_eq!(v, TC_ACT_OK, "no host routing: the stack delivers");
    let seen = checked(&out);
    assert_eq!(seen.dst, (BACKEND, TARGET));
    assert_eq!(seen.src, flow.src, "a local backend needs no SNAT");

    // The reply leaves the node translated; the pod-side programs leave it
    // alone (the connection was translated at the edge).
    let reply = frame(seen.reply(), b"ho");
    let (_, untouched) = lab.run(LbProgram::VethIngress, &reply);
    assert_eq!(parse(&untouched).src, (BACKEND, TARGET));
    let (v, out) = lab.run(LbProgram::NetdevEgress, &reply);
    assert_eq!(v, TC_ACT_OK);
    let back = checked(&out);
    assert_eq!(back.src, (NODE_IP, LOCAL_PORT));
    assert_eq!(back.dst, flow.src);

    // The edge translates node ports only, not cluster IPs.
    let to_cluster = frame(tcp((REMOTE_CLIENT, 40001), (CLUSTER_IP, 80)), b"x");
    let (_, out) = lab.run(LbProgram::NetdevIngress, &to_cluster);
    assert_eq!(out, to_cluster);
}

#[test]
fn node_port_to_a_remote_backend_is_snated_per_client() {
    let Some(mut lab) = edge_lab("np-remote") else {
        return;
    };
    let before = lab.lb().counters().unwrap();
    let a = tcp((REMOTE_CLIENT, 40000), (NODE_IP, REMOTE_PORT));
    let b = tcp((REMOTE_CLIENT2, 40000), (NODE_IP, REMOTE_PORT));
    let mut snat_ports = Vec::new();
    for flow in [a, b] {
        let (v, out) = lab.run(LbProgram::NetdevIngress, &frame(flow, b"hi"));
        // Sent out by a FIB lookup, which in a test run has no device to
        // look from (a drop) or the test's own routes: the frame shows the
        // translation either way.
        assert!([TC_ACT_SHOT, TC_ACT_REDIRECT].contains(&v), "verdict {v}");
        let seen = checked(&out);
        assert_eq!(seen.dst, (REMOTE_BACKEND, TARGET));
        assert_eq!(seen.src.0, NODE_IP, "SNAT to the node's address");
        snat_ports.push(seen.src.1);
    }
    assert_eq!(snat_ports[0], 40000, "the client's own port when free");
    assert_ne!(
        snat_ports[1], 40000,
        "two clients, one port: the second moves"
    );

    for (flow, port) in [(a, snat_ports[0]), (b, snat_ports[1])] {
        let reply = tcp((REMOTE_BACKEND, TARGET), (NODE_IP, port));
        let (_, out) = lab.run(LbProgram::NetdevIngress, &frame(reply, b"ho"));
        let back = checked(&out);
        assert_eq!(back.src, (NODE_IP, REMOTE_PORT), "from the node port");
        assert_eq!(back.dst, flow.src, "to the client it came from");
    }
    let d = lab.lb().counters().unwrap().delta(&before);
    assert_eq!((d.dnat, d.snat, d.rev_nat), (2, 2, 2), "{d:?}");
}

#[test]
fn a_pod_reaches_its_own_nodes_node_port_at_the_source() {
    let Some(mut lab) = edge_lab("np-source") else {
        return;
    };
    let flow = tcp((CLIENT, 40000), (NODE_IP, REMOTE_PORT));
    let (v, out) = lab.run(LbProgram::PodEgress, &frame(flow, b"hi"));
    assert_eq!(v, TC_ACT_OK);
    let seen = checked(&out);
    assert_eq!(seen.dst, (REMOTE_BACKEND, TARGET));
    assert_eq!(seen.src, flow.src, "translated at the source: no SNAT");
    let (_, out) = lab.run(LbProgram::PodIngress, &frame(seen.reply(), b"ho"));
    assert_eq!(checked(&out).src, (NODE_IP, REMOTE_PORT));
}

#[test]
fn one_service_is_rewritten_without_touching_the_others() {
    let Some(mut lab) = edge_lab("np-upsert") else {
        return;
    };
    let other = Ipv4Addr::new(10, 244, 1, 10);
    // Backends and node port of the first service change; the second is
    // not mentioned and keeps working.
    lab.lb()
        .upsert_service(&ServiceSpec {
            cluster_ip: CLUSTER_IP,
            port: 80,
            proto: Proto::Tcp,
            node_port: Some(31000),
            backends: vec![(other, TARGET)],
        })
        .unwrap();
    let via_cluster = tcp((CLIENT, 40010), (CLUSTER_IP, 80));
    let (_, out) = lab.run(LbProgram::PodEgress, &frame(via_cluster, b"x"));
    assert_eq!(checked(&out).dst, (other, TARGET));
    let old_port = frame(tcp((CLIENT, 40011), (NODE_IP, LOCAL_PORT)), b"x");
    let (_, out) = lab.run(LbProgram::PodEgress, &old_port);
    assert_eq!(out, old_port, "the old node port is gone");
    let new_port = tcp((CLIENT, 40012), (NODE_IP, 31000));
    let (_, out) = lab.run(LbProgram::PodEgress, &frame(new_port, b"x"));
    assert_eq!(checked(&out).dst, (other, TARGET));
    let untouched = tcp((CLIENT, 40013), (NODE_IP, REMOTE_PORT));
    let (_, out) = lab.run(LbProgram::PodEgress, &frame(untouched, b"x"));
    assert_eq!(checked(&out).dst, (REMOTE_BACKEND, TARGET));

    lab.lb().remove_service(CLUSTER_IP, 80, Proto::Tcp).unwrap();
    let again = frame(tcp((CLIENT, 40014), (CLUSTER_IP, 80)), b"x");
    let (_, out) = lab.run(LbProgram::PodEgress, &again);
    assert_eq!(out, again, "removed");
}
