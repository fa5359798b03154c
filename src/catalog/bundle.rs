//! Pinned manifests: download by URL (or from a mirror or a local directory), verify the
//! sha256 from the catalog, cache under the user's cache directory, and parse the YAML.
//!
//! A cached file is reused when its checksum still matches, so installs work offline once the
//! cache is warm. A checksum mismatch is an error naming the file and both digests; a
//! mismatching file is never cached or applied. Every read stops at the size the catalog
//! gives (a download that runs longer is cut off there), and every path is checked to stay
//! inside the cache or the manifest directory.

use super::PinnedFile;
use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where manifests come from.
#[derive(Debug, Clone, Default)]
pub struct ManifestSource {
    /// Cache directory (default: the user's cache dir).
    pub cache_dir: PathBuf,
    /// Base URL that replaces `https://raw.githubusercontent.com/<owner>/<repo>/<tag>/`:
    /// files are fetched from `<mirror>/<project>/<version>/<path>`.
    pub mirror: Option<String>,
    /// A local directory with the same layout (air-gapped installs).
    pub local_dir: Option<PathBuf>,
}

/// Which release a file belongs to (`rook`/`v1.10.10`, `strimzi`/`0.33.1`).
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub project: &'a str,
    pub version: &'a str,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, thiserror::Error)]
#[error(
    "checksum mismatch for {file} ({source_desc}): expected sha256 {expected}, got {actual}\n  hint: the download was altered or the pinned release changed upstream; homelab applies nothing it cannot verify. If you use a mirror or a local directory, refresh it from the release tag"
)]
pub struct ChecksumMismatch {
    pub file: String,
    pub source_desc: String,
    pub expected: String,
    pub actual: String,
}

/// `root/<project>/<version>/<path>`: the layout of the cache, the mirror and the manifest
/// directory.
fn layout(root: &Path, rel: Release, f: &PinnedFile) -> PathBuf {
    root.join(rel.project).join(rel.version).join(&f.path)
}

/// [`layout`], refused unless every part is a plain relative name so
/// the result stays under `root`.
fn confined(root: &Path, rel: Release, f: &PinnedFile) -> Result<PathBuf> {
    for (part, what) in [(rel.project, "project"), (rel.version, "version"), (f.path.as_str(), "file path")] {
        super::check_relative(part, what)
            .map_err(|e| anyhow!("{e}; homelab reads and writes manifests only inside {}", root.display()))?;
    }
    let p = layout(root, rel, f);
    if !p.starts_with(root) {
        bail!("{} is outside {}", p.display(), root.display());
    }
    Ok(p)
}

fn cache_path(src: &ManifestSource, rel: Release, f: &PinnedFile) -> Result<PathBuf> {
    confined(&src.cache_dir, rel, f)
}

/// The file in the local manifest directory, when one is set.
fn local_path(src: &ManifestSource, rel: Release, f: &PinnedFile) -> Result<Option<PathBuf>> {
    src.local_dir.as_deref().map(|dir| confined(dir, rel, f)).transpose()
}

/// Where a file is read from: the local directory, the mirror, or the pinned URL.
pub fn location(src: &ManifestSource, rel: Release, f: &PinnedFile) -> String {
    if let Some(dir) = &src.local_dir {
        return layout(dir, rel, f).display().to_string();
    }
    if let Some(m) = &src.mirror {
        return format!("{}/{}/{}/{}", m.trim_end_matches('/'), rel.project, rel.version, f.path);
    }
    f.url.clone()
}

