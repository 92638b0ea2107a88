//! report.md of the single- and multi-node fixtures.

use dplab::results::report::{format_metric, render_markdown, write_report};
use dplab::results::CellStatus;

use super::{blog, multinode, proxies, section};

#[test]
fn fixtures_are_labelled_as_test_data() {
    for r in [blog(), multinode(), proxies()] {
        assert_eq!(r.host.hostname, "fixture");
        assert!(r.host.cpu_model.contains("not a measurement"));
    }
}

#[test]
fn header_names_the_run_and_how_to_reproduce_it() {
    let md = render_markdown(&blog(), &[]);
    for expected in [
        "# dplab report: blog",
        "| Kernel | 6.18.44 |",
        "| CPUs | 2 × fixture: hand-written test data, not a measurement |",
        "| Tool | builtin |",
        "| Duration | 10 s per repetition, warm-up 2 s |",
        "| Repetitions | 5 |",
        "| Date | 2026-11-22T17:00:00Z – 2026-11-22T17:31:40Z |",
        "| dplab version | 0.1.0 |",
        "dplab run topologies/blog.toml --duration 10 --repetitions 5 --out 'results/fixture run'\n",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in\n{md}");
    }
    assert!(!md.contains("Link shaping"));
    let md = render_markdown(&multinode(), &[]);
    assert!(md.contains("| Link shaping | tbf rate 1gbit burst 128kb latency 50ms |"));
}

#[test]
fn every_single_node_cell_has_its_slot_in_a_table() {
    let r = blog();
    let md = render_markdown(&r, &[]);
    let tables = section(&md, "## Single node");
    // Each headline table: a row per datapath, pod IP then cluster IP.
    for (workload, metric) in [
        ("tcp-stream", "throughput_gbps"),
        ("udp-stream", "throughput_gbps"),
        ("tcp-rr", "latency_us_p50"),
        ("tcp-rr", "transactions_per_s"),
        ("tcp-crr", "connections_per_s"),
        ("http", "requests_per_s"),
        ("ping", "rtt_ms"),
    ] {
        let heading = format!("### {workload}: ");
        let starts: Vec<usize> = tables.match_indices(&heading).map(|(i, _)| i).collect();
        assert!(!starts.is_empty(), "no table for {workload}");
        // Find the table of this metric among the workload's tables.
        let table = starts
            .iter()
            .map(|&s| {
                let t = &tables[s..];
                &t[..t[4..].find("\n### ").map(|e| e + 4).unwrap_or(t.len())]
            })
            .find(|t| {
                r.cells
                    .iter()
                    .filter(|c| c.workload == workload && c.status == CellStatus::Ok)
                    .all(|c| t.contains(&format_metric(&c.metrics[metric])))
            })
            .unwrap_or_else(|| panic!("no table shows every {workload} {metric} value"));
        for c in r.cells.iter().filter(|c| c.workload == workload) {
            let row = table
                .lines()
                .filter(|l| l.starts_with(&format!("| {} |", c.datapath)))
                .collect::<Vec<_>>();
            assert_eq!(row.len(), 1, "{} row in {table}", c.datapath);
            let slots: Vec<&str> = row[0].split(" | ").collect();
            let slot = if c.target == "pod-ip" {
                slots[1]
            } else {
                slots[2]
            };
            match c.status {
                CellStatus::Ok => assert_eq!(slot, format_metric(&c.metrics[metric])),
                CellStatus::Skipped => assert!(slot.starts_with("skipped ["), "{slot}"),
                CellStatus::Failed => assert!(slot.starts_with("failed ["), "{slot}"),
                CellStatus::Unreachable => panic!("the blog fixture has no unreachable cell"),
            }
        }
    }
    // Rows keep the order in which the run first met the datapaths.
    let tcp = section(&md, "### tcp-stream: throughput");
    let order: Vec<usize> = [
        "veth-routed",
        "bridge",
        "bridge-nf-off",
        "macvlan",
        "ipvlan-l2",
        "ipvlan-l3",
        "veth-ebpf",
        "ipvlan-ebpf",
    ]
    .iter()
    .map(|d| tcp.find(&format!("| {d} |")).expect(d))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(!md.contains("## Other cells"), "every cell fits a table");
}

