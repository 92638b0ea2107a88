//! Privileged end-to-end test of every workload between two pods.
//!
//! Its testbed is a veth-routed lab built in process (tests/common's
//! `TestLab`, through the real `Lab::up`): pod a (server, 10.201.1.2) and
//! pod b (client) hang off the node by veth pairs and the node routes
//! between them. Everything lives inside the lab's namespaces, which are
//! deleted at the end even when the test fails.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::skip;
use common::testlab::TestLab;
use dplab::datapath::LabNet;
use dplab::kinds::{Datapath, ProxyKind};
use dplab::netns;
use dplab::workload::{
    check_tool, headline_metric, run_sample, Endpoints, NoPidRecorder, Params, PidRecorder, Sample,
    Tool, Workload,
};
use futures::TryStreamExt;
use rtnetlink::LinkUnspec;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 2);
const PORT: u16 = 5301;

/// Pod "a" serves, pod "b" is the client; no service.
const TOPOLOGY: &str = r#"
name = "workloads"
[[nodes]]
name = "node"
pod_cidr = "10.201.1.0/24"
[[pods]]
name = "a"
node = "node"
address = "10.201.1.2"
[[pods]]
name = "b"
node = "node"
address = "10.201.1.3"
"#;

/// The tests take turns: measurements side by side would disturb each
/// other.
static TESTBED_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lab and the names the tests use; torn down when dropped, also on
/// panic.
struct Testbed {
    node: String,
    server: String,
    client: String,
    /// The node's veth towards the server.
    server_link: String,
    _lab: TestLab,
    _rt: tokio::runtime::Runtime,
    _turn: std::sync::MutexGuard<'static, ()>,
}

fn skip_unless_root() -> bool {
    !skip::root("workload tests")
}

async fn link_index(handle: &rtnetlink::Handle, name: &str) -> u32 {
    handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
        .expect("link get")
        .unwrap_or_else(|| panic!("link {name} exists"))
        .header
        .index
}

fn build_testbed() -> Testbed {
    let turn = TESTBED_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (lab, server_link) = rt.block_on(async {
        let lab = TestLab::up(TOPOLOGY, Datapath::VethRouted, ProxyKind::Iptables)
            .await
            .expect("lab up");
        let net = LabNet::open(&lab.run, &lab.plan, &lab.ledger).expect("lab netlink");
        let server_link = net.host_veth(0);
        drop(net);
        (lab, server_link)
    });
    Testbed {
        node: lab.run.netns("node"),
        server: lab.run.netns("a"),
        client: lab.run.netns("b"),
        server_link,
        _lab: lab,
        _rt: rt,
        _turn: turn,
    }
}

fn endpoints(testbed: &Testbed, target: SocketAddr) -> Endpoints {
    Endpoints {
        client_netns: testbed.client.clone(),
        server_netns: testbed.server.clone(),
        server_port: PORT,
        target,
    }
}

fn short_params() -> Params {
    Params {
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(500),
        ..Params::default()
    }
}

/// Counts journal calls so the test can check that every spawned process is
/// reaped.
#[derive(Default)]
struct CountingRecorder(std::sync::Mutex<(Vec<u32>, Vec<u32>)>);

impl PidRecorder for CountingRecorder {
    fn spawned(&self, pid: u32, _what: &str) {
        self.0.lock().unwrap().0.push(pid);
    }
    fn reaped(&self, pid: u32) {
        self.0.lock().unwrap().1.push(pid);
    }
}

fn positive(s: &Sample, name: &str) -> Result<f64, String> {
    match s.get(name) {
        Some(v) if v > 0.0 && v.is_finite() => Ok(v),
        other => Err(format!("{name} = {other:?}, want > 0")),
    }
}

fn zero(s: &Sample, name: &str) -> Result<(), String> {
    match s.get(name) {
        Some(0.0) => Ok(()),
        other => Err(format!("{name} = {other:?}, want 0 on an idle veth")),
    }
}

fn ordered_percentiles(s: &Sample) -> Result<(), String> {
    let names = [
        "latency_us_p50",
        "latency_us_p90",
        "latency_us_p99",
        "latency_us_max",
    ];
    let values: Vec<f64> = names
        .iter()
        .map(|n| positive(s, n))
        .collect::<Result<_, _>>()?;
    if values.windows(2).all(|w| w[0] <= w[1]) {
        Ok(())
    } else {
        Err(format!("percentiles out of order: {values:?}"))
    }
}

