//! Interface index and MAC address of a device inside a namespace, for the
//! endpoint map (ioctl on a socket created in that namespace).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::EbpfError;
use crate::netns;

/// Index and MAC of `ifname` in namespace `ns`.
pub fn ifindex_and_mac(ns: &str, ifname: &str) -> Result<(u32, [u8; 6]), EbpfError> {
    let err = |op: &'static str, source: std::io::Error| EbpfError::Interface {
        netns: ns.to_string(),
        ifname: ifname.to_string(),
        op,
        source,
    };
    let name = CString::new(ifname)
        .ok()
        .filter(|n| n.as_bytes().len() < libc::IFNAMSIZ)
        .ok_or_else(|| {
            err(
                "check name",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a valid interface name",
                ),
            )
        })?;
    netns::run_in(ns, move || lookup_here(&name))?.map_err(|(op, e)| err(op, e))
}

/// Runs in the caller's namespace.
fn lookup_here(name: &CString) -> Result<(u32, [u8; 6]), (&'static str, std::io::Error)> {
    // SAFETY: plain syscall; the returned fd is owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(("open socket", std::io::Error::last_os_error()));
    }
    // SAFETY: raw is a fresh, valid fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };

    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }

    // SAFETY: SIOCGIFINDEX fills ifr_ifindex of a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFINDEX, &mut req) } < 0 {
        return Err(("get ifindex", std::io::Error::last_os_error()));
    }
    // SAFETY: the union member just written by SIOCGIFINDEX.
    let ifindex = unsafe { req.ifr_ifru.ifru_ifindex } as u32;

    // SAFETY: SIOCGIFHWADDR fills ifr_hwaddr of a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(("get MAC address", std::io::Error::last_os_error()));
    }
    // SAFETY: the union member just written by SIOCGIFHWADDR.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *dst = *src as u8;
    }
    Ok((ifindex, mac))
}
