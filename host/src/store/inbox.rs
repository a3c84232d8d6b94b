//! A tenant's contacts, conversations, messages and counters (tenant scope only).

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::{Result, StoreError, Tx, now_ms};
use crate::tenancy::ids::new_id;

/// A contact: someone who wrote to one of the tenant's numbers.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ContactRecord {
    /// `cnt_…`.
    pub id: String,
    /// The connection they wrote to.
    pub connection_id: String,
    /// Phone number / wa_id, when the provider gave one.
    pub phone: Option<String>,
    /// Business-scoped user id, when the provider gave one.
    pub user_id: Option<String>,
    /// Profile name.
    pub name: Option<String>,
    /// Last inbound message (Unix ms).
    pub last_inbound_at: Option<i64>,
    /// The email they proved with `/login`, if any.
    pub verified_email: Option<String>,
}

/// A conversation in the inbox, with its contact.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ConversationRecord {
    /// `cnv_…`.
    pub id: String,
    /// The connection (business number).
    pub connection_id: String,
    /// The contact.
    pub contact_id: String,
    /// The contact's phone / wa_id.
    pub contact_phone: Option<String>,
    /// The contact's business-scoped user id.
    pub contact_user_id: Option<String>,
    /// The contact's profile name.
    pub contact_name: Option<String>,
    /// The email the contact proved on this number with `/login`, if any.
    pub contact_email: Option<String>,
    /// `open`, `closed` or `archived`.
    pub state: String,
    /// `policy` (its reply policy answers) or `people` (the policy is not run).
    pub owner: String,
    /// The person it is assigned to (`usr_…`), if anyone.
    pub assignee: Option<String>,
    /// Last inbound message: opens the 24-hour window (Unix ms).
    pub last_inbound_at: Option<i64>,
    /// Last message either way (Unix ms).
    pub last_message_at: i64,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Why a reply policy handed the conversation to a human (AI replies are then off).
    pub handoff_reason: Option<String>,
    /// Since when its owner owns it (Unix ms).
    pub owned_since: Option<i64>,
    /// When people last worked it: took it, replied, or wrote from another tool (Unix ms); the
    /// tenant's idle hand-back counts from here.
    pub people_active_at: Option<i64>,
}

/// What the inbox list keeps (each `None`: any).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationFilter<'a> {
    /// `open`, `closed` or `archived`.
    pub state: Option<&'a str>,
    /// `policy` or `people`.
    pub owner: Option<&'a str>,
    /// A person's id, or `-` for unassigned.
    pub assignee: Option<&'a str>,
    /// One number.
    pub connection: Option<&'a str>,
    /// Text in the contact's name, phone or user id.
    pub text: Option<&'a str>,
}

/// `text` without LIKE's wildcards and escape character: a search is for what it says.
fn without_wildcards(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '%' | '_' | '\\'))
        .collect()
}

/// One message.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct MessageRecord {
    /// `msg_…`.
    pub id: String,
    /// Its conversation.
    pub conversation_id: String,
    /// `in` or `out`.
    pub direction: String,
    /// The provider's id (wamid, MessageSid).
    pub provider_message_id: Option<String>,
    /// Message kind (`text`, `image`, …).
    pub kind: String,
    /// Text or caption.
    pub body: Option<String>,
    /// Delivery state.
    pub status: String,
    /// Error kind, for failed sends.
    pub error_kind: Option<String>,
    /// Provider error code.
    pub error_code: Option<String>,
    /// Provider error message.
    pub error_message: Option<String>,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// The provider id of the message it replies or reacts to.
    pub reply_to: Option<String>,
    /// Who sent it (outbound): `policy`, a person (`usr_…`), a key (`key_…`), or `echo` (the
    /// business wrote from another tool on the number).
    pub author: Option<String>,
    /// Why it failed, in words an agent can act on (failed messages only).
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Send attempts (replies).
    pub send_attempts: i64,
    /// 1 when a reply may have reached the contact twice (a send whose outcome was lost to a
    /// crash was repeated).
    pub possible_duplicate: i64,
    /// Its media and their download status (bytes at `GET …/media/{id}`); absent when none.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<super::lifecycle::MediaRecord>,
    /// The click-to-WhatsApp ad or post that started the chat (inbound messages that carried
    /// one); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<ReferralRecord>,
    /// What the provider charges for it (outbound messages whose status said); absent when
    /// unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<MessagePricing>,
}

