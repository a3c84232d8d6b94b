//! Plans (DECISIONS C5): what a tenant's plan allows — channels, numbers, a monthly allowance of
//! outbound messages, AI policies — and the checks where the host connects a number, chooses or
//! runs a policy, and sends. A tenant without a plan is unlimited. Counts only: nothing here
//! reads contact data.

use serde::{Deserialize, Serialize};

use crate::runtime::PolicyPlugin;
use crate::store::{PlanRecord, PricingVolume, StoreError, Tx, now_ms};

/// A plan's terms, as the API shows and takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// Connector names a tenant may connect (`null`: every channel).
    pub channels: Option<Vec<String>>,
    /// Numbers a tenant may have connected at once, 0 to 1,000,000 (`null`: unlimited).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub numbers: Option<i64>,
    /// Outbound messages per calendar month, UTC (`null`: unlimited).
    #[schema(minimum = 0)]
    pub monthly_messages: Option<i64>,
    /// Whether AI policies (policies that reach the network or report insights) may run.
    pub ai_policies: bool,
}

impl Terms {
    /// The terms of a stored plan.
    pub fn of(p: &PlanRecord) -> Terms {
        Terms {
            channels: p
                .channels
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            numbers: p.max_numbers,
            monthly_messages: p.monthly_messages,
            ai_policies: p.ai_policies != 0,
        }
    }

    /// Why these terms are not valid, if they are not.
    pub fn invalid(&self) -> Option<String> {
        if self.numbers.is_some_and(|n| !(0..=1_000_000).contains(&n)) {
            return Some("numbers must be 0 to 1000000 (or null: unlimited)".into());
        }
        if self
            .monthly_messages
            .is_some_and(|n| !(0..=1_000_000_000_000).contains(&n))
        {
            return Some("monthly_messages must be 0 to 10^12 (or null: unlimited)".into());
        }
        if let Some(c) = &self.channels
            && (c.len() > 100
                || c.iter().any(|n| {
                    n.is_empty()
                        || n.len() > 64
                        || !n
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                }))
        {
            return Some("channels must be up to 100 connector names (a-z, 0-9, -)".into());
        }
        None
    }

    /// Where these terms go beyond `ceiling` (a partner's plans stay within the ceiling the
    /// operator gave it).
    pub fn beyond(&self, ceiling: &Terms) -> Option<String> {
        let over = |mine: Option<i64>, max: Option<i64>| match (mine, max) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => a > b,
        };
        if over(self.numbers, ceiling.numbers) {
            return Some(format!(
                "numbers beyond the ceiling's {}",
                ceiling.numbers.unwrap_or_default()
            ));
        }
        if over(self.monthly_messages, ceiling.monthly_messages) {
            return Some(format!(
                "monthly_messages beyond the ceiling's {}",
                ceiling.monthly_messages.unwrap_or_default()
            ));
        }
        if let Some(allowed) = &ceiling.channels {
            let extra: Vec<&String> = match &self.channels {
                None => return Some(format!("every channel, beyond the ceiling's {allowed:?}")),
                Some(c) => c.iter().filter(|n| !allowed.contains(n)).collect(),
            };
            if !extra.is_empty() {
                return Some(format!(
                    "channels {extra:?} beyond the ceiling's {allowed:?}"
                ));
            }
        }
        if self.ai_policies && !ceiling.ai_policies {
            return Some("AI policies, which the ceiling does not allow".into());
        }
        None
    }
}

/// Why the plan refuses something: what was asked, and what the plan allows.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan does not allow it.
    #[error("{message}")]
    NotInPlan {
        /// What was refused, in words.
        message: String,
        /// The plan's name and terms.
        plan: serde_json::Value,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The refusal of `what` by the plan `p`, with its terms.
pub fn refusal(p: &PlanRecord, what: String) -> PlanError {
    PlanError::NotInPlan {
        message: format!("{what}: not in the plan \"{}\"", p.name),
        plan: serde_json::json!({"id": p.id, "name": p.name, "terms": Terms::of(p)}),
    }
}

/// Whether a policy is an AI policy (DECISIONS C5): one that reaches the network (egress) or
/// reports insights.
pub fn is_ai(policy: &PolicyPlugin) -> bool {
    !policy.manifest().egress.is_empty() || policy.has_insights()
}

/// May the scope's tenant connect `address` through `connector` (a reconnect of the same
/// address does not count as another number)?
pub async fn check_connect(tx: &mut Tx, connector: &str, address: &str) -> Result<(), PlanError> {
    let Some(plan) = tx.tenant_plan().await? else {
        return Ok(());
    };
    let terms = Terms::of(&plan);
    if terms
        .channels
        .as_ref()
        .is_some_and(|c| !c.iter().any(|n| n == connector))
    {
        return Err(refusal(&plan, format!("the channel {connector:?}")));
    }
    if let Some(max) = terms.numbers {
        let used = tx.numbers_in_use(Some((connector, address))).await?;
        if used >= max {
            return Err(refusal(
                &plan,
                format!("another number ({used} of {max} connected)"),
            ));
        }
    }
    Ok(())
}

/// May the scope's tenant use `connector` at all (before a flow that ends in a connect)?
pub async fn check_channel(tx: &mut Tx, connector: &str) -> Result<(), PlanError> {
    let Some(plan) = tx.tenant_plan().await? else {
        return Ok(());
    };
    if Terms::of(&plan)
        .channels
        .is_some_and(|c| !c.iter().any(|n| n == connector))
    {
        return Err(refusal(&plan, format!("the channel {connector:?}")));
    }
    Ok(())
}

/// May the scope's tenant run `policy`?
pub async fn check_policy(tx: &mut Tx, policy: &PolicyPlugin) -> Result<(), PlanError> {
    if !is_ai(policy) {
        return Ok(());
    }
    policy_allowed(tx.tenant_plan().await?.as_ref(), policy)
}

/// May a tenant on `plan` run `policy`?
pub fn policy_allowed(plan: Option<&PlanRecord>, policy: &PolicyPlugin) -> Result<(), PlanError> {
    match plan {
        Some(plan) if plan.ai_policies == 0 && is_ai(policy) => Err(refusal(
            plan,
            "AI policies (policies that reach the network or report insights)".into(),
        )),
        _ => Ok(()),
    }
}

/// Why a send must not go out because the month's allowance of the scope's tenant on `plan` is
/// used up, if it is. The month's count is of replies the providers accepted; sends already in
/// flight when it is read may take it past the allowance by as many.
pub async fn allowance_used_up(
    tx: &mut Tx,
    plan: Option<&PlanRecord>,
) -> Result<Option<String>, StoreError> {
    let Some(plan) = plan else {
        return Ok(None);
    };
    let Some(allowance) = plan.monthly_messages else {
        return Ok(None);
    };
    let used = tx
        .messages_sent_since(crate::calendar::month_start_day(now_ms()))
        .await?;
    Ok((used >= allowance).then(|| {
        format!(
            "the plan \"{}\" allows {allowance} messages a month and {used} were sent this month",
            plan.name
        )
    }))
}

/// What a tenant uses of its plan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// Numbers connected (not disconnected).
    pub numbers: i64,
    /// Replies the providers accepted this calendar month (UTC).
    pub messages_this_month: i64,
    /// This month's outbound messages by the provider's pricing category (from delivery
    /// statuses that carry it, e.g. Meta's), most first.
    pub pricing_this_month: Vec<PricingVolume>,
}

