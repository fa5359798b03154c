//! Validation: every problem of a `cluster.yaml` at once, each with line, column, field path
//! and a hint, before anything is touched.
//!
//! 1. read the bytes (UTF-8, size);
//! 2. parse YAML with positions;
//! 3. refuse inline secrets;
//! 4. check the shape against the generated JSON Schema (all errors, "did you mean");
//! 5. deserialize the typed model;
//! 6. semantic rules and version compatibility from the release catalog;
//! 7. resolve into [`Cluster`].

use super::diag::{Diagnostic, Report};
use super::model::{self, ClusterFile, Distribution, MetadataMode, Role};
use super::resolved::*;
use super::schema;
use super::size::{parse_bytes, parse_quantity};
use super::tree::{self, Located, Pos, display_path, escape};
use crate::addons::catalog::{Catalog, parse_minor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Files larger than this are refused before parsing: a cluster.yaml is a few kilobytes.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The outcome of validating a file: the resolved cluster when there are no errors, and every
/// finding (errors and warnings) either way.
pub struct Validated {
    pub cluster: Option<Cluster>,
    pub report: Report,
    /// The source text, for rendering snippets (absent when it was not UTF-8).
    pub source: Option<String>,
}

impl Validated {
    pub fn render(&self) -> String {
        self.report.render(self.source.as_deref())
    }
}

/// Validates a file on disk.
pub fn validate_file(path: &Path, catalog: &Catalog) -> Validated {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut v = validate_bytes(&bytes, &file, catalog);
            if let Some(c) = v.cluster.as_mut() {
                c.source = Some(path.to_path_buf());
            }
            v
        }
        Err(e) => {
            let mut report = Report { file: file.clone(), diagnostics: vec![] };
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "create one from examples/ (e.g. `cp examples/seed-2023.yaml cluster.yaml`) or draft one from MAAS with `homelab init`"
            } else {
                "check the path and its permissions"
            };
            report.push(Diagnostic::error("(file)", Pos::default(), format!("cannot read {file}: {e}")).hint(hint));
            Validated { cluster: None, report, source: None }
        }
    }
}