/// Longest referral URL kept, in characters; a longer one is dropped (a cut URL is wrong).
const REFERRAL_URL_CHARS: usize = 2048;
/// Longest referral headline or body kept, in characters; a longer one is cut.
const REFERRAL_TEXT_CHARS: usize = 2000;
/// Longest referral id or type kept, in characters; a longer one is dropped (a cut id is wrong).
const REFERRAL_ID_CHARS: usize = 512;

/// The click-to-WhatsApp ad or post that started a chat, as kept with the message that carried
/// it: provider input, so each field is bounded; absent fields are omitted.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct ReferralRecord {
    /// The ad's or post's URL (up to 2,048 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// `ad` or `post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// The ad's or post's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The ad's headline (up to 2,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// The ad's text (up to 2,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The ad click's id (Meta's `ctwa_clid`), for conversion tracking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
}

impl ReferralRecord {
    /// This referral bounded for keeping: texts cut to their cap, over-long URLs and ids and
    /// empty fields dropped; `None` when nothing is left.
    pub fn bounded(self) -> Option<Self> {
        let whole = |v: Option<String>, cap: usize| {
            v.filter(|v| !v.is_empty() && v.chars().nth(cap).is_none())
        };
        let cut = |v: Option<String>| {
            v.filter(|v| !v.is_empty())
                .map(|v| match v.char_indices().nth(REFERRAL_TEXT_CHARS) {
                    Some((end, _)) => v[..end].to_string(),
                    None => v,
                })
        };
        let r = Self {
            source_url: whole(self.source_url, REFERRAL_URL_CHARS),
            source_type: whole(self.source_type, REFERRAL_ID_CHARS),
            source_id: whole(self.source_id, REFERRAL_ID_CHARS),
            headline: cut(self.headline),
            body: cut(self.body),
            click_id: whole(self.click_id, REFERRAL_ID_CHARS),
        };
        (r != Self::default()).then_some(r)
    }
}

/// A record kept as JSON text in one column: decoded from the column's string (NULL is `None`).
macro_rules! json_text_column {
    ($($t:ty),*) => {$(
        impl sqlx::Type<sqlx::Any> for $t {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $t {
            fn decode(
                value: sqlx::any::AnyValueRef<'r>,
            ) -> std::result::Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                Ok(serde_json::from_str(&text)?)
            }
        }
    )*};
}

json_text_column!(ReferralRecord, MessagePricing);

/// Selects [`ConversationRecord`]s: `c`, the conversation, joined with `k`, its contact.
pub(super) const CONVERSATION_SELECT: &str = "SELECT c.id, c.connection_id, c.contact_id, \
     k.phone AS contact_phone, k.user_id AS contact_user_id, k.name AS contact_name, \
     k.verified_email AS contact_email, c.state, \
     c.owner, c.assignee, c.last_inbound_at, c.last_message_at, c.created_at, c.handoff_reason, \
     c.owned_since, c.people_active_at \
     FROM conversations c JOIN contacts k ON k.id = c.contact_id AND k.tenant_id = c.tenant_id";

/// The columns of a [`MessageRecord`].
pub(super) const MESSAGE_COLUMNS: &str = "id, conversation_id, direction, provider_message_id, kind, \
     body, status, error_kind, error_code, error_message, created_at, updated_at, send_attempts, \
     possible_duplicate, reply_to, author, referral, pricing";

/// One earlier message of a conversation, as a policy's context shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    /// `in` or `out`.
    pub direction: String,
    /// Its stored kind (`text`, `image`, `template`, …).
    pub kind: String,
    /// Text or caption.
    pub body: Option<String>,
    /// The provider's id.
    pub provider_message_id: Option<String>,
    /// When it was stored (Unix ms).
    pub created_at: i64,
}

/// A message to record.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// Conversation.
    pub conversation_id: &'a str,
    /// Connection.
    pub connection_id: &'a str,
    /// `in` or `out`.
    pub direction: &'a str,
    /// Provider id (the dedup key for inbound).
    pub provider_message_id: Option<&'a str>,
    /// Kind.
    pub kind: &'a str,
    /// Text or caption.
    pub body: Option<&'a str>,
    /// Initial status.
    pub status: &'a str,
    /// For replies: the decision's idempotency key (unique per tenant).
    pub idempotency_key: Option<&'a str>,
    /// For replies: the provider id of the message answered.
    pub reply_to: Option<&'a str>,
    /// For replies: what the host decided to send (JSON of the reply, fallback included).
    pub content: Option<&'a str>,
    /// For inbound: when the contact sent it, by the provider's clock (Unix ms); it opens the
    /// 24-hour window (a later time than now is taken as now).
    pub sent_at: Option<i64>,
    /// For outbound: who sent it (`policy`, a person `usr_…`, a key `key_…`, `echo` for the
    /// business's other tools on the number).
    pub author: Option<&'a str>,
    /// For inbound: the ad or post that started the chat, already bounded.
    pub referral: Option<&'a ReferralRecord>,
}

