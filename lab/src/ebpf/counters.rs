//! Datapath counters as the lead reads them: summed over CPUs.

use aya::maps::{Map, MapData, PerCpuArray};

use super::maps::{CountersValue, COUNTERS_MAP};
use super::{pins, EbpfError};

/// Reads a run's counters from its pinned map, without loading programs
/// (e.g. `dplab test` on a lab that `dplab up` built).
pub fn pinned_counters(run_id: &str) -> Result<Counters, EbpfError> {
    let err = |op: &str, source| EbpfError::Map {
        map: COUNTERS_MAP,
        op: format!("{op} (run {run_id})"),
        source: Box::new(source),
    };
    let path = pins::pin_dir(run_id)?.join(COUNTERS_MAP);
    let data = MapData::from_pin(&path).map_err(|e| err("open pin", e))?;
    let map = Map::from_map_data(data).map_err(|e| err("open pin", e))?;
    let array: PerCpuArray<MapData, CountersValue> =
        PerCpuArray::try_from(map).map_err(|e| err("open as per-CPU array", e))?;
    let per_cpu = array.get(&0, 0).map_err(|e| err("read", e))?;
    Ok(Counters::sum(per_cpu.iter()))
}

/// What the programs counted since the maps were created (all CPUs).
/// `runs`: program invocations; `dnat`: packets to a service translated to a
/// backend; `rev_nat`: replies given their service address back;
/// `redirected`: packets delivered straight to a local pod (veth_ingress);
/// `passed`: packets left to the kernel's own path (TC_ACT_OK), translated
/// or not; `dropped`: packets to a service without backends, or whose
/// rewrite failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub runs: u64,
    pub dnat: u64,
    pub rev_nat: u64,
    pub redirected: u64,
    pub passed: u64,
    pub dropped: u64,
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
        }
    }

    pub(crate) fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a CountersValue>) -> Counters {
        per_cpu
            .into_iter()
            .fold(Counters::default(), |acc, c| Counters {
                runs: acc.runs + c.runs,
                dnat: acc.dnat + c.dnat,
                rev_nat: acc.rev_nat + c.rev_nat,
                redirected: acc.redirected + c.redirected,
                passed: acc.passed + c.passed,
                dropped: acc.dropped + c.dropped,
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
        };
        let total = Counters::sum([&cpu, &cpu]);
        assert_eq!(total.runs, 6);
        assert_eq!(total.redirected, 4);
        let d = total.delta(&Counters {
            runs: 2,
            ..Default::default()
        });
        assert_eq!(d.runs, 4);
        assert_eq!(d.dnat, 2);
    }
}
