//! `homelab validate [FILE]`: check a cluster file without touching anything.

use super::{Global, catalog};
use crate::config::validate_file;
use crate::foundation::output::Ui;
use clap::Args;
use std::process::ExitCode;

/// Check a cluster file: every problem at once, each with line, column and a hint.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub file: super::FileArg,
}

pub fn run(a: ValidateArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let path = a.file.path();
    let cat = catalog(g)?;
    let v = validate_file(&path, &cat);
    if ui.is_json() {
        ui.out(&v.report.json_line());
    } else if !v.report.diagnostics.is_empty() {
        if v.report.has_errors() {
            ui.error(&v.render());
        } else {
            ui.err(&v.render());
        }
    }
    if v.report.has_errors() {
        return Ok(ExitCode::from(crate::foundation::error::EXIT_USAGE));
    }
    if !ui.is_json()
        && let Some(c) = &v.cluster
    {
        let k = match &c.kubernetes {
            crate::config::Kubernetes::Microk8s { channel, .. } => format!("MicroK8s {channel}"),
            crate::config::Kubernetes::Existing { context, .. } => {
                format!("existing cluster{}", context.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())
            }
        };
        let mut parts =
            vec![format!("{} machine{}", c.machines.len(), if c.machines.len() == 1 { "" } else { "s" }), k];
        if let Some(r) = &c.rook {
            parts.push(format!("Rook {}", r.release.version));
        }
        if let Some(kf) = &c.kafka {
            parts.push(
                format!("Strimzi {} / Kafka {} ({:?})", kf.release.version, kf.version, kf.mode)
                    .to_lowercase()
                    .replace("strimzi", "Strimzi")
                    .replace("kafka ", "Kafka "),
            );
            let n = |k: usize, w: &str| format!("{k} {w}{}", if k == 1 { "" } else { "s" });
            if !kf.topics.is_empty() || !kf.users.is_empty() {
                parts.push(format!("{}, {}", n(kf.topics.len(), "topic"), n(kf.users.len(), "Kafka user")));
            }
            if let Some(b) = &kf.bridge {
                parts.push(format!("HTTP bridge {}", b.name));
            }
        }
        if let Some(d) = &c.database {
            parts.push(format!(
                "PostgreSQL {} ({} instance{}, CloudNativePG {})",
                d.name,
                d.instances,
                if d.instances == 1 { "" } else { "s" },
                d.release.version
            ));
        }
        ui.out(&format!("{}: valid — cluster `{}`: {}", path.display(), c.name, parts.join(", ")));
    }
    Ok(ExitCode::SUCCESS)
}
