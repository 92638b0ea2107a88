//! `dplab run --services N1,N2,...`: the matrix measured while the proxy
//! holds N services, for every N. Repetitions are the outer loop, then the
//! service counts, then the labs, so that drift of the machine spreads over
//! every point alike. Each (N, lab) builds a fresh lab whose proxy programs
//! all N services from empty, measures the cells, then the one-change
//! updates, and tears the lab down.

use std::time::Instant;

use super::cells::{self, Tally};
use super::sweep_point::{self, PointTally};
use super::{measure, replay, LabKey, Progress, RunOptions};
use crate::error::LabError;
use crate::kinds::Target;
use crate::lab::Lab;
use crate::names::RunId;
use crate::results::sweep::SweepResults;
use crate::results::Cell;
use crate::service::{pairing, synthetic, Pairing};
use crate::topology::{PathPlan, Plan, Sweep};

/// One service count: its plan and the options measuring it.
struct Point {
    services: u32,
    plan: Plan,
    opts: RunOptions,
    /// The path whose service the updates and the traffic probe use.
    measured: Option<PathPlan>,
}

/// What a sweep measured: cells, benchmarks and the points.
pub struct SweepOutput {
    pub cells: Vec<Cell>,
    pub benchmarks: Vec<(String, f64)>,
    pub sweep: SweepResults,
}

/// Cells a sweep measures per repetition (for progress).
pub fn cells_per_repetition(plan: &Plan, opts: &RunOptions, sweep: &Sweep) -> usize {
    cells::specs(plan, opts).len() * sweep.services.len()
}

pub async fn run_sweep(
    run: &RunId,
    plan: &Plan,
    opts: &RunOptions,
    sweep: &Sweep,
    progress: &Progress,
) -> Result<SweepOutput, String> {
    let started = Instant::now();
    let points = plan_points(plan, opts, sweep)?;
    let labs = opts.labs();
    // (point index, tally) for every cell; a PointTally per (point, lab).
    let mut tallies: Vec<(usize, Tally)> = Vec::new();
    let mut point_tallies: Vec<(usize, PointTally)> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        tallies.extend(
            cells::specs(&p.plan, &p.opts)
                .into_iter()
                .map(|s| (i, Tally::new(s))),
        );
        let measured = p.measured.as_ref().and_then(|m| m.service);
        point_tallies.extend(
            labs.iter()
                .map(|&key| (i, PointTally::new(key, &p.plan, measured))),
        );
    }
    let mut benchmarks = Vec::new();
    let mut unbuildable: Vec<(LabKey, LabError)> = Vec::new();
    let params = opts.params();
    let mut first = true;
    for rep in 0..opts.repetitions {
        for (i, point) in points.iter().enumerate() {
            for (k, &key) in labs.iter().enumerate() {
                let pt = &mut point_tallies
                    .iter_mut()
                    .find(|(p, t)| *p == i && t.key == key)
                    .expect("a point tally per lab")
                    .1;
                let label = format!("{}@{}", key.label(), point.services);
                let failed_before = unbuildable
                    .iter()
                    .find(|(k, e)| *k == key && e.is_unsupported())
                    .map(|(_, e)| replay(e));
                super::sweep_footprint::reset_peak_rss();
                let lab = match failed_before {
                    Some(e) => Err(e),
                    None => {
                        let lab_run = if std::mem::take(&mut first) {
                            run.clone()
                        } else {
                            RunId::fresh()
                        };
                        progress.note(&format!(
                            "repetition {}/{}: {} services: building {}",
                            rep + 1,
                            opts.repetitions,
                            point.services,
                            key.label()
                        ));
                        Lab::up(&point.plan, key.datapath, key.proxy, key.overlay, lab_run).await
                    }
                };
                let mut lab = match lab {
                    Ok(lab) => lab,
                    Err(e) => {
                        let last_of_datapath = !labs[k + 1..]
                            .iter()
                            .any(|o| o.datapath == key.datapath && o.overlay == key.overlay);
                        for (_, t) in tallies
                            .iter_mut()
                            .filter(|(p, t)| *p == i && key.measures(t, rep))
                        {
                            if t.spec.proxy.is_some() || last_of_datapath {
                                t.build_failed(&e);
                            }
                        }
                        pt.build_failed(&e);
                        if !unbuildable.iter().any(|(k, _)| *k == key) {
                            unbuildable.push((key, e));
                        }
                        continue;
                    }
                };
                benchmarks.push((format!("setup_ms.{label}"), lab.setup_ms));
                benchmarks.push((format!("sweep_program_ms.{label}"), lab.install.ms));
                let probe_to = probe_target(&lab, point, pt);
                if let Some(to) = &probe_to {
                    sweep_point::programming(&lab, to, pt);
                }
                let (footprint, note) =
                    super::sweep_footprint::read(key.proxy, key.datapath, &lab.run, &lab.plan);
                for (name, value) in footprint {
                    pt.add(&name, value);
                }
                if let Some(note) = note {
                    pt.note(note);
                }
                let mut measured = Vec::new();
                for (n, (p, tally)) in tallies.iter_mut().enumerate() {
                    if *p != i || !key.measures(tally, rep) {
                        continue;
                    }
                    measured.push(n);
                    tally.reps_tried = rep + 1;
                    tally.setups_ms.push(lab.setup_ms);
                    if tally.is_done() {
                        continue;
                    }
                    progress.cell(&tally.spec, rep + 1, opts.repetitions);
                    measure(&lab, opts.tool, &params, tally, progress);
                }
                if let (Some(_), Some(path)) = (&probe_to, &point.measured) {
                    let (client, server) = (path.client, path.server);
                    sweep_point::updates(&mut lab, &point.plan, client, server, pt);
                }
                if let Some(mb) = super::sweep_footprint::peak_rss_mb() {
                    pt.add("dplab_peak_rss_mb", mb);
                }
                let report = lab.down();
                benchmarks.push((format!("teardown_ms.{label}"), report.elapsed_ms));
                for &n in &measured {
                    tallies[n].1.teardowns_ms.push(report.elapsed_ms);
                    if !report.is_clean() {
                        let why = format!("teardown failed: {}", report.errors.join("; "));
                        tallies[n].1.fail(why);
                    }
                }
                if !report.is_clean() {
                    pt.fail(format!("teardown failed: {}", report.errors.join("; ")));
                }
            }
        }
    }
    progress.finish();
    benchmarks.push(("sweep_wall_s".into(), started.elapsed().as_secs_f64()));
    Ok(output(
        plan,
        sweep,
        &points,
        tallies,
        point_tallies,
        benchmarks,
    ))
}

