//! The pinned release catalog (`manifests/catalog.yaml`): for each Rook and Strimzi release the
//! files homelab applies (URL + sha256) and the compatibility facts validation relies on.
//!
//! The catalog is embedded in the binary. A user can add releases with a catalog file of the
//! same format (`--catalog FILE`). Replacing a release homelab pins needs `replacesPinned:
//! true` on that entry and is announced on every run. A user catalog is remote-ish input: its
//! versions and paths must be plain relative names (they become directories of the cache and
//! of the air-gapped manifest directory) and its URLs https (http only to a loopback mirror).

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
    /// MicroK8s tracks and their Kubernetes minors (the upgrade ladder's MicroK8s rungs).
    #[serde(default)]
    pub microk8s: Vec<MicroK8sTrack>,
    /// Ceph majors: the builds homelab pins and which majors each upgrades from.
    #[serde(default)]
    pub ceph: Vec<CephRelease>,
    /// CloudNativePG releases (the `database` section).
    #[serde(default)]
    pub cloudnativepg: Vec<CnpgRelease>,
    /// What loading a user catalog changed that the user must hear about (replaced pins).
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// The most homelab reads of a user catalog file.
pub const MAX_CATALOG_BYTES: u64 = 4 << 20;

/// A version or path of a user catalog: plain relative components only, so that joined to
/// the cache or the manifest directory it stays inside it.
pub fn check_relative(s: &str, what: &str) -> Result<(), String> {
    use std::path::Component;
    let p = Path::new(s);
    let plain = !s.is_empty()
        && !s.contains('\\')
        && s.chars().all(|c| !c.is_control())
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(format!("{what} `{s}` must be a plain relative path (no `/` at the start, no `..`, no `.`)"))
    }
}

/// Whether `url` is an http(s) URL whose host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else { return false };
    let host = u.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A download URL: https, or http to a loopback address (a local mirror).
pub fn check_url(url: &str, what: &str) -> Result<(), String> {
    match reqwest::Url::parse(url).map(|u| u.scheme().to_owned()).as_deref() {
        Ok("https") => Ok(()),
        Ok("http") if is_loopback_url(url) => Ok(()),
        Ok("http") => Err(format!(
            "{what} `{url}` uses plain http; homelab downloads over https only (http is accepted for a mirror on this machine, 127.0.0.1 or localhost)"
        )),
        _ => Err(format!("{what} `{url}` is not an https URL")),
    }
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
    /// Set in a user catalog to replace a release homelab pins (never in the embedded one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaces_pinned: bool,
    #[serde(default)]
    pub released: Option<String>,
    pub kubernetes: KubeRange,
    pub ceph_image: String,
    /// The operator image (`kubectl set image` of an upgrade hop); default `rook/ceph:<version>`.
    #[serde(default)]
    pub operator_image: String,
    /// The Ceph versions the operator accepts: the lowest accepted version of each major
    /// (Rook's `supportedVersions`). Empty: not known (nothing is refused).
    #[serde(default)]
    pub ceph: Vec<String>,
    pub kubelet_dir_path: KubeletDirPath,
    pub files: Vec<PinnedFile>,
}

/// A MicroK8s snap track and the Kubernetes minor it runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MicroK8sTrack {
    pub track: String,
    pub kubernetes: String,
}

/// A Ceph major release.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CephRelease {
    pub major: u32,
    pub name: String,
    /// Full build tags homelab pins for this major.
    #[serde(default)]
    pub images: Vec<String>,
    /// The majors Ceph documents an upgrade from.
    #[serde(default)]
    pub upgrades_from: Vec<u32>,
}

/// A version `x.y.z` (Rook `v1.15.9`, Ceph `19.2.3`, an image tag `…:v19.2.2-20250409`, a
/// daemon label `19.2.3-0`), compared numerically.
pub fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let s = s.rsplit(':').next()?.trim().trim_start_matches('v');
    let s = s.split(['-', '+']).next()?;
    let mut it = s.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let c = it.next().map(|c| c.parse().ok()).unwrap_or(Some(0))?;
    Some((a, b, c))
}

