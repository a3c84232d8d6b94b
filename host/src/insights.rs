//! Insights at the desk (issue 17, DECISIONS C1): ask the number's reply policy, through its
//! optional `insights` export, how a conversation is going; check what it answers; keep it
//! per conversation until someone asks again.

use crate::catalog::Catalog;
use crate::plans::PlanError;
use crate::replies::{owner_from_name, turns, window};
use crate::runtime::CallError;
use crate::runtime::types::{ConversationContext, Insight, Party, Sentiment};
use crate::store::{InsightRecord, Mode, NewInsight, Store, StoreError, now_ms};
use crate::tenancy::auth::TenantAccess;

/// How many of a conversation's latest messages the policy reads.
pub const TRANSCRIPT: i64 = 200;
/// How many of those its context's `history` carries (as for `decide`).
const HISTORY: usize = 20;
/// The longest summary kept, in characters.
pub const SUMMARY_MAX: usize = 1_000;
/// The longest reason of a policy's failure shown to people, in characters.
const REASON_MAX: usize = 300;

/// Why no insights were computed.
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    /// No such conversation for this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The number's policy reports no insights (409 `no_insights`).
    #[error("{0}")]
    Unavailable(String),
    /// The plan does not allow AI policies.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The policy is busy with other calls (429, retry).
    #[error("the policy is busy; ask again in a few seconds")]
    Busy,
    /// The policy failed, declined, or answered what the host refuses (502 `insights_failed`).
    #[error("{0}")]
    Failed(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Ask the policy of `conversation`'s number how it is going, and keep what it says.
pub async fn recompute(
    store: &Store,
    plugins: &Catalog,
    access: &TenantAccess,
    conversation: &str,
) -> Result<InsightRecord, InsightsError> {
    let mut tx = access.begin(store, Mode::Read).await?;
    let subject = tx
        .insight_subject(conversation)
        .await?
        .ok_or(InsightsError::NotFound("conversation"))?;
    let connection = tx
        .connection(&subject.connection_id)
        .await?
        .ok_or(InsightsError::NotFound("connection"))?;
    let policy = tx.policy_for(&connection.id).await?;
    // A contact the number's access policy keeps from its policy is kept from it here too.
    let door = tx.access_policy(&connection.id).await?;
    let gate = crate::commands::gate(
        &mut tx,
        &connection.id,
        &door,
        subject.contact_email.clone(),
    )
    .await?;
    let plan = tx.tenant_plan().await?;
    let history = tx.history(conversation, TRANSCRIPT).await?;
    let newest = tx.newest_message(conversation).await?;
    tx.commit().await?;

    let Some(policy) = policy else {
        return Err(InsightsError::Unavailable(
            "the number has no reply policy; choose one that reports insights (the bundled `triage` does)".into(),
        ));
    };
    let plugin = plugins
        .policy(&policy.plugin, access.scope.id())
        .ok_or_else(|| {
            InsightsError::Unavailable(format!("the policy {} is not loaded", policy.plugin))
        })?;
    if !gate.admitted {
        return Err(InsightsError::Unavailable(format!(
            "the number's access policy ({door}) keeps this contact from its policy, so it \
             reads none of their messages"
        )));
    }
    if !plugin.has_insights() {
        return Err(InsightsError::Unavailable(format!(
            "the number's policy {} does not report insights; choose one that does (the bundled `triage` does)",
            policy.plugin
        )));
    }
    crate::plans::policy_allowed(plan.as_ref(), &plugin)?;
    let connector = plugins
        .connector(&connection.connector, Some(&connection.endpoint_id))
        .ok_or_else(|| {
            InsightsError::Unavailable(format!("connector {} is not loaded", connection.connector))
        })?;
    let Some(through) = newest else {
        return Err(InsightsError::Unavailable(
            "the conversation has no messages yet".into(),
        ));
    };
    let channel = connector.channel_rules();
    let (window_open, closes) = window(channel, subject.last_inbound_at, now_ms());
    let transcript = turns(history);
    let ctx = ConversationContext {
        tenant_id: access.scope.id().to_string(),
        conversation_id: conversation.to_string(),
        channel: connection.connector.clone(),
        rules: channel.to_wit(),
        contact: Party {
            phone: subject.contact_phone,
            user_id: subject.contact_user_id,
            name: subject.contact_name,
        },
        window_open,
        window_closes_at: closes.map(|t| (t / 1000) as u64),
        history: transcript[transcript.len().saturating_sub(HISTORY)..].to_vec(),
        config: policy.config.clone(),
        owner: owner_from_name(&subject.owner),
        assignee: subject.assignee,
        contact_email: subject.contact_email,
    };
    let answer = match plugin.analyze(&ctx, &transcript).await {
        None => {
            return Err(InsightsError::Unavailable(
                "the policy does not report insights".into(),
            ));
        }
        Some(Err(CallError::Busy(_))) => return Err(InsightsError::Busy),
        Some(Err(e)) => {
            return Err(InsightsError::Failed(format!(
                "the policy failed: {}",
                clip(&printable(&e.to_string()), REASON_MAX)
            )));
        }
        Some(Ok(Err(reason))) => {
            return Err(InsightsError::Failed(format!(
                "the policy could not tell: {}",
                clip(&printable(&reason), REASON_MAX)
            )));
        }
        Some(Ok(Ok(insight))) => insight,
    };
    let new = accept(
        answer,
        format!("{}@{}", plugin.manifest().name, plugin.manifest().version),
        through,
        transcript.len(),
    )?;
    let mut tx = access.begin(store, Mode::Write).await?;
    // Deleted while the policy read it: nothing to keep.
    if tx.insight_subject(conversation).await?.is_none() {
        return Err(InsightsError::NotFound("conversation"));
    }
    let saved = tx.save_insight(conversation, &new).await?;
    tx.commit().await?;
    Ok(saved)
}

/// What the host keeps of a policy's answer, or why it keeps nothing.
fn accept(
    insight: Insight,
    plugin: String,
    through_message: String,
    messages: usize,
) -> Result<NewInsight, InsightsError> {
    if !insight.score.is_finite() || !(-1.0..=1.0).contains(&insight.score) {
        return Err(InsightsError::Failed(format!(
            "the policy answered a score outside -1..1 ({})",
            insight.score
        )));
    }
    Ok(NewInsight {
        sentiment: match insight.sentiment {
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
            Sentiment::Positive => "positive",
            Sentiment::Mixed => "mixed",
        },
        score: f64::from(insight.score),
        summary: clip(printable(&insight.summary).trim(), SUMMARY_MAX),
        language: insight.language.filter(|l| language_tag(l)),
        plugin,
        through_message,
        messages: i64::try_from(messages).unwrap_or(i64::MAX),
    })
}

/// `text` without control characters other than line breaks, nor the invisible ones that
/// reorder or hide text (bidirectional overrides, zero-width characters).
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| (!c.is_control() || *c == '\n') && !invisible(*c))
        .collect()
}