pub fn validate_bytes(bytes: &[u8], file: &str, catalog: &Catalog) -> Validated {
    let mut report = Report { file: file.to_owned(), diagnostics: vec![] };
    let top = Pos::default();
    if bytes.len() > MAX_FILE_BYTES {
        report.push(
            Diagnostic::error(
                "(file)",
                top,
                format!("the file is {} bytes; homelab reads at most {MAX_FILE_BYTES}", bytes.len()),
            )
            .hint("a cluster.yaml is a few kilobytes: check that this is the right file"),
        );
        return Validated { cluster: None, report, source: None };
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let upto = &bytes[..e.valid_up_to()];
            let line = upto.iter().filter(|b| **b == b'\n').count() as u32 + 1;
            let column = (upto.len() - upto.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)) as u32 + 1;
            report.push(
                Diagnostic::error(
                    "(file)",
                    Pos { line, column },
                    format!("the file is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()),
                )
                .hint("save it as UTF-8; YAML files must be Unicode text"),
            );
            return Validated { cluster: None, report, source: None };
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let cluster = validate_text(text, catalog, &mut report);
    report.finish();
    let cluster = if report.has_errors() { None } else { cluster };
    Validated { cluster, report, source: Some(text.to_owned()) }
}

fn validate_text(text: &str, catalog: &Catalog, report: &mut Report) -> Option<Cluster> {
    if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        report.push(
            Diagnostic::error("(file)", Pos { line: 1, column: 1 }, "the file is empty")
                .hint("start from one of the files in examples/, or run `homelab init` to draft one from MAAS"),
        );
        return None;
    }
    let located = match tree::parse(text) {
        Ok(l) => l,
        Err(e) => {
            report.push(
                Diagnostic::error(
                    "(yaml)",
                    e.pos.unwrap_or(Pos { line: 1, column: 1 }),
                    format!("invalid YAML: {}", e.message),
                )
                .hint("fix the YAML syntax; indentation uses spaces and `key: value` needs the space after the colon"),
            );
            return None;
        }
    };
    for (path, pos) in &located.odd_keys {
        report.push(
            Diagnostic::error(display_path(path), *pos, "mapping keys must be plain strings")
                .hint("write the key as a word, e.g. `name:`"),
        );
    }
    if !located.value.is_object() {
        report.push(
            Diagnostic::error(
                "(top level)",
                located.pos("").value,
                format!("expected a mapping with apiVersion, kind, metadata, …; found {}", kind_of(&located.value)),
            )
            .hint("start from one of the files in examples/"),
        );
        return None;
    }
    let secrets_found = check_secrets(&located, report);
    let root_schema = schema::schema_value();
    let mut unknown = Vec::new();
    let shape_ok = check_schema(&root_schema, &located, &secrets_found, &mut unknown, report);
    // Unknown fields and malformed strings do not stop the semantic rules: drop the unknown
    // fields and go on, so one run reports every problem.
    let mut value = located.value.clone();
    for ptr in unknown.iter().chain(secrets_found.iter()) {
        remove_pointer(&mut value, ptr);
    }
    let file: ClusterFile = match serde_json::from_value(value) {
        Ok(f) => f,
        Err(e) => {
            if shape_ok {
                report.push(Diagnostic::error(
                    "(top level)",
                    Pos { line: 1, column: 1 },
                    format!("cannot read the file: {e}"),
                ));
            }
            return None;
        }
    };
    if !secrets_found.is_empty() {
        return None;
    }
    Semantic { file: &file, loc: &located, catalog, report }.run()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

// ---------------------------------------------------------------------------------------------
// Inline secrets

/// Field names that would hold a secret inline.
const SECRET_KEYS: &[&str] = &[
    "apikey",
    "api_key",
    "key",
    "password",
    "passwd",
    "passphrase",
    "token",
    "secret",
    "privatekey",
    "private_key",
    "clientkey",
    "clientkeydata",
    "client-key-data",
    "bearertoken",
    "sshkey",
];

/// Looks like a MAAS API key: three colon-separated alphanumeric parts.
pub fn looks_like_maas_key(s: &str) -> bool {
    let parts: Vec<&str> = s.trim().split(':').collect();
    parts.len() == 3 && parts.iter().all(|p| p.len() >= 8 && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn looks_like_secret_value(s: &str) -> Option<&'static str> {
    if looks_like_maas_key(s) {
        return Some("a MAAS API key");
    }
    if s.contains("-----BEGIN") && s.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if s.starts_with("eyJ") && s.matches('.').count() == 2 && s.len() > 40 {
        return Some("a bearer token");
    }
    None
}

fn check_secrets(loc: &Located, report: &mut Report) -> Vec<String> {
    let mut found = Vec::new();
    walk(&loc.value, String::new(), &mut |path, key, v| {
        let in_sections = ["/maas", "/ssh", "/kubernetes", "/metadata"].iter().any(|s| path.starts_with(s));
        let key_l = key.to_ascii_lowercase();
        let kafka_password =
            path.starts_with("/kafka") && (key_l.ends_with(".password") || key_l.ends_with("password"));
        if (in_sections && SECRET_KEYS.contains(&key_l.as_str())) || kafka_password {
            found.push(path.to_owned());
            let hint = if path.starts_with("/maas") {
                "put the key in a file with mode 0600 and set `maas.apiKeyFile`, or export MAAS_API_KEY"
            } else if path.starts_with("/kafka") {
                "keep passwords in a Kubernetes Secret and reference it from the Strimzi configuration"
            } else {
                "keep secrets in files (identityFile, kubeconfig) or the SSH agent, never in cluster.yaml"
            };
            report.push(
                Diagnostic::error(display_path(path), loc.key_pos(path), format!("inline secret `{key}` is refused"))
                    .hint(hint)
                    .secret(),
            );
            return;
        }
        if let Value::String(s) = v
            && let Some(what) = looks_like_secret_value(s)
        {
            found.push(path.to_owned());
            report.push(
                Diagnostic::error(
                    display_path(path),
                    loc.pos(path).value,
                    format!("this value looks like {what}; inline secrets are refused"),
                )
                .hint("reference a file instead (maas.apiKeyFile, ssh.identityFile) or use MAAS_API_KEY")
                .secret(),
            );
        }
    });
    found
}

fn walk(v: &Value, path: String, f: &mut dyn FnMut(&str, &str, &Value)) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{path}/{}", escape(k));
                f(&p, k, child);
                walk(child, p, f);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{path}/{i}");
                f(&p, "", child);
                walk(child, p, f);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Shape (JSON Schema)

fn remove_pointer(v: &mut Value, ptr: &str) {
    let Some((parent, last)) = ptr.rsplit_once('/') else { return };
    let key = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = v.pointer_mut(parent) {
        m.remove(&key);
    }
}

fn check_schema(
    root: &Value,
    loc: &Located,
    secrets: &[String],
    unknown: &mut Vec<String>,
    report: &mut Report,
) -> bool {
    let validator = match jsonschema::draft202012::new(root) {
        Ok(v) => v,
        Err(e) => {
            report.push(Diagnostic::error(
                "(schema)",
                Pos::default(),
                format!("internal error: the generated schema is invalid: {e}"),
            ));
            return false;
        }
    };
    let mut ok = true;
    for err in validator.iter_errors(&loc.value) {
        let ptr = err.instance_path().as_str().to_owned();
        // Errors inside a field already refused as a secret add nothing.
        if secrets.iter().any(|s| ptr.starts_with(s.as_str())) {
            continue;
        }
        ok = false;
        use jsonschema::error::ValidationErrorKind as K;
        match err.kind() {
            K::AdditionalProperties { unexpected } => {
                let allowed = schema::allowed_properties(root, &ptr);
                for name in unexpected {
                    let p = format!("{ptr}/{}", escape(name));
                    if secrets.contains(&p) {
                        continue;
                    }
                    unknown.push(p.clone());
                    let mut d = Diagnostic::error(display_path(&p), loc.key_pos(&p), format!("unknown field `{name}`"));
                    d = match did_you_mean(name, allowed.iter().map(String::as_str)) {
                        Some(s) => d.hint(format!("did you mean `{s}`?")),
                        None if !allowed.is_empty() => d.hint(format!("fields allowed here: {}", allowed.join(", "))),
                        None => d,
                    };
                    report.push(d);
                }
            }
            K::Required { property } => {
                let name = property.as_str().unwrap_or("?");
                let p = format!("{ptr}/{}", escape(name));
                report.push(
                    Diagnostic::error(display_path(&p), loc.key_pos(&ptr), format!("missing field `{name}`"))
                        .hint(required_hint(&ptr, name)),
                );
            }
            K::Type { kind } => {
                let actual = loc.exact(&ptr).map(|_| kind_of(err.instance())).unwrap_or("nothing");
                let expected = match kind {
                    jsonschema::error::TypeKind::Single(t) => t.to_string(),
                    jsonschema::error::TypeKind::Multiple(set) => format!("{set:?}"),
                };
                let mut d = Diagnostic::error(
                    display_path(&ptr),
                    loc.pos(&ptr).value,
                    format!("expected {}, found {actual}", article(&expected)),
                );
                if expected.contains("string") && err.instance().is_number() {
                    d = d.hint(format!("quote it: \"{}\" (YAML reads unquoted 3.3 as a number)", err.instance()));
                } else if err.instance().is_null() {
                    d = d.hint("give it a value or remove the line");
                }
                report.push(d);
            }
            K::Enum { options } => {
                let got = err.instance();
                let choices: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(|o| o.as_str().map(str::to_owned).unwrap_or_else(|| o.to_string())).collect())
                    .unwrap_or_default();
                let got_s = got.as_str().map(str::to_owned).unwrap_or_else(|| got.to_string());
                let mut d = Diagnostic::error(
                    display_path(&ptr),
                    loc.pos(&ptr).value,
                    format!("`{got_s}` is not one of: {}", choices.join(", ")),
                );
                if let Some(s) = did_you_mean(&got_s, choices.iter().map(String::as_str)) {
                    d = d.hint(format!("did you mean `{s}`?"));
                }
                report.push(d);
            }
            K::OneOfNotValid { .. } | K::AnyOf { .. } if !enum_choices(root, &ptr).is_empty() => {
                let choices = enum_choices(root, &ptr);
                let got = err.instance();
                let got_s = got.as_str().map(str::to_owned).unwrap_or_else(|| got.to_string());
                let mut d = Diagnostic::error(
                    display_path(&ptr),
                    loc.pos(&ptr).value,
                    format!("`{got_s}` is not one of: {}", choices.join(", ")),
                );
                if let Some(s) = did_you_mean(&got_s, choices.iter().map(String::as_str)) {
                    d = d.hint(format!("did you mean `{s}`?"));
                }
                report.push(d);
            }
            K::Pattern { .. } => {
                let (msg, hint) = pattern_message(&ptr, err.instance());
                report.push(Diagnostic::error(display_path(&ptr), loc.pos(&ptr).value, msg).hint(hint));
            }
            K::Minimum { limit } | K::ExclusiveMinimum { limit } => {
                report.push(Diagnostic::error(
                    display_path(&ptr),
                    loc.pos(&ptr).value,
                    format!("{} is too small; the minimum is {limit}", err.instance()),
                ));
            }
            K::Maximum { limit } | K::ExclusiveMaximum { limit } => {
                report.push(Diagnostic::error(
                    display_path(&ptr),
                    loc.pos(&ptr).value,
                    format!("{} is too large; the maximum is {limit}", err.instance()),
                ));
            }
            _ => {
                report.push(Diagnostic::error(display_path(&ptr), loc.pos(&ptr).value, err.to_string()));
            }
        }
    }
    ok
}

/// The allowed values of an enum-like schema (`enum`, or `oneOf` of `const`s).
fn enum_choices(root: &Value, ptr: &str) -> Vec<String> {
    let Some(s) = schema::schema_at(root, ptr) else { return vec![] };
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    }
    let alts = s.get("oneOf").or_else(|| s.get("anyOf")).and_then(Value::as_array);
    let Some(alts) = alts else { return vec![] };
    let mut out = Vec::new();
    for a in alts {
        let a = schema::deref(root, a);
        if let Some(c) = a.get("const").and_then(Value::as_str) {
            out.push(c.to_owned());
        } else if let Some(e) = a.get("enum").and_then(Value::as_array) {
            out.extend(e.iter().filter_map(|v| v.as_str().map(str::to_owned)));
        } else {
            return vec![];
        }
    }
    out
}

