//! Privileged end-to-end tests of the lab lifecycle: every datapath the
//! kernel has comes up, carries pings both ways and to its gateway, and goes
//! down leaving the root namespace byte-identical.

mod common;

use common::*;

/// Builds the blog lab with `datapath`, pings, tears down, compares the
/// root namespace. Datapaths the kernel lacks skip with the reason.
fn lifecycle(datapath: &str, gateway: &str) {
    if !privileged(datapath) {
        return;
    }
    let before = root_snapshot();
    let run = match up(BLOG, datapath) {
        Ok(run) => run,
        Err(stderr) => {
            let Some(reason) = unsupported_reason(&stderr) else {
                panic!("up {datapath} failed: {stderr}");
            };
            skip(datapath, &[datapath], &reason);
            assert_eq!(
                root_snapshot(),
                before,
                "a skipped datapath changed the root namespace"
            );
            return;
        }
    };
    let a = format!("dl{run}-pod-a");
    let b = format!("dl{run}-pod-b");
    let pings = [
        (b.as_str(), "192.168.10.10"),
        (a.as_str(), "192.168.10.11"),
        (b.as_str(), gateway),
    ];
    let failed: Vec<String> = pings
        .iter()
        .filter(|(ns, addr)| !ping(ns, addr))
        .map(|(ns, addr)| format!("{ns} -> {addr}"))
        .collect();
    down(&run);
    assert!(failed.is_empty(), "{datapath}: pings failed: {failed:?}");
    assert_eq!(
        root_snapshot(),
        before,
        "{datapath} changed the root namespace"
    );
}

#[test]
fn veth_routed() {
    lifecycle("veth-routed", "169.254.10.24");
}

#[test]
fn bridge() {
    lifecycle("bridge", "192.168.10.1");
}

#[test]
fn bridge_nf_off() {
    lifecycle("bridge-nf-off", "192.168.10.1");
}

#[test]
fn macvlan() {
    lifecycle("macvlan", "192.168.10.1");
}

#[test]
fn ipvlan_l2() {
    lifecycle("ipvlan-l2", "192.168.10.1");
}

#[test]
fn ipvlan_l3() {
    lifecycle("ipvlan-l3", "192.168.10.1");
}

#[test]
fn ipvlan_ebpf() {
    lifecycle("ipvlan-ebpf", "192.168.10.1");
}

#[test]
fn veth_ebpf() {
    lifecycle("veth-ebpf", "169.254.10.24");
}

#[test]
fn netkit() {
    lifecycle("netkit", "169.254.10.24");
}

#[test]
fn netkit_ebpf() {
    lifecycle("netkit-ebpf", "169.254.10.24");
}

