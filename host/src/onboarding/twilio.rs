//! A Twilio account's WhatsApp senders, from Twilio's Senders API
//! (`GET https://messaging.twilio.com/v2/Channels/Senders?Channel=whatsapp`), so a tenant picks
//! its sender instead of typing it. Host code: the auth token the tenant typed goes to Twilio
//! only, as HTTP Basic auth through the egress client, and is neither stored nor given to a
//! plugin.

use serde::{Deserialize, Serialize};

use crate::egress::{Auth, EgressClient, Grants, Request};
use crate::vault::Secret;

/// Twilio's REST API origin in production; its Senders API lives on [`MESSAGING_API`].
pub const REST_API: &str = "https://api.twilio.com";
/// The origin of Twilio's Messaging v2 APIs (senders).
pub const MESSAGING_API: &str = "https://messaging.twilio.com";

/// Most pages of senders read (50 each).
const MAX_PAGES: usize = 20;

/// Where the Senders API is for a configured Twilio base URL: Twilio's own messaging origin in
/// production, else the configured base itself (a sandbox or a test's fake serves every path).
pub fn messaging_base(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    if base == REST_API {
        MESSAGING_API.to_string()
    } else {
        base.to_string()
    }
}

/// One WhatsApp sender of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Sender {
    /// `whatsapp:+E164`: what the connection's `from` setting takes.
    #[schema(example = "whatsapp:+15017122661")]
    pub sender_id: String,
    /// Twilio's state: `ONLINE`, `ONLINE:UPDATING`, `OFFLINE`, `CREATING`, `PENDING_VERIFICATION`,
    /// `VERIFYING`, `TWILIO_REVIEW`, `DRAFT`, `STUBBED`.
    pub status: String,
    /// Whether it can send now (`ONLINE` or `ONLINE:UPDATING`).
    pub online: bool,
    /// The WhatsApp display name, when Twilio gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Meta's quality rating (`HIGH`, `MEDIUM`, `LOW`, `UNKNOWN`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_rating: Option<String>,
    /// Meta's messaging limit tier, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_limit: Option<String>,
}

/// Why the senders could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendersError {
    /// Twilio refused the Account SID and auth token (401, code 20003).
    #[error("Twilio refused the Account SID and auth token (error {code}: {message})")]
    Refused {
        /// Twilio's error code.
        code: i64,
        /// Twilio's message.
        message: String,
    },
    /// Twilio failed or answered something else.
    #[error("Twilio's Senders API failed: {0}")]
    Failed(String),
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    senders: Vec<RawSender>,
    #[serde(default)]
    meta: Option<PageMeta>,
}

#[derive(Deserialize)]
struct PageMeta {
    #[serde(default)]
    next_page_url: Option<String>,
}

#[derive(Deserialize)]
struct RawSender {
    #[serde(default, alias = "senderId")]
    sender_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    properties: Option<Properties>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Properties {
    #[serde(default, alias = "qualityRating")]
    quality_rating: Option<String>,
    #[serde(default, alias = "messagingLimit")]
    messaging_limit: Option<String>,
}

#[derive(Deserialize)]
struct TwilioError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// Twilio's Senders API as onboarding calls it.
#[derive(Clone)]
pub struct Senders {
    egress: EgressClient,
    grants: Grants,
    base: String,
}

/// Text from a provider, trimmed to `max` characters.
fn capped(s: Option<String>, max: usize) -> Option<String> {
    s.map(|s| s.trim().chars().take(max).collect::<String>())
        .filter(|s| !s.is_empty())
}

impl Senders {
    /// The Senders API for the Twilio base URL `api_base`; requests go only to its origin.
    pub fn new(egress: EgressClient, api_base: &str) -> Senders {
        let base = messaging_base(api_base);
        let origin = url::Url::parse(&base)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        Senders {
            egress,
            // The configured origin: credentials attach, and a test's fake may be on loopback.
            grants: Grants {
                origins: vec![origin],
                ..Grants::default()
            },
            base,
        }
    }

    /// The account's WhatsApp senders, every page (up to 1,000), online ones first.
    pub async fn list(
        &self,
        account_sid: &str,
        auth_token: &Secret,
    ) -> Result<Vec<Sender>, SendersError> {
        let first = format!(
            "{}/v2/Channels/Senders?Channel=whatsapp&PageSize=50",
            self.base
        );
        let origin = url::Url::parse(&first)
            .map(|u| u.origin())
            .map_err(|e| SendersError::Failed(e.to_string()))?;
        let auth = [Auth::Basic {
            user: account_sid.to_string(),
            password: auth_token.clone(),
        }];
        let mut senders = Vec::new();
        let mut next = Some(first);
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let resp = self
                .egress
                .send(
                    &self.grants,
                    Request {
                        method: "GET".into(),
                        url,
                        headers: vec![("accept".into(), "application/json".into())],
                        body: Vec::new(),
                    },
                    &auth,
                    std::slice::from_ref(auth_token),
                )
                .await
                .map_err(|e| SendersError::Failed(e.to_string()))?;
            if !(200..300).contains(&resp.status) {
                let e: TwilioError = serde_json::from_slice(&resp.body).unwrap_or(TwilioError {
                    code: 0,
                    message: format!("HTTP {}", resp.status),
                });
                let message: String = e.message.chars().take(300).collect();
                return Err(if resp.status == 401 || e.code == 20003 {
                    SendersError::Refused {
                        code: e.code,
                        message,
                    }
                } else {
                    SendersError::Failed(format!(
                        "HTTP {} (error {}: {message})",
                        resp.status, e.code
                    ))
                });
            }
            let page: Page = serde_json::from_slice(&resp.body).map_err(|_| {
                SendersError::Failed("the answer is not the Senders API's JSON".into())
            })?;
            senders.extend(page.senders.into_iter().filter_map(|s| {
                let sender_id = capped(s.sender_id, 64)?;
                let status = capped(s.status, 40).unwrap_or_default();
                let (quality_rating, messaging_limit) = match s.properties {
                    Some(p) => (capped(p.quality_rating, 40), capped(p.messaging_limit, 60)),
                    None => (None, None),
                };
                Some(Sender {
                    online: matches!(status.as_str(), "ONLINE" | "ONLINE:UPDATING"),
                    sender_id,
                    status,
                    name: capped(s.profile.and_then(|p| p.name), 200),
                    quality_rating,
                    messaging_limit,
                })
            }));
            // Only a next page on the same origin is followed (the credentials go with it).
            next = page
                .meta
                .and_then(|m| m.next_page_url)
                .filter(|u| url::Url::parse(u).is_ok_and(|u| u.origin() == origin));
        }
        senders.sort_by_key(|s| !s.online);
        Ok(senders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_lists_on_the_messaging_origin_and_a_fake_on_itself() {
        assert_eq!(messaging_base("https://api.twilio.com"), MESSAGING_API);
        assert_eq!(messaging_base("https://api.twilio.com/"), MESSAGING_API);
        assert_eq!(
            messaging_base("http://127.0.0.1:4010/"),
            "http://127.0.0.1:4010"
        );
    }

    #[test]
    fn provider_text_is_capped_and_blank_is_none() {
        assert_eq!(capped(Some("  ".into()), 5), None);
        assert_eq!(
            capped(Some(" abcdefgh ".into()), 5).as_deref(),
            Some("abcde")
        );
        assert_eq!(capped(None, 5), None);
    }
}
