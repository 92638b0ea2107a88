//! The nftables proxy's text against golden files, and the golden files
//! against the kernel: each is loaded with `nft -f` inside a scratch
//! namespace, so a golden file that nft or the kernel would refuse fails
//! here. `DPLAB_BLESS=1` rewrites the golden files from the renderer.

use std::path::{Path, PathBuf};

use dplab::service::nftables::{list_table, load, translated_packets};
use dplab::service::nftables_rules::{render_change, render_ruleset};
use dplab::service::ServiceChange;
use dplab::topology::Plan;

/// Two backends (so the numgen cascade), a node port and a UDP service.
const TWO_BACKENDS: &str = r#"
name = "two-backends"
service_cidr = "10.96.0.0/16"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"
[[pods]]
name = "pod-b"
node = "node1"
address = "192.168.10.11"
[[pods]]
name = "pod-c"
node = "node1"
address = "192.168.10.12"
[[services]]
name = "web"
cluster_ip = "10.96.0.10"
port = 80
target_port = 8080
node_port = 30080
backends = ["pod-a", "pod-c"]
[[services]]
name = "dns"
cluster_ip = "10.96.0.53"
port = 53
protocol = "udp"
backends = ["pod-c"]
"#;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
}

fn blog_plan() -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/blog.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    dplab::topology::parse(&path, &text).unwrap()
}

fn two_backends_plan() -> Plan {
    dplab::topology::parse(Path::new("two-backends.toml"), TWO_BACKENDS).unwrap()
}

/// A service added to the two-backends lab, and pod-a leaving `web`.
fn changes() -> (Plan, ServiceChange, Plan, ServiceChange) {
    let mut added = two_backends_plan();
    let mut svc = added.services[0].clone();
    svc.name = "api".into();
    svc.cluster_ip = "10.96.0.20".parse().unwrap();
    svc.node_port = Some(30443);
    svc.backends = vec![1, 2];
    added.services.push(svc.clone());
    let mut removed = added.clone();
    removed.services[0].backends.retain(|&p| p != 0);
    let remove = ServiceChange::RemoveEndpoint { service: 0, pod: 0 };
    (added, ServiceChange::AddService(svc), removed, remove)
}

/// Every golden file and the text that must equal it.
fn rendered() -> Vec<(&'static str, String)> {
    let (added, add, removed, remove) = changes();
    vec![
        ("nftables-blog.nft", render_ruleset(&blog_plan(), 0, false)),
        (
            "nftables-two-backends.nft",
            render_ruleset(&two_backends_plan(), 0, true),
        ),
        ("nftables-add-service.nft", render_change(&added, &add)),
        (
            "nftables-remove-endpoint.nft",
            render_change(&removed, &remove),
        ),
    ]
}

fn golden(name: &str) -> String {
    let path = golden_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn rendering_matches_the_golden_files() {
    for (name, text) in rendered() {
        if std::env::var_os("DPLAB_BLESS").is_some() {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(golden_dir().join(name), &text).unwrap();
        }
        assert_eq!(
            text,
            golden(name),
            "{name} differs (DPLAB_BLESS=1 rewrites it)"
        );
    }
}

#[test]
fn golden_rulesets_follow_kube_proxy_layout() {
    let two = golden("nftables-two-backends.nft");
    for needle in [
        "type nat hook prerouting priority dstnat;",
        "type nat hook postrouting priority srcnat;",
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
        "10.96.0.10 . tcp . 80 : goto service-web/tcp",
        "tcp . 30080 : goto external-web/tcp",
        "numgen random mod 2 0 counter goto endpoint-tcp__192.168.10.10/8080 comment \"web -> pod-a\"",
        "\tcounter goto endpoint-tcp__192.168.10.12/8080 comment \"web -> pod-c\"",
        "counter goto endpoint-udp__192.168.10.12/53",
        "meta l4proto udp dnat to 192.168.10.12:53",
        "ip saddr 192.168.10.10 jump mark-for-masquerade",
        "ip saddr 192.168.10.0/24 ip daddr 192.168.10.0/24 masquerade",
    ] {
        assert!(two.contains(needle), "missing: {needle}");
    }
    let blog = golden("nftables-blog.nft");
    assert!(!blog.contains("ip saddr 192.168.10.0/24 ip daddr"));
    for text in [&blog, &two] {
        for line in text.lines().filter(|l| l.contains("goto endpoint-")) {
            assert!(
                line.contains("counter goto") && line.contains("comment"),
                "every endpoint pick counts (the proof): {line}"
            );
        }
        assert!(!text.contains("vmap {"), "no anonymous set: O(sets²) loads");
    }
    // Endpoint chains are shared: the added service reuses pod-c's, and
    // removing an endpoint empties its chain only when no service uses it.
    let add = golden("nftables-add-service.nft");
    assert!(!add.contains("endpoint-tcp__192.168.10.12/8080 {"), "{add}");
    assert!(golden("nftables-remove-endpoint.nft")
        .contains("flush chain ip dplab endpoint-tcp__192.168.10.10/8080"));
    let (added, ..) = changes();
    let mut without_c = added.clone();
    without_c.services[0].backends.retain(|&p| p != 2);
    let keep = render_change(
        &without_c,
        &ServiceChange::RemoveEndpoint { service: 0, pod: 2 },
    );
    assert!(
        !keep.contains("flush chain ip dplab endpoint-"),
        "api still uses it: {keep}"
    );
    // A change never uses the commands that make nft list every chain.
    for name in ["nftables-add-service.nft", "nftables-remove-endpoint.nft"] {
        let change = golden(name);
        for slow in ["add rule", "add element", "delete chain"] {
            assert!(!change.contains(slow), "{name}: {slow}");
        }
    }
}

/// A namespace of this test's own, removed on drop.
struct Scratch(String);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let name = format!("nftgolden-{tag}-{}", std::process::id());
        dplab::netns::create(&name).expect("create scratch namespace");
        Scratch(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = dplab::netns::delete(&self.0);
    }
}