/// What the scope's tenant uses.
pub async fn usage(tx: &mut Tx) -> Result<Usage, StoreError> {
    let month = crate::calendar::month_start_day(now_ms());
    Ok(Usage {
        numbers: tx.numbers_in_use(None).await?,
        messages_this_month: tx.messages_sent_since(month).await?,
        pricing_this_month: fold_categories(tx.pricing_since(month).await?),
    })
}

/// Most pricing categories a usage lists by name; providers have a handful (Meta: seven).
const PRICING_CATEGORIES_SHOWN: usize = 12;

/// Categories after the first [`PRICING_CATEGORIES_SHOWN`] (most messages first) summed as
/// `other`: a connector naming a new category per message cannot grow a report without bound.
fn fold_categories(mut volumes: Vec<PricingVolume>) -> Vec<PricingVolume> {
    if volumes.len() <= PRICING_CATEGORIES_SHOWN {
        return volumes;
    }
    let rest = volumes.split_off(PRICING_CATEGORIES_SHOWN);
    let (messages, billable) = rest.iter().fold((0i64, 0i64), |(m, b), v| {
        (m.saturating_add(v.messages), b.saturating_add(v.billable))
    });
    match volumes.iter_mut().find(|v| v.category == "other") {
        Some(other) => {
            other.messages = other.messages.saturating_add(messages);
            other.billable = other.billable.saturating_add(billable);
        }
        None => volumes.push(PricingVolume {
            category: "other".into(),
            messages,
            billable,
        }),
    }
    volumes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pricing_categories_beyond_the_shown_ones_are_summed_as_other() {
        let v = |category: &str, messages: i64| PricingVolume {
            category: category.into(),
            messages,
            billable: messages / 2,
        };
        let few = vec![v("marketing", 4), v("utility", 2)];
        assert_eq!(fold_categories(few.clone()), few);
        let many: Vec<PricingVolume> = (0..20).map(|i| v(&format!("c{i:02}"), 40 - i)).collect();
        let folded = fold_categories(many);
        assert_eq!(folded.len(), PRICING_CATEGORIES_SHOWN + 1);
        let other = folded.last().expect("other");
        assert_eq!(other.category, "other");
        // c12..c19: 28 + 27 + … + 21 messages, each half billable (rounded down).
        assert_eq!(other.messages, (21..=28).sum::<i64>());
        assert_eq!(other.billable, (21..=28).map(|m| m / 2).sum::<i64>());
    }

    #[test]
    fn partner_plans_stay_within_the_ceiling() {
        let ceiling = Terms {
            channels: Some(vec!["meta-cloud".into(), "twilio".into()]),
            numbers: Some(10),
            monthly_messages: None,
            ai_policies: false,
        };
        let ok = Terms {
            channels: Some(vec!["twilio".into()]),
            numbers: Some(3),
            monthly_messages: Some(1000),
            ai_policies: false,
        };
        assert_eq!(ok.beyond(&ceiling), None);
        for bad in [
            Terms {
                numbers: None,
                ..ok.clone()
            },
            Terms {
                numbers: Some(11),
                ..ok.clone()
            },
            Terms {
                channels: None,
                ..ok.clone()
            },
            Terms {
                channels: Some(vec!["telegram".into()]),
                ..ok.clone()
            },
            Terms {
                ai_policies: true,
                ..ok.clone()
            },
        ] {
            assert!(bad.beyond(&ceiling).is_some(), "{bad:?}");
        }
        assert!(
            Terms {
                numbers: Some(-1),
                ..ok.clone()
            }
            .invalid()
            .is_some()
        );
        assert!(
            Terms {
                channels: Some(vec!["Meta!".into()]),
                ..ok
            }
            .invalid()
            .is_some()
        );
    }
}
