//! End to end: the veth-ebpf programs between two pods of one node.
//!
//! The pods are wired by the real veth-routed datapath (`Lab::up` through
//! tests/common's `TestLab`): each pod has a veth whose host end sits in
//! the node (proxy ARP, /32 route to the pod) and whose pod end is eth0 (a
//! /32 address, default route via a link-local gateway on-link), as Calico
//! wires pods. The test loads its own programs under a prefix of its own
//! and runs `veth_ingress` on both host ends; service 10.96.0.100:5201 ->
//! pod a:5201 lives in those programs' maps only (the lab has no service).
//!
//! `cargo test --test ebpf_veth` runs the functional test (root needed).
//! Throughput, by hand:
//! `cargo test --release --test ebpf_veth -- --ignored --nocapture`
//! (env DPLAB_BENCH_SECS, DPLAB_BENCH_ROUNDS, DPLAB_BENCH_TOOL=iperf3)

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::skip;
use common::testlab::TestLab;
use dplab::datapath::LabNet;
use dplab::ebpf::{self, Endpoint, Proto, RedirectMode, ServiceLb, ServiceSpec, TcAttachMode};
use dplab::kinds::{Datapath, ProxyKind};
use dplab::netns;

const POD_A: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 10);
const POD_B: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 11);
const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 100);
const PORT: u16 = 5201;

/// Pod "a" is POD_A, pod "b" POD_B; no service (the test's programs have
/// it).
const TOPOLOGY: &str = r#"
name = "ebpf-veth"
[[nodes]]
name = "node"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "a"
node = "node"
address = "192.168.10.10"
[[pods]]
name = "b"
node = "node"
address = "192.168.10.11"
"#;

// ---- the lab ------------------------------------------------------------

/// A veth-routed lab and the test's own programs on it; unpins them and
/// tears the lab down when dropped, so a failing test leaves nothing
/// behind.
struct Lab {
    /// The test's programs, pinned under `prefix`.
    lb: Option<ServiceLb>,
    prefix: String,
    /// Host veth of pod "a" and of pod "b", in the node.
    hosts: [String; 2],
    lab: Option<TestLab>,
}

impl Lab {
    fn node(&self) -> String {
        self.test_lab().run.netns("node")
    }
    fn pod(&self, name: &str) -> String {
        self.test_lab().run.netns(name)
    }
    fn host_if(&self, name: &str) -> String {
        self.hosts[if name == "a" { 0 } else { 1 }].clone()
    }
    fn test_lab(&self) -> &TestLab {
        self.lab.as_ref().expect("lab up")
    }

    /// The lab, and `prefix` for the test's programs.
    async fn build(prefix: &str) -> anyhow::Result<Lab> {
        let lab = TestLab::up(TOPOLOGY, Datapath::VethRouted, ProxyKind::Iptables).await?;
        let net = LabNet::open(&lab.run, &lab.plan, &lab.ledger)?;
        let hosts = [net.host_veth(0), net.host_veth(1)];
        drop(net);
        Ok(Lab {
            lb: None,
            prefix: prefix.to_string(),
            hosts,
            lab: Some(lab),
        })
    }

    /// Loads the programs, programs the service and endpoints, attaches
    /// `veth_ingress` to both host ends.
    fn attach_ebpf(&mut self) -> anyhow::Result<()> {
        self.attach_ebpf_with(None)
    }

    /// Like [`Lab::attach_ebpf`], in tc attach `mode` if given.
    fn attach_ebpf_with(&mut self, mode: Option<TcAttachMode>) -> anyhow::Result<()> {
        let mut lb = ServiceLb::load(&self.prefix)?;
        if let Some(mode) = mode {
            lb.set_tc_attach_mode(mode);
        }
        lb.program_services(&[ServiceSpec {
            cluster_ip: CLUSTER_IP,
            port: PORT,
            proto: Proto::Tcp,
            node_port: None,
            backends: vec![(POD_A, PORT)],
        }])?;
        self.lb = Some(lb);
        self.set_endpoints(true)?;
        self.attach_links()
    }

    /// Endpoints with MACs (frames rewritten to the pod's addresses) or
    /// without (redirect_peer alone).
    fn set_endpoints(&mut self, with_macs: bool) -> anyhow::Result<()> {
        self.set_endpoints_mode(with_macs, RedirectMode::Peer)
    }

