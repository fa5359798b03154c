//! Stand-in manifests for `homelab demo` on a machine that cannot download the pinned
//! releases (no network): small files written by homelab, with the same names, kinds,
//! object names and shapes the phases rely on (CRDs, among them the topic, user and bridge
//! ones the applications' part of the kafka phase applies, RBAC, CloudNativePG's webhooks, the operator ConfigMap or
//! OperatorConfig, operator Deployments, the CephCluster and StorageClass templates). They
//! are NOT the upstream files: every one starts with a comment saying so, and the demo says
//! so too. They go through the same download-verify-apply path, with a catalog whose
//! checksums are theirs.

use crate::catalog::bundle::sha256_hex;
use crate::catalog::{Catalog, PinnedFile};
use std::path::Path;

fn crd(group: &str, kind: &str, plural: &str, versions: &[&str], namespaced: bool) -> String {
    let mut s = format!(
        "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.{group}\nspec:\n  group: {group}\n  names:\n    kind: {kind}\n    listKind: {kind}List\n    plural: {plural}\n    singular: {}\n  scope: {}\n  versions:\n",
        kind.to_lowercase(),
        if namespaced { "Namespaced" } else { "Cluster" }
    );
    for (i, v) in versions.iter().enumerate() {
        s.push_str(&format!(
            "  - name: {v}\n    served: true\n    storage: {}\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n    subresources:\n      status: {{}}\n",
            i == 0
        ));
    }
    s
}

fn deployment(ns: &str, name: &str, image: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: {name}\n        image: {image}\n"
    )
}

fn rbac(ns: &str, sa: &str, role: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {sa}\n  namespace: {ns}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {role}\nrules:\n- apiGroups: [\"*\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {role}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\nsubjects:\n- kind: ServiceAccount\n  name: {sa}\n  namespace: {ns}\n"
    )
}

