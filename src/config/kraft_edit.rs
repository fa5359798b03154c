//! The lines of `cluster.yaml` that change when its Kafka moves from ZooKeeper to KRaft,
//! for `homelab upgrade` (which lists them, and with `--write` writes them in place).
//!
//! A file that declares a Strimzi release without ZooKeeper (0.46 and later) while its
//! `kafka.cluster` still describes a ZooKeeper cluster is rewritten the way the migration
//! leaves the cluster: `metadata: kraft` with `brokerPool: kafka` (the migration keeps the
//! brokers in the node pool `kafka`, so their claims stay), the `zookeeper:` ensemble becomes
//! the `controllers:` (same replicas and storage), the pinned `inter.broker.protocol.version`
//! and `log.message.format.version` go, and a Kafka version the release does not run becomes
//! the release's default. Each change is whole lines of the original text, so every other
//! byte (comments, order, quoting, line endings) stays; the result is parsed again and must
//! equal the expected document, or nothing is offered but the changes in words. Pure: no I/O.

use super::tree::{self, Located};
use crate::catalog::StrimziRelease;
use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

const IBP: &str = "inter.broker.protocol.version";
const LMF: &str = "log.message.format.version";

/// One change: `remove` lines starting at line `line` (1-based, of the original text)
/// replaced by `insert` (without line ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineChange {
    pub line: usize,
    pub removed: Vec<String>,
    pub inserted: Vec<String>,
}

/// The rewritten text and its changes, in file order.
#[derive(Debug, Clone)]
pub struct FileEdit {
    pub text: String,
    pub changes: Vec<LineChange>,
}

impl FileEdit {
    /// The changes as a small diff: line number, `-` old line, `+` new line.
    pub fn describe(&self) -> String {
        let mut t = String::new();
        for c in &self.changes {
            let mut first = true;
            let mut num = |t: &mut String| {
                if first {
                    t.push_str(&format!("  {:>4} ", c.line));
                    first = false;
                } else {
                    t.push_str("       ");
                }
            };
            for l in &c.removed {
                num(&mut t);
                t.push_str(&format!("- {}\n", l.trim_start()));
            }
            for l in &c.inserted {
                num(&mut t);
                t.push_str(&format!("+ {}\n", l.trim_start()));
            }
        }
        t
    }
}

/// The lines of the original text.
struct Lines<'a> {
    lines: Vec<&'a str>,
    nl: &'static str,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { lines: text.split_inclusive('\n').collect(), nl: if text.contains("\r\n") { "\r\n" } else { "\n" } }
    }
    /// Line `n` (1-based) without its line end.
    fn get(&self, n: usize) -> &'a str {
        self.lines.get(n.wrapping_sub(1)).copied().unwrap_or("").trim_end_matches(['\n', '\r'])
    }
    /// The last line (1-based, inclusive) of the block mapping entry whose key stands on
    /// line `n` at column `col` (0-based).
    fn entry_end(&self, n: usize, col: usize) -> usize {
        super::edit::block_end(&self.lines, n, col)
    }
}

/// Where the key of the mapping entry at `pointer` stands: its line (1-based) and its
/// column (0-based bytes), when it opens its line (a block mapping entry).
fn block_key(located: &Located, lines: &Lines, pointer: &str) -> Option<(usize, usize)> {
    let key = located.exact(pointer)?.key?;
    let n = key.line as usize;
    let line = lines.get(n);
    let col = line.char_indices().nth(key.column as usize - 1).map(|(b, _)| b)?;
    line[..col].trim().is_empty().then_some((n, col))
}

/// What `to_kraft` changes, in words (for a file laid out in a way it does not edit).
fn in_words(release: &StrimziRelease, version_change: Option<&str>) -> String {
    let mut w = vec![
        "under kafka.cluster: `metadata: kraft` and `brokerPool: kafka`".to_owned(),
        "rename `zookeeper:` to `controllers:` (same replicas and storage)".to_owned(),
        format!("delete `{IBP}` and `{LMF}` under kafka.cluster.config"),
    ];
    if let Some(v) = version_change {
        w.push(format!("`version: {v}` (Strimzi {} runs {})", release.version, release.kafka_versions().join(", ")));
    }
    w.join("; ")
}

