//! BPF_PROG_TEST_RUN tests of the load balancer programs on hand-made
//! Ethernet/IPv4/TCP|UDP frames. Need root; skip loudly otherwise.

mod ebpf_frames;

use std::net::Ipv4Addr;

use dplab::datapath::ebpf_routing::{add_verdicts, drop_contradiction};
use dplab::datapath::{DROPPED, PASSED};
use dplab::ebpf::{
    Endpoint, LbProgram, Proto, RedirectMode, ServiceLb, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT,
};
use ebpf_frames::*;

fn dnat_then_rev_nat(name: &str, proto: Proto, forward: LbProgram, reply: LbProgram) {
    let Some(mut lab) = Lab::new(name) else {
        return;
    };
    lab.lb()
        .program_services(&[service(proto, 5201, &[(BACKEND, 5301)])])
        .unwrap();
    let before = lab.lb().counters().unwrap();

    let flow = client_flow(proto, 40001, 5201);
    let input = frame(flow, b"hello service");
    let (verdict, out) = lab.run(forward, &input);
    assert_eq!(verdict, TC_ACT_OK);
    let seen = parse(&out);
    assert_eq!(seen.dst, (BACKEND, 5301), "destination translated");
    assert_eq!(seen.src, flow.src, "source untouched");
    assert!(ip_checksum_valid(&out), "IP checksum after DNAT");
    assert!(l4_checksum_valid(&out), "L4 checksum after DNAT");
    same_except_nat_fields(&input, &out, proto);

    let answer = frame(seen.reply(), b"hello client");
    let (verdict, back) = lab.run(reply, &answer);
    assert_eq!(verdict, TC_ACT_OK);
    let seen_back = parse(&back);
    assert_eq!(
        seen_back.src,
        (CLUSTER_IP, 5201),
        "reply gets the service address"
    );
    assert_eq!(seen_back.dst, flow.src);
    assert!(ip_checksum_valid(&back), "IP checksum after reverse NAT");
    assert!(l4_checksum_valid(&back), "L4 checksum after reverse NAT");
    same_except_nat_fields(&answer, &back, proto);

    let d = lab.lb().counters().unwrap().delta(&before);
    assert_eq!(
        (d.runs, d.dnat, d.rev_nat, d.dropped),
        (2, 1, 1, 0),
        "{d:?}"
    );
}

#[test]
fn veth_tcp_to_cluster_ip_is_translated_and_reply_reversed() {
    dnat_then_rev_nat(
        "veth-tcp",
        Proto::Tcp,
        LbProgram::VethIngress,
        LbProgram::VethIngress,
    );
}

#[test]
fn veth_udp_to_cluster_ip_is_translated_and_reply_reversed() {
    dnat_then_rev_nat(
        "veth-udp",
        Proto::Udp,
        LbProgram::VethIngress,
        LbProgram::VethIngress,
    );
}

#[test]
fn pod_tcp_egress_dnat_and_ingress_rev_nat() {
    dnat_then_rev_nat(
        "pod-tcp",
        Proto::Tcp,
        LbProgram::PodEgress,
        LbProgram::PodIngress,
    );
}

#[test]
fn pod_udp_egress_dnat_and_ingress_rev_nat() {
    dnat_then_rev_nat(
        "pod-udp",
        Proto::Udp,
        LbProgram::PodEgress,
        LbProgram::PodIngress,
    );
}

#[test]
fn udp_without_checksum_keeps_zero() {
    let Some(mut lab) = Lab::new("udp-zero") else {
        return;
    };
    lab.lb()
        .program_services(&[service(Proto::Udp, 53, &[(BACKEND, 5353)])])
        .unwrap();
    let mut input = frame(client_flow(Proto::Udp, 40002, 53), b"query");
    let at = ETH_LEN + IP_LEN + 6;
    input[at..at + 2].copy_from_slice(&[0, 0]);
    let (verdict, out) = lab.run(LbProgram::PodEgress, &input);
    assert_eq!(verdict, TC_ACT_OK);
    assert_eq!(parse(&out).dst, (BACKEND, 5353));
    assert_eq!(udp_checksum(&out), 0, "no checksum stays no checksum");
    assert!(ip_checksum_valid(&out));
}

