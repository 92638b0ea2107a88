//! udp-stream: each of `parallel` client sockets sends datagrams to the
//! server at `udp_rate_bps / parallel` (or flat out). Every datagram carries
//! its stream, sequence number and send time, so the receiver computes
//! throughput, loss, RFC 3550 jitter and reordering for the datagrams sent
//! in the measured interval.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::{server_err_fn, StopFlag, Timeline, Workers};
use super::generator::Generator;
use super::{Endpoints, Params, Progress, Sample, Workload, WorkloadError};
use crate::netns;

const W: Workload = Workload::UdpStream;
/// stream (u32) + kind (u32) + sequence (u64) + send time in ns (u64).
pub const HEADER_LEN: usize = 24;
const KIND_DATA: u32 = 0;
/// A probe the server echoes back, to prove the path before measuring.
const KIND_PROBE: u32 = 1;
/// How often the server checks whether it should stop.
const SERVER_POLL: Duration = Duration::from_millis(100);

/// The header every datagram starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub stream: u32,
    pub kind: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

impl Header {
    pub fn write(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&self.stream.to_be_bytes());
        buf[4..8].copy_from_slice(&self.kind.to_be_bytes());
        buf[8..16].copy_from_slice(&self.seq.to_be_bytes());
        buf[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    pub fn read(buf: &[u8]) -> Option<Header> {
        let b = buf.get(..HEADER_LEN)?;
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap());
        Some(Header {
            stream: u32_at(0),
            kind: u32_at(4),
            seq: u64_at(8),
            sent_ns: u64_at(16),
        })
    }
}

/// Receiver-side statistics of one stream within the measured interval.
#[derive(Debug, Default, Clone)]
pub struct StreamStats {
    pub packets: u64,
    pub bytes: u64,
    pub out_of_order: u64,
    max_seq: Option<u64>,
    last_transit_ns: Option<i64>,
    /// RFC 3550 interarrival jitter, in ns.
    pub jitter_ns: f64,
}

impl StreamStats {
    /// Accounts one datagram of `len` bytes that arrived at `arrived_ns`.
    pub fn record(&mut self, h: &Header, len: usize, arrived_ns: u64) {
        self.packets += 1;
        self.bytes += len as u64;
        match self.max_seq {
            Some(max) if h.seq < max => self.out_of_order += 1,
            _ => self.max_seq = Some(h.seq),
        }
        let transit = arrived_ns as i64 - h.sent_ns as i64;
        if let Some(last) = self.last_transit_ns {
            let d = (transit - last).abs() as f64;
            self.jitter_ns += (d - self.jitter_ns) / 16.0;
        }
        self.last_transit_ns = Some(transit);
    }
}

pub fn run(p: &Params, e: &Endpoints, progress: Progress<'_>) -> Result<Sample, WorkloadError> {
    let server = bind_server(e)?;
    let clients: Vec<UdpSocket> = (0..p.parallel)
        .map(|_| connect_client(e))
        .collect::<Result<_, _>>()?;

    let g = Generator::new(W, p, e.target, progress, "a sender or the receiver");
    let epoch = Instant::now();
    let received_bytes = Arc::new(AtomicU64::new(0));
    let mut receiver = Workers::<HashMap<u32, StreamStats>>::new(W);
    // Each client's probe must come back before measuring: the path works
    // end to end, and the server is ready.
    for (i, c) in clients.iter().enumerate() {
        probe(c, &server, i as u32, p.timeout, e)?;
    }

    let timeline = Timeline::starting_now(p);
    let ns_since = move |t: Instant| t.duration_since(epoch).as_nanos() as u64;
    let window = (ns_since(timeline.t0), ns_since(timeline.t1));
    {
        let (stop, received_bytes) = (g.stop.clone(), received_bytes.clone());
        let server_err = server_err_fn(W, e);
        receiver.spawn(None, &g.cpu.server, move || {
            receive(server, window, epoch, &stop, &received_bytes)
                .map_err(|s| server_err("receive", s))
        })?;
    }
    let per_stream_bps = p.udp_rate_bps.map(|r| r as f64 / p.parallel as f64);
    let mut senders = Workers::<u64>::new(W);
    for (i, c) in clients.into_iter().enumerate() {
        let (stop, size, target) = (g.stop.clone(), p.udp_payload_size, e.target);
        senders.spawn(None, &g.cpu.client, move || {
            send(c, i as u32, size, per_stream_bps, epoch, window, &stop).map_err(|source| {
                WorkloadError::Transfer {
                    workload: W,
                    target,
                    op: "send datagram",
                    source,
                }
            })
        })?;
    }

    let count = || received_bytes.load(Ordering::Relaxed) as f64 * 8.0 / 1e9;
    let m = g.measure(timeline, &count, senders, receiver)?;
    let sent: u64 = m.clients.into_iter().sum();
    let streams = m.servers.into_iter().next().unwrap_or_default();
    let mut sample =
        summarize(&streams, sent, p.duration, p.udp_payload_size).ok_or_else(|| {
            WorkloadError::Failed {
                workload: W,
                target: e.target,
                what: format!("no datagram received of {sent} sent in the measured interval"),
            }
        })?;
    let gb = sample.get("throughput_gbps").unwrap_or(0.0) * p.duration.as_secs_f64() / 8.0;
    m.usage.add_to(&mut sample, Some(gb));
    Ok(sample)
}