    fn set_endpoints_mode(&mut self, with_macs: bool, mode: RedirectMode) -> anyhow::Result<()> {
        for (name, ip) in [("a", POD_A), ("b", POD_B)] {
            let mut ep = Endpoint::discover(
                &self.node(),
                &self.host_if(name),
                &self.pod(name),
                "eth0",
                mode,
            )?;
            if !with_macs {
                ep = Endpoint::peer(ep.ifindex);
            }
            self.lb
                .as_mut()
                .expect("eBPF loaded")
                .set_endpoint(ip, ep)?;
        }
        Ok(())
    }

    fn attach_links(&mut self) -> anyhow::Result<()> {
        let node = self.node();
        let hosts = self.hosts.clone();
        let lb = self.lb.as_mut().expect("eBPF loaded");
        for host in &hosts {
            lb.attach_veth_ingress(&node, host)?;
        }
        Ok(())
    }

    fn lb(&self) -> &ServiceLb {
        self.lb.as_ref().expect("eBPF attached")
    }

    /// Detaches and unpins the test's programs, reporting failures; tears
    /// the lab down (which asserts its report is clean). Returns the prefix
    /// of the run whose namespaces must be gone.
    fn teardown(mut self) -> (Vec<String>, String) {
        let mut errors = Vec::new();
        if let Some(lb) = self.lb.take() {
            if let Err(e) = lb.teardown() {
                errors.push(e.to_string());
            }
        }
        let lab = self.lab.take().expect("lab up");
        let run = lab.run.prefix();
        lab.down();
        (errors, run)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.lb.take());
        let _ = ebpf::remove_pins(&self.prefix);
        // Then `lab` drops: TestLab tears the lab down.
    }
}

/// Turns TX checksum offload of `ifname` in `ns` on or off (ETHTOOL_STXCSUM).
/// Off, the sender writes complete checksums and the receiving pod verifies
/// them in software: a wrong NAT checksum fix then loses the data.
fn set_tx_checksum(ns: &str, ifname: &str, on: bool) -> anyhow::Result<()> {
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    const ETHTOOL_STXCSUM: u32 = 0x17;
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    let name = ifname.to_string();
    netns::run_in(ns, move || -> std::io::Result<()> {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let mut value = EthtoolValue {
            cmd: ETHTOOL_STXCSUM,
            data: u32::from(on),
        };
        // SAFETY: ifreq is plain data; zeroed is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, b) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
            *d = *b as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        // SAFETY: SIOCETHTOOL reads the ethtool_value that ifr_data points
        // to, which lives until the call returns.
        if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    })??;
    Ok(())
}

// ---- traffic --------------------------------------------------------------

/// One request/response exchange: the client in pod b sends `up` bytes to
/// `target`, the server in pod a answers with `down` bytes. Returns the
/// address the server saw the client connect from.
fn exchange(lab: &Lab, target: Ipv4Addr, up: usize, down: usize) -> anyhow::Result<SocketAddr> {
    let listener = netns::run_in(&lab.pod("a"), || {
        TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT))
    })??;
    let server = std::thread::spawn(move || -> std::io::Result<SocketAddr> {
        let (mut conn, peer) = listener.accept()?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut got = vec![0u8; up];
        conn.read_exact(&mut got)?;
        if got.iter().enumerate().any(|(i, b)| *b != (i % 251) as u8) {
            return Err(std::io::Error::other("server received corrupted data"));
        }
        let reply: Vec<u8> = (0..down).map(|i| (i % 241) as u8).collect();
        conn.write_all(&reply)?;
        Ok(peer)
    });
    let client = netns::run_in(&lab.pod("b"), || {
        TcpStream::connect_timeout(
            &SocketAddrV4::new(target, PORT).into(),
            Duration::from_secs(5),
        )
    })??;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    assert_eq!(
        client.peer_addr()?,
        SocketAddr::from((target, PORT)),
        "the client talks to the address it dialled"
    );
    let mut client = client;
    let data: Vec<u8> = (0..up).map(|i| (i % 251) as u8).collect();
    client.write_all(&data)?;
    let mut back = vec![0u8; down];
    client.read_exact(&mut back)?;
    anyhow::ensure!(
        back.iter().enumerate().all(|(i, b)| *b == (i % 241) as u8),
        "client received corrupted data"
    );
    let peer = server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    Ok(peer)
}

/// Bulk TCP from pod b to `target` for `secs`; returns Gbit/s.
fn bulk_gbps(lab: &Lab, target: Ipv4Addr, secs: f64) -> anyhow::Result<f64> {
    let listener = netns::run_in(&lab.pod("a"), || {
        TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT))
    })??;
    let server = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            match conn.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let mut client = netns::run_in(&lab.pod("b"), || {
        TcpStream::connect_timeout(
            &SocketAddrV4::new(target, PORT).into(),
            Duration::from_secs(5),
        )
    })??;
    let buf = vec![0x5au8; 128 * 1024];
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        client.write_all(&buf)?;
    }
    client.shutdown(std::net::Shutdown::Write)?;
    let total = server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(total as f64 * 8.0 / elapsed / 1e9)
}

