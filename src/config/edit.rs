//! Byte-preserving edits of `cluster.yaml` (used by `add-node`): a new machine entry is
//! inserted after the last one, in the same style (flow `{…}` or block mapping, same
//! indentation, same line endings); every other byte of the file stays as it was, comments
//! and formatting included. The result is parsed again and checked before it is written.

use super::tree;
use anyhow::{Result, anyhow, bail};

/// The new machine's fields.
#[derive(Debug, Clone)]
pub struct NewMachine {
    pub hostname: String,
    pub mac: String,
    pub role: &'static str,
}

/// `s` as one YAML scalar, written by the YAML serializer: quoted whenever YAML would read
/// it as anything but this string (`123`, `0x1f`, `null`, `yes`, a `{`…).
pub fn yaml_scalar(s: &str) -> String {
    match serde_saphyr::to_string(&s) {
        Ok(t) => {
            let t = t.trim_end_matches('\n');
            let t = t.strip_prefix("--- ").unwrap_or(t);
            if t.contains('\n') { json_quoted(s) } else { t.to_owned() }
        }
        Err(_) => json_quoted(s),
    }
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
pub fn json_quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn flow_entry(m: &NewMachine) -> String {
    format!("{{hostname: {}, mac: {}, role: {}}}", yaml_scalar(&m.hostname), json_quoted(&m.mac), m.role)
}

/// Inserts `m` at the end of the `machines:` list. Fails (with the line to add by hand) for
/// layouts it does not edit, such as a flow sequence `machines: [...]`.
pub fn insert_machine(text: &str, m: &NewMachine) -> Result<String> {
    let located = tree::parse(text).map_err(|e| anyhow!("cannot parse the file: {}", e.message))?;
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let by_hand = || format!("add this entry under `machines:` yourself:\n  - {}", flow_entry(m));
    let Some(items) = located.value.get("machines").and_then(|v| v.as_array()) else {
        // No machines yet: append a block at the end of the file.
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(nl);
        }
        out.push_str(&format!("machines:{nl}  - {}{nl}", flow_entry(m)));
        return verify(text, &out, m);
    };
    if items.is_empty() {
        bail!("`machines:` is an empty list; {}", by_hand());
    }
    let last = items.len() - 1;
    let item_pos = located
        .exact(&format!("/machines/{last}"))
        .ok_or_else(|| anyhow!("cannot locate the last machine entry; {}", by_hand()))?;
    let seq_pos = located.pos("/machines").value;
    let start_line = item_pos.value.line as usize;
    let item_line = lines.get(start_line - 1).copied().unwrap_or("");
    // Block sequence: the item's line starts with `- ` at the dash column.
    let dash_col = item_line.find("- ").filter(|&c| item_line[..c].trim().is_empty());
    let Some(dash_col) = dash_col else {
        bail!("the machines list is not a block list (`- …` lines) at line {}; {}", seq_pos.line, by_hand());
    };
    // The last item ends at its last line indented deeper than its dash (comments and blank
    // lines after it stay where they are).
    let mut end = start_line; // 1-based, inclusive
    for (i, l) in lines.iter().enumerate().skip(start_line) {
        let t = l.trim_end_matches(['\n', '\r']);
        if t.trim().is_empty() || t.trim_start().starts_with('#') {
            continue;
        }
        let indent = t.len() - t.trim_start().len();
        if indent > dash_col {
            end = i + 1;
        } else {
            break;
        }
    }
    let after_dash = &item_line[dash_col + 2..];
    let entry = if after_dash.trim_start().starts_with('{') {
        format!("{}- {}{nl}", " ".repeat(dash_col), flow_entry(m))
    } else {
        // Block mapping: keys aligned with the first key of the existing item.
        let key_col = dash_col + 2 + (after_dash.len() - after_dash.trim_start().len());
        let pad = " ".repeat(key_col);
        format!(
            "{}- hostname: {}{nl}{pad}mac: {}{nl}{pad}role: {}{nl}",
            " ".repeat(dash_col),
            yaml_scalar(&m.hostname),
            json_quoted(&m.mac),
            m.role
        )
    };
    let mut out = String::with_capacity(text.len() + entry.len());
    for l in &lines[..end] {
        out.push_str(l);
    }
    if !out.ends_with('\n') {
        out.push_str(nl);
    }
    out.push_str(&entry);
    for l in &lines[end..] {
        out.push_str(l);
    }
    verify(text, &out, m)
}

