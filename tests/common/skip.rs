//! How a test that cannot run here says so. It skips loudly (a line that
//! starts with `SKIPPED`, which scripts/test.sh collects) unless the
//! environment promises what is missing, and then it fails:
//! - `DPLAB_REQUIRE` lists what this environment must be able to run
//!   (datapath and service proxy names, and `ebpf` for dplab's eBPF
//!   programs), e.g. `veth-routed,bridge,iptables,ebpf`;
//! - under CI (`CI=true`) privileged tests must have root and clang.
//!
//! Shared by the tests in tests/ (through common/mod.rs, or by path).
#![allow(dead_code)]

/// The capabilities `DPLAB_REQUIRE` promises here.
pub fn required_here() -> Vec<String> {
    std::env::var("DPLAB_REQUIRE")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn is_required(capability: &str) -> bool {
    required_here().iter().any(|c| c == capability)
}

pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips `test`, which needs every one of `needs`, for `reason`; fails
/// instead if all of them are required here. A test that also needs
/// something not promised (ipvs on a kernel without IPVS) still skips:
/// that is what is missing.
pub fn skip(test: &str, needs: &[&str], reason: &str) {
    assert!(
        needs.is_empty() || !needs.iter().all(|c| is_required(c)),
        "{test}: cannot run here ({reason}), but DPLAB_REQUIRE promises {}",
        needs.join(", ")
    );
    eprintln!("SKIPPED {test}: {reason}");
}

/// Whether `test` may run for lack of something only the machine's owner
/// can give (root, clang): skips loudly, or fails under CI.
fn have(test: &str, ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        !under_ci(),
        "{test}: needs {what}, and CI (CI=true) must run every privileged test"
    );
    eprintln!("SKIPPED {test}: needs {what}");
    false
}

/// True when running as root (network namespaces, netlink, BPF).
pub fn root(test: &str) -> bool {
    have(
        test,
        nix::unistd::geteuid().is_root(),
        "root (network namespaces)",
    )
}

/// True when clang runs (it builds dplab's eBPF programs).
pub fn clang(test: &str) -> bool {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let ok = std::process::Command::new(&clang)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    have(test, ok, &format!("{clang} (builds the eBPF programs)"))
}

/// True when dplab's eBPF programs can run here: root, clang, and a kernel
/// that takes them. A kernel that does not skips as capability `ebpf`.
pub fn ebpf(test: &str) -> bool {
    if !root(test) || !clang(test) {
        return false;
    }
    match dplab::ebpf::unavailable_reason() {
        None => true,
        Some(reason) => {
            skip(test, &["ebpf"], &format!("eBPF unavailable: {reason}"));
            false
        }
    }
}

/// A reference tool (iperf3, qperf) the test would compare with is
/// missing: skips loudly, or fails under CI, where
/// scripts/install-deps.sh installs every one.
pub fn missing_tool(test: &str, reason: &str) {
    assert!(
        !under_ci(),
        "{test}: {reason}, and CI (CI=true) installs every tool (scripts/install-deps.sh)"
    );
    eprintln!("SKIPPED {test}: {reason}");
}
