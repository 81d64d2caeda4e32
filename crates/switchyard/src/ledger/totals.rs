//! LiteLLM keeps running totals in its key, team, user and customer tables (`spend`), and its
//! dashboards and many scripts read them there. When those tables live in the ledger's
//! PostgreSQL database, each batch of rows adds its spend to them in the same statement as
//! the insert, counting only the rows that statement inserted: a batch written again after
//! a failure, or by another replica, adds nothing twice.

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
    for (i, (table, id, column)) in tables.iter().enumerate() {
        sql.push_str(&format!(
            ", t{i} AS (UPDATE \"{table}\" AS t SET \"spend\" = t.\"spend\" + s.total \
             FROM (SELECT \"{column}\" AS id, SUM(\"spend\") AS total FROM ins \
             WHERE \"spend\" > 0 AND \"{column}\" IS NOT NULL AND \"{column}\" <> '' GROUP BY 1) s \
             WHERE t.\"{id}\" = s.id)"
        ));
    }
    sql.push_str(" SELECT count(*) FROM ins");
    sql
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
    }
}
