//! The README's configuration reference is generated from the one table of known keys, so
//! the documentation cannot drift from what the gateway accepts.
//!
//! To refresh it after changing `config/keys.rs`:
//! `SWITCHYARD_UPDATE_README=1 cargo test -p switchyard --test readme`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

const BEGIN: &str = "<!-- config-reference:begin (generated from config/keys.rs) -->\n";
const END: &str = "<!-- config-reference:end -->";

#[test]
fn readme_config_reference_matches_the_key_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start =
        readme.find(BEGIN).expect("README lacks the config-reference markers") + BEGIN.len();
    let end = readme[start..].find(END).expect("README lacks the end marker") + start;
    let generated = switchyard::config::keys::reference_markdown();
    if readme[start..end] == generated {
        return;
    }
    if std::env::var_os("SWITCHYARD_UPDATE_README").is_some() {
        let updated = format!("{}{}{}", &readme[..start], generated, &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "README's configuration reference is out of date; run \
         SWITCHYARD_UPDATE_README=1 cargo test -p switchyard --test readme"
    );
}
