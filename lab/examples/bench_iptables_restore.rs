//! Where the iptables proxy's programming time goes, per backend: the
//! rules of N services (2 endpoints each, as `dplab run
//! topologies/service-scale.toml --services N` renders them) loaded into a
//! scratch namespace with the explicit binaries `iptables-nft-restore` and
//! `iptables-legacy-restore`:
//!
//! - replace: the whole nat table in one restore (what the proxy does);
//! - noflush: the same input with `--noflush` (what it did before: the
//!   nft backend lists every chain it is told about in a sorted linked
//!   list, quadratic; skipped above --noflush-max services, default 10,000);
//! - change: one added service with `--noflush` into the full table;
//! - save: `iptables-save -c -t nat` (the proof's former read) against
//!   `iptables -L DPLAB-POSTROUTING -n -v -x` (its read now).
//!
//! Each figure is the process's wall-clock time, and the full restore's
//! peak memory, both from GNU time (/usr/bin/time). Prints a markdown
//! table, asserts nothing. Run as root from the workspace:
//!   cargo run --release --example bench_iptables_restore [-- 1000,10000,30000 [NOFLUSH_MAX]]

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use dplab::ledger::{Entry, Ledger};
use dplab::names::RunId;
use dplab::netns;
use dplab::service::{iptables, synthetic, ServiceChange};
use dplab::teardown::teardown_run;

const BACKENDS: [&str; 2] = ["nft", "legacy"];

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench_iptables_restore: needs root (network namespaces)");
        std::process::exit(1);
    }
    let mut args = std::env::args().skip(1);
    let counts: Vec<u32> = args
        .next()
        .unwrap_or_else(|| "1000,10000,30000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("service counts like 1000,10000"))
        .collect();
    let noflush_max: u32 = args
        .next()
        .map_or(10_000, |n| n.parse().expect("NOFLUSH_MAX"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plan = dplab::topology::load(&root.join("topologies/service-scale.toml"))
        .expect("topologies/service-scale.toml");
    let id = RunId::fresh();
    // A journal with an owner lock, like a run's: `dplab cleanup` after a
    // crash removes the scratch namespaces.
    let ledger = Ledger::create(
        &id,
        Entry::Run {
            run_id: id.to_string(),
            topology: "bench_iptables_restore".into(),
            datapath: "none".into(),
            proxy: Some("iptables".into()),
            owner_pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339(),
        },
    )
    .expect("journal of the benchmark");
    println!(
        "bench_iptables_restore: {} cpus, load before: {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    println!("| services | backend | replace s | replace MB | noflush s | change s | iptables-save -c s | -L proof chain s |");
    println!("|---|---|---|---|---|---|---|---|");
    for &n in &counts {
        let point = synthetic::plan_point(&plan, n, 2).expect("plan of the point");
        let rules = iptables::render_rules(&point, 0, false);
        let (added, _) = synthetic::added_service(&point, 0, Some(1), 5399).expect("added");
        let mut after = point.clone();
        after.services.push(added.clone());
        let change = iptables::render_change(&after, &ServiceChange::AddService(added));
        for backend in BACKENDS {
            let ns = id.netns(&format!("ipt-{backend}-{n}"));
            ledger
                .record(&Entry::Netns { name: ns.clone() })
                .expect("journal");
            netns::create(&ns).expect("scratch namespace");
            let restore = format!("iptables-{backend}-restore");
            let (replace_s, replace_mb) = timed(&ns, &restore, &["--wait"], Some(&rules));
            let save_s = timed(
                &ns,
                &format!("iptables-{backend}-save"),
                &["-c", "-t", "nat"],
                None,
            )
            .0;
            let list_s = timed(
                &ns,
                &format!("iptables-{backend}"),
                &[
                    "-w",
                    "-t",
                    "nat",
                    "-L",
                    "DPLAB-POSTROUTING",
                    "-n",
                    "-v",
                    "-x",
                ],
                None,
            )
            .0;
            let change_s = timed(&ns, &restore, &["--noflush", "--wait"], Some(&change)).0;
            netns::delete(&ns).expect("delete scratch namespace");
            let noflush = if n <= noflush_max {
                netns::create(&ns).expect("scratch namespace");
                let s = timed(&ns, &restore, &["--noflush", "--wait"], Some(&rules)).0;
                netns::delete(&ns).expect("delete scratch namespace");
                format!("{s:.2}")
            } else {
                "not run".into()
            };
            println!(
                "| {n} | {backend} | {replace_s:.2} | {replace_mb:.0} | {noflush} | {change_s:.3} | {save_s:.2} | {list_s:.3} |"
            );
        }
    }
    println!("\nload after: {}", load());
    drop(ledger);
    let report = teardown_run(&id);
    if !report.is_clean() {
        eprintln!("teardown: {}", report.errors.join("; "));
    }
}

/// Runs `program args` in `ns` with `stdin` under GNU time; seconds of
/// wall clock and the program's peak memory in MB. Exits on failure.
fn timed(ns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> (f64, f64) {
    let mut cmd = netns::command_in(ns, "/usr/bin/time").expect("command in namespace");
    cmd.args(["-f", "dplab-time %e %M", program])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("/usr/bin/time (Debian package time): {e}"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write rules");
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} in {ns}: {stderr}");
    let figures: Vec<f64> = stderr
        .lines()
        .find_map(|l| l.strip_prefix("dplab-time "))
        .expect("GNU time's line")
        .split_whitespace()
        .map(|v| v.parse().expect("a number"))
        .collect();
    (figures[0], figures[1] / 1024.0)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
