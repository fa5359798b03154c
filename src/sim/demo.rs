//! `homelab demo`: the real phases of `up`, `add-node` and `status` against a simulated lab
//! (the write-up's garage: the MAAS server `maas` as node 1, installed by hand, MAAS with the
//! PCs it deploys and a fourth for add-node, the hosts behind it, a Kubernetes API server with simulated Rook and
//! Strimzi operators), in well under a minute, with the same progress and summary a real run
//! shows.

use super::lab::{FullLab, FullLabOptions, LabOptions};
use super::maas::SimMaasConfig;
use crate::catalog::Catalog;
use crate::catalog::bundle::ManifestSource;
use crate::config::model::Role;
use crate::engine::context::{RunOptions, Timings};
use crate::foundation::output::Ui;
use crate::foundation::time::fmt_secs;
use crate::maas::Status;
use crate::ops::add_node::{AddNodeRequest, add_node};
use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Where to write the demo's cluster.yaml, kept after the demo (default: a temporary
    /// directory). The simulated lab (its MAAS key, SSH key and kubeconfig) ends with the
    /// demo: it points at simulators that stop with it.
    pub dir: Option<PathBuf>,
    /// `dir` is a temporary directory its caller removes (the demo's words say so).
    pub dir_is_temporary: bool,
    /// Real pinned manifests from this directory (mirror layout).
    pub manifests_dir: Option<PathBuf>,
    /// Everything 5× faster (tests).
    pub quick: bool,
    /// Skip the download attempt and use stand-in manifests.
    pub offline: bool,
}

#[derive(Debug, Clone)]
pub struct DemoReport {
    pub elapsed_s: f64,
    pub up_changes: u32,
    pub second_up_changes: u32,
    pub healthy: bool,
    pub cluster_yaml: PathBuf,
    pub manifests: &'static str,
}

/// Where manifests come from: a directory, the network, or the stand-ins.
async fn manifest_source(
    o: &DemoOptions,
    dir: &std::path::Path,
    ui: &Ui,
) -> Result<(ManifestSource, Catalog, &'static str)> {
    let cat = Catalog::embedded()?;
    let cache = crate::foundation::paths::cache_dir().join("manifests");
    if let Some(d) = o.manifests_dir.clone().or_else(|| std::env::var_os("HOMELAB_MANIFEST_DIR").map(PathBuf::from)) {
        ui.err(&format!("manifests: the pinned Rook and Strimzi files from {}", d.display()));
        return Ok((
            ManifestSource { cache_dir: cache, mirror: None, local_dir: Some(d) },
            cat,
            "pinned files from a local directory",
        ));
    }
    if !o.offline {
        let probe = async {
            crate::foundation::tls::install_crypto_provider();
            let http = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(5))
                .build()
                .ok()?;
            let f = cat.rook("v1.10.10")?.files.iter().find(|f| f.path.ends_with("common.yaml"))?.clone();
            let r = http.head(&f.url).send().await.ok()?;
            r.status().is_success().then_some(())
        };
        if probe.await.is_some() {
            ui.err("manifests: the pinned Rook and Strimzi files, downloaded and verified by sha256");
            return Ok((
                ManifestSource { cache_dir: cache, mirror: None, local_dir: None },
                cat,
                "pinned files downloaded from GitHub",
            ));
        }
    }
    let stand = dir.join("stand-in-manifests");
    let cat = super::standin::write_all(&cat, &stand)?;
    ui.err(
        "manifests: the pinned files cannot be downloaded from here, so the demo uses small stand-ins homelab writes itself\n           (same names and shapes; not the upstream files). `homelab demo --manifests-dir DIR` uses real ones.",
    );
    Ok((ManifestSource { cache_dir: dir.join("cache"), mirror: None, local_dir: Some(stand) }, cat, "stand-ins"))
}

