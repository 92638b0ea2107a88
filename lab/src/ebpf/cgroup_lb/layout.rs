//! Rust mirrors of `bpf/dplab_sock_lb.h`: the socket translation map, the
//! node addresses and the counters of the socket-level load balancer.
//! Field order, sizes and padding match the C structs.

/// Map names, as declared in `bpf/cgroup_sock_lb.c`; also their pin names.
pub const XLATE_MAP: &str = "dplab_sock_xlate";
pub const NODE_ADDRS_MAP: &str = "dplab_node_addrs";
pub const SOCK_COUNTERS_MAP: &str = "dplab_sock_counters";

/// `struct sock_xlate_key`
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XlateKey {
    pub cookie: u64,
    pub addr: [u8; 4],
    pub port: [u8; 2],
    pub dir: u8,
    pub pad: u8,
}

pub const XLATE_FORWARD: u8 = 0;
pub const XLATE_REVERSE: u8 = 1;

/// `struct sock_xlate_value`
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XlateValue {
    pub addr: [u8; 4],
    pub port: [u8; 2],
    pub pad: u16,
    pub index: u32,
}

/// `struct sock_lb_counters`, one per CPU.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockCountersValue {
    pub connect: u64,
    pub sendmsg: u64,
    pub recvmsg: u64,
    pub getpeername: u64,
    pub rejected: u64,
}

// aya::Pod needs every bit pattern to be valid and no uninitialised
// (implicit padding) byte: each struct below is repr(C), of integers and
// byte arrays only, with explicit padding fields.
//
// SAFETY: u64, [u8; 4], [u8; 2], u8, u8: 16 bytes, no implicit padding.
unsafe impl aya::Pod for XlateKey {}
// SAFETY: [u8; 4], [u8; 2], u16, u32: 12 bytes, no implicit padding.
unsafe impl aya::Pod for XlateValue {}
// SAFETY: five u64: 40 bytes, no implicit padding.
unsafe impl aya::Pod for SockCountersValue {}

/// What the socket hooks counted since the maps were created (all CPUs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SockCounters {
    /// connect4 calls whose service destination became a backend.
    pub connect: u64,
    /// sendmsg4 calls (unconnected UDP) whose destination became a backend.
    pub sendmsg: u64,
    /// recvmsg4 calls whose backend source became the service again.
    pub recvmsg: u64,
    /// getpeername4 calls that reported the service instead of the backend.
    pub getpeername: u64,
    /// Calls refused (EPERM): a service without backends, or a full map.
    pub rejected: u64,
}

impl SockCounters {
    pub(crate) fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a SockCountersValue>) -> Self {
        per_cpu.into_iter().fold(Self::default(), |acc, c| Self {
            connect: acc.connect + c.connect,
            sendmsg: acc.sendmsg + c.sendmsg,
            recvmsg: acc.recvmsg + c.recvmsg,
            getpeername: acc.getpeername + c.getpeername,
            rejected: acc.rejected + c.rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn sizes_match_the_c_header() {
        assert_eq!(size_of::<XlateKey>(), 16);
        assert_eq!(size_of::<XlateValue>(), 12);
        assert_eq!(size_of::<SockCountersValue>(), 40);
    }

    #[test]
    fn counters_sum_over_cpus() {
        let cpu = SockCountersValue {
            connect: 2,
            sendmsg: 1,
            recvmsg: 3,
            getpeername: 0,
            rejected: 1,
        };
        let total = SockCounters::sum([&cpu, &cpu]);
        assert_eq!(total.connect, 4);
        assert_eq!(total.recvmsg, 6);
        assert_eq!(total.rejected, 2);
    }
}