#[test]
fn a_failure_half_way_leaves_nothing() {
    if !privileged("fault injection") {
        return;
    }
    let before = root_snapshot();
    let out = dplab_env(
        &["up", BLOG, "--datapath", "bridge"],
        "DPLAB_INJECT_FAULT",
        "after-wiring",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("fault injected"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).trim().is_empty(),
        "no run id may be printed"
    );
    assert_eq!(root_snapshot(), before);
    // The run id is not printed, so look for any namespace of that topology
    // that is not owned by another concurrently running test.
    let leftovers: Vec<String> = all_dplab_objects()
        .into_iter()
        .filter(|n| n.ends_with("-node1") || n.ends_with("-pod-a") || n.ends_with("-pod-b"))
        .filter(|n| {
            let run = &n[2..6];
            !std::path::Path::new("/run/dplab").join(run).exists()
        })
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn bad_topology_exits_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text_in = std::fs::read_to_string(root().join(BLOG))
        .unwrap()
        .replace("backends = [\"pod-a\"]", "backends = [\"pod-z\"]");
    std::fs::write(&path, text_in).unwrap();
    let before = all_dplab_objects();
    let out = dplab(&["up", path.to_str().unwrap(), "--datapath", "bridge"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml:27: services[0].backends: unknown pod \"pod-z\""),
        "{stderr}"
    );
    assert_eq!(all_dplab_objects(), before);
    let out = dplab(&["up", common::BLOG, "--datapath", "vethrouted"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown datapath"));
}

#[test]
fn iptables_rules_live_in_the_node_namespace_and_count_packets() {
    if !privileged("iptables proxy") {
        return;
    }
    let before = root_snapshot();
    let run = up(BLOG, "veth-routed").expect("up");
    let node = format!("dl{run}-node1");
    let saved = text(&in_netns(&node, &["iptables-save", "-t", "nat"]).stdout);
    assert!(saved.contains(":DPLAB-SERVICES"), "{saved}");
    assert!(saved.contains(
        "-A PREROUTING -m comment --comment \"dplab service portals\" -j DPLAB-SERVICES"
    ));
    assert!(saved.contains("-j DNAT --to-destination 192.168.10.10:5201"));
    assert!(!text(
        &std::process::Command::new("iptables-save")
            .output()
            .unwrap()
            .stdout
    )
    .contains("DPLAB"));
    // One TCP connection to the cluster IP moves the DNAT counter.
    let listener = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("dl{run}-pod-a"),
            "iperf3",
            "-s",
            "-1",
        ])
        .stdout(std::process::Stdio::null())
        .spawn();
    let moved = match listener {
        Ok(mut server) => {
            std::thread::sleep(std::time::Duration::from_millis(300));
            let client = in_netns(
                &format!("dl{run}-pod-b"),
                &[
                    "iperf3",
                    "-c",
                    "10.96.0.100",
                    "-t",
                    "1",
                    "--connect-timeout",
                    "2000",
                ],
            );
            let _ = server.kill();
            let _ = server.wait();
            let counters = text(&in_netns(&node, &["iptables-save", "-c", "-t", "nat"]).stdout);
            client.status.success()
                && counters
                    .lines()
                    .any(|l| l.contains("-j DNAT") && !l.starts_with("[0:0]"))
        }
        Err(e) => panic!("iperf3 is needed for this test: {e}"),
    };
    down(&run);
    assert!(moved, "no packet went through the DNAT rule");
    assert_eq!(root_snapshot(), before);
}

#[test]
fn two_labs_at_once_do_not_disturb_each_other() {
    if !privileged("two labs") {
        return;
    }
    let first = std::thread::spawn(|| up(BLOG, "veth-routed"));
    let second = up(BLOG, "bridge").expect("second lab");
    let first = first.join().unwrap().expect("first lab");
    assert_ne!(first, second);
    assert!(ping(&format!("dl{first}-pod-b"), "192.168.10.10"));
    assert!(ping(&format!("dl{second}-pod-b"), "192.168.10.10"));
    down(&first);
    assert!(
        ping(&format!("dl{second}-pod-b"), "192.168.10.10"),
        "downing one lab broke the other"
    );
    down(&second);
}

#[test]
fn cleanup_keeps_labs_left_running_by_up() {
    if !privileged("cleanup keeps up labs") {
        return;
    }
    let run = up(BLOG, "macvlan").expect("up");
    let out = dplab(&["cleanup"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(said.contains(&format!("kept lab {run}")), "{said}");
    assert!(
        ping(&format!("dl{run}-pod-b"), "192.168.10.10"),
        "cleanup disturbed a running lab"
    );
    down(&run);
}

#[test]
fn ctrl_c_during_a_run_tears_the_lab_down() {
    if !privileged("ctrl-c") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut child = spawn_long_run(out.path());
    let run = wait_for_run_of(child.id(), 20).expect("the run built its lab");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted runs exit 128+SIGINT");
    assert!(
        namespaces_of(&run).is_empty(),
        "left: {:?}",
        namespaces_of(&run)
    );
    assert!(!std::path::Path::new("/run/dplab").join(&run).exists());
}

#[test]
fn cleanup_after_sigkill_removes_everything() {
    if !privileged("sigkill") {
        return;
    }
    let before = root_snapshot();
    let out = tempfile::tempdir().unwrap();
    let mut child = spawn_long_run(out.path());
    let run = wait_for_run_of(child.id(), 20).expect("the run built its lab");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !namespaces_of(&run).is_empty(),
        "SIGKILL cannot tear down; the lab must still be there"
    );
    let said = text(&dplab(&["cleanup"]).stdout);
    assert!(
        said.contains(&format!("removed netns dl{run}-pod-a")),
        "{said}"
    );
    assert!(namespaces_of(&run).is_empty());
    assert!(!std::path::Path::new("/run/dplab").join(&run).exists());
    assert_eq!(root_snapshot(), before);
}
