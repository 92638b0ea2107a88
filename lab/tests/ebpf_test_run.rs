//! BPF_PROG_TEST_RUN tests of the load balancer programs on hand-made
//! Ethernet/IPv4/TCP|UDP frames. Need root; skip loudly otherwise.

use std::net::Ipv4Addr;

use dplab::ebpf::{
    remove_pins, Endpoint, LbProgram, Proto, RedirectMode, ServiceLb, ServiceSpec, TC_ACT_OK,
    TC_ACT_REDIRECT, TC_ACT_SHOT,
};

#[path = "../../tests/common/skip.rs"]
mod skip;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 11);
const BACKEND: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 10);
const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 100);
const POD_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

// ---- frames -------------------------------------------------------------

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;

#[derive(Clone, Copy, Debug)]
struct Flow {
    proto: Proto,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
}

impl Flow {
    fn reply(self) -> Flow {
        Flow {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
        }
    }
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn sum_words(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4_len: usize) -> u32 {
    sum_words(&src.octets()) + sum_words(&dst.octets()) + u32::from(proto) + l4_len as u32
}

/// Ethernet + IPv4 (no options) + TCP or UDP + payload, checksums filled.
fn frame(flow: Flow, payload: &[u8]) -> Vec<u8> {
    let proto = flow.proto.number();
    let mut l4 = Vec::new();
    l4.extend_from_slice(&flow.src.1.to_be_bytes());
    l4.extend_from_slice(&flow.dst.1.to_be_bytes());
    let csum_at = match flow.proto {
        Proto::Tcp => {
            l4.extend_from_slice(&0x1234_5678u32.to_be_bytes()); // seq
            l4.extend_from_slice(&0x9abc_def0u32.to_be_bytes()); // ack
            l4.extend_from_slice(&[5 << 4, 0x18]); // data offset, PSH|ACK
            l4.extend_from_slice(&64240u16.to_be_bytes());
            l4.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
            16
        }
        Proto::Udp => {
            l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            6
        }
    };
    l4.extend_from_slice(payload);
    let sum = pseudo_header_sum(flow.src.0, flow.dst.0, proto, l4.len()) + sum_words(&l4);
    let mut csum = !fold(sum);
    if flow.proto == Proto::Udp && csum == 0 {
        csum = 0xffff;
    }
    l4[csum_at..csum_at + 2].copy_from_slice(&csum.to_be_bytes());

    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((IP_LEN + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0x1c, 0x46, 0x40, 0x00, 64, proto, 0, 0]);
    ip.extend_from_slice(&flow.src.0.octets());
    ip.extend_from_slice(&flow.dst.0.octets());
    let ip_csum = !fold(sum_words(&ip));
    ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());

    let mut out = Vec::new();
    out.extend_from_slice(&GW_MAC);
    out.extend_from_slice(&POD_MAC);
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&l4);
    out
}

/// Reads the flow back from a frame built by `frame`.
fn parse(frame: &[u8]) -> Flow {
    let ip = &frame[ETH_LEN..];
    let l4 = &ip[IP_LEN..];
    let addr = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    Flow {
        proto: if ip[9] == 6 { Proto::Tcp } else { Proto::Udp },
        src: (addr(&ip[12..16]), port(&l4[0..2])),
        dst: (addr(&ip[16..20]), port(&l4[2..4])),
    }
}

fn ip_checksum_valid(frame: &[u8]) -> bool {
    fold(sum_words(&frame[ETH_LEN..ETH_LEN + IP_LEN])) == 0xffff
}

fn l4_checksum_valid(frame: &[u8]) -> bool {
    let flow = parse(frame);
    let l4 = &frame[ETH_LEN + IP_LEN..];
    let sum = pseudo_header_sum(flow.src.0, flow.dst.0, flow.proto.number(), l4.len());
    fold(sum + sum_words(l4)) == 0xffff
}

fn udp_checksum(frame: &[u8]) -> u16 {
    let at = ETH_LEN + IP_LEN + 6;
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

/// Bytes outside the rewritten address (12..20 of IP, checksum 10..12),
/// ports and L4 checksum are unchanged.
fn same_except_nat_fields(a: &[u8], b: &[u8], proto: Proto) {
    assert_eq!(a.len(), b.len());
    let l4 = ETH_LEN + IP_LEN;
    let csum = l4 + if proto == Proto::Tcp { 16 } else { 6 };
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let nat_field = (ETH_LEN + 10..ETH_LEN + 20).contains(&i)
            || (l4..l4 + 4).contains(&i)
            || (csum..csum + 2).contains(&i);
        if !nat_field {
            assert_eq!(x, y, "byte {i} changed");
        }
    }
}

// ---- harness ------------------------------------------------------------

/// Loads a fresh run with its own pins; removes them when the test ends,
/// even on panic.
struct Lab {
    lb: Option<ServiceLb>,
    run_id: String,
}

impl Lab {
    fn new(name: &str) -> Option<Lab> {
        if !skip::ebpf(name) {
            return None;
        }
        let run_id = format!("dltt{}-{name}", std::process::id());
        let lb = ServiceLb::load(&run_id).unwrap_or_else(|e| panic!("load: {e}"));
        Some(Lab {
            lb: Some(lb),
            run_id,
        })
    }

    fn lb(&mut self) -> &mut ServiceLb {
        self.lb.as_mut().unwrap()
    }

    fn run(&mut self, program: LbProgram, frame: &[u8]) -> (u32, Vec<u8>) {
        let out = self.lb().test_run(program, frame).expect("test run");
        (out.verdict, out.frame)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.lb.take());
        let _ = remove_pins(&self.run_id);
    }
}

fn service(proto: Proto, port: u16, backends: &[(Ipv4Addr, u16)]) -> ServiceSpec {
    ServiceSpec {
        cluster_ip: CLUSTER_IP,
        port,
        proto,
        backends: backends.to_vec(),
    }
}

fn client_flow(proto: Proto, sport: u16, port: u16) -> Flow {
    Flow {
        proto,
        src: (CLIENT, sport),
        dst: (CLUSTER_IP, port),
    }
}

// ---- tests --------------------------------------------------------------

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
    let (verdict, _) = lab.run(LbProgram::PodEgress, &to_80);
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(lab.lb().counters().unwrap().dropped, 1);

    // Reprogramming without port 443 removes it from the datapath.
    lab.lb()
        .program_services(&[service(Proto::Tcp, 80, &[(BACKEND, 8080)])])
        .unwrap();
    let to_443 = frame(client_flow(Proto::Tcp, 45001, 443), b"x");
    let (verdict, out) = lab.run(LbProgram::PodEgress, &to_443);
    assert_eq!((verdict, &out), (TC_ACT_OK, &to_443));
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