fn verify(bytes: &[u8], f: &PinnedFile, source_desc: &str) -> Result<(), ChecksumMismatch> {
    let actual = sha256_hex(bytes);
    if actual != f.sha256 {
        return Err(ChecksumMismatch {
            file: f.path.clone(),
            source_desc: source_desc.to_owned(),
            expected: f.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// The verified bytes of one pinned file.
pub async fn fetch(http: &reqwest::Client, src: &ManifestSource, rel: Release<'_>, f: &PinnedFile) -> Result<Vec<u8>> {
    use crate::foundation::limits::{BodyError, read_body, read_file};
    let cached = cache_path(src, rel, f)?;
    if let Ok(bytes) = read_file(&cached, f.bytes, "the cached manifest")
        && verify(&bytes, f, "cache").is_ok()
    {
        return Ok(bytes);
    }
    let from = location(src, rel, f);
    let bytes = if let Some(p) = local_path(src, rel, f)? {
        read_file(&p, f.bytes, &p.display().to_string()).with_context(|| format!("cannot use {} from the local manifest directory (the catalog pins it at {} bytes)\n  hint: it must hold <project>/<version>/<path>, e.g. rook/{}/{}", p.display(), f.bytes, rel.version, f.path))?
    } else {
        let resp = http.get(&from).send().await.map_err(|e| {
            anyhow!(
                "cannot download {} from {from}: {e}\n  hint: check the network, or use `--mirror URL` / `--manifests-dir DIR` for air-gapped installs (homelab also reuses files already in {})",
                f.file_name(),
                src.cache_dir.display()
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            bail!(
                "downloading {} from {from} answered {status}\n  hint: check the mirror layout (<mirror>/<project>/<version>/<path>)",
                f.file_name()
            );
        }
        // Exactly the pinned size: a longer answer is cut off at it (and fails the checksum).
        match read_body(resp, f.bytes, &from).await {
            Ok(b) => b,
            Err(BodyError::TooLarge { .. }) => bail!(
                "downloading {} from {from}: the answer is longer than the {} bytes the catalog pins; homelab stopped reading\n  hint: the mirror serves another file under this name; refresh it from the release tag",
                f.file_name(),
                f.bytes
            ),
            Err(BodyError::Transport(e)) => return Err(anyhow!(e).context(format!("reading {from}"))),
        }
    };
    verify(&bytes, f, &from)?;
    if let Err(e) = crate::foundation::files::write_atomic(&cached, &bytes, crate::foundation::files::Mode::Keep) {
        tracing::warn!("cannot cache {}: {e}", cached.display());
    }
    Ok(bytes)
}

/// Parses a multi-document manifest into objects: empty and comment-only documents are
/// skipped, `0644`-style modes read as octal (as kubectl does), `kind: List` is expanded.
pub fn parse_manifest(text: &str, name: &str) -> Result<Vec<Value>> {
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, opts).map_err(|e| anyhow!("{name} is not valid YAML: {e}"))?;
    let mut out = Vec::new();
    for (i, d) in docs.into_iter().enumerate() {
        match d {
            Value::Null => continue,
            Value::Object(ref m) if m.is_empty() => continue,
            Value::Object(ref m) => {
                if m.get("kind").and_then(Value::as_str) == Some("List") {
                    out.extend(m.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
                    continue;
                }
                let api = m.get("apiVersion").and_then(Value::as_str).unwrap_or("");
                let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
                let named = m
                    .get("metadata")
                    .and_then(|md| md.get("name"))
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                if api.is_empty() || kind.is_empty() || !named {
                    bail!(
                        "{name}: document {} has no apiVersion, kind or metadata.name; homelab cannot apply it",
                        i + 1
                    );
                }
                out.push(d);
            }
            other => bail!(
                "{name}: document {} is a {}, not a Kubernetes object",
                i + 1,
                if other.is_array() { "list" } else { "scalar" }
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_like_kubectl() {
        let text = "# comment only\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {mode: 0644}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: x}}\n";
        let objs = parse_manifest(text, "t.yaml").unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["data"]["mode"], 420);
        assert_eq!(objs[1]["kind"], "Namespace");
        assert!(parse_manifest("kind: ConfigMap\n", "t").is_err());
        assert!(parse_manifest("- a\n", "t").is_err());
        assert!(parse_manifest("a: [\n", "t").is_err());
    }

    #[test]
    fn sha() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
