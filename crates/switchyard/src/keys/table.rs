//! The five LiteLLM tables the key layer keeps, described once: their names, primary keys and
//! columns (with the SQLite type each gets). Both stores are driven by this table; PostgreSQL's
//! DDL is LiteLLM's own (Prisma's types and defaults), SQLite's is derived from the columns.

/// How a column is held in SQLite (PostgreSQL uses LiteLLM's types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Real,
    Int,
    Bool,
    /// A JSON object or list (`JSONB` / `TEXT[]` in PostgreSQL), JSON text in SQLite.
    Json,
    /// RFC 3339 text in SQLite, `TIMESTAMP(3)` in PostgreSQL.
    Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Keys,
    Teams,
    Users,
    EndUsers,
    Budgets,
}

use Kind::*;

impl Table {
    pub const ALL: [Table; 5] =
        [Table::Keys, Table::Teams, Table::Users, Table::EndUsers, Table::Budgets];

    pub fn name(self) -> &'static str {
        match self {
            Self::Keys => "LiteLLM_VerificationToken",
            Self::Teams => "LiteLLM_TeamTable",
            Self::Users => "LiteLLM_UserTable",
            Self::EndUsers => "LiteLLM_EndUserTable",
            Self::Budgets => "LiteLLM_BudgetTable",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Self::Keys => "token",
            Self::Teams => "team_id",
            Self::Users | Self::EndUsers => "user_id",
            Self::Budgets => "budget_id",
        }
    }

    /// Whether the table has `updated_at` (the change feed watches it for writers that do not
    /// bump the change counter, such as LiteLLM itself).
    pub fn has_updated_at(self) -> bool {
        !matches!(self, Self::EndUsers)
    }

    /// The columns Switchyard reads and writes, as the record structs name them.
    pub fn columns(self) -> &'static [(&'static str, Kind)] {
        match self {
            Self::Keys => &[
                ("token", Text),
                ("key_name", Text),
                ("key_alias", Text),
                ("spend", Real),
                ("expires", Time),
                ("models", Json),
                ("aliases", Json),
                ("config", Json),
                ("user_id", Text),
                ("team_id", Text),
                ("permissions", Json),
                ("max_parallel_requests", Int),
                ("metadata", Json),
                ("blocked", Bool),
                ("tpm_limit", Int),
                ("rpm_limit", Int),
                ("max_budget", Real),
                ("budget_duration", Text),
                ("budget_reset_at", Time),
                ("allowed_cache_controls", Json),
                ("allowed_routes", Json),
                ("model_spend", Json),
                ("model_max_budget", Json),
                ("budget_id", Text),
                ("organization_id", Text),
                ("created_at", Time),
                ("created_by", Text),
                ("updated_at", Time),
                ("updated_by", Text),
            ],
            Self::Teams => &[
                ("team_id", Text),
                ("team_alias", Text),
                ("organization_id", Text),
                ("admins", Json),
                ("members", Json),
                ("members_with_roles", Json),
                ("metadata", Json),
                ("max_budget", Real),
                ("soft_budget", Real),
                ("spend", Real),
                ("models", Json),
                ("max_parallel_requests", Int),
                ("tpm_limit", Int),
                ("rpm_limit", Int),
                ("budget_duration", Text),
                ("budget_reset_at", Time),
                ("blocked", Bool),
                ("created_at", Time),
                ("updated_at", Time),
                ("model_spend", Json),
                ("model_max_budget", Json),
            ],
            Self::Users => &[
                ("user_id", Text),
                ("user_alias", Text),
                ("team_id", Text),
                ("organization_id", Text),
                ("teams", Json),
                ("user_role", Text),
                ("max_budget", Real),
                ("spend", Real),
                ("user_email", Text),
                ("models", Json),
                ("metadata", Json),
                ("max_parallel_requests", Int),
                ("tpm_limit", Int),
                ("rpm_limit", Int),
                ("budget_duration", Text),
                ("budget_reset_at", Time),
                ("model_spend", Json),
                ("model_max_budget", Json),
                ("created_at", Time),
                ("updated_at", Time),
            ],
            Self::EndUsers => &[
                ("user_id", Text),
                ("alias", Text),
                ("spend", Real),
                ("allowed_model_region", Text),
                ("default_model", Text),
                ("budget_id", Text),
                ("blocked", Bool),
            ],
            Self::Budgets => &[
                ("budget_id", Text),
                ("max_budget", Real),
                ("soft_budget", Real),
                ("max_parallel_requests", Int),
                ("tpm_limit", Int),
                ("rpm_limit", Int),
                ("model_max_budget", Json),
                ("budget_duration", Text),
                ("budget_reset_at", Time),
                ("created_at", Time),
                ("created_by", Text),
                ("updated_at", Time),
                ("updated_by", Text),
            ],
        }
    }
}