#[test]
fn unknown_destination_and_non_ip_pass_untouched() {
    let Some(mut lab) = Lab::new("passthrough") else {
        return;
    };
    lab.lb()
        .program_services(&[service(Proto::Tcp, 80, &[(BACKEND, 8080)])])
        .unwrap();
    let other_ip = frame(
        Flow {
            proto: Proto::Tcp,
            src: (CLIENT, 40003),
            dst: (Ipv4Addr::new(10, 0, 0, 1), 80),
        },
        b"x",
    );
    // Service address, wrong port; and wrong protocol.
    let other_port = frame(client_flow(Proto::Tcp, 40003, 81), b"x");
    let other_proto = frame(client_flow(Proto::Udp, 40003, 80), b"x");
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&POD_MAC);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&POD_MAC);
    arp.extend_from_slice(&CLIENT.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&CLUSTER_IP.octets());
    arp.resize(60, 0);
    let before = lab.lb().counters().unwrap();
    for program in [
        LbProgram::VethIngress,
        LbProgram::PodEgress,
        LbProgram::PodIngress,
    ] {
        for input in [&other_ip, &other_port, &other_proto, &arp] {
            let (verdict, out) = lab.run(program, input);
            assert_eq!(verdict, TC_ACT_OK, "{program:?}");
            assert_eq!(&out, input, "{program:?}: frame must be byte-identical");
        }
    }
    let d = lab.lb().counters().unwrap().delta(&before);
    assert_eq!(
        (d.runs, d.passed, d.dnat, d.rev_nat),
        (12, 12, 0, 0),
        "{d:?}"
    );
}

#[test]
fn a_flow_keeps_its_backend_and_flows_spread() {
    let Some(mut lab) = Lab::new("affinity") else {
        return;
    };
    let backends: Vec<(Ipv4Addr, u16)> = (1..=4)
        .map(|i| (Ipv4Addr::new(192, 168, 20, i), 8000))
        .collect();
    lab.lb()
        .program_services(&[service(Proto::Tcp, 80, &backends)])
        .unwrap();

    let flow = client_flow(Proto::Tcp, 41000, 80);
    let first = parse(&lab.run(LbProgram::VethIngress, &frame(flow, b"a")).1).dst;
    for i in 0..10 {
        let payload = format!("packet {i}");
        let dst = parse(
            &lab.run(LbProgram::VethIngress, &frame(flow, payload.as_bytes()))
                .1,
        )
        .dst;
        assert_eq!(dst, first, "packet {i} of one flow changed backend");
    }

    // Removing the other backends' chance does not move the flow either:
    // conntrack remembers it.
    let mut chosen = std::collections::HashSet::new();
    for sport in 42000..42064 {
        let out = lab.run(
            LbProgram::VethIngress,
            &frame(client_flow(Proto::Tcp, sport, 80), b"b"),
        );
        let dst = parse(&out.1).dst;
        assert!(backends.contains(&dst), "{dst:?} is not a backend");
        chosen.insert(dst);
    }
    assert!(chosen.len() > 1, "64 flows all went to {chosen:?}");
    println!("64 flows spread over {} of 4 backends", chosen.len());
}