/// The stand-in text for one pinned file, or `None` for files the demo does not need.
/// `kafka`: the Kafka versions a Strimzi release runs (its Deployment lists them in
/// `STRIMZI_KAFKA_IMAGES`, which the simulated operator reads as the real one does).
pub fn standin(project: &str, version: &str, path: &str, kafka: &[String]) -> Option<String> {
    let head = format!(
        "# homelab demo stand-in for {project} {version} {path}; NOT the upstream file (the demo could not download it).\n"
    );
    let v120 = version.starts_with("v1.2");
    let body = match (project, path.rsplit('/').next().unwrap_or(path)) {
        ("rook", "crds.yaml") => crd("ceph.rook.io", "CephCluster", "cephclusters", &["v1"], true) + &crd("ceph.rook.io", "CephBlockPool", "cephblockpools", &["v1"], true),
        ("rook", "common.yaml") => "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: rook-ceph\n".to_owned() + &rbac("rook-ceph", "rook-ceph-operator", "rook-ceph-global"),
        ("rook", "csi-operator.yaml") => {
            crd("csi.ceph.io", "OperatorConfig", "operatorconfigs", &["v1"], true)
                + &crd("csi.ceph.io", "Driver", "drivers", &["v1"], true)
                + &rbac("rook-ceph", "ceph-csi-controller-manager", "ceph-csi-controller-manager")
                + &deployment("rook-ceph", "ceph-csi-controller-manager", "quay.io/cephcsi/ceph-csi-operator:stand-in")
        }
        ("rook", "operator.yaml") => {
            let cfg = if v120 {
                "---\napiVersion: csi.ceph.io/v1\nkind: OperatorConfig\nmetadata:\n  name: ceph-csi-operator-config\n  namespace: rook-ceph\nspec:\n  driverSpecDefaults:\n    nodePlugin:\n      kubeletDirPath: /var/lib/kubelet\n".to_owned()
            } else {
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rook-ceph-operator-config\n  namespace: rook-ceph\ndata:\n  ROOK_LOG_LEVEL: INFO\n".to_owned()
            };
            // The release's own tag: `up` reads the operator's version from its image.
            cfg + &deployment("rook-ceph", "rook-ceph-operator", &format!("rook/ceph:{version}"))
        }
        ("rook", "cluster.yaml") => format!(
            "---\napiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata:\n  name: rook-ceph\n  namespace: rook-ceph\nspec:\n  cephVersion:\n    image: {}\n  dataDirHostPath: /var/lib/rook\n  mon:\n    count: 3\n    allowMultiplePerNode: false\n  mgr:\n    count: 2\n  dashboard:\n    enabled: true\n  storage:\n    useAllNodes: true\n    useAllDevices: true\n",
            if v120 { "quay.io/ceph/ceph:v20.2.4" } else { "quay.io/ceph/ceph:v17.2.5" }
        ),
        ("rook", "storageclass.yaml") => "---\napiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata:\n  name: replicapool\n  namespace: rook-ceph\nspec:\n  failureDomain: host\n  replicated:\n    size: 3\n    requireSafeReplicaSize: true\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: rook-ceph-block\nprovisioner: rook-ceph.rbd.csi.ceph.com\nparameters:\n  clusterID: rook-ceph\n  pool: replicapool\n  imageFormat: \"2\"\n  imageFeatures: layering\n  csi.storage.k8s.io/provisioner-secret-name: rook-csi-rbd-provisioner\n  csi.storage.k8s.io/provisioner-secret-namespace: rook-ceph\n  csi.storage.k8s.io/node-stage-secret-name: rook-csi-rbd-node\n  csi.storage.k8s.io/node-stage-secret-namespace: rook-ceph\n  csi.storage.k8s.io/fstype: ext4\nallowVolumeExpansion: true\nreclaimPolicy: Delete\n".to_owned(),
        ("rook", "toolbox.yaml") => deployment("rook-ceph", "rook-ceph-tools", "quay.io/ceph/ceph:stand-in"),
        ("rook", "osd-purge.yaml") => "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: rook-ceph-purge-osd\n  namespace: rook-ceph\n  labels:\n    app: rook-ceph-purge-osd\nspec:\n  template:\n    metadata:\n      labels:\n        app: rook-ceph-purge-osd\n    spec:\n      serviceAccountName: rook-ceph-purge-osd\n      containers:\n        - name: osd-removal\n          image: rook/ceph:stand-in\n          args: [\"ceph\", \"osd\", \"remove\", \"--preserve-pvc\", \"false\", \"--force-osd-removal\", \"false\", \"--osd-ids\", \"<OSD-IDs>\"]\n      restartPolicy: Never\n".to_owned(),
        ("strimzi", name) if name.starts_with("010-") => "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: strimzi-cluster-operator\n".to_owned(),
        ("strimzi", name) if name.starts_with("020-ClusterRole") => "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: strimzi-cluster-operator-namespaced\nrules:\n- apiGroups: [\"*\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n".to_owned(),
        ("strimzi", name) if name.starts_with("020-RoleBinding") => "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: strimzi-cluster-operator\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: strimzi-cluster-operator-namespaced\nsubjects:\n- kind: ServiceAccount\n  name: strimzi-cluster-operator\n  namespace: myproject\n".to_owned(),
        ("strimzi", name) if name.starts_with("021-ClusterRoleBinding") => "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: strimzi-cluster-operator\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: strimzi-cluster-operator-namespaced\nsubjects:\n- kind: ServiceAccount\n  name: strimzi-cluster-operator\n  namespace: myproject\n".to_owned(),
        ("strimzi", name) if name.starts_with("040-Crd-kafka.") => crd("kafka.strimzi.io", "Kafka", "kafkas", &[if version.starts_with("1.") { "v1" } else { "v1beta2" }], true),
        ("strimzi", name) if name.contains("Crd-kafkanodepool") => crd("kafka.strimzi.io", "KafkaNodePool", "kafkanodepools", &[if version.starts_with("1.") { "v1" } else { "v1beta2" }], true),
        ("strimzi", name) if name.contains("Crd-kafkatopic") => crd("kafka.strimzi.io", "KafkaTopic", "kafkatopics", &[if version.starts_with("1.") { "v1" } else { "v1beta2" }], true),
        ("strimzi", name) if name.contains("Crd-kafkauser") => crd("kafka.strimzi.io", "KafkaUser", "kafkausers", &[if version.starts_with("1.") { "v1" } else { "v1beta2" }], true),
        ("strimzi", name) if name.contains("Crd-kafkabridge") => crd("kafka.strimzi.io", "KafkaBridge", "kafkabridges", &[if version.starts_with("1.") { "v1" } else { "v1beta2" }], true),
        ("strimzi", name) if name.starts_with("060-") => {
            let images: String =
                kafka.iter().map(|k| format!("            {k}=quay.io/strimzi/kafka:{version}-kafka-{k}\n")).collect();
            deployment("default", "strimzi-cluster-operator", &format!("quay.io/strimzi/operator:{version}"))
                .replace("  namespace: default\n", "")
                + &format!("        env:\n        - name: STRIMZI_KAFKA_IMAGES\n          value: |\n{images}")
        }
        ("strimzi", _) => String::new(),
        ("cloudnative-pg", name) if name.starts_with("cnpg-") => {
            let tag = version.trim_start_matches('v');
            let webhooks = |kind: &str, prefix: &str| {
                format!(
                    "---\napiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: cnpg-{}-webhook-configuration\nwebhooks:\n- admissionReviewVersions: [v1]\n  clientConfig:\n    service:\n      name: cnpg-webhook-service\n      namespace: cnpg-system\n      path: /{prefix}-postgresql-cnpg-io-v1-cluster\n  failurePolicy: Fail\n  name: {}cluster.cnpg.io\n  rules:\n  - apiGroups: [postgresql.cnpg.io]\n    apiVersions: [v1]\n    operations: [CREATE, UPDATE]\n    resources: [clusters]\n  sideEffects: None\n",
                    if kind.starts_with("Mutating") { "mutating" } else { "validating" },
                    &prefix[..1]
                )
            };
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: cnpg-system\n".to_owned()
                + &crd("postgresql.cnpg.io", "Cluster", "clusters", &["v1"], true)
                + &rbac("cnpg-system", "cnpg-manager", "cnpg-manager")
                + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: cnpg-webhook-service\n  namespace: cnpg-system\nspec:\n  ports:\n  - port: 443\n    targetPort: 9443\n  selector:\n    app: cnpg-controller-manager\n"
                + &deployment("cnpg-system", "cnpg-controller-manager", &format!("ghcr.io/cloudnative-pg/cloudnative-pg:{tag}"))
                + &webhooks("MutatingWebhookConfiguration", "mutate")
                + &webhooks("ValidatingWebhookConfiguration", "validate")
        }
        _ => return None,
    };
    Some(head + &body)
}

