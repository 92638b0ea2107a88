//! Helpers of the privileged end-to-end tests: run the dplab binary, look
//! at the root namespace, skip loudly where root or a kernel feature is
//! missing (and fail where the environment promises it: see skip.rs).
#![allow(dead_code)]

pub mod skip;
pub mod testlab;

pub use skip::skip;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BLOG: &str = "topologies/blog.toml";

/// The workspace root (tests run with the crate folder as cwd).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn dplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dplab"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("dplab runs")
}

pub fn dplab_env(args: &[&str], key: &str, value: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dplab"))
        .args(args)
        .env(key, value)
        .current_dir(root())
        .output()
        .expect("dplab runs")
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// True when the test may touch the kernel; otherwise prints why not
/// (and fails under CI).
pub fn privileged(test: &str) -> bool {
    skip::root(test)
}

/// Runs a command inside a namespace (test observation only).
pub fn in_netns(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec runs")
}

pub fn ping(ns: &str, addr: &str) -> bool {
    in_netns(ns, &["ping", "-c", "2", "-i", "0.2", "-W", "2", addr])
        .status
        .success()
}

fn run(cmd: &str, args: &[&str]) -> String {
    match Command::new(cmd).args(args).output() {
        Ok(o) => text(&o.stdout),
        Err(e) => format!("{cmd} failed: {e}"),
    }
}

/// Everything of the root namespace dplab must never change: links,
/// addresses, routes, rules, iptables and the two sysctls. Address
/// lifetimes and rule counters tick by themselves and are left out.
pub fn root_snapshot() -> String {
    let addrs: String = run("ip", &["-o", "addr"])
        .lines()
        .map(|l| l.split(" valid_lft").next().unwrap_or(l).to_string() + "\n")
        .collect();
    let iptables: String = run("iptables-save", &[])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let l = if l.starts_with('[') {
                l.split_once("] ").map(|x| x.1).unwrap_or(l)
            } else {
                l
            };
            let l = if l.starts_with(':') {
                l.split(" [").next().unwrap_or(l)
            } else {
                l
            };
            format!("{l}\n")
        })
        .collect();
    let sysctl = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| e.to_string());
    format!(
        "links:\n{}\naddrs:\n{addrs}\nroutes:\n{}\nrules:\n{}\niptables:\n{iptables}\nip_forward={}bridge-nf-call-iptables={}",
        run("ip", &["-o", "-d", "link"]),
        run("ip", &["route", "show", "table", "all"]),
        run("ip", &["rule"]),
        sysctl("/proc/sys/net/ipv4/ip_forward"),
        sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables"),
    )
}

/// Namespaces of one run.
pub fn namespaces_of(run: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("dl{run}-")))
        .collect()
}

/// All dplab state folders and namespaces (run prefixes `dlXXXX-`).
pub fn all_dplab_objects() -> Vec<String> {
    let is_run = |n: &str| {
        n.len() > 7
            && n.starts_with("dl")
            && n.as_bytes()[6] == b'-'
            && n[2..6].bytes().all(|b| b.is_ascii_hexdigit())
    };
    let mut found: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_run(n))
        .collect();
    found.extend(
        std::fs::read_dir("/run/dplab")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .map(|n| format!("/run/dplab/{n}")),
    );
    found.sort();
    found
}

/// `dplab up` and the run id it printed; Err(stderr) if it failed.
pub fn up(topology: &str, datapath: &str) -> Result<String, String> {
    up_args(&["up", topology, "--datapath", datapath])
}

/// `dplab up` with service proxy `proxy`.
pub fn up_with(topology: &str, datapath: &str, proxy: &str) -> Result<String, String> {
    up_args(&["up", topology, "--datapath", datapath, "--proxy", proxy])
}

/// Why `dplab up` failed, if it was for something this kernel or build
/// lacks (dplab's skip reasons) rather than for a bug: its lines that say so.
pub fn unsupported_reason(stderr: &str) -> Option<String> {
    const MARKS: [&str; 3] = [
        "kernel has no",
        "eBPF datapaths unavailable",
        "not built into this dplab",
    ];
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| MARKS.iter().any(|m| l.contains(m)))
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// `dplab up` of `topology` with `datapath` and `proxy`: None, after a loud
/// skip (or a failure if DPLAB_REQUIRE promises both), when this kernel
/// cannot.
pub fn up_or_skip(test: &str, topology: &str, datapath: &str, proxy: &str) -> Option<String> {
    match up_with(topology, datapath, proxy) {
        Ok(run) => Some(run),
        Err(stderr) => match unsupported_reason(&stderr) {
            Some(reason) => {
                skip(test, &[datapath, proxy], &reason);
                None
            }
            None => panic!("up {datapath} with {proxy} failed: {stderr}"),
        },
    }
}

fn up_args(args: &[&str]) -> Result<String, String> {
    let out = dplab(args);
    if out.status.success() {
        let stdout = text(&out.stdout);
        Ok(stdout
            .lines()
            .last()
            .expect("run id printed")
            .trim()
            .to_string())
    } else {
        Err(text(&out.stderr))
    }
}

pub fn down(run: &str) {
    let out = dplab(&["down", run]);
    assert!(
        out.status.success(),
        "down {run} failed: {}",
        text(&out.stdout)
    );
    assert!(
        namespaces_of(run).is_empty(),
        "namespaces left: {:?}",
        namespaces_of(run)
    );
    assert!(
        !Path::new("/run/dplab").join(run).exists(),
        "state of {run} left"
    );
}

/// The run id whose journal names `pid` as owner, waiting up to `secs`
/// until its node namespace exists.
pub fn wait_for_run_of(pid: u32, secs: u64) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        for entry in std::fs::read_dir("/run/dplab")
            .into_iter()
            .flatten()
            .flatten()
        {
            let journal =
                std::fs::read_to_string(entry.path().join("journal.jsonl")).unwrap_or_default();
            if journal.contains(&format!("\"owner_pid\":{pid},")) {
                let run = entry.file_name().into_string().ok()?;
                if namespaces_of(&run).len() >= 3 {
                    return Some(run);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

/// Starts a long `dplab run` of the blog lab in the background.
pub fn spawn_long_run(out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_dplab"))
        .args([
            "run",
            BLOG,
            "--only",
            "veth-routed",
            "--duration",
            "20s",
            "--repetitions",
            "1",
            "--out",
        ])
        .arg(out)
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dplab run starts")
}
