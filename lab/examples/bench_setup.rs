//! Lab setup and teardown against the kernel's own cost. For pods-100 and
//! pods-1000, interleaved round after round (dplab first in even rounds,
//! by hand first in odd ones):
//!
//! - dplab: wall clock of `dplab up topologies/pods-N.toml` (process start,
//!   parsing, namespaces, veths, addresses, routes, sysctls, iptables) and
//!   of `dplab down RUN`;
//! - by hand: the same N+1 namespaces and N veth pairs (peer created
//!   straight inside the pod namespace) with `ip -batch`, and their
//!   deletion with `ip -batch`;
//! - drained, for both: deleting a namespace returns before the kernel frees
//!   it (that happens later on the kernel's netns workqueue). "drained" is
//!   the time from the start of the teardown until a canary veth, whose
//!   namespace is deleted right after the lab's, has disappeared from a
//!   keeper namespace: by then the kernel has unregistered the links of
//!   every namespace deleted before it. Each step starts after the previous
//!   teardown drained.
//!
//! Goals: pods-100 up < 0.5 s, pods-1000 up < 5 s, pods-1000 down < 2 s.
//! Prints figures, asserts nothing. Run as root from the workspace, after
//! building the binary it times:
//!   cargo build --release && cargo run --release --example bench_setup [-- ROUNDS]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dplab::ledger::{Entry, Ledger};
use dplab::names::RunId;
use dplab::netns;
use dplab::teardown::teardown_run;

const SIZES: [usize; 2] = [100, 1000];

/// The measurements of one way of building a lab.
#[derive(Default)]
struct Series {
    up: Vec<f64>,
    down: Vec<f64>,
    drained: Vec<f64>,
    /// What dplab itself reports: `up in N ms` (the lab's setup_ms, without
    /// process start and parsing) and `down ... took N ms`.
    inner_up: Vec<f64>,
    inner_down: Vec<f64>,
}

struct Bench {
    id: RunId,
    dplab: PathBuf,
    root: PathBuf,
    ledger: Ledger,
    scratch: PathBuf,
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench_setup: needs root (network namespaces)");
        std::process::exit(1);
    }
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS is a number"))
        .unwrap_or(3);
    let bench = Bench::new();
    println!(
        "bench_setup: {rounds} rounds, {} cpus, load before: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    let mut dplab: Vec<Series> = SIZES.iter().map(|_| Series::default()).collect();
    let mut by_hand: Vec<Series> = SIZES.iter().map(|_| Series::default()).collect();
    for round in 0..rounds {
        for (i, &pods) in SIZES.iter().enumerate() {
            if round % 2 == 0 {
                bench.dplab_once(pods, &mut dplab[i]);
                bench.by_hand_once(pods, &mut by_hand[i]);
            } else {
                bench.by_hand_once(pods, &mut by_hand[i]);
                bench.dplab_once(pods, &mut dplab[i]);
            }
        }
    }
    println!("load after: {}", load());
    for (i, &pods) in SIZES.iter().enumerate() {
        report(pods, &dplab[i], &by_hand[i]);
    }
    bench.finish();
}

impl Bench {
    fn new() -> Bench {
        // The binary next to this example: target/<profile>/dplab.
        let exe = std::env::current_exe().expect("own path");
        let dplab = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("dplab"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| {
                eprintln!("bench_setup: build the binary first: cargo build --release");
                std::process::exit(1);
            });
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let id = RunId::fresh();
        // A journal with an owner lock, like a run's: a concurrent
        // `dplab cleanup` leaves these namespaces alone, and the end (or
        // `dplab cleanup` after a crash) removes them.
        let ledger = Ledger::create(
            &id,
            Entry::Run {
                run_id: id.to_string(),
                topology: "bench_setup".into(),
                datapath: "by-hand".into(),
                proxy: None,
                owner_pid: std::process::id(),
                started_at: chrono::Utc::now().to_rfc3339(),
            },
        )
        .expect("journal of the benchmark");
        let scratch = std::env::temp_dir().join(format!("dplab-bench-{id}"));
        std::fs::create_dir_all(&scratch).expect("scratch folder");
        let bench = Bench {
            id,
            dplab,
            root,
            ledger,
            scratch,
        };
        bench.create_namespaces(&[bench.keep()]);
        bench
    }

    fn keep(&self) -> String {
        self.id.netns("keep")
    }

    fn canary(&self) -> String {
        self.id.netns("canary")
    }

    /// Journals and creates namespaces with one `ip -batch`.
    fn create_namespaces(&self, names: &[String]) -> f64 {
        let entries: Vec<Entry> = names
            .iter()
            .map(|n| Entry::Netns { name: n.clone() })
            .collect();
        self.ledger
            .record_all(&entries)
            .expect("journal namespaces");
        let text: String = names.iter().map(|n| format!("netns add {n}\n")).collect();
        self.ip_batch(None, "netns-add", &text)
    }

