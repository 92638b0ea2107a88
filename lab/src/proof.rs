//! Proof of path: counters read before and after a measurement that show
//! which way the packets went (iptables rule packets, eBPF program runs,
//! VXLAN device packets). Every producer (service proxies, datapaths,
//! overlays) adds its own named counters; the runner only subtracts.

use std::collections::BTreeMap;

/// Counter name -> value, as results.json's `proof`.
pub type Proof = BTreeMap<String, i64>;

/// `after - before` for every counter.
pub fn delta(before: &Proof, after: &Proof) -> Proof {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .collect()
}

/// A counter's value, 0 when the proof does not carry it.
pub fn get(proof: &Proof, name: &str) -> i64 {
    proof.get(name).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_subtracts_and_keeps_new_counters() {
        let before = Proof::from([("a".to_string(), 5)]);
        let after = Proof::from([("a".to_string(), 7), ("b".to_string(), 3)]);
        let d = delta(&before, &after);
        assert_eq!(get(&d, "a"), 2);
        assert_eq!(get(&d, "b"), 3);
        assert_eq!(get(&d, "c"), 0);
    }
}
