//! BPF_PROG_TEST_RUN tests of conntrack expiry: an entry unused for longer
//! than its timeout is not used any more (a new flow on the same tuple gets
//! a new backend, a late reply is not reverse-translated), use keeps an
//! entry alive (both of its halves), and a FIN or RST shortens its life.
//! The oracle is the test's own record of which backends the service had
//! when. Timeouts are short and margins wide: a loaded machine may stall
//! this thread for a while. Need root; skip loudly otherwise.

mod ebpf_frames;

use std::net::Ipv4Addr;
use std::thread::sleep;
use std::time::{Duration, Instant};

use dplab::ebpf::{ConntrackTimeouts, LbProgram, NodeConfig, Proto, TC_ACT_OK};
use ebpf_frames::*;

const B1: (Ipv4Addr, u16) = (Ipv4Addr::new(192, 168, 20, 1), 8000);
const B2: (Ipv4Addr, u16) = (Ipv4Addr::new(192, 168, 20, 2), 8000);

/// A lab whose conntrack entries die after `timeouts`, serving port 80
/// (TCP and UDP) from backend B1.
fn lab(name: &str, timeouts: ConntrackTimeouts) -> Option<Lab> {
    let mut lab = Lab::new(name)?;
    lab.lb()
        .configure(&NodeConfig {
            timeouts,
            ..Default::default()
        })
        .unwrap();
    set_backend(&mut lab, B1);
    Some(lab)
}

fn set_backend(lab: &mut Lab, backend: (Ipv4Addr, u16)) {
    lab.lb()
        .program_services(&[
            service(Proto::Udp, 80, &[backend]),
            service(Proto::Tcp, 80, &[backend]),
        ])
        .unwrap();
}

/// Where the pod's egress program sends one packet of `flow`.
fn backend_of(lab: &mut Lab, flow: Flow, tcp_flags: u8) -> (Ipv4Addr, u16) {
    let (verdict, out) = lab.run(
        LbProgram::PodEgress,
        &frame_with_tcp_flags(flow, b"x", tcp_flags),
    );
    assert_eq!(verdict, TC_ACT_OK);
    parse(&out).dst
}

/// The source a reply from `backend` to `flow`'s client has once the
/// pod's ingress program saw it.
fn reply_source(lab: &mut Lab, flow: Flow, backend: (Ipv4Addr, u16)) -> (Ipv4Addr, u16) {
    let reply = Flow {
        proto: flow.proto,
        src: backend,
        dst: flow.src,
    };
    let (verdict, out) = lab.run(LbProgram::PodIngress, &frame(reply, b"y"));
    assert_eq!(verdict, TC_ACT_OK);
    parse(&out).src
}

#[test]
fn an_expired_entry_is_not_used() {
    let timeout = Duration::from_millis(300);
    let Some(mut lab) = lab(
        "ct-expiry",
        ConntrackTimeouts {
            other: Some(timeout),
            ..Default::default()
        },
    ) else {
        return;
    };
    let flow = client_flow(Proto::Udp, 40000, 80);
    assert_eq!(backend_of(&mut lab, flow, 0), B1);
    set_backend(&mut lab, B2);
    let created = Instant::now();
    assert_eq!(
        backend_of(&mut lab, flow, 0),
        B1,
        "a live entry keeps its backend"
    );
    assert_eq!(reply_source(&mut lab, flow, B1), (CLUSTER_IP, 80));
    if created.elapsed() >= timeout {
        println!("SKIPPED timing part: the machine stalled this test past the timeout");
        return;
    }

    sleep(timeout * 3);
    // The reply first: a forward packet would write new entries.
    assert_eq!(
        reply_source(&mut lab, flow, B1),
        B1,
        "a late reply must not be reverse-translated by an expired entry"
    );
    assert_eq!(
        backend_of(&mut lab, flow, 0),
        B2,
        "the expired entry's backend must not be reused"
    );
    assert_eq!(reply_source(&mut lab, flow, B2), (CLUSTER_IP, 80));
}

#[test]
fn use_keeps_both_halves_of_an_entry_alive() {
    let timeout = Duration::from_millis(1000);
    let Some(mut lab) = lab(
        "ct-refresh",
        ConntrackTimeouts {
            other: Some(timeout),
            ..Default::default()
        },
    ) else {
        return;
    };
    let flow = client_flow(Proto::Udp, 40100, 80);
    assert_eq!(backend_of(&mut lab, flow, 0), B1);
    set_backend(&mut lab, B2);
    // Forward packets only, for 2.5 timeouts: the flow keeps its backend...
    let start = Instant::now();
    let mut last = Instant::now();
    while start.elapsed() < timeout * 5 / 2 {
        sleep(timeout / 5);
        if last.elapsed() >= timeout {
            println!("SKIPPED: the machine stalled this test past the timeout");
            return;
        }
        last = Instant::now();
        assert_eq!(backend_of(&mut lab, flow, 0), B1, "used entries live on");
    }
    // ...and its reverse half lived with it.
    assert_eq!(reply_source(&mut lab, flow, B1), (CLUSTER_IP, 80));
    sleep(timeout * 3);
    assert_eq!(backend_of(&mut lab, flow, 0), B2, "unused, it dies");
}

#[test]
fn fin_or_rst_shortens_a_tcp_entry_to_the_closing_timeout() {
    let closing = Duration::from_millis(300);
    let Some(mut lab) = lab(
        "ct-closing",
        ConntrackTimeouts {
            tcp: Some(Duration::from_secs(600)),
            closing: Some(closing),
            ..Default::default()
        },
    ) else {
        return;
    };
    let open = client_flow(Proto::Tcp, 41000, 80);
    let fin = client_flow(Proto::Tcp, 41001, 80);
    let rst = client_flow(Proto::Tcp, 41002, 80);
    for flow in [open, fin, rst] {
        assert_eq!(backend_of(&mut lab, flow, TCP_ACK), B1);
    }
    set_backend(&mut lab, B2);
    let closed = Instant::now();
    assert_eq!(backend_of(&mut lab, fin, TCP_FIN | TCP_ACK), B1);
    // A reply carrying the RST closes the flow as well.
    let reply = Flow {
        proto: Proto::Tcp,
        src: B1,
        dst: rst.src,
    };
    let (_, out) = lab.run(
        LbProgram::PodIngress,
        &frame_with_tcp_flags(reply, b"", TCP_RST),
    );
    assert_eq!(parse(&out).src, (CLUSTER_IP, 80));
    if closed.elapsed() >= closing {
        println!("SKIPPED timing part: the machine stalled this test past the timeout");
        return;
    }
    sleep(closing * 3);
    assert_eq!(
        backend_of(&mut lab, open, TCP_ACK),
        B1,
        "open flows live on"
    );
    assert_eq!(backend_of(&mut lab, fin, TCP_ACK), B2, "closed by FIN");
    assert_eq!(backend_of(&mut lab, rst, TCP_ACK), B2, "closed by RST");
}
