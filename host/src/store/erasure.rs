//! A tenant's data for its export (pages of each kind, by id), and the erasure of a tenant's or
//! one contact's data (tenant scope). The consent ledger and the daily counters are never
//! touched here.

use super::inbox::{ContactRecord, ConversationRecord, MessageRecord};
use super::lifecycle::MediaRecord;
use super::{Result, StoreError, Tx, now_ms};

/// What an erasure removed, by kind (counts only).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// Contacts.
    pub contacts: u64,
    /// Conversations.
    pub conversations: u64,
    /// Messages.
    pub messages: u64,
    /// Media references (and their stored bytes).
    pub media: u64,
    /// Webhook receipts deleted, or emptied of their raw body.
    pub receipts: u64,
}

impl Tx {
    /// Contacts after `after` (by id), for the export.
    pub async fn export_contacts(&mut self, after: &str, limit: i64) -> Result<Vec<ContactRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT id, connection_id, phone, user_id, name, last_inbound_at, verified_email FROM contacts
             WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Conversations after `after` (by id), for the export.
    pub async fn export_conversations(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ConversationRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{} WHERE c.tenant_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3",
            super::inbox::CONVERSATION_SELECT
        )))
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Messages after `after` (by id), for the export.
    pub async fn export_messages(&mut self, after: &str, limit: i64) -> Result<Vec<MessageRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM messages WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            super::inbox::MESSAGE_COLUMNS
        )))
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Media references after `after` (by id), for the export.
    pub async fn export_media(&mut self, after: &str, limit: i64) -> Result<Vec<MediaRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM media WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            super::lifecycle::MEDIA_COLUMNS
        )))
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Erase one contact: their media (with the stored bytes), messages, conversations and the
    /// contact itself; the raw bodies of processed webhooks of their number go too (they may
    /// hold the contact's words). `NotFound` when the contact is not the tenant's.
    pub async fn erase_contact(&mut self, contact_id: &str) -> Result<(String, Erased)> {
        let tenant_id = self.tenant_id()?;
        let connection: Option<(String,)> =
            sqlx::query_as("SELECT connection_id FROM contacts WHERE tenant_id = $1 AND id = $2")
                .bind(&tenant_id)
                .bind(contact_id)
                .fetch_optional(&mut self.inner)
                .await?;
        let Some((connection_id,)) = connection else {
            return Err(StoreError::NotFound);
        };
        let mut erased = Erased::default();
        (erased.media, erased.messages) = self
            .delete_history(
                "SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2",
                contact_id,
            )
            .await?;
        erased.conversations =
            sqlx::query("DELETE FROM conversations WHERE tenant_id = $1 AND contact_id = $2")
                .bind(&tenant_id)
                .bind(contact_id)
                .execute(&mut self.inner)
                .await?
                .rows_affected();
        // Their codes and access requests name their email.
        for table in ["login_codes", "access_requests"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND contact_id = $2"
            )))
            .bind(&tenant_id)
            .bind(contact_id)
            .execute(&mut self.inner)
            .await?;
        }
        erased.contacts = sqlx::query("DELETE FROM contacts WHERE tenant_id = $1 AND id = $2")
            .bind(&tenant_id)
            .bind(contact_id)
            .execute(&mut self.inner)
            .await?
            .rows_affected();
        erased.receipts = sqlx::query(
            "UPDATE receipts SET body = NULL, headers = '[]'
             WHERE (connection_id = $1 OR (connection_id = '*' AND tenant_id IN ($2, '*')))
               AND outcome = 'accepted'
               AND (body IS NOT NULL OR headers <> '[]')
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.receipt_id = receipts.id
                               AND j.state IN ('queued', 'running'))",
        )
        .bind(&connection_id)
        .bind(&tenant_id)
        .execute(&mut self.inner)
        .await?
        .rows_affected();
        Ok((connection_id, erased))
    }

    /// Delete the messages of the conversations `conversations` selects (a query of
    /// conversation ids over `$1`, the tenant, and `$2`, `key`), with their media and the media's
    /// bytes: `(media, messages)` deleted.
    pub(super) async fn delete_history(
        &mut self,
        conversations: &'static str,
        key: &str,
    ) -> Result<(u64, u64)> {
        let tenant_id = self.tenant_id()?;
        let of = format!(
            "SELECT id FROM messages WHERE tenant_id = $1 AND conversation_id IN ({conversations})"
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM media_content WHERE tenant_id = $1
               AND media_id IN (SELECT id FROM media WHERE message_id IN ({of}))"
        )))
        .bind(&tenant_id)
        .bind(key)
        .execute(&mut self.inner)
        .await?;
        let media = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM media WHERE tenant_id = $1 AND message_id IN ({of})"
        )))
        .bind(&tenant_id)
        .bind(key)
        .execute(&mut self.inner)
        .await?
        .rows_affected();
        let messages = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM messages WHERE tenant_id = $1 AND conversation_id IN ({conversations})"
        )))
        .bind(&tenant_id)
        .bind(key)
        .execute(&mut self.inner)
        .await?
        .rows_affected();
        // What the desk said about them goes too (notifications name the contact).
        for table in ["notifications", "events", "insights"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND conversation_id IN ({conversations})"
            )))
            .bind(&tenant_id)
            .bind(key)
            .execute(&mut self.inner)
            .await?;
        }
        Ok((media, messages))
    }

    /// Erase what a tenant's account holds: media and their bytes, messages, conversations,
    /// contacts, templates, its policy, its webhook receipts (a receipt shared with another
    /// tenant loses its body), their jobs, its onboarding sessions, keys, memberships and
    /// invitations. A receipt routed to several tenants (`*`) loses its body once processed.
    /// Kept: the tenant's row (marked deleted), its connections (disconnected and shredded by
    /// the caller first), the consent ledger and the daily counters.
    pub async fn erase_tenant(&mut self) -> Result<Erased> {
        let tenant_id = self.tenant_id()?;
        let mut erased = Erased::default();
        let run = async |tx: &mut Tx, sql: &'static str| -> Result<u64> {
            Ok(sqlx::query(sql)
                .bind(&tenant_id)
                .execute(&mut tx.inner)
                .await?
                .rows_affected())
        };
        run(self, "DELETE FROM media_content WHERE tenant_id = $1").await?;
        erased.media = run(self, "DELETE FROM media WHERE tenant_id = $1").await?;
        erased.messages = run(self, "DELETE FROM messages WHERE tenant_id = $1").await?;
        erased.conversations = run(self, "DELETE FROM conversations WHERE tenant_id = $1").await?;
        erased.contacts = run(self, "DELETE FROM contacts WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM templates WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM notifications WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM insights WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM login_codes WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM access_requests WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM shared_access WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM number_access WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM events WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM policies WHERE tenant_id = $1").await?;
        run(
            self,
            "DELETE FROM jobs WHERE fairness_key = $1
                OR receipt_id IN (SELECT id FROM receipts WHERE tenant_id = $1)",
        )
        .await?;
        run(
            self,
            "DELETE FROM receipt_digests WHERE receipt_id IN
                (SELECT id FROM receipts WHERE tenant_id = $1)",
        )
        .await?;
        erased.receipts = run(self, "DELETE FROM receipts WHERE tenant_id = $1").await?;
        erased.receipts += run(
            self,
            "UPDATE receipts SET body = NULL, headers = '[]'
             WHERE tenant_id = '*' AND $1 <> ''
               AND (body IS NOT NULL OR headers <> '[]')
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.receipt_id = receipts.id
                               AND j.state IN ('queued', 'running'))",
        )
        .await?;
        run(
            self,
            "UPDATE connections SET name = NULL, policy_plugin = NULL, policy_config = NULL
             WHERE tenant_id = $1",
        )
        .await?;
        run(self, "DELETE FROM api_keys WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM memberships WHERE tenant_id = $1").await?;
        run(self, "DELETE FROM invitations WHERE tenant_id = $1").await?;
        run(
            self,
            "DELETE FROM meta_onboarding_secrets WHERE tenant_id = $1",
        )
        .await?;
        run(
            self,
            "DELETE FROM meta_onboarding_keys WHERE tenant_id = $1",
        )
        .await?;
        run(
            self,
            "DELETE FROM meta_onboarding_sessions WHERE tenant_id = $1",
        )
        .await?;
        sqlx::query("UPDATE tenants SET deleted_at = $2, plan_id = NULL WHERE tenant_id = $1")
            .bind(&tenant_id)
            .bind(now_ms())
            .execute(&mut self.inner)
            .await?;
        Ok(erased)
    }

    /// The scope's tenant's connections that are not disconnected yet (to end before an
    /// erasure).
    /// Each as `(connection, endpoint)`.
    pub async fn connections_to_end(&mut self) -> Result<Vec<(String, String)>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT id, endpoint_id FROM connections
             WHERE tenant_id = $1 AND status <> 'disconnected' ORDER BY id",
        )
        .bind(tenant_id)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// The onboarding sessions of the scope's tenant (to shred before an erasure).
    pub async fn onboarding_ids(&mut self) -> Result<Vec<String>> {
        let tenant_id = self.tenant_id()?;
        Ok(
            sqlx::query_scalar("SELECT id FROM meta_onboarding_sessions WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_all(&mut self.inner)
                .await?,
        )
    }
}
