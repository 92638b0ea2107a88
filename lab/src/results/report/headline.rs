//! The metric that stands for each workload in the single-node tables and
//! the "Reading" lines, and how to read it.

/// The metric that stands for a workload in the tables, and how to read it.
#[derive(Debug, Clone, Copy)]
pub struct Headline {
    pub workload: &'static str,
    pub metric: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
}

/// One table per entry in the single-node section, in this order.
pub const HEADLINES: &[Headline] = &[
    Headline {
        workload: "tcp-stream",
        metric: "throughput_gbps",
        label: "throughput",
        unit: "Gbit/s",
        higher_is_better: true,
    },
    Headline {
        workload: "udp-stream",
        metric: "throughput_gbps",
        label: "throughput",
        unit: "Gbit/s",
        higher_is_better: true,
    },
    Headline {
        workload: "tcp-rr",
        metric: "latency_us_p50",
        label: "latency p50",
        unit: "µs",
        higher_is_better: false,
    },
    Headline {
        workload: "tcp-rr",
        metric: "transactions_per_s",
        label: "transactions",
        unit: "1/s",
        higher_is_better: true,
    },
    Headline {
        workload: "tcp-crr",
        metric: "connections_per_s",
        label: "connections",
        unit: "1/s",
        higher_is_better: true,
    },
    Headline {
        workload: "http",
        metric: "requests_per_s",
        label: "requests",
        unit: "1/s",
        higher_is_better: true,
    },
    Headline {
        workload: "ping",
        metric: "rtt_ms",
        label: "round-trip time",
        unit: "ms",
        higher_is_better: false,
    },
];