/// throughput_gbps (received payload), offered_gbps, loss_percent,
/// jitter_ms (mean over streams), out_of_order; None if nothing arrived.
pub fn summarize(
    streams: &HashMap<u32, StreamStats>,
    sent_packets: u64,
    duration: Duration,
    payload: usize,
) -> Option<Sample> {
    let packets: u64 = streams.values().map(|s| s.packets).sum();
    if packets == 0 || sent_packets == 0 {
        return None;
    }
    let secs = duration.as_secs_f64();
    let bytes: u64 = streams.values().map(|s| s.bytes).sum();
    let mut s = Sample::default();
    s.set("throughput_gbps", bytes as f64 * 8.0 / 1e9 / secs);
    s.set(
        "offered_gbps",
        (sent_packets * payload as u64) as f64 * 8.0 / 1e9 / secs,
    );
    let lost = sent_packets.saturating_sub(packets);
    s.set("loss_percent", 100.0 * lost as f64 / sent_packets as f64);
    let jitter_ns = streams.values().map(|s| s.jitter_ns).sum::<f64>() / streams.len() as f64;
    s.set("jitter_ms", jitter_ns / 1e6);
    s.set(
        "out_of_order",
        streams.values().map(|s| s.out_of_order).sum::<u64>() as f64,
    );
    Some(s)
}

fn bind_server(e: &Endpoints) -> Result<UdpSocket, WorkloadError> {
    let port = e.server_port;
    let server_err = server_err_fn(W, e);
    let sock = netns::run_in(&e.server_netns, move || {
        UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port)))
    })?
    .map_err(|s| server_err("bind", s))?;
    sock.set_read_timeout(Some(SERVER_POLL))
        .map_err(|s| server_err("set receive timeout", s))?;
    // A larger buffer absorbs scheduling hiccups of the receiver thread;
    // the kernel caps it at net.core.rmem_max of the namespace.
    let _ = nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::RcvBuf, &(4 << 20));
    Ok(sock)
}

fn connect_client(e: &Endpoints) -> Result<UdpSocket, WorkloadError> {
    let target = e.target;
    netns::run_in(&e.client_netns, move || {
        let s = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))?;
        s.connect(target)?;
        Ok::<_, std::io::Error>(s)
    })?
    .map_err(|source| WorkloadError::Transfer {
        workload: W,
        target,
        op: "open client socket",
        source,
    })
}

/// Sends probes from `client` until the server echoes one (every 200 ms,
/// at most `timeout`): proves the path, including a cluster IP's DNAT.
fn probe(
    client: &UdpSocket,
    server: &UdpSocket,
    stream: u32,
    timeout: Duration,
    e: &Endpoints,
) -> Result<(), WorkloadError> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; HEADER_LEN];
    Header {
        stream,
        kind: KIND_PROBE,
        seq: 0,
        sent_ns: 0,
    }
    .write(&mut buf);
    let io = |op, source| WorkloadError::Transfer {
        workload: W,
        target: e.target,
        op,
        source,
    };
    client
        .set_read_timeout(Some(Duration::from_millis(1)))
        .map_err(|s| io("set timeout", s))?;
    let mut last_error = None;
    while Instant::now() < deadline {
        if let Err(err) = client.send(&buf) {
            last_error = Some(err);
        }
        // The server answers on this thread: it is not running yet.
        let step_end = (Instant::now() + Duration::from_millis(200)).min(deadline);
        while Instant::now() < step_end {
            let mut got = [0u8; 64];
            if let Ok((n, from)) = server.recv_from(&mut got) {
                if Header::read(&got[..n]).is_some_and(|h| h.kind == KIND_PROBE) {
                    let _ = server.send_to(&got[..n], from);
                }
            }
            if let Ok(n) = client.recv(&mut got) {
                if Header::read(&got[..n])
                    .is_some_and(|h| h.kind == KIND_PROBE && h.stream == stream)
                {
                    return Ok(());
                }
            }
        }
    }
    Err(WorkloadError::Connect {
        target: e.target,
        timeout,
        source: last_error
            .unwrap_or_else(|| std::io::Error::new(ErrorKind::TimedOut, "no answer to UDP probes")),
    })
}

