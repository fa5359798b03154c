//! The pinned release catalog (`manifests/catalog.yaml`): for each Rook and Strimzi release the
//! files homelab applies (URL + sha256) and the compatibility facts validation relies on.
//!
//! The catalog is embedded in the binary. A user can add or override releases with a catalog
//! file of the same format (`--catalog FILE`); entries with the same version replace the
//! embedded ones.

pub mod bundle;

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The catalog shipped inside the binary.
pub const EMBEDDED: &str = include_str!("../../manifests/catalog.yaml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalog {
    pub catalog_version: u32,
    #[serde(default)]
    pub rook: Vec<RookRelease>,
    #[serde(default)]
    pub strimzi: Vec<StrimziRelease>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeRange {
    /// Lowest supported Kubernetes minor, "1.19".
    pub min: String,
    /// Highest supported minor when the project documents one.
    #[serde(default)]
    pub max: Option<String>,
    /// Highest minor the project's own CI tested; above it homelab warns.
    #[serde(default)]
    pub tested: Option<String>,
}

impl KubeRange {
    /// Whether Kubernetes `minor` (e.g. (1, 26)) is inside the documented range.
    pub fn contains(&self, v: (u32, u32)) -> bool {
        let lo = parse_minor(&self.min).unwrap_or((0, 0));
        let hi = self.max.as_deref().and_then(parse_minor).unwrap_or((u32::MAX, u32::MAX));
        v >= lo && v <= hi
    }
    pub fn above_tested(&self, v: (u32, u32)) -> bool {
        self.tested.as_deref().and_then(parse_minor).is_some_and(|t| v > t)
    }
    pub fn describe(&self) -> String {
        match &self.max {
            Some(max) => format!("{} to {}", self.min, max),
            None => format!("{} or later", self.min),
        }
    }
}

/// Parses "1.26" (or "v1.26.3", "1.26/stable") into (1, 26).
pub fn parse_minor(s: &str) -> Option<(u32, u32)> {
    let s = s.trim().trim_start_matches('v');
    let s = s.split('/').next()?;
    let mut it = s.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()?;
    Some((major, minor))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileRole {
    /// Applied unchanged.
    Apply,
    /// Applied after homelab patches it (kubelet path).
    Patch,
    /// Never applied; objects are rendered from it.
    Template,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PinnedFile {
    /// Path inside the upstream repository at the tag.
    pub path: String,
    pub role: FileRole,
    pub bytes: u64,
    pub sha256: String,
    pub url: String,
}

impl PinnedFile {
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletDirPath {
    pub kind: String,
    pub name: String,
    pub field: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RookRelease {
    pub version: String,
    #[serde(default)]
    pub released: Option<String>,
    pub kubernetes: KubeRange,
    pub ceph_image: String,
    pub kubelet_dir_path: KubeletDirPath,
    pub files: Vec<PinnedFile>,
}

impl RookRelease {
    /// True when the MicroK8s kubelet path goes into the ceph-csi `OperatorConfig` (v1.20+).
    pub fn uses_csi_operator(&self) -> bool {
        self.kubelet_dir_path.kind == "OperatorConfig"
    }
    pub fn template(&self, file_name: &str) -> Option<&PinnedFile> {
        self.files.iter().find(|f| f.role == FileRole::Template && f.path.ends_with(file_name))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaVersion {
    pub version: String,
    /// KRaft metadata version (`metadataVersion` in the Kafka CR).
    #[serde(default)]
    pub metadata_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StrimziRelease {
    pub version: String,
    #[serde(default)]
    pub released: Option<String>,
    pub kubernetes: KubeRange,
    /// `kafka.strimzi.io/v1beta2` or `kafka.strimzi.io/v1`.
    pub api_version: String,
    pub zookeeper: bool,
    pub kraft: bool,
    pub node_pools: bool,
    /// Whether Kafka CRs still need `strimzi.io/node-pools` / `strimzi.io/kraft` annotations.
    pub node_pool_annotations: bool,
    pub default_kafka: String,
    pub kafka: Vec<KafkaVersion>,
    pub files: Vec<PinnedFile>,
}

impl StrimziRelease {
    pub fn kafka_version(&self, v: &str) -> Option<&KafkaVersion> {
        self.kafka.iter().find(|k| k.version == v)
    }
    pub fn kafka_versions(&self) -> Vec<&str> {
        self.kafka.iter().map(|k| k.version.as_str()).collect()
    }
    /// The `v1` API (Strimzi 1.0+): no `spec.zookeeper`, replicas/storage live in node pools.
    pub fn v1_api(&self) -> bool {
        self.api_version.ends_with("/v1")
    }
}

impl Catalog {
    /// The embedded catalog. It is part of the binary, so a parse failure is a build defect
    /// caught by the test suite; it is still reported as an error, not a panic.
    pub fn embedded() -> anyhow::Result<Catalog> {
        serde_saphyr::from_str(EMBEDDED).map_err(|e| anyhow::anyhow!("the embedded release catalog is invalid: {e}"))
    }

    /// The embedded catalog with the releases of `extra` added (same version replaces).
    pub fn with_overrides(path: Option<&Path>) -> anyhow::Result<Catalog> {
        let mut cat = Catalog::embedded()?;
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read catalog file {}: {e}", path.display()))?;
            let extra: Catalog = serde_saphyr::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "catalog file {} is invalid: {e}\nhint: it uses the format of manifests/catalog.yaml in the homelab repository",
                    path.display()
                )
            })?;
            cat.merge(extra);
        }
        Ok(cat)
    }

    pub fn merge(&mut self, extra: Catalog) {
        for r in extra.rook {
            self.rook.retain(|x| x.version != r.version);
            self.rook.push(r);
        }
        for s in extra.strimzi {
            self.strimzi.retain(|x| x.version != s.version);
            self.strimzi.push(s);
        }
    }

    pub fn rook(&self, version: &str) -> Option<&RookRelease> {
        self.rook.iter().find(|r| r.version == version)
    }
    pub fn strimzi(&self, version: &str) -> Option<&StrimziRelease> {
        self.strimzi.iter().find(|r| r.version == version)
    }
    pub fn rook_versions(&self) -> Vec<&str> {
        self.rook.iter().map(|r| r.version.as_str()).collect()
    }
    pub fn strimzi_versions(&self) -> Vec<&str> {
        self.strimzi.iter().map(|r| r.version.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_parses_and_has_the_pinned_releases() {
        let c = Catalog::embedded().unwrap();
        assert_eq!(c.rook_versions(), ["v1.10.10", "v1.20.6"]);
        assert_eq!(c.strimzi_versions(), ["0.33.1", "0.45.2", "1.2.0"]);
        let s = c.strimzi("1.2.0").unwrap();
        assert!(s.v1_api() && !s.zookeeper && s.kraft);
        assert_eq!(s.kafka_version("4.3.1").unwrap().metadata_version.as_deref(), Some("4.3-IV0"));
        let r = c.rook("v1.10.10").unwrap();
        assert!(!r.uses_csi_operator());
        assert!(r.kubernetes.contains((1, 26)));
        assert!(r.kubernetes.above_tested((1, 26)));
        assert!(!c.rook("v1.20.6").unwrap().kubernetes.contains((1, 26)));
        for f in c.rook.iter().flat_map(|r| &r.files).chain(c.strimzi.iter().flat_map(|s| &s.files)) {
            assert_eq!(f.sha256.len(), 64, "{}", f.path);
            assert!(f.url.starts_with("https://raw.githubusercontent.com/"), "{}", f.url);
        }
    }

    #[test]
    fn minor_parsing() {
        assert_eq!(parse_minor("1.26/stable"), Some((1, 26)));
        assert_eq!(parse_minor("v1.31.2"), Some((1, 31)));
        assert_eq!(parse_minor("latest/stable"), None);
    }
}