/// Writes the stand-ins for every release of `catalog` under `dir` (mirror layout) and
/// returns the catalog with their checksums.
pub fn write_all(catalog: &Catalog, dir: &Path) -> anyhow::Result<Catalog> {
    let mut cat = catalog.clone();
    let fix = |project: &str, version: &str, kafka: &[String], files: &mut Vec<PinnedFile>| -> anyhow::Result<()> {
        for f in files.iter_mut() {
            let text = standin(project, version, &f.path, kafka)
                .unwrap_or_else(|| format!("# homelab demo stand-in for {project} {version} {}; empty\n", f.path));
            let p = dir.join(project).join(version).join(&f.path);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(&p, &text)?;
            f.sha256 = sha256_hex(text.as_bytes());
            f.bytes = text.len() as u64;
        }
        Ok(())
    };
    for r in &mut cat.rook {
        let v = r.version.clone();
        fix("rook", &v, &[], &mut r.files)?;
        // The stand-in operator runs `rook/ceph:<version>`, the default of an empty entry.
        r.operator_image.clear();
    }
    for s in &mut cat.strimzi {
        let v = s.version.clone();
        let kafka: Vec<String> = s.kafka.iter().map(|k| k.version.clone()).collect();
        fix("strimzi", &v, &kafka, &mut s.files)?;
    }
    for c in &mut cat.cloudnativepg {
        let v = c.version.clone();
        fix("cloudnative-pg", &v, &[], &mut c.files)?;
    }
    Ok(cat)
}
