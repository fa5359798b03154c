//! Bad input of any kind gives a clear error, never a panic: the config parser and validator
//! are fuzzed with random bytes, mutated examples and random documents built from the
//! schema's vocabulary; command outputs are truncated at every point; manifests are mutated.
//!
//! CI runs each target for a few seconds; `HOMELAB_FUZZ_SECONDS=600 cargo test --release
//! --test fuzz -- --nocapture` is the long run (RELIABILITY.md).

mod support;

use homelab::catalog::Catalog;
use homelab::config::validate_bytes;
use homelab::microk8s as mk;
use homelab::ssh::Output;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use std::time::{Duration, Instant};

fn budget() -> Duration {
    Duration::from_secs(std::env::var("HOMELAB_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3))
}

/// Runs `f` on values of `strategy` until the time budget is spent; returns the case count.
fn fuzz<S: Strategy>(name: &str, strategy: S, f: impl Fn(S::Value)) -> u64
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config { failure_persistence: None, ..Config::default() });
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget() {
        let tree = strategy.new_tree(&mut runner).expect("strategy");
        let v = tree.current();
        let shown = format!("{v:?}");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(v)));
        assert!(r.is_ok(), "{name}: panic on input {}", shown.chars().take(2000).collect::<String>());
        n += 1;
    }
    eprintln!("fuzz {name}: {n} cases in {:.0}s, no panic", start.elapsed().as_secs_f64());
    n
}

fn examples() -> Vec<String> {
    ["seed-2023.yaml", "current-2026.yaml", "existing-kind.yaml"]
        .iter()
        .map(|e| std::fs::read_to_string(format!("{}/examples/{e}", env!("CARGO_MANIFEST_DIR"))).unwrap())
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    DupLine(usize),
    SwapLines(usize, usize),
    Indent(usize, i8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let yamlish = proptest::string::string_regex("[ a-z0-9:{}\\[\\],\"'#&*!|>\\-\\n.]{0,12}").unwrap();
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<usize>(), yamlish).prop_map(|(a, s)| Mutation::Insert(a, s)),
        any::<usize>().prop_map(Mutation::DupLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), -3i8..4).prop_map(|(a, d)| Mutation::Indent(a, d)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        // A mutation may have emptied the text already (found by the 10-minute run).
        lines.push(String::new());
    }
    let n = lines.len();
    match m {
        Mutation::Delete(at, len) => {
            let a = at % chars.len().max(1);
            let b = (a + len).min(chars.len());
            chars[..a].iter().chain(&chars[b..]).collect()
        }
        Mutation::Insert(at, s) => {
            let a = at % (chars.len() + 1);
            chars[..a].iter().collect::<String>() + s + &chars[a..].iter().collect::<String>()
        }
        Mutation::DupLine(i) => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
            lines.join("\n")
        }
        Mutation::SwapLines(a, b) => {
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        Mutation::Indent(i, d) => {
            let l = &mut lines[i % n];
            if *d > 0 {
                *l = " ".repeat(*d as usize) + l;
            } else {
                let k = (-*d) as usize;
                *l = l.chars().skip(k.min(l.len() - l.trim_start().len())).collect();
            }
            lines.join("\n")
        }
        Mutation::Truncate(at) => chars[..at % (chars.len() + 1)].iter().collect(),
    }
}

#[test]
fn config_random_bytes_never_panic() {
    let cat = Catalog::embedded().unwrap();
    fuzz("config/bytes", proptest::collection::vec(any::<u8>(), 0..2048), |b| {
        let _ = validate_bytes(&b, "f.yaml", &cat).render();
    });
}

#[test]
fn config_mutated_examples_never_panic() {
    let cat = Catalog::embedded().unwrap();
    let ex = examples();
    fuzz("config/mutations", (0..ex.len(), proptest::collection::vec(mutation(), 1..6)), |(i, ms)| {
        let mut t = ex[i].clone();
        for m in &ms {
            t = apply(&t, m);
        }
        let _ = validate_bytes(t.as_bytes(), "f.yaml", &cat).render();
    });
}