#[test]
fn cluster_pod_ratio_is_computed_from_medians() {
    let r = blog();
    let md = render_markdown(&r, &[]);
    let find = |dp: &str, target: &str| {
        r.cells
            .iter()
            .find(|c| c.datapath == dp && c.target == target && c.workload == "tcp-stream")
            .unwrap()
            .metrics["throughput_gbps"]
            .clone()
    };
    let (pod, cluster) = (find("bridge", "pod-ip"), find("bridge", "cluster-ip"));
    let ratio = format!("{:.2}", cluster.median / pod.median);
    let table = section(&md, "### tcp-stream: throughput");
    let row = table.lines().find(|l| l.starts_with("| bridge |")).unwrap();
    assert!(
        row.ends_with(&format!("| iptables | {ratio} |")),
        "{row} should end with ratio {ratio}"
    );
}

#[test]
fn skip_and_fail_reasons_appear_with_their_footnotes() {
    let r = blog();
    let md = render_markdown(&r, &[]);
    let list = section(&md, "## Skipped and failed");
    // One note per distinct reason, in the order the run met them.
    let bridge_note =
        "1. **failed**: no connection to cluster IP 10.96.0.10: connect timed out after 3 s\n";
    let ipvlan_note =
        "2. **skipped**: kernel lacks ipvlan: creating the link answered EOPNOTSUPP\n";
    assert!(list.contains(bridge_note), "{list}");
    assert!(list.contains(ipvlan_note), "{list}");
    let mut not_ok = 0;
    for c in r.cells.iter().filter(|c| c.status != CellStatus::Ok) {
        not_ok += 1;
        let (note, word) = if c.status == CellStatus::Skipped {
            (ipvlan_note, "skipped [2]")
        } else {
            (bridge_note, "failed [1]")
        };
        // Listed under its note.
        let under = &list[list.find(note).unwrap()..];
        let under = &under[..under[3..]
            .find("\n2. ")
            .map(|e| e + 4)
            .unwrap_or(under.len())];
        assert!(
            under.contains(&format!("   - `{}`\n", c.key())),
            "{} not under {note}",
            c.key()
        );
        // Its table slot carries the note number, and the table explains it.
        let table = section(&md, &format!("### {}: ", c.workload));
        assert!(table.contains(word), "{word} missing for {}", c.key());
        let footnote = format!(
            "[{}] {}",
            &word[word.len() - 2..word.len() - 1],
            note[3..].replace("**", "").trim_end()
        );
        assert!(table.contains(&footnote), "no footnote {footnote:?}");
    }
    assert_eq!(
        not_ok,
        6 * 2 * 3 + 6,
        "3 ipvlan datapaths skipped, one cluster IP failed"
    );
}

#[test]
fn proof_counters_and_cpu_and_benchmarks_are_shown() {
    let r = blog();
    let md = render_markdown(&r, &[]);
    let proof = section(&md, "## Proof of path");
    assert!(proof.contains(
        "| cell | status | bpf_program_runs | bpf_service_hits | iptables_dnat_packets |"
    ));
    for c in &r.cells {
        let line = proof
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", c.key())))
            .unwrap_or_else(|| panic!("no proof row for {}", c.key()));
        for v in c.proof.values() {
            assert!(line.contains(&format!(" {v} |")), "{line}");
        }
    }
    let cpu = section(&md, "## CPU cost");
    assert!(cpu.contains("| cell | client CPU % | server CPU % | CPU s/GB |"));
    assert_eq!(
        cpu.lines().filter(|l| l.starts_with("| `")).count(),
        r.cells
            .iter()
            .filter(|c| c.metrics.contains_key("cpu_client_percent"))
            .count()
    );
    let bench = section(&md, "## Benchmarks of dplab itself");
    assert!(bench.contains("| lab_setup_ms_median | 212 |"));
}

#[test]
fn reading_names_the_best_and_what_is_within_noise() {
    let md = render_markdown(&blog(), &[]);
    let reading = section(&md, "## Reading");
    // In the fixture macvlan has the highest tcp-stream pod IP throughput.
    let line = reading
        .lines()
        .find(|l| l.starts_with("- **tcp-stream throughput, pod IP**"))
        .expect("tcp-stream pod IP reading");
    assert!(line.contains("highest: macvlan 19."), "{line}");
    assert!(line.contains("Ranking: macvlan"), "{line}");
    let line = reading
        .lines()
        .find(|l| l.starts_with("- **ping round-trip time, pod IP**"))
        .expect("ping reading");
    assert!(line.contains("lowest: macvlan"), "{line}");
    assert!(reading
        .contains("- **tcp-stream throughput, cluster IP / pod IP**: veth-routed via iptables"));
    // Skipped and failed cells are never ranked.
    assert!(!reading.contains("ipvlan"));
    assert!(!reading.contains("bridge-nf-off (iptables)"));
}

