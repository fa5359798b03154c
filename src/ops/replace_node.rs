//! `replace-node OLD NEW_MAC` (or `--address ADDR --hostname NEW` for a PC that runs Ubuntu
//! already; either may replace a pre-installed OLD): swap a PC for a new one with capacity
//! first. The new PC joins
//! as `add-node` would (same role as OLD; a fourth control plane joins dqlite as a standby),
//! its OSD runs, and only then is OLD removed as `remove-node` does — so Ceph copies OLD's
//! data once, onto a cluster that already has the new disk, and the datastore keeps three
//! voters (the standby is promoted when OLD leaves). The file gets one line changed: OLD's
//! entry rewritten to NEW. A dead OLD cannot give its data: it is removed first (`--dead`),
//! then NEW is added. Interrupted anywhere, running it again finishes the job.

use crate::catalog::Catalog;
use crate::config::edit::{NewMachine, NewStorage};
use crate::config::{Cluster, Machine};
use crate::engine::context::{Ctx, RunOptions, World};
use crate::engine::phase::{PhaseId, Selection};
use crate::foundation::error::Failure;
use crate::foundation::output::Ui;
use crate::foundation::time::fmt_secs;
use crate::ops::remove_node::{self, RemoveReport, RemoveRequest};
use anyhow::{Result, anyhow, bail};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct ReplaceRequest {
    pub old: String,
    /// The new PC MAAS deploys (empty when `address` is given).
    pub mac: String,
    /// A new PC that runs Ubuntu already (needs `hostname`), and its Ceph volume.
    pub address: Option<String>,
    pub storage: Option<NewStorage>,
    pub hostname: Option<String>,
    pub dead: bool,
    pub release: bool,
    pub erase: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReplaceReport {
    pub new_hostname: String,
    pub add_s: f64,
    pub remove: RemoveReport,
}

/// The cluster while both PCs are in it: OLD's entry and NEW's, as the edited file has it.
fn during(before: &Cluster, new: &Machine) -> Cluster {
    let mut c = before.clone();
    c.machines.push(new.clone());
    c
}

/// Whether machine `m` is the new PC the request names (by MAC or by address).
fn is_new(m: &Machine, req: &ReplaceRequest, mac: &str) -> bool {
    match &req.address {
        Some(a) => m.address.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(a)),
        None => m.mac.as_deref() == Some(mac),
    }
}

