//! A program the verifier rejects must fail with the verifier's own words in
//! the error, so a developer sees why without re-running anything.

use std::process::Command;

#[path = "common/skip.rs"]
mod skip;

/// Reads packet data without the bounds check the verifier demands.
const UNCHECKED: &str = r#"
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
__attribute__((section("classifier"), used))
int unchecked(struct __sk_buff *skb)
{
    unsigned char *data = (unsigned char *)(long)skb->data;
    return data[40] == 6 ? TC_ACT_SHOT : TC_ACT_OK;
}
char _license[] __attribute__((section("license"), used)) = "GPL";
"#;

#[test]
fn rejected_program_shows_the_verifier_log() {
    if !skip::root("verifier log") || !skip::clang("verifier log") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("unchecked.c");
    let obj = dir.path().join("unchecked.o");
    std::fs::write(&src, UNCHECKED).unwrap();
    // As lab/build.rs: Debian keeps <asm/types.h> under the multiarch folder.
    let multiarch = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let built = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-I", &multiarch, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status();
    // clang runs (checked above): failing to build is a broken setup.
    assert!(
        built.as_ref().is_ok_and(|s| s.success()),
        "clang could not build the test program: {built:?}"
    );
    let bytes = std::fs::read(&obj).unwrap();
    let err = dplab::ebpf::check_classifier("unchecked.o", &bytes, "unchecked")
        .expect_err("the verifier accepted an unchecked packet read");
    let shown = err.to_string();
    assert!(shown.contains("eBPF program unchecked: load"), "{shown}");
    assert!(shown.contains("Verifier output"), "{shown}");
    assert!(
        shown.contains("invalid access to packet"),
        "the verifier's reason is missing: {shown}"
    );
}