/// A page of results and the cursor of the next one.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items.
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl Tx {
    /// Find or create the contact `(connection, phone or user id)`, updating the name. Two
    /// workers creating the same contact at once both end up with the one row.
    pub async fn upsert_contact(
        &mut self,
        connection_id: &str,
        phone: Option<&str>,
        user_id: Option<&str>,
        name: Option<&str>,
    ) -> Result<String> {
        for _ in 0..2 {
            if let Some(id) = self
                .try_upsert_contact(connection_id, phone, user_id, name)
                .await?
            {
                return Ok(id);
            }
        }
        Err(StoreError::Conflict("contacts".into()))
    }

    /// One round of [`Tx::upsert_contact`]: `None` when another transaction inserted the
    /// contact first (the next round finds it).
    async fn try_upsert_contact(
        &mut self,
        connection_id: &str,
        phone: Option<&str>,
        user_id: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<String>> {
        let tenant_id = self.tenant_id()?;
        // The contact known by either id, brought up to date, in one statement.
        let existing: Option<String> = sqlx::query_scalar(
            "UPDATE contacts SET name = COALESCE($5, name), phone = COALESCE(phone, $3),
                    user_id = COALESCE(user_id, $4)
              WHERE tenant_id = $1 AND id = (
                    SELECT id FROM contacts WHERE tenant_id = $1 AND connection_id = $2
                       AND ((phone IS NOT NULL AND phone = $3) OR (user_id IS NOT NULL AND user_id = $4))
                     ORDER BY id LIMIT 1)
              RETURNING id",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .bind(phone)
        .bind(user_id)
        .bind(name)
        .fetch_optional(&mut self.inner)
        .await?;
        if let Some(id) = existing {
            return Ok(Some(id));
        }
        let id = new_id("cnt");
        let done = sqlx::query(
            "INSERT INTO contacts (tenant_id, id, connection_id, phone, user_id, name, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&tenant_id)
        .bind(&id)
        .bind(connection_id)
        .bind(phone)
        .bind(user_id)
        .bind(name)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok((done.rows_affected() == 1).then_some(id))
    }

    /// A contact's identity moved on (new phone number or business-scoped id): the contact known
    /// by `previous` takes the ids of `current`, keeping its conversations. Whether one was found;
    /// `Conflict` when another contact already has the new id.
    pub async fn change_contact_identity(
        &mut self,
        connection_id: &str,
        previous: (Option<&str>, Option<&str>),
        current: (Option<&str>, Option<&str>),
    ) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE contacts SET phone = COALESCE($5, phone), user_id = COALESCE($6, user_id)
              WHERE tenant_id = $1 AND connection_id = $2
                AND ((phone IS NOT NULL AND phone = $3) OR (user_id IS NOT NULL AND user_id = $4))",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .bind(previous.0)
        .bind(previous.1)
        .bind(current.0)
        .bind(current.1)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(done.rows_affected() > 0)
    }

    /// Find or create the conversation of `(connection, contact)`, once however many workers
    /// ask at the same moment.
    pub async fn upsert_conversation(
        &mut self,
        connection_id: &str,
        contact_id: &str,
    ) -> Result<String> {
        let tenant_id = self.tenant_id()?;
        for round in 0..2 {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT id FROM conversations WHERE tenant_id = $1 AND connection_id = $2 AND contact_id = $3",
            )
            .bind(&tenant_id)
            .bind(connection_id)
            .bind(contact_id)
            .fetch_optional(&mut self.inner)
            .await?;
            if let Some(id) = existing {
                return Ok(id);
            }
            if round == 1 {
                break;
            }
            // Another worker may create it at the same moment: the loser finds the winner's row.
            let now = now_ms();
            sqlx::query(
                "INSERT INTO conversations (tenant_id, id, connection_id, contact_id, state,
                    owner, last_message_at, created_at)
                 VALUES ($1, $2, $3, $4, 'open', 'policy', $5, $5) ON CONFLICT DO NOTHING",
            )
            .bind(&tenant_id)
            .bind(new_id("cnv"))
            .bind(connection_id)
            .bind(contact_id)
            .bind(now)
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        }
        Err(StoreError::Conflict("conversations".into()))
    }

    /// Record a message; `Conflict` when `(connection, provider id)` is already there.
    pub async fn insert_message(&mut self, m: &NewMessage<'_>) -> Result<String> {
        let tenant_id = self.tenant_id()?;
        let id = new_id("msg");
        let now = now_ms();
        sqlx::query(
            "INSERT INTO messages (tenant_id, id, conversation_id, connection_id, direction,
                provider_message_id, kind, body, status, created_at, updated_at, idempotency_key, reply_to,
                content, author, referral)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&tenant_id)
        .bind(&id)
        .bind(m.conversation_id)
        .bind(m.connection_id)
        .bind(m.direction)
        .bind(m.provider_message_id)
        .bind(m.kind)
        .bind(m.body)
        .bind(m.status)
        .bind(now)
        .bind(m.idempotency_key)
        .bind(m.reply_to)
        .bind(m.content)
        .bind(m.author)
        .bind(m.referral.and_then(|r| serde_json::to_string(r).ok()))
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        let inbound = m.direction == "in";
        let sent_at = m.sent_at.filter(|t| *t > 0).map_or(now, |t| t.min(now));
        let watched: Option<(String, Option<String>)> = sqlx::query_as(
            "UPDATE conversations SET last_message_at = $3,
                    last_inbound_at = CASE WHEN $4 = 1 AND (last_inbound_at IS NULL OR last_inbound_at < $5)
                                           THEN $5 ELSE last_inbound_at END,
                    state = CASE WHEN $4 = 1 THEN 'open' ELSE state END
             WHERE tenant_id = $1 AND id = $2
             RETURNING owner, assignee",
        )
        .bind(&tenant_id)
        .bind(m.conversation_id)
        .bind(now)
        .bind(i64::from(inbound))
        .bind(sent_at)
        .fetch_optional(&mut self.inner)
        .await?;
        self.bump_counters(i64::from(inbound), i64::from(!inbound), 0)
            .await?;
        self.emit(
            "message",
            Some(m.conversation_id),
            None,
            serde_json::json!({"id": id, "conversation_id": m.conversation_id,
                "direction": m.direction, "kind": m.kind, "status": m.status, "author": m.author}),
        )
        .await?;
        // People watch this conversation: whoever it is assigned to, else every agent.
        if let Some((owner, assignee)) = watched.filter(|_| inbound)
            && (owner == "people" || assignee.is_some())
        {
            // Read only here: most messages notify nobody.
            let who: Option<String> = sqlx::query_scalar(
                "SELECT COALESCE(k.name, k.phone, k.user_id) FROM conversations c
                 JOIN contacts k ON k.tenant_id = c.tenant_id AND k.id = c.contact_id
                 WHERE c.tenant_id = $1 AND c.id = $2",
            )
            .bind(&tenant_id)
            .bind(m.conversation_id)
            .fetch_optional(&mut self.inner)
            .await?
            .flatten();
            let audience = match &assignee {
                Some(person) => super::Audience::Person(person),
                None => super::Audience::AtLeast(crate::tenancy::Role::Agent),
            };
            let text = format!("New message from {}", who.as_deref().unwrap_or("a contact"));
            self.notify(
                audience,
                "message",
                Some(m.conversation_id),
                Some(m.connection_id),
                &text,
            )
            .await?;
        }
        Ok(id)
    }

    /// Add to today's counters.
    pub async fn bump_counters(
        &mut self,
        inbound: i64,
        outbound: i64,
        failures: i64,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let day = (now_ms() / 86_400_000).to_string();
        sqlx::query(
            "INSERT INTO tenant_counters (tenant_id, day, messages_in, messages_out, failures)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, day) DO UPDATE SET
                messages_in = tenant_counters.messages_in + $3,
                messages_out = tenant_counters.messages_out + $4,
                failures = tenant_counters.failures + $5",
        )
        .bind(tenant_id)
        .bind(day)
        .bind(inbound)
        .bind(outbound)
        .bind(failures)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Count one reply the provider accepted, today (what a plan's allowance counts).
    pub async fn count_sent(&mut self) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let day = (now_ms() / 86_400_000).to_string();
        sqlx::query(
            "INSERT INTO tenant_counters (tenant_id, day, messages_in, messages_out, failures, messages_sent)
             VALUES ($1, $2, 0, 0, 0, 1)
             ON CONFLICT (tenant_id, day) DO UPDATE SET
                messages_sent = tenant_counters.messages_sent + 1",
        )
        .bind(tenant_id)
        .bind(day)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// The inbox: conversations by latest message, `limit` after the cursor `(last_message_at, id)`.
    pub async fn conversations(
        &mut self,
        after: Option<(i64, &str)>,
        limit: i64,
        filter: &ConversationFilter<'_>,
    ) -> Result<Vec<ConversationRecord>> {
        let tenant_id = self.tenant_id()?;
        let (at, id) = after.unwrap_or((i64::MAX, ""));
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{CONVERSATION_SELECT}
             WHERE c.tenant_id = $1
               AND (c.last_message_at < $2 OR (c.last_message_at = $2 AND ($3 = '' OR c.id < $3)))
               AND ($5 = '' OR c.state = $5)
               AND ($6 = '' OR c.owner = $6)
               AND ($7 = '' OR ($7 = '-' AND c.assignee IS NULL) OR c.assignee = $7)
               AND ($8 = '' OR c.connection_id = $8)
               AND ($9 = '' OR LOWER(COALESCE(k.name, '')) LIKE $9 OR COALESCE(k.phone, '') LIKE $9
                    OR COALESCE(k.user_id, '') LIKE $9)
             ORDER BY c.last_message_at DESC, c.id DESC LIMIT $4"
        )))
        .bind(tenant_id)
        .bind(at)
        .bind(id)
        .bind(limit)
        .bind(filter.state.unwrap_or_default())
        .bind(filter.owner.unwrap_or_default())
        .bind(filter.assignee.unwrap_or_default())
        .bind(filter.connection.unwrap_or_default())
        .bind(
            filter
                .text
                .map(|t| format!("%{}%", without_wildcards(&t.to_lowercase())))
                .unwrap_or_default(),
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// One conversation of the tenant.
    pub async fn conversation(&mut self, id: &str) -> Result<Option<ConversationRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{CONVERSATION_SELECT} WHERE c.tenant_id = $1 AND c.id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Change a conversation: its state, its owner (`owned_since` moves with it), its assignee
    /// (`Some(None)` clears it). `NotFound` when it is not the tenant's.
    pub async fn change_conversation(
        &mut self,
        id: &str,
        state: Option<&str>,
        owner: Option<&str>,
        assignee: Option<Option<&str>>,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let (set_assignee, assignee) = match assignee {
            None => (0i64, None),
            Some(a) => (1, a),
        };
        let done = sqlx::query(
            "UPDATE conversations SET
                state = COALESCE($3, state),
                owned_since = CASE WHEN $4 IS NOT NULL AND $4 <> owner THEN $7 ELSE owned_since END,
                people_active_at = CASE WHEN $4 = 'people' THEN $7 ELSE people_active_at END,
                handoff_reason = CASE WHEN $4 = 'policy' THEN NULL ELSE handoff_reason END,
                owner = COALESCE($4, owner),
                assignee = CASE WHEN $5 = 1 THEN $6 ELSE assignee END
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(state)
        .bind(owner)
        .bind(set_assignee)
        .bind(assignee)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.conversation_moved(id).await
    }

    /// Delete a conversation and its history (messages, media and their bytes); its contact
    /// stays. `NotFound` when it is not the tenant's.
    pub async fn delete_conversation(&mut self, id: &str) -> Result<u64> {
        let tenant_id = self.tenant_id()?;
        let (_, messages) = self
            .delete_history(
                "SELECT id FROM conversations WHERE tenant_id = $1 AND id = $2",
                id,
            )
            .await?;
        let n = sqlx::query("DELETE FROM conversations WHERE tenant_id = $1 AND id = $2")
            .bind(&tenant_id)
            .bind(id)
            .execute(&mut self.inner)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(messages)
    }

    /// Whether the tenant has this conversation.
    pub async fn conversation_exists(&mut self, id: &str) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM conversations WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_one(&mut self.inner)
        .await?;
        Ok(n > 0)
    }

    /// A conversation's messages, newest first, `limit` before `before`.
    pub async fn messages(
        &mut self,
        conversation_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MessageRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS}
             FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND ($3 = '' OR id < $3)
             ORDER BY id DESC LIMIT $4"
        )))
        .bind(tenant_id)
        .bind(conversation_id)
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// The `tenant_id` of every row of `table` that row-level security lets this transaction
    /// see (PostgreSQL only; the isolation tests' probe).
    pub async fn visible_tenant_ids(&mut self, table: &str) -> Result<Vec<String>> {
        // Unfiltered on purpose: only row-level security may narrow it, so it exists only there.
        if self.backend != super::Backend::Postgres {
            return Err(StoreError::WrongScope);
        }
        if !TENANT_TABLES.contains(&table) {
            return Err(StoreError::NotFound);
        }
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT tenant_id FROM {table}"
        )))
        .fetch_all(&mut self.inner)
        .await?)
    }
}

