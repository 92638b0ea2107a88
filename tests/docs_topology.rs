//! docs/topology.md covers every key of the topology format (each in its
//! section as a table row "| `name` |"), README.md links the format pages,
//! and no file of the repository points outside it. No root needed.

mod doc_check;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use doc_check::{missing, read, root};

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

[sweep]
services = [1, 10]
endpoints_per_service = 1

[matrix]
service_proxies = ["iptables"]
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
node_port = 30080
backends = ["pod-b1"]

[matrix]
overlays = ["routed", "vxlan"]
datapaths = ["veth-routed"]
workloads = ["ping"]

[[matrix.paths]]
client = "pod-a1"
server = "pod-b1"
target = "cluster-ip"

[[matrix.paths]]
client = "pod-a1"
server = "pod-b1"
target = "node-port"
via = "node-b"
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
    // This file names them to look for them.
    let this_test = root().join("tests/docs_topology.rs");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| **f != this_test)
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
