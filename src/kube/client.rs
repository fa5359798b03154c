//! Kubernetes clients from kubeconfig text, and merging a cluster's kubeconfig into the user's.
//! Knows nothing of homelab's clusters: the engine decides which kubeconfig to use.

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A client from kubeconfig text (its current context, or `context`).
pub async fn from_text(text: &str, context: Option<String>) -> anyhow::Result<kube::Client> {
    crate::foundation::tls::install_crypto_provider();
    let kc = Kubeconfig::from_yaml(text).context("the kubeconfig is not valid YAML")?;
    let opts = KubeConfigOptions { context, cluster: None, user: None };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts).await.context("the kubeconfig is unusable")?;
    Ok(kube::Client::try_from(cfg)?)
}

/// Merges `ours` (a kubeconfig with one cluster, user and context named `name`) into
/// `existing`: entries named `name` are replaced, everything else is kept. The current
/// context changes only with `set_current`.
pub fn merge_kubeconfig(existing: &str, ours: &str, name: &str, set_current: bool) -> anyhow::Result<String> {
    use serde_json::{Value, json};
    let mut base: Value = if existing.trim().is_empty() {
        json!({"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [], "contexts": []})
    } else {
        serde_saphyr::from_str(existing).context("your kubeconfig is not valid YAML; homelab leaves it alone")?
    };
    let ours: Value = serde_saphyr::from_str(ours).context("the cluster's kubeconfig is not valid YAML")?;
    anyhow::ensure!(
        base.is_object(),
        "your kubeconfig is not a mapping; homelab leaves it alone (use --to to write elsewhere)"
    );
    for key in ["clusters", "users", "contexts"] {
        let mut list: Vec<Value> = base.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
        list.retain(|e| e["name"] != name);
        list.extend(
            ours.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e["name"] == name),
        );
        base[key] = Value::Array(list);
    }
    if set_current || base.get("current-context").and_then(Value::as_str).is_none_or(str::is_empty) {
        base["current-context"] = json!(name);
    }
    serde_saphyr::to_string(&base).map_err(|e| anyhow::anyhow!("cannot write the kubeconfig: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_entries() {
        let existing = "apiVersion: v1\nkind: Config\ncurrent-context: kind-kind\nclusters:\n- name: kind-kind\n  cluster: {server: https://127.0.0.1:6443}\n- name: homelab-garage\n  cluster: {server: https://old:16443}\nusers:\n- name: kind-kind\n  user: {token: a}\ncontexts:\n- name: kind-kind\n  context: {cluster: kind-kind, user: kind-kind}\n";
        let ours = "apiVersion: v1\nkind: Config\ncurrent-context: homelab-garage\nclusters:\n- name: homelab-garage\n  cluster: {server: https://10.0.0.11:16443}\nusers:\n- name: homelab-garage\n  user: {token: b}\ncontexts:\n- name: homelab-garage\n  context: {cluster: homelab-garage, user: homelab-garage}\n";
        let m = merge_kubeconfig(existing, ours, "homelab-garage", false).unwrap();
        let v: serde_json::Value = serde_saphyr::from_str(&m).unwrap();
        assert_eq!(v["current-context"], "kind-kind");
        assert_eq!(v["clusters"].as_array().unwrap().len(), 2);
        assert!(m.contains("https://10.0.0.11:16443") && !m.contains("https://old:16443"));
        let m = merge_kubeconfig(existing, ours, "homelab-garage", true).unwrap();
        assert!(m.contains("current-context: homelab-garage"));
        assert!(
            merge_kubeconfig("", ours, "homelab-garage", false).unwrap().contains("current-context: homelab-garage")
        );
    }
}