/// Every tenant-owned table (each has `tenant_id`; RLS on PostgreSQL).
pub const TENANT_TABLES: &[&str] = &[
    "tenants",
    "connections",
    "connection_keys",
    "connection_secrets",
    "contacts",
    "conversations",
    "messages",
    "media",
    "media_content",
    "templates",
    "meta_onboarding_sessions",
    "meta_onboarding_keys",
    "meta_onboarding_secrets",
    "policies",
    "tenant_counters",
    "pricing_counters",
    "consent_ledger",
    "consent_grants",
    "events",
    "event_counters",
    "notifications",
    "insights",
    "number_access",
    "shared_access",
    "login_codes",
    "access_requests",
];

impl Tx {
    /// Record a media reference of a message.
    pub async fn insert_media(
        &mut self,
        message_id: &str,
        provider_media_id: Option<&str>,
        mime_type: Option<&str>,
        caption: Option<&str>,
    ) -> Result<String> {
        let tenant_id = self.tenant_id()?;
        let id = new_id("med");
        sqlx::query(
            "INSERT INTO media (tenant_id, id, message_id, provider_media_id, mime_type, caption, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant_id)
        .bind(&id)
        .bind(message_id)
        .bind(provider_media_id)
        .bind(mime_type)
        .bind(caption)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(id)
    }
}

impl Tx {
    /// Move an outbound message's delivery state forward only: accepted → sent → delivered →
    /// read → played; `failed` is terminal; an older state arriving late changes nothing.
    /// Returns the message's id when it changed.
    pub async fn advance_status(
        &mut self,
        connection_id: &str,
        provider_message_id: &str,
        state: &str,
        error: Option<(&str, &str, &str)>,
    ) -> Result<Option<String>> {
        let tenant_id = self.tenant_id()?;
        const RANK: &str = "CASE {} WHEN 'queued' THEN 0 WHEN 'accepted' THEN 1 WHEN 'sent' THEN 2 \
             WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'played' THEN 5 WHEN 'failed' THEN 9 ELSE 0 END";
        let sql = format!(
            "UPDATE messages SET status = $4, error_kind = COALESCE($5, error_kind),
                    error_code = COALESCE($6, error_code), error_message = COALESCE($7, error_message),
                    updated_at = $8
             WHERE tenant_id = $1 AND connection_id = $2 AND provider_message_id = $3
               AND direction = 'out' AND status <> 'failed' AND {} < {}
             RETURNING id, conversation_id, author",
            RANK.replace("{}", "status"),
            RANK.replace("{}", "$4")
        );
        let (kind, code, message) = match error {
            Some((k, c, m)) => (Some(k), Some(c), Some(m)),
            None => (None, None, None),
        };
        let moved: Option<(String, String, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(connection_id)
                .bind(provider_message_id)
                .bind(state)
                .bind(kind)
                .bind(code)
                .bind(message)
                .bind(now_ms())
                .fetch_optional(&mut self.inner)
                .await?;
        let Some((id, conversation, author)) = moved else {
            return Ok(None);
        };
        self.message_moved(&id, &conversation, state, author.as_deref())
            .await?;
        Ok(Some(id))
    }

    /// Record what the provider charges for an outbound message, once (from the first status
    /// that carries it), and count it under today's pricing category. False when the message
    /// is unknown here or already priced.
    pub async fn record_pricing(
        &mut self,
        connection_id: &str,
        provider_message_id: &str,
        pricing: &MessagePricing,
    ) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let priced: Option<(String,)> = sqlx::query_as(
            "UPDATE messages SET pricing = $4
             WHERE tenant_id = $1 AND connection_id = $2 AND provider_message_id = $3
               AND direction = 'out' AND pricing IS NULL
             RETURNING id",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .bind(provider_message_id)
        .bind(serde_json::to_string(pricing).map_err(|e| sqlx::Error::Encode(Box::new(e)))?)
        .fetch_optional(&mut self.inner)
        .await?;
        if priced.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO pricing_counters (tenant_id, day, category, messages, billable)
             VALUES ($1, $2, $3, 1, $4)
             ON CONFLICT (tenant_id, day, category) DO UPDATE SET
                messages = pricing_counters.messages + 1,
                billable = pricing_counters.billable + $4",
        )
        .bind(&tenant_id)
        .bind((now_ms() / 86_400_000).to_string())
        .bind(&pricing.category)
        .bind(i64::from(pricing.billable == Some(true)))
        .execute(&mut self.inner)
        .await?;
        Ok(true)
    }

