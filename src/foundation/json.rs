//! Setting (and cleaning) fields of JSON documents that came from outside (manifests, kubeconfigs) without
//! panicking when their shape is not what it should be.

use serde_json::{Map, Value};

/// Sets `path` in `v` to `new`, creating missing (or null) objects on the way; fails when a
/// non-object stands in the way.
pub fn set(v: &mut Value, path: &[&str], new: Value) -> Result<(), String> {
    let mut cur = v;
    for (i, key) in path.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else {
            return Err(format!("`{}` is not a mapping", path[..i].join(".")));
        };
        if i + 1 == path.len() {
            m.insert((*key).to_owned(), new);
            return Ok(());
        }
        cur = m.entry((*key).to_owned()).or_insert(Value::Null);
    }
    Ok(())
}

/// Removes null-valued keys (upstream examples carry `annotations:` with nothing after it).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// A document as one line of the `-o json` stream: `{"ts", "event": kind, …its fields}`
/// (docs/events.md). A value that is not an object goes under `value`.
pub fn event_line(kind: &str, doc: &impl serde::Serialize) -> String {
    let mut out = serde_json::Map::new();
    out.insert("ts".into(), Value::String(crate::foundation::time::now_rfc3339()));
    out.insert("event".into(), Value::String(kind.to_owned()));
    match serde_json::to_value(doc) {
        Ok(Value::Object(mut m)) => out.append(&mut m),
        Ok(v) => {
            out.insert("value".into(), v);
        }
        Err(e) => {
            out.insert("error".into(), Value::String(e.to_string()));
        }
    }
    Value::Object(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_creates_and_refuses() {
        let mut v = json!({"spec": {"mon": null}});
        set(&mut v, &["spec", "mon", "count"], json!(3)).unwrap();
        assert_eq!(v["spec"]["mon"]["count"], 3);
        let mut bad = json!({"spec": "text"});
        assert!(set(&mut bad, &["spec", "mon"], json!(1)).unwrap_err().contains("`spec` is not a mapping"));
        assert!(set(&mut json!([1]), &["a"], json!(1)).is_err());
    }
}
