//! A wrapper for values that must never reach logs, errors or command output.
//!
//! `Debug` and `Display` show at most a short prefix; the value is only reachable through
//! [`Secret::expose`], which makes every place that handles the raw secret easy to find.

use std::fmt;

use subtle::ConstantTimeEq;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value. Call only where the secret is sent to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A prefix short enough to recognise a key without revealing it: `sk-ant-a…`,
    /// `ASIAXY…`. Short secrets show nothing at all.
    pub fn safe_prefix(&self) -> String {
        let keep = if self.0.len() >= 24 {
            8
        } else if self.0.len() >= 12 {
            4
        } else {
            0
        };
        let prefix: String = self.0.chars().take(keep).collect();
        format!("{prefix}…")
    }

    /// Compares in constant time so that a caller cannot learn a key byte by byte
    /// from response timings.
    pub fn matches(&self, candidate: &str) -> bool {
        // Lengths are compared in the open: they are not secret enough to matter and
        // `ct_eq` on slices of different lengths returns false anyway.
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.safe_prefix())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.safe_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_whole_secret() {
        let s = Secret::new("sk-ant-api03-abcdefghijklmnopqrstuvwxyz");
        assert_eq!(format!("{s}"), "sk-ant-a…");
        assert_eq!(format!("{s:?}"), "Secret(sk-ant-a…)");
        let short = Secret::new("hunter2");
        assert_eq!(format!("{short}"), "…");
    }

    #[test]
    fn matches_only_the_exact_value() {
        let s = Secret::new("sk-master-1234");
        assert!(s.matches("sk-master-1234"));
        assert!(!s.matches("sk-master-123"));
        assert!(!s.matches("sk-master-12345"));
        assert!(!s.matches(""));
    }
}