    /// Runs `ip [-n NS] -batch FILE` with `text` and returns its wall time.
    fn ip_batch(&self, netns: Option<&str>, what: &str, text: &str) -> f64 {
        let file = self.scratch.join(format!("{what}.batch"));
        std::fs::write(&file, text).expect("batch file");
        let mut cmd = Command::new("ip");
        if let Some(ns) = netns {
            cmd.args(["-n", ns]);
        }
        cmd.arg("-batch").arg(&file);
        let start = Instant::now();
        let out = cmd.output().expect("ip runs");
        let ms = ms(start);
        assert!(
            out.status.success(),
            "ip -batch {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ms
    }

    /// A fresh canary: a veth between the keeper and a canary namespace.
    fn arm_canary(&self) {
        self.create_namespaces(&[self.canary()]);
        let text = format!(
            "link add {} type veth peer name c netns {}\n",
            self.id.link("k"),
            self.canary()
        );
        self.ip_batch(Some(&self.keep()), "canary", &text);
    }

    /// Deletes the canary namespace and waits until its veth end in the
    /// keeper is gone; returns milliseconds since `since`.
    fn wait_drained(&self, since: Instant) -> f64 {
        netns::delete(&self.canary()).expect("delete canary");
        let link = self.id.link("k");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let present = netns::run_in(&self.keep(), || {
                nix::net::if_::if_nametoindex(link.as_str()).is_ok()
            })
            .expect("look into the keeper");
            if !present {
                return ms(since);
            }
            assert!(Instant::now() < deadline, "kernel did not drain in 120 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn dplab_once(&self, pods: usize, series: &mut Series) {
        let topology = format!("topologies/pods-{pods}.toml");
        let start = Instant::now();
        let out = Command::new(&self.dplab)
            .args(["up", &topology])
            .current_dir(&self.root)
            .output()
            .expect("dplab up runs");
        let up = ms(start);
        assert!(
            out.status.success(),
            "dplab up {topology}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let run = stdout.lines().last().expect("run id").trim().to_string();
        let inner_up = reported_ms(&out.stderr, "dplab: up in ");
        self.arm_canary();
        let start = Instant::now();
        let out = Command::new(&self.dplab)
            .args(["down", &run])
            .output()
            .expect("dplab down runs");
        let down = ms(start);
        assert!(
            out.status.success(),
            "dplab down {run}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let inner_down = reported_ms(&out.stderr, " took ");
        let drained = self.wait_drained(start);
        println!(
            "  pods-{pods:<5} dplab    up {up:7.0} ms  down {down:6.0} ms  drained {drained:6.0} ms  (dplab says: up in {inner_up:.0} ms, down took {inner_down:.0} ms)"
        );
        series.inner_up.push(inner_up);
        series.inner_down.push(inner_down);
        series.up.push(up);
        series.down.push(down);
        series.drained.push(drained);
    }

    fn by_hand_once(&self, pods: usize, series: &mut Series) {
        let node = self.id.netns("hnode");
        let pod = |i: usize| self.id.netns(&format!("h{i}"));
        let mut names = vec![node.clone()];
        names.extend((0..pods).map(pod));
        let veths: String = (0..pods)
            .map(|i| {
                format!(
                    "link add {} type veth peer name eth0 netns {}\n",
                    self.id.link(&format!("v{i}")),
                    pod(i)
                )
            })
            .collect();
        let deletions: String = names.iter().map(|n| format!("netns del {n}\n")).collect();
        let up = self.create_namespaces(&names) + self.ip_batch(Some(&node), "veth-add", &veths);
        self.arm_canary();
        let start = Instant::now();
        let down = self.ip_batch(None, "netns-del", &deletions);
        let drained = self.wait_drained(start);
        println!(
            "  pods-{pods:<5} by hand  up {up:7.0} ms  down {down:6.0} ms  drained {drained:6.0} ms"
        );
        series.up.push(up);
        series.down.push(down);
        series.drained.push(drained);
    }

    /// Removes what is left (the keeper, anything after a failure) and the
    /// journal.
    fn finish(self) {
        let Bench {
            id,
            ledger,
            scratch,
            ..
        } = self;
        drop(ledger);
        let report = teardown_run(&id);
        for e in &report.errors {
            eprintln!("bench_setup: teardown: {e}");
        }
        let _ = std::fs::remove_dir_all(scratch);
    }
}

/// The number of milliseconds after `marker` in dplab's log.
fn reported_ms(stderr: &[u8], marker: &str) -> f64 {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .find_map(|l| {
            let rest = &l[l.find(marker)? + marker.len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(f64::NAN)
}

fn report(pods: usize, dplab: &Series, by_hand: &Series) {
    println!("pods-{pods}: median (min-max) of {} rounds", dplab.up.len());
    let rows = [
        ("up", &dplab.up, &by_hand.up),
        ("down", &dplab.down, &by_hand.down),
        ("drained", &dplab.drained, &by_hand.drained),
    ];
    println!(
        "  {:8} {:>22} {:>22} {:>8}",
        "", "dplab ms", "by hand ms", "ratio"
    );
    for (what, ours, theirs) in rows {
        let (m1, m2) = (median(ours), median(theirs));
        println!(
            "  {what:8} {:>22} {:>22} {:>8.2}",
            spread(ours),
            spread(theirs),
            m1 / m2
        );
    }
    println!(
        "  dplab's own figures: up in {} ms, down took {} ms",
        spread(&dplab.inner_up),
        spread(&dplab.inner_down)
    );
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("{:.0} ({min:.0}-{max:.0})", median(v))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| e.to_string())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