pub async fn run(ui: &Ui, o: DemoOptions) -> Result<DemoReport> {
    // A cluster file of the user's is never overwritten by a demo.
    if let Some(d) = o.dir.as_ref().filter(|_| !o.dir_is_temporary) {
        let f = d.join("cluster.yaml");
        if std::fs::metadata(&f).is_ok_and(|m| m.len() > 0) {
            return Err(crate::foundation::error::usage(format!(
                "{} exists; the demo does not overwrite it\n  hint: give `--dir` a new or empty directory",
                f.display()
            )));
        }
    }
    let start = Instant::now();
    let scale = if o.quick { 0.2 } else { 1.0 };
    let ms = |m: u64| Duration::from_millis((m as f64 * scale) as u64);
    let mut fo = FullLabOptions {
        lab: LabOptions {
            machines: 3,
            status: Status::Ready,
            maas: SimMaasConfig { commission_time: ms(1500), deploy_time: ms(3000), ..Default::default() },
            seed_names: true,
        },
        operator_step: ms(500),
        ..Default::default()
    };
    fo.hosts.install_time = ms(600);
    fo.hosts.join_time = ms(400);
    fo.api.crd_establish = ms(200);
    fo.api.discovery_lag = ms(100);
    fo.api.deployment_ready = ms(600);
    let lab = FullLab::start(fo).await?;
    let tmp;
    let dir = match &o.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("homelab-demo").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    ui.err("homelab demo — a simulated lab, the write-up's garage: the MAAS server `maas` (Ubuntu installed by hand, node 1), MAAS with 2 Ready PCs (kvm4, kvm5) and a 4th PC for add-node, the hosts behind it, and a Kubernetes API server with simulated Rook and Strimzi operators. The phases are homelab's real code.");
    let (src, cat, manifests) = manifest_source(&o, &dir, ui).await?;
    let seed = include_str!("../../examples/seed-2023.yaml");
    let body: String = seed.lines().skip_while(|l| !l.starts_with("machines:")).map(|l| format!("{l}\n")).collect();
    let yaml = lab.lab.cluster_yaml(&body);
    let path = dir.join("cluster.yaml");
    std::fs::write(&path, &yaml).with_context(|| format!("cannot write {}", path.display()))?;
    ui.err(&format!("cluster file: {} (the seed example, pointed at the simulated MAAS)\n", path.display()));
    // What `homelab up` says of the file before it runs, the demo says too.
    let checked = crate::config::validate_bytes(yaml.as_bytes(), &path.display().to_string(), &cat);
    if checked.report.warnings() > 0 {
        ui.err(&checked.render());
    }
    let mut timings = Timings::fast();
    timings.maas_poll = ms(250);
    let opts = RunOptions { timings, ..RunOptions::fast() };

    ui.err("━━ homelab up ━━");
    let cx = lab.ctx_with_catalog(&yaml, ui.clone(), opts.clone(), src.clone(), &cat)?;
    let r1 = crate::engine::up(cx).await?;

    ui.err("\n━━ homelab add-node (a 4th PC, New in MAAS) ━━");
    let (_, mac, _) = lab.lab.add_machine(3, Status::New);
    let hosts = lab.hosts.clone();
    let state = lab.lab.path("state");
    let make = |_: &crate::config::Cluster| -> Result<crate::engine::context::World> {
        let mut env = lab.lab.env(hosts.clone(), &state)?;
        env.manifests = src.clone();
        Ok(env)
    };
    add_node(
        &path,
        &AddNodeRequest { mac, hostname: None, role: Role::Worker, ..Default::default() },
        &cat,
        ui,
        opts.clone(),
        &make,
    )
    .await?;

    ui.err("\n━━ homelab up (again: nothing to do) ━━");
    let grown = std::fs::read_to_string(&path)?;
    let cx = lab.ctx_with_catalog(&grown, ui.clone(), opts.clone(), src.clone(), &cat)?;
    let r2 = crate::engine::up(cx).await?;

    ui.err("\n━━ homelab status ━━");
    let cx = lab.ctx_with_catalog(&grown, ui.clone(), opts, src, &cat)?;
    let status = crate::ops::status::gather(&cx).await;
    crate::ops::status::print(ui, &status);
    let elapsed = start.elapsed().as_secs_f64();
    ui.err(&format!(
        "\ndemo finished in {} ({manifests}); cluster file: {}{}",
        fmt_secs(elapsed),
        path.display(),
        if o.dir.is_none() || o.dir_is_temporary {
            " (temporary: `--dir DIR` keeps it)"
        } else {
            " (kept; the simulated lab it points at ended with the demo)"
        }
    ));
    Ok(DemoReport {
        elapsed_s: elapsed,
        up_changes: r1.changes,
        second_up_changes: r2.changes,
        healthy: status.healthy,
        cluster_yaml: path,
        manifests,
    })
}