/// LiteLLM's DDL for the tables (schema.prisma, as Prisma migrates it), made conditional: a
/// table LiteLLM created is left exactly as it is.
pub const POSTGRES_DDL: &[&str] = &[
    r#"CREATE TABLE IF NOT EXISTS "LiteLLM_BudgetTable" (
    "budget_id" TEXT NOT NULL,
    "max_budget" DOUBLE PRECISION,
    "soft_budget" DOUBLE PRECISION,
    "max_parallel_requests" INTEGER,
    "tpm_limit" BIGINT,
    "rpm_limit" BIGINT,
    "model_max_budget" JSONB,
    "budget_duration" TEXT,
    "budget_reset_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_by" TEXT NOT NULL,
    CONSTRAINT "LiteLLM_BudgetTable_pkey" PRIMARY KEY ("budget_id")
)"#,
    r#"CREATE TABLE IF NOT EXISTS "LiteLLM_TeamTable" (
    "team_id" TEXT NOT NULL,
    "team_alias" TEXT,
    "organization_id" TEXT,
    "object_permission_id" TEXT,
    "admins" TEXT[],
    "members" TEXT[],
    "members_with_roles" JSONB NOT NULL DEFAULT '{}',
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "max_budget" DOUBLE PRECISION,
    "soft_budget" DOUBLE PRECISION,
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "models" TEXT[],
    "max_parallel_requests" INTEGER,
    "tpm_limit" BIGINT,
    "rpm_limit" BIGINT,
    "budget_duration" TEXT,
    "budget_reset_at" TIMESTAMP(3),
    "blocked" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "model_spend" JSONB NOT NULL DEFAULT '{}',
    "model_max_budget" JSONB NOT NULL DEFAULT '{}',
    "model_id" INTEGER,
    CONSTRAINT "LiteLLM_TeamTable_pkey" PRIMARY KEY ("team_id")
)"#,
    r#"CREATE TABLE IF NOT EXISTS "LiteLLM_UserTable" (
    "user_id" TEXT NOT NULL,
    "user_alias" TEXT,
    "team_id" TEXT,
    "sso_user_id" TEXT,
    "organization_id" TEXT,
    "password" TEXT,
    "teams" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "user_role" TEXT,
    "max_budget" DOUBLE PRECISION,
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "user_email" TEXT,
    "models" TEXT[],
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "max_parallel_requests" INTEGER,
    "tpm_limit" BIGINT,
    "rpm_limit" BIGINT,
    "budget_duration" TEXT,
    "budget_reset_at" TIMESTAMP(3),
    "allowed_cache_controls" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "model_spend" JSONB NOT NULL DEFAULT '{}',
    "model_max_budget" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "LiteLLM_UserTable_pkey" PRIMARY KEY ("user_id")
)"#,
    r#"CREATE TABLE IF NOT EXISTS "LiteLLM_EndUserTable" (
    "user_id" TEXT NOT NULL,
    "alias" TEXT,
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "allowed_model_region" TEXT,
    "default_model" TEXT,
    "budget_id" TEXT,
    "blocked" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "LiteLLM_EndUserTable_pkey" PRIMARY KEY ("user_id")
)"#,
    r#"CREATE TABLE IF NOT EXISTS "LiteLLM_VerificationToken" (
    "token" TEXT NOT NULL,
    "key_name" TEXT,
    "key_alias" TEXT,
    "soft_budget_cooldown" BOOLEAN NOT NULL DEFAULT false,
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "expires" TIMESTAMP(3),
    "models" TEXT[],
    "aliases" JSONB NOT NULL DEFAULT '{}',
    "config" JSONB NOT NULL DEFAULT '{}',
    "user_id" TEXT,
    "team_id" TEXT,
    "permissions" JSONB NOT NULL DEFAULT '{}',
    "max_parallel_requests" INTEGER,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "blocked" BOOLEAN,
    "tpm_limit" BIGINT,
    "rpm_limit" BIGINT,
    "max_budget" DOUBLE PRECISION,
    "budget_duration" TEXT,
    "budget_reset_at" TIMESTAMP(3),
    "allowed_cache_controls" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "allowed_routes" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "model_spend" JSONB NOT NULL DEFAULT '{}',
    "model_max_budget" JSONB NOT NULL DEFAULT '{}',
    "budget_id" TEXT,
    "organization_id" TEXT,
    "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT,
    "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
    "updated_by" TEXT,
    CONSTRAINT "LiteLLM_VerificationToken_pkey" PRIMARY KEY ("token")
)"#,
    r#"CREATE INDEX IF NOT EXISTS "LiteLLM_VerificationToken_team_id_idx" ON "LiteLLM_VerificationToken"("team_id")"#,
    // Switchyard's own: a counter every write through Switchyard bumps, so replicas notice
    // changes (deletes included) by polling one row.
    r#"CREATE TABLE IF NOT EXISTS "Switchyard_KeyChanges" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "seq" BIGINT NOT NULL DEFAULT 0,
    "changed_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
)"#,
    r#"INSERT INTO "Switchyard_KeyChanges" ("id", "seq") VALUES (1, 0) ON CONFLICT DO NOTHING"#,
];

/// SQLite's DDL: the same table and column names, JSON as text.
pub fn sqlite_ddl() -> Vec<String> {
    let mut out: Vec<String> = Table::ALL
        .iter()
        .map(|t| {
            let cols: Vec<String> = t
                .columns()
                .iter()
                .map(|(name, kind)| {
                    let ty = match kind {
                        Text | Time | Json => "TEXT",
                        Real => "REAL",
                        Int | Bool => "INTEGER",
                    };
                    if *name == t.id() {
                        format!("\"{name}\" {ty} NOT NULL PRIMARY KEY")
                    } else {
                        format!("\"{name}\" {ty}")
                    }
                })
                .collect();
            format!(
                "CREATE TABLE IF NOT EXISTS \"{}\" (\n    {}\n)",
                t.name(),
                cols.join(",\n    ")
            )
        })
        .collect();
    out.push(
        "CREATE TABLE IF NOT EXISTS \"Switchyard_KeyChanges\" (\"id\" INTEGER NOT NULL PRIMARY \
         KEY, \"seq\" INTEGER NOT NULL DEFAULT 0, \"changed_at\" TEXT)"
            .to_owned(),
    );
    out.push(
        "INSERT OR IGNORE INTO \"Switchyard_KeyChanges\" (\"id\", \"seq\") VALUES (1, 0)"
            .to_owned(),
    );
    out
}
