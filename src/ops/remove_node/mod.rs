//! `remove-node`: take one PC out of the cluster, retiring (alive) or dead, without losing
//! data or the datastore's quorum. It observes every layer (MAAS, SSH, the Nodes, dqlite,
//! Ceph through the Rook toolbox, Kafka), refuses before touching anything when the removal
//! could lose data or quorum ([`decide::refusal`]), then runs the steps that are still to
//! do ([`decide::steps`]), each with a budget printed before and the time measured after.
//! Every run derives its steps from the systems, so a run that was interrupted anywhere is
//! finished by the same command, and a destructive step is never repeated. A dry run prints
//! the same steps in the same words. Facts: docs/day2.md.

pub(crate) mod act;
pub mod decide;
mod observe;

pub use observe::Files;

use crate::catalog::Catalog;
use crate::config::{Cluster, validate_bytes};
use crate::engine::context::{Ctx, RunOptions, World};
use crate::foundation::error::Failure;
use crate::foundation::output::Ui;
use crate::foundation::time::fmt_secs;
use anyhow::{Context as _, Result, bail};
use decide::Step;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct RemoveRequest {
    pub host: String,
    /// The PC is dead (also assumed when it does not answer and its node is NotReady).
    pub dead: bool,
    /// Release the machine in MAAS afterwards.
    pub release: bool,
    /// `quick`, `secure` or `full` (only with `release`, never for a dead PC).
    pub erase: Option<String>,
    /// Accept going below three control planes.
    pub yes: bool,
    /// `replace-node`: the file's entry is rewritten to this machine instead of deleted.
    pub replace_with: Option<crate::config::edit::NewMachine>,
}

#[derive(Debug, Clone, Default)]
pub struct RemoveReport {
    pub host: String,
    pub dead: bool,
    /// (words, budget s, measured s) per step run.
    pub steps: Vec<(String, u64, f64)>,
    pub elapsed_s: f64,
    pub file: PathBuf,
}

/// A refusal: nothing was changed. Its text names the reason and what is safe instead.
#[derive(Debug, thiserror::Error)]
#[error("refusing to remove {host}: {reason}\n  hint: {safe}\n  (nothing was changed)")]
pub struct Refused {
    pub host: String,
    pub reason: String,
    pub safe: String,
}

/// The file names the machine (its removal is to do or to finish), or it does not.
pub(crate) enum Read {
    Files(Box<Files>),
    NotInFile(Box<Cluster>),
}

pub(crate) fn read_files(path: &Path, host: &str, catalog: &Catalog, ui: &Ui) -> Result<Read> {
    let file = path.display().to_string();
    let text =
        crate::foundation::limits::read_text(path, crate::config::MAX_FILE_BYTES as u64, &file).map_err(|e| {
            Failure::Usage(format!("{e}\n  hint: give the cluster's file (default ./cluster.yaml) with --file"))
        })?;
    let mut before =
        crate::config::accept::accept_validated(validate_bytes(text.as_bytes(), &file, catalog), &file, ui)?;
    before.anchor(path);
    if !before.kubernetes.is_microk8s() {
        bail!(Failure::Usage(
            "remove-node works on a MicroK8s cluster on MAAS machines; this cluster uses `distribution: existing`"
                .into()
        ));
    }
    // The file is edited last: without the entry, the removal is done (a rerun of a run that
    // finished, or was killed after its last step) — or the name is a typo (`not_in_file`).
    if before.machine(host).is_none() {
        return Ok(Read::NotInFile(Box::new(before)));
    }
    let after_text = crate::config::edit::remove_machine(&text, host)?;
    let mut v = validate_bytes(after_text.as_bytes(), &file, catalog);
    // Warnings of the smaller cluster (two control planes) are the refusal's business.
    v.report.diagnostics.retain(|d| d.severity != crate::config::diag::Severity::Warning);
    let mut after = crate::config::accept::accept_validated(v, &file, ui).map_err(|e| {
        anyhow::Error::new(Refused {
            host: host.to_owned(),
            reason: format!("{file} without it would not be valid ({})", e.root_cause().to_string().lines().next().unwrap_or_default()),
            safe: format!("`homelab replace-node {host} NEW_MAC` adds a PC first; or change the file so that it stays valid without {host} (the diagnostics above say what)"),
        })
    })?;
    after.anchor(path);
    Ok(Read::Files(Box::new(Files { path: path.to_path_buf(), before, after })))
}

