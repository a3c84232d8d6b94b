//! PostgreSQL roles: the start-up check of the app role, and the grants `migrate` gives it.

use super::{Backend, Result, Store};

/// What the database says about the role the host connected as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCheck {
    /// The role's name.
    pub role: String,
    /// It is a superuser.
    pub superuser: bool,
    /// It bypasses row-level security.
    pub bypass_rls: bool,
    /// It owns tables in the current schema (owners are subject to FORCE RLS, but may turn it off).
    pub owns_tables: bool,
    /// It is a member (directly or through other roles) of a role that owns tables in the
    /// current schema: it can `SET ROLE` to the owner, or inherits its rights.
    pub member_of_owner: bool,
}

impl RoleCheck {
    /// Why this role must not serve requests, if it must not.
    pub fn refusal(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.superuser {
            why.push("is a superuser");
        }
        if self.bypass_rls {
            why.push("has BYPASSRLS");
        }
        if self.owns_tables {
            why.push("owns the tables");
        }
        if self.member_of_owner {
            why.push("is a member of the role that owns the tables");
        }
        (!why.is_empty()).then(|| {
            format!(
                "database role {:?} {}: row-level security would not isolate tenants; connect \
                 SWITCHYARD_DATABASE_URL as the app role (see docs/operating.md) or pass \
                 --insecure-db-role",
                self.role,
                why.join(" and ")
            )
        })
    }
}

impl Store {
    /// Inspect the connected role (PostgreSQL only; `None` on SQLite).
    pub async fn role_check(&self) -> Result<Option<RoleCheck>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        // `pg_has_role(.., 'MEMBER')` covers direct and indirect membership, with or without
        // INHERIT (a member without it can still `SET ROLE` to the owner).
        let (role, superuser, bypass_rls, owns_tables, member_of_owner): (
            String,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT r.rolname::text,
                    CASE WHEN r.rolsuper THEN 1 ELSE 0 END,
                    CASE WHEN r.rolbypassrls THEN 1 ELSE 0 END,
                    (SELECT COUNT(*) FROM pg_tables t
                      WHERE t.tableowner = current_user AND t.schemaname = current_schema()),
                    (SELECT COUNT(*) FROM pg_tables t
                      WHERE t.tableowner <> current_user AND t.schemaname = current_schema()
                        AND pg_has_role(current_user, t.tableowner, 'MEMBER'))
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(RoleCheck {
            role,
            superuser: superuser != 0,
            bypass_rls: bypass_rls != 0,
            owns_tables: owns_tables > 0,
            member_of_owner: member_of_owner > 0,
        }))
    }

    /// Give `app_role` what the host needs and nothing more: read/write on every table, the
    /// consent ledger append-only (SELECT, INSERT), no access to the migrations table.
    /// Run as the owner after migrating; PostgreSQL only.
    pub async fn grant_app_role(&self, app_role: &str) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        // The role name travels as a bound value and is quoted by format('%I') on the server.
        sqlx::query("SELECT set_config('switchyard.app_role', $1, false)")
            .bind(app_role)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "DO $$
             DECLARE r text := current_setting('switchyard.app_role');
             BEGIN
                 EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
                 EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
                                current_schema(), r);
                 EXECUTE format('REVOKE ALL ON _sqlx_migrations FROM %I', r);
                 EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON consent_ledger FROM %I', r);
             END
             $$",
        )
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