fn article(kind: &str) -> String {
    match kind {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "a whole number".into(),
        "string" => "a string".into(),
        "boolean" => "true or false".into(),
        "number" => "a number".into(),
        other => other.into(),
    }
}

fn required_hint(parent: &str, name: &str) -> String {
    match (parent, name) {
        ("", "apiVersion") => "the file starts with `apiVersion: homelab/v1alpha1` and `kind: Cluster`".into(),
        ("", "kubernetes") => {
            "add `kubernetes: {distribution: microk8s, channel: 1.26/stable}` (or `distribution: existing`)".into()
        }
        ("", "metadata") => "add `metadata: {name: garage}`".into(),
        (_, "hostname") => "every machine needs a hostname: `- {hostname: kvm4, mac: \"52:54:00:00:00:02\"}`".into(),
        (_, "replicas") => "say how many: `replicas: 3`".into(),
        _ => format!("add `{name}:` here"),
    }
}

fn pattern_message(ptr: &str, v: &Value) -> (String, String) {
    let field = ptr.rsplit('/').next().unwrap_or("");
    let shown = v.as_str().map(|s| format!("\"{s}\"")).unwrap_or_else(|| v.to_string());
    match field {
        "hostname" => (
            format!("{shown} is not a valid hostname"),
            "hostnames must be lowercase RFC 1123 labels: a-z, 0-9 and '-', at most 63 characters, starting and ending with a letter or digit (MicroK8s lowercases node names)".into(),
        ),
        "mac" => (
            format!("{shown} is not a MAC address"),
            "write it as six hex pairs separated by colons, e.g. \"52:54:00:12:34:56\"".into(),
        ),
        "rootSize" => (
            format!("{shown} is not a size"),
            "use bytes or an SI size as MAAS counts it: 100G (100·10⁹ bytes), 512M, 1T; or 93Gi".into(),
        ),
        "ceph" => (
            format!("{shown} is not `rest`, `none` or a size"),
            "use `rest` (all space left after the root volume), `none`, or a size like 200G".into(),
        ),
        "size" => (
            format!("{shown} is not a Kubernetes quantity"),
            "use a quantity like 100Gi or 500Mi".into(),
        ),
        "url" => (
            format!("{shown} is not an http(s) URL"),
            "e.g. http://10.0.0.1:5240/MAAS".into(),
        ),
        "device" => (format!("{shown} is not a device path"), "e.g. /dev/sdb".into()),
        "name" | "namespace" => (
            format!("{shown} is not a valid name"),
            "names are lowercase RFC 1123 labels: a-z, 0-9 and '-', starting and ending with a letter or digit".into(),
        ),
        _ => (format!("{shown} has the wrong format"), "see `homelab schema` for the expected format".into()),
    }
}

/// The closest candidate, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(got: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let g = got.to_ascii_lowercase();
    candidates
        .map(|c| (c, strsim::jaro_winkler(&g, &c.to_ascii_lowercase())))
        .filter(|(_, s)| *s >= 0.82)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

// ---------------------------------------------------------------------------------------------
// Semantic rules

struct Semantic<'a> {
    file: &'a ClusterFile,
    loc: &'a Located,
    catalog: &'a Catalog,
    report: &'a mut Report,
}

