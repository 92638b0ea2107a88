//! Datapath counters as the lead reads them: summed over CPUs, and over the
//! nodes of a lab.

use std::path::Path;

use aya::maps::{Map, MapData, PerCpuArray};

use super::maps::{CountersValue, COUNTERS_MAP};
use super::{pins, EbpfError};

/// Reads a run's counters from its pinned maps, without loading programs
/// (e.g. `dplab test` on a lab that `dplab up` built): the run-wide maps if
/// any, plus every node's.
pub fn pinned_counters(run_id: &str) -> Result<Counters, EbpfError> {
    let mut total = Counters::default();
    let mut found = false;
    for dir in pins::scope_dirs(run_id)? {
        let path = dir.join(COUNTERS_MAP);
        if path.exists() {
            total = total.plus(&read_pinned(run_id, &path)?);
            found = true;
        }
    }
    if !found {
        let path = pins::pin_dir(run_id)?.join(COUNTERS_MAP);
        // Let the open fail with the run's missing pin as the reason.
        return read_pinned(run_id, &path);
    }
    Ok(total)
}

fn read_pinned(run_id: &str, path: &Path) -> Result<Counters, EbpfError> {
    let err = |op: &str, source| EbpfError::Map {
        map: COUNTERS_MAP,
        op: format!("{op} {} (run {run_id})", path.display()),
        source: Box::new(source),
    };
    let data = MapData::from_pin(path).map_err(|e| err("open pin", e))?;
    let map = Map::from_map_data(data).map_err(|e| err("open pin", e))?;
    let array: PerCpuArray<MapData, CountersValue> =
        PerCpuArray::try_from(map).map_err(|e| err("open as per-CPU array", e))?;
    let per_cpu = array.get(&0, 0).map_err(|e| err("read", e))?;
    Ok(Counters::sum(per_cpu.iter()))
}

/// What the programs counted since the maps were created (all CPUs).
/// `runs`: program invocations; `dnat`: connections' packets to a service
/// translated to a backend; `rev_nat`: replies given their service address
/// back; `redirected`: packets delivered straight to a local pod
/// (bpf_redirect_peer, eBPF host routing); `passed`: packets left to the
/// kernel's own path (TC_ACT_OK), translated or not; `dropped`: packets to
/// a service without backends, without a free SNAT port, without a route
/// out, or whose rewrite failed; `snat`: translated packets whose source
/// was rewritten too (hairpin, node port to another node); `forwarded`:
/// packets sent out of the node by a FIB lookup (node-port SNAT paths).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub runs: u64,
    pub dnat: u64,
    pub rev_nat: u64,
    pub redirected: u64,
    pub passed: u64,
    pub dropped: u64,
    pub snat: u64,
    pub forwarded: u64,
}

impl Counters {
    /// What happened between `before` and `self`.
    pub fn delta(&self, before: &Counters) -> Counters {
        Counters {
            runs: self.runs.saturating_sub(before.runs),
            dnat: self.dnat.saturating_sub(before.dnat),
            rev_nat: self.rev_nat.saturating_sub(before.rev_nat),
            redirected: self.redirected.saturating_sub(before.redirected),
            passed: self.passed.saturating_sub(before.passed),
            dropped: self.dropped.saturating_sub(before.dropped),
            snat: self.snat.saturating_sub(before.snat),
            forwarded: self.forwarded.saturating_sub(before.forwarded),
        }
    }

    fn plus(&self, other: &Counters) -> Counters {
        Counters {
            runs: self.runs + other.runs,
            dnat: self.dnat + other.dnat,
            rev_nat: self.rev_nat + other.rev_nat,
            redirected: self.redirected + other.redirected,
            passed: self.passed + other.passed,
            dropped: self.dropped + other.dropped,
            snat: self.snat + other.snat,
            forwarded: self.forwarded + other.forwarded,
        }
    }

    pub(crate) fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a CountersValue>) -> Counters {
        per_cpu.into_iter().fold(Counters::default(), |acc, c| {
            acc.plus(&Counters {
                runs: c.runs,
                dnat: c.dnat,
                rev_nat: c.rev_nat,
                redirected: c.redirected,
                passed: c.passed,
                dropped: c.dropped,
                snat: c.snat,
                forwarded: c.forwarded,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_cpus_and_subtracts() {
        let cpu = CountersValue {
            runs: 3,
            dnat: 1,
            rev_nat: 1,
            redirected: 2,
            passed: 1,
            dropped: 0,
            snat: 1,
            forwarded: 0,
        };
        let total = Counters::sum([&cpu, &cpu]);
        assert_eq!(total.runs, 6);
        assert_eq!(total.redirected, 4);
        assert_eq!(total.snat, 2);
        let d = total.delta(&Counters {
            runs: 2,
            ..Default::default()
        });
        assert_eq!(d.runs, 4);
        assert_eq!(d.dnat, 2);
    }
}