/// The file's Kafka rewritten for KRaft under `release`, or None when the file needs no
/// change (its Kafka is KRaft already, or the release still runs ZooKeeper).
pub fn to_kraft(text: &str, release: &StrimziRelease) -> Result<Option<FileEdit>> {
    let located = tree::parse(text).map_err(|e| anyhow!("cannot parse the file: {}", e.message))?;
    let Some(cluster) = located.value.pointer("/kafka/cluster").and_then(Value::as_object) else { return Ok(None) };
    let metadata = cluster.get("metadata").and_then(Value::as_str);
    let zookeeper = metadata == Some("zookeeper") || (metadata.is_none() && cluster.contains_key("zookeeper"));
    if release.zookeeper || !zookeeper {
        return Ok(None);
    }
    let version = cluster.get("version").and_then(Value::as_str);
    let new_version = version.filter(|v| release.kafka_version(v).is_none()).map(|_| release.default_kafka.clone());
    let by_hand = || format!("edit the file yourself: {}", in_words(release, new_version.as_deref()));
    let lines = Lines::new(text);
    let nl = lines.nl;
    let mut changes: Vec<LineChange> = Vec::new();
    let replace =
        |n: usize, new: Vec<String>| LineChange { line: n, removed: vec![lines.get(n).to_owned()], inserted: new };
    let has_pool = cluster.contains_key("brokerPool");
    // 1. metadata: kraft (and the brokers' pool), where `metadata:` stands or after `name:`.
    match block_key(&located, &lines, "/kafka/cluster/metadata") {
        Some((n, col)) => {
            let line = lines.get(n);
            let first = with_value(line, col, "metadata", "kraft").ok_or_else(|| {
                anyhow!("kafka.cluster.metadata is written in a way this edit does not read; {}", by_hand())
            })?;
            let mut new = vec![first];
            if !has_pool {
                new.push(format!("{}brokerPool: kafka", &line[..col]));
            }
            changes.push(replace(n, new));
        }
        None if metadata.is_some() => bail!("kafka.cluster.metadata is not on a line of its own; {}", by_hand()),
        None => {
            let (n, col) = block_key(&located, &lines, "/kafka/cluster/name")
                .ok_or_else(|| anyhow!("kafka.cluster is not a block mapping; {}", by_hand()))?;
            let line = lines.get(n);
            let mut new = vec![line.to_owned(), format!("{}metadata: kraft", &line[..col])];
            if !has_pool {
                new.push(format!("{}brokerPool: kafka", &line[..col]));
            }
            changes.push(replace(n, new));
        }
    }
    // 2. The ensemble: `zookeeper:` → `controllers:` (or gone when controllers are declared).
    if cluster.contains_key("zookeeper") {
        let (n, col) = block_key(&located, &lines, "/kafka/cluster/zookeeper")
            .ok_or_else(|| anyhow!("kafka.cluster.zookeeper is not on a line of its own; {}", by_hand()))?;
        if cluster.contains_key("controllers") {
            let end = lines.entry_end(n, col);
            changes.push(LineChange {
                line: n,
                removed: (n..=end).map(|i| lines.get(i).to_owned()).collect(),
                inserted: vec![],
            });
        } else {
            let line = lines.get(n);
            let rest = line[col..].strip_prefix("zookeeper").filter(|r| r.starts_with(':')).ok_or_else(|| {
                anyhow!("kafka.cluster.zookeeper is written in a way this edit does not read; {}", by_hand())
            })?;
            changes.push(replace(n, vec![format!("{}controllers{rest}", &line[..col])]));
        }
    }
    // 3. The pinned protocol settings (and `config:` itself when nothing else is in it).
    let config = cluster.get("config").and_then(Value::as_object);
    let pinned: Vec<&str> = [IBP, LMF].into_iter().filter(|k| config.is_some_and(|c| c.contains_key(*k))).collect();
    if !pinned.is_empty() {
        let whole = config.is_some_and(|c| c.len() == pinned.len());
        let keys: Vec<String> = if whole {
            vec!["/kafka/cluster/config".into()]
        } else {
            pinned.iter().map(|k| format!("/kafka/cluster/config/{}", tree::escape(k))).collect()
        };
        for p in keys {
            let (n, col) = block_key(&located, &lines, &p)
                .ok_or_else(|| anyhow!("{} is not on a line of its own; {}", tree::display_path(&p), by_hand()))?;
            let end = lines.entry_end(n, col);
            changes.push(LineChange {
                line: n,
                removed: (n..=end).map(|i| lines.get(i).to_owned()).collect(),
                inserted: vec![],
            });
        }
    }
    // 4. A Kafka version the release does not run: its default.
    if let Some(v) = &new_version {
        let (n, col) = block_key(&located, &lines, "/kafka/cluster/version")
            .ok_or_else(|| anyhow!("kafka.cluster.version is not on a line of its own; {}", by_hand()))?;
        let new = with_value(lines.get(n), col, "version", v).ok_or_else(|| {
            anyhow!("kafka.cluster.version is written in a way this edit does not read; {}", by_hand())
        })?;
        changes.push(replace(n, vec![new]));
    }
    changes.sort_by_key(|c| c.line);
    if changes.windows(2).any(|w| w[0].line + w[0].removed.len() > w[1].line) {
        bail!("the changes overlap in this layout; {}", by_hand());
    }
    // Apply, bottom-up by whole lines.
    let mut out: Vec<String> = lines.lines.iter().map(|l| (*l).to_owned()).collect();
    for c in changes.iter().rev() {
        let ending = |l: &str| if l.ends_with('\n') { nl } else { "" };
        let last_end = out.get(c.line - 2 + c.removed.len()).map(|l| ending(l)).unwrap_or(nl);
        let new: Vec<String> = c
            .inserted
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{l}{}", if i + 1 == c.inserted.len() { last_end } else { nl }))
            .collect();
        out.splice(c.line - 1..c.line - 1 + c.removed.len(), new);
    }
    let out: String = out.concat();
    // The rewritten document must be exactly the expected one.
    let mut want = located.value.clone();
    if let Some(c) = want.pointer_mut("/kafka/cluster").and_then(Value::as_object_mut) {
        c.insert("metadata".into(), json!("kraft"));
        if !has_pool {
            c.insert("brokerPool".into(), json!("kafka"));
        }
        if let Some(z) = c.remove("zookeeper")
            && !c.contains_key("controllers")
        {
            c.insert("controllers".into(), z);
        }
        if let Some(cfg) = c.get_mut("config").and_then(Value::as_object_mut) {
            cfg.remove(IBP);
            cfg.remove(LMF);
            if cfg.is_empty() {
                c.remove("config");
            }
        }
        if let Some(v) = &new_version {
            c.insert("version".into(), json!(v));
        }
    }
    let after =
        tree::parse(&out).map_err(|e| anyhow!("the rewrite would break the file ({}); {}", e.message, by_hand()))?;
    if after.value != want {
        bail!("the rewrite did not give the expected file; {}", by_hand());
    }
    Ok(Some(FileEdit { text: out, changes }))
}

