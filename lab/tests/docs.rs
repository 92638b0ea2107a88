//! The formats' documentation covers what the code reads and writes: every
//! key of a fully populated results.json and topology, every metric, proof
//! counter, benchmark and status the code produces, each in its section of
//! docs/results.md or docs/topology.md as a table row "| `name` |". And the
//! repository's files point to nothing outside it. No root needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dplab::results::conditions::{CellConditions, Conditions, MachineState, Thresholds};
use dplab::results::{Cell, CellStatus, Host, Metric, Results, Settings};
use dplab::workload::pinning::CpuPinning;
use dplab::workload::{headline_metric, Workload};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of the `## ` section whose heading contains `marker`.
fn section<'a>(doc: &'a str, marker: &str) -> &'a str {
    let mut parts = doc.split("\n## ");
    parts.next();
    parts
        .find(|s| s.lines().next().is_some_and(|h| h.contains(marker)))
        .unwrap_or_else(|| panic!("no section \"## ...{marker}...\""))
}

/// Names the section lacks as table rows "| `name` |".
fn missing<'a>(doc: &str, marker: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let body = section(doc, marker);
    names
        .into_iter()
        .filter(|n| !body.contains(&format!("| `{n}` |")))
        .map(|n| format!("{n} (in section {marker})"))
        .collect()
}

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
        }],
        conditions: Some(Conditions {
            thresholds: Thresholds::for_cpus(2),
            start: machine.clone(),
            end: machine,
            warnings: vec!["a warning".into()],
        }),
        benchmarks: BTreeMap::from([("setup_ms.veth-routed".to_string(), 1.0)]),
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
    let all = [CellStatus::Ok, CellStatus::Skipped, CellStatus::Failed];
    for s in all {
        match s {
            CellStatus::Ok | CellStatus::Skipped | CellStatus::Failed => {}
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

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// String literals right after `call` (whitespace and newlines allowed).
fn literals_after(text: &str, call: &str) -> Vec<String> {
    text.match_indices(call)
        .filter_map(|(i, _)| {
            let rest = text[i + call.len()..].trim_start();
            let rest = rest.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
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
/// names inserted into a proof map.
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

const SINGLE_NODE: &str = r#"
name = "full-single"
description = "every key of the single-node form"
service_cidr = "10.96.0.0/16"

[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
gateway = "192.168.10.1"
routed_gateway = "169.254.10.24"

[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"
interface = "eth0"

[[pods]]
name = "pod-b"
node = "node1"

[[services]]
name = "web"
cluster_ip = "10.96.0.80"
port = 80
target_port = 8080
protocol = "tcp"
backends = ["pod-a"]

[matrix]
datapaths = ["veth-routed"]
targets = ["pod-ip", "cluster-ip"]
workloads = ["tcp-stream"]
client = "pod-b"
server = "pod-a"
service = "web"
duration = "2s"
repetitions = 1
tool = "builtin"
"#;

const MULTI_NODE: &str = r#"
name = "full-multi"

[underlay]
cidr = "10.0.0.0/24"
mtu = 1500
rate = "1gbit"

[[nodes]]
name = "node-a"
pod_cidr = "10.244.1.0/24"
underlay_address = "10.0.0.10"

[[nodes]]
name = "node-b"
pod_cidr = "10.244.2.0/24"

[[pods]]
name = "pod-a1"
node = "node-a"

[[pods]]
name = "pod-b1"
node = "node-b"

[[services]]
name = "web"
cluster_ip = "10.96.0.80"
port = 80
backends = ["pod-b1"]

[matrix]
overlays = ["routed", "vxlan"]
datapaths = ["veth-routed"]
workloads = ["ping"]

[[matrix.paths]]
client = "pod-a1"
server = "pod-b1"
target = "cluster-ip"
"#;

/// Keys by table: "" (top level), "nodes", "matrix.paths", ...
fn toml_keys(table: &toml::Table, path: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
    for (k, v) in table {
        out.entry(path.to_string()).or_default().insert(k.clone());
        let child = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match v {
            toml::Value::Table(t) => toml_keys(t, &child, out),
            toml::Value::Array(items) => {
                for t in items.iter().filter_map(toml::Value::as_table) {
                    toml_keys(t, &child, out);
                }
            }
            _ => {}
        }
    }
}

/// Field names of each struct in topology/raw.rs, by the table it reads.
fn raw_fields() -> BTreeMap<String, BTreeSet<String>> {
    let table_of = |s: &str| match s {
        "Topology" => "",
        "Node" => "nodes",
        "Pod" => "pods",
        "Service" => "services",
        "Underlay" => "underlay",
        "Matrix" => "matrix",
        "Path" => "matrix.paths",
        other => {
            panic!("raw.rs has a new struct {other}: add its table here and to docs/topology.md")
        }
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in read(&root().join("lab/src/topology/raw.rs")).lines() {
        if let Some(name) = line.strip_prefix("pub struct ") {
            current = Some(table_of(name.trim_end_matches(" {").trim()).to_string());
        } else if line == "}" {
            current = None;
        } else if let (Some(table), Some(field)) = (&current, line.trim().strip_prefix("pub ")) {
            let name = field.split(':').next().unwrap().trim().to_string();
            out.entry(table.clone()).or_default().insert(name);
        }
    }
    out
}

#[test]
fn every_topology_key_is_documented() {
    let doc = read(&root().join("docs/topology.md"));
    let mut keys = BTreeMap::new();
    for (name, text) in [("single.toml", SINGLE_NODE), ("multi.toml", MULTI_NODE)] {
        // Parsing denies unknown keys: every key here is a real one.
        dplab::topology::parse(Path::new(name), text).unwrap_or_else(|e| panic!("{e}"));
        toml_keys(&text.parse::<toml::Table>().unwrap(), "", &mut keys);
    }
    for (table, fields) in raw_fields() {
        let used = keys.get(&table).cloned().unwrap_or_default();
        let unused: Vec<_> = fields.difference(&used).collect();
        assert!(
            unused.is_empty(),
            "the test topologies leave out {unused:?} of [{table}]: add them"
        );
    }
    let mut lacking = Vec::new();
    for (table, names) in &keys {
        let marker = match table.as_str() {
            "" => "Top level".to_string(),
            "nodes" | "pods" | "services" | "matrix.paths" => format!("`[[{table}]]`"),
            t => format!("`[{t}]`"),
        };
        lacking.extend(missing(&doc, &marker, names.iter().map(String::as_str)));
    }
    assert!(lacking.is_empty(), "docs/topology.md lacks {lacking:?}");
}

#[test]
fn readme_links_the_docs_and_nothing_points_outside_the_repository() {
    let readme = read(&root().join("README.md"));
    for doc in ["docs/results.md", "docs/topology.md"] {
        assert!(
            readme.contains(&format!("]({doc})")),
            "README.md does not link {doc}"
        );
    }
    let mut files = vec![root().join("README.md")];
    for dir in ["docs", "lab/src", "tests", "topologies", "scripts", "bpf"] {
        let mut stack = vec![root().join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
    }
    let outside = ["CONTRACT.md", "DESIGN.md", "../shared/"];
    let offenders: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            outside
                .iter()
                .find(|o| text.contains(*o))
                .map(|o| format!("{} mentions {o}", f.display()))
        })
        .collect();
    assert!(offenders.is_empty(), "{offenders:?}");
}