/// Sends until stopped; returns how many datagrams it sent with a send time
/// inside `window` (ns since `epoch`).
fn send(
    sock: UdpSocket,
    stream: u32,
    size: usize,
    rate_bps: Option<f64>,
    epoch: Instant,
    window: (u64, u64),
    stop: &StopFlag,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; size];
    let mut seq = 0u64;
    let mut in_window = 0u64;
    // Token bucket in datagrams: the burst (5 ms of traffic, at least 32)
    // covers sleep granularity but a sender starved of CPU does not catch up
    // later at more than the asked rate.
    let per_second = rate_bps.map(|r| r / (size * 8) as f64);
    let burst = per_second.map(|pps| (pps * 0.005).max(32.0)).unwrap_or(0.0);
    let mut tokens = 0.0f64;
    let mut last = Instant::now();
    while !stop.stopped() {
        if let Some(pps) = per_second {
            let now = Instant::now();
            tokens = (tokens + now.duration_since(last).as_secs_f64() * pps).min(burst);
            last = now;
            if tokens < 1.0 {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            tokens -= 1.0;
        }
        let now = epoch.elapsed().as_nanos() as u64;
        Header {
            stream,
            kind: KIND_DATA,
            seq,
            sent_ns: now,
        }
        .write(&mut buf);
        match sock.send(&buf) {
            Ok(_) => {
                seq += 1;
                if now >= window.0 && now < window.1 {
                    in_window += 1;
                }
            }
            // A full qdisc or socket buffer drops this datagram locally;
            // it was not sent, so it is neither counted nor lost.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(in_window)
}

/// Receives until stopped and then idle for one poll interval; accounts the
/// datagrams sent inside `window`.
fn receive(
    sock: UdpSocket,
    window: (u64, u64),
    epoch: Instant,
    stop: &StopFlag,
    received_bytes: &AtomicU64,
) -> std::io::Result<HashMap<u32, StreamStats>> {
    let mut streams: HashMap<u32, StreamStats> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut stopped_at: Option<Instant> = None;
    loop {
        if stopped_at.is_none() && stop.stopped() {
            stopped_at = Some(Instant::now());
        }
        if stopped_at.is_some_and(|t| t.elapsed() > Duration::from_millis(500)) {
            return Ok(streams);
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let arrived = epoch.elapsed().as_nanos() as u64;
                let Some(h) = Header::read(&buf[..n]) else {
                    continue;
                };
                if h.kind == KIND_PROBE {
                    let _ = sock.send_to(&buf[..n], from);
                    continue;
                }
                received_bytes.fetch_add(n as u64, Ordering::Relaxed);
                if h.sent_ns >= window.0 && h.sent_ns < window.1 {
                    streams.entry(h.stream).or_default().record(&h, n, arrived);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stopped_at.is_some() {
                    return Ok(streams);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seq: u64, sent_ns: u64) -> Header {
        Header {
            stream: 0,
            kind: KIND_DATA,
            seq,
            sent_ns,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            stream: 3,
            kind: KIND_PROBE,
            seq: 1 << 40,
            sent_ns: 123_456_789,
        };
        let mut buf = [0u8; HEADER_LEN];
        h.write(&mut buf);
        assert_eq!(Header::read(&buf), Some(h));
        assert_eq!(Header::read(&buf[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn constant_transit_has_no_jitter() {
        let mut s = StreamStats::default();
        for i in 0..100 {
            s.record(&data(i, i * 1000), 1000, i * 1000 + 50_000);
        }
        assert_eq!(s.jitter_ns, 0.0);
        assert_eq!(s.out_of_order, 0);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut s = StreamStats::default();
        // Transit alternates 0 and 16 us: |D| is always 16 us, so J
        // converges to 16 us; after two packets J = 16/16 = 1 us.
        s.record(&data(0, 0), 100, 0);
        s.record(&data(1, 1000), 100, 1000 + 16_000);
        assert!((s.jitter_ns - 1000.0).abs() < 1e-9);
        for i in 2..2000u64 {
            let transit = if i % 2 == 0 { 0 } else { 16_000 };
            s.record(&data(i, i * 1000), 100, i * 1000 + transit);
        }
        assert!((s.jitter_ns - 16_000.0).abs() < 1.0, "{}", s.jitter_ns);
    }

    #[test]
    fn reordering_and_loss() {
        let mut s = StreamStats::default();
        for seq in [0, 1, 3, 2, 4] {
            s.record(&data(seq, seq), 1000, seq + 10);
        }
        assert_eq!(s.out_of_order, 1);
        let streams = HashMap::from([(0, s)]);
        let sample = summarize(&streams, 10, Duration::from_secs(1), 1000).unwrap();
        assert_eq!(sample.get("loss_percent"), Some(50.0));
        assert_eq!(sample.get("out_of_order"), Some(1.0));
        assert!((sample.get("throughput_gbps").unwrap() - 40e-6).abs() < 1e-12);
        assert!(summarize(&HashMap::new(), 10, Duration::from_secs(1), 1000).is_none());
    }
}
