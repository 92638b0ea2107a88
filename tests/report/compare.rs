//! `dplab compare`: cells matched by key, ratios and significance.

use dplab::results::compare::compare;
use dplab::results::CellStatus;

use super::{blog, fixture, multinode, proxies};

#[test]
fn compare_with_itself_gives_one_everywhere() {
    for r in [blog(), multinode(), proxies()] {
        let c = compare(&r, &r);
        let ok_metrics: usize = r
            .cells
            .iter()
            .filter(|c| c.status == CellStatus::Ok)
            .map(|c| c.metrics.len())
            .sum();
        assert_eq!(c.metrics.len(), ok_metrics);
        for m in &c.metrics {
            // Also the zero medians (retransmits): equal is 1.00.
            assert_eq!(format!("{:.2}", m.ratio.unwrap()), "1.00", "{m:?}");
            assert!(!m.significant);
        }
        assert!(c.cells_only_in_a.is_empty() && c.cells_only_in_b.is_empty());
        let table = c.render_table();
        assert!(!table.contains("significant\n"));
    }
}

#[test]
fn compare_computes_ratios_and_significance_on_a_hand_made_pair() {
    let a = fixture("compare-a.json");
    let b = fixture("compare-b.json");
    let c = compare(&a, &b);
    assert_eq!(c.metrics.len(), 2);
    let tcp = &c.metrics[0];
    assert_eq!(tcp.cell, "veth-routed/pod-ip/tcp-stream/pod-b->pod-a");
    assert_eq!(tcp.metric, "throughput_gbps");
    assert_eq!(tcp.ratio, Some(1.25));
    assert!(tcp.significant);
    let ping = &c.metrics[1];
    assert_eq!(ping.metric, "rtt_ms");
    assert!((ping.ratio.unwrap() - 1.02).abs() < 1e-9);
    assert!(!ping.significant, "0.049–0.051 and 0.050–0.052 overlap");
    assert_eq!(c.cells_only_in_a, ["bridge/pod-ip/tcp-stream/pod-b->pod-a"]);
    assert_eq!(
        c.cells_only_in_b,
        ["macvlan/pod-ip/tcp-stream/pod-b->pod-a"]
    );

    let table = c.render_table();
    assert!(table.contains("1.25  significant"), "{table}");
    assert!(table.contains("1.02  noise"), "{table}");
    assert!(table.contains("Cells only in A:\n  bridge/pod-ip/tcp-stream/pod-b->pod-a"));

    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["metrics"][0]["ratio"], 1.25);
    assert_eq!(json["metrics"][0]["significant"], true);
    assert_eq!(json["b"]["kernel"], "6.19.1");
}

#[test]
fn compare_keys_cells_by_service_proxy() {
    let a = proxies();
    let mut b = proxies();
    // Run B: iptables is faster on veth-routed, nftables was not run.
    for c in b.cells.iter_mut() {
        if c.datapath == "veth-routed"
            && c.workload == "tcp-stream"
            && c.target == "cluster-ip"
            && c.service_proxy.as_deref() == Some("iptables")
        {
            let m = c.metrics.get_mut("throughput_gbps").unwrap();
            for v in [&mut m.median, &mut m.ci95_low, &mut m.ci95_high] {
                *v += 1.0;
            }
        }
    }
    b.cells
        .retain(|c| c.service_proxy.as_deref() != Some("nftables"));
    let c = compare(&a, &b);
    let find = |key: &str| c.metrics.iter().find(|m| m.cell == key);
    let iptables = find("veth-routed+iptables/cluster-ip/tcp-stream/pod-b->service:web")
        .expect("iptables cell keyed with its proxy");
    assert!(iptables.significant);
    assert!((iptables.ratio.unwrap() - 17.9 / 16.9).abs() < 1e-9);
    let ebpf = find("veth-routed+ebpf/cluster-ip/tcp-stream/pod-b->service:web").unwrap();
    assert_eq!(ebpf.ratio, Some(1.0));
    // Cells without a proxy keep the key they had before proxies.
    assert!(find("veth-routed/pod-ip/tcp-stream/pod-b->pod-a").is_some());
    assert!(
        c.metrics.iter().all(|m| !m.cell.contains('#')),
        "no key repeats"
    );
    let mut only_a = c.cells_only_in_a.clone();
    only_a.sort();
    assert_eq!(
        only_a,
        [
            "bridge-nf-off+nftables/cluster-ip/tcp-stream/pod-b->service:web",
            "bridge-nf-off+nftables/node-port/tcp-stream/pod-b->node1:30080",
            "ipvlan-l2+nftables/cluster-ip/tcp-stream/pod-b->service:web",
            "veth-ebpf+nftables/cluster-ip/tcp-stream/pod-b->service:web",
            "veth-ebpf+nftables/node-port/tcp-stream/pod-b->node1:30080",
            "veth-routed+nftables/cluster-ip/tcp-stream/pod-b->service:web",
            "veth-routed+nftables/node-port/tcp-stream/pod-b->node1:30080",
        ]
    );
    // Unreachable on both sides is reported, not compared.
    assert!(c
        .not_measured_in_both
        .iter()
        .any(|s| s.a == CellStatus::Unreachable && s.b == CellStatus::Unreachable));
    assert!(c.render_table().contains("A unreachable ("));
}