#[test]
fn flow_sticks_when_backends_change() {
    let Some(mut lab) = Lab::new("sticky") else {
        return;
    };
    let b1 = (Ipv4Addr::new(192, 168, 20, 1), 8000);
    let b2 = (Ipv4Addr::new(192, 168, 20, 2), 8000);
    lab.lb()
        .program_services(&[service(Proto::Tcp, 80, &[b1, b2])])
        .unwrap();
    let flow = client_flow(Proto::Tcp, 43000, 80);
    let first = parse(&lab.run(LbProgram::PodEgress, &frame(flow, b"a")).1).dst;
    let other = if first == b1 { b2 } else { b1 };
    lab.lb()
        .program_services(&[service(Proto::Tcp, 80, &[other])])
        .unwrap();
    let again = parse(&lab.run(LbProgram::PodEgress, &frame(flow, b"a")).1).dst;
    assert_eq!(again, first, "an established flow keeps its backend");
    let fresh = parse(
        &lab.run(
            LbProgram::PodEgress,
            &frame(client_flow(Proto::Tcp, 43001, 80), b"a"),
        )
        .1,
    )
    .dst;
    assert_eq!(fresh, other, "a new flow uses the new backend set");
}

#[test]
fn local_pod_destinations_are_redirected_with_macs() {
    let Some(mut lab) = Lab::new("redirect") else {
        return;
    };
    lab.lb()
        .program_services(&[service(Proto::Tcp, 5201, &[(BACKEND, 5201)])])
        .unwrap();
    let pod_a_mac = [0x02, 0xaa, 0, 0, 0, 0x0a];
    let host_a_mac = [0x02, 0xbb, 0, 0, 0, 0x0a];
    lab.lb()
        .set_endpoint(
            BACKEND,
            Endpoint {
                ifindex: 4242,
                pod_mac: pod_a_mac,
                host_mac: host_a_mac,
                mode: RedirectMode::Peer,
            },
        )
        .unwrap();
    let before = lab.lb().counters().unwrap();

    // Via the service and to the pod IP directly: both delivered.
    for input in [
        frame(client_flow(Proto::Tcp, 44000, 5201), b"svc"),
        frame(
            Flow {
                proto: Proto::Tcp,
                src: (CLIENT, 44001),
                dst: (BACKEND, 5201),
            },
            b"direct",
        ),
    ] {
        let (verdict, out) = lab.run(LbProgram::VethIngress, &input);
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(&out[0..6], &pod_a_mac, "destination MAC is the pod's");
        assert_eq!(&out[6..12], &host_a_mac, "source MAC is the host veth's");
        assert_eq!(parse(&out).dst, (BACKEND, 5201));
        assert!(ip_checksum_valid(&out) && l4_checksum_valid(&out));
    }
    // The pod programs never redirect.
    let (verdict, _) = lab.run(
        LbProgram::PodEgress,
        &frame(client_flow(Proto::Tcp, 44002, 5201), b"svc"),
    );
    assert_eq!(verdict, TC_ACT_OK);

    let d = lab.lb().counters().unwrap().delta(&before);
    assert_eq!((d.redirected, d.dnat), (2, 2), "{d:?}");

    lab.lb().remove_endpoint(BACKEND).unwrap();
    let (verdict, _) = lab.run(
        LbProgram::VethIngress,
        &frame(client_flow(Proto::Tcp, 44003, 5201), b"svc"),
    );
    assert_eq!(verdict, TC_ACT_OK, "no endpoint: up the node's stack");
}