/// `19.2.3` of (19, 2, 3).
pub fn fmt_version(v: (u32, u32, u32)) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

impl RookRelease {
    /// (1, 15) of `v1.15.9`.
    pub fn minor(&self) -> Option<(u32, u32)> {
        parse_version(&self.version).map(|v| (v.0, v.1))
    }
    pub fn operator_image(&self) -> String {
        if self.operator_image.is_empty() { format!("rook/ceph:{}", self.version) } else { self.operator_image.clone() }
    }
    /// The Ceph majors this release runs.
    pub fn ceph_majors(&self) -> Vec<u32> {
        self.ceph.iter().filter_map(|c| parse_version(c)).map(|v| v.0).collect()
    }
    /// Whether this operator runs Ceph `v`, with the operator's own refusal text when not
    /// (`pkg/operator/ceph/cluster/version.go`).
    pub fn accepts_ceph(&self, v: (u32, u32, u32)) -> Result<(), String> {
        if self.ceph.is_empty() {
            return Ok(());
        }
        let mins: Vec<(u32, u32, u32)> = self.ceph.iter().filter_map(|c| parse_version(c)).collect();
        let lowest = mins.iter().min().copied().unwrap_or((0, 0, 0));
        if v < lowest {
            return Err(format!("the version does not meet the minimum version \"{}\"", fmt_version(lowest)));
        }
        match mins.iter().find(|m| m.0 == v.0) {
            Some(m) if v >= *m => Ok(()),
            Some(m) => Err(format!("the version does not meet the minimum version \"{}\"", fmt_version(*m))),
            None => {
                Err(format!("allowUnsupported must be set to true to run with this version \"{}\"", fmt_version(v)))
            }
        }
    }
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
    /// Set in a user catalog to replace a release homelab pins (never in the embedded one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaces_pinned: bool,
    #[serde(default)]
    pub released: Option<String>,
    pub kubernetes: KubeRange,
    /// `kafka.strimzi.io/v1beta2` or `kafka.strimzi.io/v1`.
    pub api_version: String,
    pub zookeeper: bool,
    pub kraft: bool,
    /// Migrates a ZooKeeper cluster to KRaft (`strimzi.io/kraft: migration`): 0.40 to 0.45.
    #[serde(default)]
    pub migration: bool,
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
    /// (0, 45, 2) of `0.45.2`.
    pub fn semver(&self) -> (u32, u32, u32) {
        parse_version(&self.version).unwrap_or((0, 0, 0))
    }
    /// Serves `v1` beside `v1beta2` (0.49 to 0.51): where Strimzi resources are converted
    /// and the CRDs' storage version moved before 1.0 stops serving `v1beta2`.
    pub fn serves_v1_and_v1beta2(&self) -> bool {
        !self.v1_api() && self.semver() >= (0, 49, 0)
    }
    /// The operator image of this release.
    pub fn operator_image(&self) -> String {
        format!("quay.io/strimzi/operator:{}", self.version)
    }
    /// Whether Kafka `v` is one this release runs.
    pub fn supports(&self, v: &str) -> bool {
        self.kafka_version(v).is_some()
    }
}

/// A CloudNativePG release: its Kubernetes range, its install manifest, the PostgreSQL
/// image homelab pins for it when the file names none.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CnpgRelease {
    pub version: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaces_pinned: bool,
    #[serde(default)]
    pub released: Option<String>,
    pub kubernetes: KubeRange,
    #[serde(default)]
    pub default_image: Option<String>,
    pub files: Vec<PinnedFile>,
}

impl CnpgRelease {
    pub fn semver(&self) -> (u32, u32, u32) {
        parse_version(&self.version).unwrap_or((0, 0, 0))
    }
}

