//! `switchyard keys create|list|info|update|revoke`: virtual keys from the command line. Works
//! on the key store directly (the config's `database_url`, else `keys.sqlite3` in the state
//! directory), so it needs no running gateway; running gateways see each change within a
//! second (their change feed). The key is printed once, on create; afterwards only its token
//! (sha256 hex) and `sk-...` name are shown.

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::output;
use super::store_args::StoreArgs;
use crate::exit;
use crate::keys::admin::{self, AdminError, ListQuery};
use crate::keys::{Keys, Settings};

#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once (`POST /key/generate`).
    Create(KeyFields),
    /// List keys: token, name, alias, team, user, models.
    List {
        #[arg(long, value_name = "TEAM_ID")]
        team: Option<String>,
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
    },
    /// Show one key (`sk-…` or its token).
    Info { key: String },
    /// Change a key's settings (`POST /key/update`); `--block` / `--unblock`.
    Update {
        #[arg(value_name = "KEY")]
        target: String,
        #[command(flatten)]
        fields: KeyFields,
        #[arg(long, conflicts_with = "unblock")]
        block: bool,
        #[arg(long)]
        unblock: bool,
    },
    /// Delete keys (`sk-…`, tokens, or aliases with --alias): they stop working at once.
    Revoke {
        keys: Vec<String>,
        #[arg(long = "alias", value_name = "ALIAS")]
        aliases: Vec<String>,
    },
}

#[derive(Debug, Clone, Args, Default)]
pub struct KeyFields {
    /// `key_alias`.
    #[arg(long)]
    pub alias: Option<String>,
    /// Allowed models or aliases (repeatable or comma-separated; `*`, `anthropic/*`).
    #[arg(long = "models", value_delimiter = ',')]
    pub models: Vec<String>,
    /// How long the key lives: 30s, 30m, 30h, 30d.
    #[arg(long)]
    pub duration: Option<String>,
    #[arg(long, value_name = "TEAM_ID")]
    pub team: Option<String>,
    #[arg(long, value_name = "USER_ID")]
    pub user: Option<String>,
    #[arg(long, value_name = "USD")]
    pub max_budget: Option<f64>,
    #[arg(long)]
    pub budget_duration: Option<String>,
    #[arg(long, value_name = "N")]
    pub rpm_limit: Option<i64>,
    #[arg(long, value_name = "N")]
    pub tpm_limit: Option<i64>,
    /// Tags (repeatable or comma-separated).
    #[arg(long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// A key of your own (must start with `sk-`); default: a random one.
    #[arg(long, value_name = "SK")]
    pub key: Option<String>,
}

impl KeyFields {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        if let Some(v) = &self.alias {
            put("key_alias", json!(v));
        }
        if !self.models.is_empty() {
            put("models", json!(self.models));
        }
        if let Some(v) = &self.duration {
            put("duration", json!(v));
        }
        if let Some(v) = &self.team {
            put("team_id", json!(v));
        }
        if let Some(v) = &self.user {
            put("user_id", json!(v));
        }
        if let Some(v) = self.max_budget {
            put("max_budget", json!(v));
        }
        if let Some(v) = &self.budget_duration {
            put("budget_duration", json!(v));
        }
        if let Some(v) = self.rpm_limit {
            put("rpm_limit", json!(v));
        }
        if let Some(v) = self.tpm_limit {
            put("tpm_limit", json!(v));
        }
        if !self.tags.is_empty() {
            put("tags", json!(self.tags));
        }
        if let Some(v) = &self.key {
            put("key", json!(v));
        }
        m
    }
}

