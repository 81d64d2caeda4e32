//! What a launched tool gets: its environment and its leading arguments, pointed at the
//! gateway. Pure data from the gateway's URL, key, aliases and the session, so each mapping is
//! unit tested without a process.

use crate::attribution::SESSION_HEADER;

/// A coding tool the gateway can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Claude,
    Codex,
}

impl Tool {
    /// The program looked up on PATH.
    pub fn program(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::Codex => "codex",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Self::Claude => "Claude Code",
            Self::Codex => "Codex",
        }
    }

    /// The npm package that installs the program.
    pub fn npm_package(self) -> &'static str {
        match self {
            Self::Claude => "@anthropic-ai/claude-code",
            Self::Codex => "@openai/codex",
        }
    }
}

/// The name of the variable that carries the gateway key to Codex (`env_key` of the
/// provider the launcher defines on Codex's command line).
pub const CODEX_KEY_VAR: &str = "SWITCHYARD_API_KEY";

/// Codex's provider id for the gateway, on its command line only.
pub const CODEX_PROVIDER: &str = "switchyard";

/// The tiers, in the order a missing tier falls back to its neighbours: each role asks
/// for its own tier first, then the others in the order written.
const MAIN: [&str; 3] = ["balanced", "frontier", "cheap"];
const STRONG: [&str; 3] = ["frontier", "balanced", "cheap"];
const SMALL: [&str; 3] = ["cheap", "balanced", "frontier"];

/// The launched process: variables to set and to remove, arguments before the user's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub set: Vec<(String, String)>,
    pub remove: Vec<&'static str>,
    pub args: Vec<String>,
    /// The main model the tool will ask for, when the gateway serves a tier.
    pub model: Option<String>,
}

#[cfg(test)]
impl Plan {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.set.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the plan is made from.
pub struct Target<'a> {
    /// The gateway's base URL, without a trailing slash.
    pub url: &'a str,
    /// The key the tool presents; a placeholder when the gateway has no master key (the
    /// tools refuse to start without one).
    pub key: &'a str,
    /// The aliases the gateway serves (`GET /v1/models`).
    pub aliases: &'a [String],
    pub session: &'a str,
    /// `ANTHROPIC_CUSTOM_HEADERS` as the user already set it, kept after ours.
    pub custom_headers: Option<&'a str>,
    /// Claude Code in its Bedrock mode (`switchyard claude --bedrock`).
    pub bedrock: Option<Bedrock<'a>>,
}

/// What Claude Code's Bedrock mode needs besides the gateway.
#[derive(Clone, Copy)]
pub struct Bedrock<'a> {
    /// `AWS_REGION` as the user set it. Claude Code refuses Bedrock mode without one; the
    /// gateway ignores it (its deployments have their own).
    pub region: Option<&'a str>,
}

/// The region Claude Code is given when the user set none.
const DEFAULT_REGION: &str = "us-east-1";

fn pick(aliases: &[String], order: &[&str]) -> Option<String> {
    order.iter().find(|t| aliases.iter().any(|a| a == *t)).map(|t| (*t).to_owned())
}

pub fn plan(tool: Tool, t: &Target<'_>) -> Plan {
    match tool {
        Tool::Claude => claude(t),
        Tool::Codex => codex(t),
    }
}