    /// Outbound messages by pricing category since a day (Unix days), most first.
    pub async fn pricing_since(&mut self, since_day: i64) -> Result<Vec<PricingVolume>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT category, CAST(SUM(messages) AS BIGINT) AS messages,
                    CAST(SUM(billable) AS BIGINT) AS billable
             FROM pricing_counters
             WHERE tenant_id = $1 AND CAST(day AS BIGINT) >= $2
             GROUP BY category
             ORDER BY messages DESC, category",
        )
        .bind(tenant_id)
        .bind(since_day)
        .fetch_all(&mut self.inner)
        .await?)
    }
}

/// What the provider charges for one outbound message, checked by the host; absent fields
/// are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessagePricing {
    /// The provider's category, lower-case (`marketing`, `utility`, `service`, …).
    pub category: String,
    /// Whether it is charged; absent when the provider does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    /// The provider's pricing model (`PMP`, `CBP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why it is or is not charged (`regular`, `free_customer_service`, `free_entry_point`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<String>,
}

/// Outbound messages of one pricing category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct PricingVolume {
    /// The provider's pricing category.
    pub category: String,
    /// Messages priced in it.
    pub messages: i64,
    /// How many of them the provider charges.
    pub billable: i64,
}

/// What deciding and sending need to know about a message and its conversation.
#[derive(Debug, Clone, FromRow)]
pub struct MessageContext {
    /// The message.
    pub id: String,
    /// Its conversation.
    pub conversation_id: String,
    /// Its connection.
    pub connection_id: String,
    /// `in` or `out`.
    pub direction: String,
    /// The provider's id.
    pub provider_message_id: Option<String>,
    /// Kind.
    pub kind: String,
    /// Text.
    pub body: Option<String>,
    /// Status.
    pub status: String,
    /// What it answers (replies).
    pub reply_to: Option<String>,
    /// The decision's idempotency key (replies).
    pub idempotency_key: Option<String>,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Conversation state.
    pub state: String,
    /// Who owns the conversation: `policy` or `people`.
    pub owner: String,
    /// The person the conversation is assigned to, if anyone.
    pub assignee: Option<String>,
    /// Last inbound message (Unix ms).
    pub last_inbound_at: Option<i64>,
    /// The contact's phone.
    pub contact_phone: Option<String>,
    /// The contact's business-scoped id.
    pub contact_user_id: Option<String>,
    /// The contact's name.
    pub contact_name: Option<String>,
    /// The contact.
    pub contact_id: String,
    /// When the contact stopped marketing messages (provider-reported), if they did.
    pub contact_marketing_stopped_at: Option<i64>,
    /// The email the contact proved with `/login`, if any.
    pub contact_email: Option<String>,
    /// The number's access policy (`open`, `email`, `sharing`).
    pub access_policy: String,
    /// What the host decided to send (replies).
    pub content: Option<String>,
    /// Send attempts so far (replies).
    pub send_attempts: i64,
    /// While an attempt is in flight: when it is given up for lost (Unix ms).
    pub sending_until: Option<i64>,
    /// 1 when a send may have reached the provider twice.
    pub possible_duplicate: i64,
    /// The ad or post that started the chat (inbound).
    pub referral: Option<ReferralRecord>,
}

