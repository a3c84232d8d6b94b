//! Access policies and the customers' commands: each number's policy (open, verified email,
//! sharing), the emails it is shared with, the email each contact proved with `/login`, the
//! codes mailed for it, and access requests for owners and admins to decide.

use sqlx::FromRow;

use super::{Result, StoreError, Tx, now_ms};
use crate::tenancy::ids::new_id;

/// Selects [`AccessRequestRecord`]s.
const REQUEST_SELECT: &str = "SELECT id, connection_id, contact_id, conversation_id, email, state, \
     created_at, decided_at, decided_by FROM access_requests";

/// The codes a contact may be mailed per hour.
pub const CODES_PER_HOUR: i64 = 5;
/// The least time between two codes for one contact (ms).
pub const RESEND_MS: i64 = 60 * 1000;
/// The tries one code allows.
pub const MAX_TRIES: i64 = 5;
/// How many of a tenant's contacts may have codes mailed to one address in an hour.
pub const CONTACTS_PER_ADDRESS: i64 = 3;
const HOUR_MS: i64 = 3_600_000;

/// Whether a code was issued, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// Kept: mail it.
    Sent,
    /// The contact had one less than [`RESEND_MS`] ago.
    TooSoon,
    /// The contact had [`CODES_PER_HOUR`] this hour.
    TooMany,
    /// Other contacts asked for codes to this address this hour.
    AddressBusy,
}

/// An email a number is shared with.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct SharedEmail {
    /// The email, lowercase.
    pub email: String,
    /// Who added it: a key or person, or the access request (`acr_…`) that was approved.
    pub added_by: String,
    /// When (Unix ms).
    pub added_at: i64,
}

/// The code a contact was mailed, as a try at it reads it.
#[derive(Debug, Clone, FromRow)]
pub struct LoginCode {
    /// The email it proves.
    pub email: String,
    /// SHA-256 (hex) of the contact id and the code.
    pub code_hash: String,
    /// When it stops working (Unix ms).
    pub expires_at: i64,
    /// Tries so far, this one included.
    pub attempts: i64,
}

/// A request for access to a number.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AccessRequestRecord {
    /// `acr_…`.
    pub id: String,
    /// The number.
    pub connection_id: String,
    /// Who asked.
    pub contact_id: String,
    /// Their conversation, when it still exists.
    pub conversation_id: Option<String>,
    /// The email they proved.
    pub email: String,
    /// `pending`, `approved`, `refused` or `withdrawn` (they proved another address since).
    pub state: String,
    /// When it was made (Unix ms).
    pub created_at: i64,
    /// When it was decided.
    pub decided_at: Option<i64>,
    /// Who decided it.
    pub decided_by: Option<String>,
}

impl Tx {
    /// A number's access policy (`open` when never set).
    pub async fn access_policy(&mut self, connection: &str) -> Result<String> {
        let tenant_id = self.tenant_id()?;
        let row: Option<String> = sqlx::query_scalar(
            "SELECT policy FROM number_access WHERE tenant_id = $1 AND connection_id = $2",
        )
        .bind(tenant_id)
        .bind(connection)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(row.unwrap_or_else(|| "open".into()))
    }

