//! The runner: phases are small types run in order, but machines do not wait for each other
//! at phase boundaries. Each machine runs its own pipeline through the per-machine parts of
//! the selected phases (deploy → SSH preflight → MicroK8s install), with at most
//! `--parallel` machines in flight; the cluster-level parts (joins, storage, Kafka) run after
//! the pipelines, in phase order.

use crate::engine::context::Ctx;
use crate::engine::phase::Phase;
use crate::engine::plan::{Planned, render_plan};
use crate::foundation::events::{Event, PhaseTiming};
use crate::foundation::phase_id::PhaseId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub ok: bool,
    pub changes: u32,
    pub phases: Vec<PhaseTiming>,
    pub planned: Vec<(PhaseId, Planned)>,
    pub elapsed_s: f64,
}

#[derive(Default)]
struct Clock {
    /// Phases that have started.
    started: std::collections::HashSet<PhaseId>,
    /// Per phase, the intervals in which some machine (or the cluster-level step) was in it.
    spans: HashMap<PhaseId, Vec<(Instant, Instant)>>,
}

impl Clock {
    /// Notes that `p` is active; true when this is the phase's first moment.
    fn begin(&mut self, p: PhaseId) -> bool {
        self.started.insert(p)
    }
    /// Records that `p` was active from `from` to `t`.
    fn end(&mut self, p: PhaseId, from: Instant, t: Instant) {
        self.spans.entry(p).or_default().push((from, t));
    }
    /// Seconds in which the phase was active: the union of its intervals (machines in the
    /// same phase overlap; a phase waiting for others between its machine work and its
    /// cluster-level step is not counted).
    fn active(&self, p: PhaseId) -> Option<f64> {
        let mut v = self.spans.get(&p)?.clone();
        v.sort();
        let (mut a, mut b) = *v.first()?;
        let mut total = 0.0;
        for &(x, y) in &v[1..] {
            if x > b {
                total += (b - a).as_secs_f64();
                (a, b) = (x, y);
            } else {
                b = b.max(y);
            }
        }
        Some(total + (b - a).as_secs_f64())
    }
}

/// A failure of one machine in one phase.
#[derive(Debug)]
struct MachineFailure {
    phase: PhaseId,
    hostname: String,
    error: anyhow::Error,
}

