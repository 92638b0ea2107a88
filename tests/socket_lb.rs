//! Privileged end-to-end tests of the socket-lb proxy and `dplab exec`:
//! cluster IPs and node ports are translated at the socket for processes in
//! the lab's cgroups (the built-in generators, external programs), never
//! for a process that only entered the namespace, no packet is NATed, and
//! teardown (or `dplab cleanup` after SIGKILL) leaves no cgroup, pin or
//! namespace behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::*;

/// The blog lab plus an HTTP service with a node port and a UDP service.
const TOPOLOGY: &str = r#"
name = "socklb"
service_cidr = "10.96.0.0/16"

[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
routed_gateway = "169.254.10.24"

[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"

[[pods]]
name = "pod-b"
node = "node1"
address = "192.168.10.11"

[[services]]
name = "iperf"
cluster_ip = "10.96.0.100"
port = 5201
backends = ["pod-a"]

[[services]]
name = "web"
cluster_ip = "10.96.0.80"
port = 80
target_port = 8080
node_port = 30080
backends = ["pod-a"]

[[services]]
name = "echo"
cluster_ip = "10.96.0.53"
port = 53
target_port = 5300
protocol = "udp"
backends = ["pod-a"]
"#;

/// A UDP echo server, and a client that sends with sendto and prints the
/// address the reply came from.
const UDP_ECHO: &str = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 5300))\nwhile True:\n    data, peer = s.recvfrom(2048)\n    s.sendto(data, peer)\n";
const UDP_ASK: &str = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(3)\ns.sendto(b'x', ('10.96.0.53', 53))\ndata, peer = s.recvfrom(64)\nprint(peer[0], peer[1])\n";

fn v2_mount() -> PathBuf {
    dplab::cgroup::v2_mount()
        .expect("this machine has a cgroup2 mount")
        .to_path_buf()
}

fn lab_cgroup(run: &str) -> PathBuf {
    v2_mount().join(format!("dplab-{run}"))
}

fn pins(run: &str) -> PathBuf {
    Path::new("/sys/fs/bpf/dplab").join(run)
}

fn up_socket_lb(topology: &Path, datapath: &str) -> String {
    let out = dplab(&[
        "up",
        topology.to_str().unwrap(),
        "--datapath",
        datapath,
        "--proxy",
        "socket-lb",
    ]);
    assert!(
        out.status.success(),
        "up {datapath} socket-lb: {}",
        text(&out.stderr)
    );
    text(&out.stdout).lines().last().unwrap().trim().to_string()
}

fn exec(run: &str, pod: &str, cmd: &[&str]) -> std::process::Output {
    dplab(&[&["exec", run, pod, "--"], cmd].concat())
}

/// `dplab exec` in the background (a server), stdout and stderr dropped.
fn exec_background(run: &str, pod: &str, cmd: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dplab"))
        .args([&["exec", run, pod, "--"], cmd].concat())
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dplab exec starts")
}

/// Ends a background `dplab exec` by its PID with SIGTERM, which it relays
/// to its program; returns its exit code.
fn terminate(mut child: Child) -> Option<i32> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap().code()
}

/// Waits until `check` passes, for at most 10 s.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn node_address(topology: &Path, datapath: &str) -> String {
    let plan = dplab::topology::load(topology).unwrap();
    let kind = dplab::kinds::Datapath::from_str(datapath).unwrap();
    dplab::datapath::pod_gateway(kind, &plan.nodes[0]).to_string()
}

/// What one datapath showed, gathered before teardown and checked after.
struct Seen {
    tcp_rr: serde_json::Value,
    curl_cluster_ip: std::process::Output,
    curl_node_port: std::process::Output,
    curl_netns_only: std::process::Output,
    udp_reply_from: String,
    server_exit: Option<i32>,
    counters: dplab::ebpf::cgroup_lb::SockCounters,
}