pub fn run(args: &KeysArgs) -> u8 {
    let opened = match args.store.open("key store") {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    opened.runtime.block_on(async {
        let keys = match Keys::open(&Settings {
            database_url: opened.database_url.clone(),
            state_dir: opened.state_dir.clone(),
        }) {
            Ok(keys) => keys,
            Err(message) => {
                output::stderr(&format!("switchyard: cannot open the key store: {message}"));
                return exit::FAILED;
            }
        };
        if let Err(err) = keys.reload().await {
            output::stderr(&format!(
                "switchyard: the key store ({}) cannot be read: {err}\n  fix: check that the \
                 database in `database_url` is reachable, or the state directory is readable.",
                keys.status().location
            ));
            return exit::FAILED;
        }
        match command(&keys, &args.command).await {
            Ok(answer) => {
                output::stdout(&if args.store.json {
                    pretty(&answer)
                } else {
                    render(&args.command, &answer)
                });
                exit::OK
            }
            Err(err) => {
                output::stderr(&format!("switchyard: {err}"));
                exit::FAILED
            }
        }
    })
}

async fn command(keys: &Keys, command: &KeysCommand) -> Result<Value, AdminError> {
    match command {
        KeysCommand::Create(fields) => {
            admin::generate_key(keys, Value::Object(fields.to_json())).await
        }
        KeysCommand::List { team, user } => {
            let mut all = Vec::new();
            let mut page = 1;
            loop {
                let q = ListQuery {
                    page: Some(page),
                    size: Some(100),
                    team_id: team.clone(),
                    user_id: user.clone(),
                    return_full_object: Some("true".into()),
                    ..ListQuery::default()
                };
                let answer = admin::list_keys(keys, &q)?;
                all.extend(answer["keys"].as_array().cloned().unwrap_or_default());
                if page >= answer["total_pages"].as_u64().unwrap_or(0) as usize {
                    return Ok(json!({"keys": all, "total_count": all.len()}));
                }
                page += 1;
            }
        }
        KeysCommand::Info { key } => admin::key_info(keys, key),
        KeysCommand::Update { target, fields, block, unblock } => {
            let mut body = fields.to_json();
            body.remove("key");
            if *block || *unblock {
                body.insert("blocked".into(), json!(*block));
            }
            body.insert("key".into(), json!(target));
            admin::update_key(keys, Value::Object(body)).await
        }
        KeysCommand::Revoke { keys: listed, aliases } => {
            admin::delete_keys(keys, json!({"keys": listed, "key_aliases": aliases})).await
        }
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn or_dash(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "all".to_owned(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn render(command: &KeysCommand, answer: &Value) -> String {
    match command {
        KeysCommand::Create(_) => format!(
            "{}\n\nThe key above is shown once; store it now. token: {}  alias: {}  expires: {}",
            answer["key"].as_str().unwrap_or_default(),
            or_dash(&answer["token"]),
            or_dash(&answer["key_alias"]),
            or_dash(&answer["expires"]),
        ),
        KeysCommand::List { .. } => {
            let mut out = format!(
                "{:<64}  {:<10}  {:<16}  {:<12}  {:<12}  models\n",
                "token", "name", "alias", "team", "user"
            );
            for k in answer["keys"].as_array().into_iter().flatten() {
                let blocked = if k["blocked"] == json!(true) { "  (blocked)" } else { "" };
                out.push_str(&format!(
                    "{:<64}  {:<10}  {:<16}  {:<12}  {:<12}  {}{blocked}\n",
                    or_dash(&k["token"]),
                    or_dash(&k["key_name"]),
                    or_dash(&k["key_alias"]),
                    or_dash(&k["team_id"]),
                    or_dash(&k["user_id"]),
                    or_dash(&k["models"]),
                ));
            }
            out.push_str(&format!("{} keys", answer["total_count"]));
            out
        }
        KeysCommand::Revoke { .. } => format!("revoked: {}", or_dash(&answer["deleted_keys"])),
        KeysCommand::Info { .. } | KeysCommand::Update { .. } => {
            let info = if answer.get("info").is_some() { &answer["info"] } else { answer };
            let mut out = String::new();
            for field in [
                "key_name",
                "key_alias",
                "team_id",
                "user_id",
                "models",
                "aliases",
                "expires",
                "blocked",
                "spend",
                "max_budget",
                "budget_duration",
                "rpm_limit",
                "tpm_limit",
                "tags",
                "created_at",
                "updated_at",
            ] {
                let value = match &info[field] {
                    Value::Array(a) if a.is_empty() && field != "models" => "-".to_owned(),
                    v => or_dash(v),
                };
                out.push_str(&format!("{field:<16} {value}\n"));
            }
            out.trim_end().to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_keys_command_line_is_well_formed() {
        crate::cli::Cli::command().debug_assert();
    }
}
