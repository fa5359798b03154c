//! The objects homelab renders for the examples — CephCluster, pools, StorageClass, Kafka and
//! KafkaNodePools — pinned by snapshots, and valid against the real CRD schemas of the pinned
//! releases (read from ../shared/upstream).

mod support;

use homelab::catalog::Catalog;
use homelab::catalog::bundle;
use homelab::config::validate_file;
use homelab::render::{rook, strimzi};
use homelab::sim::apiserver::validate_against;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

fn files(up: &Path, project: &str, version: &str, paths: &[String]) -> HashMap<String, String> {
    paths
        .iter()
        .map(|p| (p.clone(), std::fs::read_to_string(up.join(project).join(version).join(p)).unwrap()))
        .collect()
}

/// `(group, kind, version)` → openAPIV3Schema, from every CRD in the given texts.
fn schemas(texts: &[String]) -> HashMap<(String, String, String), Value> {
    let mut out = HashMap::new();
    for t in texts {
        for o in
            bundle::parse_manifest(t, "crds").unwrap().into_iter().filter(|o| o["kind"] == "CustomResourceDefinition")
        {
            for v in o["spec"]["versions"].as_array().unwrap() {
                if let Some(s) = v.pointer("/schema/openAPIV3Schema") {
                    out.insert(
                        (
                            o["spec"]["group"].as_str().unwrap().to_owned(),
                            o["spec"]["names"]["kind"].as_str().unwrap().to_owned(),
                            v["name"].as_str().unwrap().to_owned(),
                        ),
                        s.clone(),
                    );
                }
            }
        }
    }
    out
}

fn check(schemas: &HashMap<(String, String, String), Value>, obj: &Value) {
    let av = obj["apiVersion"].as_str().unwrap();
    let (g, v) = av.split_once('/').unwrap_or(("", av));
    let key = (g.to_owned(), obj["kind"].as_str().unwrap().to_owned(), v.to_owned());
    let Some(schema) = schemas.get(&key) else {
        assert!(g.is_empty() || g.ends_with("k8s.io"), "no CRD schema for {key:?}");
        return;
    };
    validate_against(schema, obj)
        .unwrap_or_else(|e| panic!("{} {} does not match the CRD schema: {e}", obj["kind"], obj["metadata"]["name"]));
}

fn render_example(up: &Path, example: &str) -> Vec<Value> {
    let cat = Catalog::embedded().unwrap();
    let v = validate_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example), &cat);
    let c = v.cluster.unwrap();
    let r = c.rook.as_ref().unwrap();
    let rf = files(up, "rook", &r.release.version, &r.release.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>());
    let mut objs = vec![rook::render_cluster(&r.release, &rf, &c).unwrap(), rook::render_mgr_pool(rook::mgr_size(&c))];
    for p in &r.pools {
        let (pool, sc) = rook::render_pool(&r.release, &rf, p).unwrap();
        objs.push(pool);
        objs.extend(sc);
    }
    let k = c.kafka.as_ref().unwrap();
    objs.extend(strimzi::render(k));
    // Every rendered custom resource is valid for its release's CRDs.
    let sf =
        files(up, "strimzi", &k.release.version, &k.release.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>());
    let mut crd_texts: Vec<String> = rf.values().cloned().collect();
    crd_texts.extend(sf.values().filter(|t| t.contains("CustomResourceDefinition")).cloned());
    let s = schemas(&crd_texts);
    for o in &objs {
        check(&s, o);
    }
    objs
}

#[test]
fn seed_2023_renders_and_matches_the_crds() {
    let Some(up) = support::mirror::upstream() else { return };
    let objs = render_example(&up, "seed-2023.yaml");
    insta::assert_yaml_snapshot!("seed-2023", objs);
}

#[test]
fn current_2026_renders_and_matches_the_crds() {
    let Some(up) = support::mirror::upstream() else { return };
    let objs = render_example(&up, "current-2026.yaml");
    insta::assert_yaml_snapshot!("current-2026", objs);
}

#[test]
fn a_bad_render_is_caught_by_the_crd_schema() {
    let Some(up) = support::mirror::upstream() else { return };
    let cat = Catalog::embedded().unwrap();
    let rel = cat.strimzi("1.2.0").unwrap();
    let sf = files(&up, "strimzi", "1.2.0", &rel.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>());
    let s = schemas(&sf.values().cloned().collect::<Vec<_>>());
    let bad = serde_json::json!({"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaNodePool", "metadata": {"name": "x"}, "spec": {"replicas": 3, "roles": ["leader"], "storage": {"type": "ephemeral"}}});
    let schema = s.get(&("kafka.strimzi.io".to_owned(), "KafkaNodePool".to_owned(), "v1".to_owned())).unwrap();
    assert!(validate_against(schema, &bad).is_err());
}

#[test]
fn strimzi_namespace_rewrite_touches_only_what_it_should() {
    let Some(up) = support::mirror::upstream() else { return };
    let cat = Catalog::embedded().unwrap();
    for v in ["0.33.1", "0.45.2", "1.2.0"] {
        let rel = cat.strimzi(v).unwrap();
        let sf = files(&up, "strimzi", v, &rel.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>());
        let objs = strimzi::install_objects(rel, &sf, "streams").unwrap();
        let bindings = objs.iter().filter(|o| o["kind"].as_str().is_some_and(|k| k.ends_with("Binding"))).count();
        assert_eq!(bindings, 7, "{v}: the seven bindings of docs/rook-strimzi.md §2");
        for o in &objs {
            if let Some(subjects) = o["subjects"].as_array() {
                assert!(subjects.iter().all(|s| s["namespace"] == "streams"), "{v}: {o}");
            }
            if ["ServiceAccount", "RoleBinding", "ConfigMap", "Deployment"].contains(&o["kind"].as_str().unwrap()) {
                assert_eq!(o["metadata"]["namespace"], "streams", "{v}: {}", o["metadata"]["name"]);
            }
            if o["kind"] == "CustomResourceDefinition" {
                assert!(o["metadata"]["namespace"].is_null());
            }
        }
        // The CRDs keep upstream's text (a blind replace of `myproject` would change them).
        let crd = objs.iter().find(|o| o["metadata"]["name"] == "kafkas.kafka.strimzi.io").unwrap().to_string();
        let upstream_text = sf.iter().find(|(p, _)| p.ends_with("040-Crd-kafka.yaml")).unwrap().1;
        assert_eq!(crd.contains("myproject"), upstream_text.contains("myproject"), "{v}");
    }
}