fn vocab_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let keys = [
        "apiVersion",
        "kind",
        "metadata",
        "name",
        "maas",
        "url",
        "apiKeyFile",
        "distroSeries",
        "ssh",
        "user",
        "storage",
        "layout",
        "rootSize",
        "ceph",
        "machines",
        "hostname",
        "mac",
        "role",
        "kubernetes",
        "distribution",
        "channel",
        "addons",
        "rook",
        "version",
        "pools",
        "replicas",
        "storageClass",
        "default",
        "kafka",
        "strimziVersion",
        "namespace",
        "cluster",
        "metadata",
        "listeners",
        "config",
        "zookeeper",
        "controllers",
        "size",
        "class",
        "deleteClaim",
        "timeouts",
        "deploy",
        "device",
        "failureDomain",
        "port",
        "type",
        "tls",
        "apiKey",
        "password",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        proptest::sample::select(vec![
            "homelab/v1alpha1",
            "Cluster",
            "microk8s",
            "existing",
            "1.26/stable",
            "v1.10.10",
            "0.33.1",
            "1.2.0",
            "4.3.1",
            "kraft",
            "zookeeper",
            "control-plane",
            "worker",
            "lvm",
            "rest",
            "100G",
            "100Gi",
            "52:54:00:00:00:01",
            "rook-ceph-block",
            "http://x:5240/MAAS",
            "AAAAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBB:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "[a-zA-Z0-9:./ -]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(keys.to_vec()), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

#[test]
fn config_random_documents_from_the_schema_vocabulary_never_panic() {
    let cat = Catalog::embedded().unwrap();
    let base: serde_json::Value = serde_saphyr::from_str(&examples()[0]).unwrap();
    fuzz(
        "config/documents",
        (
            vocab_value(),
            proptest::sample::select(vec![
                "machines",
                "kafka",
                "rook",
                "maas",
                "kubernetes",
                "storage",
                "timeouts",
                "x",
            ]),
        ),
        |(v, key)| {
            // Replace one section of a valid file with a random document, and also try it alone.
            let mut doc = base.clone();
            doc[key] = v.clone();
            for d in [doc, v] {
                if let Ok(text) = serde_saphyr::to_string(&d) {
                    let _ = validate_bytes(text.as_bytes(), "f.yaml", &cat).render();
                }
            }
        },
    );
}

fn out(s: &str, code: i32) -> Output {
    Output { code: Some(code), stdout: s.to_owned(), stderr: String::new() }
}

#[test]
fn truncated_command_outputs_give_errors_not_panics() {
    let facts = "hostname=kvm4\ncloud_init=done\nhosts_b64=MTI3LjAuMC4xIGxvY2FsaG9zdAo=\nceph_dev=present\nceph_sig=\nlvm2=yes\nrbd=yes\nclock=yes\nsnap_tracking=1.26/stable\nresolve_maas=10.0.0.11\n";
    let nodes = r#"{"apiVersion":"v1","kind":"List","items":[{"metadata":{"name":"maas","labels":{}},"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.11"}],"conditions":[{"type":"Ready","status":"True"}],"nodeInfo":{"kubeletVersion":"v1.26.3"}}}]}"#;
    let kc = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0EK\n    server: https://10.0.0.11:16443\n  name: microk8s-cluster\ncontexts:\n- context:\n    cluster: microk8s-cluster\n    user: admin\n  name: microk8s\ncurrent-context: microk8s\nkind: Config\nusers:\n- name: admin\n  user:\n    token: abcdefabcdef\n";
    let token = "0123456789abcdef0123456789abcdef/0123456789ab\n";
    let mut n = 0;
    for text in [facts, nodes, kc, token] {
        for cut in 0..=text.len() {
            let Some(t) = text.get(..cut) else { continue };
            for code in [0, 1, 6] {
                let o = out(t, code);
                let _ = mk::parse_facts(&o);
                let _ = mk::parse_nodes(&o);
                let _ = mk::parse_token(&o);
                let _ = mk::classify_join(&o);
                let _ = mk::is_running(&o);
                let _ = mk::rewrite_kubeconfig(t, "https://x:16443", "homelab-x");
                n += 1;
            }
        }
    }
    eprintln!("truncated outputs: {n} cases, no panic");
}

#[test]
fn mutated_manifests_give_errors_not_panics() {
    let Some(up) = support::shared("upstream") else { return };
    let texts: Vec<String> = [
        "rook/v1.10.10/deploy/examples/operator.yaml",
        "rook/v1.10.10/deploy/examples/common.yaml",
        "strimzi/1.2.0/install/cluster-operator/060-Deployment-strimzi-cluster-operator.yaml",
        "rook/v1.20.6/deploy/examples/cluster.yaml",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(up.join(p)).unwrap())
    .collect();
    fuzz("manifests/mutations", (0..texts.len(), proptest::collection::vec(mutation(), 1..5)), |(i, ms)| {
        let mut t = texts[i].clone();
        for m in &ms {
            t = apply(&t, m);
        }
        if let Ok(objs) = homelab::catalog::bundle::parse_manifest(&t, "m.yaml") {
            for o in &objs {
                let _ = homelab::kube::apply::stage_of(o);
                let _ = homelab::kube::apply::describe(o);
            }
        }
    });
}

#[tokio::test]
async fn malformed_maas_answers_give_typed_errors() {
    use homelab::maas::{ApiKey, ClientOptions, MaasClient, MaasError};
    homelab::foundation::tls::install_crypto_provider();
    // A fake MAAS that answers 200 with broken JSON of several kinds.
    let bodies = [
        "",
        "{",
        "[{\"system_id\": 5}]",
        "[{\"hostname\": \"x\"}]",
        "null",
        "\u{0}\u{1}",
        "<html>proxy error</html>",
        "[{\"system_id\":\"a\",\"hostname\":\"b\",\"status\":\"four\"}]",
    ];
    for body in bodies {
        let app = axum::Router::new().fallback(move || async move { ([("content-type", "application/json")], body) });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/MAAS/api/2.0/", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        let c =
            MaasClient::new(&url, ApiKey::parse("aaaaaaaaa:bbbbbbbbb:ccccccccccc").unwrap(), ClientOptions::default())
                .unwrap();
        let e = c.machines_by_mac(&["52:54:00:00:00:01".into()]).await.unwrap_err();
        assert!(matches!(e, MaasError::Decode { .. }), "{body:?}: {e}");
        assert!(e.to_string().contains("MAAS sent an answer homelab cannot read"), "{e}");
        task.abort();
    }
}
