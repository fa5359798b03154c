//! `add-node`: grow the cluster by one PC. Find it in MAAS by MAC (or reach a pre-installed
//! PC by SSH at its `--address`, with no MAAS step), run the phases for that machine only (deploy with the cluster's layout, SSH preflight, MicroK8s on the cluster's
//! channel, one join through the first control plane, its Ceph volume added to the
//! CephCluster and its OSD running), then insert its entry into `cluster.yaml` — only that
//! entry; every other byte stays — so the next `homelab up` reports zero changes. Touches no
//! other machine. Interrupted anywhere, running it again finishes the job.

use crate::catalog::Catalog;
use crate::config::edit::{NewMachine, NewStorage, insert_machine};
use crate::config::model::Role;
use crate::config::{Cluster, validate_bytes};
use crate::engine::context::{RunOptions, World};
use crate::engine::phase::{PhaseId, Selection};
use crate::foundation::error::Failure;
use crate::foundation::output::Ui;
use crate::foundation::time::fmt_secs;
use anyhow::{Context as _, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct AddNodeRequest {
    /// The PC MAAS deploys (empty when `address` is given).
    pub mac: String,
    /// A pre-installed PC: its IP address or DNS name (needs `hostname`).
    pub address: Option<String>,
    pub hostname: Option<String>,
    pub role: Role,
    /// A pre-installed PC's Ceph volume: a blank device, or a volume group to carve from.
    pub storage: Option<NewStorage>,
}

/// Time budget per step on real hardware: the whole must fit in 15 minutes.
pub const BUDGET: [(PhaseId, &str, u64); 4] = [
    (PhaseId::Machines, "MAAS: commission (if New), lay out disks, deploy Ubuntu", 11 * 60),
    (PhaseId::Hosts, "SSH up, cloud-init done, preflight", 60),
    (PhaseId::Kubernetes, "MicroK8s install and join", 2 * 60),
    (PhaseId::Storage, "Ceph volume added, OSD running, Ceph healthy", 60),
];

#[derive(Debug, Clone)]
pub struct AddNodeReport {
    pub hostname: String,
    /// Whether the file was changed (false when the machine was already in it).
    pub inserted: bool,
    pub steps: Vec<(PhaseId, f64)>,
    pub changes: u32,
    pub elapsed_s: f64,
    pub file: PathBuf,
}

/// Validates `text`; the findings are shown, except warnings already shown for `seen` (the
/// file before the edit), so a warning is printed once.
pub(crate) fn validate(
    text: &str,
    file: &str,
    catalog: &Catalog,
    ui: &Ui,
    seen: &[(String, String)],
) -> Result<Cluster> {
    let mut v = validate_bytes(text.as_bytes(), file, catalog);
    v.report.diagnostics.retain(|d| {
        d.severity != crate::config::diag::Severity::Warning || !seen.contains(&(d.path.clone(), d.message.clone()))
    });
    crate::config::accept::accept_validated(v, file, ui)
}

/// The warnings of `text` as (path, message), to show each once across two validations.
pub(crate) fn warnings_of(text: &str, file: &str, catalog: &Catalog) -> Vec<(String, String)> {
    validate_bytes(text.as_bytes(), file, catalog)
        .report
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == crate::config::diag::Severity::Warning)
        .map(|d| (d.path, d.message))
        .collect()
}

/// Whether the `machines:` of `text` already list the new machine (by MAC or address).
fn has_entry(text: &str, entry: &NewMachine) -> bool {
    let (key, want) = match &entry.address {
        Some(a) => ("address", a.as_str()),
        None => ("mac", entry.mac.as_str()),
    };
    crate::config::tree::parse(text).is_ok_and(|t| {
        t.value.get("machines").and_then(|v| v.as_array()).is_some_and(|ms| {
            ms.iter().any(|m| m.get(key).and_then(|v| v.as_str()).is_some_and(|v| v.eq_ignore_ascii_case(want)))
        })
    })
}

/// `mac` lower-case and colon separated, or a usage error.
pub fn normal_mac(mac: &str) -> Result<String> {
    let m = mac.trim().to_ascii_lowercase().replace('-', ":");
    if m.split(':').count() != 6 || !m.split(':').all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())) {
        bail!(Failure::Usage(format!("`{mac}` is not a MAC address (six hex pairs, e.g. 52:54:00:12:34:56)")));
    }
    Ok(m)
}

