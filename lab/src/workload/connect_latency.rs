//! First-packet latency: how long `connect()` takes on a fresh socket, from
//! the call (the SYN leaves) until the handshake is complete on the client
//! (the SYN-ACK came back and the ACK is sent). Through a service proxy
//! this is the latency the proxy adds to a connection's first packet, as
//! the kube-proxy studies measured it. tcp-crr records it for every
//! connection it opens, so it comes from thousands of connections per
//! sample without a loop of its own.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::histogram::LatencyHistogram;
use super::Sample;

/// The percentiles reported, as (quantile, metric name).
pub const CONNECT_METRICS: [(f64, &str); 3] = [
    (0.01, "connect_us_p1"),
    (0.50, "connect_us_p50"),
    (0.99, "connect_us_p99"),
];

/// Connect times of one worker; merge workers with [`ConnectTimes::merge`].
#[derive(Clone, Default)]
pub struct ConnectTimes(LatencyHistogram);

impl ConnectTimes {
    pub fn record(&mut self, connect: Duration) {
        self.0.record(connect);
    }

    pub fn merge(&mut self, other: &ConnectTimes) {
        self.0.merge(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Connect time at quantile `q` (0..=1) in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.0.quantile_us(q)
    }

    /// Adds connect_us_p1/p50/p99; nothing when no connection was timed.
    pub fn add_to(&self, sample: &mut Sample) {
        if self.is_empty() {
            return;
        }
        for (q, name) in CONNECT_METRICS {
            sample.set(name, self.quantile_us(q));
        }
    }
}

/// Opens a fresh connection to `target` and says how long the handshake
/// took (see the module comment).
pub fn timed_connect(
    target: SocketAddr,
    timeout: Duration,
) -> std::io::Result<(TcpStream, Duration)> {
    let started = Instant::now();
    let stream = TcpStream::connect_timeout(&target, timeout)?;
    Ok((stream, started.elapsed()))
}

/// Closes with a RST (SO_LINGER 0): no TIME_WAIT, as netperf's TCP_CRR.
pub fn abortive_close(s: TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        &s,
        nix::sys::socket::sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
    drop(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(us: impl IntoIterator<Item = u64>) -> ConnectTimes {
        let mut t = ConnectTimes::default();
        for u in us {
            t.record(Duration::from_micros(u));
        }
        t
    }

    /// Nearest-rank percentile of sorted values: the oracle.
    fn nearest_rank(sorted: &[u64], q: f64) -> f64 {
        let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank - 1] as f64
    }

    #[test]
    fn percentiles_match_nearest_rank_within_histogram_precision() {
        // 10,000 connect times with a long tail: 50..150 us, 2% at 2-4 ms.
        let mut values: Vec<u64> = (0..9_800u64).map(|i| 50 + (i * 7919) % 100).collect();
        values.extend((0..200u64).map(|i| 2_000 + i * 10));
        let t = times(values.iter().copied());
        values.sort_unstable();
        for (q, name) in CONNECT_METRICS {
            let want = nearest_rank(&values, q);
            let got = t.quantile_us(q);
            assert!(
                (got - want).abs() <= want * 0.001 + 1.0,
                "{name}: got {got}, want {want}"
            );
        }
        let mut s = Sample::default();
        t.add_to(&mut s);
        let p = |n: &str| s.get(n).unwrap();
        assert!(p("connect_us_p1") < p("connect_us_p50"));
        assert!(p("connect_us_p99") >= 2_000.0, "the tail shows at p99");
    }

    #[test]
    fn workers_merge_into_one_distribution() {
        let mut a = times([100; 90]);
        a.merge(&times([1_000; 10]));
        assert_eq!(a.len(), 100);
        assert!((a.quantile_us(0.5) - 100.0).abs() < 0.1);
        assert!((a.quantile_us(0.99) - 1_000.0).abs() < 1.0);
    }

    #[test]
    fn no_connection_no_metric() {
        let mut s = Sample::default();
        ConnectTimes::default().add_to(&mut s);
        assert!(s.metrics.is_empty());
    }
}
