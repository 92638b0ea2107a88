//! Service proxies as an axis: one column per proxy, node-port cells,
//! unreachable cells, and the reading per proxy. The proxies fixture is
//! hand-made (hostname "fixture"): veth-routed, bridge-nf-off and
//! veth-ebpf through iptables, nftables, ipvs, ebpf and socket-lb, and an
//! ipvlan-l2 the kernel lacks.

use dplab::results::report::{format_metric, median_ratio, render_markdown};
use dplab::results::{Cell, CellStatus, Results};

use super::{blog, fixture, proxies, section};

/// The table lines (`| ...`) of the first table after `heading` whose
/// header starts with `header`.
fn table<'a>(md: &'a str, heading: &str, header: &str) -> Vec<&'a str> {
    let from = &md[md.find(heading).unwrap_or_else(|| panic!("no {heading}"))..];
    let start = from
        .find(header)
        .unwrap_or_else(|| panic!("no table {header:?} under {heading}"));
    from[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .collect()
}

/// The slots of a table row, without the outer bars.
fn slots(line: &str) -> Vec<&str> {
    line.trim_matches('|').split(" | ").map(str::trim).collect()
}

fn tcp_stream<'a>(r: &'a Results, datapath: &str, target: &str, proxy: Option<&str>) -> &'a Cell {
    r.cells
        .iter()
        .find(|c| {
            c.workload == "tcp-stream"
                && c.datapath == datapath
                && c.target == target
                && c.service_proxy.as_deref() == proxy
        })
        .unwrap_or_else(|| panic!("no tcp-stream cell {datapath} {target} {proxy:?}"))
}

