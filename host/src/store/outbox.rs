//! Sending replies (tenant scope): the per-connection send rate, a record of each attempt made
//! before the provider is called, and the provider's answer.

use super::{Result, Tx, now_ms};

/// Whether a send attempt may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Recorded; go ahead. `possible_duplicate` when an earlier attempt's outcome never came back.
    Started {
        /// An earlier attempt may have reached the provider.
        possible_duplicate: bool,
    },
    /// Another attempt is in flight until this time (Unix ms).
    InFlight(i64),
    /// The reply is no longer waiting to be sent (sent, failed or gone).
    Settled,
}

/// A send slot on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Reserved: send at this time (Unix µs).
    At(i64),
    /// The connection is booked beyond the horizon; try again at this time (Unix µs).
    Busy(i64),
}

impl Tx {
    /// Reserve the connection's next send slot, at most `horizon_us` ahead of `now_us`; slots are
    /// `interval_us` apart, and every host on the database shares them (one row per connection).
    pub async fn reserve_send_slot(
        &mut self,
        connection_id: &str,
        now_us: i64,
        interval_us: i64,
        horizon_us: i64,
    ) -> Result<Slot> {
        let tenant_id = self.tenant_id()?;
        let slot: Option<i64> = sqlx::query_scalar(
            "UPDATE connections
                SET next_send_at = CASE WHEN next_send_at > $3 THEN next_send_at ELSE $3 END + $4
              WHERE tenant_id = $1 AND id = $2 AND next_send_at <= $3 + $5
              RETURNING next_send_at - $4",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .bind(now_us)
        .bind(interval_us)
        .bind(horizon_us)
        .fetch_optional(&mut self.inner)
        .await?;
        if let Some(at) = slot {
            return Ok(Slot::At(at));
        }
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT next_send_at FROM connections WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(Slot::Busy(next.map_or(now_us, |n| n - horizon_us)))
    }

    /// Record a send attempt before the provider is called; it counts as in flight until
    /// `until_ms`. An attempt left in flight by a crash makes this one a possible duplicate.
    pub async fn begin_send_attempt(&mut self, id: &str, until_ms: i64) -> Result<Attempt> {
        let tenant_id = self.tenant_id()?;
        let now = now_ms();
        let started: Option<i64> = sqlx::query_scalar(
            "UPDATE messages
                SET send_attempts = send_attempts + 1, sending_until = $3, updated_at = $4,
                    possible_duplicate = CASE WHEN sending_until IS NOT NULL THEN 1
                                              ELSE possible_duplicate END
              WHERE tenant_id = $1 AND id = $2 AND direction = 'out' AND status = 'queued'
                AND (sending_until IS NULL OR sending_until < $4)
              RETURNING possible_duplicate",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(until_ms)
        .bind(now)
        .fetch_optional(&mut self.inner)
        .await?;
        if let Some(dup) = started {
            return Ok(Attempt::Started {
                possible_duplicate: dup != 0,
            });
        }
        let row: Option<(String, Option<i64>)> = sqlx::query_as(
            "SELECT status, sending_until FROM messages WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(match row {
            Some((status, Some(until))) if status == "queued" => Attempt::InFlight(until),
            _ => Attempt::Settled,
        })
    }

    /// An attempt ended without sending: `known` when the provider certainly did not take it
    /// (a refusal), otherwise the next attempt is marked a possible duplicate.
    pub async fn end_send_attempt(&mut self, id: &str, known: bool) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE messages SET sending_until = CASE WHEN $3 = 1 THEN NULL ELSE 0 END,
                    updated_at = $4
              WHERE tenant_id = $1 AND id = $2 AND status = 'queued'",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(i64::from(known))
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// A status for `provider_message_id` matched nothing: true when it may belong to a send
    /// still in flight on the connection (the provider answered, our record is not committed
    /// yet), so the status should be applied again later rather than dropped.
    pub async fn status_may_be_early(
        &mut self,
        connection_id: &str,
        provider_message_id: &str,
    ) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let known: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM messages
              WHERE tenant_id = $1 AND connection_id = $2 AND provider_message_id = $3",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .bind(provider_message_id)
        .fetch_optional(&mut self.inner)
        .await?;
        if known.is_some() {
            return Ok(false);
        }
        // In flight: an attempt recorded and its lease not over. `sending_until = 0` marks an
        // attempt whose outcome is unknown (it ended), not one in flight.
        let in_flight: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM messages
              WHERE tenant_id = $1 AND connection_id = $2 AND direction = 'out'
                AND status = 'queued' AND sending_until > $3 LIMIT 1",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .bind(now_ms())
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(in_flight.is_some())
    }

