//! `homelab diagnose [FILE] [--to FILE]`: one redacted `.tar.gz` with every layer's state,
//! for a bug report (the operation is `ops::diagnose`).

use super::{Global, ManifestArgs, load_cluster, real_world};
use crate::engine::context::{Ctx, RunOptions, Timings};
use crate::foundation::output::Ui;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Collect every layer's state into one redacted .tar.gz to attach to a bug report.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  homelab diagnose                         writes ./homelab-diagnose-<name>-<time>.tar.gz\n  homelab diagnose --to /tmp/garage.tar.gz --timeout 10s"
)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub file: super::FileArg,
    /// Where to write the archive (default ./homelab-diagnose-<name>-<UTC time>.tar.gz).
    #[arg(long, value_name = "PATH")]
    pub to: Option<PathBuf>,
    /// How long each item may take (a host that does not answer costs this once per item).
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration_arg, default_value = "30s")]
    pub timeout: std::time::Duration,
}

#[derive(serde::Serialize)]
struct Failed<'a> {
    path: &'a str,
    error: &'a str,
}

pub async fn run(a: DiagnoseArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let path = a.file.path();
    let cluster = Arc::new(load_cluster(&path, g, &ui)?);
    // MAAS is one source among others: without its key the rest is still collected.
    let env = match real_world(&cluster, &ManifestArgs::default(), cluster.maas.is_some()) {
        Ok(env) => env,
        Err(e) if cluster.maas.is_some() => {
            ui.err(&format!("note: MAAS is left out: {}", format!("{e:#}").lines().next().unwrap_or_default()));
            real_world(&cluster, &ManifestArgs::default(), false)?
        }
        Err(e) => return Err(e),
    };
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let to = a.to.unwrap_or_else(|| PathBuf::from(format!("homelab-diagnose-{}-{stamp}.tar.gz", cluster.name)));
    let cx = Arc::new(Ctx::new(
        cluster,
        ui.clone(),
        RunOptions { command: "diagnose".into(), timings: Timings::from_env(), ..Default::default() },
        env,
    ));
    ui.err(&format!("collecting every layer of `{}` (each item at most {}s)…", cx.cluster.name, a.timeout.as_secs()));
    let req = crate::ops::diagnose::Request { to: to.clone(), per_item: a.timeout, own_log: ui.log_path() };
    let m = crate::ops::diagnose::diagnose(cx, &req).await?;
    let failed: Vec<Failed> =
        m.failed().map(|e| Failed { path: &e.path, error: e.error.as_deref().unwrap_or_default() }).collect();
    let collected = m.collected();
    if ui.is_json() {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            file: String,
            collected: usize,
            failed: &'a [Failed<'a>],
        }
        let doc = Doc { file: to.display().to_string(), collected, failed: &failed };
        ui.out(&crate::foundation::json::event_line("diagnose", &doc));
    } else {
        for f in &failed {
            ui.err(&format!("  not collected: {}: {}", f.path, f.error.lines().next().unwrap_or_default()));
        }
        ui.out(&format!(
            "wrote {}: {collected} item{} collected, {} not (listed in manifest.json); secrets masked — look it over before you share it",
            to.display(),
            if collected == 1 { "" } else { "s" },
            failed.len()
        ));
    }
    if m.from_systems() == 0 {
        return Err(anyhow::anyhow!(
            "no system answered: nothing was read from MAAS, the machines or the Kubernetes API ({} keeps the manifest with each error, the status report and the run logs)\n  hint: check that this machine reaches them — MAAS's URL and key, SSH to the machines, the kubeconfig's server",
            to.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}
