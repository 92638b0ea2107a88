//! "Reading the curves": per metric of a sweep, how much each proxy's
//! median changed from its smallest to its largest point, and between which
//! points two proxies' lines cross. Derived from the numbers only.

use crate::results::format::services_label;
use crate::results::format::{format_number, median_ratio, with_interval};
use crate::results::sweep::{ScaleMetric, Series};
use crate::results::Metric;

/// The reading of one metric's series, if it has anything to say.
pub(super) fn reading_line(metric: &ScaleMetric, lines: &[Series]) -> Option<String> {
    let changes: Vec<String> = lines.iter().filter_map(change).collect();
    if changes.is_empty() {
        return None;
    }
    let mut line = format!(
        "**{}** ({}): {}.",
        metric.title,
        metric.unit,
        changes.join("; ")
    );
    for (i, a) in lines.iter().enumerate() {
        for b in &lines[i + 1..] {
            for c in crossings(a, b) {
                line.push(' ');
                line.push_str(&c);
            }
        }
    }
    Some(line)
}

/// `iptables ×5000 from 1 to 30,000 services (4.6 → 23000)`.
fn change(s: &Series) -> Option<String> {
    let ((n0, first), (n1, last)) = (s.values.first()?, s.values.last()?);
    if n0 == n1 {
        return Some(format!(
            "{} {} at {} services only",
            s.label,
            format_number(first.median),
            services_label(*n0)
        ));
    }
    let ratio = median_ratio(first, last)?;
    let noise = if noise(first, last) { " ≈" } else { "" };
    let times = if ratio >= 10.0 {
        format!("×{ratio:.0}")
    } else {
        format!("×{ratio:.2}")
    };
    Some(format!(
        "{} {times}{noise} from {} to {} services ({} → {})",
        s.label,
        services_label(*n0),
        services_label(*n1),
        format_number(first.median),
        format_number(last.median)
    ))
}

/// Whether two values are within noise of each other.
fn noise(a: &Metric, b: &Metric) -> bool {
    !with_interval(a).differs_from(&with_interval(b))
}

/// Sentences for each place where `a` and `b` swap order between two
/// consecutive service counts both were measured at.
fn crossings(a: &Series, b: &Series) -> Vec<String> {
    let common: Vec<(u32, &Metric, &Metric)> = a
        .values
        .iter()
        .filter_map(|(n, ma)| {
            let (_, mb) = b.values.iter().find(|(m, _)| m == n)?;
            Some((*n, ma, mb))
        })
        .collect();
    let mut out = Vec::new();
    let mut previous: Option<(u32, bool, bool)> = None;
    for &(n, ma, mb) in &common {
        if ma.median == mb.median {
            continue;
        }
        let a_lower = ma.median < mb.median;
        let within = noise(ma, mb);
        if let Some((p, was_lower, was_within)) = previous {
            if was_lower != a_lower {
                let (low_before, low_after) = if was_lower {
                    (&a.label, &b.label)
                } else {
                    (&b.label, &a.label)
                };
                let hedge = if was_within || within {
                    " (within noise at one end)"
                } else {
                    ""
                };
                out.push(format!(
                    "{} and {} cross between {} and {} services: {low_before} is lower at {}, {low_after} at {}{hedge}.",
                    a.label,
                    b.label,
                    services_label(p),
                    services_label(n),
                    services_label(p),
                    services_label(n)
                ));
            }
        }
        previous = Some((n, a_lower, within));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::sweep::POINT_METRICS;

    fn series(label: &str, values: &[(u32, &[f64])]) -> Series {
        Series {
            label: label.into(),
            proxy: label.into(),
            values: values
                .iter()
                .map(|(n, s)| (*n, Metric::from_samples(s.to_vec())))
                .collect(),
        }
    }

    #[test]
    fn changes_and_crossings_come_from_the_numbers() {
        let ipt = series(
            "iptables",
            &[
                (1, &[4.0, 4.2, 4.1]),
                (1000, &[240.0, 250.0, 245.0]),
                (30000, &[9000.0, 9100.0, 9050.0]),
            ],
        );
        let bpf = series(
            "ebpf",
            &[
                (1, &[290.0, 300.0, 295.0]),
                (1000, &[296.0, 301.0, 299.0]),
                (30000, &[298.0, 305.0, 300.0]),
            ],
        );
        let line = reading_line(&POINT_METRICS[0], &[ipt, bpf]).unwrap();
        assert!(
            line.starts_with(
                "**Full programming** (ms): iptables ×2207 from 1 to 30,000 services (4.10 → 9050)"
            ),
            "{line}"
        );
        assert!(
            line.contains("ebpf ×1.02 ≈ from 1 to 30,000 services (295 → 300)"),
            "{line}"
        );
        assert!(line.contains("iptables and ebpf cross between 1,000 and 30,000 services: iptables is lower at 1,000, ebpf at 30,000."), "{line}");
    }

    #[test]
    fn parallel_lines_do_not_cross_and_a_single_point_says_so() {
        let a = series("a", &[(1, &[1.0]), (10, &[2.0])]);
        let b = series("b", &[(1, &[3.0]), (10, &[4.0])]);
        assert!(crossings(&a, &b).is_empty());
        let lone = series("c", &[(10, &[7.0])]);
        let line = reading_line(&POINT_METRICS[0], &[lone]).unwrap();
        assert!(line.contains("c 7.00 at 10 services only"), "{line}");
    }
}
