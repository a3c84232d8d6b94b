//! People: users, their memberships in tenants and partners, sessions, invitations and password
//! resets (host tables; the caller checked who may see or change them).

use sqlx::FromRow;

use super::{Result, StoreError, Tx, now_ms};

/// A person as stored (the password hash never leaves the people module).
#[derive(Clone, FromRow)]
pub struct UserRecord {
    /// `usr_…`.
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string; `None` until they set one.
    pub password_hash: Option<String>,
    /// Consecutive failed sign-ins.
    pub failed_sign_ins: i64,
    /// Sign-in refused until then (Unix ms).
    pub locked_until: Option<i64>,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("failed_sign_ins", &self.failed_sign_ins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// A session as stored: only its secret's hash.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    /// `ses_…`.
    pub id: String,
    /// SHA-256 of the secret part.
    pub token_hash: Vec<u8>,
    /// The person.
    pub user_id: String,
    /// When it ends (Unix ms).
    pub expires_at: i64,
}

/// One membership of a person: a tenant or a partner, and a role.
#[derive(Debug, Clone, FromRow)]
pub struct MembershipRow {
    /// The person.
    pub user_id: String,
    /// The tenant, for a tenant membership.
    pub tenant_id: Option<String>,
    /// The partner, for a partner membership.
    pub partner_id: Option<String>,
    /// `owner`, `admin`, `agent`, `viewer` (tenant) or `owner`, `member` (partner).
    pub role: String,
    /// Since when (Unix ms).
    pub created_at: i64,
}

/// A member as a tenant's or partner's people list shows them.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    /// `usr_…`.
    pub user_id: String,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role here.
    pub role: String,
    /// Member since (Unix ms).
    pub created_at: i64,
}

/// An invitation as stored.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct InvitationRecord {
    /// `inv_…`; also the beginning of its token.
    pub id: String,
    /// SHA-256 of the token's secret part.
    #[serde(skip)]
    pub token_hash: Vec<u8>,
    /// Who is invited.
    pub email: String,
    /// Into this tenant…
    pub tenant_id: Option<String>,
    /// …or this partner.
    pub partner_id: Option<String>,
    /// With this role.
    pub role: String,
    /// Who invited (ledger name).
    pub invited_by: String,
    /// Sent at (Unix ms).
    pub created_at: i64,
    /// The link stops working then (Unix ms).
    pub expires_at: i64,
    /// When it was accepted.
    pub accepted_at: Option<i64>,
    /// When it was withdrawn.
    pub revoked_at: Option<i64>,
}

/// A password reset as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ResetRecord {
    /// `rst_…`.
    pub id: String,
    /// SHA-256 of the token's secret part.
    pub token_hash: Vec<u8>,
    /// The person.
    pub user_id: String,
    /// The link stops working then (Unix ms).
    pub expires_at: i64,
    /// When it was used.
    pub used_at: Option<i64>,
}

/// Where a membership or invitation belongs.
#[derive(Debug, Clone, Copy)]
pub enum Org<'a> {
    /// A tenant.
    Tenant(&'a str),
    /// A partner.
    Partner(&'a str),
}

impl Org<'_> {
    fn column(self) -> (&'static str, String) {
        match self {
            Org::Tenant(t) => ("tenant_id", t.to_string()),
            Org::Partner(p) => ("partner_id", p.to_string()),
        }
    }
}

const USER_COLUMNS: &str =
    "id, email, name, password_hash, failed_sign_ins, locked_until, created_at";
const INVITATION_COLUMNS: &str = "id, token_hash, email, tenant_id, partner_id, role, invited_by, \
     created_at, expires_at, accepted_at, revoked_at";