fn privileged(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("SKIPPED {test}: needs root (network namespaces)");
        false
    }
}

fn listing(ns: &str) -> String {
    dplab::command::run_in(ns, "nft", &["list", "table", "ip", "dplab"], None).unwrap()
}

#[test]
fn golden_rulesets_load_into_the_kernel() {
    if !privileged("nftables golden rulesets") {
        return;
    }
    for name in ["nftables-blog.nft", "nftables-two-backends.nft"] {
        let ns = Scratch::new("full");
        load(&ns.0, &golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Loading twice replaces the table in one transaction.
        load(&ns.0, &golden(name)).unwrap_or_else(|e| panic!("{name} again: {e}"));
        assert_eq!(translated_packets(&list_table(&ns.0).unwrap()), Ok(0));
    }
    let ns = Scratch::new("change");
    load(&ns.0, &golden("nftables-two-backends.nft")).unwrap();
    load(&ns.0, &golden("nftables-add-service.nft")).unwrap();
    let after_add = listing(&ns.0);
    for needle in [
        "10.96.0.20 . tcp . 80 : goto service-api/tcp",
        "tcp . 30443 : goto external-api/tcp",
        "chain endpoint-tcp__192.168.10.11/8080 {",
    ] {
        assert!(
            after_add.contains(needle),
            "after add: {needle}\n{after_add}"
        );
    }
    assert_eq!(
        after_add
            .matches("chain endpoint-tcp__192.168.10.12/8080 {")
            .count(),
        1
    );
    load(&ns.0, &golden("nftables-remove-endpoint.nft")).unwrap();
    let after_remove = listing(&ns.0);
    // pod-a's chain stays, empty, and nothing jumps to it.
    assert!(!after_remove.contains("goto endpoint-tcp__192.168.10.10/8080"));
    assert!(!after_remove.contains("dnat to 192.168.10.10:8080"));
    assert!(after_remove.contains(
        "counter packets 0 bytes 0 goto endpoint-tcp__192.168.10.12/8080 comment \"web -> pod-c\""
    ));
    // A change that fails half-way applies as a whole or not at all.
    let broken = format!(
        "{}flush chain ip dplab no-such-chain\n",
        golden("nftables-remove-endpoint.nft")
    );
    assert!(load(&ns.0, &broken).is_err());
    assert_eq!(listing(&ns.0), after_remove, "a failed change left a trace");
    // A later service on pod-a refills its emptied chain, once.
    let (_, _, mut removed, _) = changes();
    let mut again = removed.services[0].clone();
    again.name = "again".into();
    again.cluster_ip = "10.96.0.30".parse().unwrap();
    again.node_port = None;
    again.backends = vec![0];
    removed.services.push(again.clone());
    load(
        &ns.0,
        &render_change(&removed, &ServiceChange::AddService(again)),
    )
    .unwrap();
    let refilled = listing(&ns.0);
    assert_eq!(
        refilled.matches("dnat to 192.168.10.10:8080").count(),
        1,
        "{refilled}"
    );
}