impl Tx {
    /// A message with its conversation and contact.
    pub async fn message_context(&mut self, id: &str) -> Result<Option<MessageContext>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT m.id, m.conversation_id, m.connection_id, m.direction, m.provider_message_id,
                    m.kind, m.body, m.status, m.reply_to, m.idempotency_key, m.created_at,
                    m.content, m.send_attempts, m.sending_until, m.possible_duplicate, m.referral, c.state, c.owner, c.assignee, c.last_inbound_at,
                    k.phone AS contact_phone, k.user_id AS contact_user_id, k.name AS contact_name,
                    k.id AS contact_id, k.marketing_stopped_at AS contact_marketing_stopped_at,
                    k.verified_email AS contact_email,
                    COALESCE(na.policy, 'open') AS access_policy
             FROM messages m
             JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
             JOIN contacts k ON k.id = c.contact_id AND k.tenant_id = m.tenant_id
             LEFT JOIN number_access na ON na.connection_id = m.connection_id
                                       AND na.tenant_id = m.tenant_id
             WHERE m.tenant_id = $1 AND m.id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The last `n` messages of a conversation, oldest first: `(direction, body, created_at)`.
    pub async fn history(&mut self, conversation_id: &str, n: i64) -> Result<Vec<HistoryRow>> {
        let tenant_id = self.tenant_id()?;
        let mut rows: Vec<HistoryRow> = sqlx::query_as(
            "SELECT direction, kind, body, provider_message_id, created_at FROM messages
             WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(conversation_id)
        .bind(n)
        .fetch_all(&mut self.inner)
        .await?;
        rows.reverse();
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Mode, Store};
    use crate::tenancy::Scope;

    fn full() -> ReferralRecord {
        ReferralRecord {
            source_url: Some("https://fb.me/2ZulEu42P".into()),
            source_type: Some("ad".into()),
            source_id: Some("120226305854810726".into()),
            headline: Some("Chat with us".into()),
            body: Some("Spring sale".into()),
            click_id: Some("Aff-n8ZTODiE79d22KtAwQ".into()),
        }
    }

    /// Texts are cut at their cap (on a character, not a byte); URLs and ids past theirs are
    /// dropped, as are empty fields; nothing left is no referral.
    #[test]
    fn a_referral_is_bounded_before_it_is_kept() {
        assert_eq!(full().bounded(), Some(full()));
        let long = ReferralRecord {
            source_url: Some(format!("https://fb.me/{}", "a".repeat(REFERRAL_URL_CHARS))),
            source_type: Some(String::new()),
            source_id: Some("9".repeat(REFERRAL_ID_CHARS + 1)),
            headline: Some("é".repeat(REFERRAL_TEXT_CHARS + 5)),
            body: Some("b".repeat(REFERRAL_TEXT_CHARS)),
            click_id: Some("c".repeat(REFERRAL_ID_CHARS)),
        }
        .bounded()
        .expect("some fields stay");
        assert_eq!(long.source_url, None);
        assert_eq!(long.source_type, None);
        assert_eq!(long.source_id, None);
        assert_eq!(
            long.headline.as_deref(),
            Some("é".repeat(REFERRAL_TEXT_CHARS).as_str())
        );
        assert_eq!(long.body.map(|b| b.len()), Some(REFERRAL_TEXT_CHARS));
        assert_eq!(long.click_id.map(|c| c.len()), Some(REFERRAL_ID_CHARS));
        let empty = ReferralRecord {
            headline: Some(String::new()),
            ..ReferralRecord::default()
        };
        assert_eq!(empty.bounded(), None);
    }

    /// The column's JSON names each field as the API does and omits absent ones.
    #[test]
    fn a_referral_is_kept_as_json_without_absent_fields() {
        let only_click = ReferralRecord {
            click_id: Some("k".into()),
            ..ReferralRecord::default()
        };
        assert_eq!(
            serde_json::to_value(&only_click).expect("json"),
            serde_json::json!({"click_id": "k"})
        );
        assert_eq!(
            serde_json::to_value(full()).expect("json"),
            serde_json::json!({
                "source_url": "https://fb.me/2ZulEu42P", "source_type": "ad",
                "source_id": "120226305854810726", "headline": "Chat with us",
                "body": "Spring sale", "click_id": "Aff-n8ZTODiE79d22KtAwQ"
            })
        );
    }

    /// The column decodes back to the record; NULL is no referral.
    #[tokio::test]
    async fn a_referral_column_decodes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("open");
        let mut tx = store.begin(Scope::Host, Mode::Read).await.expect("begin");
        let json = serde_json::to_string(&full()).expect("json");
        let read = async |tx: &mut Tx, v: Option<&str>| {
            sqlx::query_scalar::<_, Option<ReferralRecord>>("SELECT $1")
                .bind(v.map(str::to_string))
                .fetch_one(&mut tx.inner)
                .await
                .expect("select")
        };
        assert_eq!(read(&mut tx, Some(&json)).await, Some(full()));
        assert_eq!(read(&mut tx, None).await, None);
        tx.commit().await.expect("commit");
    }
}
