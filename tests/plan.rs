//! One dry-run path: the plan is the list of what the real run does, in the same words, and it
//! counts changes as the API server will (server-side apply with `dryRun=All`), also when a
//! cluster built by hand with `kubectl create` is adopted and field ownership moves to homelab.

mod support;

use homelab::catalog::bundle::ManifestSource;
use homelab::engine::context::RunOptions;
use homelab::engine::phase::{PhaseId, Selection};
use homelab::foundation::output::{Captured, OutputFormat, Ui};
use homelab::sim::lab::{FullLab, FullLabOptions};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::Value;
use std::collections::BTreeMap;
use support::actions;

fn manifests(lab: &FullLab, up: &std::path::Path) -> ManifestSource {
    ManifestSource { cache_dir: lab.lab.path("cache"), mirror: None, local_dir: Some(up.to_path_buf()) }
}

fn seed(lab: &FullLab) -> String {
    support::example(lab, "seed-2023.yaml")
}

async fn up(
    lab: &FullLab,
    yaml: &str,
    upstream: &std::path::Path,
    opts: RunOptions,
) -> (homelab::engine::runner::RunReport, Captured) {
    let (ui, cap) = Ui::capture(OutputFormat::Json);
    let cx = lab.ctx(yaml, ui, opts, manifests(lab, upstream)).unwrap();
    let r = homelab::engine::up(cx).await.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    (r, cap)
}