/// Adds the releases of a user catalog to `mine`: one with the version of a pinned release
/// replaces it only when it says `replacesPinned: true` (noted in `notes`).
fn merge_releases<R>(
    mine: &mut Vec<R>,
    extra: Vec<R>,
    project: &str,
    notes: &mut Vec<String>,
    key: impl Fn(&R) -> (&String, bool),
) -> Result<(), String> {
    for r in extra {
        let (v, replaces) = key(&r);
        let v = v.clone();
        if mine.iter().any(|m| *key(m).0 == v) {
            if !replaces {
                return Err(format!(
                    "{project} {v} is a release homelab pins; to replace it (its files and checksums), set `replacesPinned: true` on that entry, or give your release another version name"
                ));
            }
            notes.push(format!("the user catalog replaces the pinned release {project} {v}"));
            mine.retain(|m| *key(m).0 != v);
        }
        mine.push(r);
    }
    Ok(())
}

impl Catalog {
    /// The embedded catalog. It is part of the binary, so a parse failure is a build defect
    /// caught by the test suite; it is still reported as an error, not a panic.
    pub fn embedded() -> anyhow::Result<Catalog> {
        serde_saphyr::from_str(EMBEDDED).map_err(|e| anyhow::anyhow!("the embedded release catalog is invalid: {e}"))
    }

