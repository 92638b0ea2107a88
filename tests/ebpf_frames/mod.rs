//! Shared by the BPF_PROG_TEST_RUN tests: a generator of Ethernet/IPv4/
//! TCP|UDP frames with correct checksums, an independent reader and
//! checksum oracle for what the programs return (etherparse, which shares
//! no code with the generator, so a bug in the generator's checksum
//! arithmetic cannot hide one in the programs), and a harness that loads a
//! fresh run's programs and removes its pins afterwards.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, TcpHeader, UdpHeader};

use dplab::ebpf::{remove_pins, LbProgram, Proto, ServiceLb, ServiceSpec};

#[path = "../common/skip.rs"]
mod skip;

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 11);
pub const BACKEND: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 10);
pub const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 100);
pub const POD_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

// ---- frames -------------------------------------------------------------

pub const ETH_LEN: usize = 14;
pub const IP_LEN: usize = 20;

#[derive(Clone, Copy, Debug)]
pub struct Flow {
    pub proto: Proto,
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
}

impl Flow {
    pub fn reply(self) -> Flow {
        Flow {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
        }
    }
}

pub fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

pub fn sum_words(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4_len: usize) -> u32 {
    sum_words(&src.octets()) + sum_words(&dst.octets()) + u32::from(proto) + l4_len as u32
}

/// Ethernet + IPv4 (no options) + TCP or UDP + payload, checksums filled.
pub fn frame(flow: Flow, payload: &[u8]) -> Vec<u8> {
    frame_with_tcp_flags(flow, payload, 0x18)
}

/// TCP flags of a frame from [`frame_with_tcp_flags`].
pub const TCP_ACK: u8 = 0x10;
pub const TCP_FIN: u8 = 0x01;
pub const TCP_RST: u8 = 0x04;

/// As [`frame`], with the given TCP flags (ignored for UDP).
pub fn frame_with_tcp_flags(flow: Flow, payload: &[u8], tcp_flags: u8) -> Vec<u8> {
    let proto = flow.proto.number();
    let mut l4 = Vec::new();
    l4.extend_from_slice(&flow.src.1.to_be_bytes());
    l4.extend_from_slice(&flow.dst.1.to_be_bytes());
    let csum_at = match flow.proto {
        Proto::Tcp => {
            l4.extend_from_slice(&0x1234_5678u32.to_be_bytes()); // seq
            l4.extend_from_slice(&0x9abc_def0u32.to_be_bytes()); // ack
            l4.extend_from_slice(&[5 << 4, tcp_flags]); // data offset, flags
            l4.extend_from_slice(&64240u16.to_be_bytes());
            l4.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
            16
        }
        Proto::Udp => {
            l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            6
        }
    };
    l4.extend_from_slice(payload);
    let sum = pseudo_header_sum(flow.src.0, flow.dst.0, proto, l4.len()) + sum_words(&l4);
    let mut csum = !fold(sum);
    if flow.proto == Proto::Udp && csum == 0 {
        csum = 0xffff;
    }
    l4[csum_at..csum_at + 2].copy_from_slice(&csum.to_be_bytes());

    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((IP_LEN + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0x1c, 0x46, 0x40, 0x00, 64, proto, 0, 0]);
    ip.extend_from_slice(&flow.src.0.octets());
    ip.extend_from_slice(&flow.dst.0.octets());
    let ip_csum = !fold(sum_words(&ip));
    ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());

    let mut out = Vec::new();
    out.extend_from_slice(&GW_MAC);
    out.extend_from_slice(&POD_MAC);
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&l4);
    out
}

/// A frame's IPv4 header and L4 bytes as etherparse reads them (the L4
/// bytes cut at the IP total length).
fn headers(frame: &[u8]) -> (Ipv4Header, &[u8]) {
    let (eth, rest) = Ethernet2Header::from_slice(frame).expect("Ethernet header");
    assert_eq!(eth.ether_type, EtherType::IPV4, "an IPv4 frame");
    let (ip, rest) = Ipv4Header::from_slice(rest).expect("IPv4 header");
    let l4_len = usize::from(ip.total_len) - ip.header_len();
    assert!(
        rest.len() >= l4_len,
        "frame shorter than its IP total length"
    );
    (ip, &rest[..l4_len])
}