pub async fn run(cx: Arc<Ctx>, phases: Vec<Arc<dyn Phase>>) -> anyhow::Result<RunReport> {
    let start = Instant::now();
    cx.ui.emit(Event::RunStarted {
        command: cx.opts.command.clone(),
        cluster: cx.cluster.name.clone(),
        dry_run: cx.opts.dry_run,
        phases: phases.iter().map(|p| p.id()).collect(),
        machines: cx.machines().iter().map(|m| m.hostname.clone()).collect(),
    });
    if cx.opts.dry_run {
        return plan_all(&cx, &phases, start).await;
    }
    let clock = Arc::new(Mutex::new(Clock::default()));
    let result = async {
        // Cluster-level checks that change nothing come first, for every phase; then the
        // preparations (key checks, background downloads). Both are quick and are not counted
        // in the phases' times.
        for p in &phases {
            p.preflight(&cx).await.map_err(|e| e.context(format!("{} phase", p.id())))?;
        }
        for p in &phases {
            p.prepare(&cx).await.map_err(|e| e.context(format!("{} phase", p.id())))?;
        }
        let pipeline: Vec<Arc<dyn Phase>> = phases.iter().filter(|p| p.per_machine()).cloned().collect();
        if !pipeline.is_empty() {
            let failures = run_pipelines(&cx, &pipeline, &clock).await;
            if !failures.is_empty() {
                let names: Vec<String> =
                    failures.iter().map(|f| format!("{} ({} phase)", f.hostname, f.phase)).collect();
                let first = failures.into_iter().next().map(|f| f.error);
                let mut err = first.unwrap_or_else(|| anyhow::anyhow!("machine work failed"));
                if names.len() > 1 {
                    err = err.context(format!("{} machines failed: {}", names.len(), names.join(", ")));
                }
                return Err(err);
            }
        }
        for p in &phases {
            let t0 = begin(&cx, &clock, p.id());
            let r = p.finish(&cx).await;
            end(&clock, p.id(), t0);
            r.map_err(|e| e.context(format!("{} phase", p.id())))?;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let timings = finish_phases(&cx, &phases, &clock, result.as_ref().err());
    let changes = timings.iter().map(|t| t.changes).sum();
    let elapsed_s = start.elapsed().as_secs_f64();
    cx.ui.emit(Event::RunFinished {
        ok: result.is_ok(),
        dry_run: false,
        changes,
        elapsed_s,
        phases: timings.clone(),
        error: result.as_ref().err().map(|e| format!("{e:#}")),
    });
    result.map(|_| RunReport { ok: true, changes, phases: timings, planned: vec![], elapsed_s })
}

/// Notes that `p` is active from now (announcing the phase the first time); returns now.
fn begin(cx: &Ctx, clock: &Arc<Mutex<Clock>>, p: PhaseId) -> Instant {
    if clock.lock().map(|mut c| c.begin(p)).unwrap_or(false) {
        cx.ui.emit(Event::PhaseStarted { phase: p });
    }
    Instant::now()
}

fn end(clock: &Arc<Mutex<Clock>>, p: PhaseId, from: Instant) {
    if let Ok(mut c) = clock.lock() {
        c.end(p, from, Instant::now());
    }
}

fn finish_phases(
    cx: &Ctx,
    phases: &[Arc<dyn Phase>],
    clock: &Arc<Mutex<Clock>>,
    err: Option<&anyhow::Error>,
) -> Vec<PhaseTiming> {
    let active: HashMap<PhaseId, f64> = clock
        .lock()
        .map(|c| phases.iter().filter_map(|p| c.active(p.id()).map(|t| (p.id(), t))).collect())
        .unwrap_or_default();
    let failed_phase =
        err.and_then(|e| phases.iter().map(|p| p.id()).find(|id| format!("{e:#}").contains(&format!("{id} phase"))));
    let mut out = Vec::new();
    let mut seen_failure = false;
    for p in phases {
        let id = p.id();
        let Some(elapsed_s) = active.get(&id).copied() else { continue };
        let ok = match (err, failed_phase) {
            (None, _) => true,
            (Some(_), Some(f)) => {
                if f == id {
                    seen_failure = true;
                }
                !seen_failure
            }
            (Some(_), None) => false,
        };
        let t = PhaseTiming { phase: id, ok, changes: cx.changes(id), elapsed_s };
        cx.ui.emit(Event::PhaseFinished { phase: id, ok: t.ok, changes: t.changes, elapsed_s: t.elapsed_s });
        out.push(t);
    }
    out
}

async fn run_pipelines(cx: &Arc<Ctx>, pipeline: &[Arc<dyn Phase>], clock: &Arc<Mutex<Clock>>) -> Vec<MachineFailure> {
    // Every machine gets its pipeline at once: most of it is waiting for MAAS or a boot.
    // What is scarce is bounded where it is used: MAAS requests in the client, SSH work by
    // `Ctx::ssh_slot` (`--parallel`).
    let mut set = tokio::task::JoinSet::new();
    for m in cx.machines() {
        let cx = cx.clone();
        let pipeline = pipeline.to_vec();
        let clock = clock.clone();
        set.spawn(async move {
            for p in &pipeline {
                let id = p.id();
                let t0 = begin(&cx, &clock, id);
                let r = p.machine(&cx, &m).await;
                end(&clock, id, t0);
                if let Err(error) = r {
                    cx.ui.emit(Event::Failed { phase: id, target: m.hostname.clone(), message: format!("{error:#}") });
                    return Some(MachineFailure { phase: id, hostname: m.hostname.clone(), error });
                }
            }
            None
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Some(f)) => failures.push(f),
            Ok(None) => {}
            Err(e) => failures.push(MachineFailure {
                phase: PhaseId::Machines,
                hostname: "?".into(),
                error: anyhow::anyhow!("a machine task stopped unexpectedly: {e}"),
            }),
        }
    }
    failures.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    failures
}

async fn plan_all(cx: &Ctx, phases: &[Arc<dyn Phase>], start: Instant) -> anyhow::Result<RunReport> {
    let mut planned = Vec::new();
    let mut timings = Vec::new();
    for p in phases {
        let t = Instant::now();
        cx.ui.emit(Event::PhaseStarted { phase: p.id() });
        p.plan(cx).await.map_err(|e| e.context(format!("{} phase (dry run)", p.id())))?;
        let items: Vec<Planned> = cx.take_planned().into_iter().map(|(_, it)| it).collect();
        // Changes as the real run counts them: one per action, one per object an apply would
        // create or change.
        let n = cx.changes(p.id());
        planned.extend(items.into_iter().map(|i| (p.id(), i)));
        let timing = PhaseTiming { phase: p.id(), ok: true, changes: n, elapsed_s: t.elapsed().as_secs_f64() };
        cx.ui.emit(Event::PhaseFinished { phase: p.id(), ok: true, changes: n, elapsed_s: timing.elapsed_s });
        timings.push(timing);
    }
    let changes = timings.iter().map(|t| t.changes).sum();
    let elapsed_s = start.elapsed().as_secs_f64();
    if !cx.ui.is_json() {
        cx.ui.out(&render_plan(&planned));
    }
    cx.ui.emit(Event::RunFinished {
        ok: true,
        dry_run: true,
        changes,
        elapsed_s,
        phases: timings.clone(),
        error: None,
    });
    Ok(RunReport { ok: true, changes, phases: timings, planned, elapsed_s })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_time_is_the_union_of_its_active_intervals() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let mut c = Clock::default();
        // Two machines overlap in the phase, then its cluster-level step runs later.
        assert!(c.begin(PhaseId::Machines));
        assert!(!c.begin(PhaseId::Machines));
        c.end(PhaseId::Machines, at(0), at(1000));
        c.end(PhaseId::Machines, at(100), at(1500));
        c.begin(PhaseId::Machines);
        c.end(PhaseId::Machines, at(5000), at(5200));
        let s = c.active(PhaseId::Machines).unwrap_or_default();
        assert!((s - 1.7).abs() < 1e-9, "{s}");
        assert_eq!(c.active(PhaseId::Kafka), None);
    }
}