#[test]
fn several_proxies_give_one_column_per_proxy_and_a_table_per_target() {
    let r = proxies();
    let md = render_markdown(&r, &[]);
    assert!(md.contains("## Single node: pod IP, cluster IP and node port per datapath"));
    let heading = "### tcp-stream: throughput";
    let cluster = table(
        &md,
        heading,
        "| datapath | pod IP | cluster IP (iptables) | cluster IP (nftables) | cluster IP (ipvs) \
         | cluster IP (ebpf) | cluster IP (socket-lb) |",
    );
    let node = table(
        &md,
        heading,
        "| datapath | pod IP | node port (iptables) | node port (nftables) | node port (ebpf) |",
    );
    // Header, rule, and a row per datapath in the order the run met them.
    for t in [&cluster, &node] {
        let rows: Vec<&str> = t[2..].iter().map(|l| slots(l)[0]).collect();
        assert_eq!(
            rows,
            ["veth-routed", "bridge-nf-off", "veth-ebpf", "ipvlan-l2"]
        );
    }
    let mut checked = 0;
    for c in r.cells.iter().filter(|c| c.workload == "tcp-stream") {
        let t = if c.target == "node-port" {
            &node
        } else {
            &cluster
        };
        let column = match &c.service_proxy {
            None => 1,
            Some(p) => {
                let head = slots(t[0]);
                let title = format!(
                    "{} ({p})",
                    if c.target == "node-port" {
                        "node port"
                    } else {
                        "cluster IP"
                    }
                );
                head.iter().position(|h| *h == title).expect("proxy column")
            }
        };
        let row = t
            .iter()
            .find(|l| l.starts_with(&format!("| {} |", c.datapath)))
            .unwrap();
        let slot = slots(row)[column];
        match c.status {
            CellStatus::Ok if c.target == "pod-ip" => {
                assert_eq!(slot, format_metric(&c.metrics["throughput_gbps"]));
            }
            CellStatus::Ok => {
                // The value, then its ratio to pod IP from the medians.
                let pod = tcp_stream(&r, &c.datapath, "pod-ip", None);
                let m = &c.metrics["throughput_gbps"];
                let ratio = median_ratio(&pod.metrics["throughput_gbps"], m).unwrap();
                let expected = format!("{} ×{ratio:.2}", format_metric(m));
                assert!(slot.starts_with(&expected), "{slot} is not {expected}…");
            }
            CellStatus::Skipped => assert!(slot.starts_with("skipped ["), "{slot}"),
            CellStatus::Unreachable => assert!(slot.starts_with("unreachable ["), "{slot}"),
            CellStatus::Failed => assert!(slot.starts_with("failed ["), "{slot}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 31);
    // A proxy not run on a datapath is a dash, not a gap.
    let nf_off = cluster.iter().find(|l| l.starts_with("| bridge-nf-off |"));
    assert_eq!(slots(nf_off.unwrap())[6], "–");
    // Overlapping intervals carry `≈`: ebpf on veth-routed 17.4–17.8 against
    // pod IP 17.5–17.9; iptables 16.7–17.1 does not overlap it.
    let routed = slots(cluster[2]);
    assert!(routed[5].ends_with("×0.99 ≈"), "{}", routed[5]);
    assert!(routed[2].ends_with("×0.95"), "{}", routed[2]);
    assert!(!md.contains("## Other cells"), "every cell has its slot");
}

#[test]
fn unreachable_cells_are_counted_and_explained_once() {
    let r = proxies();
    let md = render_markdown(&r, &[]);
    assert!(md.contains("37 cells: 24 ok, 8 skipped, 4 unreachable, 1 failed."));
    let unreachable: Vec<&Cell> = r
        .cells
        .iter()
        .filter(|c| c.status == CellStatus::Unreachable)
        .collect();
    assert_eq!(unreachable.len(), 4);
    let reason = unreachable[0].reason.as_deref().unwrap();
    // Every slot of the four points at the same note, and the note says why.
    let tables = section(&md, "### tcp-stream: throughput");
    let n = tables
        .lines()
        .find_map(|l| l.strip_prefix('[').filter(|l| l.contains(reason)))
        .and_then(|l| l.split(']').next())
        .expect("a footnote with the reason");
    assert!(tables.contains(&format!("[{n}] unreachable: {reason}  \n")));
    assert_eq!(
        tables.matches(&format!("unreachable [{n}]")).count(),
        4,
        "{tables}"
    );
    let list = section(&md, "## Skipped, unreachable and failed");
    let note = format!("{n}. **unreachable**: {reason}\n");
    let under = &list[list.find(&note).expect("listed")..];
    for c in &unreachable {
        assert!(under.contains(&format!("   - `{}`\n", c.key())));
    }
    // Runs without unreachable cells keep their words.
    let blog_md = render_markdown(&blog(), &[]);
    assert!(blog_md.contains("## Skipped and failed"));
    assert!(!blog_md.contains("unreachable"));
}

#[test]
fn reading_says_per_datapath_which_proxy_comes_closest_to_pod_ip() {
    let md = render_markdown(&proxies(), &[]);
    let reading = section(&md, "## Reading");
    let line = |start: &str| {
        reading
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start} in {reading}"))
    };
    // veth-routed: ebpf 17.6 (17.4–17.8), nftables 17.0 (16.8–17.2),
    // iptables 16.9 (16.7–17.1); pod IP 17.7 (17.5–17.9).
    assert_eq!(
        line("- **tcp-stream throughput, cluster IP on veth-routed**"),
        "- **tcp-stream throughput, cluster IP on veth-routed**: best through ebpf, ×0.99 of \
         pod IP (within noise of pod IP). By proxy: ebpf 17.6 ×0.99 > nftables 17.0 ×0.96 ≈ \
         iptables 16.9 ×0.95. Not measured: ipvs skipped, socket-lb failed."
    );
    // Only one proxy carries traffic on bridge-nf-off; the others say why not.
    let nf_off = line("- **tcp-stream throughput, cluster IP on bridge-nf-off**");
    assert!(nf_off.contains("best through ebpf, ×0.99"), "{nf_off}");
    assert!(nf_off.contains("iptables unreachable, nftables unreachable"));
    assert!(!nf_off.contains("By proxy"));
    // Node port has its own lines.
    assert!(line("- **tcp-stream throughput, node port on veth-ebpf**")
        .contains("By proxy: ebpf 19.3 ×0.98 > nftables 17.2 ×0.87 ≈ iptables 16.9 ×0.86."));
    // Lower is better: latency ranks with `<`; a gap beyond noise is named.
    assert!(line("- **tcp-rr latency p50, cluster IP on veth-ebpf**")
        .contains("By proxy: ebpf 19.4 ×1.02 < iptables 23.0 ×1.21."));
    assert!(line("- **tcp-rr transactions, cluster IP on veth-routed**")
        .contains("×0.98 of pod IP (below pod IP beyond noise)"));
    // Per proxy, the datapaths ranked.
    assert_eq!(
        line("- **tcp-stream throughput, cluster IP (ebpf)**"),
        "- **tcp-stream throughput, cluster IP (ebpf)** (Gbit/s): highest: veth-ebpf 19.6, \
         ahead of every other beyond noise. Ranking: veth-ebpf 19.6 ×0.99 > bridge-nf-off \
         18.0 ×0.99 ≈ veth-routed 17.6 ×0.99."
    );
    // Nothing ran on ipvlan-l2: no sentence about it.
    assert!(!reading.contains("ipvlan"));
}

#[test]
fn one_proxy_per_datapath_keeps_the_service_proxy_column() {
    let md = render_markdown(&blog(), &[]);
    let t = table(
        &md,
        "### tcp-stream: throughput",
        "| datapath | pod IP | cluster IP | service proxy | cluster/pod |",
    );
    assert_eq!(t.len(), 2 + 8);
    let reading = section(&md, "## Reading");
    assert!(reading.contains("- **tcp-stream throughput, cluster IP / pod IP**: "));
    assert!(!reading.contains(" on veth-routed**"));
    // Pod IP alone: no service columns at all.
    let md = render_markdown(&fixture("compare-a.json"), &[]);
    let t = table(&md, "### tcp-stream: throughput", "| datapath | pod IP |");
    assert_eq!(t[0], "| datapath | pod IP |");
}

#[test]
fn node_port_with_one_proxy_per_datapath_gets_its_columns() {
    let mut r = blog();
    let node_ports: Vec<Cell> = r
        .cells
        .iter()
        .filter(|c| c.target == "cluster-ip")
        .map(|c| Cell {
            target: "node-port".into(),
            server: "node1:30080".into(),
            ..c.clone()
        })
        .collect();
    r.cells.extend(node_ports);
    let md = render_markdown(&r, &[]);
    assert!(md.contains("## Single node: pod IP, cluster IP and node port per datapath"));
    let t = table(
        &md,
        "### tcp-stream: throughput",
        "| datapath | pod IP | cluster IP | node port | service proxy | cluster/pod | node port/pod |",
    );
    let bridge = slots(t.iter().find(|l| l.starts_with("| bridge |")).unwrap());
    // The copies carry the cluster IP values, so both ratios are the same.
    assert_eq!(bridge[2], bridge[3]);
    assert_eq!(bridge[4], "iptables");
    assert_eq!(bridge[5], bridge[6]);
    assert!(!md.contains("## Other cells"));
    let reading = section(&md, "## Reading");
    assert!(reading
        .contains("- **tcp-stream throughput, node port / pod IP**: veth-routed via iptables"));
}