impl Tx {
    /// A person by (lower-cased) email.
    pub async fn user_by_email(&mut self, email: &str) -> Result<Option<UserRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        )))
        .bind(email)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// A person by id.
    pub async fn user(&mut self, id: &str) -> Result<Option<UserRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Add a person.
    pub async fn insert_user(
        &mut self,
        id: &str,
        email: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(id)
        .bind(email)
        .bind(name)
        .bind(password_hash)
        .bind(now)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Set a person's password (and clear any lock-out).
    pub async fn set_password(&mut self, user_id: &str, password_hash: &str) -> Result<()> {
        sqlx::query(
            "UPDATE users SET password_hash = $2, failed_sign_ins = 0, locked_until = NULL,
                updated_at = $3 WHERE id = $1",
        )
        .bind(user_id)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Count a sign-in attempt before its password is checked, atomically: `None` while the
    /// account is locked (nothing counted); else `Some(locked_until)`, set when this attempt
    /// is the `limit`-th since the last good one (an expired lock starts the count again).
    pub async fn count_sign_in(
        &mut self,
        user_id: &str,
        limit: i64,
        lock_until: i64,
        now: i64,
    ) -> Result<Option<Option<i64>>> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "UPDATE users SET
                failed_sign_ins = CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_sign_ins + 1 END,
                locked_until = CASE WHEN locked_until IS NULL AND failed_sign_ins + 1 >= $2 THEN $3
                                    ELSE NULL END
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $4)
             RETURNING locked_until",
        )
        .bind(user_id)
        .bind(limit)
        .bind(lock_until)
        .bind(now)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(row.map(|(l,)| l))
    }

    /// A good sign-in: the count starts again and any lock is lifted.
    pub async fn clear_sign_ins(&mut self, user_id: &str) -> Result<()> {
        sqlx::query("UPDATE users SET failed_sign_ins = 0, locked_until = NULL WHERE id = $1")
            .bind(user_id)
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }

    /// Every membership of a person.
    pub async fn memberships_of(&mut self, user_id: &str) -> Result<Vec<MembershipRow>> {
        Ok(sqlx::query_as(
            "SELECT user_id, tenant_id, partner_id, role, created_at FROM memberships
             WHERE user_id = $1 ORDER BY created_at, tenant_id, partner_id",
        )
        .bind(user_id)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// The members of a tenant or partner, by email.
    pub async fn members(&mut self, org: Org<'_>) -> Result<Vec<Member>> {
        let (column, id) = org.column();
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.{column} = $1 ORDER BY u.email"
        )))
        .bind(id)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// One member's role in a tenant or partner.
    pub async fn member_role(&mut self, org: Org<'_>, user_id: &str) -> Result<Option<String>> {
        let (column, id) = org.column();
        let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT role FROM memberships WHERE {column} = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(row.map(|(r,)| r))
    }

    /// Hold the owners of a tenant or partner until the transaction ends (PostgreSQL: their
    /// rows `FOR UPDATE`; SQLite's one writer already runs write transactions one at a time).
    pub async fn lock_owners(&mut self, org: Org<'_>) -> Result<()> {
        if self.backend == super::Backend::Postgres {
            let (column, id) = org.column();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT user_id FROM memberships WHERE {column} = $1 AND role = 'owner' FOR UPDATE"
            )))
            .bind(id)
            .fetch_all(&mut self.inner)
            .await?;
        }
        Ok(())
    }

    /// How many owners a tenant or partner has.
    pub async fn owner_count(&mut self, org: Org<'_>) -> Result<i64> {
        let (column, id) = org.column();
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM memberships WHERE {column} = $1 AND role = 'owner'"
        )))
        .bind(id)
        .fetch_one(&mut self.inner)
        .await?;
        Ok(n)
    }

    /// Add a membership; `Conflict` when the person is already a member.
    pub async fn insert_membership(
        &mut self,
        org: Org<'_>,
        user_id: &str,
        role: &str,
        created_by: &str,
    ) -> Result<()> {
        let (tenant, partner) = match org {
            Org::Tenant(t) => (Some(t), None),
            Org::Partner(p) => (None, Some(p)),
        };
        sqlx::query(
            "INSERT INTO memberships (user_id, tenant_id, partner_id, role, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user_id)
        .bind(tenant)
        .bind(partner)
        .bind(role)
        .bind(created_by)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Change a member's role; `NotFound` when they are not a member.
    pub async fn set_member_role(&mut self, org: Org<'_>, user_id: &str, role: &str) -> Result<()> {
        let (column, id) = org.column();
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE memberships SET role = $3 WHERE {column} = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .bind(role)
        .execute(&mut self.inner)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Remove a member; `NotFound` when they are not one.
    pub async fn delete_membership(&mut self, org: Org<'_>, user_id: &str) -> Result<()> {
        let (column, id) = org.column();
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM memberships WHERE {column} = $1 AND user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .execute(&mut self.inner)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Start a session.
    pub async fn insert_session(
        &mut self,
        id: &str,
        token_hash: &[u8],
        user_id: &str,
        expires_at: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(token_hash.to_vec())
        .bind(user_id)
        .bind(now_ms())
        .bind(expires_at)
        .bind(ip)
        .bind(user_agent)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// A session by id.
    pub async fn session(&mut self, id: &str) -> Result<Option<SessionRecord>> {
        Ok(
            sqlx::query_as(
                "SELECT id, token_hash, user_id, expires_at FROM sessions WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut self.inner)
            .await?,
        )
    }

    /// Start an operator's console session (expired ones are dropped on the way).
    pub async fn insert_operator_session(
        &mut self,
        id: &str,
        token_hash: &[u8],
        expires_at: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query("DELETE FROM operator_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut self.inner)
            .await?;
        sqlx::query(
            "INSERT INTO operator_sessions (id, token_hash, created_at, expires_at, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(token_hash.to_vec())
        .bind(now)
        .bind(expires_at)
        .bind(ip)
        .bind(user_agent)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// An operator's session: its secret's hash and when it ends.
    pub async fn operator_session(&mut self, id: &str) -> Result<Option<(Vec<u8>, i64)>> {
        Ok(
            sqlx::query_as("SELECT token_hash, expires_at FROM operator_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut self.inner)
                .await?,
        )
    }

    /// End an operator's session.
    pub async fn delete_operator_session(&mut self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM operator_sessions WHERE id = $1")
            .bind(id)
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }

    /// End one session.
    pub async fn delete_session(&mut self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }

    /// End every session of a person (a password reset), and sessions that expired.
    pub async fn delete_sessions_of(&mut self, user_id: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 OR expires_at <= $2")
                .bind(user_id)
                .bind(now_ms())
                .execute(&mut self.inner)
                .await?
                .rows_affected(),
        )
    }

    /// Store an invitation.
    pub async fn insert_invitation(&mut self, inv: &InvitationRecord) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO invitations ({INVITATION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )))
        .bind(&inv.id)
        .bind(inv.token_hash.clone())
        .bind(&inv.email)
        .bind(&inv.tenant_id)
        .bind(&inv.partner_id)
        .bind(&inv.role)
        .bind(&inv.invited_by)
        .bind(inv.created_at)
        .bind(inv.expires_at)
        .bind(inv.accepted_at)
        .bind(inv.revoked_at)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// An invitation by id.
    pub async fn invitation(&mut self, id: &str) -> Result<Option<InvitationRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// A tenant's or partner's open invitations (not accepted, withdrawn or expired), newest
    /// first.
    pub async fn open_invitations(&mut self, org: Org<'_>) -> Result<Vec<InvitationRecord>> {
        let (column, id) = org.column();
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations
             WHERE {column} = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2
             ORDER BY id DESC LIMIT 500"
        )))
        .bind(id)
        .bind(now_ms())
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Mark an invitation accepted or withdrawn (`accepted`), once; `false` when it already was
    /// either.
    pub async fn close_invitation(&mut self, id: &str, accepted: bool) -> Result<bool> {
        let column = if accepted {
            "accepted_at"
        } else {
            "revoked_at"
        };
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE invitations SET {column} = $2
             WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL"
        )))
        .bind(id)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Store a password reset.
    pub async fn insert_reset(
        &mut self,
        id: &str,
        token_hash: &[u8],
        user_id: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO password_resets (id, token_hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(token_hash.to_vec())
        .bind(user_id)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// A password reset by id.
    pub async fn reset(&mut self, id: &str) -> Result<Option<ResetRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, token_hash, user_id, expires_at, used_at FROM password_resets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Use a reset, once (every open reset of the person ends with it); `false` when it was
    /// used already.
    pub async fn use_reset(&mut self, id: &str, user_id: &str) -> Result<bool> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE password_resets SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut self.inner)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        Ok(n > 0)
    }
}
