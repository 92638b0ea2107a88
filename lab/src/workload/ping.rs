//! ping: ICMP echo every 200 ms through a raw socket created in the client
//! namespace (dplab runs as root). Echoes sent during the warm-up are
//! discarded: the first one through a proxy-ARP veth can take 0.8 s.
//!
//! Like iputils ping, the round trip runs from the clock read just before
//! sendto() to the kernel's receive timestamp (SO_TIMESTAMPNS), so the
//! wake-up of this thread is not part of it.

use std::collections::BTreeMap;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, sendto, ControlMessageOwned, MsgFlags, SockType, SockaddrIn};
use nix::sys::time::TimeSpec;

use super::common::Timeline;
use super::{Endpoints, Params, Progress, Sample, Workload, WorkloadError};
use crate::netns;

const W: Workload = Workload::Ping;
pub const INTERVAL: Duration = Duration::from_millis(200);
/// Echo payload, as iputils ping sends by default (84-byte IP packets).
const PAYLOAD_LEN: usize = 56;

pub fn run(p: &Params, e: &Endpoints, progress: Progress<'_>) -> Result<Sample, WorkloadError> {
    let IpAddr::V4(dest) = e.target.ip() else {
        return Err(WorkloadError::BadParams(format!(
            "ping: target {} is not IPv4",
            e.target.ip()
        )));
    };
    let fd = netns::run_in(&e.client_netns, raw_icmp_socket)?
        .map_err(|source| io_err(e, "open raw ICMP socket", source))?;
    // Distinguishes our echoes from other pings in the namespace.
    let ident: u16 = rand::random();
    let timeline = Timeline::starting_now(p);
    let mut sent_at: BTreeMap<u16, (Instant, Duration)> = BTreeMap::new();
    let mut measured_seqs = Vec::new();
    let mut rtts_ms = Vec::new();
    let mut seq: u16 = 0;
    let mut next_send = timeline.start;
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= next_send && now < timeline.t1 {
            seq = seq.wrapping_add(1);
            let wall =
                send_echo(&fd, dest, ident, seq).map_err(|s| io_err(e, "send echo request", s))?;
            sent_at.insert(seq, (now, wall));
            if timeline.measuring(now) {
                measured_seqs.push(seq);
            }
            next_send += INTERVAL;
            continue;
        }
        let outstanding = measured_seqs.iter().any(|s| sent_at.contains_key(s));
        let last_wait_over = measured_seqs
            .last()
            .is_none_or(|_| now >= timeline.t1 + p.timeout);
        if now >= timeline.t1 && (!outstanding || last_wait_over) {
            break;
        }
        let until = if now < timeline.t1 {
            next_send
        } else {
            timeline.t1 + p.timeout
        };
        let Some((len, kernel_rx)) = recv_with_deadline(&fd, &mut buf, until)
            .map_err(|s| io_err(e, "receive echo reply", s))?
        else {
            continue;
        };
        let received = Instant::now();
        if let Some(reply_seq) = parse_echo_reply(&buf[..len], dest, ident) {
            if let Some((sent, sent_wall)) = sent_at.remove(&reply_seq) {
                // A reply later than the timeout counts as lost, as in ping -W.
                let rtt = kernel_rx
                    .and_then(|rx| rx.checked_sub(sent_wall))
                    .unwrap_or(received - sent);
                if measured_seqs.contains(&reply_seq) && rtt <= p.timeout {
                    let ms = rtt.as_secs_f64() * 1000.0;
                    rtts_ms.push(ms);
                    if let Some(report) = progress {
                        report(ms);
                    }
                }
            }
        }
    }
    summarize(&rtts_ms, measured_seqs.len()).ok_or_else(|| WorkloadError::Failed {
        workload: W,
        target: SocketAddr::new(IpAddr::V4(dest), 0),
        what: format!(
            "no ICMP echo reply to {} requests in {:?}",
            measured_seqs.len(),
            p.duration
        ),
    })
}

/// rtt_ms (mean), rtt_min_ms, rtt_max_ms, rtt_mdev_ms (as iputils computes
/// it) and loss_percent; None if nothing came back.
pub fn summarize(rtts_ms: &[f64], sent: usize) -> Option<Sample> {
    if rtts_ms.is_empty() || sent == 0 {
        return None;
    }
    let n = rtts_ms.len() as f64;
    let mean = rtts_ms.iter().sum::<f64>() / n;
    let mean_sq = rtts_ms.iter().map(|x| x * x).sum::<f64>() / n;
    let mut s = Sample::default();
    s.set("rtt_ms", mean);
    s.set(
        "rtt_min_ms",
        rtts_ms.iter().cloned().fold(f64::INFINITY, f64::min),
    );
    s.set("rtt_max_ms", rtts_ms.iter().cloned().fold(0.0, f64::max));
    s.set("rtt_mdev_ms", (mean_sq - mean * mean).max(0.0).sqrt());
    let lost = sent.saturating_sub(rtts_ms.len());
    s.set("loss_percent", 100.0 * lost as f64 / sent as f64);
    Some(s)
}

