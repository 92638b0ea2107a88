//! The SVG charts: well-formed, and showing the bars and legend the
//! results call for.

use dplab::results::chart;
use dplab::results::report::write_report;

use super::{blog, multinode, proxies};

fn assert_svg_parses(svg: &str) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("SVG is not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(
        doc.descendants().any(|n| n.has_tag_name("text")),
        "SVG has no text"
    );
}

#[test]
fn charts_are_well_formed_svg_naming_every_datapath() {
    let r = blog();
    let charts = chart::all_charts(&r).unwrap();
    let names: Vec<&str> = charts.iter().map(|c| c.file_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "tcp-stream-throughput.svg",
            "udp-stream-throughput.svg",
            "tcp-rr-latency.svg",
            "tcp-crr-latency.svg",
            "http-latency.svg"
        ]
    );
    for c in &charts {
        assert_svg_parses(&c.svg);
    }
    let tcp = &charts[0].svg;
    for dp in [
        "veth-routed",
        "bridge-nf-off",
        "macvlan",
        "ipvlan-l2",
        "veth-ebpf",
    ] {
        assert!(
            tcp.contains(&format!(">\n{dp}\n<")) || tcp.contains(&format!(">{dp}<")),
            "{dp} not labelled"
        );
    }
    assert!(tcp.contains("throughput (Gbit/s)"));
    assert!(tcp.contains("cluster IP (iptables): failed"));
    assert!(tcp.contains("pod IP: skipped"));
    let multi = chart::all_charts(&multinode()).unwrap();
    let names: Vec<&str> = multi.iter().map(|c| c.file_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "overlay-bandwidth.svg",
            "tcp-rr-latency.svg",
            "http-latency.svg"
        ]
    );
    assert!(multi[0]
        .svg
        .contains("pod-a &gt; pod-c pod-ip (cross-node)"));
    for c in &multi {
        assert_svg_parses(&c.svg);
    }
}

#[test]
fn write_report_writes_markdown_linking_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_report(&blog(), dir.path()).unwrap();
    assert!(written.iter().all(|p| p.exists()));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for p in written
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
    {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            md.contains(&format!("]({name})")),
            "report does not link {name}"
        );
        assert_svg_parses(&std::fs::read_to_string(p).unwrap());
    }
    assert_eq!(written.len(), 6);
}

/// A `<text>` element's content, trimmed.
fn text_of(n: roxmltree::Node) -> String {
    n.text().unwrap_or_default().trim().to_string()
}

fn number(n: roxmltree::Node, attr: &str) -> f64 {
    n.attribute(attr)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{attr} of {n:?}"))
}

#[test]
fn throughput_chart_has_a_bar_per_measured_cell_and_a_legend_per_target_and_proxy() {
    let r = proxies();
    let chart = chart::throughput_bars(&r, "tcp-stream").unwrap().unwrap();
    let doc = roxmltree::Document::parse(&chart.svg).unwrap();
    let rects: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .collect();
    let texts: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .collect();
    // Legend: a 12 px swatch 18 px left of each name, in this order.
    let legend: Vec<(String, String)> = texts
        .iter()
        .filter_map(|t| {
            let swatch = rects.iter().find(|r| {
                number(**r, "width") == 12.0
                    && number(**r, "x") == number(*t, "x") - 18.0
                    && number(**r, "y") == number(*t, "y") - 6.0
                    && r.attribute("fill") != Some("none")
            })?;
            Some((text_of(*t), swatch.attribute("fill")?.to_string()))
        })
        .collect();
    let names: Vec<&str> = legend.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "pod IP",
            "cluster IP (iptables)",
            "cluster IP (nftables)",
            "cluster IP (ipvs)",
            "cluster IP (ebpf)",
            "cluster IP (socket-lb)",
            "node port (iptables)",
            "node port (nftables)",
            "node port (ebpf)",
        ]
    );
    let fills: Vec<&str> = legend.iter().map(|(_, f)| f.as_str()).collect();
    let mut distinct = fills.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        fills.len(),
        "each series its own fill: {fills:?}"
    );
    // Bars (taller than the swatches): one per ok cell, in its series' fill.
    for (name, fill) in &legend {
        let bars = rects
            .iter()
            .filter(|r| r.attribute("fill") == Some(fill.as_str()) && number(**r, "height") > 12.0)
            .count();
        let (target, proxy) = match name.split_once(" (") {
            None => ("pod-ip", None),
            Some((t, p)) => (
                if t == "node port" {
                    "node-port"
                } else {
                    "cluster-ip"
                },
                Some(p.trim_end_matches(')')),
            ),
        };
        let ok = r
            .cells
            .iter()
            .filter(|c| {
                c.workload == "tcp-stream"
                    && c.target == target
                    && c.service_proxy.as_deref() == proxy
                    && c.status == dplab::results::CellStatus::Ok
            })
            .count();
        assert_eq!(bars, ok, "bars of {name}");
    }
    // Cells that did not run say so where their bar would be.
    let words: Vec<String> = texts.iter().map(|t| text_of(*t)).collect();
    let count = |w: &str| words.iter().filter(|t| *t == w).count();
    assert_eq!(count("cluster IP (iptables): unreachable"), 1);
    assert_eq!(count("node port (nftables): unreachable"), 1);
    assert_eq!(count("cluster IP (ipvs): skipped"), 4);
    assert_eq!(count("cluster IP (socket-lb): failed"), 1);
    for dp in ["veth-routed", "bridge-nf-off", "veth-ebpf", "ipvlan-l2"] {
        assert_eq!(count(dp), 1, "{dp} labelled once");
    }
}