    /// Set a number's access policy and replace the emails it is shared with.
    pub async fn set_access(
        &mut self,
        connection: &str,
        policy: &str,
        shared: &[String],
        by: &str,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO number_access (tenant_id, connection_id, policy, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, connection_id) DO UPDATE SET policy = excluded.policy,
                 updated_at = excluded.updated_at",
        )
        .bind(&tenant_id)
        .bind(connection)
        .bind(policy)
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        let kept: Vec<String> = sqlx::query_scalar(
            "SELECT email FROM shared_access WHERE tenant_id = $1 AND connection_id = $2",
        )
        .bind(&tenant_id)
        .bind(connection)
        .fetch_all(&mut self.inner)
        .await?;
        for gone in kept.iter().filter(|e| !shared.contains(e)) {
            sqlx::query(
                "DELETE FROM shared_access WHERE tenant_id = $1 AND connection_id = $2 AND email = $3",
            )
            .bind(&tenant_id)
            .bind(connection)
            .bind(gone)
            .execute(&mut self.inner)
            .await?;
        }
        for email in shared.iter().filter(|e| !kept.contains(e)) {
            self.share(connection, email, by).await?;
        }
        Ok(())
    }

    /// Share a number with an email (nothing when it already is).
    pub async fn share(&mut self, connection: &str, email: &str, by: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "INSERT INTO shared_access (tenant_id, connection_id, email, added_by, added_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, connection_id, email) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(connection)
        .bind(email)
        .bind(by)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// The emails a number is shared with, alphabetically.
    pub async fn shared_with(&mut self, connection: &str) -> Result<Vec<SharedEmail>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT email, added_by, added_at FROM shared_access
             WHERE tenant_id = $1 AND connection_id = $2 ORDER BY email",
        )
        .bind(tenant_id)
        .bind(connection)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Whether a number is shared with `email`.
    pub async fn is_shared(&mut self, connection: &str, email: &str) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM shared_access WHERE tenant_id = $1 AND connection_id = $2 AND email = $3",
        )
        .bind(tenant_id)
        .bind(connection)
        .bind(email)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(found.is_some())
    }

    /// The email a contact proved, if any.
    pub async fn verified_email(&mut self, contact: &str) -> Result<Option<String>> {
        let tenant_id = self.tenant_id()?;
        let row: Option<Option<String>> = sqlx::query_scalar(
            "SELECT verified_email FROM contacts WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(contact)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(row.flatten())
    }

    /// Record the email a contact proved (`None`: unlink it).
    pub async fn set_verified_email(&mut self, contact: &str, email: Option<&str>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE contacts SET verified_email = $3, verified_at = $4
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(contact)
        .bind(email)
        .bind(email.map(|_| now_ms()))
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Keep a new code for a contact, replacing the last, unless the contact had one less than
    /// a minute ago or five this hour, or other contacts asked for this address this hour (one
    /// statement: concurrent asks cannot pass the limits together).
    pub async fn issue_login_code(
        &mut self,
        contact: &str,
        email: &str,
        code_hash: &str,
        expires_at: i64,
    ) -> Result<Issued> {
        let tenant_id = self.tenant_id()?;
        let now = now_ms();
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM login_codes
             WHERE tenant_id = $1 AND email = $2 AND sent_at > $3 AND contact_id <> $4",
        )
        .bind(&tenant_id)
        .bind(email)
        .bind(now - HOUR_MS)
        .bind(contact)
        .fetch_one(&mut self.inner)
        .await?;
        if others >= CONTACTS_PER_ADDRESS {
            return Ok(Issued::AddressBusy);
        }
        let kept: Option<String> = sqlx::query_scalar(
            "INSERT INTO login_codes (tenant_id, contact_id, email, code_hash, expires_at, attempts,
                                      sent_at, sent_count, count_since)
             VALUES ($1, $2, $3, $4, $5, 0, $6, 1, $6)
             ON CONFLICT (tenant_id, contact_id) DO UPDATE SET
                 email = excluded.email, code_hash = excluded.code_hash,
                 expires_at = excluded.expires_at, attempts = 0, sent_at = excluded.sent_at,
                 sent_count = CASE WHEN login_codes.count_since <= excluded.sent_at - $7
                                   THEN 1 ELSE login_codes.sent_count + 1 END,
                 count_since = CASE WHEN login_codes.count_since <= excluded.sent_at - $7
                                    THEN excluded.sent_at ELSE login_codes.count_since END
             WHERE login_codes.sent_at <= excluded.sent_at - $8
               AND (login_codes.sent_count < $9 OR login_codes.count_since <= excluded.sent_at - $7)
             RETURNING contact_id",
        )
        .bind(&tenant_id)
        .bind(contact)
        .bind(email)
        .bind(code_hash)
        .bind(expires_at)
        .bind(now)
        .bind(HOUR_MS)
        .bind(RESEND_MS)
        .bind(CODES_PER_HOUR)
        .fetch_optional(&mut self.inner)
        .await?;
        if kept.is_some() {
            return Ok(Issued::Sent);
        }
        let sent_at: Option<i64> = sqlx::query_scalar(
            "SELECT sent_at FROM login_codes WHERE tenant_id = $1 AND contact_id = $2",
        )
        .bind(&tenant_id)
        .bind(contact)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(match sent_at {
            Some(at) if now - at < RESEND_MS => Issued::TooSoon,
            _ => Issued::TooMany,
        })
    }

    /// Take one try at a contact's code: the code, its tries counted with this one, unless it
    /// has none left or there is none (one statement: concurrent guesses share its tries).
    pub async fn try_login_code(&mut self, contact: &str) -> Result<Option<LoginCode>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "UPDATE login_codes SET attempts = attempts + 1
             WHERE tenant_id = $1 AND contact_id = $2 AND code_hash <> '' AND attempts < $3
             RETURNING email, code_hash, expires_at, attempts",
        )
        .bind(tenant_id)
        .bind(contact)
        .bind(MAX_TRIES)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Spend a contact's code (used, expired or tried too often); the hour's count stays.
    pub async fn spend_login_code(&mut self, contact: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE login_codes SET code_hash = '', expires_at = 0
             WHERE tenant_id = $1 AND contact_id = $2",
        )
        .bind(tenant_id)
        .bind(contact)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// The request of a contact for a number to be shared with `email`: the pending one, the
    /// refused one (an address refused for the number stays refused, whoever asks), else a new
    /// one (and whether it is new). A pending request for another address is withdrawn: an
    /// admin only ever approves the address they were shown.
    pub async fn request_access(
        &mut self,
        connection: &str,
        contact: &str,
        conversation: &str,
        email: &str,
    ) -> Result<(AccessRequestRecord, bool)> {
        let tenant_id = self.tenant_id()?;
        let found: Option<AccessRequestRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{REQUEST_SELECT}
             WHERE tenant_id = $1 AND connection_id = $2 AND email = $3
               AND (state = 'refused' OR (state = 'pending' AND contact_id = $4))
             ORDER BY state DESC, id DESC LIMIT 1"
        )))
        .bind(&tenant_id)
        .bind(connection)
        .bind(email)
        .bind(contact)
        .fetch_optional(&mut self.inner)
        .await?;
        if let Some(r) = found {
            return Ok((r, false));
        }
        sqlx::query(
            "UPDATE access_requests SET state = 'withdrawn', decided_at = $4
             WHERE tenant_id = $1 AND connection_id = $2 AND contact_id = $3 AND state = 'pending'",
        )
        .bind(&tenant_id)
        .bind(connection)
        .bind(contact)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        let request = AccessRequestRecord {
            id: new_id("acr"),
            connection_id: connection.to_string(),
            contact_id: contact.to_string(),
            conversation_id: Some(conversation.to_string()),
            email: email.to_string(),
            state: "pending".into(),
            created_at: now_ms(),
            decided_at: None,
            decided_by: None,
        };
        sqlx::query(
            "INSERT INTO access_requests (tenant_id, id, connection_id, contact_id, conversation_id,
                                          email, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
        )
        .bind(&tenant_id)
        .bind(&request.id)
        .bind(connection)
        .bind(contact)
        .bind(conversation)
        .bind(email)
        .bind(request.created_at)
        .execute(&mut self.inner)
        .await?;
        Ok((request, true))
    }

    /// What the host last said in a conversation itself, and when (Unix ms), if it did.
    pub async fn last_host_reply(&mut self, conversation: &str) -> Result<Option<(String, i64)>> {
        let tenant_id = self.tenant_id()?;
        let row: Option<(Option<String>, i64)> = sqlx::query_as(
            "SELECT body, created_at FROM messages
             WHERE tenant_id = $1 AND conversation_id = $2 AND author = 'host'
             ORDER BY id DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(conversation)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(row.map(|(body, at)| (body.unwrap_or_default(), at)))
    }

    /// Replace a message's text and drop its parsed form (a `/login` code never stays).
    pub async fn redact_message(&mut self, message: &str, body: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE messages SET body = $3, content = NULL WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(message)
        .bind(body)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// The tenant's access requests, newest first, after the cursor `before` (an id).
    pub async fn access_requests(
        &mut self,
        state: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AccessRequestRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{REQUEST_SELECT}
             WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        )))
        .bind(tenant_id)
        .bind(state)
        .bind(before)
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Decide a pending request (`approved` shares the number with its email); `None` when
    /// there is no such request, `Err(Conflict)` when it was already decided.
    pub async fn decide_access(
        &mut self,
        id: &str,
        approve: bool,
        by: &str,
    ) -> Result<Option<AccessRequestRecord>> {
        let tenant_id = self.tenant_id()?;
        let found: Option<AccessRequestRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{REQUEST_SELECT} WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?;
        let Some(mut request) = found else {
            return Ok(None);
        };
        if request.state != "pending" {
            return Err(StoreError::Conflict(format!(
                "the request was already {}",
                request.state
            )));
        }
        let now = now_ms();
        request.state = if approve { "approved" } else { "refused" }.into();
        request.decided_at = Some(now);
        request.decided_by = Some(by.to_string());
        let changed = sqlx::query(
            "UPDATE access_requests SET state = $3, decided_at = $4, decided_by = $5
             WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(&request.state)
        .bind(now)
        .bind(by)
        .execute(&mut self.inner)
        .await?
        .rows_affected();
        // Decided meanwhile by someone else.
        if changed != 1 {
            return Err(StoreError::Conflict(
                "the request was already decided".into(),
            ));
        }
        if approve {
            self.share(&request.connection_id, &request.email, &request.id)
                .await?;
        }
        Ok(Some(request))
    }
}
