//! Times programming 10,000 services (2 backends each) into the eBPF maps.
//! Goal: under 200 ms. Prints, does not assert. Run as root:
//!   cargo run --release --example bench_ebpf_services

use std::net::Ipv4Addr;
use std::time::Instant;

use dplab::ebpf::{remove_pins, unavailable_reason, Proto, ServiceLb, ServiceSpec};

const SERVICES: u32 = 10_000;

fn services(backend_port: u16) -> Vec<ServiceSpec> {
    (0..SERVICES)
        .map(|i| ServiceSpec {
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
        })
        .collect()
}

fn main() {
    if let Some(reason) = unavailable_reason() {
        println!("SKIPPED: eBPF unavailable: {reason}");
        return;
    }
    let run_id = format!("dltb{}", std::process::id());
    let t = Instant::now();
    let mut lb = ServiceLb::load(&run_id).expect("load");
    println!("load objects + verify 3 programs: {:.1} ms", ms(t));

    let first = services(8080);
    let t = Instant::now();
    lb.program_services(&first).expect("program");
    println!(
        "program {SERVICES} services x 2 backends (new):      {:.1} ms (goal < 200 ms)",
        ms(t)
    );

    let t = Instant::now();
    lb.program_services(&first).expect("program again");
    println!(
        "program the same {SERVICES} again (no change):       {:.1} ms",
        ms(t)
    );

    let changed = services(9090);
    let t = Instant::now();
    lb.program_services(&changed).expect("update");
    println!(
        "program {SERVICES} services, every backend changed:  {:.1} ms",
        ms(t)
    );

    let t = Instant::now();
    lb.program_services(&[]).expect("remove");
    println!(
        "remove all {SERVICES} services:                       {:.1} ms",
        ms(t)
    );

    lb.teardown().expect("teardown");
    let _ = remove_pins(&run_id);
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
