//! Twilio REST calls (send, account check, media download) over a [`Transport`], so they run
//! against the host's egress in the component and a fake in tests. The host adds HTTP Basic
//! auth with the connection's Account SID (named here) and auth token; the plugin never sees
//! the token.

use serde::Deserialize;

use crate::verify::AUTH_TOKEN;
use crate::{errors, form};
use switchyard_sdk::types::{
    BasicCredential, ConnectionInfo, Content, Credential, CredentialHealth, EgressError, ErrorKind,
    HttpRequest, HttpResponse, MediaContent, MediaRef, MediaSource, OutboundMessage, Party,
    ProviderError,
};

/// Twilio's shared WhatsApp sandbox sender.
pub const SANDBOX_SENDER: &str = "whatsapp:+14155238886";

/// WhatsApp's limit for one media file (images are limited to 5 MB by WhatsApp itself).
pub const MAX_MEDIA_BYTES: usize = 16 * 1024 * 1024;

/// The host's egress, as a trait so the calls can be tested natively.
pub trait Transport {
    /// Send one request with the given credentials added by the host.
    fn send(
        &self,
        req: &HttpRequest,
        credentials: &[Credential],
    ) -> Result<HttpResponse, EgressError>;
}

/// `Authorization: Basic base64(<account sid>:<auth_token>)`.
pub fn basic(sid: &str) -> Vec<Credential> {
    vec![Credential::Basic(BasicCredential {
        user: sid.to_string(),
        secret: AUTH_TOKEN.into(),
    })]
}

/// An error this connector found itself, before or after Twilio answered.
pub(crate) fn local_error(
    kind: ErrorKind,
    code: &str,
    message: impl Into<String>,
) -> ProviderError {
    ProviderError {
        kind,
        code: code.into(),
        message: message.into(),
        retry_after: None,
    }
}

/// The connection's Account SID, checked to be `AC` + 32 hex digits.
pub fn account_sid(connection: &ConnectionInfo) -> Result<&str, ProviderError> {
    let sid = connection
        .account_id
        .as_deref()
        .or_else(|| {
            connection
                .settings
                .iter()
                .find(|(k, _)| k == "account_sid")
                .map(|(_, v)| v.as_str())
        })
        .map(str::trim)
        .unwrap_or_default();
    let valid = sid.len() == 34
        && sid.starts_with("AC")
        && sid.bytes().skip(2).all(|b| b.is_ascii_hexdigit());
    if valid {
        Ok(sid)
    } else {
        Err(local_error(
            ErrorKind::InvalidRequest,
            "invalid-account-sid",
            "the Account SID must be AC followed by 32 hexadecimal digits",
        ))
    }
}

/// The connection's sender, checked to be `whatsapp:+E164`.
pub fn sender(connection: &ConnectionInfo) -> Result<&str, ProviderError> {
    let from = connection.channel_address.trim();
    let digits = from.strip_prefix("whatsapp:+").unwrap_or_default();
    if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(from)
    } else {
        Err(local_error(
            ErrorKind::InvalidRequest,
            "invalid-sender",
            format!("the sender must be a WhatsApp number as whatsapp:+E164, not {from:?}"),
        ))
    }
}

/// `{api-base-url}/2010-04-01/Accounts/{sid}{suffix}`.
fn account_url(connection: &ConnectionInfo, sid: &str, suffix: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{}{suffix}",
        connection.api_base_url.trim_end_matches('/'),
        form::encode(sid)
    )
}

/// One call with Basic auth as account `sid`; a non-2xx answer becomes a provider error.
pub(crate) fn call(
    t: &impl Transport,
    sid: &str,
    method: &str,
    url: String,
    form_body: Option<String>,
) -> Result<HttpResponse, ProviderError> {
    let mut headers = vec![("accept".to_string(), "application/json".to_string())];
    if form_body.is_some() {
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    let req = HttpRequest {
        method: method.into(),
        url,
        headers,
        body: form_body.map(String::into_bytes).unwrap_or_default(),
    };
    let resp = t.send(&req, &basic(sid)).map_err(errors::from_egress)?;
    if (200..300).contains(&resp.status) {
        Ok(resp)
    } else {
        Err(errors::from_http(&resp))
    }
}

/// The `To` address for a recipient: `whatsapp:+<phone>`, else `whatsapp:<business-scoped id>`.
pub fn recipient(to: &Party) -> Result<String, ProviderError> {
    if let Some(phone) = to.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        let phone = phone.strip_prefix("whatsapp:").unwrap_or(phone);
        return Ok(format!("whatsapp:+{}", phone.trim_start_matches('+')));
    }
    if let Some(id) = to
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        return Ok(format!(
            "whatsapp:{}",
            id.strip_prefix("whatsapp:").unwrap_or(id)
        ));
    }
    Err(local_error(
        ErrorKind::InvalidRecipient,
        "no-recipient",
        "the recipient has neither a phone number nor a user id",
    ))
}