#[test]
fn service_without_backends_drops_and_removed_service_passes() {
    let Some(mut lab) = Lab::new("no-backends") else {
        return;
    };
    lab.lb()
        .program_services(&[
            service(Proto::Tcp, 80, &[]),
            service(Proto::Tcp, 443, &[(BACKEND, 8443)]),
        ])
        .unwrap();
    let to_80 = frame(client_flow(Proto::Tcp, 45000, 80), b"x");
    // Read as the runner reads a cell's proof: the pinned maps, turned
    // into proof counters, before and after.
    let proof_now = |run_id: &str| {
        let mut proof = dplab::proof::Proof::new();
        add_verdicts(&dplab::ebpf::pinned_counters(run_id).unwrap(), &mut proof);
        proof
    };
    let before = proof_now(&lab.run_id);
    let (verdict, _) = lab.run(LbProgram::PodEgress, &to_80);
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(lab.lb().counters().unwrap().dropped, 1);
    let delta = dplab::proof::delta(&before, &proof_now(&lab.run_id));
    assert_eq!(
        (
            dplab::proof::get(&delta, DROPPED),
            dplab::proof::get(&delta, PASSED)
        ),
        (1, 0),
        "the drop reaches the proof: {delta:?}"
    );
    let reason = drop_contradiction(&delta).expect("a drop contradicts the cell");
    assert!(reason.contains("bpf_dropped = 1"), "{reason}");

    // Reprogramming without port 443 removes it from the datapath.
    lab.lb()
        .program_services(&[service(Proto::Tcp, 80, &[(BACKEND, 8080)])])
        .unwrap();
    let to_443 = frame(client_flow(Proto::Tcp, 45001, 443), b"x");
    let before = proof_now(&lab.run_id);
    let (verdict, out) = lab.run(LbProgram::PodEgress, &to_443);
    assert_eq!((verdict, &out), (TC_ACT_OK, &to_443));
    let delta = dplab::proof::delta(&before, &proof_now(&lab.run_id));
    assert_eq!(
        (
            dplab::proof::get(&delta, DROPPED),
            dplab::proof::get(&delta, PASSED)
        ),
        (0, 1),
        "a passed packet reaches the proof: {delta:?}"
    );
    let (_, out) = lab.run(LbProgram::PodEgress, &to_80);
    assert_eq!(parse(&out).dst, (BACKEND, 8080));
}

#[test]
fn a_second_load_reuses_the_pinned_maps_and_teardown_removes_them() {
    let Some(mut lab) = Lab::new("reload") else {
        return;
    };
    let spec = service(Proto::Tcp, 80, &[(BACKEND, 8080)]);
    lab.lb()
        .program_services(std::slice::from_ref(&spec))
        .unwrap();
    lab.run(
        LbProgram::PodEgress,
        &frame(client_flow(Proto::Tcp, 46000, 80), b"x"),
    );

    let second = ServiceLb::load(&lab.run_id).expect("second load");
    assert_eq!(second.counters().unwrap().dnat, 1, "counters are shared");
    let pinned = dplab::ebpf::pinned_counters(&lab.run_id).expect("pinned counters");
    assert_eq!((pinned.runs, pinned.dnat), (1, 1), "{pinned:?}");
    let out = second
        .test_run(
            LbProgram::VethIngress,
            &frame(client_flow(Proto::Tcp, 46001, 80), b"x"),
        )
        .unwrap();
    assert_eq!(
        parse(&out.frame).dst,
        (BACKEND, 8080),
        "services are shared"
    );

    let pin_dir = dplab::ebpf::pin_dir(&lab.run_id).unwrap();
    assert!(pin_dir.join("dplab_services").exists());
    assert!(dplab::ebpf::list_pinned_runs().contains(&lab.run_id));
    second.teardown().expect("teardown");
    assert!(!pin_dir.exists(), "pin folder removed");
    assert!(!dplab::ebpf::list_pinned_runs().contains(&lab.run_id));
}

/// The oracle (etherparse) accepts the generator's frames and rejects them
/// with one bit flipped in the IP header or the L4 bytes: the two checksum
/// implementations agree, and the oracle looks at what it should.
#[test]
fn the_checksum_oracle_agrees_with_the_generator() {
    for proto in [Proto::Tcp, Proto::Udp] {
        let good = frame(client_flow(proto, 40009, 80), b"oracle");
        assert!(ip_checksum_valid(&good), "{proto:?}");
        assert!(l4_checksum_valid(&good), "{proto:?}");
        let mut bad_ip = good.clone();
        bad_ip[ETH_LEN + 8] ^= 1; // TTL
        assert!(!ip_checksum_valid(&bad_ip), "{proto:?}");
        let mut bad_l4 = good.clone();
        *bad_l4.last_mut().unwrap() ^= 1; // payload
        assert!(!l4_checksum_valid(&bad_l4), "{proto:?}");
    }
}
