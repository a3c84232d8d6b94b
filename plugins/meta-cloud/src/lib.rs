//! WhatsApp connector for Meta's Cloud API.
//!
//! - `verify`: the `hub.challenge` handshake (verify token compared in the host) and
//!   `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret, in the host);
//! - `parse`: every entry and change of a webhook ([`webhook`]);
//! - `send`, `check-credentials`, `fetch-media`, `list-templates`: Graph API calls through host
//!   egress, which adds the access token.

pub mod errors;
pub mod send;
pub mod webhook;

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit/since_v0.1.0", world: "connector" });
    // Exported only in the component: the export names (`…/channel@0.1.0#…`) are not valid
    // native symbols, and the host's benchmark links this crate natively for its baseline.
    #[cfg(target_arch = "wasm32")]
    use super::MetaCloud;
    #[cfg(target_arch = "wasm32")]
    export!(MetaCloud);
}

use bindings::exports::switchyard::plugin::channel::Guest;
use bindings::switchyard::plugin::egress::{self, Credential, EgressError};
use bindings::switchyard::plugin::secrets::{self, SecretName};
use bindings::switchyard::plugin::types::*;

/// The connector; exported as the component's `channel` interface.
pub struct MetaCloud;

fn reject(status: u16, reason: &str) -> Verdict {
    Verdict::Reject(Rejection {
        status,
        reason: reason.into(),
    })
}

/// Percent-decode a query value (`+` is a space).
fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(v.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(url: &str, name: &str) -> Option<String> {
    url.split_once('?')?
        .1
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| decode(k) == name)
        .map(|(_, v)| decode(v))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn graph_url(connection: &ConnectionInfo, path: &str) -> String {
    let version = connection
        .settings
        .iter()
        .find(|(k, _)| k == "graph_version")
        .map(|(_, v)| v.as_str())
        .unwrap_or(send::DEFAULT_GRAPH_VERSION);
    format!(
        "{}/{version}/{path}",
        connection.api_base_url.trim_end_matches('/')
    )
}

fn egress_error(e: EgressError) -> ProviderError {
    let (kind, message) = match e {
        EgressError::Timeout => (ErrorKind::Transient, "timed out".to_string()),
        EgressError::ConnectionFailed(m) => (ErrorKind::Transient, m),
        EgressError::CredentialMissing => (ErrorKind::AuthExpired, "no access token".into()),
        EgressError::HostNotAllowed(h) => (ErrorKind::Permanent, format!("host {h} not allowed")),
        EgressError::InvalidUrl(m) => (ErrorKind::InvalidRequest, m),
        EgressError::ResponseTooLarge => (ErrorKind::Permanent, "response too large".into()),
    };
    ProviderError {
        kind,
        code: "egress".into(),
        message,
    }
}

/// A Graph API call with the bearer token; non-2xx answers become provider errors.
fn graph(method: &str, url: String, body: Option<Vec<u8>>) -> Result<HttpResponse, ProviderError> {
    let mut headers = Vec::new();
    if body.is_some() {
        headers.push(("content-type".to_string(), "application/json".to_string()));
    }
    let req = HttpRequest {
        method: method.into(),
        url,
        headers,
        body: body.unwrap_or_default(),
    };
    let resp = egress::send(&req, Credential::BearerAccessToken).map_err(egress_error)?;
    if (200..300).contains(&resp.status) {
        Ok(resp)
    } else {
        Err(errors::from_response(resp.status, &resp.body))
    }
}

fn json(resp: &HttpResponse) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_slice(&resp.body).map_err(|e| ProviderError {
        kind: ErrorKind::Transient,
        code: "bad-json".into(),
        message: format!("Graph API answered with invalid JSON: {e}"),
    })
}

impl Guest for MetaCloud {
    fn verify(req: HttpRequest) -> Verdict {
        match req.method.as_str() {
            "GET" => {
                let mode = query(&req.url, "hub.mode");
                let token = query(&req.url, "hub.verify_token").unwrap_or_default();
                let challenge = query(&req.url, "hub.challenge").unwrap_or_default();
                if mode.as_deref() != Some("subscribe") {
                    return reject(403, "hub.mode is not subscribe");
                }
                match secrets::equals(SecretName::VerifyToken, &token) {
                    Ok(true) => Verdict::Respond(HttpResponse {
                        status: 200,
                        headers: vec![("content-type".into(), "text/plain".into())],
                        body: challenge.into_bytes(),
                    }),
                    Ok(false) => reject(403, "verify token mismatch"),
                    Err(_) => reject(403, "verify token not configured"),
                }
            }
            "POST" => {
                let Some((_, header)) =
                    req.headers.iter().find(|(k, _)| k == "x-hub-signature-256")
                else {
                    return reject(401, "X-Hub-Signature-256 missing");
                };
                let Some(expected) = header.strip_prefix("sha256=").and_then(unhex) else {
                    return reject(403, "X-Hub-Signature-256 malformed");
                };
                match secrets::hmac_sha256_equals(SecretName::AppSecret, &req.body, &expected) {
                    Ok(true) => Verdict::Accept,
                    Ok(false) => reject(403, "X-Hub-Signature-256 mismatch"),
                    Err(_) => reject(403, "app secret not configured"),
                }
            }
            _ => reject(405, "method not allowed"),
        }
    }

