//! Unit tests of the iptables proxy: rule structure, changes, proof.

use super::*;
use std::path::Path;

const TOPO: &str = r#"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"
[[pods]]
name = "pod-c"
node = "node1"
address = "192.168.10.12"
[[services]]
name = "web"
cluster_ip = "10.96.0.10"
port = 80
target_port = 8080
backends = ["pod-a", "pod-c"]
"#;

#[test]
fn rules_follow_kube_proxy_structure() {
    let plan = crate::topology::parse(Path::new("t.toml"), TOPO).unwrap();
    let rules = render_rules(&plan, 0, false);
    assert!(rules.starts_with("*nat\n") && rules.ends_with("COMMIT\n"));
    assert!(rules.contains(
        "-A PREROUTING -m comment --comment \"dplab service portals\" -j DPLAB-SERVICES"
    ));
    assert!(rules
        .contains("-A OUTPUT -m comment --comment \"dplab service portals\" -j DPLAB-SERVICES"));
    assert!(rules.contains("-d 10.96.0.10/32 -p tcp"));
    assert!(rules.contains("--probability 0.50000000000"));
    assert!(rules.contains("-j DNAT --to-destination 192.168.10.10:8080"));
    assert!(rules.contains("-j DNAT --to-destination 192.168.10.12:8080"));
    assert!(!rules.contains("-s 192.168.10.0/24 -d 192.168.10.0/24"));
    for line in rules.lines().filter(|l| l.starts_with("-A DPLAB-S")) {
        assert!(line.contains("-m comment"), "rule without comment: {line}");
    }
    // Chain names fit iptables' 28 characters.
    for line in rules.lines().filter(|l| l.starts_with(':')) {
        let name = line[1..].split(' ').next().unwrap();
        assert!(name.len() <= 28, "{name}");
    }
    let masq = render_rules(&plan, 0, true);
    assert!(masq.contains("-A DPLAB-POSTROUTING -s 192.168.10.0/24 -d 192.168.10.0/24"));
}

#[test]
fn dnat_counters_are_summed() {
    let saved = "*nat\n:PREROUTING ACCEPT [5:300]\n[0:0] -A DPLAB-SERVICES -d 10.96.0.10/32 -j DPLAB-SVC-X\n[3:180] -A DPLAB-SEP-A -p tcp -m tcp -j DNAT --to-destination 192.168.10.10:80\n[2:120] -A DPLAB-SEP-B -p tcp -m tcp -j DNAT --to-destination 192.168.10.12:80\n[9:9] -A DPLAB-SEP-B -s 192.168.10.12/32 -j DPLAB-MARK-MASQ\nCOMMIT\n";
    assert_eq!(dnat_packets(saved), 5);
}

#[test]
fn the_proof_rule_counts_before_any_masquerade() {
    let plan = crate::topology::parse(Path::new("t.toml"), TOPO).unwrap();
    let rules = render_rules(&plan, 0, true);
    let postrouting: Vec<&str> = rules
        .lines()
        .filter(|l| l.starts_with("-A DPLAB-POSTROUTING"))
        .collect();
    assert!(postrouting[0].contains("--ctstate DNAT"), "{postrouting:?}");
    assert!(
        !postrouting[0].contains(" -j "),
        "the proof rule only counts"
    );
    assert!(postrouting[1..].iter().all(|l| l.contains("-j MASQUERADE")));
}

#[test]
fn proof_counter_is_read_from_the_chain_listing() {
    // `iptables -t nat -L DPLAB-POSTROUTING -n -v -x`, iptables 1.8.9.
    let listing = "Chain DPLAB-POSTROUTING (1 references)
pkts      bytes target     prot opt in     out     source               destination
  17     1020            0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate DNAT /* dplab proof: connections DNATed here */
   4      240 MASQUERADE  0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match 0x4000/0x4000
";
    assert_eq!(proof_rule_packets(listing), 17);
    assert_eq!(
        proof_rule_packets("Chain DPLAB-POSTROUTING (1 references)\n"),
        0
    );
}

#[test]
fn an_added_service_goes_first_and_leaves_the_node_port_jump_alone() {
    let mut plan = crate::topology::parse(Path::new("t.toml"), TOPO).unwrap();
    let mut svc = plan.services[0].clone();
    svc.name = "new".into();
    svc.cluster_ip = "10.96.0.11".parse().unwrap();
    plan.services.push(svc.clone());
    let change = render_change(&plan, &ServiceChange::AddService(svc));
    assert!(
        change.contains("-I DPLAB-SERVICES 1 -d 10.96.0.11/32"),
        "{change}"
    );
    assert!(!change.contains("DPLAB-NODEPORTS"), "{change}");
    assert_eq!(change.matches("-j DNAT").count(), 2);
}

#[test]
fn large_clusters_drop_endpoint_comments_as_kube_proxy() {
    let mut plan = crate::topology::parse(Path::new("t.toml"), TOPO).unwrap();
    let first = plan.services[0].clone();
    for i in 0..LARGE_CLUSTER_ENDPOINTS / 2 {
        let mut s = first.clone();
        s.name = format!("s{i}");
        s.cluster_ip = std::net::Ipv4Addr::from(u32::from(first.cluster_ip) + 1 + i as u32);
        plan.services.push(s);
    }
    let rules = render_rules(&plan, 0, false);
    let sep: Vec<&str> = rules
        .lines()
        .filter(|l| l.starts_with("-A DPLAB-SEP-"))
        .collect();
    assert!(!sep.is_empty());
    assert!(sep.iter().all(|l| !l.contains("--comment")), "{}", sep[0]);
    // Portals keep theirs: they name the service.
    assert!(rules.contains("--comment \"s0 cluster IP\""));
}
