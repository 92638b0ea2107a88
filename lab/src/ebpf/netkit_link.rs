//! Attaching a tc program to a netkit device with a BPF link
//! (BPF_LINK_CREATE, attach type BPF_NETKIT_PRIMARY or BPF_NETKIT_PEER,
//! Linux >= 6.7), and pinning that link. aya 0.14 wraps neither for
//! netkit, so these are the two bpf(2) calls themselves.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use aya_obj::generated::{bpf_attach_type, bpf_cmd};

/// Where on a netkit pair a program runs. Both are named through the
/// primary device, which must be in the calling thread's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetkitHook {
    /// Packets the primary (node side) transmits, towards the pod.
    Primary,
    /// Packets the peer (the pod's interface) transmits, out of the pod.
    Peer,
}

impl NetkitHook {
    const fn attach_type(self) -> u32 {
        match self {
            NetkitHook::Primary => bpf_attach_type::BPF_NETKIT_PRIMARY as u32,
            NetkitHook::Peer => bpf_attach_type::BPF_NETKIT_PEER as u32,
        }
    }

    /// Name in link pin files and error messages.
    pub const fn name(self) -> &'static str {
        match self {
            NetkitHook::Primary => "netkit-primary",
            NetkitHook::Peer => "netkit-peer",
        }
    }
}

/// The `link_create` member of `union bpf_attr`, with its netkit part
/// (relative_fd, expected_revision) left zero: attach last.
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}

/// The `BPF_OBJ_*` member of `union bpf_attr`.
#[repr(C)]
struct ObjPinAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

/// bpf(2) with an attribute struct of the command's layout.
fn sys_bpf<T>(cmd: bpf_cmd, attr: &mut T) -> std::io::Result<i32> {
    // SAFETY: `attr` is a live, exclusively borrowed repr(C) struct laid out
    // as the kernel's `union bpf_attr` member for `cmd`, and its true size
    // is passed, so the kernel reads (and zero-extends) only that memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut T,
            std::mem::size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret as i32)
    }
}

/// Attaches program `prog` at `hook` of the netkit pair whose primary has
/// index `primary_ifindex` in the calling thread's namespace. The link
/// lives as long as the returned fd or a pin of it.
pub fn link_create(
    prog: BorrowedFd<'_>,
    primary_ifindex: u32,
    hook: NetkitHook,
) -> std::io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: primary_ifindex,
        attach_type: hook.attach_type(),
        flags: 0,
        relative_fd: 0,
        _pad: 0,
        expected_revision: 0,
    };
    let fd = sys_bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr)?;
    // SAFETY: BPF_LINK_CREATE returned a new file descriptor that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Pins the link `fd` at `path` in bpffs.
pub fn pin(fd: BorrowedFd<'_>, path: &Path) -> std::io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut attr = ObjPinAttr {
        pathname: c_path.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        file_flags: 0,
    };
    sys_bpf(bpf_cmd::BPF_OBJ_PIN, &mut attr).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<LinkCreateAttr>(), 32);
        assert_eq!(std::mem::offset_of!(LinkCreateAttr, expected_revision), 24);
        assert_eq!(std::mem::size_of::<ObjPinAttr>(), 16);
    }

    #[test]
    fn attach_types_are_the_uapi_values() {
        assert_eq!(NetkitHook::Primary.attach_type(), 54);
        assert_eq!(NetkitHook::Peer.attach_type(), 55);
    }
}
