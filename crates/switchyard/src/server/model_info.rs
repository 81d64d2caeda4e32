//! `GET /model/info` and `/v1/model/info`: every deployment in LiteLLM's shape —
//! `{"data": [{"model_name", "litellm_params", "model_info"}]}` — with the effective price
//! the gateway charges at (the router's, resolved once per load) and where each rate came
//! from. `?litellm_model_id=<id>` returns one deployment, or LiteLLM's 400 when none has it.
//! A virtual key sees only the deployments its allow-list lets it call, as on `/v1/models`.
//!
//! Never a secret: keys, AWS secrets and tokens are left out (not masked: a masked value
//! would still show its prefix), and `api_base` loses any user info and query string.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::config::{Deployment, ProviderKind, SslVerify};
use crate::cost::{Decimal, Kind, Price, Rate, Rates};
use crate::keys::Identity;

pub async fn info(
    State(state): State<Arc<AppState>>,
    identity: Option<Extension<Identity>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let runtime = state.runtime();
    let router = &runtime.router;
    let identity = identity.as_ref().map(|Extension(i)| i);
    let wanted = query.get("litellm_model_id").filter(|id| !id.is_empty());
    let data: Vec<Value> = router
        .targets()
        .filter(|t| wanted.is_none_or(|id| *id == t.deployment.id))
        .filter(|t| super::models::may_call(router, identity, &t.deployment.alias))
        .map(|t| entry(&t.deployment, &t.price))
        .collect();
    if let (Some(id), true) = (wanted, data.is_empty()) {
        // LiteLLM's answer for an id no deployment has, which its clients look for.
        let body =
            json!({"detail": {"error": format!("Model id = {id} not found on litellm proxy")}});
        return json_response(StatusCode::BAD_REQUEST, &body);
    }
    json_response(StatusCode::OK, &json!({ "data": data }))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// One deployment as LiteLLM lists it.
pub fn entry(d: &Deployment, price: &Price) -> Value {
    json!({
        "model_name": d.alias,
        "litellm_params": litellm_params(d),
        "model_info": model_info(d, price),
    })
}

/// The deployment's `litellm_params` as the gateway understood them, without credentials.
fn litellm_params(d: &Deployment) -> Value {
    let mut p = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            p.insert(key.to_owned(), value);
        }
    };
    put("model", json!(d.model_as_written));
    put("api_base", json!(d.api_base.as_deref().map(without_credentials)));
    put("api_version", json!(d.api_version));
    let aws = &d.aws;
    put("aws_region_name", json!(aws.region_name));
    put("aws_profile_name", json!(aws.profile_name));
    put("aws_role_name", json!(aws.role_name));
    put("aws_session_name", json!(aws.session_name));
    put("aws_sts_endpoint", json!(aws.sts_endpoint.as_deref().map(without_credentials)));
    put(
        "aws_bedrock_runtime_endpoint",
        json!(aws.bedrock_runtime_endpoint.as_deref().map(without_credentials)),
    );
    put("timeout", json!(d.timeout.map(|t| t.as_secs_f64())));
    put("stream_timeout", json!(d.stream_timeout.map(|t| t.as_secs_f64())));
    put("max_retries", json!(d.max_retries));
    put("num_retries", json!(d.num_retries));
    put("rpm", json!(d.rpm));
    put("tpm", json!(d.tpm));
    put("weight", json!(d.weight));
    put("order", json!(d.order));
    put("max_parallel_requests", json!(d.max_parallel_requests));
    put("cooldown_time", json!(d.cooldown_time.map(|t| t.as_secs_f64())));
    put("drop_params", json!(d.drop_params));
    put("input_cost_per_token", json!(d.costs.input_cost_per_token));
    put("output_cost_per_token", json!(d.costs.output_cost_per_token));
    put("cache_read_input_token_cost", json!(d.costs.cache_read_input_token_cost));
    put("cache_creation_input_token_cost", json!(d.costs.cache_creation_input_token_cost));
    put("max_budget", json!(d.max_budget));
    put("budget_duration", json!(d.budget_duration));
    put("mock_response", json!(d.mock_response));
    if !d.tags.is_empty() {
        put("tags", json!(d.tags));
    }
    match &d.ssl_verify {
        SslVerify::System => {}
        SslVerify::Disabled => put("ssl_verify", json!(false)),
        SslVerify::CaBundle(path) => put("ssl_verify", json!(path.display().to_string())),
    }
    Value::Object(p)
}

/// The config's `model_info`, then the deployment's id, LiteLLM's `mode` and
/// `litellm_provider`, and the effective price.
fn model_info(d: &Deployment, price: &Price) -> Value {
    let mut info = d.model_info.clone();
    info.insert("id".to_owned(), json!(d.id));
    info.insert("db_model".to_owned(), json!(false));
    info.entry("mode").or_insert_with(|| json!("chat"));
    info.insert("litellm_provider".to_owned(), json!(litellm_provider(d)));
    let mut sources = Map::new();
    let mut put_rates = |rates: &Rates, suffix: &str, info: &mut Map<String, Value>| {
        for kind in Kind::ALL {
            let key = format!("{}{suffix}", kind.litellm_key());
            match rates.get(kind) {
                Some(Rate { per_token, source }) => {
                    info.insert(key.clone(), number(per_token));
                    sources.insert(key, json!(source.to_string()));
                }
                // The two rates every price needs: null says "unknown", never 0.
                None if suffix.is_empty() && matches!(kind, Kind::Input | Kind::Output) => {
                    info.insert(key, Value::Null);
                }
                None => {}
            }
        }
    };
    put_rates(&price.base, "", &mut info);
    if let Some(long) = &price.long_context {
        put_rates(&long.rates, &format!("_above_{}k_tokens", long.above / 1000), &mut info);
    }
    info.insert("switchyard_price_known".to_owned(), json!(price.is_known()));
    info.insert("switchyard_price_sources".to_owned(), Value::Object(sources));
    Value::Object(info)
}

/// LiteLLM's provider name (`custom_llm_provider`).
fn litellm_provider(d: &Deployment) -> String {
    match d.provider {
        ProviderKind::Bedrock(_) => "bedrock".to_owned(),
        ProviderKind::Unsupported => {
            d.model_as_written.split_once('/').map_or("unknown", |(prefix, _)| prefix).to_owned()
        }
        other => other.prefix().to_owned(),
    }
}

/// A price as LiteLLM writes it: a JSON number (3e-06), from the exact decimal's shortest
/// form.
fn number(d: Decimal) -> Value {
    d.to_string().parse::<f64>().map_or(Value::Null, |f| json!(f))
}

/// A URL without `user:password@`, query string or fragment, where credentials hide.
fn without_credentials(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..cut];
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_user_info_and_query_strings() {
        assert_eq!(
            without_credentials("https://u:p@proxy.example:8443/v1?key=abc#x"),
            "https://proxy.example:8443/v1"
        );
        assert_eq!(without_credentials("http://localhost:11434"), "http://localhost:11434");
        assert_eq!(without_credentials("not a url?k=v"), "not a url");
    }

    #[test]
    fn prices_are_json_numbers_as_litellm_writes_them() {
        use std::str::FromStr;
        assert_eq!(number(Decimal::from_str("0.000003").unwrap()), json!(3e-6));
        assert_eq!(number(Decimal::ZERO), json!(0.0));
    }
}