/// A name the file does not have: done already when the systems still know it (MAAS has a
/// machine by that name, or the cluster a node), else a mistake — exit 2 with the nearest
/// name of the file, so a script never takes a typo for a removed PC.
async fn not_in_file(path: &Path, host: &str, cluster: &Cluster, world: &World, ui: &Ui) -> Result<()> {
    let file = path.display();
    // Each system answers yes, no, or could not be asked; "no machine" is said only on two noes.
    let in_maas = match &world.maas {
        Some(maas) => match maas.machines_by_hostname(&[host.to_owned()]).await {
            Ok(ms) => !ms.is_empty(),
            Err(e) => bail!(
                "{file} has no machine named {host}, and MAAS could not say whether it had one ({e})\n  hint: run this again when MAAS answers; `homelab status` lists the file's machines"
            ),
        },
        None => false,
    };
    let in_cluster = !in_maas
        && {
            let node = async {
                let client = crate::engine::cluster_api::client(cluster, &world.state_dir, None).await?;
                let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
                Ok::<_, anyhow::Error>(nodes.get_opt(host).await?.is_some())
            };
            match tokio::time::timeout(std::time::Duration::from_secs(10), node).await {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => bail!(
                    "{file} has no machine named {host}, and the cluster's API could not say whether it has such a node ({})\n  hint: run this again when the API server answers (`homelab status`); `kubectl get nodes` lists them",
                    e.root_cause()
                ),
                Err(_) => bail!(
                    "{file} has no machine named {host}, and the cluster's API did not answer within 10 s whether it has such a node\n  hint: run this again when the API server answers (`homelab status`)"
                ),
            }
        };
    if in_maas || in_cluster {
        ui.err(&format!(
            "{file} has no machine named {host}: nothing to do ({} still knows {host}: an earlier remove-node took it out of the cluster and the file)",
            if in_maas { "MAAS" } else { "the cluster" }
        ));
        return Ok(());
    }
    let names: Vec<&str> = cluster.machines.iter().map(|m| m.hostname.as_str()).collect();
    let hint = match crate::config::validate::did_you_mean(host, names.iter().copied()) {
        Some(near) => format!("did you mean {near}? The file's machines: {}", names.join(", ")),
        None => format!("the file's machines: {}", names.join(", ")),
    };
    bail!(Failure::Usage(format!(
        "no machine named {host}: not in {file}, not known to MAAS, not a node of the cluster\n  hint: {hint}"
    )))
}

pub fn print_plan(ui: &Ui, host: &str, steps: &[Step], dry: bool) {
    let mut t = format!(
        "{} {host} ({} steps, budget on real hardware):\n",
        if dry { "would remove" } else { "removing" },
        steps.len()
    );
    let mut total = 0;
    for s in steps {
        t.push_str(&format!(
            "  {:>7}  {}{}\n",
            fmt_secs(s.budget() as f64),
            s.words(host),
            if s.destructive() { "  [cannot be undone]" } else { "" }
        ));
        total += s.budget();
    }
    t.push_str(&format!("  {:>7}  total", fmt_secs(total as f64)));
    ui.err(&t);
}

