//! Wildcard `model_name`s as LiteLLM writes them (`anthropic/*`, `claude-*`, `*`): which
//! requested names a pattern matches, what its `*`s matched, and how specific it is.

/// The parts of `name` each `*` of `pattern` matched, in order; `None` when it does not
/// match. The whole name must match. A `*` matches as little as it can, except the last,
/// which takes the rest, as LiteLLM's `(.*)` groups do for the patterns written in practice.
pub fn captures<'n>(pattern: &str, name: &'n str) -> Option<Vec<&'n str>> {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let mut rest = name.strip_prefix(first)?;
    let literals: Vec<&str> = pieces.collect();
    let mut out = Vec::with_capacity(literals.len());
    for (i, literal) in literals.iter().enumerate() {
        if i + 1 == literals.len() {
            // The last `*` takes everything up to the pattern's literal ending.
            let taken = rest.strip_suffix(literal)?;
            out.push(taken);
            rest = "";
        } else if literal.is_empty() {
            out.push("");
        } else {
            let at = rest.find(literal)?;
            out.push(&rest[..at]);
            rest = &rest[at + literal.len()..];
        }
    }
    rest.is_empty().then_some(out)
}

/// `model` with each `*` replaced by what the pattern's `*`s matched, in order. A `model`
/// without `*` is used as written (every matched name goes to that one model).
pub fn fill(model: &str, parts: &[&str]) -> String {
    let mut out = String::with_capacity(model.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    let mut parts = parts.iter();
    let mut pieces = model.split('*');
    out.push_str(pieces.next().unwrap_or_default());
    for piece in pieces {
        out.push_str(parts.next().copied().unwrap_or_default());
        out.push_str(piece);
    }
    out
}

/// `provider/name` for a bare name whose provider LiteLLM infers (`claude-sonnet-4-6` →
/// `anthropic/claude-sonnet-4-6`, `us.anthropic.claude-…` → `bedrock/us.anthropic.claude-…`),
/// the second form LiteLLM's pattern router tries.
pub fn inferred_name(name: &str) -> Option<String> {
    if name.contains('/') {
        return None;
    }
    let r = super::provider::parse_model(name, None).ok()?;
    (r.provider != super::ProviderKind::Unsupported)
        .then(|| format!("{}/{}", r.provider.prefix(), r.model))
}

/// What a wildcard deployment's `*`s match in `name` (as sent, else with its inferred
/// provider prefix); `None` when its `model_name` matches neither.
pub fn parts_for(d: &super::Deployment, name: &str) -> Option<Vec<String>> {
    let own = |n: &str| captures(&d.alias, n).map(|p| p.into_iter().map(str::to_owned).collect());
    own(name).or_else(|| own(&inferred_name(name)?))
}

/// How specific a pattern is: its literal characters. Longer wins (`anthropic/claude-*`
/// over `anthropic/*` over `*`), as LiteLLM orders patterns by length.
pub fn specificity(pattern: &str) -> usize {
    pattern.len() - pattern.matches('*').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_wildcard_captures_the_model_id() {
        assert_eq!(captures("anthropic/*", "anthropic/claude-x"), Some(vec!["claude-x"]));
        assert_eq!(captures("anthropic/*", "openai/gpt-4o"), None);
        assert_eq!(captures("*", "whatever/it-is"), Some(vec!["whatever/it-is"]));
        assert_eq!(captures("claude-*", "claude-sonnet-4-6"), Some(vec!["sonnet-4-6"]));
        assert_eq!(captures("claude-*", "gpt-4o"), None);
    }

    #[test]
    fn inner_and_trailing_literals_must_match_too() {
        assert_eq!(captures("team::*::static::*", "team::a::static::b"), Some(vec!["a", "b"]));
        assert_eq!(captures("*-latest", "claude-latest"), Some(vec!["claude"]));
        assert_eq!(captures("*-latest", "claude-latest-2"), None);
        assert_eq!(captures("exact", "exact"), Some(vec![]));
    }

    #[test]
    fn the_matched_parts_fill_the_model() {
        assert_eq!(fill("claude-*", &["sonnet-4-6"]), "claude-sonnet-4-6");
        assert_eq!(fill("*", &["gpt-4o"]), "gpt-4o");
        assert_eq!(fill("claude-sonnet-4-5", &["anything"]), "claude-sonnet-4-5");
        assert_eq!(fill("a/*/b/*", &["x", "y"]), "a/x/b/y");
    }

    #[test]
    fn longer_patterns_are_more_specific() {
        assert!(specificity("anthropic/claude-*") > specificity("anthropic/*"));
        assert!(specificity("anthropic/*") > specificity("*"));
    }
}
