//! Attaching the socket hooks to the lab's cgroup. Each attachment is a
//! bpf_link (several programs may sit on one cgroup, as with
//! BPF_F_ALLOW_MULTI), pinned under the run's `cgroup/` pin folder so it
//! outlives the process (`dplab up`); removing the pin detaches it.

use std::fs::File;
use std::path::{Path, PathBuf};

use aya::programs::links::{CgroupAttachMode, FdLink, PinnedLink};
use aya::programs::CgroupSockAddr;

use super::{CgroupLbError, SockProgram};
use crate::ebpf::{pins, EbpfError};

/// The run's folder of cgroup link pins.
pub(super) fn links_dir(run_id: &str) -> Result<PathBuf, EbpfError> {
    Ok(pins::pin_dir(run_id)?.join("cgroup"))
}

/// Attaches the loaded `prog` to cgroup `cgroup` and pins the link as
/// `<links_dir>/<program name>`.
pub(super) fn attach(
    prog: &mut CgroupSockAddr,
    program: SockProgram,
    cgroup: &Path,
    links_dir: &Path,
) -> Result<PinnedLink, CgroupLbError> {
    let attach_err = |source| CgroupLbError::Attach {
        program: program.name(),
        cgroup: cgroup.to_path_buf(),
        source: Box::new(source),
    };
    let dir = File::open(cgroup).map_err(|source| CgroupLbError::Cgroup {
        path: cgroup.to_path_buf(),
        op: "open for attaching",
        source,
    })?;
    // A bpf_link on a cgroup takes no attach flags: links always coexist
    // with other programs on the same hook.
    let link_id = prog
        .attach(&dir, CgroupAttachMode::Single)
        .map_err(attach_err)?;
    let link = prog.take_link(link_id).map_err(attach_err)?;
    let link = FdLink::try_from(link).map_err(|source| CgroupLbError::LinkFd {
        program: program.name(),
        cgroup: cgroup.to_path_buf(),
        source: Box::new(source),
    })?;
    let pin = links_dir.join(program.name());
    link.pin(&pin).map_err(|source| {
        CgroupLbError::Ebpf(EbpfError::PinLink {
            path: pin.clone(),
            source: Box::new(source),
        })
    })
}

/// Detaches every link pinned in `links_dir` (unpins it; the kernel drops
/// the link once no file or descriptor holds it). Gone counts as detached.
pub(super) fn detach_all(links: Vec<PinnedLink>, links_dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    for link in links {
        if let Err(e) = link.unpin() {
            if e.kind() != std::io::ErrorKind::NotFound {
                errors.push(format!("unpin cgroup link: {e}"));
            }
        }
    }
    // Links pinned by an earlier process of the run.
    for entry in std::fs::read_dir(links_dir).into_iter().flatten().flatten() {
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => errors.push(format!("unpin {}: {e}", entry.path().display())),
        }
    }
    errors
}
