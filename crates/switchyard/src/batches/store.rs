//! The batch store: three tables of our own (`"Switchyard_BatchFiles"`, `"Switchyard_Batches"`,
//! `"Switchyard_BatchItems"`), in PostgreSQL with `database_url` (shared by replicas), else in
//! `<state dir>/batches.sqlite3` (one replica). Created when absent, never altered.
//!
//! Both engines take the same SQL: plain `TEXT` and `BIGINT` columns, `$N` parameters
//! (rewritten to SQLite's `?N`), so every statement is written once; only the claim differs
//! (PostgreSQL locks the rows it takes with `FOR UPDATE SKIP LOCKED`, so two replicas never
//! take the same item; SQLite has one writer).
//!
//! **Invariant:** an item changes state only by a conditional statement on its current state
//! (and, while running, on the runner that claimed it), so a late or duplicate runner
//! cannot overwrite a result; a batch is finalized by one conditional update in the
//! transaction that writes its output files.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::forwarded::Forwarding;
use super::model::{
    BatchRow, Claimed, Counts, FileRow, Finished, ItemResult, ItemState, NewItem, Status, Surface,
    request_id,
};
use crate::ledger::{StoreError, describe};

pub const DDL: &[&str] = &[
    r#"CREATE TABLE IF NOT EXISTS "Switchyard_BatchFiles" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "owner" TEXT NOT NULL DEFAULT '',
    "filename" TEXT NOT NULL,
    "purpose" TEXT NOT NULL,
    "bytes" BIGINT NOT NULL,
    "created_at" BIGINT NOT NULL,
    "content" TEXT NOT NULL
)"#,
    r#"CREATE INDEX IF NOT EXISTS "Switchyard_BatchFiles_owner_idx" ON "Switchyard_BatchFiles"("owner", "created_at")"#,
    r#"CREATE TABLE IF NOT EXISTS "Switchyard_Batches" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "surface" TEXT NOT NULL,
    "owner" TEXT NOT NULL DEFAULT '',
    "owner_alias" TEXT,
    "endpoint" TEXT NOT NULL,
    "input_file_id" TEXT,
    "completion_window" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "metadata" TEXT,
    "errors" TEXT,
    "created_at" BIGINT NOT NULL,
    "in_progress_at" BIGINT,
    "finalizing_at" BIGINT,
    "completed_at" BIGINT,
    "failed_at" BIGINT,
    "expired_at" BIGINT,
    "cancelling_at" BIGINT,
    "cancelled_at" BIGINT,
    "expires_at" BIGINT NOT NULL,
    "output_file_id" TEXT,
    "error_file_id" TEXT,
    "upstream_id" TEXT
)"#,
    r#"CREATE INDEX IF NOT EXISTS "Switchyard_Batches_status_idx" ON "Switchyard_Batches"("status")"#,
    r#"CREATE INDEX IF NOT EXISTS "Switchyard_Batches_owner_idx" ON "Switchyard_Batches"("owner", "created_at")"#,
    r#"CREATE TABLE IF NOT EXISTS "Switchyard_BatchItems" (
    "batch_id" TEXT NOT NULL,
    "line" BIGINT NOT NULL,
    "custom_id" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "attempts" BIGINT NOT NULL DEFAULT 0,
    "claimed_by" TEXT,
    "claimed_at" BIGINT,
    "queued_at" BIGINT NOT NULL,
    "finished_at" BIGINT,
    "status_code" BIGINT,
    "result" TEXT,
    "cost" TEXT,
    "ledger" TEXT,
    PRIMARY KEY ("batch_id", "line")
)"#,
    r#"CREATE INDEX IF NOT EXISTS "Switchyard_BatchItems_state_idx" ON "Switchyard_BatchItems"("state", "queued_at")"#,
    r#"CREATE INDEX IF NOT EXISTS "Switchyard_BatchItems_ledger_idx" ON "Switchyard_BatchItems"("batch_id") WHERE "ledger" IS NOT NULL"#,
];

const BATCH_COLUMNS: &str = r#""id", "surface", "owner", "owner_alias", "endpoint", "input_file_id", "completion_window", "status", "metadata", "errors", "created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at", "expires_at", "output_file_id", "error_file_id", "upstream_id""#;

const FILE_COLUMNS: &str = r#""id", "owner", "filename", "purpose", "bytes", "created_at""#;

/// Items inserted per statement when a batch is created (7 parameters each).
const CHUNK: usize = 100;

enum Db {
    Lite(SqlitePool),
    Pg(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has: the body is written
/// once and type-checked against each engine.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Lite($pool) => $body,
            Db::Pg($pool) => $body,
        }
    };
}