/// Unicode format characters that change how text reads without being seen.
pub(crate) fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// At most `max` characters of `text`, ending in `…` when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if text[i..].chars().nth(1).is_some() => format!("{}…", &text[..i]),
        _ => text.to_string(),
    }
}

/// Whether `tag` looks like a BCP 47 language tag (`es`, `pt-BR`, `zh-Hant-TW`).
fn language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    tag.len() <= 35
        && (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insight(score: f32, summary: &str, language: Option<&str>) -> Insight {
        Insight {
            sentiment: Sentiment::Negative,
            score,
            summary: summary.into(),
            language: language.map(Into::into),
        }
    }

    #[test]
    fn scores_outside_the_range_are_refused() {
        for bad in [f32::NAN, f32::INFINITY, 1.5, -1.01] {
            let got = accept(insight(bad, "s", None), "p@1".into(), "msg_1".into(), 1);
            assert!(matches!(got, Err(InsightsError::Failed(_))), "{bad}");
        }
        let ok = accept(insight(-1.0, "s", None), "p@1".into(), "msg_1".into(), 3).expect("ok");
        assert_eq!((ok.sentiment, ok.score, ok.messages), ("negative", -1.0, 3));
    }

    #[test]
    fn summaries_are_cut_and_cleaned_and_languages_checked() {
        let long = "é".repeat(5_000);
        let ok = accept(
            insight(0.0, &long, Some("pt-BR")),
            "p".into(),
            "m".into(),
            1,
        )
        .expect("ok");
        assert_eq!(ok.summary.chars().count(), SUMMARY_MAX);
        assert!(ok.summary.ends_with('…'));
        assert_eq!(ok.language.as_deref(), Some("pt-BR"));
        let ok = accept(
            insight(0.0, " late\u{7}\u{1b}[31m order\n ", Some("<script>")),
            "p".into(),
            "m".into(),
            1,
        )
        .expect("ok");
        assert_eq!(ok.summary, "late[31m order");
        let ok = accept(
            insight(0.0, "pay \u{202E}321\u{202C} now\u{200B}", None),
            "p".into(),
            "m".into(),
            1,
        )
        .expect("ok");
        assert_eq!(ok.summary, "pay 321 now");
        assert_eq!(ok.language, None);
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdef", 6), "abcdef");
        assert_eq!(clip("abcdefg", 6), "abcde…");
        for (tag, ok) in [
            ("es", true),
            ("zh-Hant-TW", true),
            ("e", false),
            ("en_US", false),
        ] {
            assert_eq!(language_tag(tag), ok, "{tag}");
        }
    }
}