    /// The embedded catalog with the releases of the user catalog at `path` added.
    pub fn with_overrides(path: Option<&Path>) -> anyhow::Result<Catalog> {
        let mut cat = Catalog::embedded()?;
        if let Some(path) = path {
            let name = format!("catalog file {}", path.display());
            let text = crate::foundation::limits::read_text(path, MAX_CATALOG_BYTES, &name).map_err(|e| {
                anyhow::anyhow!("{e}\nhint: `--catalog` takes a file in the format of manifests/catalog.yaml in the homelab repository")
            })?;
            let extra: Catalog = serde_saphyr::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{name} is invalid: {e}\nhint: it uses the format of manifests/catalog.yaml in the homelab repository"
                )
            })?;
            let problems = extra.problems();
            if !problems.is_empty() {
                anyhow::bail!(
                    "{name} is refused:\n  - {}\n  hint: a release's version and file paths become directories of the cache; URLs must be https",
                    problems.join("\n  - ")
                );
            }
            cat.merge(extra).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        }
        Ok(cat)
    }

    /// Everything wrong with this catalog's names and URLs, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let releases = self
            .rook
            .iter()
            .map(|r| ("rook", &r.version, &r.files))
            .chain(self.strimzi.iter().map(|s| ("strimzi", &s.version, &s.files)))
            .chain(self.cloudnativepg.iter().map(|c| ("cloudnative-pg", &c.version, &c.files)));
        for (project, version, files) in releases {
            if let Err(e) = check_relative(version, &format!("{project} version")) {
                out.push(e);
            }
            for f in files {
                if let Err(e) = check_relative(&f.path, &format!("{project} {version} file path")) {
                    out.push(e);
                }
                if let Err(e) = check_url(&f.url, &format!("{project} {version} {}", f.path)) {
                    out.push(e);
                }
                if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    out.push(format!("{project} {version} {}: sha256 must be 64 hex digits", f.path));
                }
            }
        }
        out
    }

    /// Adds the releases of `extra`. One with the version of a release already here replaces
    /// it only when it says `replacesPinned: true`; each replacement is noted in `notes`.
    pub fn merge(&mut self, extra: Catalog) -> Result<(), String> {
        merge_releases(&mut self.rook, extra.rook, "rook", &mut self.notes, |r| (&r.version, r.replaces_pinned))?;
        merge_releases(&mut self.strimzi, extra.strimzi, "strimzi", &mut self.notes, |r| {
            (&r.version, r.replaces_pinned)
        })?;
        merge_releases(&mut self.cloudnativepg, extra.cloudnativepg, "cloudnative-pg", &mut self.notes, |r| {
            (&r.version, r.replaces_pinned)
        })?;
        for t in extra.microk8s {
            self.microk8s.retain(|x| x.track != t.track);
            self.microk8s.push(t);
        }
        for c in extra.ceph {
            self.ceph.retain(|x| x.major != c.major);
            self.ceph.push(c);
        }
        Ok(())
    }

    pub fn cnpg(&self, version: &str) -> Option<&CnpgRelease> {
        self.cloudnativepg.iter().find(|r| r.version == version)
    }
    /// The CloudNativePG release for Kubernetes `minor`: the newest whose documented range
    /// holds it.
    pub fn cnpg_for(&self, minor: (u32, u32)) -> Option<&CnpgRelease> {
        self.cloudnativepg.iter().filter(|r| r.kubernetes.contains(minor)).max_by_key(|r| r.semver())
    }
    pub fn rook(&self, version: &str) -> Option<&RookRelease> {
        self.rook.iter().find(|r| r.version == version)
    }
    pub fn strimzi(&self, version: &str) -> Option<&StrimziRelease> {
        self.strimzi.iter().find(|r| r.version == version)
    }
    /// The Rook releases in version order.
    /// Every pinned Strimzi release, oldest first.
    pub fn strimzi_ladder(&self) -> Vec<&StrimziRelease> {
        let mut v: Vec<&StrimziRelease> = self.strimzi.iter().filter(|r| parse_version(&r.version).is_some()).collect();
        v.sort_by_key(|r| r.semver());
        v
    }
    pub fn rook_ladder(&self) -> Vec<&RookRelease> {
        let mut v: Vec<&RookRelease> = self.rook.iter().filter(|r| parse_version(&r.version).is_some()).collect();
        v.sort_by_key(|r| parse_version(&r.version));
        v
    }
    /// The newest pinned release of a Rook minor.
    pub fn rook_of_minor(&self, minor: (u32, u32)) -> Option<&RookRelease> {
        self.rook_ladder().into_iter().rev().find(|r| r.minor() == Some(minor))
    }
    /// The Kubernetes minor a MicroK8s track (`1.31` or `1.31/stable`) runs.
    pub fn track_kubernetes(&self, track: &str) -> Option<(u32, u32)> {
        let t = track.split('/').next().unwrap_or(track);
        self.microk8s.iter().find(|m| m.track == t).and_then(|m| parse_minor(&m.kubernetes))
    }
    /// The track that runs Kubernetes `minor`.
    pub fn track_of(&self, minor: (u32, u32)) -> Option<&str> {
        self.microk8s.iter().find(|m| parse_minor(&m.kubernetes) == Some(minor)).map(|m| m.track.as_str())
    }
    pub fn ceph_release(&self, major: u32) -> Option<&CephRelease> {
        self.ceph.iter().find(|c| c.major == major)
    }
    /// Whether Ceph upgrades from major `from` to major `to` in one step, and why not.
    pub fn ceph_step(&self, from: u32, to: u32) -> Result<(), String> {
        let name = |m: u32| self.ceph_release(m).map(|c| format!("{m} ({})", c.name)).unwrap_or_else(|| m.to_string());
        if to < from {
            return Err(format!("Ceph {} to {} is a downgrade, which Ceph does not support", name(from), name(to)));
        }
        if to == from {
            return Ok(());
        }
        let Some(rel) = self.ceph_release(to) else {
            return Err(format!("Ceph {to} is not in the release catalog"));
        };
        if rel.upgrades_from.contains(&from) {
            Ok(())
        } else {
            let list: Vec<String> = rel.upgrades_from.iter().map(|m| name(*m)).collect();
            Err(format!("Ceph {} upgrades only from {}, not from {}", name(to), list.join(" or "), name(from)))
        }
    }
    /// The pinned build of a Ceph major (the newest listed).
    pub fn ceph_image_of(&self, major: u32) -> Option<&str> {
        self.ceph_release(major).and_then(|c| c.images.iter().max_by_key(|i| parse_version(i)).map(String::as_str))
    }
    pub fn ceph_pinned(&self, image: &str) -> bool {
        self.ceph.iter().any(|c| c.images.iter().any(|i| i == image))
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
        assert_eq!(c.rook_versions().len(), 11);
        assert_eq!(c.rook_ladder().first().unwrap().version, "v1.10.10");
        assert_eq!(c.rook_ladder().last().unwrap().version, "v1.20.6");
        assert_eq!(
            c.strimzi_versions(),
            [
                "0.33.1", "0.35.1", "0.37.0", "0.39.0", "0.42.0", "0.44.0", "0.45.2", "0.47.0", "0.49.1", "0.50.1",
                "0.51.0", "1.0.1", "1.1.0", "1.2.0"
            ]
        );
        assert!(c.problems().is_empty(), "{:?}", c.problems());
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
    fn urls_are_https_or_loopback() {
        for ok in [
            "https://example.org/x",
            "http://127.0.0.1:8080/m",
            "http://localhost/m",
            "http://[::1]:80/m",
            "http://u@127.0.0.2/m",
        ] {
            assert!(check_url(ok, "u").is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/m",
            "http://127.0.0.1.evil.org/m",
            "http://localhost.evil.org/m",
            "file:///etc/passwd",
            "ftp://x/y",
            "not a url",
        ] {
            assert!(check_url(bad, "u").is_err(), "{bad}");
        }
    }

    #[test]
    fn ladder_facts() {
        let c = Catalog::embedded().unwrap();
        let minors: Vec<u32> = c.rook_ladder().iter().filter_map(|r| r.minor()).map(|m| m.1).collect();
        assert_eq!(minors, (10..=20).collect::<Vec<_>>(), "one pinned release per minor");
        assert_eq!(c.track_kubernetes("1.31/stable"), Some((1, 31)));
        assert_eq!(c.track_of((1, 27)), Some("1.27"));
        assert!(c.ceph_step(17, 19).is_ok());
        assert!(c.ceph_step(17, 20).unwrap_err().contains("only from 18 (reef) or 19 (squid)"));
        assert!(c.ceph_step(19, 17).unwrap_err().contains("downgrade"));
        let r115 = c.rook_of_minor((1, 15)).unwrap();
        assert_eq!(r115.ceph_majors(), [17, 18, 19]);
        assert!(r115.accepts_ceph((17, 2, 5)).is_ok());
        assert!(r115.accepts_ceph((20, 2, 4)).unwrap_err().starts_with("allowUnsupported must be set"));
        let r116 = c.rook_of_minor((1, 16)).unwrap();
        assert_eq!(
            r116.accepts_ceph((17, 2, 5)).unwrap_err(),
            "the version does not meet the minimum version \"18.2.0\""
        );
        let r120 = c.rook("v1.20.6").unwrap();
        assert!(r120.accepts_ceph((20, 2, 0)).is_err() && r120.accepts_ceph((20, 2, 4)).is_ok());
        assert_eq!(parse_version("quay.io/ceph/ceph:v19.2.2-20250409"), Some((19, 2, 2)));
        assert_eq!(parse_version("19.2.3-0"), Some((19, 2, 3)));
        assert_eq!(c.ceph_image_of(19), Some("quay.io/ceph/ceph:v19.2.6"));
        for r in c.rook_ladder() {
            assert!(c.ceph_pinned(&r.ceph_image), "{} default {}", r.version, r.ceph_image);
            assert!(!r.operator_image.is_empty() && r.operator_image.ends_with(&r.version), "{}", r.version);
            let csi = r.files.iter().any(|f| f.path.ends_with("csi-operator.yaml"));
            assert_eq!(csi, r.minor().unwrap().1 >= 18, "{}", r.version);
        }
    }

    #[test]
    fn minor_parsing() {
        assert_eq!(parse_minor("1.26/stable"), Some((1, 26)));
        assert_eq!(parse_minor("v1.31.2"), Some((1, 31)));
        assert_eq!(parse_minor("latest/stable"), None);
    }
}
