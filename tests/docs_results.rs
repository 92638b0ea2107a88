//! docs/results.md covers what the code writes: every key of a fully
//! populated results.json, every metric, proof counter, benchmark and
//! status, each in its section as a table row "| `name` |". No root needed.

mod doc_check;

use std::collections::{BTreeMap, BTreeSet};

use doc_check::{literals_after, missing, read, root, rust_files};
use dplab::results::conditions::{CellConditions, Conditions, MachineState, Thresholds};
use dplab::results::{Cell, CellStatus, Host, Metric, Results, Settings};
use dplab::workload::pinning::CpuPinning;
use dplab::workload::{headline_metric, Workload};
use serde_json::Value;

fn everything_set() -> Results {
    let seen = CellConditions {
        load_1m_max: 0.5,
        others_cpus_max: Some(0.1),
        steal_percent_max: Some(0.0),
        cpu_mhz_min: Some(2000.0),
        cpu_mhz_max: Some(2400.0),
        other_labs: vec!["1e64".into()],
        disturbed_by: vec!["other-lab".into()],
    };
    let machine = MachineState {
        at: "2026-11-22T17:00:00Z".into(),
        load_1m: 0.1,
        load_5m: 0.2,
        load_15m: 0.3,
        others_cpus: Some(0.1),
        steal_percent: Some(0.0),
        cpu_mhz_min: Some(2000.0),
        cpu_mhz_max: Some(2400.0),
        other_labs: vec!["1e64".into()],
    };
    Results {
        schema: "dplab.results/v1".into(),
        run_id: "3f9a".into(),
        topology: "blog".into(),
        started_at: "2026-11-22T17:00:00Z".into(),
        finished_at: "2026-11-22T17:03:10Z".into(),
        host: Host {
            kernel: "6.18".into(),
            cpus: 2,
            hostname: "vm".into(),
            cpu_model: "cpu".into(),
        },
        dplab_version: "0.1.0".into(),
        dplab_commit: Some("1a2b3c4".into()),
        command: vec!["dplab".into(), "run".into()],
        settings: Settings {
            duration_s: 1.0,
            repetitions: 1,
            tool: "builtin".into(),
            warmup_s: 0.5,
            shaping: Some("tc tbf rate 1gbit".into()),
            cpus: Some(CpuPinning {
                client: Some(0),
                server: Some(1),
            }),
            tc_attach: Some("tcx".into()),
        },
        cells: vec![Cell {
            datapath: "veth-routed".into(),
            target: "cluster-ip".into(),
            service_proxy: Some("iptables".into()),
            workload: "tcp-stream".into(),
            tool: "builtin".into(),
            client: "pod-b".into(),
            server: "pod-a".into(),
            overlay: Some("routed".into()),
            placement: Some("same-node".into()),
            status: CellStatus::Ok,
            reason: Some("a reason".into()),
            setup_ms: Some(1.0),
            teardown_ms: Some(1.0),
            metrics: BTreeMap::from([(
                "throughput_gbps".to_string(),
                Metric::from_samples(vec![1.0, 2.0]),
            )]),
            proof: BTreeMap::from([("iptables_dnat_packets".to_string(), 1)]),
            conditions: Some(seen),
            bpf_attach: Some("tcx".into()),
            services: Some(1000),
            endpoints: Some(1000),
        }],
        conditions: Some(Conditions {
            thresholds: Thresholds::for_cpus(2),
            start: machine.clone(),
            end: machine,
            warnings: vec!["a warning".into()],
        }),
        benchmarks: BTreeMap::from([("setup_ms.veth-routed".to_string(), 1.0)]),
        sweep: None,
    }
}