/// The form fields of a send.
pub fn send_fields(
    connection: &ConnectionInfo,
    msg: &OutboundMessage,
) -> Result<Vec<(&'static str, String)>, ProviderError> {
    let invalid = |m: &str| local_error(ErrorKind::InvalidRequest, "invalid-message", m);
    let mut fields = vec![
        ("To", recipient(&msg.to)?),
        ("From", sender(connection)?.to_string()),
    ];
    match &msg.content {
        Content::Text(text) => fields.push(("Body", text.clone())),
        Content::Media(m) => {
            let url = m
                .url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| {
                    invalid("Twilio sends media from a public URL; this media has none")
                })?;
            if let Some(caption) = m.caption.as_deref().filter(|c| !c.is_empty()) {
                fields.push(("Body", caption.to_string()));
            }
            fields.push(("MediaUrl", url.to_string()));
        }
        // Templates are Content API items: `ContentSid` with numbered variables; Body and
        // MediaUrl are left out (Twilio refuses a template in Body outside the window: 63016).
        Content::Template(t) => {
            if t.name.trim().is_empty() {
                return Err(invalid("a template needs its content SID (HX…)"));
            }
            fields.push(("ContentSid", t.name.trim().to_string()));
            if !t.parameters.is_empty() {
                let vars: serde_json::Map<String, serde_json::Value> = t
                    .parameters
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ((i + 1).to_string(), serde_json::Value::String(p.clone())))
                    .collect();
                fields.push((
                    "ContentVariables",
                    serde_json::Value::Object(vars).to_string(),
                ));
            }
        }
        Content::Reaction(_) => {
            return Err(invalid(
                "Twilio's Messages API cannot send WhatsApp reactions",
            ));
        }
    }
    if let Some(cb) = connection.callback_url.as_deref().filter(|u| !u.is_empty()) {
        fields.push(("StatusCallback", cb.to_string()));
    }
    Ok(fields)
}

/// Send a message; Twilio's message SID on success.
pub fn send_message(
    t: &impl Transport,
    connection: &ConnectionInfo,
    msg: &OutboundMessage,
) -> Result<String, ProviderError> {
    let sid = account_sid(connection)?;
    let fields = send_fields(connection, msg)?;
    let resp = call(
        t,
        sid,
        "POST",
        account_url(connection, sid, "/Messages.json"),
        Some(form::body(&fields)),
    )?;
    #[derive(Deserialize)]
    struct Created {
        sid: Option<String>,
    }
    serde_json::from_slice::<Created>(&resp.body)
        .ok()
        .and_then(|c| c.sid)
        .filter(|s| !s.is_empty())
        // Twilio took the message but named no SID: retrying could send it twice.
        .ok_or_else(|| {
            local_error(
                ErrorKind::Permanent,
                "no-message-sid",
                "the send response carried no message SID",
            )
        })
}

/// Check the account's credentials and state (`GET /Accounts/{sid}.json`, which sends
/// nothing); the sandbox sender gets a warning about the `join <keyword>` opt-in.
pub fn check_credentials(
    t: &impl Transport,
    connection: &ConnectionInfo,
) -> Result<CredentialHealth, ProviderError> {
    let sid = account_sid(connection)?;
    let from = sender(connection)?;
    #[derive(Deserialize)]
    struct Account {
        status: Option<String>,
        friendly_name: Option<String>,
    }
    let resp = call(t, sid, "GET", account_url(connection, sid, ".json"), None)?;
    let account: Account = serde_json::from_slice(&resp.body).map_err(|e| {
        local_error(
            ErrorKind::Transient,
            "bad-response",
            format!("the account response is not the expected JSON: {e}"),
        )
    })?;
    let status = account.status.unwrap_or_default();
    if status != "active" {
        return Err(local_error(
            ErrorKind::AccountBlocked,
            &format!("account-{status}"),
            format!(
                "Twilio account {sid} is {}: it cannot send messages until Twilio reactivates it",
                if status.is_empty() {
                    "not active"
                } else {
                    &status
                }
            ),
        ));
    }
    let name = account.friendly_name.unwrap_or_else(|| sid.to_string());
    let warnings = if from == SANDBOX_SENDER {
        vec![format!(
            "{from} is Twilio's WhatsApp sandbox sender: each tester must first send \
             \"join <keyword>\" (the keyword is in the Console's WhatsApp sandbox settings) to \
             it, and the opt-in lapses after 72 hours."
        )]
    } else {
        Vec::new()
    };
    Ok(CredentialHealth {
        expires_at: None,
        scopes: Vec::new(),
        warnings,
        detail: format!("{from} on Twilio account {name} (active)"),
    })
}

