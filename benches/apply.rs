//! Benchmark of the apply engine: all objects of Rook v1.10.10 + Strimzi 0.33.1 (the seed's
//! operators), applied to the simulated API server cold and converged, against the
//! baseline of `kubectl apply --server-side -f` (full discovery, then one object at a time in
//! file order). The simulator serves TLS and charges what the real API server charges
//! (`ApiCosts::measured`: per request, per new connection, per write and per byte).
//!
//! `cargo bench --bench apply` (reads ../shared/upstream)

use homelab::catalog::bundle;
use homelab::catalog::{Catalog, FileRole};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::foundation::phase_id::PhaseId;
use homelab::foundation::wait::Backoff;
use homelab::kube::apply::{Applier, ApplyOptions};
use homelab::sim::apiserver::{ApiCosts, SimApiConfig, SimApiServer};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn objects(root: &std::path::Path) -> anyhow::Result<Vec<Value>> {
    let cat = Catalog::embedded()?;
    let mut out = Vec::new();
    for (project, version, files) in [
        ("rook", "v1.10.10", cat.rook("v1.10.10").map(|r| r.files.clone())),
        ("strimzi", "0.33.1", cat.strimzi("0.33.1").map(|s| s.files.clone())),
    ] {
        for f in files.unwrap_or_default().iter().filter(|f| f.role != FileRole::Template) {
            let text = std::fs::read_to_string(root.join(project).join(version).join(&f.path))?;
            let mut objs = bundle::parse_manifest(&text, &f.path)?;
            if project == "strimzi" {
                for o in &mut objs {
                    if ["ServiceAccount", "RoleBinding", "ConfigMap", "Deployment"]
                        .contains(&o["kind"].as_str().unwrap_or(""))
                    {
                        o["metadata"]["namespace"] = "kafka".into();
                    }
                }
            }
            out.extend(objs);
        }
    }
    out.insert(0, serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kafka"}}));
    Ok(out)
}

async fn server() -> anyhow::Result<(SimApiServer, kube::Client)> {
    let api = SimApiServer::start(SimApiConfig {
        tls: true,
        costs: ApiCosts::measured(),
        crd_establish: Duration::from_millis(20),
        discovery_lag: Duration::from_millis(20),
        ..Default::default()
    })
    .await?;
    let client = homelab::kube::client::from_text(&api.kubeconfig("bench"), None).await?;
    Ok((api, client))
}

/// What `kubectl apply --server-side -f` does: discover everything, then PATCH each object in order.
async fn kubectl_like(client: &kube::Client, objs: &[Value]) -> anyhow::Result<()> {
    let mut disco = Discovery::new(client.clone()).run().await?;
    let pp = PatchParams::apply("kubectl").force();
    for o in objs {
        let av = o["apiVersion"].as_str().unwrap_or("");
        let (g, v) = av.split_once('/').unwrap_or(("", av));
        let gvk = kube::core::GroupVersionKind::gvk(g, v, o["kind"].as_str().unwrap_or(""));
        let found = disco.resolve_gvk(&gvk);
        let (ar, caps) = match found {
            Some(x) => x,
            None => {
                disco = Discovery::new(client.clone()).run().await?;
                disco.resolve_gvk(&gvk).ok_or_else(|| anyhow::anyhow!("{gvk:?} not served"))?
            }
        };
        let name = o["metadata"]["name"].as_str().unwrap_or("");
        let api: Api<DynamicObject> = match (caps.scope, o["metadata"]["namespace"].as_str()) {
            (Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
            (_, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
            (_, None) => Api::default_namespaced_with(client.clone(), &ar),
        };
        api.patch(name, &pp, &Patch::Apply(o)).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    homelab::foundation::tls::install_crypto_provider();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream");
    if !root.is_dir() {
        println!("notice: ../shared/upstream is absent; nothing to benchmark");
        return Ok(());
    }
    let objs = objects(&root)?;
    println!(
        "Rook v1.10.10 + Strimzi 0.33.1: {} objects; simulated API server over TLS with the measured costs",
        objs.len()
    );
    println!(
        "{:<36} {:>9} {:>9} {:>7} {:>9} {:>6} {:>8}",
        "run", "time", "requests", "writes", "MB", "conns", "changes"
    );
    let opts = ApplyOptions {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
        ..Default::default()
    };
    let row = |name: &str, api: &SimApiServer, t: f64, bytes0: u64, changes: String| {
        let log = api.requests();
        let writes = log.iter().filter(|l| !l.starts_with("GET")).count();
        println!(
            "{name:<36} {t:>8.3}s {:>9} {writes:>7} {:>9.2} {:>6} {changes:>8}",
            log.len(),
            (api.meter.bytes() - bytes0) as f64 / 1e6,
            api.meter.connections()
        );
    };
    let (api, client) = server().await?;
    let (ui, _) = Ui::capture(OutputFormat::Json);
    let a = Applier::new(client.clone(), ui, PhaseId::Storage, opts.clone());
    let t = Instant::now();
    let r = a.apply(&objs).await?;
    let cold = t.elapsed().as_secs_f64();
    row("homelab, cold", &api, cold, 0, r.changes().to_string());
    api.clear_log();
    let b0 = api.meter.bytes();
    let t = Instant::now();
    let r = a.apply(&objs).await?;
    let conv = t.elapsed().as_secs_f64();
    row("homelab, converged", &api, conv, b0, r.changes().to_string());

    let (api2, client2) = server().await?;
    let t = Instant::now();
    kubectl_like(&client2, &objs).await?;
    let k_cold = t.elapsed().as_secs_f64();
    row("one at a time (kubectl-like), cold", &api2, k_cold, 0, "-".into());
    api2.clear_log();
    let b0 = api2.meter.bytes();
    let t = Instant::now();
    kubectl_like(&client2, &objs).await?;
    let k_conv = t.elapsed().as_secs_f64();
    row("one at a time (kubectl-like), again", &api2, k_conv, b0, "-".into());
    println!(
        "homelab / one at a time: cold {:.2}x (goal <= 0.5; homelab also waits for CRDs to be Established, which kubectl does not), converged {:.2}x (goal <= 0.35)",
        cold / k_cold,
        conv / k_conv
    );
    Ok(())
}