    fn parse(req: HttpRequest) -> Result<Vec<InboundEvent>, String> {
        webhook::parse(&req.body)
    }

    fn send(connection: ConnectionInfo, msg: OutboundMessage) -> Result<String, ProviderError> {
        let body = send::body(&msg).map_err(|message| ProviderError {
            kind: ErrorKind::InvalidRequest,
            code: "invalid-message".into(),
            message,
        })?;
        let url = graph_url(
            &connection,
            &format!("{}/messages", connection.channel_address),
        );
        let resp = graph("POST", url, Some(body.to_string().into_bytes()))?;
        send::message_id(&resp.body).ok_or_else(|| ProviderError {
            kind: ErrorKind::Transient,
            code: "no-message-id".into(),
            message: "send response carried no message id".into(),
        })
    }

    fn check_credentials(connection: ConnectionInfo) -> Result<CredentialHealth, ProviderError> {
        let url = graph_url(
            &connection,
            &format!(
                "{}?fields=display_phone_number,verified_name,quality_rating",
                connection.channel_address
            ),
        );
        let v = json(&graph("GET", url, None)?)?;
        let field = |k: &str| v[k].as_str().unwrap_or("?").to_string();
        Ok(CredentialHealth {
            expires_at: None,
            scopes: Vec::new(),
            detail: format!(
                "{} ({}), quality {}",
                field("display_phone_number"),
                field("verified_name"),
                field("quality_rating")
            ),
        })
    }

    fn fetch_media(
        connection: ConnectionInfo,
        media: MediaRef,
    ) -> Result<MediaContent, ProviderError> {
        // Media URLs live five minutes: every attempt asks for a fresh one.
        let (url, mime) = match (&media.provider_media_id, &media.url) {
            (Some(id), _) => {
                let v = json(&graph("GET", graph_url(&connection, id), None)?)?;
                let url = v["url"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ProviderError {
                        kind: ErrorKind::Permanent,
                        code: "no-media-url".into(),
                        message: "media lookup returned no url".into(),
                    })?;
                (url, v["mime_type"].as_str().map(str::to_string))
            }
            (None, Some(url)) => (url.clone(), None),
            (None, None) => {
                return Err(ProviderError {
                    kind: ErrorKind::InvalidRequest,
                    code: "no-media".into(),
                    message: "media has neither an id nor a url".into(),
                });
            }
        };
        let resp = graph("GET", url, None)?;
        let header_mime = resp
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.clone());
        Ok(MediaContent {
            mime_type: mime
                .or(header_mime)
                .or(media.mime_type)
                .unwrap_or_else(|| "application/octet-stream".into()),
            body: resp.body,
        })
    }

    fn list_templates(connection: ConnectionInfo) -> Result<Vec<TemplateInfo>, ProviderError> {
        let account = connection.account_id.clone().ok_or_else(|| ProviderError {
            kind: ErrorKind::InvalidRequest,
            code: "no-waba".into(),
            message: "the connection has no WhatsApp Business Account id".into(),
        })?;
        let mut url = graph_url(
            &connection,
            &format!(
                "{account}/message_templates?fields=id,name,language,category,status&limit=100"
            ),
        );
        let mut out = Vec::new();
        for _ in 0..20 {
            let v = json(&graph("GET", url, None)?)?;
            for t in v["data"].as_array().into_iter().flatten() {
                let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                out.push(TemplateInfo {
                    id: s("id"),
                    name: s("name"),
                    language: s("language"),
                    category: match t["category"].as_str() {
                        Some("MARKETING") => TemplateCategory::Marketing,
                        Some("AUTHENTICATION") => TemplateCategory::Authentication,
                        _ => TemplateCategory::Utility,
                    },
                    status: s("status"),
                });
            }
            match v["paging"]["next"].as_str() {
                Some(next) => url = next.to_string(),
                None => break,
            }
        }
        Ok(out)
    }
}
