//! A test-only connector built against `switchyard:plugin@0.2.0` (frozen), with its own
//! bindings and no SDK: it proves a connector of an older interface version keeps loading and
//! working through every export and import after a newer version became the newest.
//!
//! - `verify`: accepts when `x-legacy-signature` is the hex HMAC-SHA256 of the body under the
//!   endpoint's `app_secret`, rejects anything else.
//! - `parse`: `{"messages":[{"id","from","text"}],"statuses":[{"id","state"}]}` → events;
//!   anything else is malformed.
//! - `send`: posts the text to `{api-base-url}/messages` with the bearer `access_token` and
//!   answers the `id` the API returns.
//! - `check-credentials` reports a warning; `connect` and `disconnect` succeed; `fetch-media`
//!   lets the host download `{api-base-url}/media/{id}`; `list-templates` lists one.

wit_bindgen::generate!({ path: "../../../wit/since_v0.2.0", world: "connector" });

use exports::switchyard::plugin::channel::Guest;
use serde::Deserialize;
use switchyard::plugin::types::*;
use switchyard::plugin::{egress, log, secrets};

struct Legacy;

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    messages: Vec<Msg>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct Msg {
    id: String,
    from: String,
    text: String,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    state: String,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn permanent(code: &str, message: String) -> ProviderError {
    ProviderError {
        kind: ErrorKind::Permanent,
        code: code.into(),
        message,
        retry_after: None,
    }
}

fn message(m: Msg) -> InboundEvent {
    InboundEvent::Message(InboundMessage {
        provider_message_id: m.id,
        channel_address: "legacy".into(),
        sender: Party {
            phone: Some(m.from),
            user_id: None,
            name: None,
        },
        timestamp: 0,
        kind: MessageKind::Text,
        text: Some(m.text),
        media: Vec::new(),
        location: None,
        interactive: None,
        reply_to: None,
        referral: None,
        details: None,
        edits: None,
    })
}

fn status(s: Status) -> InboundEvent {
    let state = match s.state.as_str() {
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" => DeliveryState::Read,
        "failed" => DeliveryState::Failed,
        other => return InboundEvent::Ignored(format!("state {other}")),
    };
    InboundEvent::Status(StatusUpdate {
        provider_message_id: s.id,
        channel_address: "legacy".into(),
        recipient: None,
        state,
        timestamp: 0,
        error: None,
    })
}

impl Guest for Legacy {
    fn verify(req: HttpRequest) -> Verdict {
        let signature = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-legacy-signature"))
            .and_then(|(_, v)| unhex(v));
        let ok = signature.is_some_and(|sig| {
            secrets::hmac_sha256_equals("app_secret", &req.body, &sig).unwrap_or(false)
        });
        if ok {
            Verdict::Accept
        } else {
            Verdict::Reject(Rejection {
                status: 403,
                reason: "bad x-legacy-signature".into(),
            })
        }
    }

    fn parse(
        req: HttpRequest,
        _connection: Option<ConnectionInfo>,
    ) -> Result<Vec<InboundEvent>, String> {
        let body: Body = serde_json::from_slice(&req.body).map_err(|e| e.to_string())?;
        log::write(
            log::Level::Info,
            "parsed",
            &[("messages".into(), body.messages.len().to_string())],
        );
        Ok(body
            .messages
            .into_iter()
            .map(message)
            .chain(body.statuses.into_iter().map(status))
            .collect())
    }

    fn send(connection: ConnectionInfo, msg: OutboundMessage) -> Result<String, ProviderError> {
        let Content::Text(text) = msg.content else {
            return Err(permanent("unsupported", "text only".into()));
        };
        let body = serde_json::json!({ "to": msg.to.phone, "text": text }).to_string();
        let resp = egress::send(
            &HttpRequest {
                method: "POST".into(),
                url: format!("{}/messages", connection.api_base_url),
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.into_bytes(),
            },
            &[Credential::Bearer("access_token".into())],
        )
        .map_err(|e| permanent("egress", format!("{e:?}")))?;
        if resp.status != 200 {
            return Err(permanent(&resp.status.to_string(), "refused".into()));
        }
        let sent: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|e| permanent("body", e.to_string()))?;
        sent["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| permanent("body", "no id".into()))
    }

    fn check_credentials(_connection: ConnectionInfo) -> Result<CredentialHealth, ProviderError> {
        Ok(CredentialHealth {
            expires_at: Some(1_900_000_000),
            scopes: vec!["messages".into()],
            warnings: vec!["built against 0.2.0".into()],
            detail: "legacy".into(),
        })
    }

    fn connect(_connection: ConnectionInfo) -> Result<(), ProviderError> {
        Ok(())
    }

    fn disconnect(_connection: ConnectionInfo) -> Result<(), ProviderError> {
        Err(permanent("gone", "already disconnected".into()))
    }

    fn fetch_media(
        connection: ConnectionInfo,
        media: MediaRef,
    ) -> Result<MediaSource, ProviderError> {
        let id = media.provider_media_id.unwrap_or_default();
        Ok(MediaSource::Fetch(MediaFetch {
            request: HttpRequest {
                method: "GET".into(),
                url: format!("{}/media/{id}", connection.api_base_url),
                headers: Vec::new(),
                body: Vec::new(),
            },
            credentials: vec![Credential::Bearer("access_token".into())],
            mime_type: Some("image/png".into()),
        }))
    }

    fn list_templates(_connection: ConnectionInfo) -> Result<Vec<TemplateInfo>, ProviderError> {
        Ok(vec![TemplateInfo {
            id: "t1".into(),
            name: "welcome".into(),
            language: "en".into(),
            category: TemplateCategory::Utility,
            status: "APPROVED".into(),
        }])
    }
}

export!(Legacy);
