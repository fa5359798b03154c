//! `upgrade`: climb from the versions that run to the versions the file declares, hop by hop,
//! without losing data. It observes what runs ([`observe`]), derives the ladder from the
//! catalog's compatibility data ([`ladder`], pure), prints it, and runs it: before every hop
//! the cluster is observed again, whatever an earlier hop left rolling is waited for, and the
//! hop's gates ([`gate`], pure) must pass; each hop ([`act`]) acts only where the cluster is
//! not there yet. Nothing is kept in a local file: a run stopped anywhere (kill -9, Ctrl-C)
//! is finished by the next `homelab upgrade`, which starts from what runs.

pub mod act;
pub mod gate;
pub mod ladder;
pub mod observe;
pub mod observed;

use crate::catalog::Catalog;
use crate::config::{Cluster, Kubernetes, validate_bytes};
use crate::engine::context::{Ctx, RunOptions, World};
use crate::foundation::error::Failure;
use crate::foundation::events::Event;
use crate::foundation::output::Ui;
use crate::foundation::time::fmt_secs;
use anyhow::{Result, anyhow, bail};
use ladder::{Hop, Versions};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct UpgradeRequest {
    /// Print the ladder and stop.
    pub plan_only: bool,
    /// Stop after this hop or stage.
    pub until: Option<String>,
    /// Run the hops (without it the ladder is printed and nothing changes).
    pub yes: bool,
    /// Go past the ZooKeeper → KRaft migration's point of no return.
    pub continue_kraft: bool,
    /// Take a migration stopped at its point of no return back to ZooKeeper.
    pub rollback_kraft: bool,
    /// Write the lines of the file that the ZooKeeper → KRaft migration changes.
    pub write: bool,
}

#[derive(Debug, Clone, Default)]
pub struct HopTiming {
    pub hop: String,
    pub words: String,
    pub budget_s: u64,
    pub elapsed_s: f64,
    pub changes: u32,
}

#[derive(Debug, Clone, Default)]
pub struct UpgradeReport {
    pub from: Option<Versions>,
    pub target: Option<Versions>,
    /// The whole ladder from where the cluster was.
    pub planned: Vec<Hop>,
    /// Hops run by this invocation.
    pub done: Vec<HopTiming>,
    pub elapsed_s: f64,
    /// The run stopped on purpose before this hop's point of no return.
    pub stopped_at: Option<String>,
}

/// The versions the file declares.
pub fn declared(cluster: &Cluster) -> Result<Versions> {
    let Kubernetes::Microk8s { minor, .. } = &cluster.kubernetes else {
        bail!(Failure::Usage(
            "homelab upgrade climbs MicroK8s, Rook and Ceph on MAAS machines; this cluster uses `distribution: existing` (upgrade it with its own tools)".into()
        ));
    };
    let r = cluster.rook.as_ref().ok_or_else(|| {
        Failure::Usage(
            "homelab upgrade needs the `rook:` section (the ladder interleaves MicroK8s with Rook and Ceph)".into(),
        )
    })?;
    let kafka = cluster.kafka.as_ref().map(|k| ladder::KafkaAt {
        strimzi: k.release.version.clone(),
        version: k.version.clone(),
        metadata: match k.mode {
            crate::config::model::MetadataMode::Kraft => ladder::Metadata::KRaft,
            crate::config::model::MetadataMode::Zookeeper => ladder::Metadata::ZooKeeper,
        },
        v1: k.release.v1_api(),
    });
    Ok(Versions {
        kubernetes: *minor,
        rook: r.release.version.clone(),
        ceph: r.ceph_image.clone(),
        kafka,
        cnpg: cluster.database.as_ref().map(|d| d.release.version.clone()),
    })
}

/// Prints the ladder: hop, what changes, the gate before, the wait after, the budget.
pub fn print_plan(ui: &Ui, from: &Versions, target: &Versions, hops: &[Hop], upto: usize, nodes: usize, osds: usize) {
    if hops.is_empty() {
        ui.out(&format!("{} runs what the file declares: nothing to upgrade", from.describe()));
        return;
    }
    let st = ladder::stages(hops);
    let mut t = format!("upgrade ladder: {} → {} ({} hops)\n", from.describe(), target.describe(), hops.len());
    let mut total = 0;
    for (i, h) in hops.iter().enumerate() {
        let b = h.budget(nodes, osds);
        if i < upto {
            total += b;
        }
        t.push_str(&format!(
            "  {:>2}. [{}] {:<15} {:>7}  {}\n        gate: {}\n        wait: {}\n",
            i + 1,
            st[i],
            h.name(),
            fmt_secs(b as f64),
            h.words(),
            h.gate_words(),
            h.wait_words()
        ));
        if i + 1 == upto && upto < hops.len() {
            t.push_str(&format!("  -- --until stops here; {} hops stay for a later run --\n", hops.len() - upto));
        }
    }
    t.push_str(&format!("  budget on real hardware: {}", fmt_secs(total as f64)));
    ui.out(&t);
}