/// Where the probes connect: the measured service of this point, when the
/// lab's proxy is expected to carry it (else a note says why not).
fn probe_target(
    lab: &Lab,
    point: &Point,
    pt: &mut PointTally,
) -> Option<crate::workload::Endpoints> {
    if pt.is_done() {
        return None;
    }
    let Some(path) = &point.measured else {
        pt.note("no cluster-ip path in the matrix: programming and updates are not timed".into());
        return None;
    };
    if let Pairing::Unreachable(why) | Pairing::Impossible(why) =
        pairing(lab.datapath, lab.proxy.kind(), Target::ClusterIp)
    {
        pt.skip(format!(
            "the {} proxy is not expected to carry cluster-IP traffic on {}: {why}",
            lab.proxy.kind(),
            lab.datapath
        ));
        return None;
    }
    match super::endpoints(lab, path) {
        Ok(e) => Some(e),
        Err(why) => {
            pt.skip(why.to_string());
            None
        }
    }
}

/// The plan and options of every service count.
fn plan_points(plan: &Plan, opts: &RunOptions, sweep: &Sweep) -> Result<Vec<Point>, String> {
    let own = plan.services.len();
    sweep
        .services
        .iter()
        .map(|&n| {
            let point = synthetic::plan_point(plan, n, sweep.endpoints_per_service)?;
            let shift = n as usize - own;
            let mut point_opts = opts.clone();
            for path in &mut point_opts.paths {
                path.service = path.service.map(|s| s + shift);
            }
            let measured = point_opts
                .paths
                .iter()
                .find(|p| p.target == Target::ClusterIp && p.service.is_some())
                .cloned();
            Ok(Point {
                services: n,
                plan: point,
                opts: point_opts,
                measured,
            })
        })
        .collect()
}

/// Cells (by service count, then in matrix order), benchmarks, points.
fn output(
    plan: &Plan,
    sweep: &Sweep,
    points: &[Point],
    tallies: Vec<(usize, Tally)>,
    point_tallies: Vec<(usize, PointTally)>,
    mut benchmarks: Vec<(String, f64)>,
) -> SweepOutput {
    let mut cells = Vec::with_capacity(tallies.len());
    for (i, tally) in tallies {
        let mut cell = tally.into_cell();
        cell.services = Some(points[i].services);
        cell.endpoints = Some(
            points[i]
                .plan
                .services
                .iter()
                .map(|s| s.backends.len() as u32)
                .sum(),
        );
        cells.push(cell);
    }
    let points_out: Vec<_> = point_tallies
        .into_iter()
        .map(|(_, t)| t.into_point())
        .collect();
    for p in &points_out {
        for name in ["update_add_service_ms", "update_remove_endpoint_ms"] {
            if let Some(m) = p.metrics.get(name) {
                let label = format!("{}/{}@{}", p.datapath, p.service_proxy, p.services);
                benchmarks.push((format!("sweep_{name}.{label}"), m.median));
            }
        }
    }
    let measured_service = points
        .first()
        .and_then(|p| Some(p.plan.services[p.measured.as_ref()?.service?].name.clone()))
        .unwrap_or_default();
    SweepOutput {
        cells,
        benchmarks,
        sweep: SweepResults {
            services: sweep.services.clone(),
            endpoints_per_service: sweep.endpoints_per_service,
            measured_service,
            placement: match plan.services.len() {
                1 => "the topology's own service comes after the synthetic ones".to_string(),
                n => format!("the topology's {n} own services come after the synthetic ones"),
            } + ": a proxy that matches services in order tries every synthetic service before the measured one",
            points: points_out,
        },
    }
}