    /// Record the outcome of a send: the provider's id (accepted) or the failure.
    pub async fn record_send(
        &mut self,
        id: &str,
        provider_message_id: Option<&str>,
        error: Option<(&str, &str, &str)>,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let (status, kind, code, message) = match error {
            None => ("accepted", None, None, None),
            Some((k, c, m)) => ("failed", Some(k), Some(c), Some(m)),
        };
        // A provider id another message of the connection already has (a provider reusing ids,
        // a misbehaving fake) must not make the send look unsent: it is recorded without it,
        // in the same statement (the unique index answers the lookup).
        let recorded: Option<(Option<String>, String, String, Option<String>)> = sqlx::query_as(
            "UPDATE messages SET provider_message_id = CASE
                        WHEN EXISTS (SELECT 1 FROM messages o
                                      WHERE o.connection_id = messages.connection_id
                                        AND o.provider_message_id = $3 AND o.id <> messages.id)
                        THEN provider_message_id
                        ELSE COALESCE($3, provider_message_id) END,
                    status = CASE WHEN status = 'queued' THEN $4 ELSE status END,
                    error_kind = $5, error_code = $6, error_message = $7, updated_at = $8,
                    sending_until = NULL
             WHERE tenant_id = $1 AND id = $2
             RETURNING provider_message_id, conversation_id, status, author",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(provider_message_id)
        .bind(status)
        .bind(kind)
        .bind(code)
        .bind(message)
        .bind(now_ms())
        .fetch_optional(&mut self.inner)
        .await?;
        if let (Some(pid), Some((kept, ..))) = (provider_message_id, &recorded)
            && kept.as_deref() != Some(pid)
        {
            tracing::error!(message = %id, provider_message_id = %pid, "the provider gave an id another message already has; recorded without it");
        }
        if error.is_some() {
            self.bump_counters(0, 0, 1).await?;
        } else if recorded.is_some() {
            self.count_sent().await?;
        }
        if let Some((_, conversation, status, author)) = recorded {
            self.message_moved(id, &conversation, &status, author.as_deref())
                .await?;
        }
        Ok(())
    }

    /// Put a reply the provider failed after accepting back in the queue for another send (its
    /// old provider id is dropped; later statuses for it change nothing).
    pub async fn requeue_reply(&mut self, id: &str) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE messages SET status = 'queued', provider_message_id = NULL, sending_until = NULL,
                    error_kind = NULL, error_code = NULL, error_message = NULL, updated_at = $3
              WHERE tenant_id = $1 AND id = $2 AND direction = 'out' AND status = 'failed'
                AND idempotency_key IS NOT NULL",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replace what a queued reply will send (its template fallback instead of free-form text).
    pub async fn replace_reply(
        &mut self,
        id: &str,
        kind: &str,
        body: Option<&str>,
        content: &str,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE messages SET kind = $3, body = $4, content = $5, updated_at = $6
              WHERE tenant_id = $1 AND id = $2 AND direction = 'out'",
        )
        .bind(&tenant_id)
        .bind(id)
        .bind(kind)
        .bind(body)
        .bind(content)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// The provider reported that the contact stopped marketing messages from this business.
    pub async fn stop_marketing(&mut self, contact_id: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE contacts SET marketing_stopped_at = COALESCE(marketing_stopped_at, $3)
              WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant_id)
        .bind(contact_id)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// A contact stopped (`true`) or resumed (`false`) marketing messages; the contact is found
    /// by phone or business-scoped id on the connection. Whether one was found.
    pub async fn set_marketing_preference(
        &mut self,
        connection_id: &str,
        phone: Option<&str>,
        user_id: Option<&str>,
        stopped: bool,
    ) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE contacts SET marketing_stopped_at =
                    CASE WHEN $5 = 1 THEN COALESCE(marketing_stopped_at, $6) ELSE NULL END
              WHERE tenant_id = $1 AND connection_id = $2
                AND ((phone IS NOT NULL AND phone = $3) OR (user_id IS NOT NULL AND user_id = $4))",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .bind(phone)
        .bind(user_id)
        .bind(i64::from(stopped))
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A policy handed the conversation to a human: automatic replies stop, the reason is kept.
    pub async fn hand_off(&mut self, conversation_id: &str, reason: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE conversations SET owner = 'people', owned_since = $4, people_active_at = $4, handoff_reason = $3
              WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant_id)
        .bind(conversation_id)
        .bind(reason.chars().take(500).collect::<String>())
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        self.conversation_moved(conversation_id).await?;
        let text = format!("The policy handed a conversation to people: {reason}");
        self.notify(
            super::Audience::AtLeast(crate::tenancy::Role::Agent),
            "hand-off",
            Some(conversation_id),
            None,
            &text,
        )
        .await
    }
}
