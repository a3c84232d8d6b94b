//! A test-only connector whose `parse` does what the request body says, to prove the sandbox.
//!
//! Body commands:
//! - `ok <text>`: one text message from `+15550001111` to `chaos`, with the text;
//! - `loop`: spin forever (the host's CPU deadline must stop it);
//! - `hog`: allocate without bound (the memory cap must stop it);
//! - `trap`: execute `unreachable`;
//! - `panic`: panic with a message;
//! - `egress <url>`: GET the URL through host egress with the bearer access token and report the
//!   outcome as an ignored event (`status <code> <body>` or `error <debug>`);
//! - `egress-anon <url>`: the same without a credential.
//!
//! `verify` accepts when `x-chaos-signature` is the hex HMAC-SHA256 of the body under the
//! `app-secret`, answers `hub.challenge` for a GET whose `hub.verify_token` matches, and rejects
//! anything else. `send` posts the text through egress to `{api-base-url}/send`.

wit_bindgen::generate!({ path: "../../../wit/since_v0.1.0", world: "connector" });

use exports::switchyard::plugin::channel::Guest;
use switchyard::plugin::egress::{self, Credential};
use switchyard::plugin::secrets::{self, SecretName};
use switchyard::plugin::types::*;

struct Chaos;

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn response(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn text_message(text: &str) -> InboundEvent {
    InboundEvent::Message(InboundMessage {
        provider_message_id: format!("chaos-{}", text.len()),
        channel_address: "chaos".into(),
        sender: Party {
            phone: Some("15550001111".into()),
            user_id: None,
            name: None,
        },
        timestamp: 0,
        kind: MessageKind::Text,
        text: Some(text.into()),
        media: Vec::new(),
        location: None,
        interactive: None,
        reply_to: None,
        referral: None,
        details: None,
    })
}

#[inline(never)]
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = core::hint::black_box(n.wrapping_add(1));
    }
}

fn hog() -> usize {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        chunk[0] = 1;
        chunks.push(core::hint::black_box(chunk));
        if chunks.len() == usize::MAX {
            return chunks.len();
        }
    }
}

fn egress_probe(url: &str, credential: Credential) -> InboundEvent {
    let req = HttpRequest {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let outcome = match egress::send(&req, credential) {
        Ok(resp) => format!(
            "status {} {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        ),
        Err(e) => format!("error {e:?}"),
    };
    InboundEvent::Ignored(outcome)
}

impl Guest for Chaos {
    fn verify(req: HttpRequest) -> Verdict {
        if req.method == "GET" {
            let token = query_param(&req.url, "hub.verify_token").unwrap_or_default();
            return match secrets::equals(SecretName::VerifyToken, token) {
                Ok(true) => Verdict::Respond(response(
                    200,
                    query_param(&req.url, "hub.challenge").unwrap_or_default(),
                )),
                _ => Verdict::Reject(Rejection {
                    status: 403,
                    reason: "verify token mismatch".into(),
                }),
            };
        }
        let Some(sig) = req.headers.iter().find(|(k, _)| k == "x-chaos-signature") else {
            return Verdict::Reject(Rejection {
                status: 401,
                reason: "signature missing".into(),
            });
        };
        let Some(expected) = unhex(&sig.1) else {
            return Verdict::Reject(Rejection {
                status: 403,
                reason: "signature malformed".into(),
            });
        };
        match secrets::hmac_sha256_equals(SecretName::AppSecret, &req.body, &expected) {
            Ok(true) => Verdict::Accept,
            Ok(false) => Verdict::Reject(Rejection {
                status: 403,
                reason: "signature mismatch".into(),
            }),
            Err(_) => Verdict::Reject(Rejection {
                status: 403,
                reason: "app secret not configured".into(),
            }),
        }
    }

    fn parse(req: HttpRequest) -> Result<Vec<InboundEvent>, String> {
        let body = String::from_utf8(req.body).map_err(|_| "body is not UTF-8".to_string())?;
        let (command, rest) = body.split_once(' ').unwrap_or((body.as_str(), ""));
        match command {
            "ok" => Ok(vec![text_message(rest)]),
            "loop" => spin(),
            "hog" => Ok(vec![InboundEvent::Ignored(format!("{}", hog()))]),
            "trap" => core::arch::wasm32::unreachable(),
            "panic" => panic!("chaos asked to panic"),
            "egress" => Ok(vec![egress_probe(rest, Credential::BearerAccessToken)]),
            "egress-anon" => Ok(vec![egress_probe(rest, Credential::None)]),
            other => Err(format!("unknown command {other:?}")),
        }
    }

    fn send(connection: ConnectionInfo, msg: OutboundMessage) -> Result<String, ProviderError> {
        let Content::Text(text) = msg.content else {
            return Err(ProviderError {
                kind: ErrorKind::InvalidRequest,
                code: "unsupported".into(),
                message: "chaos sends text only".into(),
            });
        };
        let req = HttpRequest {
            method: "POST".into(),
            url: format!("{}/send", connection.api_base_url),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: text.into_bytes(),
        };
        match egress::send(&req, Credential::BearerAccessToken) {
            Ok(resp) if resp.status < 300 => Ok(String::from_utf8_lossy(&resp.body).into_owned()),
            Ok(resp) => Err(ProviderError {
                kind: if resp.status >= 500 {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Permanent
                },
                code: resp.status.to_string(),
                message: String::from_utf8_lossy(&resp.body).into_owned(),
            }),
            Err(e) => Err(ProviderError {
                kind: ErrorKind::Transient,
                code: "egress".into(),
                message: format!("{e:?}"),
            }),
        }
    }

    fn check_credentials(_connection: ConnectionInfo) -> Result<CredentialHealth, ProviderError> {
        Ok(CredentialHealth {
            expires_at: None,
            scopes: Vec::new(),
            detail: "chaos".into(),
        })
    }

    fn fetch_media(
        _connection: ConnectionInfo,
        _media: MediaRef,
    ) -> Result<MediaContent, ProviderError> {
        Err(ProviderError {
            kind: ErrorKind::Permanent,
            code: "unsupported".into(),
            message: "chaos has no media".into(),
        })
    }

    fn list_templates(_connection: ConnectionInfo) -> Result<Vec<TemplateInfo>, ProviderError> {
        Ok(Vec::new())
    }
}

export!(Chaos);
