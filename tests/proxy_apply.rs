//! Privileged tests of every proxy's `apply` on a running lab, as
//! kube-proxy syncs: a service added later is reachable at once, a backend
//! removed from a service gets no new connection, and connections spread
//! at random over the backends (nftables' numgen cascade, iptables'
//! statistic rules, the eBPF and socket-lb backend slots).

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::testlab::TestLab;
use common::*;
use dplab::datapath::LabNet;
use dplab::kinds::{Datapath, ProxyKind};
use dplab::lab::Lab;
use dplab::names::RunId;
use dplab::netns::NsCommand;
use dplab::service::ServiceChange;
use dplab::topology::{Plan, ServicePlan};

const TOPOLOGY: &str = r#"
name = "socklb-apply"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"
[[pods]]
name = "pod-b"
node = "node1"
address = "192.168.10.11"
[[pods]]
name = "pod-c"
node = "node1"
address = "192.168.10.12"
[[services]]
name = "web"
cluster_ip = "10.96.0.80"
port = 80
target_port = 8080
backends = ["pod-a", "pod-c"]
"#;

/// Runs `program args` in a pod as `dplab exec` would: its namespace and,
/// where the proxy gave pods one (socket-lb), its cgroup.
fn in_pod(run: &RunId, pod: &str, program: &str, args: &[&str]) -> NsCommand {
    let ns = run.netns(pod);
    let mut cmd = dplab::netns::command_in(&ns, program).unwrap();
    cmd.args(args);
    if let Some(dir) = dplab::cgroup::of_netns(&ns) {
        dplab::cgroup::join::join_on_exec(&mut cmd, &dir).unwrap();
    }
    cmd
}

/// An HTTP server in `pod` whose file `who` says the pod's name.
fn serve(run: &RunId, pod: &str, root: &Path) -> Child {
    let dir = root.join(pod);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("who"), pod).unwrap();
    let mut cmd = in_pod(
        run,
        pod,
        "python3",
        &[
            "-m",
            "http.server",
            "8080",
            "--bind",
            "0.0.0.0",
            "--directory",
        ],
    );
    cmd.arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Who answered `url` from pod-b ("" if nobody did).
fn who(run: &RunId, url: &str) -> String {
    let out = in_pod(run, "pod-b", "curl", &["-s", "--max-time", "2", url])
        .output()
        .unwrap();
    text(&out.stdout)
}

fn answers(run: &RunId, url: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| who(run, url)).collect()
}

#[test]
fn socket_lb_applies_changes_in_place() {
    applies_changes_in_place(ProxyKind::SocketLb);
}

#[test]
fn nftables_applies_changes_in_place() {
    applies_changes_in_place(ProxyKind::Nftables);
}

#[test]
fn iptables_applies_changes_in_place() {
    applies_changes_in_place(ProxyKind::Iptables);
}

#[test]
fn ebpf_applies_changes_in_place() {
    applies_changes_in_place(ProxyKind::Ebpf);
}

/// A service added later is reachable at once, a removed endpoint gets no
/// new connection, and connections spread over both endpoints.
fn applies_changes_in_place(proxy: ProxyKind) {
    if !privileged(&format!("{proxy:?} apply")) {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let files = tempfile::tempdir().unwrap();
        let mut lab = TestLab::up(TOPOLOGY, Datapath::VethRouted, proxy)
            .await
            .expect("lab");
        let run = lab.run.clone();
        let mut servers = vec![
            serve(&run, "pod-a", files.path()),
            serve(&run, "pod-c", files.path()),
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        while answers(&run, "http://10.96.0.80/who", 4)
            .iter()
            .any(String::is_empty)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let spread = answers(&run, "http://10.96.0.80/who", 24);
        let before_add = who(&run, "http://10.96.0.81:8081/who");

        let added = ServicePlan {
            name: "web2".into(),
            cluster_ip: "10.96.0.81".parse().unwrap(),
            port: 8081,
            target_port: 8080,
            protocol: dplab::topology::Protocol::Tcp,
            node_port: None,
            backends: vec![0],
        };
        let mut changed: Plan = lab.plan.clone();
        changed.services.push(added.clone());
        apply(&mut lab, &changed, ServiceChange::AddService(added));
        let after_add = who(&run, "http://10.96.0.81:8081/who");

        changed.services[0].backends = vec![2];
        apply(
            &mut lab,
            &changed,
            ServiceChange::RemoveEndpoint { service: 0, pod: 0 },
        );
        let after_remove = answers(&run, "http://10.96.0.80/who", 12);

        for server in &mut servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        lab.down();

        assert!(spread.contains(&"pod-a".to_string()), "{spread:?}");
        assert!(spread.contains(&"pod-c".to_string()), "{spread:?}");
        assert_eq!(before_add, "", "10.96.0.81 is not a service yet");
        assert_eq!(after_add, "pod-a", "the added service answers at once");
        assert!(
            after_remove.iter().all(|w| w == "pod-c"),
            "{after_remove:?}"
        );
    });
}

fn apply(lab: &mut Lab, plan: &Plan, change: ServiceChange) {
    let net = LabNet::open(&lab.run, plan, &lab.ledger).unwrap();
    lab.proxy.apply(&net, lab.datapath, &change).unwrap();
}
