//! `docs/diagnoses.md` lists exactly the catalog ids the code emits: an id added in the code
//! without an entry fails here, and so does an entry whose id nothing emits any more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `CFG-01`, `GW-14`, `AWS-18`: two to four capitals, a dash, two digits.
fn is_id(s: &str) -> bool {
    let Some((family, number)) = s.split_once('-') else { return false };
    (2..=4).contains(&family.len())
        && family.bytes().all(|b| b.is_ascii_uppercase())
        && number.len() == 2
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Every id written as a string literal (`"GW-02"`, or `\"GW-14\"` inside one).
fn ids_in_source(text: &str) -> BTreeSet<String> {
    text.split('"')
        .map(|piece| piece.trim_end_matches('\\'))
        .filter(|piece| is_id(piece))
        .map(str::to_owned)
        .collect()
}

/// The ids of the catalog's table rows: the first cell of `| ID | … |`.
fn ids_in_catalog(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix('|')?.split('|').next())
        .map(str::trim)
        .filter(|cell| is_id(cell))
        .map(str::to_owned)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_catalog_lists_every_emitted_id_and_nothing_else() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&crate_dir.join("src"), &mut files);
    let mut emitted = BTreeSet::new();
    for file in &files {
        emitted.extend(ids_in_source(&std::fs::read_to_string(file).unwrap()));
    }
    let catalog_path = crate_dir.join("../../docs/diagnoses.md");
    let catalog = ids_in_catalog(&std::fs::read_to_string(&catalog_path).unwrap());

    assert!(emitted.len() > 90, "the source scan found only {emitted:?}");
    let undocumented: Vec<_> = emitted.difference(&catalog).collect();
    let stale: Vec<_> = catalog.difference(&emitted).collect();
    assert!(
        undocumented.is_empty(),
        "emitted but missing from docs/diagnoses.md (add a row to its family's table): \
         {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "in docs/diagnoses.md but emitted nowhere (remove the row, or the code lost it): \
         {stale:?}"
    );
}

#[test]
fn ids_are_read_from_literals_and_table_rows_only() {
    let source =
        r#"Diagnosis::new("AWS-05", "…"); let s = "{\"code\":\"GW-14\"}"; "CFG-"; "x-api-key""#;
    assert_eq!(ids_in_source(source), ["AWS-05", "GW-14"].map(String::from).into());
    let doc = "| id | title |\n|---|---|\n| NET-03 | Timeout |\nSee GW-01 in the text.\n";
    assert_eq!(ids_in_catalog(doc), ["NET-03"].map(String::from).into());
}