/// Reads the flow back from a frame (etherparse).
pub fn parse(frame: &[u8]) -> Flow {
    let (ip, l4) = headers(frame);
    let (proto, sport, dport) = match ip.protocol {
        IpNumber::TCP => {
            let (tcp, _) = TcpHeader::from_slice(l4).expect("TCP header");
            (Proto::Tcp, tcp.source_port, tcp.destination_port)
        }
        IpNumber::UDP => {
            let (udp, _) = UdpHeader::from_slice(l4).expect("UDP header");
            (Proto::Udp, udp.source_port, udp.destination_port)
        }
        other => panic!("neither TCP nor UDP: {other:?}"),
    };
    Flow {
        proto,
        src: (Ipv4Addr::from(ip.source), sport),
        dst: (Ipv4Addr::from(ip.destination), dport),
    }
}

/// The IPv4 header checksum is what etherparse computes for the header.
pub fn ip_checksum_valid(frame: &[u8]) -> bool {
    let (ip, _) = headers(frame);
    ip.header_checksum == ip.calc_header_checksum()
}

/// The TCP or UDP checksum is what etherparse computes over the pseudo
/// header, L4 header and payload (a UDP checksum of 0, "none", is not valid).
pub fn l4_checksum_valid(frame: &[u8]) -> bool {
    let (ip, l4) = headers(frame);
    match ip.protocol {
        IpNumber::TCP => {
            let (tcp, payload) = TcpHeader::from_slice(l4).expect("TCP header");
            tcp.checksum == tcp.calc_checksum_ipv4(&ip, payload).expect("TCP length")
        }
        IpNumber::UDP => {
            let (udp, payload) = UdpHeader::from_slice(l4).expect("UDP header");
            udp.checksum == udp.calc_checksum_ipv4(&ip, payload).expect("UDP length")
        }
        other => panic!("neither TCP nor UDP: {other:?}"),
    }
}

pub fn udp_checksum(frame: &[u8]) -> u16 {
    let at = ETH_LEN + IP_LEN + 6;
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

/// Bytes outside the rewritten address (12..20 of IP, checksum 10..12),
/// ports and L4 checksum are unchanged.
pub fn same_except_nat_fields(a: &[u8], b: &[u8], proto: Proto) {
    assert_eq!(a.len(), b.len());
    let l4 = ETH_LEN + IP_LEN;
    let csum = l4 + if proto == Proto::Tcp { 16 } else { 6 };
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let nat_field = (ETH_LEN + 10..ETH_LEN + 20).contains(&i)
            || (l4..l4 + 4).contains(&i)
            || (csum..csum + 2).contains(&i);
        if !nat_field {
            assert_eq!(x, y, "byte {i} changed");
        }
    }
}

// ---- harness ------------------------------------------------------------

/// Loads a fresh run with its own pins; removes them when the test ends,
/// even on panic.
pub struct Lab {
    lb: Option<ServiceLb>,
    pub run_id: String,
}

impl Lab {
    pub fn new(name: &str) -> Option<Lab> {
        if !skip::ebpf(name) {
            return None;
        }
        let run_id = format!("dltt{}-{name}", std::process::id());
        let lb = ServiceLb::load(&run_id).unwrap_or_else(|e| panic!("load: {e}"));
        Some(Lab {
            lb: Some(lb),
            run_id,
        })
    }

    pub fn lb(&mut self) -> &mut ServiceLb {
        self.lb.as_mut().unwrap()
    }

    pub fn run(&mut self, program: LbProgram, frame: &[u8]) -> (u32, Vec<u8>) {
        let out = self.lb().test_run(program, frame).expect("test run");
        (out.verdict, out.frame)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.lb.take());
        let _ = remove_pins(&self.run_id);
    }
}

pub fn service(proto: Proto, port: u16, backends: &[(Ipv4Addr, u16)]) -> ServiceSpec {
    ServiceSpec {
        cluster_ip: CLUSTER_IP,
        port,
        proto,
        node_port: None,
        backends: backends.to_vec(),
    }
}

pub fn client_flow(proto: Proto, sport: u16, port: u16) -> Flow {
    Flow {
        proto,
        src: (CLIENT, sport),
        dst: (CLUSTER_IP, port),
    }
}