/// System ids differ from lab to lab; the words around them must not.
fn normalize(v: &[(String, String, String)]) -> Vec<String> {
    v.iter()
        .map(|(p, t, a)| {
            let a = a
                .split(' ')
                .map(|w| match w.find("machines/").or(w.find("nodes/")) {
                    Some(i) => {
                        let (head, rest) = w.split_at(i);
                        let (kind, tail) = rest.split_once('/').unwrap_or((rest, ""));
                        let tail = tail.split_once('/').map(|(_, t)| t).unwrap_or("");
                        format!("{head}{kind}/<id>/{tail}")
                    }
                    None => w.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            format!("{p} {t}: {a}")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plan_of_the_seeds_first_up_is_what_the_run_does_in_the_same_words() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = seed(&lab);
    let (plan, pcap) = up(&lab, &yaml, &upstream, RunOptions { dry_run: true, ..RunOptions::fast() }).await;
    let planned = actions(&pcap, "planned");
    assert!(!planned.is_empty());
    let (run, rcap) = up(&lab, &yaml, &upstream, RunOptions::fast()).await;
    let done = actions(&rcap, "step");
    assert_eq!(planned, done, "plan and run differ:\nplan: {planned:#?}\nrun: {done:#?}");
    assert_eq!(plan.changes, run.changes, "the plan counts {} changes, the run made {}", plan.changes, run.changes);
    insta::assert_yaml_snapshot!("seed-first-up-actions", normalize(&planned));
    // Converged: the plan is empty and so is the run.
    let (again, _) = up(&lab, &yaml, &upstream, RunOptions { dry_run: true, ..RunOptions::fast() }).await;
    assert_eq!(again.changes, 0, "{:?}", again.planned);
    assert!(again.planned.is_empty(), "{:?}", again.planned);
}

/// Creates `objs` the way the seed write-up did (`kubectl create`: POST, field manager
/// `kubectl-create`), in apply order, waiting for CRDs to be served.
async fn kubectl_create(client: &kube::Client, objs: &[Value]) {
    let mut objs = objs.to_vec();
    objs.sort_by_key(homelab::kube::apply::stage_of);
    let pp = PostParams { field_manager: Some("kubectl-create".into()), ..Default::default() };
    for o in &objs {
        let av = o["apiVersion"].as_str().unwrap_or_default();
        let (g, v) = av.split_once('/').unwrap_or(("", av));
        let gvk = kube::core::GroupVersionKind::gvk(g, v, o["kind"].as_str().unwrap_or_default());
        let mut tries = 0;
        loop {
            tries += 1;
            let r = async {
                let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
                let api: Api<DynamicObject> = match (caps.scope, o["metadata"]["namespace"].as_str()) {
                    (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
                    _ => Api::all_with(client.clone(), &ar),
                };
                let obj: DynamicObject = serde_json::from_value(o.clone())?;
                api.create(&pp, &obj).await?;
                Ok::<_, anyhow::Error>(())
            }
            .await;
            match r {
                Ok(()) => break,
                Err(e) if tries < 100 => {
                    if tries % 20 == 0 {
                        eprintln!("creating {}: {e:#}", homelab::kube::apply::describe(o));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(e) => panic!("creating {}: {e:#}", homelab::kube::apply::describe(o)),
            }
        }
    }
}

/// resourceVersion of every object the API server holds.
fn versions(lab: &FullLab) -> BTreeMap<String, String> {
    lab.api
        .all_objects()
        .into_iter()
        .map(|o| (homelab::kube::apply::describe(&o), o["metadata"]["resourceVersion"].as_str().unwrap_or("").into()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn adopting_a_hand_built_seed_cluster_plans_exactly_the_changes_the_run_makes() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    // (The Kafka as it was built by hand: no topics, users or bridge for homelab to add.)
    let yaml = support::without_kafka_apps(&seed(&lab));
    // Machines, MicroK8s and Ceph first.
    let only =
        |p: Vec<PhaseId>| RunOptions { selection: Selection { only: p, ..Default::default() }, ..RunOptions::fast() };
    up(&lab, &yaml, &upstream, only(vec![PhaseId::Machines, PhaseId::Hosts, PhaseId::Kubernetes, PhaseId::Storage]))
        .await;
    // Then the Strimzi install files and the Kafka, created by hand with `kubectl create`.
    let (ui, _cap) = Ui::capture(OutputFormat::Json);
    let cx = lab.ctx(&yaml, ui, RunOptions::fast(), manifests(&lab, &upstream)).unwrap();
    let client = cx.kube().await.unwrap();
    let k = cx.cluster.kafka.clone().unwrap();
    let mut files = BTreeMap::new();
    for f in &k.release.files {
        let b = homelab::catalog::bundle::fetch(
            &reqwest::Client::new(),
            &manifests(&lab, &upstream),
            homelab::catalog::bundle::Release { project: "strimzi", version: &k.release.version },
            f,
        )
        .await
        .unwrap();
        files.insert(f.path.clone(), String::from_utf8(b).unwrap());
    }
    let files: std::collections::HashMap<String, String> = files.into_iter().collect();
    let mut objs = homelab::render::strimzi::install_objects(&k.release, &files, &k.namespace).unwrap();
    objs.extend(homelab::render::strimzi::render(&k));
    kubectl_create(&client, &objs).await;

    let kafka_only = only(vec![PhaseId::Kafka]);
    let (plan, pcap) = up(&lab, &yaml, &upstream, RunOptions { dry_run: true, ..kafka_only.clone() }).await;
    let before = versions(&lab);
    let (run, rcap) = up(&lab, &yaml, &upstream, kafka_only.clone()).await;
    let after = versions(&lab);
    // Every object homelab adopts changes once (its field manager joins the owners), and the
    // plan said so, in the words of the run.
    let moved: Vec<&String> = after.iter().filter(|(k, v)| before.get(*k) != Some(v)).map(|(k, _)| k).collect();
    assert_eq!(
        plan.changes,
        run.changes,
        "plan {} vs run {}:\n{}\n{}",
        plan.changes,
        run.changes,
        pcap.stdout(),
        rcap.stdout()
    );
    assert_eq!(actions(&pcap, "planned"), actions(&rcap, "step"));
    assert_eq!(run.changes as usize, objs.len(), "each created object is adopted once: {moved:#?}");
    // The objects whose resourceVersion moved are exactly those adopted (the operator's own
    // status writes aside, which the run does not count).
    for o in &objs {
        let d = homelab::kube::apply::describe(o);
        assert!(moved.contains(&&d), "{d} did not change; the run counted it");
    }
    let (again, cap) = up(&lab, &yaml, &upstream, kafka_only).await;
    assert_eq!(again.changes, 0, "{}", cap.stdout());
}