/// Claude Code reads `ANTHROPIC_AUTH_TOKEN` as a bearer token without asking the user to
/// approve it (an `ANTHROPIC_API_KEY` it has not seen is a prompt in interactive mode, and
/// both together are an "auth conflict"), so the user's own API key is removed. Bedrock,
/// Vertex and Foundry modes would bypass `ANTHROPIC_BASE_URL`, so they are switched off.
///
/// In Bedrock mode it calls `ANTHROPIC_BEDROCK_BASE_URL` (the gateway's `/bedrock` routes)
/// without signing (`CLAUDE_CODE_SKIP_BEDROCK_AUTH`) and sends `AWS_BEARER_TOKEN_BEDROCK` as
/// `Authorization: Bearer`: the gateway key travels there.
fn claude(t: &Target<'_>) -> Plan {
    let mut set = match t.bedrock {
        None => vec![
            ("ANTHROPIC_BASE_URL".to_owned(), t.url.to_owned()),
            ("ANTHROPIC_AUTH_TOKEN".to_owned(), t.key.to_owned()),
        ],
        Some(bedrock) => vec![
            ("CLAUDE_CODE_USE_BEDROCK".to_owned(), "1".to_owned()),
            ("ANTHROPIC_BEDROCK_BASE_URL".to_owned(), format!("{}/bedrock", t.url)),
            ("CLAUDE_CODE_SKIP_BEDROCK_AUTH".to_owned(), "1".to_owned()),
            ("AWS_BEARER_TOKEN_BEDROCK".to_owned(), t.key.to_owned()),
            ("AWS_REGION".to_owned(), bedrock.region.unwrap_or(DEFAULT_REGION).to_owned()),
        ],
    };
    let main = pick(t.aliases, &MAIN);
    let roles = [
        ("ANTHROPIC_MODEL", main.clone()),
        ("ANTHROPIC_DEFAULT_OPUS_MODEL", pick(t.aliases, &STRONG)),
        ("ANTHROPIC_DEFAULT_SONNET_MODEL", pick(t.aliases, &MAIN)),
        ("ANTHROPIC_DEFAULT_HAIKU_MODEL", pick(t.aliases, &SMALL)),
        ("ANTHROPIC_SMALL_FAST_MODEL", pick(t.aliases, &SMALL)),
    ];
    for (var, tier) in roles {
        if let Some(tier) = tier {
            set.push((var.to_owned(), tier));
        }
    }
    let mut headers = format!("{SESSION_HEADER}: {}", t.session);
    if let Some(theirs) = t.custom_headers.map(str::trim).filter(|h| !h.is_empty()) {
        headers.push('\n');
        headers.push_str(theirs);
    }
    set.push(("ANTHROPIC_CUSTOM_HEADERS".to_owned(), headers));
    let mut remove = vec!["ANTHROPIC_API_KEY", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY"];
    if t.bedrock.is_none() {
        remove.push("CLAUDE_CODE_USE_BEDROCK");
    }
    Plan { set, remove, args: Vec::new(), model: main }
}

/// A TOML basic string: JSON's string escapes are valid TOML, and Codex parses every `-c`
/// value as TOML first.
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Codex gets a provider defined on its command line only (never in `~/.codex`): the
/// Responses API at the gateway, the key in [`CODEX_KEY_VAR`], the session in a header.
/// Its built-in `web_search` tool is switched off: it is a tool the provider runs, which a
/// gateway in front of Claude cannot (`-- -c web_search=live` turns it back on).
fn codex(t: &Target<'_>) -> Plan {
    let p = format!("model_providers.{CODEX_PROVIDER}");
    let headers = format!("{{{}={}}}", toml_string(SESSION_HEADER), toml_string(t.session));
    let mut overrides = vec![
        format!("{p}.name={}", toml_string("Switchyard")),
        format!("{p}.base_url={}", toml_string(&format!("{}/v1", t.url))),
        format!("{p}.env_key={}", toml_string(CODEX_KEY_VAR)),
        format!("{p}.wire_api={}", toml_string("responses")),
        format!("{p}.http_headers={headers}"),
        format!("model_provider={}", toml_string(CODEX_PROVIDER)),
        format!("web_search={}", toml_string("disabled")),
    ];
    let main = pick(t.aliases, &MAIN);
    if let Some(model) = &main {
        overrides.push(format!("model={}", toml_string(model)));
    }
    let args = overrides.into_iter().flat_map(|o| ["-c".to_owned(), o]).collect();
    Plan {
        set: vec![(CODEX_KEY_VAR.to_owned(), t.key.to_owned())],
        remove: Vec::new(),
        args,
        model: main,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_mode_points_claude_code_at_the_bedrock_routes_with_the_key_as_its_token() {
        let aliases = names(&["cheap", "balanced"]);
        let mut t = target(&aliases, None);
        t.bedrock = Some(Bedrock { region: None });
        let p = plan(Tool::Claude, &t);
        assert_eq!(p.get("CLAUDE_CODE_USE_BEDROCK"), Some("1"));
        assert_eq!(p.get("ANTHROPIC_BEDROCK_BASE_URL"), Some("http://127.0.0.1:4000/bedrock"));
        assert_eq!(p.get("CLAUDE_CODE_SKIP_BEDROCK_AUTH"), Some("1"));
        assert_eq!(p.get("AWS_BEARER_TOKEN_BEDROCK"), Some("sk-gw"));
        assert_eq!(p.get("AWS_REGION"), Some("us-east-1"));
        assert_eq!(p.get("ANTHROPIC_MODEL"), Some("balanced"));
        assert_eq!(p.get("ANTHROPIC_BASE_URL"), None);
        assert!(!p.remove.contains(&"CLAUDE_CODE_USE_BEDROCK"));
        t.bedrock = Some(Bedrock { region: Some("eu-west-1") });
        assert_eq!(plan(Tool::Claude, &t).get("AWS_REGION"), Some("eu-west-1"));
    }

    fn target<'a>(aliases: &'a [String], headers: Option<&'a str>) -> Target<'a> {
        Target {
            url: "http://127.0.0.1:4000",
            key: "sk-gw",
            aliases,
            session: "claude-1",
            custom_headers: headers,
            bedrock: None,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn claude_code_gets_each_tier_for_its_role() {
        let all = names(&["cheap", "balanced", "frontier", "bad-key"]);
        let p = plan(Tool::Claude, &target(&all, None));
        assert_eq!(p.get("ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:4000"));
        assert_eq!(p.get("ANTHROPIC_AUTH_TOKEN"), Some("sk-gw"));
        assert_eq!(p.get("ANTHROPIC_MODEL"), Some("balanced"));
        assert_eq!(p.get("ANTHROPIC_DEFAULT_OPUS_MODEL"), Some("frontier"));
        assert_eq!(p.get("ANTHROPIC_DEFAULT_SONNET_MODEL"), Some("balanced"));
        assert_eq!(p.get("ANTHROPIC_DEFAULT_HAIKU_MODEL"), Some("cheap"));
        assert_eq!(p.get("ANTHROPIC_SMALL_FAST_MODEL"), Some("cheap"));
        assert_eq!(p.get("ANTHROPIC_CUSTOM_HEADERS"), Some("x-litellm-session-id: claude-1"));
        assert!(p.remove.contains(&"ANTHROPIC_API_KEY"));
        assert!(p.remove.contains(&"CLAUDE_CODE_USE_BEDROCK"));
    }

    #[test]
    fn a_missing_tier_falls_back_to_its_neighbour_and_no_tier_sets_no_model() {
        let cheap_only = names(&["cheap"]);
        let p = plan(Tool::Claude, &target(&cheap_only, None));
        for var in ["ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_SMALL_FAST_MODEL"]
        {
            assert_eq!(p.get(var), Some("cheap"), "{var}");
        }
        let two = names(&["frontier", "cheap"]);
        let p = plan(Tool::Claude, &target(&two, None));
        assert_eq!(p.get("ANTHROPIC_MODEL"), Some("frontier"));
        assert_eq!(p.get("ANTHROPIC_DEFAULT_HAIKU_MODEL"), Some("cheap"));

        let custom = names(&["claude-sonnet-4-6"]);
        let p = plan(Tool::Claude, &target(&custom, None));
        assert_eq!(p.get("ANTHROPIC_MODEL"), None);
        assert_eq!(p.model, None);
        let p = plan(Tool::Codex, &target(&custom, None));
        assert!(!p.args.iter().any(|a| a.starts_with("model=")), "{:?}", p.args);
    }

    #[test]
    fn the_user_s_own_custom_headers_are_kept_after_the_session() {
        let all = names(&["balanced"]);
        let p = plan(Tool::Claude, &target(&all, Some("x-team: search\n")));
        assert_eq!(
            p.get("ANTHROPIC_CUSTOM_HEADERS"),
            Some("x-litellm-session-id: claude-1\nx-team: search")
        );
    }

    #[test]
    fn codex_gets_a_provider_on_its_command_line_and_the_key_in_its_env_var() {
        let all = names(&["cheap", "balanced"]);
        let p = plan(Tool::Codex, &target(&all, None));
        assert_eq!(p.get(CODEX_KEY_VAR), Some("sk-gw"));
        let overrides: Vec<&str> =
            p.args.chunks(2).inspect(|c| assert_eq!(c[0], "-c")).map(|c| c[1].as_str()).collect();
        assert_eq!(
            overrides,
            [
                r#"model_providers.switchyard.name="Switchyard""#,
                r#"model_providers.switchyard.base_url="http://127.0.0.1:4000/v1""#,
                r#"model_providers.switchyard.env_key="SWITCHYARD_API_KEY""#,
                r#"model_providers.switchyard.wire_api="responses""#,
                r#"model_providers.switchyard.http_headers={"x-litellm-session-id"="claude-1"}"#,
                r#"model_provider="switchyard""#,
                r#"web_search="disabled""#,
                r#"model="balanced""#,
            ]
        );
        assert!(!p.args.iter().any(|a| a.contains("sk-gw")), "the key is never an argument");
    }
}
