//! The JSON Schema of `cluster.yaml`, generated from the model. `homelab schema` prints it and
//! `cluster.schema.json` in the repository root is this output (a test fails on drift).

use super::model::ClusterFile;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The schema as a JSON value. `Option<T>` fields are plain `T` (an explicit `null` in the
/// file is an error), which keeps editor completion and error messages simple.
pub fn schema_value() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<ClusterFile>();
    let mut v = schema.to_value();
    strip_null(&mut v);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("$id".into(), Value::String("https://homelab.dev/schema/cluster.schema.json".into()));
    }
    v
}

/// Pretty-printed schema with a trailing newline, byte-for-byte what `homelab schema` prints.
pub fn schema_json() -> String {
    let mut s = serde_json::to_string_pretty(&schema_value()).unwrap_or_default();
    s.push('\n');
    s
}

/// Removes `null` from `type` arrays and `anyOf` alternatives: an optional field is either
/// absent or has a value.
fn strip_null(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(types)) = m.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types.remove(0);
                    m.insert("type".into(), t);
                }
            }
            if let Some(Value::Array(alts)) = m.get_mut("anyOf") {
                alts.retain(|a| a.get("type").and_then(Value::as_str) != Some("null"));
                if alts.len() == 1 {
                    let only = alts.remove(0);
                    m.remove("anyOf");
                    if let Value::Object(o) = only {
                        for (k, val) in o {
                            m.entry(k).or_insert(val);
                        }
                    }
                }
            }
            for child in m.values_mut() {
                strip_null(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// Resolves `$ref: "#/$defs/X"` against the root.
pub fn deref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix("#/$defs/").and_then(|n| root.get("$defs")?.get(n)) {
                Some(t) => node = t,
                None => return node,
            },
            None => return node,
        }
    }
    node
}

/// The sub-schema that describes the instance at a JSON pointer.
pub fn schema_at<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut node = deref(root, root);
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if let Some(p) = node.get("properties").and_then(|p| p.get(&seg)) {
            node = deref(root, p);
        } else if let Some(items) = node.get("items") {
            node = deref(root, items);
        } else if let Some(ap) = node.get("additionalProperties").filter(|a| a.is_object()) {
            node = deref(root, ap);
        } else {
            return None;
        }
    }
    Some(node)
}

/// Property names the schema allows at a pointer (for "did you mean").
pub fn allowed_properties(root: &Value, pointer: &str) -> Vec<String> {
    schema_at(root, pointer)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_knows_nested_properties() {
        let root = schema_value();
        let props = allowed_properties(&root, "/machines/0");
        assert!(props.contains(&"hostname".to_string()), "{props:?}");
        let props = allowed_properties(&root, "/kafka/cluster/storage");
        assert!(props.contains(&"deleteClaim".to_string()), "{props:?}");
        assert_eq!(root["additionalProperties"], Value::Bool(false));
    }
}
