//! tcp-stream: the client writes 128 KiB blocks as fast as it can on
//! `parallel` connections (like iperf3 -c); the server reads and counts.
//! Throughput comes from the bytes the receiver got in the measured interval.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::common::{
    accept_n, join_deadline, stalled, tcp_connect, tcp_listener, StopFlag, Supervision, Timeline,
    Workers,
};
use super::cpu::CpuMeter;
use super::{Endpoints, Params, Progress, Sample, Workload, WorkloadError};

const W: Workload = Workload::TcpStream;

pub fn run(p: &Params, e: &Endpoints, progress: Progress<'_>) -> Result<Sample, WorkloadError> {
    let listener = tcp_listener(W, e, p.timeout)?;
    let senders: Vec<TcpStream> = (0..p.parallel)
        .map(|_| tcp_connect(e, p.timeout))
        .collect::<Result<_, _>>()?;
    let receivers = accept_n(W, e, &listener, p.parallel, p.timeout)?;
    drop(listener);
    // Second handles on the sender sockets, to read TCP_INFO.
    let probes: Vec<TcpStream> = senders
        .iter()
        .map(|s| s.try_clone())
        .collect::<Result<_, _>>()
        .map_err(|source| transfer_err(e, "dup socket", source))?;

    let received = Arc::new(AtomicU64::new(0));
    let stop = StopFlag::default();
    let cpu = CpuMeter::pinned(p.cpus);
    let mut workers = Workers::new(W);
    for s in receivers {
        let (received, target) = (received.clone(), e.target);
        workers.spawn(None, &cpu.server, move || receive(s, &received, target))?;
    }
    for s in senders {
        let (stop, size, target) = (stop.clone(), p.stream_write_size, e.target);
        workers.spawn(None, &cpu.client, move || send(s, size, &stop, target))?;
    }

    let timeline = Timeline::starting_now(p);
    let count = || received.load(Ordering::Relaxed) as f64 * 8.0 / 1e9;
    let ended = || workers.any_finished();
    let (mut start, mut end) = ((Instant::now(), 0u64, 0u64), (Instant::now(), 0u64, 0u64));
    let supervision = Supervision {
        timeline,
        cpu: &cpu,
        stop: &stop,
        count: &count,
        progress,
        worker_ended: &ended,
    };
    let retrans = || probes.iter().map(total_retrans).sum::<u64>();
    let usage = supervision.run(
        || start = (Instant::now(), received.load(Ordering::Relaxed), retrans()),
        || end = (Instant::now(), received.load(Ordering::Relaxed), retrans()),
    );
    drop(probes);
    workers.join(join_deadline(&timeline, p))?;
    let usage = usage.ok_or_else(|| WorkloadError::Failed {
        workload: W,
        target: e.target,
        what: "a stream ended before the measured interval did".into(),
    })?;

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

fn transfer_err(e: &Endpoints, op: &'static str, source: std::io::Error) -> WorkloadError {
    WorkloadError::Transfer {
        workload: W,
        target: e.target,
        op,
        source,
    }
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
            return Err(WorkloadError::Transfer {
                workload: W,
                target,
                op: "write",
                source: stalled(source),
            });
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
            Err(source) => {
                return Err(WorkloadError::Transfer {
                    workload: W,
                    target,
                    op: "read on the server",
                    source: stalled(source),
                })
            }
        }
    }
}

/// tcpi_total_retrans of a connected socket (0 if TCP_INFO is unreadable).
pub(crate) fn total_retrans(s: &TcpStream) -> u64 {
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