/// Same measurement with iperf3 (server in pod a, one-off; client in pod b).
fn iperf3_gbps(lab: &Lab, target: Ipv4Addr, secs: f64) -> anyhow::Result<f64> {
    let mut server = netns::command_in(&lab.pod("a"), "iperf3")?;
    server
        .args(["-s", "-1", "-p", &PORT.to_string()])
        .stdout(std::process::Stdio::null());
    let mut server = server.spawn()?;
    let result = (|| {
        // iperf3 needs a moment to listen; the client retries.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut client = netns::command_in(&lab.pod("b"), "iperf3")?;
            client.args([
                "-c",
                &target.to_string(),
                "-p",
                &PORT.to_string(),
                "-t",
                &secs.to_string(),
                "-J",
            ]);
            let out = client.output()?;
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            if let Some(bps) = json["end"]["sum_received"]["bits_per_second"].as_f64() {
                return Ok(bps / 1e9);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "iperf3 client failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })();
    if result.is_err() {
        let _ = server.kill();
    }
    let _ = server.wait();
    result
}

// ---- bpftool --------------------------------------------------------------

/// Ids of all loaded BPF programs, from `bpftool prog show --json`.
fn bpftool_prog_ids() -> anyhow::Result<Vec<u64>> {
    let out = std::process::Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()?;
    anyhow::ensure!(out.status.success(), "bpftool prog show failed");
    let progs: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(progs
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["id"].as_u64()).collect())
        .unwrap_or_default())
}

// ---- tests ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veth_ebpf_service_and_pod_traffic_then_clean_teardown() {
    if !skip::ebpf("veth-ebpf end to end") {
        return;
    }
    let prefix = "dlte";
    // The listing checks below cannot be left out quietly.
    bpftool_prog_ids().expect("bpftool lists programs (scripts/install-deps.sh installs it)");
    let mut lab = Lab::build(prefix).await.expect("build lab");

    // The plain routed path works before any program is attached.
    let peer = exchange(&lab, POD_A, 1000, 1000).expect("pod-ip before eBPF");
    assert_eq!(peer.ip(), POD_B);

    lab.attach_ebpf().expect("attach eBPF");
    let our_ids: Vec<u64> = lab
        .lb()
        .program_ids()
        .unwrap()
        .into_iter()
        .map(u64::from)
        .collect();
    let listed = bpftool_prog_ids().unwrap();
    for id in &our_ids {
        assert!(listed.contains(id), "bpftool lists program {id}");
    }

    // Cluster IP: 1 MB each way, through DNAT, reverse NAT and redirect_peer.
    let before = lab.lb().counters().unwrap();
    let peer = exchange(&lab, CLUSTER_IP, 1 << 20, 1 << 20).expect("cluster-ip with eBPF");
    assert_eq!(peer.ip(), POD_B, "the backend sees the real client");
    let d = lab.lb().counters().unwrap().delta(&before);
    println!("cluster-ip exchange counters: {d:?}");
    assert!(d.dnat > 0, "dnat moved: {d:?}");
    assert!(d.rev_nat > 0, "rev_nat moved: {d:?}");
    assert!(d.redirected >= d.dnat + d.rev_nat, "all redirected: {d:?}");
    assert_eq!(d.dropped, 0);

    // Again with complete checksums written by the senders and verified by
    // the receivers in software: proves the NAT checksum updates.
    for pod in ["a", "b"] {
        set_tx_checksum(&lab.pod(pod), "eth0", false).expect("tx checksum off");
    }
    let before = lab.lb().counters().unwrap();
    exchange(&lab, CLUSTER_IP, 1 << 20, 1 << 20).expect("cluster-ip, software checksums");
    let d = lab.lb().counters().unwrap().delta(&before);
    assert!(d.dnat > 0 && d.rev_nat > 0, "{d:?}");

    // Pod IP: redirected, no NAT.
    let before = lab.lb().counters().unwrap();
    exchange(&lab, POD_A, 1 << 16, 1 << 16).expect("pod-ip with eBPF");
    let d = lab.lb().counters().unwrap().delta(&before);
    println!("pod-ip exchange counters: {d:?}");
    assert!(d.redirected > 0 && d.dnat == 0 && d.rev_nat == 0, "{d:?}");

    // The fallback: plain bpf_redirect to the destination's host veth.
    lab.set_endpoints_mode(true, RedirectMode::Plain)
        .expect("plain redirect endpoints");
    let before = lab.lb().counters().unwrap();
    exchange(&lab, CLUSTER_IP, 1 << 18, 1 << 18).expect("cluster-ip, plain redirect");
    let d = lab.lb().counters().unwrap().delta(&before);
    assert!(d.redirected > 0 && d.dnat > 0 && d.rev_nat > 0, "{d:?}");

    let pin_dir = ebpf::pin_dir(prefix).unwrap();
    assert!(pin_dir.join("links").read_dir().unwrap().count() == 2);
    let (errors, run) = lab.teardown();
    assert!(errors.is_empty(), "teardown: {errors:?}");

    assert!(
        netns::list_with_prefix(&run).is_empty(),
        "namespaces left: {:?}",
        netns::list_with_prefix(&run)
    );
    assert!(!pin_dir.exists(), "pin folder left: {}", pin_dir.display());
    // Programs are freed after an RCU grace period.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = bpftool_prog_ids().unwrap();
        let left: Vec<&u64> = our_ids.iter().filter(|id| listed.contains(id)).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "programs still loaded: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The netlink fallback of kernels without TCX (a clsact qdisc and a
/// cls_bpf filter per host veth), forced on this kernel: the same programs
/// carry the same traffic with the same counters, and detaching removes the
/// qdiscs, leaving the node namespace as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netlink_attach_carries_traffic_and_leaves_no_qdisc() {
    if !skip::ebpf("veth-ebpf by netlink") {
        return;
    }
    let prefix = "dltn";
    let mut lab = Lab::build(prefix).await.expect("build lab");
    let hosts = lab.hosts.clone();
    for host in &hosts {
        assert!(!ebpf::has_clsact(&lab.node(), host).unwrap());
    }
    lab.attach_ebpf_with(Some(TcAttachMode::Netlink))
        .expect("attach by netlink");
    assert_eq!(lab.lb().attach_kinds().as_deref(), Some("netlink"));
    assert_eq!(
        lab.lb().tc_attach_mode().map(|(m, _)| m),
        Some(TcAttachMode::Netlink)
    );
    for host in &hosts {
        assert!(ebpf::has_clsact(&lab.node(), host).unwrap(), "{host}");
    }
    let links = ebpf::pin_dir(prefix).unwrap().join("links");
    assert_eq!(links.read_dir().unwrap().count(), 0, "no TCX link pinned");

    let before = lab.lb().counters().unwrap();
    let peer = exchange(&lab, CLUSTER_IP, 1 << 20, 1 << 20).expect("cluster-ip by netlink");
    assert_eq!(peer.ip(), POD_B);
    let d = lab.lb().counters().unwrap().delta(&before);
    assert!(d.dnat > 0 && d.rev_nat > 0, "{d:?}");
    assert!(d.redirected >= d.dnat + d.rev_nat, "{d:?}");
    let before = lab.lb().counters().unwrap();
    exchange(&lab, POD_A, 1 << 16, 1 << 16).expect("pod-ip by netlink");
    let d = lab.lb().counters().unwrap().delta(&before);
    assert!(d.redirected > 0 && d.dnat == 0, "{d:?}");

    lab.lb.take().unwrap().teardown().expect("detach");
    for host in &hosts {
        assert!(
            !ebpf::has_clsact(&lab.node(), host).unwrap(),
            "clsact left on {host}"
        );
    }
    let (errors, _) = lab.teardown();
    assert!(errors.is_empty(), "teardown: {errors:?}");
    assert!(!ebpf::pin_dir(prefix).unwrap().exists());
}