/// Runs `remove-node` with a world for the cluster (`make_env`).
pub async fn remove_node(
    path: &Path,
    req: &RemoveRequest,
    catalog: &Catalog,
    ui: &Ui,
    opts: RunOptions,
    make_env: &dyn Fn(&Cluster) -> Result<World>,
) -> Result<RemoveReport> {
    let files = match read_files(path, &req.host, catalog, ui)? {
        Read::Files(f) => *f,
        Read::NotInFile(cluster) => {
            not_in_file(path, &req.host, &cluster, &make_env(&cluster)?, ui).await?;
            return Ok(RemoveReport { host: req.host.clone(), file: path.to_path_buf(), ..Default::default() });
        }
    };
    if req.erase.is_some() && !req.release {
        bail!(Failure::Usage("--erase needs --release (MAAS erases a machine as it releases it)".into()));
    }
    let env = make_env(&files.before)?;
    let mut opts = opts;
    opts.command = "remove-node".into();
    let cx = Arc::new(Ctx::new(Arc::new(files.before.clone()), ui.clone(), opts, env));
    run(&cx, &files, req).await
}

/// Observe, refuse or plan, then act: shared by `remove-node` and `replace-node`.
pub(crate) async fn run(cx: &Arc<Ctx>, files: &Files, req: &RemoveRequest) -> Result<RemoveReport> {
    // A machine MAAS did not deploy is never released through it (the MAAS host least of all).
    if req.release && files.before.machines.iter().any(|m| m.hostname == req.host && m.is_preinstalled()) {
        bail!(Failure::Usage(format!(
            "{} is pre-installed (not managed by MAAS): homelab never releases, erases or powers it through MAAS\n  hint: run it without --release; the PC keeps its disks and its Ubuntu, and you may reuse or wipe it yourself",
            req.host
        )));
    }
    let _local = cx.local_lock().await?;
    // Another workstation's run may have changed the machines while this one waited for it.
    if crate::engine::up::look(cx).await? {
        cx.ui.err("another run changed the cluster while this one waited; looking again");
        crate::engine::phases::machines::gather_facts(cx).await?;
    }
    // Every step is observed again by the next run, so stopping anywhere loses nothing.
    let r = crate::engine::up::until_stopped(
        cx,
        run_locked(cx, files, req),
        "a step it had started (a recovery, a purge Job, a MAAS release) carries on on its own",
    )
    .await;
    if tokio::time::timeout(std::time::Duration::from_secs(5), cx.release_lease()).await.is_err() {
        tracing::warn!("could not give the homelab locks back within 5s; they expire on their own");
    }
    r
}

/// Reads only: whether the removal of `host` has begun (see [`decide::removal_begun`]).
/// Two API reads, and `ceph osd tree` only when they show nothing.
pub(crate) async fn begun(cx: &Arc<Ctx>, host: &str) -> Result<bool> {
    if cx.cluster.rook.is_none() {
        return Ok(false);
    }
    crate::engine::up::look(cx).await?;
    let marks = observe::rook_marks(cx, host).await?;
    let declares_osd = cx.cluster.ceph_machines().any(|m| m.hostname == host);
    let mut o = decide::Observed {
        host: host.to_owned(),
        operator_replicas: marks.operator_replicas,
        in_ceph_spec: marks.in_ceph_spec,
        ceph: Some(Default::default()),
        ..Default::default()
    };
    // Every removal reads Ceph through the toolbox first; without it none has begun (a
    // cluster set up before homelab deployed it gets it from the add's storage phase).
    if decide::removal_begun(&o, declares_osd) || !marks.toolbox {
        return Ok(marks.toolbox);
    }
    let (survivor, _) = observe::survivor(cx, host).await?;
    o.ceph = Some(decide::CephView { osds: observe::osd_tree(cx, &survivor).await?, ..Default::default() });
    Ok(decide::removal_begun(&o, declares_osd))
}

