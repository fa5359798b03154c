//! Validating custom resources against their CRD's `openAPIV3Schema`, as the real server does with
//! strict field validation.

use super::*;

/// OpenAPI v3 (as CRDs write it) → JSON Schema: `nullable`, `x-kubernetes-*` handled.
pub fn crd_schema_to_json_schema(s: &Value) -> Value {
    match s {
        Value::Object(m) => {
            let mut out = Map::new();
            let nullable = m.get("nullable") == Some(&Value::Bool(true));
            let int_or_string = m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
            let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            for (k, v) in m {
                match k.as_str() {
                    "properties" | "patternProperties" => {
                        let props: Map<String, Value> = v
                            .as_object()
                            .map(|p| p.iter().map(|(n, s)| (n.clone(), crd_schema_to_json_schema(s))).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "items" | "additionalProperties" | "not" => {
                        out.insert(k.clone(), if v.is_object() { crd_schema_to_json_schema(v) } else { v.clone() });
                    }
                    "allOf" | "anyOf" | "oneOf" => {
                        out.insert(
                            k.clone(),
                            Value::Array(
                                v.as_array()
                                    .map(|a| a.iter().map(crd_schema_to_json_schema).collect())
                                    .unwrap_or_default(),
                            ),
                        );
                    }
                    "nullable" | "format" | "example" | "externalDocs" | "description" => {}
                    k if k.starts_with("x-kubernetes") => {}
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            if int_or_string {
                out.remove("type");
                out.insert("anyOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
            }
            if preserve {
                out.remove("additionalProperties");
            }
            if nullable && let Some(t) = out.get("type").cloned() {
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Validates a custom resource against its CRD's schema; unknown fields are errors only
/// where the schema is closed (as structural pruning would drop them, the real server
/// reports them with `fieldValidation=Strict`).
pub fn validate_against(schema: &Value, obj: &Value) -> Result<(), String> {
    let js = crd_schema_to_json_schema(schema);
    let v = jsonschema::draft4::new(&js).map_err(|e| format!("the CRD schema cannot be used: {e}"))?;
    let errs: Vec<String> =
        v.iter_errors(obj).take(5).map(|e| format!("{}: {e}", e.instance_path().as_str())).collect();
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}

pub(in crate::sim::apiserver) fn validate(
    st: &mut ApiState,
    kind: &Kind,
    version: &str,
    obj: &Value,
) -> Result<(), String> {
    if !st.cfg.validate {
        return Ok(());
    }
    let Some(schema) = kind.schemas.get(version) else { return Ok(()) };
    let key = (kind.group.clone(), kind.plural.clone(), version.to_owned());
    let validator = match st.validators.get(&key) {
        Some(v) => v.clone(),
        None => {
            let js = crd_schema_to_json_schema(schema);
            let v = Arc::new(jsonschema::draft4::new(&js).map_err(|e| format!("the CRD schema cannot be used: {e}"))?);
            st.validators.insert(key, v.clone());
            v
        }
    };
    // Status is written through the status subresource, not validated here.
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    let errs: Vec<String> =
        validator.iter_errors(&o).take(5).map(|e| format!("{}: {e}", e.instance_path().as_str())).collect();
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}
