//! Validation: every problem of a `cluster.yaml` at once, each with line, column, field path
//! and a hint, before anything is touched.
//!
//! 1. read the bytes (UTF-8, size);
//! 2. parse YAML with positions;
//! 3. refuse inline secrets;
//! 4. check the shape against the generated JSON Schema (all errors, "did you mean");
//! 5. deserialize the typed model;
//! 6. semantic rules and version compatibility from the release catalog;
//! 7. resolve into [`Cluster`];
//! 8. for a file on disk, the files it names exist on this workstation.

use super::diag::{Diagnostic, Report};
use super::model::{self, ClusterFile, Distribution, MetadataMode, Role};
use super::resolved::*;
use super::schema;
use super::size::{parse_bytes, parse_quantity};
use super::tree::{self, Located, Pos, display_path, escape};
use crate::catalog::{Catalog, parse_minor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

mod local;
mod schema_messages;
mod secrets;
mod semantic;
mod units;

pub use local::maas_key_in_env;
pub use schema_messages::did_you_mean;
use schema_messages::*;
pub use secrets::looks_like_maas_key;
use secrets::*;
use semantic::Semantic;
pub use units::{expand, parse_duration};

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
    // A regular file, read at most to the limit: `/dev/zero` or a huge file costs nothing.
    match crate::foundation::limits::read_file(path, MAX_FILE_BYTES as u64, &file) {
        Ok(bytes) => {
            let mut v = validate_bytes(&bytes, &file, catalog);
            if let Some(c) = v.cluster.as_mut() {
                c.anchor(path);
            }
            // Step 8, on disk only: the files the cluster names exist here.
            if let (Some(c), Some(text)) = (v.cluster.as_ref(), v.source.as_deref())
                && let Ok(located) = tree::parse(text)
            {
                local::check(c, &located, &mut v.report);
                v.report.finish();
            }
            v
        }
        Err(e) => {
            let mut report = Report { file: file.clone(), diagnostics: vec![] };
            let hint = match e.io_kind() {
                Some(std::io::ErrorKind::NotFound) => {
                    "create one from examples/ (e.g. `cp examples/seed-2023.yaml cluster.yaml`) or draft one from MAAS with `homelab init`"
                }
                Some(_) => "check the path and its permissions",
                None => "a cluster.yaml is a regular file of a few kilobytes: check that this is the right path",
            };
            report.push(Diagnostic::error("(file)", Pos::default(), e.to_string()).hint(hint));
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
            let at = e.pos.unwrap_or(Pos { line: 1, column: 1 });
            let d = match tree::duplicate_key(&e.message) {
                // The parser's own text suggests a policy option; say what is wrong instead.
                Some(key) => {
                    let first = tree::first_occurrence(text, key, at)
                        .map(|p| format!("first at line {}, column {}, again", p.line, p.column))
                        .unwrap_or_else(|| "again".to_owned());
                    Diagnostic::error(
                        "(yaml)",
                        at,
                        format!("duplicate key `{key}`: it appears twice in the same mapping ({first} at line {}, column {})", at.line, at.column),
                    )
                    .hint(format!(
                        "a mapping holds each key once: delete one of the two `{key}:` entries, or merge what they hold under one"
                    ))
                }
                None => {
                    let (message, at, hint) = crate::config::syntax::explain(text, &e.message, at);
                    Diagnostic::error("(yaml)", at, message).hint(hint)
                }
            };
            report.push(d);
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