/// Column reads both engines' rows offer.
trait Read {
    fn text(&self, c: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, c: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, c: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, c: &str) -> Result<Option<i64>, sqlx::Error>;
}

macro_rules! impl_read {
    ($row:ty) => {
        impl Read for $row {
            fn text(&self, c: &str) -> Result<String, sqlx::Error> {
                self.try_get(c)
            }
            fn opt_text(&self, c: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(c)
            }
            fn int(&self, c: &str) -> Result<i64, sqlx::Error> {
                self.try_get(c)
            }
            fn opt_int(&self, c: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(c)
            }
        }
    };
}
impl_read!(SqliteRow);
impl_read!(PgRow);

fn json(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn batch_of(r: &impl Read) -> Result<BatchRow, sqlx::Error> {
    Ok(BatchRow {
        id: r.text("id")?,
        surface: Surface::parse(&r.text("surface")?),
        owner: r.text("owner")?,
        owner_alias: r.opt_text("owner_alias")?,
        endpoint: r.text("endpoint")?,
        input_file_id: r.opt_text("input_file_id")?,
        completion_window: r.text("completion_window")?,
        status: Status::parse(&r.text("status")?),
        metadata: json(r.opt_text("metadata")?),
        errors: json(r.opt_text("errors")?),
        created_at: r.int("created_at")?,
        in_progress_at: r.opt_int("in_progress_at")?,
        finalizing_at: r.opt_int("finalizing_at")?,
        completed_at: r.opt_int("completed_at")?,
        failed_at: r.opt_int("failed_at")?,
        expired_at: r.opt_int("expired_at")?,
        cancelling_at: r.opt_int("cancelling_at")?,
        cancelled_at: r.opt_int("cancelled_at")?,
        expires_at: r.int("expires_at")?,
        output_file_id: r.opt_text("output_file_id")?,
        error_file_id: r.opt_text("error_file_id")?,
        upstream_id: r.opt_text("upstream_id")?,
        counts: Counts::default(),
    })
}

fn file_of(r: &impl Read) -> Result<FileRow, sqlx::Error> {
    Ok(FileRow {
        id: r.text("id")?,
        owner: r.text("owner")?,
        filename: r.text("filename")?,
        purpose: r.text("purpose")?,
        bytes: r.int("bytes")?,
        created_at: r.int("created_at")?,
    })
}

fn claimed_of(r: &impl Read) -> Result<Claimed, sqlx::Error> {
    Ok(Claimed {
        batch_id: r.text("batch_id")?,
        line: r.int("line")?,
        custom_id: r.text("custom_id")?,
        body: r.text("body")?,
        attempts: r.int("attempts")?,
    })
}

/// A page of a newest-first list.
#[derive(Debug, Clone, Default)]
pub struct Page<'a> {
    /// Older than this id (OpenAI's `after`, Anthropic's `after_id`).
    pub after: Option<&'a str>,
    /// Newer than this id (Anthropic's `before_id`).
    pub before: Option<&'a str>,
    pub limit: i64,
}

/// An item a runner held when it stopped answering (its claim was not renewed).
#[derive(Debug, Clone)]
pub struct Orphan {
    pub item: Claimed,
    pub claimed_at: i64,
}

pub struct Store {
    db: Db,
    password: Option<String>,
    location: String,
    ready: tokio::sync::OnceCell<()>,
}

impl Store {
    /// `batches.sqlite3` at `path` (nothing is opened here).
    pub fn sqlite(path: &Path) -> Result<Self, StoreError> {
        // One connection: the runner's transactions and the API's reads take turns, so no
        // two writers ever meet (SQLite has one), and no transaction waits on another.
        let pool = crate::sqlite_file::pool(path, 1, Duration::from_secs(10));
        Ok(Self {
            db: Db::Lite(pool),
            password: None,
            location: path.display().to_string(),
            ready: tokio::sync::OnceCell::new(),
        })
    }

