//! Benchmark of the apply engine: all objects of Rook v1.10.10 + Strimzi 0.33.1 (the seed's
//! operators), applied to the simulated API server cold and converged, against the
//! baseline of `kubectl apply --server-side -f` (full discovery, then one object at a time in
//! file order). The simulator adds a fixed latency per request to stand for the network and
//! the API server's own work.
//!
//! `cargo bench --bench apply` (reads ../shared/upstream; `HOMELAB_BENCH_LATENCY_MS`, default 2)

use homelab::catalog::bundle;
use homelab::catalog::{Catalog, FileRole};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::foundation::phase_id::PhaseId;
use homelab::foundation::wait::Backoff;
use homelab::kube::apply::{Applier, ApplyOptions};
use homelab::sim::apiserver::{SimApiConfig, SimApiServer};
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

async fn server(latency: Duration) -> anyhow::Result<(SimApiServer, kube::Client)> {
    let api = SimApiServer::start(SimApiConfig {
        latency,
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
    let latency =
        Duration::from_millis(std::env::var("HOMELAB_BENCH_LATENCY_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(2));
    let objs = objects(&root)?;
    println!(
        "Rook v1.10.10 + Strimzi 0.33.1: {} objects; simulated API latency {} ms/request",
        objs.len(),
        latency.as_millis()
    );
    println!("{:<34} {:>9} {:>9} {:>8}", "run", "time", "requests", "changes");
    let opts = ApplyOptions {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
        ..Default::default()
    };
    let (api, client) = server(latency).await?;
    let (ui, _) = Ui::capture(OutputFormat::Json);
    let a = Applier::new(client.clone(), ui, PhaseId::Storage, opts.clone());
    let t = Instant::now();
    let r = a.apply(&objs).await?;
    let cold = t.elapsed().as_secs_f64();
    let cold_req = api.requests().len();
    println!("{:<34} {:>8.3}s {:>9} {:>8}", "homelab, cold", cold, cold_req, r.changes());
    api.clear_log();
    let t = Instant::now();
    let r = a.apply(&objs).await?;
    let conv = t.elapsed().as_secs_f64();
    let conv_req = api.requests().len();
    println!("{:<34} {:>8.3}s {:>9} {:>8}", "homelab, converged", conv, conv_req, r.changes());

    let (api2, client2) = server(latency).await?;
    let t = Instant::now();
    kubectl_like(&client2, &objs).await?;
    let k_cold = t.elapsed().as_secs_f64();
    let k_cold_req = api2.requests().len();
    println!("{:<34} {:>8.3}s {:>9} {:>8}", "one at a time (kubectl-like), cold", k_cold, k_cold_req, "-");
    api2.clear_log();
    let t = Instant::now();
    kubectl_like(&client2, &objs).await?;
    let k_conv = t.elapsed().as_secs_f64();
    let k_conv_req = api2.requests().len();
    println!("{:<34} {:>8.3}s {:>9} {:>8}", "one at a time (kubectl-like), again", k_conv, k_conv_req, "-");
    println!(
        "speed-up: cold {:.1}x, converged {:.1}x (homelab also waits for CRDs to be Established, which kubectl does not)",
        k_cold / cold,
        k_conv / conv
    );
    Ok(())
}