impl Semantic<'_> {
    fn err(&mut self, ptr: &str, msg: impl Into<String>, hint: impl Into<String>) {
        self.report.push(Diagnostic::error(display_path(ptr), self.loc.pos(ptr).value, msg).hint(hint));
    }
    fn err_key(&mut self, ptr: &str, msg: impl Into<String>, hint: impl Into<String>) {
        self.report.push(Diagnostic::error(display_path(ptr), self.loc.key_pos(ptr), msg).hint(hint));
    }
    fn warn(&mut self, ptr: &str, msg: impl Into<String>, hint: impl Into<String>) {
        self.report.push(Diagnostic::warning(display_path(ptr), self.loc.pos(ptr).value, msg).hint(hint));
    }

    fn run(self) -> Option<Cluster> {
        let mut this = self;
        this.run_inner()
    }

    fn run_inner(&mut self) -> Option<Cluster> {
        let f = self.file;
        let errors_before = self.report.errors();
        let kubernetes = self.kubernetes();
        let maas = self.maas(kubernetes.as_ref());
        let ssh = self.ssh();
        let machines = self.machines(kubernetes.as_ref());
        let rook = self.rook(&machines, kubernetes.as_ref());
        let kafka = self.kafka(rook.as_ref(), kubernetes.as_ref());
        let timeouts = self.timeouts();
        if self.report.errors() > errors_before {
            return None;
        }
        Some(Cluster {
            name: f.metadata.name.clone(),
            source: None,
            maas,
            ssh,
            machines,
            kubernetes: kubernetes?,
            rook,
            kafka,
            timeouts,
        })
    }

    fn kubernetes(&mut self) -> Option<Kubernetes> {
        let k = &self.file.kubernetes;
        match k.distribution {
            Distribution::Microk8s => {
                for (field, set) in [("kubeconfig", k.kubeconfig.is_some()), ("context", k.context.is_some())] {
                    if set {
                        self.err_key(
                            &format!("/kubernetes/{field}"),
                            format!("`{field}` is only used with `distribution: existing`"),
                            "remove it; homelab fetches the kubeconfig from MicroK8s itself",
                        );
                    }
                }
                let Some(channel) = k.channel.clone() else {
                    self.err_key(
                        "/kubernetes",
                        "`distribution: microk8s` needs a `channel`",
                        "pin a track, e.g. `channel: 1.26/stable`",
                    );
                    return None;
                };
                let track = channel.split('/').next().unwrap_or("");
                if track.ends_with("-strict") {
                    self.err(
                        "/kubernetes/channel",
                        format!("`{channel}` is a strictly confined MicroK8s track"),
                        "homelab installs the classic snap (`--classic`); use e.g. `1.32/stable`",
                    );
                    return None;
                }
                let risk = channel.split('/').nth(1).unwrap_or("stable");
                if !["stable", "candidate", "beta", "edge"].contains(&risk) {
                    self.err(
                        "/kubernetes/channel",
                        format!("`{risk}` is not a snap risk level"),
                        "channels look like `<track>/<risk>`: 1.26/stable, 1.33/candidate",
                    );
                    return None;
                }
                let Some(minor) = parse_minor(track).filter(|m| m.0 == 1) else {
                    self.err("/kubernetes/channel", format!("`{channel}` does not pin a Kubernetes track"), "use a track such as `1.26/stable`; `latest/stable` is not the newest release and moves under you");
                    return None;
                };
                let channel = if channel.contains('/') { channel } else { format!("{channel}/stable") };
                let addons = k.addons.clone().unwrap_or_else(|| vec!["dns".to_owned()]);
                for (i, a) in addons.iter().enumerate() {
                    let p = format!("/kubernetes/addons/{i}");
                    if a == "rook-ceph" {
                        self.err(
                            &p,
                            "the `rook-ceph` add-on would install a second Rook operator",
                            "remove it; the `rook:` section installs and configures Rook",
                        );
                    } else if a == "hostpath-storage" || a == "storage" {
                        self.warn(&p, "hostpath storage is single-node only and may become the default StorageClass", "Kafka's storage class is set explicitly, but prefer Rook's rook-ceph-block on a multi-node cluster");
                    }
                }
                Some(Kubernetes::Microk8s { channel, minor, addons })
            }
            Distribution::Existing => {
                for (field, set) in [("channel", k.channel.is_some()), ("addons", k.addons.is_some())] {
                    if set {
                        self.err_key(
                            &format!("/kubernetes/{field}"),
                            format!("`{field}` is only used with `distribution: microk8s`"),
                            "remove it; homelab does not install Kubernetes on an existing cluster",
                        );
                    }
                }
                Some(Kubernetes::Existing {
                    kubeconfig: k.kubeconfig.as_deref().map(expand),
                    context: k.context.clone(),
                })
            }
        }
    }

    fn maas(&mut self, k: Option<&Kubernetes>) -> Option<Maas> {
        let microk8s = k.is_some_and(Kubernetes::is_microk8s);
        match (&self.file.maas, microk8s) {
            (None, true) => {
                self.err_key(
                    "/kubernetes/distribution",
                    "`distribution: microk8s` needs a `maas:` section",
                    "add `maas: {url: http://<maas-host>:5240/MAAS, apiKeyFile: ~/.config/homelab/maas.key}`",
                );
                None
            }
            (Some(_), false) if k.is_some() => {
                self.err_key(
                    "/maas",
                    "`maas:` is only used with `distribution: microk8s`",
                    "an existing cluster has no MAAS phase; remove the section",
                );
                None
            }
            (Some(m), _) => {
                let url = m.url.trim_end_matches('/').to_owned();
                if url.ends_with("/api/2.0") {
                    self.err(
                        "/maas/url",
                        "the URL includes the API path",
                        "give the MAAS base URL, e.g. http://10.0.0.1:5240/MAAS; homelab adds /api/2.0/",
                    );
                }
                if let Some(f) = &m.api_key_file
                    && looks_like_maas_key(f)
                {
                    // Already refused as a secret by check_secrets.
                    return None;
                }
                let distro = m.distro_series.clone().unwrap_or_else(|| "jammy".into());
                let distro = distro.strip_prefix("ubuntu/").unwrap_or(&distro).to_owned();
                Some(Maas {
                    url,
                    api_key: m.api_key_file.as_deref().map(|p| KeySource::File(expand(p))).unwrap_or(KeySource::Env),
                    distro_series: distro,
                })
            }
            (None, false) => None,
        }
    }

    fn ssh(&mut self) -> Ssh {
        let s = self.file.ssh.clone().unwrap_or_default();
        Ssh {
            user: s.user.unwrap_or_else(|| "ubuntu".into()),
            port: s.port.unwrap_or(22),
            identity_file: expand(s.identity_file.as_deref().unwrap_or("~/.ssh/id_ed25519")),
            host_key_checking: s.host_key_checking.unwrap_or_default(),
            known_hosts_file: s.known_hosts_file.as_deref().map(expand),
            jump_host: s.jump_host,
        }
    }

    fn layout(
        &mut self,
        ptr: &str,
        defaults: &model::StorageSpec,
        own: Option<&model::StorageSpec>,
    ) -> (Layout, Option<String>) {
        let own = own.cloned().unwrap_or_default();
        let layout = own.layout.or(defaults.layout).unwrap_or(model::Layout::Lvm);
        let device = own.device.clone();
        // A field set on the machine is reported at the machine, else at the defaults.
        let at = |field: &str, own_set: bool| -> String {
            if own_set { format!("{ptr}/storage/{field}") } else { format!("/storage/{field}") }
        };
        match layout {
            model::Layout::None => (Layout::Keep, device),
            model::Layout::Lvm => {
                let root_s = own.root_size.clone().or(defaults.root_size.clone());
                let root_p = at("rootSize", own.root_size.is_some());
                let root_bytes = match root_s.as_deref() {
                    None => 100_000_000_000,
                    Some(s) => match parse_bytes(s) {
                        Some(b) if b >= 3 * (1 << 30) => b,
                        Some(_) => {
                            self.err(
                                &root_p,
                                format!("rootSize {s} is below MAAS's minimum of 3 GiB (3221225472 bytes)"),
                                "Ubuntu needs room: use at least 20G",
                            );
                            0
                        }
                        None => {
                            self.err(
                                &root_p,
                                format!("`{s}` is not a size"),
                                "use an SI size as MAAS counts it: 100G, 512M",
                            );
                            0
                        }
                    },
                };
                let ceph_s = own.ceph.clone().or(defaults.ceph.clone()).unwrap_or_else(|| "rest".into());
                let ceph_p = at("ceph", own.ceph.is_some());
                let ceph = match ceph_s.as_str() {
                    "rest" => CephVolume::Rest,
                    "none" => CephVolume::None,
                    s => match parse_bytes(s) {
                        Some(b) if b >= 4 * (1 << 20) => CephVolume::Bytes(b),
                        Some(_) => {
                            self.err(
                                &ceph_p,
                                format!("a Ceph volume of {s} is too small"),
                                "MAAS's smallest logical volume is 4 MiB; Ceph wants at least 5G",
                            );
                            CephVolume::None
                        }
                        None => {
                            self.err(
                                &ceph_p,
                                format!("`{s}` is not `rest`, `none` or a size"),
                                "use `rest`, `none`, or a size like 200G",
                            );
                            CephVolume::None
                        }
                    },
                };
                if device.is_some() {
                    self.err_key(
                        &format!("{ptr}/storage/device"),
                        "`device` and an LVM Ceph volume are exclusive",
                        "use `layout: none` with `device`, or drop `device` to let homelab create the LV",
                    );
                }
                (Layout::Lvm { root_bytes, ceph }, device)
            }
        }
    }

    fn machines(&mut self, k: Option<&Kubernetes>) -> Vec<Machine> {
        let f = self.file;
        let microk8s = k.is_some_and(Kubernetes::is_microk8s);
        let defaults = f.storage.clone().unwrap_or_default();
        if microk8s && f.machines.is_empty() {
            self.err_key(
                "/kubernetes",
                "`distribution: microk8s` needs at least one machine",
                "list the PCs under `machines:` with hostname, mac and role",
            );
        }
        let mut out = Vec::new();
        let mut seen_host: HashMap<&str, usize> = HashMap::new();
        let mut seen_mac: HashMap<String, usize> = HashMap::new();
        for (i, m) in f.machines.iter().enumerate() {
            let ptr = format!("/machines/{i}");
            if let Some(first) = seen_host.insert(&m.hostname, i) {
                let first_line = self.loc.pos(&format!("/machines/{first}/hostname")).value.line;
                self.err(
                    &format!("{ptr}/hostname"),
                    format!("hostname `{}` is used twice", m.hostname),
                    format!("it is already machines[{first}] (line {first_line}); every machine needs its own name"),
                );
            }
            let mac = m.mac.as_deref().map(|s| s.to_ascii_lowercase().replace('-', ":"));
            if let Some(mac) = &mac
                && let Some(first) = seen_mac.insert(mac.clone(), i)
            {
                let first_line = self.loc.pos(&format!("/machines/{first}/mac")).value.line;
                self.err(
                    &format!("{ptr}/mac"),
                    format!("MAC {mac} is used twice"),
                    format!("it is already machines[{first}] (line {first_line}); each PC has its own MAC"),
                );
            }
            if microk8s && mac.is_none() {
                self.err_key(
                    &ptr,
                    "missing field `mac`",
                    "MAAS finds machines by the MAC of their boot interface: add `mac: \"52:54:00:…\"`",
                );
            }
            if let Some(mac) = &mac
                && (mac == "00:00:00:00:00:00" || mac == "ff:ff:ff:ff:ff:ff")
            {
                self.err(
                    &format!("{ptr}/mac"),
                    format!("{mac} is not a real interface address"),
                    "copy the MAC from MAAS or the PC's network settings",
                );
            }
            let (layout, device) = if microk8s {
                self.layout(&ptr, &defaults, m.storage.as_ref())
            } else {
                if let Some(s) = &m.storage
                    && (s.layout.is_some() || s.root_size.is_some() || s.ceph.is_some())
                {
                    self.err_key(
                        &format!("{ptr}/storage"),
                        "disk layouts are applied by MAAS, which an existing cluster does not use",
                        "give the node's raw Ceph disk instead: `storage: {device: /dev/sdb}`",
                    );
                }
                (Layout::Keep, m.storage.as_ref().and_then(|s| s.device.clone()))
            };
            out.push(Machine { hostname: m.hostname.clone(), mac, role: m.role.unwrap_or_default(), layout, device });
        }
        if microk8s && !out.is_empty() {
            let cps = out.iter().filter(|m| m.role == Role::ControlPlane).count();
            if cps == 0 {
                self.err_key(
                    "/machines",
                    "no machine has `role: control-plane`",
                    "make the first machine (or three machines) `role: control-plane`",
                );
            } else if cps % 2 == 0 {
                let hint = if cps == 2 {
                    "with 2 control-plane nodes dqlite has no fault tolerance (losing either stops the cluster); use 1 or 3, and make the others `role: worker`"
                } else {
                    "an even number of datastore voters tolerates no more failures than one fewer; use an odd number (3 or 5) and make the rest workers"
                };
                self.err_key(
                    "/machines",
                    format!("{cps} control-plane machines: the control plane needs an odd number"),
                    hint,
                );
            }
        }
        out
    }

    fn rook(&mut self, machines: &[Machine], k: Option<&Kubernetes>) -> Option<Rook> {
        let r = self.file.rook.as_ref()?;
        let Some(release) = self.catalog.rook(&r.version).cloned() else {
            let versions = self.catalog.rook_versions().join(", ");
            self.err(
                "/rook/version",
                format!("Rook {} is not in the release catalog", r.version),
                format!("pinned releases: {versions} (add others with --catalog FILE)"),
            );
            return None;
        };
        if let Some(minor) = k.and_then(Kubernetes::minor) {
            let kv = format!("{}.{}", minor.0, minor.1);
            if !release.kubernetes.contains(minor) {
                self.err(
                    "/rook/version",
                    format!(
                        "Rook {} supports Kubernetes {}, but the channel gives {kv}",
                        release.version,
                        release.kubernetes.describe()
                    ),
                    rook_hint(self.catalog, minor),
                );
            } else if release.kubernetes.above_tested(minor) {
                self.warn(
                    "/rook/version",
                    format!(
                        "Rook {} was tested up to Kubernetes {}; the channel gives {kv}",
                        release.version,
                        release.kubernetes.tested.as_deref().unwrap_or("?")
                    ),
                    "it is documented as \"1.19 or higher\"; watch the operator log after the upgrade",
                );
            }
        }
        let with_ceph = machines.iter().filter(|m| m.ceph_device().is_some()).count() as u32;
        if with_ceph == 0 {
            let hint = if k.is_some_and(Kubernetes::is_microk8s) {
                "give the machines a Ceph volume (`storage: {layout: lvm, ceph: rest}`) or remove `rook:`"
            } else {
                "list the nodes under `machines:` with their raw disk: `- {hostname: node1, storage: {device: /dev/sdb}}`"
            };
            self.err_key("/rook", "Rook is declared but no machine has a Ceph volume", hint);
        }
        let mut pools = Vec::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut defaults = 0;
        for (i, p) in r.pools.iter().enumerate() {
            let ptr = format!("/rook/pools/{i}");
            if names.insert(&p.name, i).is_some() {
                self.err(
                    &format!("{ptr}/name"),
                    format!("pool `{}` is declared twice", p.name),
                    "give each pool its own name",
                );
            }
            let fd = p.failure_domain.unwrap_or_default();
            if with_ceph > 0 && p.replicas > with_ceph && fd == model::FailureDomain::Host {
                self.err(&format!("{ptr}/replicas"), format!("{} replicas but only {with_ceph} machine{} carr{} a Ceph volume", p.replicas, if with_ceph == 1 { "" } else { "s" }, if with_ceph == 1 { "ies" } else { "y" }), format!("with failureDomain host each replica needs its own machine: use replicas ≤ {with_ceph}, or add machines"));
            }
            if p.replicas == 1 {
                self.warn(
                    &format!("{ptr}/replicas"),
                    "a single replica keeps one copy of your data",
                    "losing that disk loses the data; use 2 or more when you have the machines",
                );
            }
            if let Some(sc) = &p.storage_class
                && sc.default
            {
                defaults += 1;
                if defaults > 1 {
                    self.err(
                        &format!("{ptr}/storageClass/default"),
                        "more than one StorageClass is marked default",
                        "Kubernetes picks unpredictably between several defaults: mark only one",
                    );
                }
            }
            pools.push(Pool {
                name: p.name.clone(),
                failure_domain: fd,
                replicas: p.replicas,
                storage_class: p
                    .storage_class
                    .as_ref()
                    .map(|s| StorageClass { name: s.name.clone(), default: s.default }),
            });
        }
        Some(Rook { release, pools })
    }

    fn kafka(&mut self, rook: Option<&Rook>, k: Option<&Kubernetes>) -> Option<Kafka> {
        let kf = self.file.kafka.as_ref()?;
        let c = &kf.cluster;
        let Some(release) = self.catalog.strimzi(&kf.strimzi_version).cloned() else {
            let versions = self.catalog.strimzi_versions().join(", ");
            self.err(
                "/kafka/strimziVersion",
                format!("Strimzi {} is not in the release catalog", kf.strimzi_version),
                format!("pinned releases: {versions} (add others with --catalog FILE)"),
            );
            return None;
        };
        if let Some(minor) = k.and_then(Kubernetes::minor)
            && !release.kubernetes.contains(minor)
        {
            self.err(
                "/kafka/strimziVersion",
                format!(
                    "Strimzi {} needs Kubernetes {}, but the channel gives {}.{}",
                    release.version,
                    release.kubernetes.describe(),
                    minor.0,
                    minor.1
                ),
                strimzi_hint(self.catalog, minor),
            );
        }
        let version = c.version.clone().unwrap_or_else(|| release.default_kafka.clone());
        let kv = release.kafka_version(&version).cloned();
        if kv.is_none() {
            let p = if c.version.is_some() { "/kafka/cluster/version" } else { "/kafka/strimziVersion" };
            self.err(
                p,
                format!("Strimzi {} does not support Kafka {version}", release.version),
                format!("Strimzi {} runs Kafka {}", release.version, release.kafka_versions().join(", ")),
            );
        }
        let mode = c.metadata.unwrap_or(if release.kraft { MetadataMode::Kraft } else { MetadataMode::Zookeeper });
        match mode {
            MetadataMode::Zookeeper if !release.zookeeper => {
                self.err(
                    if c.metadata.is_some() { "/kafka/cluster/metadata" } else { "/kafka/strimziVersion" },
                    format!("Strimzi {} has no ZooKeeper support (removed in 0.46)", release.version),
                    "use `metadata: kraft` with KafkaNodePools; an existing ZooKeeper cluster must first be migrated to KRaft on Strimzi 0.45 (see docs: ZooKeeper→KRaft migration)",
                );
            }
            MetadataMode::Kraft if !release.kraft => {
                self.err(
                    "/kafka/cluster/metadata",
                    format!("Strimzi {} cannot run KRaft clusters with node pools (KafkaNodePools arrived in 0.36, KRaft GA in 0.42)", release.version),
                    "use `metadata: zookeeper` with this release, or a newer Strimzi (0.45.2, 1.2.0)",
                );
            }
            _ => {}
        }
        if mode == MetadataMode::Zookeeper {
            if c.zookeeper.is_none() {
                self.err_key(
                    "/kafka/cluster",
                    "`metadata: zookeeper` needs a `zookeeper:` ensemble",
                    "add `zookeeper: {replicas: 3, storage: {size: 100Gi, class: rook-ceph-block}}`",
                );
            }
            if c.controllers.is_some() {
                self.err_key(
                    "/kafka/cluster/controllers",
                    "`controllers` are KRaft controllers; this cluster uses ZooKeeper",
                    "remove it, or switch to `metadata: kraft`",
                );
            }
        } else {
            if c.zookeeper.is_some() {
                let hint = if release.v1_api() {
                    format!(
                        "the Strimzi {} `v1` API has no spec.zookeeper; remove it (KRaft controllers go in `controllers:`)",
                        release.version
                    )
                } else {
                    "remove it, or set `metadata: zookeeper`".to_owned()
                };
                self.err_key("/kafka/cluster/zookeeper", "a `zookeeper:` ensemble with KRaft metadata", hint);
            }
            if let Some(cfg) = &c.config {
                for key in ["inter.broker.protocol.version", "log.message.format.version"] {
                    if cfg.contains_key(key) {
                        self.err_key(
                            &format!("/kafka/cluster/config/{key}"),
                            format!("`{key}` is a ZooKeeper-mode setting"),
                            "KRaft clusters use `metadataVersion` (homelab sets it from the catalog); remove it",
                        );
                    }
                }
            }
        }
        if let Some(z) = &c.zookeeper
            && z.replicas % 2 == 0
        {
            self.warn(
                "/kafka/cluster/zookeeper/replicas",
                format!("{} ZooKeeper nodes: an even ensemble tolerates no more failures than one fewer", z.replicas),
                "use 3 or 5",
            );
        }
        if let Some(ctl) = &c.controllers
            && ctl.replicas % 2 == 0
        {
            self.err(
                "/kafka/cluster/controllers/replicas",
                format!("{} KRaft controllers: the quorum needs an odd number", ctl.replicas),
                "use 1, 3 or 5",
            );
        }
        // Replication settings must fit the number of brokers.
        let cfg = c.config.clone().unwrap_or_default();
        let num = |key: &str| cfg.get(key).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
        for key in [
            "default.replication.factor",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
        ] {
            if let Some(n) = num(key)
                && n > u64::from(c.replicas)
            {
                self.err(
                    &format!("/kafka/cluster/config/{}", escape(key)),
                    format!(
                        "{key} is {n} but there are only {} broker{}",
                        c.replicas,
                        if c.replicas == 1 { "" } else { "s" }
                    ),
                    format!("use at most {} (the number of brokers), or add brokers", c.replicas),
                );
            }
        }
        if let (Some(isr), Some(rf)) = (num("min.insync.replicas"), num("default.replication.factor"))
            && isr > rf
        {
            self.err(
                "/kafka/cluster/config/min.insync.replicas",
                format!("min.insync.replicas {isr} is above default.replication.factor {rf}"),
                "producers with acks=all could never write; use a value ≤ the replication factor",
            );
        }
        // Storage classes must be provided by a pool (or, on an existing cluster, by the cluster).
        let pool_classes: Vec<&str> = rook
            .map(|r| r.pools.iter().filter_map(|p| p.storage_class.as_ref()).map(|s| s.name.as_str()).collect())
            .unwrap_or_default();
        let default_pool_class = rook
            .and_then(|r| r.pools.iter().filter_map(|p| p.storage_class.as_ref()).find(|s| s.default))
            .map(|s| s.name.clone());
        let microk8s = k.is_some_and(Kubernetes::is_microk8s);
        let claim = |this: &mut Self, ptr: &str, s: &model::KafkaStorage| -> VolumeClaim {
            if parse_quantity(&s.size).is_none() {
                this.err(
                    &format!("{ptr}/size"),
                    format!("`{}` is not a Kubernetes quantity", s.size),
                    "use e.g. 100Gi",
                );
            }
            if let Some(class) = &s.class
                && microk8s
                && !pool_classes.contains(&class.as_str())
            {
                let hint = if pool_classes.is_empty() {
                    "declare a Rook pool with that storageClass under `rook.pools`".to_owned()
                } else {
                    format!("classes the Rook pools provide: {}", pool_classes.join(", "))
                };
                let hint = match did_you_mean(class, pool_classes.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? ({hint})"),
                    None => hint,
                };
                this.err(&format!("{ptr}/class"), format!("no pool provides StorageClass `{class}`"), hint);
            }
            if s.class.is_none() && microk8s && default_pool_class.is_none() {
                this.err_key(
                    &format!("{ptr}/size"),
                    "no StorageClass given and no Rook pool is marked default",
                    "set `class: rook-ceph-block` or mark a pool's storageClass `default: true`",
                );
            }
            VolumeClaim {
                size: s.size.clone(),
                class: s.class.clone().or(default_pool_class.clone()),
                delete_claim: s.delete_claim,
            }
        };
        let storage = claim(self, "/kafka/cluster/storage", &c.storage);
        let zookeeper = c.zookeeper.as_ref().map(|z| Ensemble {
            replicas: z.replicas,
            storage: claim(self, "/kafka/cluster/zookeeper/storage", &z.storage),
        });
        let controllers = c.controllers.as_ref().map(|z| Ensemble {
            replicas: z.replicas,
            storage: claim(self, "/kafka/cluster/controllers/storage", &z.storage),
        });
        let listeners = c.listeners.clone().unwrap_or_else(default_listeners);
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut ports: HashMap<u32, usize> = HashMap::new();
        for (i, l) in listeners.iter().enumerate() {
            if names.insert(&l.name, i).is_some() {
                self.err(
                    &format!("/kafka/cluster/listeners/{i}/name"),
                    format!("listener name `{}` is used twice", l.name),
                    "listener names must be unique",
                );
            }
            if ports.insert(l.port, i).is_some() {
                self.err(
                    &format!("/kafka/cluster/listeners/{i}/port"),
                    format!("port {} is used by two listeners", l.port),
                    "each listener needs its own port",
                );
            }
        }
        let entity_operator = c.entity_operator.clone().unwrap_or_else(|| {
            let mut m = serde_json::Map::new();
            m.insert("topicOperator".into(), Value::Object(Default::default()));
            m.insert("userOperator".into(), Value::Object(Default::default()));
            m
        });
        Some(Kafka {
            namespace: kf.namespace.clone().unwrap_or_else(|| "kafka".into()),
            name: c.name.clone(),
            metadata_version: kv.and_then(|k| k.metadata_version),
            version,
            replicas: c.replicas,
            mode,
            storage,
            listeners,
            config: cfg,
            zookeeper,
            controllers,
            entity_operator,
            release,
        })
    }

    fn timeouts(&mut self) -> Timeouts {
        let mut t = Timeouts::default();
        let Some(given) = self.file.timeouts.clone() else { return t };
        let fields: [(&str, Option<String>, &mut std::time::Duration); 8] = [
            ("commission", given.commission, &mut t.commission),
            ("deploy", given.deploy, &mut t.deploy),
            ("ssh", given.ssh, &mut t.ssh),
            ("microk8s", given.microk8s, &mut t.microk8s),
            ("join", given.join, &mut t.join),
            ("operator", given.operator, &mut t.operator),
            ("ceph", given.ceph, &mut t.ceph),
            ("kafka", given.kafka, &mut t.kafka),
        ];
        let mut bad = Vec::new();
        for (name, value, slot) in fields {
            let Some(v) = value else { continue };
            match parse_duration(&v) {
                Some(d) if !d.is_zero() => *slot = d,
                _ => bad.push((name, v)),
            }
        }
        for (name, v) in bad {
            self.err(&format!("/timeouts/{name}"), format!("`{v}` is not a duration"), "use e.g. 30m, 90s or 1h30m");
        }
        t
    }
}