/// Where `upgrade` keeps the component of the last MicroK8s, Rook or Ceph hop it made (a
/// ConfigMap in `kube-system`): it only breaks ties between equally short ladders, so that a
/// run resumed between two rounds of a MicroK8s stage carries that stage on. Versions are
/// always read from what runs.
pub const LAST_HOP: &str = "homelab-upgrade";

async fn last_component(cx: &Ctx) -> Option<String> {
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(cx.kube().await.ok()?, "kube-system");
    let cm = api.get_opt(LAST_HOP).await.ok()??;
    cm.data?.get("lastComponent").cloned()
}

async fn record_component(cx: &Ctx, component: &str) -> Result<()> {
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(cx.kube().await?, "kube-system");
    let cm = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": LAST_HOP, "namespace": "kube-system", "labels": {"app.kubernetes.io/managed-by": "homelab"}},
        "data": {"lastComponent": component}
    });
    api.patch(LAST_HOP, &kube::api::PatchParams::apply("homelab").force(), &kube::api::Patch::Apply(cm))
        .await
        .map(drop)
        .map_err(|e| anyhow!("recording the last upgrade hop in kube-system/{LAST_HOP}: {e}"))
}

/// Runs `upgrade` of the file at `path` with a world for the cluster (`make_env`).
pub async fn upgrade(
    path: &Path,
    req: &UpgradeRequest,
    catalog: &Catalog,
    ui: &Ui,
    opts: RunOptions,
    make_env: &dyn Fn(&Cluster) -> Result<World>,
) -> Result<UpgradeReport> {
    let file = path.display().to_string();
    let text =
        crate::foundation::limits::read_text(path, crate::config::MAX_FILE_BYTES as u64, &file).map_err(|e| {
            Failure::Usage(format!("{e}\n  hint: give the cluster's file (default ./cluster.yaml) with --file"))
        })?;
    let text = kraft_lines(path, &file, text, catalog, req, ui)?;
    let mut cluster =
        crate::config::accept::accept_validated(validate_bytes(text.as_bytes(), &file, catalog), &file, ui)?;
    cluster.anchor(path);
    let target = declared(&cluster)?;
    let env = make_env(&cluster)?;
    let mut opts = opts;
    opts.command = "upgrade".into();
    opts.dry_run = req.plan_only || !req.yes;
    let cx = Arc::new(Ctx::new(Arc::new(cluster), ui.clone(), opts, env));
    let _local = if cx.opts.dry_run {
        None
    } else {
        Some(crate::engine::lock::acquire_local(&cx.world.state_dir, "upgrade", cx.opts.lock_timeout, &cx.ui).await?)
    };
    crate::engine::up::look(&cx).await?;
    let r = crate::engine::up::until_stopped(
        &cx,
        run(&cx, catalog, req, &target),
        "a hop it had started (a snap refresh, an operator rollout, Ceph restarting its daemons) carries on on its own",
    )
    .await;
    if tokio::time::timeout(std::time::Duration::from_secs(5), cx.release_lease()).await.is_err() {
        tracing::warn!("could not give the homelab locks back within 5s; they expire on their own");
    }
    r
}

/// A file that declares a Strimzi release without ZooKeeper while its Kafka is still
/// described on ZooKeeper: the lines the migration changes are listed; `--write` writes
/// them (every other byte stays), a plan is made with them in memory, and a run without
/// either is refused before anything changes. Any other file is returned as it is.
fn kraft_lines(path: &Path, file: &str, text: String, cat: &Catalog, req: &UpgradeRequest, ui: &Ui) -> Result<String> {
    let declared = crate::config::tree::parse(&text)
        .ok()
        .and_then(|t| t.value.pointer("/kafka/strimziVersion").and_then(|v| v.as_str()).map(str::to_owned));
    let Some(release) = declared.as_deref().and_then(|v| cat.strimzi(v)) else { return Ok(text) };
    let edit = crate::config::kraft_edit::to_kraft(&text, release).map_err(|e| {
        Failure::Usage(format!(
            "{file} declares Strimzi {}, which runs only KRaft, and describes its Kafka on ZooKeeper: {e:#}\n  (nothing was changed)",
            release.version
        ))
    })?;
    let Some(edit) = edit else { return Ok(text) };
    let lines = format!(
        "{file} declares Strimzi {}, which runs only KRaft; after the migration its Kafka is described by these lines:\n{}",
        release.version,
        edit.describe().trim_end()
    );
    if req.write {
        crate::foundation::files::write_atomic(path, edit.text.as_bytes(), crate::foundation::files::Mode::Keep)
            .map_err(|e| anyhow!("writing {file}: {e}\n  hint: make the changes below yourself\n{lines}"))?;
        ui.err(&format!("{lines}\nwrote them into {file} (every other byte as it was)"));
    } else if req.yes {
        bail!(Failure::Usage(format!(
            "refusing to upgrade: {lines}\n  hint: `homelab upgrade --write` writes these lines into {file} (every other byte stays), or edit them yourself\n  (nothing was changed)"
        )));
    } else {
        ui.err(&format!("{lines}\n(the ladder is planned with these lines; `--write` writes them into {file})"));
    }
    Ok(edit.text)
}