pub async fn replace_node(
    path: &Path,
    req: &ReplaceRequest,
    catalog: &Catalog,
    ui: &Ui,
    opts: RunOptions,
    make_env: &dyn Fn(&Cluster) -> Result<World>,
) -> Result<ReplaceReport> {
    let mac = match &req.address {
        Some(_) => String::new(),
        None => crate::ops::add_node::normal_mac(&req.mac)?,
    };
    let file = path.display().to_string();
    let text = crate::foundation::limits::read_text(path, crate::config::MAX_FILE_BYTES as u64, &file)
        .map_err(|e| Failure::Usage(format!("{e}\n  hint: give the cluster's file with --file")))?;
    let mut before = crate::ops::add_node::validate(&text, &file, catalog, ui, &[])?;
    before.anchor(path);
    // The file already has NEW in OLD's place (a run got that far): make sure NEW is in.
    if let Some(m) = before.machines.iter().find(|m| is_new(m, req, &mac)).cloned()
        && before.machine(&req.old).is_none()
    {
        ui.err(&format!("{file} already has {} in place of {}; finishing its setup", m.hostname, req.old));
        let t = std::time::Instant::now();
        add_machine(before, &m.hostname, ui, opts, make_env).await?;
        return Ok(ReplaceReport {
            new_hostname: m.hostname,
            add_s: t.elapsed().as_secs_f64(),
            remove: RemoveReport::default(),
        });
    }
    let old = before
        .machine(&req.old)
        .cloned()
        .ok_or_else(|| Failure::Usage(format!("{file} has no machine named {}", req.old)))?;
    if before.machines.iter().any(|m| is_new(m, req, &mac)) {
        bail!(Failure::Usage(format!(
            "{} is already a machine of {file}; replace-node takes a new PC",
            req.address.as_deref().unwrap_or(&mac)
        )));
    }
    let role = old.role.name();
    let new = match &req.address {
        Some(address) => {
            let hostname = crate::ops::add_node::preinstalled_name(req.hostname.as_deref(), address, &before, &file)?;
            NewMachine {
                hostname,
                address: Some(address.clone()),
                role,
                storage: req.storage.clone(),
                ..Default::default()
            }
        }
        None => {
            let env = make_env(&before)?;
            let maas = env.maas.as_ref().ok_or_else(|| anyhow!("this cluster has no MAAS"))?;
            let hostname =
                crate::ops::add_node::new_machine_name(maas, &mac, req.hostname.as_deref(), &before, &file).await?;
            NewMachine { hostname, mac: mac.clone(), role, ..Default::default() }
        }
    };
    let hostname = new.hostname.clone();
    let new_text = crate::config::edit::replace_machine(&text, &req.old, &new)?;
    // Shown once: the warnings the file had before are not repeated for the edited one.
    let seen = crate::ops::add_node::warnings_of(&text, &file, catalog);
    let mut after = crate::ops::add_node::validate(&new_text, &file, catalog, ui, &seen)?;
    after.anchor(path);
    let new_machine = after.machine(&hostname).cloned().ok_or_else(|| anyhow!("the edited file lacks {hostname}"))?;
    let both = during(&before, &new_machine);
    let remove_req = RemoveRequest {
        host: req.old.clone(),
        dead: req.dead,
        release: req.release,
        erase: req.erase.clone(),
        // NEW restores the third control plane.
        yes: true,
        replace_with: Some(new.clone()),
    };
    let remove_cx = |cluster: Cluster, after: Cluster| -> Result<(Arc<Ctx>, remove_node::Files)> {
        let files = remove_node::Files { path: path.to_path_buf(), before: cluster, after };
        let env = make_env(&files.before)?;
        let mut o = opts.clone();
        o.command = "replace-node".into();
        Ok((Arc::new(Ctx::new(Arc::new(files.before.clone()), ui.clone(), o, env)), files))
    };
    let (add_s, removed) = if req.dead {
        // Nothing to copy from a dead PC: take it out first (its entry becomes NEW's), then
        // add the new one.
        ui.err(&format!("{} is dead: removing it first, then adding {hostname}", req.old));
        let mut without = before.clone();
        without.machines.retain(|m| m.hostname != req.old);
        let (cx, files) = remove_cx(before.clone(), without)?;
        let r = remove_node::run(&cx, &files, &remove_req).await?;
        let t = std::time::Instant::now();
        add_machine(after.clone(), &hostname, ui, opts.clone(), make_env).await?;
        (t.elapsed().as_secs_f64(), r)
    } else {
        // A run stopped after the removal began must not add again: its apply of the
        // CephCluster with OLD would undo the removal (and wait for an OSD that is gone).
        let (cx, files) = remove_cx(both.clone(), after.clone())?;
        let t = std::time::Instant::now();
        if remove_node::begun(&cx, &req.old).await? {
            ui.err(&format!("{hostname} is in and the removal of {} has begun; finishing it", req.old));
        } else {
            ui.err(&format!(
                "replacing {} by {hostname}: {hostname} joins first, then {} is removed",
                req.old, req.old
            ));
            add_machine(both.clone(), &hostname, ui, opts.clone(), make_env).await?;
        }
        let add_s = t.elapsed().as_secs_f64();
        // The same context: its API connection and kubeconfig serve the removal too (the
        // removal gathers the machines' facts again, NEW's among them).
        (add_s, remove_node::run(&cx, &files, &remove_req).await?)
    };
    if !ui.is_json() {
        ui.out(&format!(
            "replace-node: {hostname} added in {}, {} removed in {}",
            fmt_secs(add_s),
            req.old,
            fmt_secs(removed.elapsed_s)
        ));
    }
    Ok(ReplaceReport { new_hostname: new.hostname, add_s, remove: removed })
}

/// Runs the add-node phases for one machine of `cluster` (idempotent: a machine already in
/// reports no change).
async fn add_machine(
    cluster: Cluster,
    hostname: &str,
    ui: &Ui,
    opts: RunOptions,
    make_env: &dyn Fn(&Cluster) -> Result<World>,
) -> Result<()> {
    let mut o = opts;
    o.command = "replace-node".into();
    o.only_machines = Some(vec![hostname.to_owned()]);
    let mut steps = vec![PhaseId::Machines, PhaseId::Hosts, PhaseId::Kubernetes];
    if cluster.rook.is_some() {
        steps.push(PhaseId::Storage);
    }
    crate::ops::add_node::print_budget(ui, &steps);
    o.selection = Selection { only: steps, ..Default::default() };
    let env = make_env(&cluster)?;
    let cx = Arc::new(Ctx::new(Arc::new(cluster), ui.clone(), o, env));
    for _ in 0..4 {
        match crate::engine::up(cx.clone()).await {
            Err(e) if crate::engine::lock::is_start_over(&e) => continue,
            r => return r.map(drop),
        }
    }
    bail!("another run kept changing the cluster; run `homelab replace-node` again")
}
