//! Insights: what a policy's `insights` export made of a conversation, one row per
//! conversation, replaced each time someone asks again.

use sqlx::FromRow;

use super::{Result, Tx, now_ms};

/// A conversation's stored insights.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct InsightRecord {
    /// `negative`, `neutral`, `positive` or `mixed`.
    pub sentiment: String,
    /// From -1.0 (most negative) to 1.0 (most positive).
    pub score: f64,
    /// A short summary, as the policy wrote it.
    pub summary: String,
    /// The conversation's language (BCP 47), when the policy knew it.
    pub language: Option<String>,
    /// The policy that computed it (`name@version`).
    pub plugin: String,
    /// The newest message it read.
    pub through_message: String,
    /// How many messages it read.
    pub messages: i64,
    /// When it was computed (Unix ms).
    pub computed_at: i64,
    /// Whether messages arrived since (ask again for fresh insights).
    #[sqlx(default)]
    pub stale: bool,
}

/// What a policy's `analyze` needs of a conversation besides its messages.
#[derive(Debug, Clone, FromRow)]
pub struct InsightSubject {
    /// The number.
    pub connection_id: String,
    /// `policy` or `people`.
    pub owner: String,
    /// Who it is assigned to.
    pub assignee: Option<String>,
    /// The contact's last message (Unix ms).
    pub last_inbound_at: Option<i64>,
    /// The contact's phone.
    pub contact_phone: Option<String>,
    /// The contact's business-scoped id.
    pub contact_user_id: Option<String>,
    /// The contact's profile name.
    pub contact_name: Option<String>,
    /// The email the contact proved.
    pub contact_email: Option<String>,
}

/// New insights for a conversation, as the host accepted them from a policy.
#[derive(Debug, Clone)]
pub struct NewInsight {
    /// `negative`, `neutral`, `positive` or `mixed`.
    pub sentiment: &'static str,
    /// -1.0 ..= 1.0.
    pub score: f64,
    /// The summary (at most 1,000 characters).
    pub summary: String,
    /// BCP 47 tag.
    pub language: Option<String>,
    /// `name@version` of the policy.
    pub plugin: String,
    /// The newest message it read.
    pub through_message: String,
    /// How many messages it read.
    pub messages: i64,
}

impl Tx {
    /// The conversation as `analyze` sees it; `None` when it is not the tenant's.
    pub async fn insight_subject(&mut self, conversation: &str) -> Result<Option<InsightSubject>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT c.connection_id, c.owner, c.assignee, c.last_inbound_at,
                    k.phone AS contact_phone, k.user_id AS contact_user_id, k.name AS contact_name,
                    k.verified_email AS contact_email
             FROM conversations c JOIN contacts k ON k.id = c.contact_id AND k.tenant_id = c.tenant_id
             WHERE c.tenant_id = $1 AND c.id = $2",
        )
        .bind(tenant_id)
        .bind(conversation)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The newest message of a conversation (`msg_…`), if it has any.
    pub async fn newest_message(&mut self, conversation: &str) -> Result<Option<String>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_scalar(
            "SELECT id FROM messages WHERE tenant_id = $1 AND conversation_id = $2
             ORDER BY id DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(conversation)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Whether `conversation` has a message newer than `message` (insights read up to it).
    async fn newer_than(&mut self, conversation: &str, message: &str) -> Result<bool> {
        Ok(self
            .newest_message(conversation)
            .await?
            .is_some_and(|newest| newest.as_str() > message))
    }

    /// A conversation's stored insights, marked stale when newer messages arrived.
    pub async fn insight(&mut self, conversation: &str) -> Result<Option<InsightRecord>> {
        let tenant_id = self.tenant_id()?;
        let row: Option<InsightRecord> = sqlx::query_as(
            "SELECT sentiment, score, summary, language, plugin, through_message, messages,
                    computed_at
             FROM insights WHERE tenant_id = $1 AND conversation_id = $2",
        )
        .bind(&tenant_id)
        .bind(conversation)
        .fetch_optional(&mut self.inner)
        .await?;
        let Some(mut row) = row else {
            return Ok(None);
        };
        row.stale = self.newer_than(conversation, &row.through_message).await?;
        Ok(Some(row))
    }

    /// Store new insights for a conversation (replacing what it had) and tell the desk.
    pub async fn save_insight(
        &mut self,
        conversation: &str,
        new: &NewInsight,
    ) -> Result<InsightRecord> {
        let tenant_id = self.tenant_id()?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO insights (tenant_id, conversation_id, sentiment, score, summary, language,
                                   plugin, through_message, messages, computed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET
                sentiment = excluded.sentiment, score = excluded.score,
                summary = excluded.summary, language = excluded.language,
                plugin = excluded.plugin, through_message = excluded.through_message,
                messages = excluded.messages, computed_at = excluded.computed_at",
        )
        .bind(&tenant_id)
        .bind(conversation)
        .bind(new.sentiment)
        .bind(new.score)
        .bind(&new.summary)
        .bind(&new.language)
        .bind(&new.plugin)
        .bind(&new.through_message)
        .bind(new.messages)
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        self.emit(
            "insights",
            Some(conversation),
            None,
            serde_json::json!({"conversation": conversation, "sentiment": new.sentiment}),
        )
        .await?;
        let stale = self.newer_than(conversation, &new.through_message).await?;
        Ok(InsightRecord {
            sentiment: new.sentiment.to_string(),
            score: new.score,
            summary: new.summary.clone(),
            language: new.language.clone(),
            plugin: new.plugin.clone(),
            through_message: new.through_message.clone(),
            messages: new.messages,
            computed_at: now,
            stale,
        })
    }
}
