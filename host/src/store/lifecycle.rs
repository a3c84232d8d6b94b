//! A connection's lifecycle beyond messages (tenant scope only): downloaded inbound media, the
//! templates its account may send, and the connection statuses the health check and the
//! `connecting` sweep set.

use sqlx::FromRow;

use super::tenant::CONNECTION_COLUMNS;
use super::{ConnectionRecord, Result, StoreError, Tx, now_ms};
use crate::tenancy::ids::new_id;

/// A media reference of a message and where its download stands.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct MediaRecord {
    /// `med_…`.
    pub id: String,
    /// The message it belongs to.
    pub message_id: String,
    /// The provider's media id.
    pub provider_media_id: Option<String>,
    /// MIME type (the provider's, then the download's).
    pub mime_type: Option<String>,
    /// Caption.
    pub caption: Option<String>,
    /// `pending` (not downloaded yet), `stored` or `failed`.
    pub status: String,
    /// Size of the stored bytes.
    pub size_bytes: Option<i64>,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: Option<String>,
    /// Why the download failed for good.
    pub error: Option<String>,
    /// The SHA-256 the provider announced (hex or base64), checked against the download.
    #[serde(skip)]
    pub provider_sha256: Option<String>,
    /// When the message brought it (Unix ms).
    pub created_at: i64,
    /// Where the provider serves it (Twilio `MediaUrlN`), for connectors without media ids.
    #[serde(skip)]
    pub url: Option<String>,
}

/// A template as last listed by the connection's connector.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct TemplateRecord {
    /// Template name.
    pub name: String,
    /// Language code, e.g. `en_US`.
    pub language: String,
    /// `marketing`, `utility` or `authentication`.
    pub category: String,
    /// Review status as the provider says it (`APPROVED`, `PAUSED`, `REJECTED`, …).
    pub status: String,
    /// The provider's id.
    pub provider_id: Option<String>,
    /// When it was last listed (Unix ms).
    pub updated_at: i64,
    /// A name for people when `name` is an id (Twilio's content `friendly_name`); absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

pub(super) const MEDIA_COLUMNS: &str = "id, message_id, provider_media_id, mime_type, caption, status, \
     size_bytes, sha256, error, provider_sha256, created_at, url";

impl Tx {
    /// Record a media reference of an inbound message (provider id or URL, the provider's
    /// SHA-256), `pending`.
    pub async fn insert_inbound_media(
        &mut self,
        message_id: &str,
        provider_media_id: Option<&str>,
        mime_type: Option<&str>,
        caption: Option<&str>,
        provider_sha256: Option<&str>,
        url: Option<&str>,
    ) -> Result<String> {
        let tenant_id = self.tenant_id()?;
        let id = new_id("med");
        sqlx::query(
            "INSERT INTO media (tenant_id, id, message_id, provider_media_id, mime_type, caption,
                created_at, provider_sha256, url)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(tenant_id)
        .bind(&id)
        .bind(message_id)
        .bind(provider_media_id)
        .bind(mime_type)
        .bind(caption)
        .bind(now_ms())
        .bind(provider_sha256)
        .bind(url)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(id)
    }

