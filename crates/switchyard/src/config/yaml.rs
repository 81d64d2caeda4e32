//! YAML into a tree where every node knows its line and column, so any problem found
//! later — a wrong type, an unset variable, an unknown alias — points at the exact place
//! in the file. Built on yaml-rust2's event parser; anchors, aliases and `<<` merge keys
//! work as in PyYAML (which LiteLLM uses).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::path::{KeyPath, Seg};

/// A position in the file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_marker(m: Marker) -> Self {
        // yaml-rust2 lines are 1-based, columns 0-based.
        Self { line: m.line(), column: m.col() + 1 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A key written twice in one mapping: the later value wins, as in PyYAML.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateKey {
    pub path: KeyPath,
    pub first: Pos,
    pub second: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// The document (None for an empty file) and any duplicate keys found.
#[derive(Debug, Default)]
pub struct Parsed {
    pub root: Option<Node>,
    pub duplicates: Vec<DuplicateKey>,
}

pub fn parse(text: &str) -> Result<Parsed, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        pos: Pos::from_marker(*e.marker()),
        message: e.info().to_owned(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    if builder.documents.len() > 1 {
        return Err(SyntaxError {
            pos: builder.second_document_at,
            message: "more than one YAML document (`---`) in the config file".to_owned(),
        });
    }
    Ok(Parsed { root: builder.documents.pop(), duplicates: builder.duplicates })
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.kind {
            Kind::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The node at `path`, or the deepest node on the way when the path runs out (so a
    /// problem about a value that is absent points at its parent). With `key_pos`, a
    /// map entry reports where its key is written instead of its value.
    pub fn locate(&self, path: &[Seg], key_pos: bool) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for seg in path {
            let next = match (seg, &node.kind) {
                (Seg::Key(k), Kind::Map(entries)) => entries
                    .iter()
                    .find(|e| &e.key == k)
                    .map(|e| (&e.value, if key_pos { e.key_pos } else { e.value.pos })),
                (Seg::Index(i), Kind::Seq(items)) => items.get(*i).map(|n| (n, n.pos)),
                _ => None,
            };
            match next {
                Some((n, p)) => {
                    node = n;
                    pos = p;
                }
                None => break,
            }
        }
        pos
    }

    /// The node at exactly `path`, if there is one.
    pub fn find(&self, path: &[Seg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.kind) {
                (Seg::Key(k), Kind::Map(entries)) => &entries.iter().find(|e| &e.key == k)?.value,
                (Seg::Index(i), Kind::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The JSON form handed to the raw serde structs. Non-finite floats have no JSON form
    /// and stay strings, so the numeric fields reject them with their own message.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::Number((*i).into()),
            Kind::Float(f) => {
                Number::from_f64(*f).map_or_else(|| Value::String(f.to_string()), Value::Number)
            }
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => {
                let mut map = Map::new();
                for e in entries {
                    map.insert(e.key.clone(), e.value.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// A short description of the node's type for messages ("a list", "a number").
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "true/false",
            Kind::Int(_) | Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// Resolves a plain scalar the way YAML 1.2's core schema does (yaml-rust2's rules), plus
/// the digit-group underscores of YAML 1.1 (`tpm: 100_000`), which PyYAML — and so
/// LiteLLM — reads as a number.
fn plain_scalar(v: String) -> Kind {
    if let Some(kind) = grouped_number(&v) {
        return kind;
    }
    match v.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        _ => {}
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Kind::Int(i);
        }
    } else if let Some(oct) = v.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Kind::Int(i);
    }
    if let Ok(i) = v.strip_prefix('+').unwrap_or(&v).parse::<i64>() {
        return Kind::Int(i);
    }
    match v.as_str() {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    // Words like `inf` or `infinity` parse as floats in Rust but are strings in YAML.
    if v.bytes().any(|b| b.is_ascii_digit())
        && let Ok(f) = v.parse::<f64>()
    {
        return Kind::Float(f);
    }
    Kind::Str(v)
}

/// `1_000`, `-20_000`, `1_000.5`: digits with `_` between them, as YAML 1.1 allows.
fn grouped_number(v: &str) -> Option<Kind> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let grouped = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !v.contains('_')
        || !int.starts_with(|c: char| c.is_ascii_digit())
        || !grouped(int)
        || !frac.is_none_or(grouped)
    {
        return None;
    }
    let plain = v.replace('_', "");
    match frac {
        None => plain.strip_prefix('+').unwrap_or(&plain).parse().ok().map(Kind::Int),
        Some(_) => plain.parse().ok().map(Kind::Float),
    }
}

fn scalar(v: String, style: TScalarStyle, tag: Option<&Tag>) -> Kind {
    if style != TScalarStyle::Plain {
        return Kind::Str(v);
    }
    match tag {
        Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix == "str" => Kind::Str(v),
        Some(t) if t.handle == "tag:yaml.org,2002:" => plain_scalar(v),
        // Custom tags (`!Ref`, `!ENV`) mean nothing here; keep the text.
        Some(_) => Kind::Str(v),
        None => plain_scalar(v),
    }
}

enum Frame {
    Seq { anchor: usize, pos: Pos, items: Vec<Node> },
    Map { anchor: usize, pos: Option<Pos>, entries: Vec<Entry>, key: Option<(String, Pos)> },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    duplicates: Vec<DuplicateKey>,
    error: Option<SyntaxError>,
    second_document_at: Pos,
    started_documents: usize,
}

impl Builder {
    fn path(&self) -> KeyPath {
        let mut path = KeyPath::default();
        for frame in &self.stack {
            match frame {
                Frame::Seq { items, .. } => path.push(Seg::Index(items.len())),
                Frame::Map { key: Some((k, _)), .. } => path.push(Seg::Key(k.clone())),
                Frame::Map { key: None, .. } => {}
            }
        }
        path
    }

    fn fail(&mut self, pos: Pos, message: &str) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { pos, message: message.to_owned() });
        }
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(frame) = self.stack.last_mut() else {
            self.documents.push(node);
            return;
        };
        let mut bad_key = None;
        match frame {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map { entries, key, pos, .. } => {
                if let Some((k, key_pos)) = key.take() {
                    entries.push(Entry { key: k, key_pos, value: node });
                } else {
                    if pos.is_none() {
                        *pos = Some(node.pos);
                    }
                    let name = match node.kind {
                        Kind::Str(s) => Some(s),
                        Kind::Int(i) => Some(i.to_string()),
                        Kind::Float(f) => Some(f.to_string()),
                        Kind::Bool(b) => Some(b.to_string()),
                        Kind::Null => Some("null".to_owned()),
                        Kind::Seq(_) | Kind::Map(_) => None,
                    };
                    match name {
                        Some(name) => *key = Some((name, node.pos)),
                        None => bad_key = Some(node.pos),
                    }
                }
            }
        }
        if let Some(pos) = bad_key {
            self.fail(pos, "a mapping key must be a plain value, not a list or mapping");
        }
    }

    fn close_map(&mut self, anchor: usize, pos: Option<Pos>, entries: Vec<Entry>, end: Pos) {
        let mut path = self.path();
        let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
        let mut merges = Vec::new();
        for e in entries {
            if e.key == "<<" {
                merges.push(e.value);
                continue;
            }
            if let Some(i) = kept.iter().position(|k| k.key == e.key) {
                path.push(Seg::Key(e.key.clone()));
                self.duplicates.push(DuplicateKey {
                    path: path.clone(),
                    first: kept[i].key_pos,
                    second: e.key_pos,
                });
                path.pop();
                kept.remove(i);
            }
            kept.push(e);
        }
        // `<<: *base` (or a list of them) adds the keys this mapping does not set itself;
        // with several sources the earlier one wins, as in PyYAML.
        for merge in merges {
            let sources = match merge.kind {
                Kind::Map(entries) => vec![entries],
                Kind::Seq(items) => {
                    let mut maps = Vec::new();
                    for item in items {
                        match item.kind {
                            Kind::Map(entries) => maps.push(entries),
                            _ => self.fail(item.pos, "`<<` merges mappings only"),
                        }
                    }
                    maps
                }
                _ => {
                    self.fail(merge.pos, "`<<` merges mappings only");
                    Vec::new()
                }
            };
            for source in sources {
                for e in source {
                    if !kept.iter().any(|k| k.key == e.key) {
                        kept.push(e);
                    }
                }
            }
        }
        let node = Node { kind: Kind::Map(kept), pos: pos.unwrap_or(end) };
        self.finish(node, anchor);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_marker(mark);
        match ev {
            Event::DocumentStart => {
                self.started_documents += 1;
                if self.started_documents == 2 {
                    self.second_document_at = pos;
                }
            }
            Event::Scalar(v, style, anchor, tag) => {
                let kind = scalar(v, style, tag.as_ref());
                self.finish(Node { kind, pos }, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let node = node.clone();
                    self.finish(node, 0);
                }
                None => self.fail(pos, "alias refers to an anchor that is not defined"),
            },
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq { anchor, pos, items: Vec::new() });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { anchor, pos, items }) = self.stack.pop() {
                    self.finish(Node { kind: Kind::Seq(items), pos }, anchor);
                }
            }
            Event::MappingStart(anchor, _) => {
                // A block mapping's start mark points past its first key; the first key's
                // own position is what a reader expects, so it is taken from there.
                self.stack.push(Frame::Map { anchor, pos: None, entries: Vec::new(), key: None });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { anchor, pos: start, entries, .. }) = self.stack.pop() {
                    self.close_map(anchor, start, entries, pos);
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().root.unwrap()
    }

    fn path(segs: &[&str]) -> Vec<Seg> {
        segs.iter()
            .map(|s| s.parse::<usize>().map_or_else(|_| Seg::Key((*s).to_owned()), Seg::Index))
            .collect()
    }

    #[test]
    fn every_node_knows_its_line_and_column() {
        let n = root("model_list:\n  - model_name: cheap\n    litellm_params:\n      rpm: 10\n");
        assert_eq!(
            n.locate(&path(&["model_list", "0", "model_name"]), false),
            Pos { line: 2, column: 17 }
        );
        assert_eq!(
            n.locate(&path(&["model_list", "0", "model_name"]), true),
            Pos { line: 2, column: 5 }
        );
        assert_eq!(n.locate(&path(&["model_list", "0"]), false), Pos { line: 2, column: 5 });
        assert_eq!(
            n.locate(&path(&["model_list", "0", "litellm_params", "rpm"]), false),
            Pos { line: 4, column: 12 }
        );
        // A path that runs out points at the deepest node that exists.
        assert_eq!(
            n.locate(&path(&["model_list", "0", "litellm_params", "tpm"]), false),
            Pos { line: 4, column: 7 }
        );
    }

    #[test]
    fn scalars_resolve_like_yaml_core_and_quotes_keep_strings() {
        let n = root(
            "a: 10\nb: '10'\nc: 1.5\nd: true\ne:\nf: os.environ/X\ng: !!str 7\nh: 2024-01-01\n",
        );
        assert_eq!(n.get("a").unwrap().kind, Kind::Int(10));
        assert_eq!(n.get("b").unwrap().kind, Kind::Str("10".into()));
        assert_eq!(n.get("c").unwrap().kind, Kind::Float(1.5));
        assert_eq!(n.get("d").unwrap().kind, Kind::Bool(true));
        assert_eq!(n.get("e").unwrap().kind, Kind::Null);
        assert_eq!(n.get("f").unwrap().as_str(), Some("os.environ/X"));
        assert_eq!(n.get("g").unwrap().kind, Kind::Str("7".into()));
        assert_eq!(n.get("h").unwrap().as_str(), Some("2024-01-01"));
        let n = root("tpm: 100_000\nneg: -1_0\nf: 1_000.5\ns: a_1\nq: '1_000'\n");
        assert_eq!(n.get("tpm").unwrap().kind, Kind::Int(100_000), "as PyYAML reads it");
        assert_eq!(n.get("neg").unwrap().kind, Kind::Int(-10));
        assert_eq!(n.get("f").unwrap().kind, Kind::Float(1000.5));
        assert_eq!(n.get("s").unwrap().kind, Kind::Str("a_1".into()));
        assert_eq!(n.get("q").unwrap().kind, Kind::Str("1_000".into()));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = root(
            "base: &base\n  api_base: http://x\n  rpm: 1\nm:\n  <<: *base\n  rpm: 2\nalias: *base\n",
        );
        let m = n.get("m").unwrap();
        assert_eq!(m.get("rpm").unwrap().kind, Kind::Int(2));
        assert_eq!(m.get("api_base").unwrap().as_str(), Some("http://x"));
        // Merged values keep the position where they were written.
        assert_eq!(m.get("api_base").unwrap().pos.line, 2);
        assert_eq!(n.get("alias").unwrap().get("rpm").unwrap().kind, Kind::Int(1));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_and_are_reported() {
        let parsed = parse("a:\n  x: 1\n  x: 2\n").unwrap();
        let root = parsed.root.unwrap();
        assert_eq!(root.get("a").unwrap().get("x").unwrap().kind, Kind::Int(2));
        assert_eq!(parsed.duplicates.len(), 1);
        let d = &parsed.duplicates[0];
        assert_eq!(d.path.to_string(), "a.x");
        assert_eq!((d.first.line, d.second.line), (2, 3));
    }

    #[test]
    fn syntax_errors_carry_line_column_and_the_parser_text() {
        let err = parse("model_list:\n  - model_name: a\n   bad: [1, 2\n").unwrap_err();
        assert!(err.pos.line >= 3, "{err:?}");
        assert!(!err.message.is_empty());
        let err = parse("a: b: c\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, column: 5 });
        assert!(err.message.contains("mapping values are not allowed"), "{}", err.message);
    }

    #[test]
    fn an_empty_file_is_an_empty_document() {
        assert!(parse("").unwrap().root.is_none());
        assert!(parse("# only a comment\n").unwrap().root.is_none());
    }
}
