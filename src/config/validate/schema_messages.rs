//! Step 4 of validation: the file's shape against the generated JSON Schema, every error at
//! once, in words a person reads (the allowed values, "did you mean", what a field needs).

use super::*;

// ---------------------------------------------------------------------------------------------
// Shape (JSON Schema)

pub(in crate::config::validate) fn remove_pointer(v: &mut Value, ptr: &str) {
    let Some((parent, last)) = ptr.rsplit_once('/') else { return };
    let key = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = v.pointer_mut(parent) {
        m.remove(&key);
    }
}

pub(in crate::config::validate) fn check_schema(
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
    // A misspelt required key is one mistake: its "unknown field, did you mean X" stands for
    // the "missing field X" the same object would also get.
    let mut suggested: Vec<(String, String)> = Vec::new();
    let mut missing: Vec<(String, String, Diagnostic)> = Vec::new();
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
                        Some(s) => {
                            suggested.push((ptr.clone(), s.to_owned()));
                            d.hint(format!("did you mean `{s}`?"))
                        }
                        None if !allowed.is_empty() => d.hint(format!("fields allowed here: {}", allowed.join(", "))),
                        None => d,
                    };
                    report.push(d);
                }
            }
            K::Required { property } => {
                let name = property.as_str().unwrap_or("?");
                let p = format!("{ptr}/{}", escape(name));
                missing.push((
                    ptr.clone(),
                    name.to_owned(),
                    Diagnostic::error(display_path(&p), loc.key_pos(&ptr), format!("missing field `{name}`"))
                        .hint(required_hint(&ptr, name)),
                ));
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
    for (parent, name, d) in missing {
        if !suggested.iter().any(|(p, s)| *p == parent && *s == name) {
            report.push(d);
        }
    }
    ok
}

/// The allowed values of an enum-like schema (`enum`, or `oneOf` of `const`s).
pub(in crate::config::validate) fn enum_choices(root: &Value, ptr: &str) -> Vec<String> {
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

pub(in crate::config::validate) fn article(kind: &str) -> String {
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

pub(in crate::config::validate) fn required_hint(parent: &str, name: &str) -> String {
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

pub(in crate::config::validate) fn pattern_message(ptr: &str, v: &Value) -> (String, String) {
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