/// What a plausible sample of `w` must contain.
fn check_plausible(w: Workload, tool: Tool, s: &Sample) -> Result<(), String> {
    positive(s, headline_metric(w))?;
    match (w, tool) {
        (Workload::TcpStream, Tool::Builtin) => {
            positive(s, "cpu_client_percent")?;
            positive(s, "cpu_server_percent")?;
            positive(s, "cpu_s_per_gb")?;
            s.get("retransmits").ok_or("retransmits missing")?;
        }
        (Workload::TcpStream, Tool::Iperf3 | Tool::Qperf) => {
            positive(s, "cpu_client_percent")?;
            positive(s, "cpu_server_percent")?;
        }
        (Workload::UdpStream, Tool::Qperf) => {}
        (Workload::UdpStream, _) => {
            s.get("jitter_ms").ok_or("jitter_ms missing")?;
            s.get("loss_percent").ok_or("loss_percent missing")?;
        }
        (Workload::TcpRr | Workload::TcpCrr | Workload::Http, Tool::Builtin) => {
            ordered_percentiles(s)?;
            positive(s, "cpu_client_percent")?;
        }
        (Workload::Ping, _) => {
            zero(s, "loss_percent")?;
            let (min, avg, max) = (
                positive(s, "rtt_min_ms")?,
                positive(s, "rtt_ms")?,
                positive(s, "rtt_max_ms")?,
            );
            if !(min <= avg && avg <= max) {
                return Err(format!("rtt min/avg/max out of order: {min}/{avg}/{max}"));
            }
        }
        _ => {}
    }
    if w == Workload::Http {
        zero(s, "errors")?;
    }
    Ok(())
}

