//! Times programming services into the eBPF maps: 10,000 services from
//! empty (goal < 200 ms), and one change on a node holding 30,000 services
//! (goal < 50 ms: a service added, one service's backends rewritten), as
//! `ServiceProxy::apply` does it, against a full reconcile of the same
//! change. Prints, does not assert. Run as root:
//!   cargo run --release --example bench_ebpf_services

use std::net::Ipv4Addr;
use std::time::Instant;

use dplab::ebpf::{remove_pins, unavailable_reason, Proto, ServiceLb, ServiceSpec};

fn service(i: u32, backend_port: u16) -> ServiceSpec {
    ServiceSpec {
        cluster_ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i),
        port: 80,
        proto: Proto::Tcp,
        node_port: None,
        backends: vec![
            (
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + 2 * i),
                backend_port,
            ),
            (
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 1)) + 2 * i),
                backend_port,
            ),
        ],
    }
}

fn services(count: u32, backend_port: u16) -> Vec<ServiceSpec> {
    (0..count).map(|i| service(i, backend_port)).collect()
}

fn main() {
    if let Some(reason) = unavailable_reason() {
        println!("SKIPPED: eBPF unavailable: {reason}");
        return;
    }
    let run_id = format!("dltb{}", std::process::id());
    let t = Instant::now();
    let mut lb = ServiceLb::load(&run_id).expect("load");
    println!("load objects + verify 5 programs: {:.1} ms", ms(t));

    const SMALL: u32 = 10_000;
    let first = services(SMALL, 8080);
    let t = Instant::now();
    lb.program_services(&first).expect("program");
    println!(
        "program {SMALL} services x 2 backends (new):      {:.1} ms (goal < 200 ms)",
        ms(t)
    );
    let t = Instant::now();
    lb.program_services(&first).expect("program again");
    println!(
        "program the same {SMALL} again (no change):       {:.1} ms",
        ms(t)
    );
    let t = Instant::now();
    lb.program_services(&services(SMALL, 9090)).expect("update");
    println!(
        "program {SMALL} services, every backend changed:  {:.1} ms",
        ms(t)
    );

    const LARGE: u32 = 30_000;
    let mut all = services(LARGE, 8080);
    let t = Instant::now();
    lb.program_services(&all).expect("program large");
    println!(
        "program {LARGE} services x 2 backends:             {:.1} ms",
        ms(t)
    );

    // One change at 30,000 services: as apply() does it (one upsert)...
    let added = service(LARGE, 8080);
    let t = Instant::now();
    lb.upsert_service(&added).expect("add one");
    let add_ms = ms(t);
    let mut one_left = all[LARGE as usize / 2].clone();
    one_left.backends.truncate(1);
    let t = Instant::now();
    lb.upsert_service(&one_left).expect("remove an endpoint");
    let endpoint_ms = ms(t);
    println!("at {LARGE} services, add one service:               {add_ms:.3} ms (goal < 50 ms)");
    println!(
        "at {LARGE} services, one service loses a backend:   {endpoint_ms:.3} ms (goal < 50 ms)"
    );

    // ...and as a full reconcile of the whole plan would.
    all.push(added);
    let t = Instant::now();
    lb.program_services(&all).expect("reconcile");
    println!(
        "at {LARGE} services, the same change by full reconcile: {:.1} ms",
        ms(t)
    );

    let t = Instant::now();
    lb.program_services(&[]).expect("remove");
    println!(
        "remove all {} services:                       {:.1} ms",
        LARGE + 1,
        ms(t)
    );

    lb.teardown().expect("teardown");
    let _ = remove_pins(&run_id);
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
