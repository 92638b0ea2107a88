//! Rust mirrors of the map keys and values in `bpf/dplab_lb.h`. Field order,
//! sizes and padding match the C structs; addresses and ports are kept in
//! network byte order, as the programs read them from packets. The
//! conntrack map (`struct lb_ct_key` / `lb_ct_value`) is read and written
//! only by the programs, so its key and value have no mirror here.

use std::net::Ipv4Addr;

/// IP protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => libc::IPPROTO_TCP as u8,
            Proto::Udp => libc::IPPROTO_UDP as u8,
        }
    }
}

/// Map names, as declared in `bpf/dplab_maps.h`; also their pin file names.
pub const SERVICES_MAP: &str = "dplab_services";
pub const BACKENDS_MAP: &str = "dplab_backends";
pub const CONNTRACK_MAP: &str = "dplab_ct";
pub const ENDPOINTS_MAP: &str = "dplab_endpoints";
pub const COUNTERS_MAP: &str = "dplab_counters";
pub const CONFIG_MAP: &str = "dplab_config";

/// `struct lb_service_key`
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub addr: [u8; 4],
    pub port: [u8; 2],
    pub proto: u8,
    pub pad: u8,
}

impl ServiceKey {
    pub fn new(addr: Ipv4Addr, port: u16, proto: Proto) -> Self {
        Self {
            addr: addr.octets(),
            port: port.to_be_bytes(),
            proto: proto.number(),
            pad: 0,
        }
    }
}

/// `SVC_F_NODE_PORT`: the frontend is a node address at a node port.
pub const SVC_F_NODE_PORT: u16 = 1;

/// `struct lb_service`
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceValue {
    pub backend_count: u32,
    pub service_id: u32,
    pub flags: u16,
    pub pad: u16,
}

/// `struct lb_backend_key`
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendKey {
    pub service_id: u32,
    pub index: u32,
}

/// `BACKEND_F_LOCAL`: the backend is a pod of this node.
pub const BACKEND_F_LOCAL: u16 = 1;

/// `struct lb_backend`
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendValue {
    pub addr: [u8; 4],
    pub port: [u8; 2],
    pub flags: u16,
}

impl BackendValue {
    pub fn new(addr: Ipv4Addr, port: u16, local: bool) -> Self {
        Self {
            addr: addr.octets(),
            port: port.to_be_bytes(),
            flags: if local { BACKEND_F_LOCAL } else { 0 },
        }
    }
}

/// `ENDPOINT_F_PLAIN_REDIRECT`: bpf_redirect to the host end instead of
/// bpf_redirect_peer.
pub const ENDPOINT_F_PLAIN_REDIRECT: u32 = 1;

/// `struct lb_endpoint`
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointValue {
    pub ifindex: u32,
    pub flags: u32,
    pub pod_mac: [u8; 6],
    pub host_mac: [u8; 6],
}

/// `CFG_F_HOST_ROUTING`: the datapath delivers to local pods itself.
pub const CFG_F_HOST_ROUTING: u32 = 1;

/// `struct lb_config`: zero fields take the programs' defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfigValue {
    pub snat_addr: [u8; 4],
    pub hairpin_addr: [u8; 4],
    pub flags: u32,
    pub pad: u32,
    pub ct_tcp_ns: u64,
    pub ct_other_ns: u64,
    pub ct_closing_ns: u64,
}

/// `struct lb_counters`, one per CPU.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersValue {
    pub runs: u64,
    pub dnat: u64,
    pub rev_nat: u64,
    pub redirected: u64,
    pub passed: u64,
    pub dropped: u64,
    pub snat: u64,
    pub forwarded: u64,
}

// aya::Pod: the map's bytes are read as the type and the type's bytes are
// written as the map's, so every bit pattern must be a valid value and no
// byte may be uninitialised (implicit padding). Each struct below is
// repr(C), made of integers and byte arrays only, with explicit padding
// fields; `sizes_match_the_c_header` checks the sizes.
//
// SAFETY: [u8; 4], [u8; 2], u8, u8: 8 bytes, no implicit padding.
unsafe impl aya::Pod for ServiceKey {}
// SAFETY: u32, u32, u16, u16: 12 bytes, no implicit padding.
unsafe impl aya::Pod for ServiceValue {}
// SAFETY: u32, u32: 8 bytes, no implicit padding.
unsafe impl aya::Pod for BackendKey {}
// SAFETY: [u8; 4], [u8; 2], u16: 8 bytes, no implicit padding.
unsafe impl aya::Pod for BackendValue {}
// SAFETY: u32, u32, [u8; 6], [u8; 6]: 20 bytes, a multiple of the 4-byte
// alignment, no implicit padding.
unsafe impl aya::Pod for EndpointValue {}
// SAFETY: eight u64: 64 bytes, no implicit padding.
unsafe impl aya::Pod for CountersValue {}
// SAFETY: [u8; 4], [u8; 4], u32, u32, then three u64 at offset 16: 40
// bytes, no implicit padding.
unsafe impl aya::Pod for ConfigValue {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn sizes_match_the_c_header() {
        assert_eq!(size_of::<ServiceKey>(), 8);
        assert_eq!(size_of::<ServiceValue>(), 12);
        assert_eq!(size_of::<BackendKey>(), 8);
        assert_eq!(size_of::<BackendValue>(), 8);
        assert_eq!(size_of::<EndpointValue>(), 20);
        assert_eq!(size_of::<CountersValue>(), 64);
        assert_eq!(size_of::<ConfigValue>(), 40);
    }

    #[test]
    fn service_key_is_network_order() {
        let k = ServiceKey::new(Ipv4Addr::new(10, 96, 0, 1), 0x1451, Proto::Tcp);
        assert_eq!(k.addr, [10, 96, 0, 1]);
        assert_eq!(k.port, [0x14, 0x51]);
        assert_eq!(k.proto, 6);
    }
}