    /// One media row of the tenant.
    pub async fn media(&mut self, id: &str) -> Result<Option<MediaRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEDIA_COLUMNS} FROM media WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The connection of a media row's message.
    pub async fn media_connection(&mut self, media_id: &str) -> Result<Option<String>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_scalar(
            "SELECT g.connection_id FROM media m
             JOIN messages g ON g.id = m.message_id AND g.tenant_id = m.tenant_id
             WHERE m.tenant_id = $1 AND m.id = $2",
        )
        .bind(tenant_id)
        .bind(media_id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The media rows of a conversation's messages with ids in `[oldest, newest]`.
    pub async fn media_of_messages(
        &mut self,
        conversation_id: &str,
        oldest: &str,
        newest: &str,
    ) -> Result<Vec<MediaRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM media m
             JOIN messages g ON g.id = m.message_id AND g.tenant_id = m.tenant_id
             WHERE m.tenant_id = $1 AND g.conversation_id = $2 AND g.id >= $3 AND g.id <= $4
             ORDER BY m.id",
            MEDIA_COLUMNS
                .split(", ")
                .map(|c| format!("m.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(tenant_id)
        .bind(conversation_id)
        .bind(oldest)
        .bind(newest)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Keep the downloaded bytes of a media row and mark it `stored` (once: a second run of the
    /// job keeps the first bytes).
    pub async fn store_media_content(
        &mut self,
        id: &str,
        mime_type: &str,
        body: &[u8],
        sha256_hex: &str,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "INSERT INTO media_content (tenant_id, media_id, body) VALUES ($1, $2, $3)
             ON CONFLICT (media_id) DO NOTHING",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(body)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        sqlx::query(
            "UPDATE media SET status = 'stored', mime_type = $3, size_bytes = $4, sha256 = $5,
                    error = NULL, fetched_at = $6
             WHERE tenant_id = $1 AND id = $2 AND status <> 'stored'",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(mime_type)
        .bind(body.len() as i64)
        .bind(sha256_hex)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Mark a media row's download failed for good.
    pub async fn fail_media(&mut self, id: &str, error: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE media SET status = 'failed', error = $3
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(error)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// The stored bytes of a media row.
    pub async fn media_content(&mut self, id: &str) -> Result<Option<Vec<u8>>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_scalar(
            "SELECT body FROM media_content WHERE tenant_id = $1 AND media_id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Replace a connection's stored templates with a fresh listing.
    pub async fn replace_templates(
        &mut self,
        connection_id: &str,
        templates: &[TemplateRecord],
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query("DELETE FROM templates WHERE tenant_id = $1 AND connection_id = $2")
            .bind(&tenant_id)
            .bind(connection_id)
            .execute(&mut self.inner)
            .await?;
        for t in templates {
            // A listing may name one (name, language) twice: the last one wins.
            sqlx::query(
                "INSERT INTO templates (tenant_id, connection_id, name, language, category, status,
                    provider_id, updated_at, display_name)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (connection_id, name, language) DO UPDATE SET
                    category = $5, status = $6, provider_id = $7, updated_at = $8,
                    display_name = $9",
            )
            .bind(&tenant_id)
            .bind(connection_id)
            .bind(&t.name)
            .bind(&t.language)
            .bind(&t.category)
            .bind(&t.status)
            .bind(&t.provider_id)
            .bind(t.updated_at)
            .bind(&t.display_name)
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        }
        Ok(())
    }

    /// A connection's stored templates by name and language.
    pub async fn templates(&mut self, connection_id: &str) -> Result<Vec<TemplateRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT name, language, category, status, provider_id, updated_at, display_name
             FROM templates
             WHERE tenant_id = $1 AND connection_id = $2 ORDER BY name, language",
        )
        .bind(tenant_id)
        .bind(connection_id)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// The stored review status of one template: its own in that language. A template whose
    /// name is the provider's own id for it (a Twilio content SID) is one content whatever
    /// language a send gives, so when it is listed in another language only, that listing's
    /// status is its status: a misspelt language must not let an unapproved one out unchecked.
    /// Meta's languages are separate templates, judged each on its own. `None` when never
    /// listed.
    pub async fn template_status(
        &mut self,
        connection_id: &str,
        name: &str,
        language: &str,
    ) -> Result<Option<String>> {
        let tenant_id = self.tenant_id()?;
        let listed: Vec<(String, String)> = sqlx::query_as(
            "SELECT language, status FROM templates
             WHERE tenant_id = $1 AND connection_id = $2 AND name = $3
               AND (language = $4 OR provider_id = name)
             ORDER BY language",
        )
        .bind(tenant_id)
        .bind(connection_id)
        .bind(name)
        .bind(language)
        .fetch_all(&mut self.inner)
        .await?;
        if let Some((_, status)) = listed.iter().find(|(l, _)| l == language) {
            return Ok(Some(status.clone()));
        }
        Ok(listed
            .iter()
            .find(|(_, s)| s.eq_ignore_ascii_case("APPROVED"))
            .or(listed.first())
            .map(|(_, s)| s.clone()))
    }

    /// Record a template's status learnt from a send error (the category stays, or is
    /// `unknown` for a template never listed).
    pub async fn set_template_status(
        &mut self,
        connection_id: &str,
        name: &str,
        language: &str,
        status: &str,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "INSERT INTO templates (tenant_id, connection_id, name, language, category, status,
                updated_at)
             VALUES ($1, $2, $3, $4, 'unknown', $5, $6)
             ON CONFLICT (connection_id, name, language) DO UPDATE SET status = $5, updated_at = $6",
        )
        .bind(tenant_id)
        .bind(connection_id)
        .bind(name)
        .bind(language)
        .bind(status)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// The tenant's connections in one status.
    pub async fn connections_with_status(&mut self, status: &str) -> Result<Vec<ConnectionRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE tenant_id = $1 AND status = $2
             ORDER BY id"
        )))
        .bind(tenant_id)
        .bind(status)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Set a connection's status and reason only if it is still in `from` (a check that ran
    /// while someone reconnected or disconnected changes nothing).
    pub async fn move_connection_status(
        &mut self,
        id: &str,
        from: &str,
        to: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE connections SET status = $4, status_reason = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2 AND status = $3",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        let moved = done.rows_affected() > 0;
        // A number that cannot send needs its admins.
        if moved && matches!(to, "expired" | "error") {
            let text = format!(
                "A number is {to} and cannot send: {}",
                reason.unwrap_or("see the number's status")
            );
            self.notify(
                super::Audience::AtLeast(crate::tenancy::Role::Admin),
                "connection",
                None,
                Some(id),
                &text,
            )
            .await?;
        }
        Ok(moved)
    }

    /// Record when a connection's token expires (Unix ms), when the provider said.
    pub async fn set_token_expiry(&mut self, id: &str, expires_at: i64) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE connections SET token_expires_at = $3 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(expires_at)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Connections left in `connecting` since before `before` (Unix ms) go to `error` with
    /// `reason`; their ids.
    pub async fn sweep_connecting(&mut self, before: i64, reason: &str) -> Result<Vec<String>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_scalar(
            "UPDATE connections SET status = 'error', status_reason = $3, updated_at = $4
             WHERE tenant_id = $1 AND status = 'connecting' AND updated_at < $2
             RETURNING id",
        )
        .bind(tenant_id)
        .bind(before)
        .bind(reason)
        .bind(now_ms())
        .fetch_all(&mut self.inner)
        .await?)
    }
}
