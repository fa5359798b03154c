//! Byte-preserving edits of `cluster.yaml`: `add-node` inserts a new machine entry after the
//! last one, in the same style (flow `{…}` or block mapping, same indentation, same line
//! endings); `remove-node` deletes one entry's lines; `replace-node` rewrites one entry's
//! `hostname` and `mac` values where they stand. Every other byte of the file stays as it
//! was, comments and formatting included. Each result is parsed again and checked before it
//! is written.

use super::tree;
use anyhow::{Result, anyhow, bail};

/// The new machine's fields: a `mac` (MAAS deploys it) or, for a pre-installed machine, an
/// `address` and the Ceph volume it gives (`storage`, e.g. `{device: /dev/sdb}`).
#[derive(Debug, Clone, Default)]
pub struct NewMachine {
    pub hostname: String,
    /// Empty for a pre-installed machine.
    pub mac: String,
    pub address: Option<String>,
    pub role: &'static str,
    pub storage: Option<NewStorage>,
}

/// The Ceph volume of a new pre-installed machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewStorage {
    Device(String),
    VolumeGroup { volume_group: String, ceph: String },
}

impl NewMachine {
    /// Its keys in the order they are written: (key, YAML text, the value it parses to).
    fn fields(&self) -> Vec<(&'static str, String, serde_json::Value)> {
        let mut f = vec![("hostname", yaml_scalar(&self.hostname), serde_json::json!(self.hostname))];
        match &self.address {
            Some(a) => f.push(("address", yaml_scalar(a), serde_json::json!(a))),
            None => f.push(("mac", json_quoted(&self.mac), serde_json::json!(self.mac))),
        }
        f.push(("role", self.role.to_owned(), serde_json::json!(self.role)));
        match &self.storage {
            Some(NewStorage::Device(d)) => {
                f.push(("storage", format!("{{device: {}}}", yaml_scalar(d)), serde_json::json!({"device": d})))
            }
            Some(NewStorage::VolumeGroup { volume_group, ceph }) => f.push((
                "storage",
                format!("{{volumeGroup: {}, ceph: {}}}", yaml_scalar(volume_group), yaml_scalar(ceph)),
                serde_json::json!({"volumeGroup": volume_group, "ceph": ceph}),
            )),
            None => {}
        }
        f
    }

    fn json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.fields().into_iter().map(|(k, _, v)| (k.to_owned(), v)).collect())
    }
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

