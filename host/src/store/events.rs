//! What happened in a tenant, for the desk's live updates, and each person's notifications.
//!
//! Events are numbered per tenant in commit order: the emitting transaction takes its number
//! from the tenant's counter row and holds that row until it commits, so a later commit never
//! carries a lower number and a stream resuming after `Last-Event-ID` misses nothing. Numbers
//! only go up, even when events are erased. A transaction that emitted tells
//! this process's streams when it commits, and on PostgreSQL every replica's (`NOTIFY`).
//! Each tenant keeps its last [`EVENTS_KEPT`] events.

use std::sync::Arc;

use sqlx::FromRow;

use super::{Backend, Result, Tx, now_ms};

use crate::tenancy::ids::new_id;

/// The PostgreSQL channel on which a commit that emitted names its tenant.
pub const EVENTS_CHANNEL: &str = "switchyard_events";
/// Events kept per tenant (older ones are trimmed as new ones arrive).
pub const EVENTS_KEPT: i64 = 10_000;

/// One event as a stream sends it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct EventRecord {
    /// Its number in the tenant (the SSE id).
    pub seq: i64,
    /// `message`, `status`, `conversation`, `insights`, `access` or `notification`.
    pub kind: String,
    /// Its conversation, if it has one.
    pub conversation_id: Option<String>,
    /// JSON: ids and states (never message text).
    pub data: String,
}

/// A person's notification.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct NotificationRecord {
    /// `ntf_…`.
    pub id: String,
    /// `hand-off`, `message`, `failure`, `connection` or `access`.
    pub kind: String,
    /// The conversation it is about.
    pub conversation_id: Option<String>,
    /// The number it is about.
    pub connection_id: Option<String>,
    /// What happened, in words.
    pub text: String,
    /// When (Unix ms).
    pub created_at: i64,
    /// When the person read it (Unix ms); `null`: unread.
    pub read_at: Option<i64>,
}

/// Who a notification goes to.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// One person.
    Person(&'a str),
    /// Every member with at least this role (`agent`, `admin`).
    AtLeast(crate::tenancy::Role),
}