/// The ipvlan-ebpf programs (DNAT at the pod's egress, reverse NAT at its
/// ingress, inside the pod namespace), tried on the veth pods of this lab
/// since ipvlan is missing here: service traffic is routed by the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_programs_translate_services_inside_the_pod() {
    if !skip::ebpf("pod programs end to end") {
        return;
    }
    let prefix = "dltp";
    let mut lab = Lab::build(prefix).await.expect("build lab");
    let mut lb = ServiceLb::load(prefix).expect("load");
    lb.program_services(&[ServiceSpec {
        cluster_ip: CLUSTER_IP,
        port: PORT,
        proto: Proto::Tcp,
        node_port: None,
        backends: vec![(POD_A, PORT)],
    }])
    .unwrap();
    for pod in ["a", "b"] {
        lb.attach_pod(&lab.pod(pod), "eth0")
            .expect("attach pod programs");
        set_tx_checksum(&lab.pod(pod), "eth0", false).expect("tx checksum off");
    }
    assert_eq!(lb.attachments().len(), 4);
    lab.lb = Some(lb);

    let before = lab.lb().counters().unwrap();
    let peer = exchange(&lab, CLUSTER_IP, 1 << 20, 1 << 20).expect("cluster-ip via pod programs");
    assert_eq!(peer.ip(), POD_B);
    let d = lab.lb().counters().unwrap().delta(&before);
    println!("pod programs counters: {d:?}");
    assert!(d.dnat > 0 && d.rev_nat > 0, "{d:?}");
    assert_eq!((d.redirected, d.dropped), (0, 0), "{d:?}");

    let (errors, run) = lab.teardown();
    assert!(errors.is_empty(), "teardown: {errors:?}");
    assert!(netns::list_with_prefix(&run).is_empty());
    assert!(!ebpf::pin_dir(prefix).unwrap().exists());
}