    /// PostgreSQL at `url`, lazily connected.
    pub fn postgres(url: &str) -> Result<Self, StoreError> {
        let (pool, password, location) =
            crate::ledger::postgres::lazy_pool(url, "batches need", Duration::from_secs(5))?;
        Ok(Self { db: Db::Pg(pool), password, location, ready: tokio::sync::OnceCell::new() })
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Lite(_) => "sqlite",
            Db::Pg(_) => "postgres",
        }
    }

    /// A path, or `host:port/database`, without secrets.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// One replica only: every claim a running item has is this process's (or a dead
    /// predecessor's).
    pub fn single_replica(&self) -> bool {
        matches!(self.db, Db::Lite(_))
    }

    fn err(&self, e: &sqlx::Error) -> StoreError {
        describe(e, self.password.as_deref())
    }

    /// `$N` → `?N` for SQLite.
    fn sql(&self, text: &str) -> String {
        match self.db {
            Db::Pg(_) => text.to_owned(),
            Db::Lite(_) => text.replace('$', "?"),
        }
    }

    /// Creates the tables when absent (once per process; retried after a failure).
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.ready
            .get_or_try_init(|| async {
                for statement in DDL {
                    with_pool!(&self.db, |pool| sqlx::query(statement)
                        .execute(pool)
                        .await
                        .map(|_| ()))
                    .map_err(|e| self.err(&e))?;
                }
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }

    pub async fn insert_file(&self, file: &FileRow, content: &str) -> Result<(), StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"INSERT INTO "Switchyard_BatchFiles" ("id", "owner", "filename", "purpose", "bytes", "created_at", "content") VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
        );
        with_pool!(&self.db, |pool| sqlx::query(&sql)
            .bind(&file.id)
            .bind(&file.owner)
            .bind(&file.filename)
            .bind(&file.purpose)
            .bind(file.bytes)
            .bind(file.created_at)
            .bind(content)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(&e))
    }

    pub async fn file(&self, id: &str) -> Result<Option<FileRow>, StoreError> {
        self.prepare().await?;
        let sql = self
            .sql(&format!(r#"SELECT {FILE_COLUMNS} FROM "Switchyard_BatchFiles" WHERE "id" = $1"#));
        with_pool!(&self.db, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await {
                Ok(Some(row)) => file_of(&row).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.err(&e))
    }

    pub async fn file_content(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.prepare().await?;
        let sql = self.sql(r#"SELECT "content" FROM "Switchyard_BatchFiles" WHERE "id" = $1"#);
        with_pool!(&self.db, |pool| sqlx::query_scalar::<_, String>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| self.err(&e))
    }

    /// Newest first; `owner` None lists everyone's.
    pub async fn list_files(
        &self,
        owner: Option<&str>,
        purpose: Option<&str>,
        page: &Page<'_>,
    ) -> Result<(Vec<FileRow>, bool), StoreError> {
        self.prepare().await?;
        let cursor = match page.after {
            Some(id) => self.file(id).await?.map(|f| (f.created_at, f.id)),
            None => None,
        };
        let sql = self.sql(&format!(
            r#"SELECT {FILE_COLUMNS} FROM "Switchyard_BatchFiles"
               WHERE ($1 IS NULL OR "owner" = $1) AND ($2 IS NULL OR "purpose" = $2)
                 AND ($3 IS NULL OR ("created_at", "id") < ($3, $4))
               ORDER BY "created_at" DESC, "id" DESC LIMIT $5"#
        ));
        let (c_at, c_id) = cursor.map_or((None, None), |(t, id)| (Some(t), Some(id)));
        let mut rows = with_pool!(&self.db, |pool| {
            let rows = sqlx::query(&sql)
                .bind(owner)
                .bind(purpose)
                .bind(c_at)
                .bind(c_id.as_deref())
                .bind(page.limit + 1)
                .fetch_all(pool)
                .await;
            rows.and_then(|rows| rows.iter().map(file_of).collect::<Result<Vec<_>, _>>())
        })
        .map_err(|e| self.err(&e))?;
        let more = rows.len() as i64 > page.limit;
        rows.truncate(usize::try_from(page.limit).unwrap_or(0));
        Ok((rows, more))
    }

    pub async fn delete_file(&self, id: &str) -> Result<bool, StoreError> {
        self.prepare().await?;
        let sql = self.sql(r#"DELETE FROM "Switchyard_BatchFiles" WHERE "id" = $1"#);
        with_pool!(&self.db, |pool| sqlx::query(&sql)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
        .map_err(|e| self.err(&e))
    }

    /// The batch and its items, in one transaction: a batch is never seen without them.
    pub async fn create_batch(&self, b: &BatchRow, items: &[NewItem]) -> Result<(), StoreError> {
        self.prepare().await?;
        let insert_batch = self.sql(&format!(
            r#"INSERT INTO "Switchyard_Batches" ({BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"#
        ));
        let items_sql = |n: usize| {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                let p = i * 5;
                values.push(format!(
                    "(${}, ${}, ${}, ${}, 'queued', 0, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                ));
            }
            self.sql(&format!(
                r#"INSERT INTO "Switchyard_BatchItems" ("batch_id", "line", "custom_id", "body", "state", "attempts", "queued_at") VALUES {}"#,
                values.join(", ")
            ))
        };
        let metadata = b.metadata.as_ref().map(Value::to_string);
        let errors = b.errors.as_ref().map(Value::to_string);
        with_pool!(&self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(&insert_batch)
                    .bind(&b.id)
                    .bind(b.surface.as_str())
                    .bind(&b.owner)
                    .bind(&b.owner_alias)
                    .bind(&b.endpoint)
                    .bind(&b.input_file_id)
                    .bind(&b.completion_window)
                    .bind(b.status.as_str())
                    .bind(&metadata)
                    .bind(&errors)
                    .bind(b.created_at)
                    .bind(b.in_progress_at)
                    .bind(b.finalizing_at)
                    .bind(b.completed_at)
                    .bind(b.failed_at)
                    .bind(b.expired_at)
                    .bind(b.cancelling_at)
                    .bind(b.cancelled_at)
                    .bind(b.expires_at)
                    .bind(&b.output_file_id)
                    .bind(&b.error_file_id)
                    .bind(&b.upstream_id)
                    .execute(&mut *tx)
                    .await?;
                for chunk in items.chunks(CHUNK) {
                    let sql = items_sql(chunk.len());
                    let mut q = sqlx::query(&sql);
                    for item in chunk {
                        q = q
                            .bind(&b.id)
                            .bind(item.line)
                            .bind(&item.custom_id)
                            .bind(&item.body)
                            .bind(b.created_at);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(|e| self.err(&e))
    }

    /// One batch with its counts.
    pub async fn batch(&self, id: &str) -> Result<Option<BatchRow>, StoreError> {
        self.prepare().await?;
        let sql = self
            .sql(&format!(r#"SELECT {BATCH_COLUMNS} FROM "Switchyard_Batches" WHERE "id" = $1"#));
        let found = with_pool!(&self.db, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await {
                Ok(Some(row)) => batch_of(&row).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.err(&e))?;
        match found {
            Some(mut b) => {
                self.fill_counts(&mut b).await?;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }

    /// The batch's counts from its items; a forwarded batch's from its upstream until its
    /// results are settled into the items.
    async fn fill_counts(&self, b: &mut BatchRow) -> Result<(), StoreError> {
        b.counts = self.counts(&b.id).await?;
        if b.counts.queued > 0
            && let Some(f) = Forwarding::of(b)
        {
            f.overlay(&mut b.counts);
        }
        Ok(())
    }

    async fn counts(&self, id: &str) -> Result<Counts, StoreError> {
        let by_state = self.sql(
            r#"SELECT "state", COUNT(*) AS "n" FROM "Switchyard_BatchItems" WHERE "batch_id" = $1 GROUP BY "state""#,
        );
        let costs = self.sql(
            r#"SELECT "cost" FROM "Switchyard_BatchItems" WHERE "batch_id" = $1 AND "state" = 'succeeded'"#,
        );
        let mut counts = Counts::default();
        let rows: Vec<(String, i64)> =
            with_pool!(&self.db, |pool| sqlx::query_as(&by_state).bind(id).fetch_all(pool).await)
                .map_err(|e| self.err(&e))?;
        for (state, n) in rows {
            counts.add(ItemState::parse(&state), n);
        }
        let costs: Vec<Option<String>> =
            with_pool!(&self.db, |pool| sqlx::query_scalar(&costs).bind(id).fetch_all(pool).await)
                .map_err(|e| self.err(&e))?;
        for cost in &costs {
            counts.add_cost(cost.as_deref());
        }
        Ok(counts)
    }

    /// Newest first; `owner` None lists everyone's, `surface` None both kinds.
    pub async fn list_batches(
        &self,
        owner: Option<&str>,
        surface: Option<Surface>,
        page: &Page<'_>,
    ) -> Result<(Vec<BatchRow>, bool), StoreError> {
        self.prepare().await?;
        let (after, before) = (self.cursor(page.after).await?, self.cursor(page.before).await?);
        // Newer than `before`: read upwards from it, then put the page back in order.
        let (cmp, order, c) = match (&before, &after) {
            (Some(c), _) => (">", "ASC", Some(c)),
            (None, Some(c)) => ("<", "DESC", Some(c)),
            (None, None) => ("<", "DESC", None),
        };
        let sql = self.sql(&format!(
            r#"SELECT {BATCH_COLUMNS} FROM "Switchyard_Batches"
               WHERE ($1 IS NULL OR "owner" = $1) AND ($2 IS NULL OR "surface" = $2)
                 AND ($3 IS NULL OR ("created_at", "id") {cmp} ($3, $4))
               ORDER BY "created_at" {order}, "id" {order} LIMIT $5"#
        ));
        let (c_at, c_id) = c.map_or((None, None), |(t, id)| (Some(*t), Some(id.as_str())));
        let mut rows = with_pool!(&self.db, |pool| {
            let rows = sqlx::query(&sql)
                .bind(owner)
                .bind(surface.map(Surface::as_str))
                .bind(c_at)
                .bind(c_id)
                .bind(page.limit + 1)
                .fetch_all(pool)
                .await;
            rows.and_then(|rows| rows.iter().map(batch_of).collect::<Result<Vec<_>, _>>())
        })
        .map_err(|e| self.err(&e))?;
        let more = rows.len() as i64 > page.limit;
        rows.truncate(usize::try_from(page.limit).unwrap_or(0));
        if before.is_some() {
            rows.reverse();
        }
        for b in &mut rows {
            self.fill_counts(b).await?;
        }
        Ok((rows, more))
    }

    async fn cursor(&self, id: Option<&str>) -> Result<Option<(i64, String)>, StoreError> {
        let sql = self.sql(r#"SELECT "created_at" FROM "Switchyard_Batches" WHERE "id" = $1"#);
        let Some(id) = id else { return Ok(None) };
        let at: Option<i64> = with_pool!(&self.db, |pool| sqlx::query_scalar(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| self.err(&e))?;
        Ok(at.map(|t| (t, id.to_owned())))
    }

    /// Stops a batch: no item is claimed from it any more, its queued items are canceled
    /// at once, and it is cancelled when the running ones have finished. Returns whether
    /// this call moved it to `cancelling` (false: it had already ended or was cancelling).
    pub async fn cancel(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        self.prepare().await?;
        let batch = self.sql(
            r#"UPDATE "Switchyard_Batches" SET "status" = 'cancelling', "cancelling_at" = $2
               WHERE "id" = $1 AND "status" IN ('validating', 'in_progress') AND "upstream_id" IS NULL"#,
        );
        let items = self.sql(
            r#"UPDATE "Switchyard_BatchItems" SET "state" = 'canceled', "finished_at" = $2
               WHERE "batch_id" = $1 AND "state" = 'queued'"#,
        );
        with_pool!(&self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let moved =
                    sqlx::query(&batch).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
                if moved > 0 {
                    sqlx::query(&items).bind(id).bind(now).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(moved > 0)
            }
            .await
        })
        .map_err(|e: sqlx::Error| self.err(&e))
    }

    /// Marks the queued items of batches past their `expires_at` as expired; returns the
    /// batches touched (to finalize).
    pub async fn expire(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.prepare().await?;
        let due = self.sql(
            r#"SELECT "id" FROM "Switchyard_Batches" WHERE "status" = 'in_progress' AND "expires_at" <= $1 AND "upstream_id" IS NULL"#,
        );
        let ids: Vec<String> =
            with_pool!(&self.db, |pool| sqlx::query_scalar(&due).bind(now).fetch_all(pool).await)
                .map_err(|e| self.err(&e))?;
        let items = self.sql(
            r#"UPDATE "Switchyard_BatchItems" SET "state" = 'expired', "finished_at" = $2
               WHERE "batch_id" = $1 AND "state" = 'queued'"#,
        );
        for id in &ids {
            with_pool!(&self.db, |pool| sqlx::query(&items)
                .bind(id)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ()))
            .map_err(|e| self.err(&e))?;
        }
        Ok(ids)
    }

    /// Takes up to `n` queued items of batches in progress, oldest batch first, for
    /// `runner`. Each claim counts as a run (`attempts`).
    pub async fn claim(
        &self,
        runner: &str,
        now_ms: i64,
        n: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.prepare().await?;
        let lock = match self.db {
            Db::Pg(_) => "FOR UPDATE SKIP LOCKED",
            Db::Lite(_) => "",
        };
        let sql = self.sql(&format!(
            r#"UPDATE "Switchyard_BatchItems" SET "state" = 'running', "attempts" = "attempts" + 1,
                   "claimed_by" = $1, "claimed_at" = $2
               WHERE ("batch_id", "line") IN (
                   SELECT "batch_id", "line" FROM "Switchyard_BatchItems"
                   WHERE "state" = 'queued' AND "batch_id" IN
                       (SELECT "id" FROM "Switchyard_Batches" WHERE "status" = 'in_progress' AND "upstream_id" IS NULL)
                   ORDER BY "queued_at", "batch_id", "line" LIMIT $3 {lock})
               RETURNING "batch_id", "line", "custom_id", "body", "attempts""#
        ));
        let mut claimed = with_pool!(&self.db, |pool| {
            let rows = sqlx::query(&sql).bind(runner).bind(now_ms).bind(n).fetch_all(pool).await;
            rows.and_then(|rows| rows.iter().map(claimed_of).collect::<Result<Vec<_>, _>>())
        })
        .map_err(|e| self.err(&e))?;
        claimed.sort_by(|a, b| (&a.batch_id, a.line).cmp(&(&b.batch_id, b.line)));
        Ok(claimed)
    }

    /// Records a finished item, only while `runner` still holds its claim. Returns false
    /// when it does not (the claim was taken over): the result is not written.
    pub async fn finish(
        &self,
        item: &Claimed,
        runner: &str,
        done: &Finished,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write_result(&item.batch_id, item.line, (ItemState::Running, Some(runner)), done, now)
            .await
    }

    /// Renews `runner`'s claims: items it is still running are not orphans.
    pub async fn heartbeat(&self, runner: &str, now_ms: i64) -> Result<(), StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"UPDATE "Switchyard_BatchItems" SET "claimed_at" = $2 WHERE "claimed_by" = $1 AND "state" = 'running'"#,
        );
        with_pool!(&self.db, |pool| sqlx::query(&sql)
            .bind(runner)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(&e))
    }

    /// Gives up `runner`'s claims at once (a stop that could not wait for them): another
    /// runner, or this one after a restart, takes them without waiting for the lease.
    pub async fn release(&self, runner: &str) -> Result<(), StoreError> {
        self.heartbeat(runner, 0).await
    }

    /// Running items whose claim was last renewed before `stale_before_ms`.
    pub async fn orphans(&self, stale_before_ms: i64) -> Result<Vec<Orphan>, StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"SELECT "batch_id", "line", "custom_id", "body", "attempts", "claimed_at" FROM "Switchyard_BatchItems"
               WHERE "state" = 'running' AND "claimed_at" < $1 ORDER BY "batch_id", "line" LIMIT 1000"#,
        );
        with_pool!(&self.db, |pool| {
            let rows = sqlx::query(&sql).bind(stale_before_ms).fetch_all(pool).await;
            rows.and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        Ok(Orphan {
                            item: claimed_of(r)?,
                            claimed_at: r.opt_int("claimed_at")?.unwrap_or(0),
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
        })
        .map_err(|e| self.err(&e))
    }

    /// Takes an orphan back: queued again, or finished as `gave_up` when it already ran
    /// its last allowed time. Only if nobody renewed or took it meanwhile.
    pub async fn reclaim(
        &self,
        orphan: &Orphan,
        gave_up: Option<&Finished>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.prepare().await?;
        let (sql, done) = match gave_up {
            None => (
                self.sql(
                    r#"UPDATE "Switchyard_BatchItems" SET "state" = 'queued', "claimed_by" = NULL, "claimed_at" = NULL
                       WHERE "batch_id" = $1 AND "line" = $2 AND "state" = 'running' AND "claimed_at" = $3"#,
                ),
                None,
            ),
            Some(done) => (
                self.sql(
                    r#"UPDATE "Switchyard_BatchItems" SET "state" = $4, "status_code" = $5, "result" = $6, "finished_at" = $7
                       WHERE "batch_id" = $1 AND "line" = $2 AND "state" = 'running' AND "claimed_at" = $3"#,
                ),
                Some(done),
            ),
        };
        let o = &orphan.item;
        with_pool!(&self.db, |pool| {
            let mut q = sqlx::query(&sql).bind(&o.batch_id).bind(o.line).bind(orphan.claimed_at);
            if let Some(done) = done {
                q = q.bind(done.state.as_str()).bind(done.status_code).bind(&done.result).bind(now);
            }
            q.execute(pool).await.map(|d| d.rows_affected() > 0)
        })
        .map_err(|e| self.err(&e))
    }

    /// Ids of forwarded batches not ended yet, oldest first.
    pub async fn forwarded_open(&self) -> Result<Vec<String>, StoreError> {
        self.prepare().await?;
        let sql = r#"SELECT "id" FROM "Switchyard_Batches" WHERE "upstream_id" IS NOT NULL AND "status" IN ('in_progress', 'cancelling') ORDER BY "created_at", "id""#;
        with_pool!(&self.db, |pool| sqlx::query_scalar(sql).fetch_all(pool).await)
            .map_err(|e| self.err(&e))
    }

    /// Records what the upstream says of a forwarded batch that has not ended here yet:
    /// its status, what `metadata` holds for it, and the times it reports. Returns false
    /// when the batch had already ended here.
    pub async fn update_forwarded(&self, b: &BatchRow) -> Result<bool, StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"UPDATE "Switchyard_Batches" SET "status" = $2, "metadata" = $3,
                   "cancelling_at" = COALESCE("cancelling_at", $4), "completed_at" = $5,
                   "cancelled_at" = $6, "expired_at" = $7, "expires_at" = $8
               WHERE "id" = $1 AND "status" IN ('in_progress', 'cancelling')"#,
        );
        let metadata = b.metadata.as_ref().map(Value::to_string);
        with_pool!(&self.db, |pool| sqlx::query(&sql)
            .bind(&b.id)
            .bind(b.status.as_str())
            .bind(&metadata)
            .bind(b.cancelling_at)
            .bind(b.completed_at)
            .bind(b.cancelled_at)
            .bind(b.expired_at)
            .bind(b.expires_at)
            .execute(pool)
            .await
            .map(|d| d.rows_affected() > 0))
        .map_err(|e| self.err(&e))
    }

    /// A forwarded batch's items whose result has not been settled yet.
    pub async fn unsettled(&self, batch_id: &str) -> Result<Vec<Claimed>, StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"SELECT "batch_id", "line", "custom_id", "body", "attempts" FROM "Switchyard_BatchItems"
               WHERE "batch_id" = $1 AND "state" = 'queued' ORDER BY "line""#,
        );
        with_pool!(&self.db, |pool| {
            let rows = sqlx::query(&sql).bind(batch_id).fetch_all(pool).await;
            rows.and_then(|rows| rows.iter().map(claimed_of).collect::<Result<Vec<_>, _>>())
        })
        .map_err(|e| self.err(&e))
    }

    /// Settles one item of a forwarded batch from its upstream result line, once: only
    /// while it is still queued. Returns whether this call settled it.
    pub async fn settle(
        &self,
        batch_id: &str,
        line: i64,
        done: &Finished,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write_result(batch_id, line, (ItemState::Queued, None), done, now).await
    }

    /// Writes an item's result only while it is in the state `from` (and, with a runner,
    /// claimed by it), so a result is written once.
    async fn write_result(
        &self,
        batch_id: &str,
        line: i64,
        from: (ItemState, Option<&str>),
        done: &Finished,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"UPDATE "Switchyard_BatchItems" SET "state" = $1, "status_code" = $2, "result" = $3,
                   "cost" = $4, "ledger" = $5, "finished_at" = $6
               WHERE "batch_id" = $7 AND "line" = $8 AND "state" = $9
                 AND ("claimed_by" = $10 OR $10 IS NULL)"#,
        );
        let cost = done.cost.map(|c| c.normalize().to_string());
        let result = (!done.result.is_empty()).then_some(&done.result);
        with_pool!(&self.db, |pool| sqlx::query(&sql)
            .bind(done.state.as_str())
            .bind((done.status_code > 0).then_some(done.status_code))
            .bind(result)
            .bind(&cost)
            .bind(&done.ledger)
            .bind(now)
            .bind(batch_id)
            .bind(line)
            .bind(from.0.as_str())
            .bind(from.1)
            .execute(pool)
            .await
            .map(|d| d.rows_affected() > 0))
        .map_err(|e| self.err(&e))
    }

    /// Ids of batches that may still need work or finalizing.
    pub async fn open_batches(&self) -> Result<Vec<String>, StoreError> {
        self.prepare().await?;
        let sql = r#"SELECT "id" FROM "Switchyard_Batches" WHERE "status" IN ('validating', 'in_progress', 'finalizing', 'cancelling')"#;
        with_pool!(&self.db, |pool| sqlx::query_scalar(sql).fetch_all(pool).await)
            .map_err(|e| self.err(&e))
    }

    /// Every item of a batch with its result, in line order.
    pub async fn items(&self, batch_id: &str) -> Result<Vec<ItemResult>, StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"SELECT "line", "custom_id", "state", "status_code", "result" FROM "Switchyard_BatchItems"
               WHERE "batch_id" = $1 ORDER BY "line""#,
        );
        with_pool!(&self.db, |pool| {
            let rows = sqlx::query(&sql).bind(batch_id).fetch_all(pool).await;
            rows.and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        let line = r.int("line")?;
                        Ok(ItemResult {
                            line,
                            custom_id: r.text("custom_id")?,
                            state: ItemState::parse(&r.text("state")?),
                            status_code: r.opt_int("status_code")?,
                            result: r.opt_text("result")?,
                            request_id: request_id(batch_id, line),
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
        })
        .map_err(|e| self.err(&e))
    }

    /// Ends a batch whose items have all finished: writes its output files (`files`: file
    /// and content, none for Anthropic batches) and sets its final status, in one
    /// transaction, only if it is still `from` and nothing is queued or running.
    pub async fn finalize(
        &self,
        id: &str,
        from: Status,
        to: Status,
        files: &[(FileRow, String)],
        now: i64,
    ) -> Result<bool, StoreError> {
        self.prepare().await?;
        let pending = self.sql(
            r#"SELECT COUNT(*) FROM "Switchyard_BatchItems" WHERE "batch_id" = $1 AND "state" IN ('queued', 'running')"#,
        );
        let insert = self.sql(
            r#"INSERT INTO "Switchyard_BatchFiles" ("id", "owner", "filename", "purpose", "bytes", "created_at", "content") VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
        );
        let ended = match to {
            Status::Cancelled => "cancelled_at",
            Status::Expired => "expired_at",
            Status::Failed => "failed_at",
            _ => "completed_at",
        };
        let output = files.iter().find(|(f, _)| f.filename.ends_with("output.jsonl"));
        let errors = files.iter().find(|(f, _)| f.filename.ends_with("errors.jsonl"));
        let update = self.sql(&format!(
            r#"UPDATE "Switchyard_Batches" SET "status" = $3, "finalizing_at" = $4, "{ended}" = $4,
                   "output_file_id" = $5, "error_file_id" = $6
               WHERE "id" = $1 AND "status" = $2"#
        ));
        with_pool!(&self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let left: i64 = sqlx::query_scalar(&pending).bind(id).fetch_one(&mut *tx).await?;
                if left > 0 {
                    return Ok(false);
                }
                let moved = sqlx::query(&update)
                    .bind(id)
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .bind(now)
                    .bind(output.map(|(f, _)| f.id.as_str()))
                    .bind(errors.map(|(f, _)| f.id.as_str()))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if moved == 0 {
                    return Ok(false);
                }
                for (f, content) in files {
                    sqlx::query(&insert)
                        .bind(&f.id)
                        .bind(&f.owner)
                        .bind(&f.filename)
                        .bind(&f.purpose)
                        .bind(f.bytes)
                        .bind(f.created_at)
                        .bind(content)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }
            .await
        })
        .map_err(|e: sqlx::Error| self.err(&e))
    }

    /// Ledger rows of finished items not yet confirmed written: (batch, line, row JSON).
    pub async fn unrecorded(&self, limit: i64) -> Result<Vec<(String, i64, String)>, StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"SELECT "batch_id", "line", "ledger" FROM "Switchyard_BatchItems" WHERE "ledger" IS NOT NULL LIMIT $1"#,
        );
        with_pool!(&self.db, |pool| sqlx::query_as(&sql).bind(limit).fetch_all(pool).await)
            .map_err(|e| self.err(&e))
    }

    /// The ledger has these items' rows: forget the copies.
    pub async fn recorded(&self, items: &[(String, i64)]) -> Result<(), StoreError> {
        self.prepare().await?;
        let sql = self.sql(
            r#"UPDATE "Switchyard_BatchItems" SET "ledger" = NULL WHERE "batch_id" = $1 AND "line" = $2"#,
        );
        with_pool!(&self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                for (batch, line) in items {
                    sqlx::query(&sql).bind(batch).bind(*line).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(|e| self.err(&e))
    }

    /// Deletes an ended batch with its items and output files.
    pub async fn delete_batch(&self, b: &BatchRow) -> Result<(), StoreError> {
        self.prepare().await?;
        let items = self.sql(r#"DELETE FROM "Switchyard_BatchItems" WHERE "batch_id" = $1"#);
        let batch = self.sql(r#"DELETE FROM "Switchyard_Batches" WHERE "id" = $1"#);
        let files = self.sql(r#"DELETE FROM "Switchyard_BatchFiles" WHERE "id" = $1 OR "id" = $2"#);
        with_pool!(&self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(&items).bind(&b.id).execute(&mut *tx).await?;
                sqlx::query(&batch).bind(&b.id).execute(&mut *tx).await?;
                sqlx::query(&files)
                    .bind(b.output_file_id.as_deref().unwrap_or(""))
                    .bind(b.error_file_id.as_deref().unwrap_or(""))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
            .await
        })
        .map_err(|e| self.err(&e))
    }
}