/// The edited text parses, has exactly one more machine (the new one, last), and nothing
/// else changed.
fn verify(before: &str, after: &str, m: &NewMachine) -> Result<String> {
    let a = tree::parse(after)
        .map_err(|e| anyhow!("the edit would break the file ({}); nothing was written", e.message))?;
    let b = tree::parse(before).map_err(|e| anyhow!("cannot parse the file: {}", e.message))?;
    let mut expected = b.value.clone();
    let entry = serde_json::json!({"hostname": m.hostname, "mac": m.mac, "role": m.role});
    match expected.get_mut("machines").and_then(|v| v.as_array_mut()) {
        Some(list) => list.push(entry),
        None => {
            if let Some(o) = expected.as_object_mut() {
                o.insert("machines".into(), serde_json::json!([entry]));
            }
        }
    }
    if a.value != expected {
        bail!(
            "the edit did not produce the expected file; nothing was written. Add the machine by hand:\n  - {}",
            flow_entry(m)
        );
    }
    Ok(after.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nm() -> NewMachine {
        NewMachine { hostname: "kvm6".into(), mac: "52:54:00:00:00:04".into(), role: "worker" }
    }

    #[test]
    fn scalars_that_yaml_reads_otherwise_are_quoted() {
        for s in ["123", "0x1f", "null", "yes", "~", "1e3", "{a: b}", "- x", "a: b", "#c", "", " x"] {
            let q = yaml_scalar(s);
            let back: String = serde_saphyr::from_str(&q).unwrap_or_else(|e| panic!("{s:?} -> {q}: {e}"));
            assert_eq!(back, s, "{q}");
            assert_ne!(q, s, "{s:?} must be quoted");
        }
        assert_eq!(yaml_scalar("kvm6"), "kvm6");
    }

    #[test]
    fn flow_items_get_a_flow_item() {
        let text = "# head\nmachines:\n  - {hostname: maas, mac: \"52:54:00:00:00:01\", role: control-plane}\n  - {hostname: kvm5, mac: \"52:54:00:00:00:03\"}  # last\n# trailing comment\nkubernetes: {distribution: microk8s}\n";
        let out = insert_machine(text, &nm()).unwrap();
        assert_eq!(
            out,
            "# head\nmachines:\n  - {hostname: maas, mac: \"52:54:00:00:00:01\", role: control-plane}\n  - {hostname: kvm5, mac: \"52:54:00:00:00:03\"}  # last\n  - {hostname: kvm6, mac: \"52:54:00:00:00:04\", role: worker}\n# trailing comment\nkubernetes: {distribution: microk8s}\n"
        );
    }

    #[test]
    fn block_items_get_a_block_item_and_crlf_is_kept() {
        let text = "machines:\r\n- hostname: maas\r\n  mac: \"52:54:00:00:00:01\"\r\n  storage:\r\n    rootSize: 50G\r\n\r\nkubernetes:\r\n  distribution: microk8s\r\n";
        let out = insert_machine(text, &nm()).unwrap();
        assert_eq!(
            out,
            "machines:\r\n- hostname: maas\r\n  mac: \"52:54:00:00:00:01\"\r\n  storage:\r\n    rootSize: 50G\r\n- hostname: kvm6\r\n  mac: \"52:54:00:00:00:04\"\r\n  role: worker\r\n\r\nkubernetes:\r\n  distribution: microk8s\r\n"
        );
    }

    #[test]
    fn last_line_without_newline_and_flow_sequences() {
        let text = "kubernetes: {distribution: microk8s}\nmachines:\n  - {hostname: maas, mac: \"52:54:00:00:00:01\"}";
        let out = insert_machine(text, &nm()).unwrap();
        assert!(out.ends_with("  - {hostname: maas, mac: \"52:54:00:00:00:01\"}\n  - {hostname: kvm6, mac: \"52:54:00:00:00:04\", role: worker}\n"), "{out:?}");
        let flow = "machines: [{hostname: maas, mac: \"52:54:00:00:00:01\"}]\n";
        let e = insert_machine(flow, &nm()).unwrap_err().to_string();
        assert!(e.contains("add this entry under `machines:` yourself"), "{e}");
    }
}