fn socket_lb(datapath: &str) {
    if !privileged(datapath) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("socklb.toml");
    std::fs::write(&topology, TOPOLOGY).unwrap();
    std::fs::write(dir.path().join("udp_echo.py"), UDP_ECHO).unwrap();
    std::fs::write(dir.path().join("udp_ask.py"), UDP_ASK).unwrap();
    let py = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let node = node_address(&topology, datapath);
    let before = root_snapshot();

    let run = up_socket_lb(&topology, datapath);
    assert!(lab_cgroup(&run).join("pod-a").is_dir());
    assert!(pins(&run).join("cgroup/sock4_connect").exists());
    let out = dplab(&[
        "test",
        &run,
        "--from",
        "pod-b",
        "--to",
        "service:iperf",
        "--workload",
        "tcp-rr",
        "--duration",
        "1s",
        "--json",
    ]);
    let tcp_rr: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("dplab test: {e}: {}", text(&out.stderr)));
    let web = exec_background(
        &run,
        "pod-a",
        &["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"],
    );
    let udp = exec_background(&run, "pod-a", &["python3", &py("udp_echo.py")]);
    let curl = |url: &str| exec(&run, "pod-b", &["curl", "-s", "--max-time", "3", url]);
    let served = eventually(|| curl("http://10.96.0.80/").status.success());
    let curl_cluster_ip = curl("http://10.96.0.80/");
    let curl_node_port = curl(&format!("http://{node}:30080/"));
    let curl_netns_only = in_netns(
        &format!("dl{run}-pod-b"),
        &["curl", "-s", "--max-time", "3", "http://10.96.0.80/"],
    );
    let udp_reply_from = text(&exec(&run, "pod-b", &["python3", &py("udp_ask.py")]).stdout);
    let counters = dplab::ebpf::cgroup_lb::pinned_sock_counters(&run).unwrap();
    let server_exit = terminate(web);
    terminate(udp);
    down(&run);
    let seen = Seen {
        tcp_rr,
        curl_cluster_ip,
        curl_node_port,
        curl_netns_only,
        udp_reply_from,
        server_exit,
        counters,
    };

    assert_eq!(seen.tcp_rr["status"], "ok", "{}", seen.tcp_rr);
    assert!(seen.tcp_rr["proof"]["socklb_rewrites"].as_i64().unwrap() > 0);
    assert_eq!(seen.tcp_rr["proof"]["iptables_dnat_packets"], 0);
    assert!(
        served,
        "the HTTP server never answered through the cluster IP"
    );
    assert!(
        text(&seen.curl_cluster_ip.stdout).contains("Directory listing"),
        "curl via the cluster IP: {:?}",
        seen.curl_cluster_ip
    );
    assert!(
        text(&seen.curl_node_port.stdout).contains("Directory listing"),
        "curl via node port {node}:30080: {:?}",
        seen.curl_node_port
    );
    assert!(
        !seen.curl_netns_only.status.success(),
        "ip netns exec is outside the lab's cgroup, so the cluster IP must not work"
    );
    assert_eq!(
        seen.udp_reply_from.trim(),
        "10.96.0.53 53",
        "recvmsg4 reverse"
    );
    assert!(
        seen.counters.sendmsg > 0 && seen.counters.recvmsg > 0,
        "{:?}",
        seen.counters
    );
    assert!(
        seen.counters.getpeername > 0,
        "curl asks getpeername: {:?}",
        seen.counters
    );
    assert_eq!(
        seen.server_exit,
        Some(128 + 15),
        "SIGTERM relayed, 128+signal"
    );
    assert!(!lab_cgroup(&run).exists(), "cgroups left");
    assert!(!pins(&run).exists(), "pins left");
    assert_eq!(root_snapshot(), before);
}

#[test]
fn socket_lb_on_veth_routed() {
    socket_lb("veth-routed");
}

#[test]
fn socket_lb_on_bridge() {
    socket_lb("bridge");
}

#[test]
fn socket_lb_on_macvlan() {
    socket_lb("macvlan");
}

#[test]
fn exec_passes_exit_status_and_refuses_bad_input() {
    if !privileged("dplab exec") {
        return;
    }
    let run = up(BLOG, "bridge").expect("up");
    let status = exec(&run, "pod-b", &["sh", "-c", "exit 7"]).status.code();
    let killed = exec(&run, "pod-b", &["sh", "-c", "kill -9 $$"])
        .status
        .code();
    let missing = exec(&run, "pod-b", &["no-such-program-dplab"])
        .status
        .code();
    let unknown_pod = exec(&run, "pod-z", &["true"]).status.code();
    let netns = text(&exec(&run, "pod-b", &["ip", "-o", "addr"]).stdout);
    down(&run);
    let bad_run = exec("ffff", "pod-b", &["true"]).status.code();
    assert_eq!(status, Some(7));
    assert_eq!(killed, Some(128 + 9));
    assert_eq!(missing, Some(127));
    assert_eq!(unknown_pod, Some(2));
    assert_eq!(bad_run, Some(2));
    assert!(netns.contains("192.168.10.11"), "runs in pod-b: {netns}");
}

/// Starts `dplab run` of the socket-lb lab in the background and waits
/// until dplab itself sits in pod-b's cgroup (a sample is being measured).
fn run_until_measuring(out: &Path) -> (Child, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_dplab"))
        .args([
            "run",
            BLOG,
            "--only",
            "veth-routed",
            "--proxies",
            "socket-lb",
            "--duration",
            "20s",
            "--repetitions",
            "1",
            "--out",
        ])
        .arg(out)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dplab run starts");
    let run = wait_for_run_of(child.id(), 20).expect("the run built its lab");
    let procs = lab_cgroup(&run).join("pod-b/cgroup.procs");
    let pid = child.id().to_string();
    assert!(
        eventually(|| std::fs::read_to_string(&procs).is_ok_and(|p| p.lines().any(|l| l == pid))),
        "dplab never joined pod-b's cgroup"
    );
    (child, run)
}

#[test]
fn cleanup_after_sigkill_mid_sample_removes_cgroups_and_pins() {
    if !privileged("socket-lb sigkill") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let (mut child, run) = run_until_measuring(out.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lab_cgroup(&run).exists(), "SIGKILL cannot tear down");
    let said = text(&dplab(&["cleanup"]).stdout);
    assert!(
        said.contains(&format!("removed cgroup {}", lab_cgroup(&run).display())),
        "{said}"
    );
    assert!(!lab_cgroup(&run).exists());
    assert!(!pins(&run).exists());
    assert!(namespaces_of(&run).is_empty());
}

#[test]
fn ctrl_c_mid_sample_returns_dplab_and_removes_its_cgroups() {
    if !privileged("socket-lb ctrl-c") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let (mut child, run) = run_until_measuring(out.path());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(!lab_cgroup(&run).exists(), "cgroups left");
    assert!(!pins(&run).exists());
    assert!(namespaces_of(&run).is_empty());
}