/// The line of the entry `key: value` (key at byte `col`) with its scalar value replaced by
/// `value`; the spacing and a trailing ` # comment` stay.
fn with_value(line: &str, col: usize, key: &str, value: &str) -> Option<String> {
    line.get(col..)?.strip_prefix(key)?.strip_prefix(':')?;
    let at = col + key.len() + 1; // after `key:`
    let rest = line.get(at..).unwrap_or("");
    let start = at + (rest.len() - rest.trim_start().len());
    let tail = &line[start..];
    let end = start + tail.find(" #").map(|i| tail[..i].trim_end().len()).unwrap_or(tail.trim_end().len());
    Some(format!("{}{value}{}", &line[..start], &line[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn rel(v: &str) -> StrimziRelease {
        Catalog::embedded().unwrap().strimzi(v).cloned().unwrap()
    }

    const SEED: &str = "# my lab\nkafka:\n  strimziVersion: 1.2.0\n  cluster:\n    name: my-cluster\n    version: 3.3.2   # the old one\n    replicas: 3\n    metadata: zookeeper  # 2023\n    config:\n      min.insync.replicas: 2\n      inter.broker.protocol.version: \"3.3\"\n    zookeeper: {replicas: 3, storage: {size: 100Gi, class: rook-ceph-block}}\n    entityOperator: {topicOperator: {}}\n";

    #[test]
    fn the_seed_kafka_becomes_kraft_line_by_line() {
        let e = to_kraft(SEED, &rel("1.2.0")).unwrap().unwrap();
        assert_eq!(
            e.text,
            "# my lab\nkafka:\n  strimziVersion: 1.2.0\n  cluster:\n    name: my-cluster\n    version: 4.3.1   # the old one\n    replicas: 3\n    metadata: kraft  # 2023\n    brokerPool: kafka\n    config:\n      min.insync.replicas: 2\n    controllers: {replicas: 3, storage: {size: 100Gi, class: rook-ceph-block}}\n    entityOperator: {topicOperator: {}}\n"
        );
        assert_eq!(e.changes.iter().map(|c| c.line).collect::<Vec<_>>(), [6, 8, 11, 12]);
        let d = e.describe();
        assert!(
            d.contains(
                "     8 - metadata: zookeeper  # 2023\n       + metadata: kraft  # 2023\n       + brokerPool: kafka\n"
            ),
            "{d}"
        );
        assert!(d.contains("    11 - inter.broker.protocol.version: \"3.3\"\n"), "{d}");
        // Once rewritten there is nothing left to change; a release with ZooKeeper changes nothing.
        assert!(to_kraft(&e.text, &rel("1.2.0")).unwrap().is_none());
        assert!(to_kraft(SEED, &rel("0.45.2")).unwrap().is_none());
    }

    #[test]
    fn crlf_an_only_pin_and_declared_controllers() {
        let text = "kafka:\r\n  cluster:\r\n    name: c\r\n    version: 4.0.0\r\n    config:\r\n      inter.broker.protocol.version: \"3.9\"\r\n      log.message.format.version: \"3.9\"\r\n    zookeeper:\r\n      replicas: 3\r\n      storage: {size: 10Gi}\r\n    controllers: {replicas: 3, storage: {size: 20Gi}}\r\n";
        let e = to_kraft(text, &rel("0.47.0")).unwrap().unwrap();
        assert_eq!(
            e.text,
            "kafka:\r\n  cluster:\r\n    name: c\r\n    metadata: kraft\r\n    brokerPool: kafka\r\n    version: 4.0.0\r\n    controllers: {replicas: 3, storage: {size: 20Gi}}\r\n"
        );
    }

    #[test]
    fn a_flow_mapping_gets_the_changes_in_words() {
        let text =
            "kafka:\n  cluster: {name: c, metadata: zookeeper, zookeeper: {replicas: 3, storage: {size: 1Gi}}}\n";
        let e = to_kraft(text, &rel("1.2.0")).unwrap_err().to_string();
        assert!(e.contains("edit the file yourself") && e.contains("`brokerPool: kafka`"), "{e}");
    }
}
