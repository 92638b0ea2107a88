//! Times programming the nftables proxy: the full load of N services (one
//! `nft -f` transaction), then one change on top of it (a new service; an
//! endpoint leaving it), and reading the proof counters. Each size runs in
//! a fresh scratch namespace. Goals: 30,000 services loaded in < 2 s, one
//! change in < 50 ms. Prints wall time and the CPU time nft used (user +
//! system, from getrusage), which a busy machine inflates less. Prints,
//! does not assert. Run as root:
//!   cargo run --release --example bench_nft_services -- [--endpoints E] [--pods P] [N...]
//! (defaults: 1 endpoint per service, 250 pods, N = 1000 10000 30000).
//! Endpoints go round the P pods, so with P >= N x E every service has
//! endpoints of its own (one endpoint chain each, as in a cluster where
//! services do not share backends); with few pods they share chains.

use std::path::Path;
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};

use dplab::service::nftables::{list_table, load, translated_packets};
use dplab::service::nftables_rules::{render_change, render_ruleset};
use dplab::service::ServiceChange;
use dplab::topology::{Plan, ServicePlan};

fn main() {
    let mut endpoints = 1;
    let mut pods = 250;
    let mut counts = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--endpoints" {
            endpoints = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--endpoints E");
        } else if arg == "--pods" {
            pods = args.next().and_then(|v| v.parse().ok()).expect("--pods P");
        } else {
            counts.push(arg.parse::<usize>().expect("a service count"));
        }
    }
    if counts.is_empty() {
        counts = vec![1_000, 10_000, 30_000];
    }
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED: needs root (network namespaces)");
        return;
    }
    println!(
        "{endpoints} endpoint(s) per service among {pods} pods; wall ms (nft cpu ms); machine load {}",
        loadavg()
    );
    for n in counts {
        bench(n, endpoints, pods);
    }
}

/// Deletes the scratch namespace when the size is done, also when a step
/// panics (an `expect` above), so a failed run leaves no namespace behind.
struct Scratch<'a>(&'a str);

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        if let Err(e) = dplab::netns::delete(self.0) {
            eprintln!("could not delete scratch namespace {}: {e}", self.0);
        }
    }
}

fn bench(n: usize, endpoints: usize, pods: usize) {
    let plan = plan(n, endpoints, pods);
    let ns = format!("nftbench-{}-{n}", std::process::id());
    dplab::netns::create(&ns).expect("scratch namespace");
    let _scratch = Scratch(&ns);
    let t = Instant::now();
    let text = render_ruleset(&plan, 0, false);
    let render_ms = ms(t);
    let full = timed(|| load(&ns, &text).expect("full load"));

    let mut added = plan.clone();
    let svc = service(n, endpoints, pods);
    added.services.push(svc.clone());
    let add = timed(|| {
        load(
            &ns,
            &render_change(&added, &ServiceChange::AddService(svc.clone())),
        )
        .expect("add a service")
    });
    let mut removed = added.clone();
    let gone = removed.services[n].backends.remove(0);
    let change = ServiceChange::RemoveEndpoint {
        service: n,
        pod: gone,
    };
    let remove = timed(|| load(&ns, &render_change(&removed, &change)).expect("remove"));
    let read = timed(|| {
        let packets = translated_packets(&list_table(&ns).expect("list")).expect("parse");
        assert_eq!(packets, 0, "no traffic in the scratch namespace");
    });
    println!(
        "{n:>6} services, {:>5.1} MB text (render {render_ms:.0} ms): full load {}   add service {}   remove endpoint {}   read counters {}",
        text.len() as f64 / 1e6,
        full,
        add,
        remove,
        read
    );
}

/// Runs `f` and says how long it took, in wall and in children's CPU time.
fn timed(f: impl FnOnce()) -> String {
    let cpu = || {
        let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
        let us = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
        us(u.user_time()) + us(u.system_time())
    };
    let (c, t) = (cpu(), Instant::now());
    f();
    format!("{:.0} ({:.0}) ms", ms(t), cpu() - c)
}

/// One node, PODS pods, n services of `endpoints` backends each; every
/// tenth service has a node port.
fn plan(n: usize, endpoints: usize, pods: usize) -> Plan {
    let mut toml = String::from(
        "name = \"bench\"\nservice_cidr = \"10.96.0.0/16\"\n[[nodes]]\nname = \"node1\"\npod_cidr = \"10.244.0.0/16\"\n",
    );
    for p in 0..pods {
        toml += &format!("[[pods]]\nname = \"pod-{p}\"\nnode = \"node1\"\n");
    }
    let mut plan = dplab::topology::parse(Path::new("bench.toml"), &toml).expect("bench plan");
    plan.services = (0..n).map(|i| service(i, endpoints, pods)).collect();
    plan
}

fn service(i: usize, endpoints: usize, pods: usize) -> ServicePlan {
    ServicePlan {
        name: format!("svc-{i}"),
        cluster_ip: std::net::Ipv4Addr::from(0x0a60_0001 + i as u32),
        port: 80,
        target_port: 8080,
        protocol: dplab::topology::Protocol::Tcp,
        node_port: i.is_multiple_of(10).then(|| 30_000 + (i / 10) as u16),
        backends: (0..endpoints).map(|e| (i * endpoints + e) % pods).collect(),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').next().unwrap_or("?").to_string())
        .unwrap_or_else(|_| "?".into())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
