//! tcp-rr: on each of `parallel` connections the client sends a
//! `message_size` request and waits for an equal response, back to back
//! (like netperf TCP_RR). TCP_NODELAY on both ends.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::common::{connected_pairs, transfer_err_fn, StopFlag, Timeline, Workers};
use super::generator::Generator;
use super::histogram::LatencyHistogram;
use super::{Endpoints, Params, Progress, Sample, Workload, WorkloadError};

const W: Workload = Workload::TcpRr;

/// What one client worker measured inside the interval.
pub(crate) struct Tally {
    pub latencies: LatencyHistogram,
    pub transactions: u64,
}

pub fn run(p: &Params, e: &Endpoints, progress: Progress<'_>) -> Result<Sample, WorkloadError> {
    let (clients, servers) = connected_pairs(W, p, e)?;

    let g = Generator::new(W, p, e.target, progress, "a connection");
    let done = Arc::new(AtomicU64::new(0));
    let mut server_workers = Workers::<()>::new(W);
    for s in servers {
        let (size, target) = (p.message_size, e.target);
        server_workers.spawn(None, &g.cpu.server, move || echo(s, size, target))?;
    }
    let timeline = Timeline::starting_now(p);
    let mut client_workers = Workers::<Tally>::new(W);
    for s in clients {
        let (size, target, stop, done) = (p.message_size, e.target, g.stop.clone(), done.clone());
        client_workers.spawn(None, &g.cpu.client, move || {
            request_loop(s, size, &timeline, &stop, &done, target)
        })?;
    }

    let count = || done.load(Ordering::Relaxed) as f64;
    let m = g.measure(timeline, &count, client_workers, server_workers)?;
    finish(W, e, p, m.clients, m.usage)
}

/// Sums the workers' tallies into a sample with `rate_name` per second.
pub(crate) fn finish(
    w: Workload,
    e: &Endpoints,
    p: &Params,
    tallies: Vec<Tally>,
    usage: super::cpu::CpuUsage,
) -> Result<Sample, WorkloadError> {
    let mut latencies = LatencyHistogram::new();
    let mut transactions = 0;
    for t in &tallies {
        latencies.merge(&t.latencies);
        transactions += t.transactions;
    }
    if transactions == 0 {
        return Err(WorkloadError::Failed {
            workload: w,
            target: e.target,
            what: "no transaction completed in the measured interval".into(),
        });
    }
    let mut sample = Sample::default();
    sample.set(
        super::headline_metric(w),
        transactions as f64 / p.duration.as_secs_f64(),
    );
    latencies.add_to(&mut sample);
    usage.add_to(&mut sample, None);
    Ok(sample)
}

fn request_loop(
    mut s: TcpStream,
    size: usize,
    timeline: &Timeline,
    stop: &StopFlag,
    done: &AtomicU64,
    target: SocketAddr,
) -> Result<Tally, WorkloadError> {
    let io_err = transfer_err_fn(W, target);
    s.set_nodelay(true)
        .map_err(|e| io_err("set TCP_NODELAY", e))?;
    let request = vec![0x71u8; size];
    let mut response = vec![0u8; size];
    let mut tally = Tally {
        latencies: LatencyHistogram::new(),
        transactions: 0,
    };
    loop {
        // Runs until the supervisor stops it (after its CPU snapshot at t1),
        // so the thread is alive for both snapshots.
        if stop.stopped() {
            return Ok(tally);
        }
        let sent = Instant::now();
        s.write_all(&request)
            .map_err(|e| io_err("write request", e))?;
        s.read_exact(&mut response)
            .map_err(|e| io_err("read response", e))?;
        let now = Instant::now();
        done.fetch_add(1, Ordering::Relaxed);
        if timeline.measuring(now) {
            tally.latencies.record(now - sent);
            tally.transactions += 1;
        }
    }
}

/// Answers each `size`-byte request with `size` bytes until the client closes.
pub(crate) fn echo(mut s: TcpStream, size: usize, target: SocketAddr) -> Result<(), WorkloadError> {
    let io_err = transfer_err_fn(W, target);
    s.set_nodelay(true)
        .map_err(|e| io_err("set TCP_NODELAY", e))?;
    let mut buf = vec![0u8; size];
    loop {
        if !read_message(&mut s, &mut buf).map_err(|e| io_err("server read request", e))? {
            return Ok(());
        }
        s.write_all(&buf)
            .map_err(|e| io_err("server write response", e))?;
    }
}

/// Reads exactly buf.len() bytes; false if the peer closed (EOF or reset)
/// before the first byte, which ends a connection normally.
pub(crate) fn read_message(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if got == 0 && e.kind() == ErrorKind::ConnectionReset => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
