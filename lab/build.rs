//! Compiles every ../bpf/*.c into OUT_DIR/<name>.o with clang -target bpf,
//! and records the git commit the binary is built from.
//!
//! Without clang the crate still builds: `DPLAB_BPF_MISSING` carries the
//! reason, and the `dplab_bpf` cfg is left unset so nothing embeds an object.
//! Without git (a source tarball) the commit is "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(dplab_bpf)");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let bpf_dir = manifest.join("../bpf");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rustc-env=DPLAB_GIT_COMMIT={}", git_commit(&manifest));

    match compile_all(&bpf_dir, &out_dir) {
        Ok(()) => println!("cargo:rustc-cfg=dplab_bpf"),
        Err(reason) => {
            println!("cargo:warning=eBPF programs not built: {reason}");
            println!("cargo:rustc-env=DPLAB_BPF_MISSING={reason}");
        }
    }
}

fn compile_all(bpf_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    match Command::new(&clang).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => {
            return Err(format!(
                "{clang} not found at build time; install clang and rebuild"
            ))
        }
    }
    let mut sources: Vec<PathBuf> = std::fs::read_dir(bpf_dir)
        .map_err(|e| format!("cannot read {}: {e}", bpf_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    sources.sort();
    for entry in &sources {
        println!("cargo:rerun-if-changed={}", entry.display());
    }
    for source in sources
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
    {
        // A C error is a bug in bpf/, not a missing tool: fail the build.
        if let Err(e) = compile(&clang, bpf_dir, source, out_dir) {
            panic!("{e}");
        }
    }
    Ok(())
}

fn compile(clang: &str, bpf_dir: &Path, source: &Path, out_dir: &Path) -> Result<(), String> {
    let stem = source.file_stem().unwrap().to_string_lossy();
    let object = out_dir.join(format!("{stem}.o"));
    let mut cmd = Command::new(clang);
    cmd.args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg("-I")
        .arg(bpf_dir);
    // Debian keeps <asm/types.h> under the multiarch folder, which clang does
    // not search for the bpf target.
    let multiarch = Path::new("/usr/include").join(format!("{}-linux-gnu", std::env::consts::ARCH));
    if multiarch.is_dir() {
        cmd.arg("-I").arg(multiarch);
    }
    cmd.arg("-c").arg(source).arg("-o").arg(&object);
    let out = cmd
        .output()
        .map_err(|e| format!("running {clang} on {}: {e}", source.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{clang} failed on {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// `git rev-parse --short HEAD`, with "-dirty" when tracked files differ
/// from it; "unknown" when git or the repository is absent.
fn git_commit(manifest: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_string();
    };
    // Rerun when HEAD moves, the index changes, or a source file is edited
    // (the last two can turn the tree dirty or clean).
    // A missing file would make cargo rerun on every build: a packed ref
    // has none, and then HEAD and the index still catch a new commit.
    let head_ref = git(&["symbolic-ref", "-q", "HEAD"]).unwrap_or_default();
    for file in ["HEAD", "index", head_ref.as_str()] {
        let path = git(&["rev-parse", "--git-path", file]).map(|p| manifest.join(p));
        if let Some(path) = path.filter(|p| !file.is_empty() && p.is_file()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed={}", manifest.join("src").display());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|changes| !changes.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}