fn default_listeners() -> Vec<model::Listener> {
    vec![
        model::Listener {
            name: "plain".into(),
            port: 9092,
            kind: model::ListenerType::Internal,
            tls: false,
            extra: Default::default(),
        },
        model::Listener {
            name: "tls".into(),
            port: 9093,
            kind: model::ListenerType::Internal,
            tls: true,
            extra: Default::default(),
        },
    ]
}

fn rook_hint(cat: &Catalog, minor: (u32, u32)) -> String {
    let fits: Vec<&str> =
        cat.rook.iter().filter(|r| r.kubernetes.contains(minor)).map(|r| r.version.as_str()).collect();
    if fits.is_empty() {
        "no pinned Rook release supports this Kubernetes; change the MicroK8s channel".into()
    } else {
        format!("for Kubernetes {}.{} use Rook {} or change the MicroK8s channel", minor.0, minor.1, fits.join(" or "))
    }
}

fn strimzi_hint(cat: &Catalog, minor: (u32, u32)) -> String {
    let fits: Vec<&str> =
        cat.strimzi.iter().filter(|r| r.kubernetes.contains(minor)).map(|r| r.version.as_str()).collect();
    if fits.is_empty() {
        "no pinned Strimzi release supports this Kubernetes; change the MicroK8s channel".into()
    } else {
        format!("for Kubernetes {}.{} use Strimzi {} or a newer MicroK8s channel", minor.0, minor.1, fits.join(" or "))
    }
}

/// `30m`, `90s`, `1h30m`, `2h`, `500ms`.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += n * unit;
        any = true;
    }
    if !num.is_empty() {
        return None;
    }
    any.then(|| std::time::Duration::from_secs_f64(total))
}

/// Expands a leading `~/`.
pub fn expand(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    if p == "~"
        && let Some(home) = dirs::home_dir()
    {
        return home;
    }
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(std::time::Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Some(std::time::Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(std::time::Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
    }

    #[test]
    fn maas_key_shape() {
        assert!(looks_like_maas_key("AbCdEfGhIjKlMnOpQr:AbCdEfGhIjKlMnOpQr:AbCdEfGhIjKlMnOpQrStUvWxYz012345"));
        assert!(!looks_like_maas_key("~/.config/homelab/maas.key"));
    }
}