/// By hand: TCP bulk throughput pod b -> pod a, plain routed veth vs the
/// eBPF redirect path (pod IP and cluster IP). Prints, asserts nothing
/// about speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand with --ignored --nocapture (release build)"]
async fn measure_veth_ebpf_throughput() {
    if !skip::ebpf("veth-ebpf throughput") {
        return;
    }
    let secs: f64 = std::env::var("DPLAB_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let rounds: usize = std::env::var("DPLAB_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let iperf3 = std::env::var("DPLAB_BENCH_TOOL").is_ok_and(|t| t == "iperf3");
    let measure = |lab: &Lab, target| {
        if iperf3 {
            iperf3_gbps(lab, target, secs)
        } else {
            bulk_gbps(lab, target, secs)
        }
    };
    let mut lab = Lab::build("dltm").await.expect("build lab");
    lab.attach_ebpf().expect("attach eBPF");
    let (mut routed, mut pod_ip, mut cluster_ip) = (Vec::new(), Vec::new(), Vec::new());
    let mut pod_ip_no_mac = Vec::new();
    // Interleaved rounds, so load from other processes hits all alike.
    for _ in 0..rounds {
        lab.lb.as_mut().unwrap().detach_all().unwrap();
        routed.push(measure(&lab, POD_A).unwrap());
        lab.attach_links().unwrap();
        lab.set_endpoints(true).unwrap();
        pod_ip.push(measure(&lab, POD_A).unwrap());
        cluster_ip.push(measure(&lab, CLUSTER_IP).unwrap());
        lab.set_endpoints(false).unwrap();
        pod_ip_no_mac.push(measure(&lab, POD_A).unwrap());
    }
    let counters = lab.lb().counters().unwrap();
    // Ratios within a round cancel some of the load other processes add.
    let ratio = |a: &[f64], b: &[f64]| {
        let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
        r.sort_by(|a, b| a.partial_cmp(b).unwrap());
        r[r.len() / 2]
    };
    println!(
        "per-round median ratios: ebpf pod-ip/routed {:.3}, cluster-ip/pod-ip {:.3}, no-MAC pod-ip/routed {:.3}",
        ratio(&pod_ip, &routed),
        ratio(&cluster_ip, &pod_ip),
        ratio(&pod_ip_no_mac, &routed)
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (r, p, c, n) = (
        median(&mut routed),
        median(&mut pod_ip),
        median(&mut cluster_ip),
        median(&mut pod_ip_no_mac),
    );
    let tool = if iperf3 { "iperf3" } else { "builtin" };
    println!("TCP bulk pod-b -> pod-a ({tool}), {secs} s x {rounds}, median Gbit/s:");
    println!("  veth-routed pod-ip      {r:6.2}  samples {routed:.2?}");
    println!(
        "  veth-ebpf   pod-ip      {p:6.2}  samples {pod_ip:.2?}  ratio to routed {:.3}",
        p / r
    );
    println!(
        "  veth-ebpf   cluster-ip  {c:6.2}  samples {cluster_ip:.2?}  ratio to pod-ip {:.3}",
        c / p
    );
    println!(
        "  veth-ebpf   pod-ip, no MAC rewrite {n:6.2}  samples {pod_ip_no_mac:.2?}  ratio to routed {:.3}",
        n / r
    );
    println!("  counters {counters:?}");
    let (errors, _) = lab.teardown();
    assert!(errors.is_empty(), "teardown: {errors:?}");
}