/// The node name of the new PC with MAC `mac`: `hostname` if given, else the one MAAS gave
/// it (which must pass the rule a name the user writes passes); not one `before` has.
pub async fn new_machine_name(
    maas: &crate::maas::MaasClient,
    mac: &str,
    hostname: Option<&str>,
    before: &Cluster,
    file: &str,
) -> Result<String> {
    maas.whoami().await.context("checking the MAAS API key (GET users/?op=whoami)")?;
    let found = maas.machines_by_mac(&[mac.to_owned()]).await?;
    let mm = found.first().ok_or_else(|| {
        anyhow!("MAAS does not know a machine with MAC {mac}\n  hint: enlist it: boot the PC from the network (PXE) on MAAS's network so it appears as New, or add it in the MAAS UI (Machines → Add hardware)")
    })?;
    let hostname = match hostname {
        Some(h) => h.to_lowercase(),
        None => {
            // MAAS's name becomes the node name and a line of cluster.yaml.
            let h = mm.hostname.to_lowercase();
            if !crate::config::draft::is_label(&h) {
                bail!(Failure::Usage(format!(
                    "MAAS calls the machine with MAC {mac} {:?}, which is not a valid node name (a lowercase RFC 1123 label: letters, digits and `-`, at most 63)\n  hint: pass `--hostname NAME`, or rename it in MAAS",
                    mm.hostname
                )));
            }
            h
        }
    };
    if before.machine(&hostname).is_some() {
        bail!(Failure::Usage(format!(
            "{file} already has a machine named {hostname}; pass `--hostname` with a new name"
        )));
    }
    Ok(hostname)
}

/// The node name of a new pre-installed PC at `address`: `hostname` (required: no MAAS
/// names it), lowercased, and not one `before` has.
pub fn preinstalled_name(hostname: Option<&str>, address: &str, before: &Cluster, file: &str) -> Result<String> {
    let Some(hostname) = hostname.map(str::to_lowercase) else {
        bail!(Failure::Usage(format!(
            "a pre-installed PC needs its name: pass `--hostname NAME` (the name it has: `hostname` on {address})"
        )));
    };
    if before.machine(&hostname).is_some() {
        bail!(Failure::Usage(format!(
            "{file} already has a machine named {hostname}; pass `--hostname` with a new name"
        )));
    }
    Ok(hostname)
}

pub fn print_budget(ui: &Ui, steps: &[PhaseId]) {
    let mut t = String::from("time budget (real hardware):\n");
    let mut total = 0;
    for (p, what, secs) in BUDGET.iter().filter(|(p, _, _)| steps.contains(p)) {
        t.push_str(&format!("  {:<11} {:>6}  {what}\n", p.name(), fmt_secs(*secs as f64)));
        total += secs;
    }
    t.push_str(&format!("  {:<11} {:>6}", "total", fmt_secs(total as f64)));
    ui.err(&t);
}

/// Runs `add-node`. `make_env` builds the outside world for a (validated) cluster. When it
/// had to wait for another workstation's run (`--lock-timeout`), it starts over from the
/// file, which that run may have changed (another add-node inserts its own entry).
pub async fn add_node(
    path: &Path,
    req: &AddNodeRequest,
    catalog: &Catalog,
    ui: &Ui,
    opts: RunOptions,
    make_env: &dyn Fn(&Cluster) -> Result<World>,
) -> Result<AddNodeReport> {
    for _ in 0..4 {
        match add_node_once(path, req, catalog, ui, opts.clone(), make_env).await {
            Err(e) if crate::engine::lock::is_start_over(&e) => continue,
            r => return r,
        }
    }
    add_node_once(path, req, catalog, ui, opts, make_env).await
}

async fn add_node_once(
    path: &Path,
    req: &AddNodeRequest,
    catalog: &Catalog,
    ui: &Ui,
    opts: RunOptions,
    make_env: &dyn Fn(&Cluster) -> Result<World>,
) -> Result<AddNodeReport> {
    let file = path.display().to_string();
    let text =
        crate::foundation::limits::read_text(path, crate::config::MAX_FILE_BYTES as u64, &file).map_err(|e| {
            Failure::Usage(format!(
                "{e}\n  hint: give the cluster's file (default ./cluster.yaml) as the last argument"
            ))
        })?;
    let mut before = validate(&text, &file, catalog, ui, &[])?;
    before.anchor(path);
    if !before.kubernetes.is_microk8s() {
        bail!(Failure::Usage(
            "add-node grows a MicroK8s cluster on MAAS machines; this cluster uses `distribution: existing`".into()
        ));
    }
    // The new PC's entry (None: the file has it already, its setup is finished) and the
    // phases it goes through: MAAS deploys a PC found by MAC; a pre-installed one has no
    // MAAS step.
    let (hostname, entry, steps) = match &req.address {
        Some(address) => {
            let known =
                before.machines.iter().find(|m| m.address.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(address)));
            let entry = match known {
                Some(m) => {
                    ui.err(&format!("{address} is already in {file} as {}; finishing its setup", m.hostname));
                    (m.hostname.clone(), None)
                }
                None => {
                    let hostname = preinstalled_name(req.hostname.as_deref(), address, &before, &file)?;
                    let entry = NewMachine {
                        hostname: hostname.clone(),
                        address: Some(address.to_owned()),
                        role: req.role.name(),
                        storage: req.storage.clone(),
                        ..Default::default()
                    };
                    (hostname, Some(entry))
                }
            };
            (entry.0, entry.1, vec![PhaseId::Hosts, PhaseId::Kubernetes])
        }
        None => {
            let mac = normal_mac(&req.mac)?;
            let entry = match before.machines.iter().find(|m| m.mac.as_deref() == Some(mac.as_str())) {
                Some(m) => {
                    ui.err(&format!("{mac} is already in {file} as {}; finishing its setup", m.hostname));
                    (m.hostname.clone(), None)
                }
                None => {
                    let env = make_env(&before)?;
                    let maas = env.maas.as_ref().ok_or_else(|| anyhow!("this cluster has no MAAS"))?;
                    let hostname = new_machine_name(maas, &mac, req.hostname.as_deref(), &before, &file).await?;
                    let entry =
                        NewMachine { hostname: hostname.clone(), mac, role: req.role.name(), ..Default::default() };
                    (hostname, Some(entry))
                }
            };
            (entry.0, entry.1, vec![PhaseId::Machines, PhaseId::Hosts, PhaseId::Kubernetes])
        }
    };
    grow(path, &text, entry, hostname, steps, catalog, ui, opts, make_env).await
}