/// Download inbound media from its `MediaUrl` with the account's Basic auth (media protection);
/// the connector downloads it itself and hands the host the bytes.
pub fn fetch_media(
    t: &impl Transport,
    connection: &ConnectionInfo,
    media: &MediaRef,
) -> Result<MediaSource, ProviderError> {
    let url = media
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            local_error(
                ErrorKind::InvalidRequest,
                "no-media-url",
                "Twilio media is fetched by URL; this media has none",
            )
        })?;
    let req = HttpRequest {
        method: "GET".into(),
        url: url.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let sid = account_sid(connection)?;
    let resp = t.send(&req, &basic(sid)).map_err(errors::from_egress)?;
    if !(200..300).contains(&resp.status) {
        return Err(errors::from_http(&resp));
    }
    if resp.body.len() > MAX_MEDIA_BYTES {
        return Err(local_error(
            ErrorKind::Permanent,
            "media-too-large",
            format!(
                "the media is {} bytes, more than WhatsApp's 16 MB",
                resp.body.len()
            ),
        ));
    }
    let mime = resp
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone())
        .or_else(|| media.mime_type.clone())
        .unwrap_or_else(|| "application/octet-stream".into());
    Ok(MediaSource::Content(MediaContent {
        mime_type: mime,
        body: resp.body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use switchyard_sdk::types::{Reaction, Template, TemplateCategory};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    struct Fake {
        status: u16,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
        seen: RefCell<Vec<(HttpRequest, Vec<Credential>)>>,
    }

    fn fake(status: u16, body: &str) -> Fake {
        Fake {
            status,
            body: body.as_bytes().to_vec(),
            headers: Vec::new(),
            seen: RefCell::default(),
        }
    }

    impl Transport for Fake {
        fn send(
            &self,
            req: &HttpRequest,
            credentials: &[Credential],
        ) -> Result<HttpResponse, EgressError> {
            self.seen
                .borrow_mut()
                .push((req.clone(), credentials.to_vec()));
            Ok(HttpResponse {
                status: self.status,
                headers: self.headers.clone(),
                body: self.body.clone(),
            })
        }
    }

    /// Exactly Basic auth as the account, with the auth token.
    fn is_basic(credentials: &[Credential]) -> bool {
        matches!(credentials, [Credential::Basic(b)] if b.user == SID && b.secret == "auth_token")
    }

    fn conn(from: &str) -> ConnectionInfo {
        ConnectionInfo {
            connection_id: "con_1".into(),
            channel_address: from.into(),
            account_id: Some(SID.into()),
            api_base_url: "https://api.twilio.com/".into(),
            settings: vec![
                ("account_sid".into(), SID.into()),
                ("from".into(), from.into()),
            ],
            callback_url: Some("https://hooks.example.test/hooks/end_1".into()),
        }
    }

    fn msg(content: Content) -> OutboundMessage {
        OutboundMessage {
            to: Party {
                phone: Some("14017122661".into()),
                user_id: None,
                name: None,
            },
            content,
            reply_to: None,
            idempotency_key: "k1".into(),
        }
    }

    fn form_of(req: &HttpRequest) -> Vec<(String, String)> {
        form::pairs(&String::from_utf8_lossy(&req.body))
    }

    #[test]
    fn text_send() {
        let t = fake(201, r#"{"sid":"SM0123","status":"queued"}"#);
        let id = send_message(
            &t,
            &conn("whatsapp:+14155550100"),
            &msg(Content::Text("Hi & bye".into())),
        )
        .expect("sent");
        assert_eq!(id, "SM0123");
        let seen = t.seen.borrow();
        let (req, cred) = &seen[0];
        assert!(is_basic(cred), "{cred:?}");
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.url,
            format!("https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json")
        );
        assert!(req.headers.contains(&(
            "content-type".into(),
            "application/x-www-form-urlencoded".into()
        )));
        let f = form_of(req);
        let s = |v: &str| v.to_string();
        assert_eq!(
            f,
            [
                (s("To"), s("whatsapp:+14017122661")),
                (s("From"), s("whatsapp:+14155550100")),
                (s("Body"), s("Hi & bye")),
                (
                    s("StatusCallback"),
                    s("https://hooks.example.test/hooks/end_1")
                ),
            ]
        );
    }

    #[test]
    fn template_media_and_refusals() {
        let t = fake(201, r#"{"sid":"SM1"}"#);
        let c = conn("whatsapp:+14155550100");
        let template = Content::Template(Template {
            name: "HXb5b62575e6e4ff6129ad7c8efe1f983e".into(),
            language: "en".into(),
            category: TemplateCategory::Utility,
            parameters: vec!["12/1".into(), "3pm".into()],
        });
        send_message(&t, &c, &msg(template)).expect("sent");
        let f = form_of(&t.seen.borrow()[0].0);
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("ContentSid").as_deref(),
            Some("HXb5b62575e6e4ff6129ad7c8efe1f983e")
        );
        assert_eq!(
            get("ContentVariables").as_deref(),
            Some(r#"{"1":"12/1","2":"3pm"}"#)
        );
        assert_eq!(get("Body"), None);
        assert_eq!(get("MediaUrl"), None);

        let media = Content::Media(MediaRef {
            provider_media_id: None,
            url: Some("https://example.com/a.jpg".into()),
            mime_type: None,
            sha256: None,
            caption: Some("look".into()),
            filename: None,
        });
        send_message(&t, &c, &msg(media)).expect("sent");
        let f = form_of(&t.seen.borrow()[1].0);
        assert!(f.contains(&("MediaUrl".into(), "https://example.com/a.jpg".into())));
        assert!(f.contains(&("Body".into(), "look".into())));

        let reaction = Content::Reaction(Reaction {
            message_id: "SM1".into(),
            emoji: "👍".into(),
        });
        assert_eq!(
            send_message(&t, &c, &msg(reaction)).unwrap_err().kind,
            ErrorKind::InvalidRequest
        );
        // A business-scoped id goes in To without `+`.
        let mut m = msg(Content::Text("x".into()));
        m.to = Party {
            phone: None,
            user_id: Some("US.1349".into()),
            name: None,
        };
        assert_eq!(
            send_fields(&c, &m).expect("fields")[0].1,
            "whatsapp:US.1349"
        );
        m.to.user_id = None;
        assert_eq!(
            send_fields(&c, &m).unwrap_err().kind,
            ErrorKind::InvalidRecipient
        );
        assert_eq!(t.seen.borrow().len(), 2);
    }

    #[test]
    fn send_errors() {
        let c = conn("whatsapp:+14155550100");
        for (status, body, kind) in [
            (
                400,
                r#"{"code":63016,"message":"outside the allowed window","status":400}"#,
                ErrorKind::WindowClosed,
            ),
            (
                401,
                r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#,
                ErrorKind::AuthExpired,
            ),
            (
                400,
                r#"{"code":21211,"message":"Invalid 'To' Phone Number","status":400}"#,
                ErrorKind::InvalidRecipient,
            ),
            (
                429,
                r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
                ErrorKind::RateLimited,
            ),
            (
                400,
                r#"{"code":63007,"message":"Twilio could not find a Channel with the specified From address","status":400}"#,
                ErrorKind::InvalidRequest,
            ),
            (503, "", ErrorKind::Transient),
        ] {
            let e =
                send_message(&fake(status, body), &c, &msg(Content::Text("x".into()))).unwrap_err();
            assert_eq!(e.kind, kind, "{body}");
            assert_eq!(e.retry_after, None, "{body}");
        }
        // Twilio's 429 says how long to wait.
        let mut t = fake(
            429,
            r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
        );
        t.headers = vec![("retry-after".into(), "17".into())];
        let e = send_message(&t, &c, &msg(Content::Text("x".into()))).unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str(), e.retry_after),
            (ErrorKind::RateLimited, "20429", Some(17))
        );
        let e = send_message(&fake(201, "{}"), &c, &msg(Content::Text("x".into()))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        let mut bad = conn("whatsapp:+14155550100");
        bad.account_id = Some("AC123".into());
        let t = fake(201, "{}");
        assert_eq!(
            send_message(&t, &bad, &msg(Content::Text("x".into())))
                .unwrap_err()
                .code,
            "invalid-account-sid"
        );
        assert!(t.seen.borrow().is_empty());
    }

    #[test]
    fn credential_checks() {
        let t = fake(
            200,
            &format!(
                r#"{{"sid":"{SID}","friendly_name":"Shop","status":"active","auth_token":"[redacted]"}}"#
            ),
        );
        let h = check_credentials(&t, &conn("whatsapp:+14155550100")).expect("ok");
        assert_eq!(
            h.detail,
            "whatsapp:+14155550100 on Twilio account Shop (active)"
        );
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        assert!(is_basic(&t.seen.borrow()[0].1));
        let req = t.seen.borrow()[0].0.clone();
        assert_eq!(
            (req.method.as_str(), req.url.as_str()),
            (
                "GET",
                format!("https://api.twilio.com/2010-04-01/Accounts/{SID}.json").as_str()
            )
        );
        // The sandbox sender: one warning sentence (no `warning:` prefix), a plain detail.
        let h = check_credentials(&t, &conn(SANDBOX_SENDER)).expect("ok");
        assert_eq!(
            h.warnings,
            [
                "whatsapp:+14155238886 is Twilio's WhatsApp sandbox sender: each tester must first \
              send \"join <keyword>\" (the keyword is in the Console's WhatsApp sandbox settings) \
              to it, and the opt-in lapses after 72 hours."
            ]
        );
        assert_eq!(
            h.detail,
            "whatsapp:+14155238886 on Twilio account Shop (active)"
        );
        assert!(!h.detail.contains("warning"));

        for status in ["suspended", "closed"] {
            let t = fake(200, &format!(r#"{{"status":"{status}"}}"#));
            let e = check_credentials(&t, &conn(SANDBOX_SENDER)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::AccountBlocked);
            assert!(e.message.contains(status));
        }
        let t = fake(
            401,
            r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#,
        );
        assert_eq!(
            check_credentials(&t, &conn(SANDBOX_SENDER))
                .unwrap_err()
                .kind,
            ErrorKind::AuthExpired
        );
        for from in ["+14155550100", "whatsapp:14155550100", "whatsapp:+1415abc"] {
            let e = check_credentials(&fake(200, "{}"), &conn(from)).unwrap_err();
            assert_eq!(e.code, "invalid-sender", "{from}");
        }
    }

    #[test]
    fn media_download() {
        let mut t = fake(200, "JPEGDATA");
        t.headers = vec![("content-type".into(), "image/jpeg".into())];
        let m = MediaRef {
            provider_media_id: None,
            url: Some(format!(
                "https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1"
            )),
            mime_type: Some("image/png".into()),
            sha256: None,
            caption: None,
            filename: None,
        };
        // Downloaded here: the host gets the bytes, not a request to make.
        let got = match fetch_media(&t, &conn(SANDBOX_SENDER), &m).expect("media") {
            MediaSource::Content(c) => c,
            MediaSource::Fetch(_) => panic!("Twilio media is downloaded by the connector"),
        };
        assert_eq!(
            (got.mime_type.as_str(), got.body.as_slice()),
            ("image/jpeg", b"JPEGDATA".as_slice())
        );
        assert!(is_basic(&t.seen.borrow()[0].1));
        let mut limited = fake(429, "");
        limited.headers = vec![("retry-after".into(), "3".into())];
        let e = fetch_media(&limited, &conn(SANDBOX_SENDER), &m).unwrap_err();
        assert_eq!((e.kind, e.retry_after), (ErrorKind::RateLimited, Some(3)));
        // The Basic user is the connection's Account SID: without a valid one nothing is sent.
        let mut no_sid = conn(SANDBOX_SENDER);
        no_sid.account_id = None;
        no_sid.settings.clear();
        let quiet = fake(200, "");
        assert_eq!(
            fetch_media(&quiet, &no_sid, &m).unwrap_err().code,
            "invalid-account-sid"
        );
        assert!(quiet.seen.borrow().is_empty());
        let big = Fake {
            body: vec![0; MAX_MEDIA_BYTES + 1],
            ..fake(200, "")
        };
        assert_eq!(
            fetch_media(&big, &conn(SANDBOX_SENDER), &m)
                .unwrap_err()
                .code,
            "media-too-large"
        );
        let none = MediaRef { url: None, ..m };
        assert_eq!(
            fetch_media(&t, &conn(SANDBOX_SENDER), &none)
                .unwrap_err()
                .kind,
            ErrorKind::InvalidRequest
        );
    }
}