/// The entry as one flow mapping, as a user would add it by hand.
pub fn flow_entry(m: &NewMachine) -> String {
    let parts: Vec<String> = m.fields().into_iter().map(|(k, y, _)| format!("{k}: {y}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// `m` as a list item in the style of an existing item whose dash is at column `dash` and
/// whose text after `- ` is `after_dash`: a flow mapping `- {…}`, or a block mapping with the
/// keys aligned with that item's first key.
fn styled_entry(m: &NewMachine, dash: usize, after_dash: &str, nl: &str) -> String {
    if after_dash.trim_start().starts_with('{') {
        return format!("{}- {}{nl}", " ".repeat(dash), flow_entry(m));
    }
    let pad = " ".repeat(dash + 2 + (after_dash.len() - after_dash.trim_start().len()));
    let mut s = format!("{}- ", " ".repeat(dash));
    for (i, (key, y, _)) in m.fields().into_iter().enumerate() {
        if i > 0 {
            s.push_str(&pad);
        }
        s.push_str(&format!("{key}: {y}{nl}"));
    }
    s
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
    let end = block_end(&lines, start_line, dash_col); // 1-based, inclusive
    let after_dash = &item_line[dash_col + 2..];
    let entry = styled_entry(m, dash_col, after_dash, nl);
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

/// The last line (1-based, inclusive) of the block item or entry that starts on line
/// `start` (1-based) at column `col`: the lines after it indented deeper (blank lines and
/// comments after it belong to what follows).
pub(super) fn block_end(lines: &[&str], start: usize, col: usize) -> usize {
    let mut end = start;
    for (i, l) in lines.iter().enumerate().skip(start) {
        let t = l.trim_end_matches(['\n', '\r']);
        if t.trim().is_empty() || t.trim_start().starts_with('#') {
            continue;
        }
        if t.len() - t.trim_start().len() > col {
            end = i + 1;
        } else {
            break;
        }
    }
    end
}

/// The edited text parses, has exactly one more machine (the new one, last), and nothing
/// else changed.
fn verify(before: &str, after: &str, m: &NewMachine) -> Result<String> {
    let a = tree::parse(after)
        .map_err(|e| anyhow!("the edit would break the file ({}); nothing was written", e.message))?;
    let b = tree::parse(before).map_err(|e| anyhow!("cannot parse the file: {}", e.message))?;
    let mut expected = b.value.clone();
    let entry = m.json();
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

/// The index of machine `hostname` in the parsed file and the located tree.
fn find_machine(text: &str, hostname: &str) -> Result<(tree::Located, usize)> {
    let located = tree::parse(text).map_err(|e| anyhow!("cannot parse the file: {}", e.message))?;
    let i = located
        .value
        .get("machines")
        .and_then(|v| v.as_array())
        .and_then(|ms| ms.iter().position(|m| m.get("hostname").and_then(|h| h.as_str()) == Some(hostname)))
        .ok_or_else(|| anyhow!("the file has no machine named {hostname}"))?;
    Ok((located, i))
}

/// Deletes machine `hostname`'s entry (its lines, up to the next item; comments and blank
/// lines after it stay).
pub fn remove_machine(text: &str, hostname: &str) -> Result<String> {
    let (located, i) = find_machine(text, hostname)?;
    let by_hand = || format!("delete the entry of {hostname} under `machines:` yourself");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let pos =
        located.exact(&format!("/machines/{i}")).ok_or_else(|| anyhow!("cannot locate {hostname}; {}", by_hand()))?;
    let start = pos.value.line as usize; // 1-based
    let line = lines.get(start - 1).copied().unwrap_or("");
    let Some(dash) = line.find("- ").filter(|&c| line[..c].trim().is_empty()) else {
        bail!("the machines list is not a block list (`- …` lines); {}", by_hand());
    };
    let end = block_end(&lines, start, dash);
    let out: String = lines[..start - 1].iter().chain(lines[end..].iter()).copied().collect();
    let after =
        tree::parse(&out).map_err(|e| anyhow!("the edit would break the file ({}); {}", e.message, by_hand()))?;
    let mut expected = located.value.clone();
    if let Some(list) = expected.get_mut("machines").and_then(|v| v.as_array_mut()) {
        list.remove(i);
    }
    if after.value != expected {
        bail!("the edit did not produce the expected file; nothing was written; {}", by_hand());
    }
    Ok(out)
}

/// The byte range of the scalar starting at line/column `pos` (plain, `"…"` or `'…'`).
fn scalar_range(text: &str, pos: tree::Pos) -> Option<(usize, usize)> {
    let line_start: usize = text.split_inclusive('\n').take(pos.line as usize - 1).map(str::len).sum();
    let line = text[line_start..].split_inclusive('\n').next()?;
    let col = line.char_indices().nth(pos.column as usize - 1).map(|(b, _)| b)?;
    let rest = &line[col..];
    let len = match rest.chars().next()? {
        q @ ('"' | '\'') => {
            let mut esc = false;
            let mut end = None;
            for (k, c) in rest.char_indices().skip(1) {
                if q == '"' && c == '\\' && !esc {
                    esc = true;
                    continue;
                }
                if c == q && !esc {
                    end = Some(k + 1);
                    break;
                }
                esc = false;
            }
            end?
        }
        _ => {
            let stop = rest.find([',', '}', '\n', '\r']).unwrap_or(rest.len());
            let stop = rest[..stop].find(" #").unwrap_or(stop);
            rest[..stop].trim_end().len()
        }
    };
    Some((line_start + col, line_start + col + len))
}

/// Rewrites machine `old`'s entry to `new`: a MAAS machine replaced by another keeps its entry
/// with its `hostname` and `mac` values rewritten where they stand (its role and anything else
/// stay); when a pre-installed machine is involved (an `address` on either side) the whole
/// entry is rewritten where it stands, in the file's style.
pub fn replace_machine(text: &str, old: &str, new: &NewMachine) -> Result<String> {
    let (located, i) = find_machine(text, old)?;
    let old_has_mac = located.value.pointer(&format!("/machines/{i}/mac")).is_some();
    if new.address.is_some() || !old_has_mac {
        return replace_entry(text, &located, i, old, new);
    }
    let by_hand = || format!("in the entry of {old}, write hostname {} and mac {}", new.hostname, new.mac);
    let mut edits = Vec::new();
    for (field, value) in [("hostname", yaml_scalar(&new.hostname)), ("mac", json_quoted(&new.mac))] {
        let p = located
            .exact(&format!("/machines/{i}/{field}"))
            .ok_or_else(|| anyhow!("the entry of {old} has no `{field}`; {}", by_hand()))?;
        let r =
            scalar_range(text, p.value).ok_or_else(|| anyhow!("cannot locate `{field}` of {old}; {}", by_hand()))?;
        edits.push((r, value));
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0.0));
    let mut out = text.to_owned();
    for ((a, b), v) in edits {
        out.replace_range(a..b, &v);
    }
    let after =
        tree::parse(&out).map_err(|e| anyhow!("the edit would break the file ({}); {}", e.message, by_hand()))?;
    let mut expected = located.value.clone();
    if let Some(m) = expected.pointer_mut(&format!("/machines/{i}")).and_then(|m| m.as_object_mut()) {
        m.insert("hostname".into(), serde_json::json!(new.hostname));
        m.insert("mac".into(), serde_json::json!(new.mac));
    }
    if after.value != expected {
        bail!("the edit did not produce the expected file; nothing was written; {}", by_hand());
    }
    Ok(out)
}

/// Replaces the lines of entry `i` (machine `old`) with `new`, flow or block as the entry was.
fn replace_entry(text: &str, located: &tree::Located, i: usize, old: &str, new: &NewMachine) -> Result<String> {
    let by_hand = || format!("replace the entry of {old} under `machines:` by\n  - {}", flow_entry(new));
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let pos = located.exact(&format!("/machines/{i}")).ok_or_else(|| anyhow!("cannot locate {old}; {}", by_hand()))?;
    let start = pos.value.line as usize; // 1-based
    let line = lines.get(start - 1).copied().unwrap_or("");
    let Some(dash) = line.find("- ").filter(|&c| line[..c].trim().is_empty()) else {
        bail!("the machines list is not a block list (`- …` lines); {}", by_hand());
    };
    let end = block_end(&lines, start, dash);
    let after_dash = &line[dash + 2..];
    let entry = styled_entry(new, dash, after_dash, nl);
    let mut out: String = lines[..start - 1].concat();
    out.push_str(&entry);
    out.push_str(&lines[end..].concat());
    let after =
        tree::parse(&out).map_err(|e| anyhow!("the edit would break the file ({}); {}", e.message, by_hand()))?;
    let mut expected = located.value.clone();
    if let Some(m) = expected.pointer_mut(&format!("/machines/{i}")) {
        *m = new.json();
    }
    if after.value != expected {
        bail!("the edit did not produce the expected file; nothing was written; {}", by_hand());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nm() -> NewMachine {
        NewMachine { hostname: "kvm6".into(), mac: "52:54:00:00:00:04".into(), role: "worker", ..Default::default() }
    }

    #[test]
    fn a_preinstalled_machine_replaced_either_way_rewrites_one_entry_where_it_stands() {
        let text = "machines:\n  - {hostname: maas, address: 10.0.0.1, role: control-plane, storage: {volumeGroup: ubuntu-vg, ceph: rest}}\n  - {hostname: kvm4, mac: \"52:54:00:00:00:02\", role: control-plane}\n# end\n";
        let by_maas = NewMachine {
            hostname: "kvm9".into(),
            mac: "52:54:00:00:00:09".into(),
            role: "control-plane",
            ..Default::default()
        };
        let out = replace_machine(text, "maas", &by_maas).unwrap();
        assert_eq!(
            out,
            "machines:\n  - {hostname: kvm9, mac: \"52:54:00:00:00:09\", role: control-plane}\n  - {hostname: kvm4, mac: \"52:54:00:00:00:02\", role: control-plane}\n# end\n"
        );
        let by_pc = NewMachine {
            hostname: "pc9".into(),
            address: Some("10.0.0.9".into()),
            role: "control-plane",
            storage: Some(NewStorage::Device("/dev/sdb".into())),
            ..Default::default()
        };
        let out = replace_machine(text, "kvm4", &by_pc).unwrap();
        assert!(
            out.contains(
                "  - {hostname: pc9, address: \"10.0.0.9\", role: control-plane, storage: {device: /dev/sdb}}\n# end\n"
            ),
            "{out}"
        );
        assert!(out.starts_with("machines:\n  - {hostname: maas, address: 10.0.0.1,"), "{out}");
    }

    #[test]
    fn a_preinstalled_entry_goes_in_in_the_files_style() {
        let pc = NewMachine {
            hostname: "pc4".into(),
            address: Some("192.168.1.14".into()),
            role: "worker",
            storage: Some(NewStorage::VolumeGroup { volume_group: "ubuntu-vg".into(), ceph: "rest".into() }),
            ..Default::default()
        };
        let flow = "machines:\n  - {hostname: pc1, address: 192.168.1.11, role: control-plane}\nkubernetes: {}\n";
        let out = insert_machine(flow, &pc).unwrap();
        assert_eq!(
            out,
            "machines:\n  - {hostname: pc1, address: 192.168.1.11, role: control-plane}\n  - {hostname: pc4, address: \"192.168.1.14\", role: worker, storage: {volumeGroup: ubuntu-vg, ceph: rest}}\nkubernetes: {}\n"
        );
        let block = "machines:\n  - hostname: pc1\n    address: 192.168.1.11\n";
        let pc = NewMachine { storage: Some(NewStorage::Device("/dev/sdb".into())), ..pc };
        let out = insert_machine(block, &pc).unwrap();
        assert_eq!(
            out,
            "machines:\n  - hostname: pc1\n    address: 192.168.1.11\n  - hostname: pc4\n    address: \"192.168.1.14\"\n    role: worker\n    storage: {device: /dev/sdb}\n"
        );
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

    #[test]
    fn remove_and_replace_touch_one_entry() {
        let flow = "# lab\nmachines:\n  - {hostname: pc1, mac: \"52:54:00:00:00:01\", role: control-plane}\n  # the second\n  - {hostname: pc2, mac: \"52:54:00:00:00:02\"}\n  - {hostname: pc3, mac: \"52:54:00:00:00:03\"}\nkafka: {}\n";
        let out = remove_machine(flow, "pc2").unwrap();
        assert_eq!(out, flow.replace("  - {hostname: pc2, mac: \"52:54:00:00:00:02\"}\n", ""));
        let new = NewMachine {
            hostname: "pc9".into(),
            mac: "52:54:00:00:00:09".into(),
            role: "worker",
            ..Default::default()
        };
        let out = replace_machine(flow, "pc3", &new).unwrap();
        assert_eq!(out, flow.replace("pc3, mac: \"52:54:00:00:00:03\"", "pc9, mac: \"52:54:00:00:00:09\""));
        let block = "machines:\n- hostname: pc1\n  mac: '52:54:00:00:00:01'  # first\n- hostname: pc2\r\n  mac: 52:54:00:00:00:02\n  role: worker\nrook: {}\n";
        let out = remove_machine(block, "pc2").unwrap();
        assert_eq!(out, "machines:\n- hostname: pc1\n  mac: '52:54:00:00:00:01'  # first\nrook: {}\n");
        let out = replace_machine(block, "pc1", &new).unwrap();
        assert_eq!(out, block.replace("pc1\n  mac: '52:54:00:00:00:01'", "pc9\n  mac: \"52:54:00:00:00:09\""));
        assert!(remove_machine(block, "nope").is_err());
    }
}