#[test]
fn multi_node_tables_show_every_path_per_overlay() {
    let r = multinode();
    let md = render_markdown(&r, &[]);
    assert!(!md.contains("## Single node"));
    let routed = section(&md, "### overlay routed");
    let routed = &routed[..routed.find("### overlay vxlan").unwrap()];
    let vxlan = section(&md, "### overlay vxlan");
    for (table, overlay) in [(routed, "routed"), (vxlan, "vxlan")] {
        assert!(table.contains(
            "| path | placement | target | RTT ms | bandwidth Gbit/s | latency µs (p50) | requests/s |"
        ));
        for c in r
            .cells
            .iter()
            .filter(|c| c.overlay.as_deref() == Some(overlay))
        {
            let row = format!(
                "| {} > {} | {} | {} |",
                c.client,
                c.server,
                c.placement.as_deref().unwrap(),
                c.target
            );
            let line = table
                .lines()
                .find(|l| l.starts_with(&row))
                .unwrap_or_else(|| panic!("no row {row} in {table}"));
            let metric = match c.workload.as_str() {
                "ping" => "rtt_ms",
                "tcp-stream" => "throughput_gbps",
                "tcp-rr" => "latency_us_p50",
                "http" => "requests_per_s",
                other => panic!("unexpected workload {other}"),
            };
            match c.status {
                CellStatus::Ok => assert!(line.contains(&format_metric(&c.metrics[metric]))),
                _ => assert!(line.contains("failed [1]"), "{line}"),
            }
        }
        // Host-network paths have no http server: a dash, not a gap.
        let node = table
            .lines()
            .find(|l| l.starts_with("| node1 > node2"))
            .unwrap();
        assert!(node.ends_with("| – |"), "{node}");
    }
    assert!(md.contains("server pod-c did not answer within 5 s"));
    assert!(!md.contains("## Other cells"));
}

#[test]
fn overlay_ratio_table_divides_vxlan_by_routed() {
    let r = multinode();
    let md = render_markdown(&r, &[]);
    let table = section(&md, "### vxlan / routed, cross-node");
    let median = |overlay: &str, client: &str, workload: &str, metric: &str| {
        r.cells
            .iter()
            .find(|c| {
                c.overlay.as_deref() == Some(overlay)
                    && c.placement.as_deref() == Some("cross-node")
                    && c.client == client
                    && c.workload == workload
            })
            .unwrap()
            .metrics[metric]
            .median
    };
    let bw = median("vxlan", "pod-a", "tcp-stream", "throughput_gbps")
        / median("routed", "pod-a", "tcp-stream", "throughput_gbps");
    let row = table
        .lines()
        .find(|l| l.starts_with("| pod-a > pod-c |"))
        .expect("cross-node pod row");
    assert!(row.contains(&format!("{bw:.2}")), "{row} lacks {bw:.2}");
    // tcp-rr failed on vxlan: no ratio for it.
    let cols: Vec<&str> = row.split(" | ").collect();
    assert_eq!(cols[5], "–", "{row}");
    // Same-node paths are not in the cross-node ratio table.
    assert!(!table.contains("pod-a > pod-b"));
    assert!(table.contains("| node1 > node2 | node-ip |"));
}

#[test]
fn cells_that_fit_no_table_are_listed_not_dropped() {
    let mut r = multinode();
    // A workload the multi-node tables have no column for.
    let mut crr = r.cells[0].clone();
    crr.workload = "tcp-crr".to_string();
    // A second pod IP cell for the same single-node slot.
    let mut blog = blog();
    let mut twin = blog.cells[0].clone();
    twin.client = "pod-c".to_string();
    blog.cells.push(twin.clone());
    r.cells.push(crr.clone());
    for (results, cell) in [(&r, &crr), (&blog, &twin)] {
        let md = render_markdown(results, &[]);
        let other = section(&md, "## Other cells");
        assert!(
            other.contains(&format!("| `{}` |", cell.key())),
            "{} missing from {other}",
            cell.key()
        );
        assert_eq!(other.lines().filter(|l| l.starts_with("| `")).count(), 1);
    }
}

#[test]
fn a_run_without_cells_still_reports() {
    let mut r = blog();
    r.cells.clear();
    r.benchmarks.clear();
    let md = render_markdown(&r, &[]);
    assert!(md.contains("0 cells: 0 ok, 0 skipped, 0 failed."));
    assert!(md.contains("## Skipped and failed\n\nNone: every cell ran."));
    assert!(md.contains("No cell recorded proof counters."));
    let dir = tempfile::tempdir().unwrap();
    let written = write_report(&r, dir.path()).unwrap();
    assert_eq!(written, [dir.path().join("report.md")]);
}