/// Every object key of `v` by the documentation section it belongs to;
/// the maps keyed by data (metric and proof names, benchmarks) are
/// collected apart.
fn object_keys(v: &Value, path: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let child_path = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.entry(path.to_string()).or_default().insert(k.clone());
                match child_path.as_str() {
                    "cells[].metrics" => {
                        for m in child.as_object().unwrap().values() {
                            object_keys(m, "cells[].metrics.NAME", out);
                        }
                    }
                    "cells[].proof" | "benchmarks" => {}
                    _ => object_keys(child, &child_path, out),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                object_keys(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_results_json_key_is_documented() {
    let doc = read(&root().join("docs/results.md"));
    let json = serde_json::to_value(everything_set()).unwrap();
    let mut keys = BTreeMap::new();
    object_keys(&json, "", &mut keys);
    let mut lacking = Vec::new();
    for (path, names) in &keys {
        let marker = match path.as_str() {
            "" => "Top level".to_string(),
            p => format!("`{p}`"),
        };
        lacking.extend(missing(&doc, &marker, names.iter().map(String::as_str)));
    }
    assert!(lacking.is_empty(), "docs/results.md lacks {lacking:?}");
    // The paths the walk found are the documented objects, no fewer.
    for expected in [
        "host",
        "settings.cpus",
        "cells[].conditions",
        "conditions.end",
    ] {
        assert!(keys.contains_key(expected), "{keys:?}");
    }
}

/// Every status, by a match that stops compiling when one is added.
fn statuses() -> Vec<CellStatus> {
    let all = [
        CellStatus::Ok,
        CellStatus::Skipped,
        CellStatus::Unreachable,
        CellStatus::Failed,
    ];
    for s in all {
        match s {
            CellStatus::Ok | CellStatus::Skipped | CellStatus::Unreachable | CellStatus::Failed => {
            }
        }
    }
    all.to_vec()
}

#[test]
fn every_status_is_documented() {
    let doc = read(&root().join("docs/results.md"));
    let names: Vec<String> = statuses()
        .into_iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let lacking = missing(&doc, "Statuses", names.iter().map(String::as_str));
    assert!(lacking.is_empty(), "docs/results.md lacks {lacking:?}");
}

/// Metric and proof names in the reference runs shipped in results/.
fn reference_names(field: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![root().join("results")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "results.json") {
                let r: Value = serde_json::from_str(&read(&p)).unwrap();
                for cell in r["cells"].as_array().unwrap() {
                    if let Some(map) = cell[field].as_object() {
                        names.extend(map.keys().cloned());
                    }
                }
            }
        }
    }
    names
}

#[test]
fn every_metric_the_code_writes_is_documented() {
    let doc = read(&root().join("docs/results.md"));
    let mut names: BTreeSet<String> = Workload::ALL
        .into_iter()
        .map(|w| headline_metric(w).to_string())
        .collect();
    for file in rust_files(&root().join("lab/src/workload")) {
        names.extend(literals_after(&read(&file), ".set("));
    }
    assert!(
        names.len() > 15,
        "the source scan found too little: {names:?}"
    );
    names.extend(reference_names("metrics"));
    let lacking = missing(&doc, "Metric names", names.iter().map(String::as_str));
    assert!(lacking.is_empty(), "docs/results.md lacks {lacking:?}");
}

/// `const X: &str = "name";` lines that follow a comment about proof, and
/// names inserted into a proof map; counter names are snake_case, which
/// leaves out other strings near such comments (an nftables object name).
fn proof_names_in(text: &str) -> Vec<String> {
    let mut names = literals_after(text, "proof.insert(");
    let mut about_proof = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("//") {
            let l = line.to_lowercase();
            about_proof |= l.contains("proof") || l.contains("prove");
        } else if line.contains("const ") && line.contains(": &str = \"") && about_proof {
            names.extend(literals_after(line, "= "));
        } else {
            about_proof = false;
        }
    }
    names.retain(|n| {
        n.starts_with(|c: char| c.is_ascii_lowercase())
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    names
}

#[test]
fn every_proof_counter_the_code_writes_is_documented() {
    let doc = read(&root().join("docs/results.md"));
    let mut names = BTreeSet::new();
    for file in rust_files(&root().join("lab/src")) {
        names.extend(proof_names_in(&read(&file)));
    }
    for known in [
        dplab::service::ebpf::RUNS,
        dplab::service::ebpf::SERVICE_HITS,
        dplab::service::ebpf::REV_NAT,
        dplab::service::ebpf::REDIRECTED,
        "iptables_dnat_packets",
        "vxlan_tx_packets",
    ] {
        assert!(names.contains(known), "the source scan missed {known}");
    }
    names.extend(reference_names("proof"));
    let lacking = missing(&doc, "Proof counters", names.iter().map(String::as_str));
    assert!(lacking.is_empty(), "docs/results.md lacks {lacking:?}");
}

#[test]
fn every_benchmark_the_code_writes_is_documented() {
    let doc = read(&root().join("docs/results.md"));
    let mut names = BTreeSet::new();
    for file in rust_files(&root().join("lab/src/runner")) {
        for pushed in literals_after(&read(&file), "benchmarks.push((format!(") {
            let prefix = pushed.split('.').next().unwrap().to_string();
            names.insert(format!("{prefix}.<lab>"));
        }
    }
    assert!(names.contains("setup_ms.<lab>"), "{names:?}");
    let lacking = missing(&doc, "Benchmarks", names.iter().map(String::as_str));
    assert!(lacking.is_empty(), "docs/results.md lacks {lacking:?}");
}
