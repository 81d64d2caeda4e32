//! `include:` — other YAML files merged into the config, as LiteLLM's proxy does it: each
//! file (a path relative to the config's directory) is read in order, and for each of its
//! top-level keys a list extends the config's list of that key (`model_list` entries
//! append) while anything else replaces the config's value (a warning says so when the
//! config had one). Every node keeps its place in the file it was written in, and
//! [`Sources`] says which file that is, so a problem in an included file points there.

use std::path::{Path, PathBuf};

use super::ConfigProblem;
use super::model::{ConfigWarning, Location};
use super::path::KeyPath;
use super::yaml::{self, Kind, Node};

/// Which file each part of the merged tree was written in.
#[derive(Debug, Clone)]
pub struct Sources {
    main: PathBuf,
    /// Key path → the included file its value came from.
    parts: Vec<(KeyPath, PathBuf)>,
}

impl Sources {
    pub fn single(main: &Path) -> Self {
        Self { main: main.to_owned(), parts: Vec::new() }
    }

    /// The file the value at `path` (or its nearest written parent) was written in.
    pub fn file_of(&self, path: &KeyPath) -> &Path {
        self.parts
            .iter()
            .filter(|(prefix, _)| path.segs().starts_with(prefix.segs()))
            .max_by_key(|(prefix, _)| prefix.segs().len())
            .map_or(self.main.as_path(), |(_, file)| file.as_path())
    }

    /// A location in the file `path` was written in.
    pub fn location(&self, path: &KeyPath, pos: yaml::Pos) -> Location {
        Location { file: self.file_of(path).to_owned(), line: pos.line, column: pos.column }
    }

    /// The files merged in, in order.
    pub fn included(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for (_, f) in &self.parts {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        out
    }
}

/// Merges the files `include` names into `root`. A file that cannot be read or parsed is a
/// problem (LiteLLM does not start without it either); the names themselves are checked
/// for type with the other top-level keys.
pub fn expand(
    root: &mut Node,
    config: &Path,
    problems: &mut Vec<ConfigProblem>,
    warnings: &mut Vec<ConfigWarning>,
) -> Sources {
    let mut sources = Sources::single(config);
    let names: Vec<(String, yaml::Pos, KeyPath)> = match root.get("include").map(|n| &n.kind) {
        Some(Kind::Str(s)) => vec![(s.clone(), root.locate(&[key("include")], false), inc())],
        Some(Kind::Seq(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_str().map(|s| (s.to_owned(), n.pos, inc().index(i))))
            .collect(),
        _ => return sources,
    };
    let dir = config.parent().unwrap_or(Path::new("."));
    for (name, pos, name_path) in names {
        let file = dir.join(&name);
        let at = Location { file: config.to_owned(), line: pos.line, column: pos.column };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(ConfigProblem {
                    id: "CFG-08",
                    location: Some(at),
                    key: name_path.to_string(),
                    message: format!("the included file {} cannot be read: {e}", file.display()),
                    remedy: format!(
                        "create {}, or fix the name (it is relative to the config's directory, {})",
                        file.display(),
                        dir.display()
                    ),
                });
                continue;
            }
        };
        let included = match yaml::parse(&text) {
            Ok(p) => {
                for d in p.duplicates {
                    warnings.push(ConfigWarning {
                        id: "CFG-03",
                        key: d.path.to_string(),
                        location: Some(location(&file, d.second)),
                        message: format!(
                            "`{}` is written twice in {} (also at line {}); the later value \
                             wins, as in LiteLLM",
                            d.path,
                            file.display(),
                            d.first.line
                        ),
                    });
                }
                p.root
            }
            Err(e) => {
                problems.push(ConfigProblem {
                    id: "CFG-03",
                    location: Some(Location {
                        file: file.clone(),
                        line: e.pos.line,
                        column: e.pos.column,
                    }),
                    key: String::new(),
                    message: format!("YAML syntax error in the included file: {}", e.message),
                    remedy: format!(
                        "fix the YAML of {} at line {} column {}",
                        file.display(),
                        e.pos.line,
                        e.pos.column
                    ),
                });
                continue;
            }
        };
        let Some(included) = included else { continue };
        let Kind::Map(entries) = included.kind else {
            problems.push(ConfigProblem {
                id: "CFG-09",
                location: Some(Location {
                    file: file.clone(),
                    line: included.pos.line,
                    column: included.pos.column,
                }),
                key: String::new(),
                message: format!(
                    "the included file {} is not a mapping of config sections",
                    file.display()
                ),
                remedy: "write it like a config: `model_list:`, `litellm_settings:`, ..."
                    .to_owned(),
            });
            continue;
        };
        merge(root, entries, &file, config, &mut sources, warnings);
    }
    sources
}

fn merge(
    root: &mut Node,
    entries: Vec<yaml::Entry>,
    file: &Path,
    config: &Path,
    sources: &mut Sources,
    warnings: &mut Vec<ConfigWarning>,
) {
    let Kind::Map(top) = &mut root.kind else { return };
    for entry in entries {
        let path = KeyPath::root().key(entry.key.clone());
        if entry.key == "include" {
            warnings.push(ConfigWarning {
                id: "CFG-06",
                key: path.to_string(),
                location: Some(location(file, entry.key_pos)),
                message: "ignored: an include inside an included file is not read; list the \
                          file in the config's own include"
                    .to_owned(),
            });
            continue;
        }
        match top.iter_mut().find(|e| e.key == entry.key) {
            Some(existing) => match (&mut existing.value.kind, entry.value.kind) {
                (Kind::Seq(items), Kind::Seq(more)) => {
                    for node in more {
                        sources.parts.push((path.index(items.len()), file.to_owned()));
                        items.push(node);
                    }
                }
                (_, kind) => {
                    let before = sources.file_of(&path).to_owned();
                    warnings.push(ConfigWarning {
                        id: "CFG-06",
                        key: path.to_string(),
                        location: Some(location(file, entry.key_pos)),
                        message: format!(
                            "`{}` of {} replaces the one written in {} (line {}), as in LiteLLM: \
                             only lists are combined",
                            entry.key,
                            file.display(),
                            if before == config { "the config" } else { "an earlier include" },
                            existing.key_pos.line
                        ),
                    });
                    existing.key_pos = entry.key_pos;
                    existing.value = Node { kind, pos: entry.value.pos };
                    sources.parts.retain(|(p, _)| !p.segs().starts_with(path.segs()));
                    sources.parts.push((path, file.to_owned()));
                }
            },
            None => {
                sources.parts.push((path, file.to_owned()));
                top.push(entry);
            }
        }
    }
}

fn location(file: &Path, pos: yaml::Pos) -> Location {
    Location { file: file.to_owned(), line: pos.line, column: pos.column }
}

fn key(k: &str) -> super::path::Seg {
    super::path::Seg::Key(k.to_owned())
}

fn inc() -> KeyPath {
    KeyPath::root().key("include")
}
