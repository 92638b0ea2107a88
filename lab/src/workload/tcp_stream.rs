//! tcp-stream: the client writes 128 KiB blocks as fast as it can on
//! `parallel` connections (like iperf3 -c); the server reads and counts.
//! Throughput comes from the bytes the receiver got in the measured interval.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::common::{connected_pairs, transfer_err_fn, StopFlag, Timeline, Workers};
use super::generator::Generator;
use super::{Endpoints, Params, Progress, Sample, Workload, WorkloadError};

const W: Workload = Workload::TcpStream;

pub fn run(p: &Params, e: &Endpoints, progress: Progress<'_>) -> Result<Sample, WorkloadError> {
    let (senders, receivers) = connected_pairs(W, p, e)?;
    // Second handles on the sender sockets, to read TCP_INFO.
    let probes: Vec<TcpStream> = senders
        .iter()
        .map(|s| s.try_clone())
        .collect::<Result<_, _>>()
        .map_err(|s| transfer_err_fn(W, e.target)("dup socket", s))?;

    let received = Arc::new(AtomicU64::new(0));
    let g = Generator::new(W, p, e.target, progress, "a stream");
    let mut workers = Workers::new(W);
    for s in receivers {
        let (received, target) = (received.clone(), e.target);
        workers.spawn(None, &g.cpu.server, move || receive(s, &received, target))?;
    }
    for s in senders {
        let (stop, size, target) = (g.stop.clone(), p.stream_write_size, e.target);
        workers.spawn(None, &g.cpu.client, move || send(s, size, &stop, target))?;
    }

    let timeline = Timeline::starting_now(p);
    let count = || received.load(Ordering::Relaxed) as f64 * 8.0 / 1e9;
    // (when, bytes received, retransmits) at t0 and at t1.
    let mut marks = Vec::with_capacity(2);
    let mark = {
        let (marks, received) = (&mut marks, &received);
        move || {
            let retrans = probes.iter().map(total_retrans).sum::<u64>();
            marks.push((Instant::now(), received.load(Ordering::Relaxed), retrans));
        }
    };
    let usage = g
        .measure_marking(timeline, &count, workers, (), mark)?
        .usage;
    // A sample that ran to t1 was marked at both edges.
    let (start, end) = (marks[0], marks[1]);

    let secs = end.0.duration_since(start.0).as_secs_f64();
    let bytes = end.1 - start.1;
    if bytes == 0 {
        return Err(WorkloadError::Failed {
            workload: W,
            target: e.target,
            what: format!("no bytes received in {secs:.1} s"),
        });
    }
    let mut sample = Sample::default();
    sample.set("throughput_gbps", bytes as f64 * 8.0 / 1e9 / secs);
    sample.set("retransmits", end.2.saturating_sub(start.2) as f64);
    usage.add_to(&mut sample, Some(bytes as f64 / 1e9));
    Ok(sample)
}

fn send(
    mut s: TcpStream,
    size: usize,
    stop: &StopFlag,
    target: std::net::SocketAddr,
) -> Result<(), WorkloadError> {
    let block = vec![0x5au8; size];
    while !stop.stopped() {
        if let Err(source) = s.write_all(&block) {
            if stop.stopped() {
                break;
            }
            return Err(transfer_err_fn(W, target)("write", source));
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    Ok(())
}

fn receive(
    mut s: TcpStream,
    received: &AtomicU64,
    target: std::net::SocketAddr,
) -> Result<(), WorkloadError> {
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(source) => return Err(transfer_err_fn(W, target)("read on the server", source)),
        }
    }
}

/// tcpi_total_retrans of a connected socket (0 if TCP_INFO is unreadable).
pub(crate) fn total_retrans(s: &TcpStream) -> u64 {
    // By hand: nix 0.29 has no TCP_INFO socket option.
    // SAFETY: tcp_info is plain old data; the kernel fills at most `len` bytes.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        );
        if rc == 0 {
            info.tcpi_total_retrans as u64
        } else {
            0
        }
    }
}