impl Tx {
    /// Record an event of this transaction's tenant (`user`: only that person sees it).
    pub async fn emit(
        &mut self,
        kind: &str,
        conversation: Option<&str>,
        user: Option<&str>,
        data: serde_json::Value,
    ) -> Result<i64> {
        let tenant_id = self.tenant_id()?;
        // Numbered in commit order: the tenant's emitters take turns on its counter row.
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO event_counters (tenant_id, seq) VALUES ($1, 1)
             ON CONFLICT (tenant_id) DO UPDATE SET seq = event_counters.seq + 1
             RETURNING seq",
        )
        .bind(&tenant_id)
        .fetch_one(&mut self.inner)
        .await?;
        sqlx::query(
            "INSERT INTO events (tenant_id, seq, user_id, kind, conversation_id, data, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&tenant_id)
        .bind(seq)
        .bind(user)
        .bind(kind)
        .bind(conversation)
        .bind(data.to_string())
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        if seq % 1000 == 0 {
            sqlx::query("DELETE FROM events WHERE tenant_id = $1 AND seq <= $2")
                .bind(&tenant_id)
                .bind(seq - EVENTS_KEPT)
                .execute(&mut self.inner)
                .await?;
        }
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(EVENTS_CHANNEL)
                .bind(&tenant_id)
                .execute(&mut self.inner)
                .await?;
        }
        let tenant: Arc<str> = tenant_id.into();
        if !self.emitted.contains(&tenant) {
            self.emitted.push(tenant);
        }
        Ok(seq)
    }

    /// A message's delivery state moved: an event, and for a person's reply that failed, a
    /// notification to them.
    pub async fn message_moved(
        &mut self,
        id: &str,
        conversation: &str,
        status: &str,
        author: Option<&str>,
    ) -> Result<()> {
        self.emit(
            "status",
            Some(conversation),
            None,
            serde_json::json!({"id": id, "conversation_id": conversation, "status": status}),
        )
        .await?;
        if status == "failed"
            && let Some(person) = author.filter(|a| a.starts_with("usr_"))
        {
            self.notify(
                Audience::Person(person),
                "failure",
                Some(conversation),
                None,
                "A reply you sent was not delivered; the conversation shows why",
            )
            .await?;
        }
        Ok(())
    }

    /// A conversation's state, owner or assignee changed: an event with them.
    pub async fn conversation_moved(&mut self, id: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let row: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT state, owner, assignee FROM conversations WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?;
        if let Some((state, owner, assignee)) = row {
            self.emit(
                "conversation",
                Some(id),
                None,
                serde_json::json!({"id": id, "state": state, "owner": owner, "assignee": assignee}),
            )
            .await?;
        }
        Ok(())
    }

    /// Events after `after` that `user` may see (everyone's, and their own), oldest first.
    pub async fn events_after(
        &mut self,
        after: i64,
        user: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT seq, kind, conversation_id, data FROM events
             WHERE tenant_id = $1 AND seq > $2 AND (user_id IS NULL OR user_id = $3)
             ORDER BY seq LIMIT $4",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(user.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// The oldest and newest events the tenant keeps (`None`s: none yet).
    pub async fn event_bounds(&mut self) -> Result<(Option<i64>, Option<i64>)> {
        let tenant_id = self.tenant_id()?;
        Ok(
            sqlx::query_as("SELECT MIN(seq), MAX(seq) FROM events WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_one(&mut self.inner)
                .await?,
        )
    }

    /// Notify `audience` of what happened (`kind`, in words), each with an event of their own.
    pub async fn notify(
        &mut self,
        audience: Audience<'_>,
        kind: &str,
        conversation: Option<&str>,
        connection: Option<&str>,
        text: &str,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let people: Vec<String> = match audience {
            Audience::Person(id) => vec![id.to_string()],
            Audience::AtLeast(role) => {
                let roles: Vec<&str> = crate::tenancy::Role::ALL
                    .iter()
                    .filter(|r| r.at_least(role))
                    .map(|r| r.as_str())
                    .collect();
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT user_id FROM memberships WHERE tenant_id = $1 AND role IN ({})
                     ORDER BY user_id",
                    roles
                        .iter()
                        .map(|r| format!("'{r}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
                .bind(&tenant_id)
                .fetch_all(&mut self.inner)
                .await?
            }
        };
        let text: String = text.chars().take(500).collect();
        for user in people {
            // One unread "new message" per person and conversation, brought up to date: a
            // chatty customer does not bury everything else.
            if kind == "message" && conversation.is_some() {
                let refreshed = sqlx::query(
                    "UPDATE notifications SET text = $5, created_at = $6
                     WHERE tenant_id = $1 AND user_id = $2 AND conversation_id = $3 AND kind = $4
                       AND read_at IS NULL",
                )
                .bind(&tenant_id)
                .bind(&user)
                .bind(conversation)
                .bind(kind)
                .bind(&text)
                .bind(now_ms())
                .execute(&mut self.inner)
                .await?
                .rows_affected();
                if refreshed > 0 {
                    continue;
                }
            }
            let id = new_id("ntf");
            sqlx::query(
                "INSERT INTO notifications (tenant_id, id, user_id, kind, conversation_id,
                    connection_id, text, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&tenant_id)
            .bind(&id)
            .bind(&user)
            .bind(kind)
            .bind(conversation)
            .bind(connection)
            .bind(&text)
            .bind(now_ms())
            .execute(&mut self.inner)
            .await?;
            self.emit(
                "notification",
                conversation,
                Some(&user),
                serde_json::json!({"id": id, "kind": kind, "conversation_id": conversation}),
            )
            .await?;
        }
        Ok(())
    }

    /// A person's notifications, newest first, before the cursor `before` (an id).
    pub async fn notifications(
        &mut self,
        user: &str,
        unread_only: bool,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT id, kind, conversation_id, connection_id, text, created_at, read_at
             FROM notifications
             WHERE tenant_id = $1 AND user_id = $2 AND ($3 = 0 OR read_at IS NULL)
               AND ($4 = '' OR id < $4)
             ORDER BY id DESC LIMIT $5",
        )
        .bind(tenant_id)
        .bind(user)
        .bind(i64::from(unread_only))
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// How many of a person's notifications are unread.
    pub async fn unread_notifications(&mut self, user: &str) -> Result<i64> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications
             WHERE tenant_id = $1 AND user_id = $2 AND read_at IS NULL",
        )
        .bind(tenant_id)
        .bind(user)
        .fetch_one(&mut self.inner)
        .await?)
    }

    /// Mark a person's notification read (`None`: all of them); how many changed.
    pub async fn mark_read(&mut self, user: &str, id: Option<&str>) -> Result<u64> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query(
            "UPDATE notifications SET read_at = $4
             WHERE tenant_id = $1 AND user_id = $2 AND read_at IS NULL AND ($3 = '' OR id = $3)",
        )
        .bind(tenant_id)
        .bind(user)
        .bind(id.unwrap_or(""))
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?
        .rows_affected())
    }

    /// Whether the person has this notification.
    pub async fn has_notification(&mut self, user: &str, id: &str) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
        )
        .bind(tenant_id)
        .bind(user)
        .bind(id)
        .fetch_one(&mut self.inner)
        .await?;
        Ok(n > 0)
    }
}
