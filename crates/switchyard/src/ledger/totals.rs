//! LiteLLM keeps running totals in its key, team, user and customer tables (`spend`), and its
//! dashboards and many scripts read them there. When those tables live in the ledger's
//! PostgreSQL database, each batch of rows adds its spend to them in the same statement as
//! the insert, counting only the rows that statement inserted: a batch written again after
//! a failure, or by another replica, adds nothing twice. A batch `COPY`ed in (which inserts
//! every row or fails) adds its rows' spend in the same transaction.

/// `(table, its id column, the "LiteLLM_SpendLogs" column naming it)`.
pub const TOTALS: &[(&str, &str, &str)] = &[
    ("LiteLLM_VerificationToken", "token", "api_key"),
    ("LiteLLM_TeamTable", "team_id", "team_id"),
    ("LiteLLM_UserTable", "user_id", "user"),
    ("LiteLLM_EndUserTable", "user_id", "end_user"),
];

/// The insert `insert` (an `INSERT … ON CONFLICT DO NOTHING`) extended to add the spend of
/// the rows it inserted to each table of `tables` (entries of [`TOTALS`]).
pub fn with_totals(insert: &str, tables: &[(&str, &str, &str)]) -> String {
    if tables.is_empty() {
        return insert.to_owned();
    }
    let returning: Vec<String> = tables.iter().map(|(_, _, c)| format!("\"{c}\"")).collect();
    let mut sql = format!("WITH ins AS ({insert} RETURNING \"spend\", {})", returning.join(", "));
    updates(&mut sql, tables);
    sql
}

/// The statement that adds rows already inserted (by `COPY`, every row of the batch) to the
/// totals of `tables`: the rows' columns named in `tables`, in that order, then `spend`, as
/// one array parameter each. `None` without tables.
pub fn totals_of_rows(tables: &[(&str, &str, &str)]) -> Option<String> {
    if tables.is_empty() {
        return None;
    }
    let arrays: Vec<String> = (1..=tables.len()).map(|i| format!("${i}::text[]")).collect();
    let names: Vec<String> = tables.iter().map(|(_, _, c)| format!("\"{c}\"")).collect();
    let mut sql = format!(
        "WITH ins AS (SELECT * FROM UNNEST({}, ${}::float8[]) AS r({}, \"spend\"))",
        arrays.join(", "),
        tables.len() + 1,
        names.join(", ")
    );
    updates(&mut sql, tables);
    Some(sql)
}

/// One `UPDATE` per table over the rows of `ins`, then the count of those rows.
fn updates(sql: &mut String, tables: &[(&str, &str, &str)]) {
    for (i, (table, id, column)) in tables.iter().enumerate() {
        sql.push_str(&format!(
            ", t{i} AS (UPDATE \"{table}\" AS t SET \"spend\" = t.\"spend\" + s.total \
             FROM (SELECT \"{column}\" AS id, SUM(\"spend\") AS total FROM ins \
             WHERE \"spend\" > 0 AND \"{column}\" IS NOT NULL AND \"{column}\" <> '' GROUP BY 1) s \
             WHERE t.\"{id}\" = s.id)"
        ));
    }
    sql.push_str(" SELECT count(*) FROM ins");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tables_leaves_the_insert_alone_and_each_table_adds_one_update() {
        let insert = "INSERT INTO x SELECT 1 ON CONFLICT DO NOTHING";
        assert_eq!(with_totals(insert, &[]), insert);
        let sql = with_totals(insert, &TOTALS[..2]);
        assert!(sql.starts_with("WITH ins AS (INSERT INTO x"), "{sql}");
        assert!(sql.contains("RETURNING \"spend\", \"api_key\", \"team_id\")"), "{sql}");
        assert_eq!(sql.matches("UPDATE ").count(), 2, "{sql}");
        assert!(sql.ends_with("SELECT count(*) FROM ins"), "{sql}");
        assert_eq!(totals_of_rows(&[]), None);
        let copied = totals_of_rows(&TOTALS[..2]).unwrap_or_default();
        assert!(copied.contains("UNNEST($1::text[], $2::text[], $3::float8[])"), "{copied}");
        assert!(copied.contains("AS r(\"api_key\", \"team_id\", \"spend\")"), "{copied}");
        assert_eq!(copied.matches("UPDATE ").count(), 2, "{copied}");
    }
}
