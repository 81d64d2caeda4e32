//! LiteLLM's key, team, user and customer management bodies, run through the same
//! operations the `/key/*`, `/team/*`, `/user/*` and `/customer/*` routes call, against a
//! key set holding one team, key, user and customer. The input is a sequence of requests
//! separated by NUL bytes (never valid inside JSON); each one's first byte picks the route.
//! After each, the info and list views render and never show a key in full.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use switchyard::fuzzing::{block_on, keys};
use switchyard::keys::Keys;
use switchyard::keys::admin::{self, Answer, ListQuery};

const SECRET: &str = "sk-fuzz-seeded-secret-0001";

async fn op(keys: &Keys, route: u8, body: Value) -> Answer {
    match route % 16 {
        0 => admin::generate_key(keys, body).await,
        1 => admin::update_key(keys, body).await,
        2 => admin::delete_keys(keys, body).await,
        3 => admin::set_blocked(keys, body, true).await,
        4 => admin::set_blocked(keys, body, false).await,
        5 => admin::regenerate_key(keys, SECRET, body).await,
        6 => admin::new_team(keys, body).await,
        7 => admin::update_team(keys, body).await,
        8 => admin::delete_teams(keys, body).await,
        9 => admin::team_member_add(keys, body).await,
        10 => admin::new_user(keys, body).await,
        11 => admin::new_customer(keys, body).await,
        12 => admin::update_customer(keys, body).await,
        13 => admin::delete_customers(keys, body).await,
        14 => {
            let q: ListQuery = serde_json::from_value(body).unwrap_or_default();
            admin::list_keys(keys, &q)
        }
        _ => admin::key_info(keys, SECRET),
    }
}

fn seeded() -> Keys {
    let keys = keys();
    block_on(async {
        admin::new_team(&keys, json!({"team_id": "t1", "team_alias": "core"})).await.unwrap();
        admin::generate_key(&keys, json!({"key": SECRET, "team_id": "t1", "key_alias": "ci"}))
            .await
            .unwrap();
        admin::new_user(&keys, json!({"user_id": "u1"})).await.unwrap();
        admin::new_customer(&keys, json!({"user_id": "c1"})).await.unwrap();
    });
    keys
}

/// The body without the fields that name a key on purpose.
fn mentions_secret(body: &Value) -> bool {
    let mut rest = body.clone();
    if let Value::Object(map) = &mut rest {
        map.remove("key");
        map.remove("keys");
    }
    rest.to_string().contains(SECRET)
}

fuzz_target!(|data: &[u8]| {
    let keys = seeded();
    for request in data.split(|b| *b == 0).take(8) {
        let Some((&route, bytes)) = request.split_first() else { continue };
        // As the routes read a body: blank is no body, anything else must be JSON.
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(bytes) {
                Ok(v) => v,
                Err(_) => continue,
            }
        };
        let echoes = mentions_secret(&body);
        let answer = block_on(op(&keys, route, body));
        if let Err(e) = &answer {
            let shown = e.to_string();
            let _ = e.to_api();
            assert!(echoes || !shown.contains(SECRET), "an error shows a key: {shown}");
        }
        let views = [
            admin::list_keys(&keys, &ListQuery::default()),
            admin::list_keys(
                &keys,
                &ListQuery { return_full_object: Some("true".into()), ..ListQuery::default() },
            ),
            admin::list_teams(&keys),
            admin::team_info(&keys, "t1"),
            admin::user_info(&keys, "u1"),
            admin::customer_info(&keys, "c1"),
        ];
        for view in views.iter().flatten() {
            let text = view.to_string();
            assert!(echoes || !text.contains(SECRET), "a view shows a key: {text}");
        }
    }
});
