//! The desk's statements: what a person's reply is judged on, the media people send and the
//! links providers fetch it by, who works a conversation and when the tenant's policy takes an
//! idle one back.

use sqlx::FromRow;

use super::inbox::MESSAGE_COLUMNS;
use super::{MessageRecord, Result, StoreError, Tx, now_ms};
use crate::tenancy::ids::new_id;

/// What the host judges a person's reply in a conversation on.
#[derive(Debug, Clone, FromRow)]
pub struct DeskTarget {
    /// The number.
    pub connection_id: String,
    /// The contact's phone.
    pub contact_phone: Option<String>,
    /// The contact's business-scoped id.
    pub contact_user_id: Option<String>,
    /// The contact's last message (Unix ms): the window counts from it.
    pub last_inbound_at: Option<i64>,
    /// When the contact stopped marketing messages, if they did.
    pub marketing_stopped_at: Option<i64>,
}

/// A media row people sent, as a provider fetches it through its link.
#[derive(Debug, Clone, FromRow)]
pub struct LinkedMedia {
    /// SHA-256 (hex) of the link's secret.
    pub link_hash: Option<String>,
    /// When the link stops working (Unix ms).
    pub link_expires_at: Option<i64>,
    /// MIME type.
    pub mime_type: Option<String>,
    /// A document's file name.
    pub filename: Option<String>,
}

impl Tx {
    /// What a person's reply in `conversation` is judged on; `None` when it is not the tenant's.
    pub async fn desk_target(&mut self, conversation: &str) -> Result<Option<DeskTarget>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT c.connection_id, k.phone AS contact_phone, k.user_id AS contact_user_id,
                    c.last_inbound_at, k.marketing_stopped_at
             FROM conversations c JOIN contacts k ON k.id = c.contact_id AND k.tenant_id = c.tenant_id
             WHERE c.tenant_id = $1 AND c.id = $2",
        )
        .bind(tenant_id)
        .bind(conversation)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The provider id of a message of `conversation`: `None` when there is no such message,
    /// `Some(None)` when it has no provider id (never sent).
    pub async fn provider_id_in(
        &mut self,
        conversation: &str,
        message: &str,
    ) -> Result<Option<Option<String>>> {
        let tenant_id = self.tenant_id()?;
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT provider_message_id FROM messages
             WHERE tenant_id = $1 AND conversation_id = $2 AND id = $3",
        )
        .bind(tenant_id)
        .bind(conversation)
        .bind(message)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// One message of the tenant, as the inbox shows it (without its media).
    pub async fn message_record(&mut self, id: &str) -> Result<Option<MessageRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The message with this idempotency key, if the tenant has one.
    pub async fn message_by_key(&mut self, key: &str) -> Result<Option<MessageRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND idempotency_key = $2"
        )))
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Set what a queued reply sends (JSON of the reply).
    pub async fn set_reply_content(&mut self, message: &str, content: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query("UPDATE messages SET content = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(message)
            .bind(content)
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }

    /// People work `conversation` now: it is theirs (since now, if it was its policy's) and
    /// its idle time starts again.
    pub async fn people_worked(&mut self, conversation: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE conversations SET
                owned_since = CASE WHEN owner <> 'people' THEN $3 ELSE owned_since END,
                owner = 'people', people_active_at = $3
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(conversation)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.conversation_moved(conversation).await
    }

    /// Media people send with outbound message `message`, kept with its bytes (`stored`).
    pub async fn insert_outbound_media(
        &mut self,
        message: &str,
        mime_type: &str,
        caption: Option<&str>,
        filename: Option<&str>,
        body: &[u8],
    ) -> Result<String> {
        let tenant_id = self.tenant_id()?;
        let id = new_id("med");
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
        let now = now_ms();
        sqlx::query(
            "INSERT INTO media (tenant_id, id, message_id, mime_type, caption, filename, status,
                size_bytes, sha256, created_at, fetched_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'stored', $7, $8, $9, $9)",
        )
        .bind(&tenant_id)
        .bind(&id)
        .bind(message)
        .bind(mime_type)
        .bind(caption)
        .bind(filename)
        .bind(body.len() as i64)
        .bind(sha)
        .bind(now)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        sqlx::query("INSERT INTO media_content (tenant_id, media_id, body) VALUES ($1, $2, $3)")
            .bind(&tenant_id)
            .bind(&id)
            .bind(body)
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        Ok(id)
    }

    /// Give the media people sent with outbound `message` a fresh fetch link: the SHA-256 of its
    /// secret and when it expires. `NotFound` for any other media (a customer's file never gets
    /// a link).
    pub async fn set_media_link(
        &mut self,
        media: &str,
        message: &str,
        hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE media SET link_hash = $4, link_expires_at = $5
             WHERE tenant_id = $1 AND id = $2 AND message_id = $3 AND EXISTS (
                   SELECT 1 FROM messages g WHERE g.tenant_id = $1 AND g.id = $3
                      AND g.direction = 'out' AND g.author IS NOT NULL
                      AND g.author NOT IN ('policy', 'echo'))",
        )
        .bind(tenant_id)
        .bind(media)
        .bind(message)
        .bind(hash)
        .bind(expires_at)
        .execute(&mut self.inner)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A media row as its fetch link serves it.
    pub async fn linked_media(&mut self, media: &str) -> Result<Option<LinkedMedia>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT link_hash, link_expires_at, mime_type, filename FROM media
             WHERE tenant_id = $1 AND id = $2 AND status = 'stored' AND link_hash IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(media)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Set how long people's conversations may sit idle before the policy takes them back
    /// (`None`: never).
    pub async fn set_hand_back(&mut self, minutes: Option<i64>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query("UPDATE tenants SET hand_back_minutes = $2 WHERE tenant_id = $1")
            .bind(tenant_id)
            .bind(minutes)
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }

    /// Every active tenant with an idle hand-back, and its minutes (operator scope).
    pub async fn tenants_handing_back(&mut self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, hand_back_minutes FROM tenants
             WHERE hand_back_minutes IS NOT NULL AND status = 'active' AND deleted_at IS NULL",
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Give every conversation people left idle since before `idle_since` (Unix ms) back to
    /// its policy; the ids handed back.
    pub async fn hand_back_idle(&mut self, idle_since: i64) -> Result<Vec<String>> {
        let tenant_id = self.tenant_id()?;
        let back: Vec<String> = sqlx::query_scalar(
            "UPDATE conversations SET owner = 'policy', owned_since = $3, handoff_reason = NULL
             WHERE tenant_id = $1 AND owner = 'people'
               AND COALESCE(people_active_at, owned_since, created_at) < $2
             RETURNING id",
        )
        .bind(tenant_id)
        .bind(idle_since)
        .bind(now_ms())
        .fetch_all(&mut self.inner)
        .await?;
        for id in &back {
            self.conversation_moved(id).await?;
        }
        Ok(back)
    }
}
