//! Key paths like `model_list[2].litellm_params.api_key`, kept as segments so keys that
//! contain dots (`gpt-3.5-turbo` in a fallback list) are never split when looked up.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(Seg::Key(key.into()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Seg::Index(index));
        next
    }

    pub fn push(&mut self, seg: Seg) {
        self.0.push(seg);
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }

    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// Appends the segments of a serde_path_to_error path (relative to `self`).
    pub fn join_serde(&self, path: &serde_path_to_error::Path) -> Self {
        let mut next = self.clone();
        for seg in path.iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => next.0.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => next.0.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    next.0.push(Seg::Key(variant.clone()));
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        next
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_person_writes_it() {
        let p = KeyPath::root().key("model_list").index(2).key("litellm_params").key("api_key");
        assert_eq!(p.to_string(), "model_list[2].litellm_params.api_key");
        assert_eq!(KeyPath::root().to_string(), "");
    }
}