async fn run_locked(cx: &Arc<Ctx>, files: &Files, req: &RemoveRequest) -> Result<RemoveReport> {
    let started = Instant::now();
    let host = req.host.as_str();
    let (survivor, datastore) = observe::survivor(cx, host).await?;
    let mut o = observe::observe(cx, files, host, &survivor, datastore).await?;
    let mut dead = decide::treat_as_dead(&o, req.dead);
    // The PC that replaces this one, when it is in the cluster already with a Ceph volume:
    // its new OSD boots, peers and is recovered onto before anything is judged.
    let joining = req
        .replace_with
        .as_ref()
        .map(|n| n.hostname.as_str())
        .filter(|n| files.before.ceph_machines().any(|m| m.hostname == *n));
    // Churn is waited out, with a deadline; what remains after it is judged. (A few looks:
    // an OSD that rejoins after the wait peers once more.)
    for _ in 0..3 {
        let Some(why) = o.ceph.as_ref().and_then(|c| decide::settling(c, joining, dead)) else { break };
        cx.ui.err(&format!(
            "Ceph is still taking in a change ({why}): waiting for it to settle before judging the removal of {host}"
        ));
        crate::engine::phases::storage::settle(cx, &survivor, host, joining.as_slice(), dead).await?;
        let (_, datastore) = observe::survivor(cx, host).await?;
        o = observe::observe(cx, files, host, &survivor, datastore).await?;
        dead = decide::treat_as_dead(&o, req.dead);
    }
    if dead && !req.dead {
        cx.ui.err(&format!("{host} does not answer SSH and its node is NotReady: removing it as a dead PC"));
    }
    if let Some(r) = decide::refusal(&o, dead, req.yes) {
        return Err(anyhow::Error::new(Refused { host: host.to_owned(), reason: r.reason, safe: r.safe }));
    }
    let steps = decide::steps(&o, dead, &survivor, req.release, req.erase.clone());
    print_plan(&cx.ui, host, &steps, cx.dry_run());
    let mut report = RemoveReport { host: host.to_owned(), dead, file: files.path.clone(), ..Default::default() };
    let job = act::Job {
        files,
        host,
        survivor: &survivor,
        observed: &o,
        dead,
        replace_with: req.replace_with.as_ref(),
        rook_files: Default::default(),
    };
    if cx.dry_run() {
        // The same words as the run: a step that reports itself computes its changes the
        // way it makes them (a `dryRun=All` apply, a compare of `/etc/hosts`).
        for s in &steps {
            if s.reports_itself() {
                act::run_step(cx, &job, s).await.with_context(|| format!("{host}: {}", s.words(host)))?;
            } else {
                cx.step(act::phase_of(s), host, s.words(host));
            }
        }
        report.elapsed_s = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    // The cluster is changed from here on: hold the MAAS claim and the cluster Lease.
    if !steps.is_empty() {
        cx.ensure_lease().await?;
    }
    let mut force_purge = false;
    for s in &steps {
        let s = match s {
            Step::Purge { id, .. } if force_purge => Step::Purge { id: *id, force: true },
            s => s.clone(),
        };
        if !s.reports_itself() {
            cx.act(act::phase_of(&s), host, s.words(host)).await?;
        }
        let t = Instant::now();
        let outcome = act::run_step(cx, &job, &s).await.with_context(|| format!("{host}: {}", s.words(host)))?;
        if outcome == act::Outcome::NeverSafe {
            force_purge = true;
        }
        let secs = t.elapsed().as_secs_f64();
        report.steps.push((s.words(host), s.budget(), secs));
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    let mut t = String::from("time per step (budget on real hardware):\n");
    for (w, b, secs) in &report.steps {
        t.push_str(&format!("  {:>8}  (budget {:>7})  {w}\n", fmt_secs(*secs), fmt_secs(*b as f64)));
    }
    t.push_str(&format!("  {:>8}  total", fmt_secs(report.elapsed_s)));
    if !cx.ui.is_json() {
        cx.ui.out(&t);
    }
    if steps.is_empty() {
        cx.ui.err(&format!("{host} is already out of the cluster; nothing to do"));
    }
    Ok(report)
}
