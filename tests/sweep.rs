//! Service-count sweeps end to end: bad counts are bad input naming the
//! field (nothing touched); a small sweep on two proxies gives a cell per
//! point with its proof, a point per (count, proxy) with programming and
//! update times, the scale charts, and leaves nothing behind.

mod common;

use common::*;

const SCALE: &str = "topologies/service-scale.toml";

#[test]
fn bad_counts_and_endpoints_are_bad_input_naming_the_field() {
    let before = objects();
    for (counts, want) in [
        ("0", "not a service count"),
        ("1,1", "listed twice"),
        ("70000", "do not fit service_cidr 10.96.0.0/16"),
        ("-3", "not a service count"),
    ] {
        let out = dplab(&["run", SCALE, "--services", counts]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{counts}: {stderr}");
        assert!(stderr.contains("--services"), "{counts}: {stderr}");
        assert!(stderr.contains(want), "{counts}: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let topo = std::fs::read_to_string(root().join(SCALE))
        .unwrap()
        .replace("endpoints_per_service = 2", "endpoints_per_service = 4");
    let path = dir.path().join("scale.toml");
    std::fs::write(&path, topo).unwrap();
    let out = dplab(&["run", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sweep.endpoints_per_service"), "{stderr}");
    assert!(stderr.contains("3 pods"), "{stderr}");
    let left = left_behind(&before, None);
    assert!(left.is_empty(), "bad input created objects: {left:?}");
}

/// Namespaces, state folders and bpffs pin folders of dplab runs.
fn objects() -> Vec<String> {
    let mut found = all_dplab_objects();
    found.extend(
        std::fs::read_dir("/sys/fs/bpf/dplab")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .map(|n| format!("/sys/fs/bpf/dplab/{n}")),
    );
    found
}

/// Objects that appeared since `before` and have no live owner, or are
/// owned by `ours` (other tests' and helpers' labs come and go meanwhile).
fn left_behind(before: &[String], ours: Option<u32>) -> Vec<String> {
    objects()
        .into_iter()
        .filter(|o| !before.contains(o))
        .filter(|o| {
            let run = match o.rsplit_once('/') {
                Some((_, id)) => id,
                None => &o[2..6],
            };
            let journal = std::fs::read_to_string(format!("/run/dplab/{run}/journal.jsonl"));
            let owner = journal.ok().and_then(|j| {
                let at = j.find("\"owner_pid\":")? + "\"owner_pid\":".len();
                j[at..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u32>()
                    .ok()
            });
            match owner {
                Some(pid) => {
                    Some(pid) == ours || !std::path::Path::new(&format!("/proc/{pid}")).exists()
                }
                None => true,
            }
        })
        .collect()
}

#[test]
fn a_small_sweep_measures_every_point_with_proof_and_charts_and_leaves_nothing() {
    if !privileged("service-count sweep") {
        return;
    }
    let before_root = root_snapshot();
    let before = objects();
    let out_dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_dplab"))
        .args([
            "run",
            SCALE,
            "--services",
            "1,100",
            "--proxies",
            "iptables,nftables,ebpf,socket-lb",
            "--duration",
            "1s",
            "--repetitions",
            "1",
            "--out",
            out_dir.path().to_str().unwrap(),
        ])
        .current_dir(root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dplab runs");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let text_of = |f: &str| std::fs::read_to_string(out_dir.path().join(f)).unwrap();
    let results: serde_json::Value = serde_json::from_str(&text_of("results.json")).unwrap();
    assert_eq!(results["schema"], "dplab.results/v2");
    let cells = results["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2 * 4 * 2, "2 counts x 4 proxies x 2 workloads");
    for c in cells {
        assert_eq!(c["status"], "ok", "{c}");
        let n = c["services"].as_u64().unwrap();
        assert!(n == 1 || n == 100, "{c}");
        // The measured service has 1 endpoint, each synthetic one 2.
        assert_eq!(c["endpoints"].as_u64().unwrap(), 1 + 2 * (n - 1), "{c}");
        let proof = |k: &str| c["proof"][k].as_i64().unwrap_or(0);
        match c["service_proxy"].as_str().unwrap() {
            "iptables" => assert!(proof("iptables_dnat_packets") > 0, "{c}"),
            "nftables" => {
                assert!(proof("nft_dnat_packets") > 0, "{c}");
                assert_eq!(proof("iptables_dnat_packets"), 0, "{c}");
            }
            "ebpf" => {
                assert!(proof("bpf_service_hits") > 0, "{c}");
                assert_eq!(proof("iptables_dnat_packets"), 0, "{c}");
            }
            "socket-lb" => {
                assert!(proof("socklb_rewrites") > 0, "{c}");
                assert_eq!(proof("iptables_dnat_packets"), 0, "{c}");
            }
            other => panic!("unexpected proxy {other}"),
        }
        if c["workload"] == "tcp-crr" {
            let m = |k: &str| c["metrics"][k]["median"].as_f64().unwrap();
            assert!(m("connect_us_p1") <= m("connect_us_p50"), "{c}");
            assert!(m("connect_us_p50") <= m("connect_us_p99"), "{c}");
        }
    }
    let points = results["sweep"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 8, "{points:#?}");
    for p in points {
        assert_eq!(p["status"], "ok", "{p}");
        assert_eq!(p["measured_position"], p["services"], "measured last: {p}");
        for metric in [
            "program_ms",
            "program_to_traffic_ms",
            "update_add_service_ms",
            "update_remove_endpoint_ms",
            "dplab_peak_rss_mb",
        ] {
            let v = p["metrics"][metric]["median"].as_f64();
            assert!(v.is_some_and(|v| v > 0.0), "{metric}: {p}");
        }
        // What the proxy holds in the kernel, read where it can be.
        let held = match p["service_proxy"].as_str().unwrap() {
            "iptables" => "kernel_rules",
            "nftables" => "kernel_chains",
            _ => "kernel_map_bytes",
        };
        let v = p["metrics"][held]["median"].as_f64();
        assert!(v.is_some_and(|v| v > 0.0), "{held}: {p}");
        let program = p["metrics"]["program_ms"]["median"].as_f64().unwrap();
        let to_traffic = p["metrics"]["program_to_traffic_ms"]["median"]
            .as_f64()
            .unwrap();
        assert!(
            to_traffic >= program,
            "traffic flows after the install began: {p}"
        );
    }
    let report = text_of("report.md");
    assert!(report.contains("## Scale: 1 to 100 services"), "{report}");
    assert!(report.contains("![Full programming (ms) per service count](scale-program-ms.svg)"));
    let svg = text_of("scale-program-ms.svg");
    let doc = roxmltree::Document::parse(&svg).expect("the chart is SVG");
    let labels: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    for proxy in ["iptables", "nftables", "ebpf", "socket-lb"] {
        assert!(labels.contains(proxy), "{proxy}: {labels}");
    }

    let left = left_behind(&before, Some(pid));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(root_snapshot(), before_root, "the root namespace changed");
}