#[test]
fn every_workload_between_two_pods() {
    if skip_unless_root() {
        return;
    }
    let testbed = build_testbed();
    let e = endpoints(&testbed, SocketAddr::new(IpAddr::V4(SERVER_IP), PORT));
    let p = short_params();
    let mut failures = Vec::new();
    let mut runs: Vec<(Workload, Tool)> =
        Workload::ALL.iter().map(|w| (*w, Tool::Builtin)).collect();
    for tool in [Tool::Iperf3, Tool::Qperf, Tool::Ping] {
        for w in Workload::ALL {
            if !tool.supports(w) {
                continue;
            }
            match check_tool(tool, w) {
                Ok(()) => runs.push((w, tool)),
                Err(err) => skip::missing_tool(&format!("{tool} {w}"), &err.to_string()),
            }
        }
    }
    for (w, tool) in runs {
        let recorder = CountingRecorder::default();
        let started = Instant::now();
        let reports = std::sync::atomic::AtomicU32::new(0);
        let positive_reports = std::sync::atomic::AtomicU32::new(0);
        let progress = |rate: f64| {
            reports.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if rate > 0.0 {
                positive_reports.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        };
        let outcome = run_sample(w, tool, &p, &e, &recorder, Some(&progress));
        let took = started.elapsed();
        let (reports, positive_reports) = (reports.into_inner(), positive_reports.into_inner());
        let (spawned, reaped) = recorder.0.lock().unwrap().clone();
        let verdict = match &outcome {
            Ok(s) => check_plausible(w, tool, s)
                .and_then(|()| {
                    // Built-ins report a live rate; the adapters do not.
                    if tool == Tool::Builtin && positive_reports == 0 {
                        Err(format!("no positive progress report ({reports} reports)"))
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| {
                    if spawned.iter().all(|pid| reaped.contains(pid)) {
                        Ok(())
                    } else {
                        Err(format!("spawned {spawned:?} but reaped only {reaped:?}"))
                    }
                }),
            Err(err) => Err(err.to_string()),
        };
        eprintln!("{w} ({tool}) in {took:.2?}: {outcome:?}");
        if let Err(why) = verdict {
            failures.push(format!("{w} ({tool}): {why}"));
        }
    }
    assert!(failures.is_empty(), "failed: {failures:#?}");
}

#[test]
fn broken_path_fails_within_duration_plus_timeout() {
    if skip_unless_root() {
        return;
    }
    let testbed = build_testbed();
    // Nothing routes 10.201.9.9: SYNs and echoes vanish, as behind a broken
    // cluster IP.
    let e = endpoints(
        &testbed,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 201, 9, 9)), 80),
    );
    let p = Params {
        timeout: Duration::from_secs(1),
        ..short_params()
    };
    let limit = p.warmup + p.duration + p.timeout + Duration::from_secs(2);
    for w in Workload::ALL {
        let started = Instant::now();
        let outcome = run_sample(w, Tool::Builtin, &p, &e, &NoPidRecorder, None);
        let took = started.elapsed();
        eprintln!("{w} on a broken path after {took:.2?}: {outcome:?}");
        assert!(outcome.is_err(), "{w} must fail on a broken path");
        assert!(took <= limit, "{w} took {took:?}, limit {limit:?}");
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn metric(w: Workload, tool: Tool, p: &Params, e: &Endpoints, name: &str) -> f64 {
    let s = run_sample(w, tool, p, e, &NoPidRecorder, None)
        .unwrap_or_else(|err| panic!("{w} ({tool}): {err}"));
    s.get(name)
        .unwrap_or_else(|| panic!("{w} ({tool}): no {name} in {s:?}"))
}

/// Runs a load generator against the built-in HTTP server and returns its
/// requests per second, parsed from its output by `parse`.
fn external_http(
    client: &str,
    program: &str,
    args: &[String],
    parse: fn(&str) -> Option<f64>,
) -> Option<f64> {
    let mut cmd = netns::command_in(client, program).ok()?;
    let out = cmd.args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = parse(&text);
    if rate.is_none() {
        eprintln!(
            "{program}: no rate in output:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    rate
}

/// Udp RcvbufErrors of namespace `ns` (/proc/net/snmp shows the namespace
/// of the reading thread).
fn udp_rcvbuf_errors(ns: &str) -> i64 {
    let text = netns::run_in(ns, || std::fs::read_to_string("/proc/thread-self/net/snmp"))
        .unwrap()
        .unwrap();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = udp.next().unwrap().split_whitespace().collect();
    let values: Vec<&str> = udp.next().unwrap().split_whitespace().collect();
    let at = names.iter().position(|n| *n == "RcvbufErrors").unwrap();
    values[at].parse().unwrap()
}

fn ab_rate(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("Requests per second:"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn wrk_rate(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("Requests/sec:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Measurement, not a check: `cargo test --release --test workloads --
/// --ignored --nocapture compare_with_reference_tools`. Prints builtin vs
/// iperf3, qperf, ab and wrk on the same veth path, interleaved.
/// DPLAB_COMPARE=tcp,cv,rr,ping,udp,udploss,http picks the parts (default
/// all); DPLAB_COMPARE_REPS sets the interleaved pairs (default 3).
#[test]
#[ignore]
fn compare_with_reference_tools() {
    if skip_unless_root() {
        return;
    }
    let testbed = build_testbed();
    let e = endpoints(&testbed, SocketAddr::new(IpAddr::V4(SERVER_IP), PORT));
    let p = Params {
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        ..Params::default()
    };
    let parts =
        std::env::var("DPLAB_COMPARE").unwrap_or_else(|_| "tcp,cv,rr,ping,udp,udploss,http".into());
    let want = |part: &str| parts.split(',').any(|p| p == part);
    let reps: usize = std::env::var("DPLAB_COMPARE_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..if want("tcp") { reps } else { 0 } {
        ours.push(metric(
            Workload::TcpStream,
            Tool::Builtin,
            &p,
            &e,
            "throughput_gbps",
        ));
        theirs.push(metric(
            Workload::TcpStream,
            Tool::Iperf3,
            &p,
            &e,
            "throughput_gbps",
        ));
    }
    if want("tcp") {
        eprintln!(
            "tcp-stream Gbit/s builtin {ours:.2?} iperf3 {theirs:.2?}: median ratio {:.3}",
            median(&ours) / median(&theirs)
        );
    }

    let cv_runs: Vec<f64> = (0..if want("cv") { 5 } else { 0 })
        .map(|_| {
            metric(
                Workload::TcpStream,
                Tool::Builtin,
                &p,
                &e,
                "throughput_gbps",
            )
        })
        .collect();
    let mean = cv_runs.iter().sum::<f64>() / 5.0;
    let sd = (cv_runs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
    if want("cv") {
        eprintln!(
            "tcp-stream builtin x5 {cv_runs:.2?}: CV {:.1}%",
            100.0 * sd / mean
        );
    }

    let (mut p50, mut qperf_rtt) = (Vec::new(), Vec::new());
    for _ in 0..if want("rr") { reps } else { 0 } {
        p50.push(metric(
            Workload::TcpRr,
            Tool::Builtin,
            &p,
            &e,
            "latency_us_p50",
        ));
        qperf_rtt.push(metric(
            Workload::TcpRr,
            Tool::Qperf,
            &p,
            &e,
            "latency_us_mean",
        ));
    }
    if want("rr") {
        eprintln!(
        "tcp-rr round trip us: builtin p50 {p50:.1?}, qperf tcp_lat x2 {qperf_rtt:.1?}: median ratio {:.3}",
        median(&p50) / median(&qperf_rtt)
    );
    }

    let (mut ours_ping, mut iputils) = (Vec::new(), Vec::new());
    for _ in 0..if want("ping") { 3 } else { 0 } {
        ours_ping.push(metric(Workload::Ping, Tool::Builtin, &p, &e, "rtt_ms"));
        iputils.push(metric(Workload::Ping, Tool::Ping, &p, &e, "rtt_ms"));
    }
    if want("ping") {
        eprintln!("ping rtt ms: builtin {ours_ping:.4?}, iputils ping {iputils:.4?}");
    }

    let udp = Params {
        udp_rate_bps: Some(1_000_000_000),
        ..p.clone()
    };
    for _ in 0..if want("udp") { 3 } else { 0 } {
        for tool in [Tool::Builtin, Tool::Iperf3] {
            let s = run_sample(Workload::UdpStream, tool, &udp, &e, &NoPidRecorder, None)
                .unwrap_or_else(|err| panic!("udp-stream ({tool}): {err}"));
            let m = |n: &str| s.get(n).unwrap_or(f64::NAN);
            eprintln!(
                "udp-stream 1 Gbit/s {tool}: {:.3} Gbit/s, loss {:.2}%, jitter {:.4} ms",
                m("throughput_gbps"),
                m("loss_percent"),
                m("jitter_ms")
            );
        }
    }

    if want("udploss") {
        // Cross-check of the builtin's loss accounting against the kernel's
        // own drop counter in the server namespace.
        let flat_out = Params {
            warmup: Duration::ZERO,
            ..p.clone()
        };
        let before = udp_rcvbuf_errors(&testbed.server);
        let s = run_sample(
            Workload::UdpStream,
            Tool::Builtin,
            &flat_out,
            &e,
            &NoPidRecorder,
            None,
        )
        .expect("udp-stream flat out");
        let kernel_drops = udp_rcvbuf_errors(&testbed.server) - before;
        let sent =
            s.get("offered_gbps").unwrap() * 1e9 * 3.0 / 8.0 / flat_out.udp_payload_size as f64;
        eprintln!(
            "udp-stream flat out builtin: offered {:.3} Gbit/s, received {:.3} Gbit/s, loss {:.2}% = {:.0} of {sent:.0} datagrams; kernel RcvbufErrors +{kernel_drops}",
            s.get("offered_gbps").unwrap(),
            s.get("throughput_gbps").unwrap(),
            s.get("loss_percent").unwrap(),
            sent * s.get("loss_percent").unwrap() / 100.0
        );
    }

    let url = format!("http://{SERVER_IP}:{PORT}/");
    let (mut builtin_http, mut ab, mut wrk) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..if want("http") { reps } else { 0 } {
        builtin_http.push(metric(
            Workload::Http,
            Tool::Builtin,
            &p,
            &e,
            "requests_per_s",
        ));
        let server = dplab::workload::http::HttpServer::start(&e, p.timeout).expect("http server");
        let ab_args =
            ["-k", "-q", "-c", "100", "-t", "3", "-n", "100000000", &url].map(String::from);
        if let Some(r) = external_http(&testbed.client, "ab", &ab_args, ab_rate) {
            ab.push(r);
        }
        let wrk_args = ["-t1", "-c100", "-d3s", &url].map(String::from);
        if let Some(r) = external_http(&testbed.client, "wrk", &wrk_args, wrk_rate) {
            wrk.push(r);
        }
        server
            .stop(Instant::now() + Duration::from_secs(2))
            .expect("stop http server");
    }
    eprintln!(
        "http req/s (100 keep-alive connections): builtin {builtin_http:.0?}, ab -k -c 100 {ab:.0?}, wrk -t1 -c100 {wrk:.0?}"
    );
}

/// Sets the node's veth towards the server down (false) or up (true).
fn set_server_link(testbed_node: &str, link: &str, up: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = netns::netlink::handle_in(testbed_node).expect("netlink in node");
        let index = link_index(&node, link).await;
        let msg = if up {
            LinkUnspec::new_with_index(index).up().build()
        } else {
            LinkUnspec::new_with_index(index).down().build()
        };
        node.link()
            .set(msg)
            .execute()
            .await
            .expect("set link state");
    });
}

#[test]
fn path_breaking_mid_measurement_fails_in_time() {
    if skip_unless_root() {
        return;
    }
    let testbed = build_testbed();
    let e = endpoints(&testbed, SocketAddr::new(IpAddr::V4(SERVER_IP), PORT));
    let p = Params {
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        timeout: Duration::from_secs(1),
        ..Params::default()
    };
    // Joining workers may take up to one more timeout plus grace.
    let limit = p.warmup + p.duration + 2 * p.timeout + Duration::from_secs(1);
    for w in [
        Workload::TcpStream,
        Workload::TcpRr,
        Workload::TcpCrr,
        Workload::Http,
    ] {
        let (node, link) = (testbed.node.clone(), testbed.server_link.clone());
        let breaker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            set_server_link(&node, &link, false);
        });
        let started = Instant::now();
        let outcome = run_sample(w, Tool::Builtin, &p, &e, &NoPidRecorder, None);
        let took = started.elapsed();
        breaker.join().unwrap();
        set_server_link(&testbed.node, &testbed.server_link, true);
        eprintln!("{w} with the path cut after 1 s, after {took:.2?}: {outcome:?}");
        assert!(took <= limit, "{w} took {took:?}, limit {limit:?}");
        // http rides out a cut by reconnecting: then it must count errors.
        match (w, &outcome) {
            (Workload::Http, Ok(s)) => assert!(s.get("errors").unwrap() > 0.0, "{s:?}"),
            (_, outcome) => assert!(outcome.is_err(), "{w} must fail when the path breaks"),
        }
        // Let the veth come back before the next workload.
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn parallel_streams_and_connections() {
    if skip_unless_root() {
        return;
    }
    let testbed = build_testbed();
    let e = endpoints(&testbed, SocketAddr::new(IpAddr::V4(SERVER_IP), PORT));
    let p = Params {
        parallel: 3,
        udp_rate_bps: Some(300_000_000),
        ..short_params()
    };
    let mut failures = Vec::new();
    for w in [
        Workload::TcpStream,
        Workload::UdpStream,
        Workload::TcpRr,
        Workload::TcpCrr,
    ] {
        let outcome = run_sample(w, Tool::Builtin, &p, &e, &NoPidRecorder, None);
        eprintln!("{w} x3: {outcome:?}");
        match outcome {
            Ok(s) => {
                if let Err(why) = check_plausible(w, Tool::Builtin, &s) {
                    failures.push(format!("{w}: {why}"));
                }
                // Paced at 300 Mbit/s over three streams, the offered load
                // must be near it, neither one stream's share nor a burst.
                if w == Workload::UdpStream {
                    let offered = s.get("offered_gbps").unwrap_or(0.0);
                    if !(0.2..=0.33).contains(&offered) {
                        failures.push(format!("udp-stream offered {offered} Gbit/s, asked 0.3"));
                    }
                }
            }
            Err(err) => failures.push(format!("{w}: {err}")),
        }
    }
    assert!(failures.is_empty(), "failed: {failures:#?}");
}