fn io_err(e: &Endpoints, op: &'static str, source: std::io::Error) -> WorkloadError {
    WorkloadError::Transfer {
        workload: W,
        target: e.target,
        op,
        source,
    }
}

fn raw_icmp_socket() -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{setsockopt, socket, sockopt, AddressFamily, SockFlag, SockProtocol};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Icmp,
    )?;
    setsockopt(&fd, sockopt::ReceiveTimestampns, &true)?;
    Ok(fd)
}

/// RFC 1071 internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub fn echo_request(ident: u16, seq: u16) -> Vec<u8> {
    let mut pkt = vec![0u8; 8 + PAYLOAD_LEN];
    pkt[0] = 8; // echo request
    pkt[4..6].copy_from_slice(&ident.to_be_bytes());
    pkt[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in pkt[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let sum = checksum(&pkt);
    pkt[2..4].copy_from_slice(&sum.to_be_bytes());
    pkt
}

/// The sequence number of an echo reply from `from` with our identifier, in
/// a packet as a raw socket returns it (IPv4 header first).
pub fn parse_echo_reply(packet: &[u8], from: Ipv4Addr, ident: u16) -> Option<u16> {
    let ihl = (*packet.first()? & 0x0f) as usize * 4;
    let src = Ipv4Addr::new(
        *packet.get(12)?,
        *packet.get(13)?,
        *packet.get(14)?,
        *packet.get(15)?,
    );
    let icmp = packet.get(ihl..ihl + 8)?;
    let is_reply = icmp[0] == 0 && icmp[1] == 0;
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    (is_reply && id == ident && src == from).then(|| u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// Sends one echo request; returns the wall clock just before sendto().
fn send_echo(fd: &OwnedFd, dest: Ipv4Addr, ident: u16, seq: u16) -> std::io::Result<Duration> {
    let pkt = echo_request(ident, seq);
    let addr = SockaddrIn::from(SocketAddrV4::new(dest, 0));
    let wall = wall_clock();
    match sendto(fd.as_raw_fd(), &pkt, &addr, MsgFlags::empty()) {
        Ok(_) => Ok(wall),
        // No route or neighbour yet: the echo is lost, not the sample.
        Err(Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::ENOBUFS) => Ok(wall),
        Err(e) => Err(e.into()),
    }
}

/// CLOCK_REALTIME, the clock of SO_TIMESTAMPNS.
fn wall_clock() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Waits for one packet until `deadline`; None on timeout. Returns its
/// length and the kernel's receive timestamp, if it gave one.
fn recv_with_deadline(
    fd: &OwnedFd,
    buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<Option<(usize, Option<Duration>)>> {
    let wait = deadline.saturating_duration_since(Instant::now());
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    let timeout = PollTimeout::try_from(ms.max(1)).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, timeout) {
        Ok(0) | Err(Errno::EINTR) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let mut iov = [IoSliceMut::new(buf)];
    let mut control = nix::cmsg_space!(TimeSpec);
    let msg = match recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(msg) => msg,
        Err(Errno::EAGAIN | Errno::EINTR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // A truncated control buffer gives no timestamp; the caller then falls
    // back to its own clock.
    let kernel_rx = msg.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => Some(Duration::from(ts)),
            _ => None,
        })
    });
    Ok(Some((msg.bytes, kernel_rx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksum_verifies() {
        let pkt = echo_request(0x1234, 7);
        assert_eq!(checksum(&pkt), 0, "a packet with its checksum sums to 0");
        assert_eq!(&pkt[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn reply_is_matched_by_source_and_ident() {
        let mut pkt = vec![
            0x45u8, 0, 0, 84, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let mut icmp = echo_request(0xbeef, 3);
        icmp[0] = 0;
        pkt.extend_from_slice(&icmp);
        let from = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(parse_echo_reply(&pkt, from, 0xbeef), Some(3));
        assert_eq!(parse_echo_reply(&pkt, from, 0xbeee), None);
        assert_eq!(
            parse_echo_reply(&pkt, Ipv4Addr::new(10, 0, 0, 9), 0xbeef),
            None
        );
        pkt[20] = 8; // our own request, seen on the raw socket
        assert_eq!(parse_echo_reply(&pkt, from, 0xbeef), None);
    }

    #[test]
    fn summary_matches_iputils_formula() {
        let s = summarize(&[0.035, 0.055, 0.057, 0.060, 0.057], 5).unwrap();
        assert!((s.get("rtt_ms").unwrap() - 0.0528).abs() < 1e-9);
        assert!((s.get("rtt_mdev_ms").unwrap() - 0.009).abs() < 0.0006);
        assert_eq!(s.get("loss_percent"), Some(0.0));
        let lossy = summarize(&[1.0], 4).unwrap();
        assert_eq!(lossy.get("loss_percent"), Some(75.0));
        assert!(summarize(&[], 4).is_none());
    }
}