async fn run(cx: &Arc<Ctx>, cat: &Catalog, req: &UpgradeRequest, target: &Versions) -> Result<UpgradeReport> {
    let started = Instant::now();
    if req.rollback_kraft {
        if !req.yes {
            bail!(Failure::Usage(
                "nothing was changed: `homelab upgrade --rollback-kraft --yes` takes a migration stopped at KRaftPostMigration back to ZooKeeper".into()
            ));
        }
        cx.ensure_lease().await?;
        Box::pin(act::strimzi::rollback_kraft(cx, cat)).await?;
        return Ok(UpgradeReport { elapsed_s: started.elapsed().as_secs_f64(), ..Default::default() });
    }
    let o = observe::observe(cx, cat).await?;
    let from = o.versions(cat).map_err(|e| anyhow!("cannot tell what runs: {e}\n  hint: `homelab up` of the file the cluster was built from brings it to a known state first"))?;
    let mut target = target.clone();
    if from.kafka.is_none() {
        // No Kafka runs yet: `up` installs the declared one; the ladder leaves it alone.
        target.kafka = None;
    }
    if from.cnpg.is_none() {
        // The same for the database's operator.
        target.cnpg = None;
    }
    let target = &target;
    if let (Some(k), Some(t)) = (&from.kafka, &target.kafka)
        && k.metadata != ladder::Metadata::KRaft
        && t.metadata == ladder::Metadata::KRaft
    {
        if let Some(note) = act::strimzi::cluster_note(&cx.cluster) {
            bail!(Failure::Usage(format!("refusing to upgrade: {note}\n  (nothing was changed)")));
        }
        if cx.cluster.kafka.as_ref().is_some_and(|k| k.controllers.is_none()) {
            bail!(Failure::Usage(
                "refusing to upgrade: the ZooKeeper → KRaft migration needs dedicated controllers, and the file declares none\n  hint: add `controllers: {replicas: 3, storage: {size: 20Gi, class: rook-ceph-block}}` and `brokerPool: kafka` under kafka.cluster\n  (nothing was changed)".into()
            ));
        }
    }
    let last = last_component(cx).await;
    let hops = ladder::plan_after(cat, &from, target, last.as_deref()).map_err(|u| {
        anyhow::Error::new(Failure::Usage(format!(
            "refusing to upgrade: {}\n  hint: {}\n  (nothing was changed)",
            u.reason, u.hint
        )))
    })?;
    let upto = ladder::cut(&hops, req.until.as_deref()).map_err(|e| anyhow!(Failure::Usage(e)))?;
    let nodes = o.nodes.len();
    let osds = o.osds as usize;
    print_plan(&cx.ui, &from, target, &hops, upto, nodes, osds);
    let mut report = UpgradeReport {
        from: Some(from.clone()),
        target: Some(target.clone()),
        planned: hops.clone(),
        ..Default::default()
    };
    if req.plan_only || (hops.is_empty() && !req.yes) {
        return Ok(report);
    }
    if !req.yes {
        bail!(Failure::Usage(format!(
            "nothing was changed: run `homelab upgrade --yes` to climb these {upto} hops (`--until HOP` stops earlier; a stopped run is resumed by running it again)"
        )));
    }
    cx.ensure_lease().await?;
    let hop_options = act::strimzi::HopOptions { continue_kraft: req.continue_kraft };
    let st = ladder::stages(&hops);
    let mut now = from;
    // A round a stopped run left with a node drained, whose refreshes are all done: finish
    // it (wait, uncordon) before the next hop.
    let left = o
        .nodes
        .iter()
        .filter_map(|n| n.drained_for)
        .find(|r| !matches!(hops.first(), Some(Hop::MicroK8s { to, .. }) if to == r));
    let mut first = Some(o);
    if let Some(r) = left {
        cx.ui.err(&format!("finishing the MicroK8s {}.{} round a stopped run left with a node drained", r.0, r.1));
        Box::pin(act::finish_round(cx, cat, r)).await?;
        first = None;
    }
    // What a hop does after its version change (the release's CephCluster, pools and
    // toolbox) is finished before the next hop (after its gates) or, with no hop left, here,
    // when a stopped run did not get to it.
    if hops.is_empty() {
        if let Some(o) = first.take()
            && o.rolling(cat, &now).is_some()
        {
            act::wait_settled(cx, cat, &now).await?;
        }
        Box::pin(act::finish_point(cx, cat, &now)).await?;
    }
    for (i, hop) in hops.iter().enumerate().take(upto) {
        let o = match first.take() {
            Some(o) => o,
            None => observe::observe(cx, cat).await?,
        };
        let seen = o.versions(cat).map_err(|e| {
            anyhow!("cannot tell what runs before hop {}: {e}\n  hint: `homelab status` shows each layer; once it answers again, `homelab upgrade` goes on from what runs", hop.name())
        })?;
        if seen != now {
            bail!(
                "the cluster changed under the upgrade: expected {}, found {}\n  hint: run `homelab upgrade` again; it plans from what runs",
                now.describe(),
                seen.describe()
            );
        }
        // A MicroK8s round that a stopped run left half done (a node cordoned, or nodes on
        // two minors) goes on where it stopped; its gates were checked when it began.
        let resuming = matches!(hop, Hop::MicroK8s { .. })
            && (o.nodes.iter().any(|n| n.drained_for.is_some())
                || o.nodes
                    .iter()
                    .filter_map(observed::NodeView::track_minor)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    > 1);
        let o = if resuming {
            cx.ui.err(&format!("{}: a round was stopped half way; going on from where it stopped", hop.name()));
            o
        } else {
            let o = if o.rolling(cat, &now).is_some() { act::wait_settled(cx, cat, &now).await? } else { o };
            Box::pin(act::check_gates(cx, cat, &now, hop, o)).await?
        };
        drop(o);
        // (A resumed round was begun by a run that had finished the point before it.)
        if i == 0 && !resuming {
            Box::pin(act::finish_point(cx, cat, &now)).await?;
        }
        let budget = hop.budget(nodes, osds);
        cx.ui.emit(Event::HopStarted {
            hop: hop.name(),
            index: i + 1,
            of: hops.len(),
            stage: st[i].clone(),
            action: hop.words(),
            budget_s: budget as f64,
        });
        let t = Instant::now();
        let changes_before = cx.total_changes();
        let r = Box::pin(act::run_hop(cx, cat, &now, hop, hop_options)).await;
        let timing = HopTiming {
            hop: hop.name(),
            words: hop.words(),
            budget_s: budget,
            elapsed_s: t.elapsed().as_secs_f64(),
            changes: cx.total_changes() - changes_before,
        };
        cx.ui.emit(Event::HopFinished {
            hop: timing.hop.clone(),
            ok: r.is_ok(),
            changes: timing.changes,
            elapsed_s: timing.elapsed_s,
            budget_s: budget as f64,
        });
        if let Err(e) = &r
            && let Some(p) = e.downcast_ref::<act::strimzi::PointOfNoReturn>()
        {
            cx.ui.out(&p.to_string());
            report.stopped_at = Some(hop.name());
            report.elapsed_s = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        r.map_err(|e| e.context(format!("hop {} ({})", hop.name(), hop.words())))?;
        if hop.component() != "strimzi" {
            record_component(cx, hop.component()).await?;
        }
        report.done.push(timing);
        now = hop.apply(&now);
    }
    if upto == hops.len() && !hops.is_empty() {
        Box::pin(act::strimzi::converge_declared(cx, &now)).await?;
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    if !cx.ui.is_json() {
        let mut t = String::from("time per hop (budget on real hardware):\n");
        for h in &report.done {
            t.push_str(&format!(
                "  {:>8}  (budget {:>7})  {:<15} {} change{}\n",
                fmt_secs(h.elapsed_s),
                fmt_secs(h.budget_s as f64),
                h.hop,
                h.changes,
                if h.changes == 1 { "" } else { "s" }
            ));
        }
        t.push_str(&format!("  {:>8}  total", fmt_secs(report.elapsed_s)));
        cx.ui.out(&t);
        if upto < hops.len() {
            cx.ui.out(&format!(
                "stopped after {} as asked; {} hops stay: run `homelab upgrade --yes` to go on",
                hops[upto - 1].name(),
                hops.len() - upto
            ));
        } else {
            cx.ui.out(&format!("upgraded: {} runs what the file declares", now.describe()));
        }
    }
    Ok(report)
}
