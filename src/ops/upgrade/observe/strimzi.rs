//! Reads the Strimzi side of the cluster into a [`StrimziView`]: the operator Deployment,
//! the Kafka and its node pools, the broker pods, and the version the Strimzi CRDs store.

use crate::catalog::Catalog;
use crate::engine::context::Ctx;
use crate::kube::apply::Applier;
use crate::ops::upgrade::observed::rolled;
use crate::ops::upgrade::observed::strimzi::{BrokerPod, GROUP, OPERATOR, StrimziView, s};
use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;

/// Reads the Strimzi side of the cluster the file declares.
pub async fn observe(cx: &Ctx, cat: &Catalog, a: &Applier) -> Result<Option<StrimziView>> {
    let Some(k) = &cx.cluster.kafka else { return Ok(None) };
    let mut v = StrimziView::default();
    if let Some(d) = a.get("apps/v1", "Deployment", Some(&k.namespace), OPERATOR).await? {
        let d = serde_json::to_value(d)?;
        let img = s(&d, "/spec/template/spec/containers/0/image").unwrap_or_default();
        v.operator = img.rsplit_once(':').map(|(_, t)| t.to_owned());
        v.operator_rolled =
            serde_json::from_value::<k8s_openapi::api::apps::v1::Deployment>(d).map(|d| rolled(&d)).unwrap_or(false);
    }
    let rel = v.operator.as_deref().and_then(|o| cat.strimzi(o));
    v.api = rel.map(|r| r.api_version.clone()).unwrap_or_else(|| format!("{GROUP}/v1beta2"));
    v.crds_v1 = match rel {
        Some(r) if r.v1_api() => true,
        Some(r) if r.serves_v1_and_v1beta2() => stored_v1(a, "kafkas.kafka.strimzi.io").await?,
        _ => false,
    };
    let sel = format!("strimzi.io/cluster={}", k.name);
    let (kafka, pools, pods) = tokio::join!(
        a.get(&v.api, "Kafka", Some(&k.namespace), &k.name),
        a.list(&v.api, "KafkaNodePool", Some(&k.namespace), Some(&sel)),
        async {
            let api: Api<Pod> = Api::namespaced(cx.kube().await?, &k.namespace);
            api.list(&ListParams::default().labels(&format!("strimzi.io/cluster={},strimzi.io/kind=Kafka", k.name)))
                .await
                .map_err(anyhow::Error::from)
        }
    );
    v.kafka = kafka?.map(serde_json::to_value).transpose()?;
    v.pools = pools?.into_iter().filter_map(|p| serde_json::to_value(p).ok()).collect();
    let broker_prefix = format!("{}-", k.name);
    for p in pods?.items {
        let name = p.metadata.name.clone().unwrap_or_default();
        let labels = p.metadata.labels.clone().unwrap_or_default();
        let controller_only = labels.get("strimzi.io/controller-role").map(String::as_str) == Some("true")
            && labels.get("strimzi.io/broker-role").map(String::as_str) != Some("true");
        if !name.starts_with(&broker_prefix)
            || name.contains("-zookeeper-")
            || name.contains("-entity-operator")
            || controller_only
        {
            continue;
        }
        let image =
            p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default();
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        v.brokers.push(BrokerPod { name, image, ready });
    }
    v.brokers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(v))
}

/// Whether CRD `name` stores only `v1`.
pub async fn stored_v1(a: &Applier, name: &str) -> Result<bool> {
    let crd = a.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name).await?;
    let stored =
        crd.and_then(|c| serde_json::to_value(c).ok()).and_then(|c| c.pointer("/status/storedVersions").cloned());
    Ok(stored == Some(json!(["v1"])))
}