/// Runs the phases for the new machine only (`steps`, plus storage when the cluster has
/// Rook), then inserts its entry into the file.
#[allow(clippy::too_many_arguments)]
async fn grow(
    path: &Path,
    text: &str,
    entry: Option<NewMachine>,
    hostname: String,
    mut steps: Vec<PhaseId>,
    catalog: &Catalog,
    ui: &Ui,
    mut opts: RunOptions,
    make_env: &dyn Fn(&Cluster) -> Result<World>,
) -> Result<AddNodeReport> {
    let file = path.display().to_string();
    let new_text = match &entry {
        Some(e) => insert_machine(text, e)?,
        None => text.to_owned(),
    };
    // The grown cluster must be valid as a whole (e.g. an even control plane is refused).
    let mut after = validate(&new_text, &file, catalog, ui, &warnings_of(text, &file, catalog))?;
    after.anchor(path);
    if after.rook.is_some() {
        steps.push(PhaseId::Storage);
    }
    print_budget(ui, &steps);
    opts.command = "add-node".into();
    opts.only_machines = Some(vec![hostname.clone()]);
    opts.selection = Selection { only: steps.clone(), ..Default::default() };
    let env = make_env(&after)?;
    let cluster = after;
    let cx = Arc::new(crate::engine::context::Ctx::new(Arc::new(cluster), ui.clone(), opts, env));
    let report = crate::engine::up(cx).await?;
    let inserted = new_text != text;
    if let Some(entry) = entry {
        let by_hand = || {
            format!(
                "the machine is in the cluster, but {file} could not be updated; add this line under `machines:`\n  - {}",
                crate::config::edit::flow_entry(&entry)
            )
        };
        // Read the file again: another add-node (after this run's lock was given back, or
        // from an editor) may have changed it while this one ran; insert into what is there.
        let now = crate::foundation::limits::read_text(path, crate::config::MAX_FILE_BYTES as u64, &file)
            .with_context(by_hand)?;
        let write = if now == text {
            Some(new_text.clone())
        } else if has_entry(&now, &entry) {
            None
        } else {
            Some(insert_machine(&now, &entry).with_context(by_hand)?)
        };
        if let Some(out) = write {
            crate::foundation::files::write_atomic(path, out.as_bytes(), crate::foundation::files::Mode::Keep)
                .with_context(by_hand)?;
        }
        ui.err(&format!("added {hostname} to {file} (one entry inserted; nothing else in the file changed)"));
    }
    let timings: Vec<(PhaseId, f64)> = report.phases.iter().map(|p| (p.phase, p.elapsed_s)).collect();
    let mut t = String::from("time per step (budget on real hardware):\n");
    for (p, secs) in &timings {
        let budget = BUDGET.iter().find(|b| b.0 == *p).map(|b| fmt_secs(b.2 as f64)).unwrap_or_default();
        t.push_str(&format!("  {:<11} {:>8}  (budget {budget})\n", p.name(), fmt_secs(*secs)));
    }
    t.push_str(&format!("  {:<11} {:>8}  (budget 15m00s)", "total", fmt_secs(report.elapsed_s)));
    if !ui.is_json() {
        ui.out(&t);
    }
    Ok(AddNodeReport {
        hostname,
        inserted,
        steps: timings,
        changes: report.changes,
        elapsed_s: report.elapsed_s,
        file: path.to_path_buf(),
    })
}
