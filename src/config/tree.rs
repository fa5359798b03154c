//! A YAML document as a JSON value plus the line and column of every node.
//!
//! serde-saphyr parses the file into [`Node`]s wrapped in `Spanned`, which we flatten into a
//! `serde_json::Value` (for schema validation and typed deserialization) and an index from
//! JSON-pointer paths to source locations (for error messages).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::HashMap;

/// Line and column, 1-based, as editors count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    fn of(loc: &serde_saphyr::Location) -> Pos {
        Pos { line: loc.line() as u32, column: loc.column() as u32 }
    }
}

/// Where a node sits: its value and, for mapping entries, its key.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePos {
    pub value: Pos,
    pub key: Option<Pos>,
    /// Byte offset of the value in the source, when known.
    pub offset: Option<usize>,
}

#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Node, D2::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::UInt(v))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Node, E> {
                i64::try_from(v).map(Node::Int).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Node, E> {
                u64::try_from(v).map(Node::UInt).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
                Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Node::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    v.push(entry);
                }
                Ok(Node::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A parsed document: its value and where each node came from.
#[derive(Debug, Default)]
pub struct Located {
    pub value: Value,
    positions: HashMap<String, NodePos>,
    /// Mapping keys that are not strings (`1: x`, `[a]: b`): path and position.
    pub odd_keys: Vec<(String, Pos)>,
}

impl Located {
    /// The position of the node at a JSON pointer (`/machines/2/mac`), or of its nearest
    /// ancestor that has one.
    pub fn pos(&self, pointer: &str) -> NodePos {
        let mut p = pointer.to_owned();
        loop {
            if let Some(np) = self.positions.get(&p) {
                return *np;
            }
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => return NodePos::default(),
            }
        }
    }

    /// Position of the key of a mapping entry if there is one, else of its value.
    pub fn key_pos(&self, pointer: &str) -> Pos {
        let np = self.pos(pointer);
        np.key.unwrap_or(np.value)
    }

    pub fn exact(&self, pointer: &str) -> Option<NodePos> {
        self.positions.get(pointer).copied()
    }
}

/// Escapes one JSON-pointer segment.
pub fn escape(seg: &str) -> String {
    seg.replace('~', "~0").replace('/', "~1")
}

/// The error of a YAML text that cannot be parsed at all.
#[derive(Debug)]
pub struct SyntaxError {
    pub message: String,
    pub pos: Option<Pos>,
}

/// The key a "duplicate mapping key" parse error names, if it is one.
pub fn duplicate_key(message: &str) -> Option<&str> {
    let rest = message.split("duplicate mapping key: ").nth(1)?;
    let key = rest.split(',').next()?.trim();
    (!key.is_empty()).then_some(key)
}

/// Where `key` first stands in the block mapping whose repeated key is at `second`: the
/// nearest line above with the same key at the same column, before the mapping's parent
/// (a line indented less) begins. None for flow mappings and anything unusual.
pub fn first_occurrence(text: &str, key: &str, second: Pos) -> Option<Pos> {
    let lines: Vec<&str> = text.lines().collect();
    let col = second.column.checked_sub(1)? as usize;
    let mut i = (second.line as usize).checked_sub(2)?;
    loop {
        let line = *lines.get(i)?;
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = line.trim_start_matches(' ');
        let blank = body.is_empty() || body.starts_with('#');
        if !blank {
            // `- key:` opens a list item whose keys sit two columns further in.
            let (at, rest) = match body.strip_prefix("- ") {
                Some(r) => (indent + 2 + (r.len() - r.trim_start().len()), r.trim_start()),
                None => (indent, body),
            };
            let is_key = rest.strip_prefix(key).is_some_and(|r| r.starts_with(':'))
                || rest.strip_prefix(&format!("\"{key}\"")).is_some_and(|r| r.starts_with(':'));
            if at == col && is_key {
                return Some(Pos { line: i as u32 + 1, column: col as u32 + 1 });
            }
            if indent < col && at != col {
                return None;
            }
        }
        i = i.checked_sub(1)?;
    }
}

pub fn parse(text: &str) -> Result<Located, SyntaxError> {
    // YAML 1.2 booleans: `no`/`yes`/`on` stay strings (`hostKeyChecking: no` must not become false).
    let opts = serde_saphyr::options! { with_snippet: false, strict_booleans: true };
    let root: Spanned<Node> = serde_saphyr::from_str_with_options(text, opts).map_err(|e| {
        let pos = e.location().map(|l| Pos::of(&l)).filter(|p| p.line > 0);
        let mut message = e.to_string();
        // serde-saphyr prefixes "line L column C: " when it has a location; we print our own.
        if let Some(i) = message.find(": ")
            && message.starts_with("line ")
        {
            message = message[i + 2..].to_owned();
        }
        SyntaxError { message: message.lines().next().unwrap_or("invalid YAML").to_owned(), pos }
    })?;
    let mut out = Located::default();
    let value = flatten(root, String::new(), None, &mut out);
    out.value = value;
    Ok(out)
}

fn flatten(node: Spanned<Node>, path: String, key: Option<Pos>, out: &mut Located) -> Value {
    let pos = NodePos {
        value: Pos::of(&node.referenced),
        key,
        offset: node.referenced.span().byte_offset().map(|o| o as usize),
    };
    out.positions.insert(path.clone(), pos);
    match node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(i) => Value::from(i),
        Node::UInt(u) => Value::from(u),
        Node::Float(f) => serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => Value::Array(
            items.into_iter().enumerate().map(|(i, n)| flatten(n, format!("{path}/{i}"), None, out)).collect(),
        ),
        Node::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                let kpos = Pos::of(&k.referenced);
                let name = match k.value {
                    Node::Str(s) => s,
                    Node::Int(i) => i.to_string(),
                    Node::UInt(u) => u.to_string(),
                    Node::Bool(b) => b.to_string(),
                    Node::Float(f) => f.to_string(),
                    Node::Null => "null".to_owned(),
                    Node::Seq(_) | Node::Map(_) => {
                        out.odd_keys.push((path.clone(), kpos));
                        continue;
                    }
                };
                let child = format!("{path}/{}", escape(&name));
                let value = flatten(v, child, Some(kpos), out);
                map.insert(name, value);
            }
            Value::Object(map)
        }
    }
}

/// `/machines/2/mac` → `machines[2].mac`.
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            if seg.contains('.') {
                out.push_str(&format!("\"{seg}\""));
            } else {
                out.push_str(&seg);
            }
        }
    }
    if out.is_empty() { "(top level)".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_nodes() {
        let text = "a: 1\nmachines:\n  - {hostname: x, mac: 52:54:00:00:00:01}\n  - hostname: y\n";
        let l = parse(text).unwrap();
        assert_eq!(l.value["machines"][0]["mac"], "52:54:00:00:00:01");
        assert_eq!(l.pos("/machines/0/mac").value, Pos { line: 3, column: 24 });
        assert_eq!(l.pos("/machines/1/hostname").key, Some(Pos { line: 4, column: 5 }));
        // unknown paths fall back to the nearest ancestor
        assert_eq!(l.pos("/machines/1/nope").value.line, 4);
        assert_eq!(display_path("/machines/1/hostname"), "machines[1].hostname");
        assert_eq!(
            display_path("/kafka/cluster/config/min.insync.replicas"),
            "kafka.cluster.config.\"min.insync.replicas\""
        );
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.is_some(), "{e:?}");
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate"), "{e:?}");
    }
}
