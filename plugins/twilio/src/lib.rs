//! WhatsApp connector for Twilio's Messaging API.
//!
//! - `verify`: `X-Twilio-Signature` (HMAC-SHA1 keyed by the auth token, computed in the host),
//!   answering accepted requests with an empty TwiML `<Response/>` ([`verify`]);
//! - `parse`: incoming messages and status callbacks ([`webhook`]);
//! - `send`, `check-credentials`, `fetch-media`: REST calls through host egress, which adds
//!   HTTP Basic auth with the Account SID and auth token ([`api`]); Twilio's error codes are
//!   mapped to the host's kinds in one place ([`errors`]);
//! - `list-templates`: the account's contents with their WhatsApp approval status from the
//!   Content API (content.twilio.com, same Basic auth), listed by content SID (`HX…`), the name
//!   a send uses as `ContentSid` ([`content`]);
//! - `connect`, `disconnect`: nothing to do (the operator points the sender's webhook at the
//!   connection's endpoint in Twilio's console).
//!
//! This file is glue: the logic lives in plain modules that are unit-tested natively.

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod api;
pub mod content;
pub mod errors;
pub mod form;
pub mod verify;
pub mod webhook;

use switchyard_sdk::host::{egress, log, secrets};
use switchyard_sdk::types::*;

/// The connector; exported as the component's `channel` interface.
pub struct Twilio;

/// The host's `secrets` interface.
struct HostSecrets;

impl verify::SecretCheck for HostSecrets {
    fn hmac_sha1_equals(
        &self,
        name: &str,
        message: &[u8],
        expected: &[u8],
    ) -> Result<bool, SecretError> {
        secrets::hmac_sha1_equals(name, message, expected)
    }
}

/// The host's `egress` interface.
struct HostEgress;

impl api::Transport for HostEgress {
    fn send(
        &self,
        req: &HttpRequest,
        credentials: &[Credential],
    ) -> Result<HttpResponse, EgressError> {
        egress(req, credentials)
    }
}

/// Log a failed Twilio call with its code and the kind it maps to.
fn logged<T>(call: &str, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
    if let Err(e) = &result {
        log(
            Level::Warn,
            "twilio call failed",
            &[
                ("call", call),
                ("code", &e.code),
                ("kind", &format!("{:?}", e.kind)),
            ],
        );
    }
    result
}

impl switchyard_sdk::Connector for Twilio {
    fn verify(req: HttpRequest) -> Verdict {
        verify::verify(&req, &HostSecrets)
    }

    /// Twilio's webhooks name the business sender (`To`, or `From` on status callbacks), so
    /// the connection whose endpoint received them is not needed.
    fn parse(
        req: HttpRequest,
        _connection: Option<ConnectionInfo>,
    ) -> Result<Vec<InboundEvent>, String> {
        webhook::parse(&req)
    }

    fn send(connection: ConnectionInfo, msg: OutboundMessage) -> Result<String, ProviderError> {
        logged("send", api::send_message(&HostEgress, &connection, &msg))
    }

    fn check_credentials(connection: ConnectionInfo) -> Result<CredentialHealth, ProviderError> {
        logged(
            "check-credentials",
            api::check_credentials(&HostEgress, &connection),
        )
    }

    /// Nothing to set up: the operator enters the connection's webhook URL on the WhatsApp
    /// sender in Twilio's console, and each send names its own `StatusCallback`.
    fn connect(_connection: ConnectionInfo) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Nothing to undo: `connect` set nothing up at Twilio.
    fn disconnect(_connection: ConnectionInfo) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Downloaded here, not by the host: WhatsApp media is at most 16 MB, which the connector
    /// checks, and Twilio's error answers are read as for every other call.
    fn fetch_media(
        connection: ConnectionInfo,
        media: MediaRef,
    ) -> Result<MediaSource, ProviderError> {
        logged(
            "fetch-media",
            api::fetch_media(&HostEgress, &connection, &media),
        )
    }

    /// Twilio's templates are the Content API's contents (`GET /v1/ContentAndApprovals`, every
    /// page), each listed under its content SID (`HX…`), the template name a send uses, with
    /// its WhatsApp approval status: only `approved` is sendable (`APPROVED`), and a content
    /// never submitted to WhatsApp is listed as `UNSUBMITTED`.
    fn list_templates(connection: ConnectionInfo) -> Result<Vec<TemplateInfo>, ProviderError> {
        logged(
            "list-templates",
            content::list_templates(&HostEgress, &connection),
        )
    }
}

switchyard_sdk::export_connector!(Twilio);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::Connector;
    use switchyard_sdk::testing::FakeHost;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn conn() -> ConnectionInfo {
        ConnectionInfo {
            connection_id: "con_1".into(),
            channel_address: "whatsapp:+14155550100".into(),
            account_id: Some(SID.into()),
            api_base_url: "https://api.twilio.com".into(),
            settings: vec![
                ("account_sid".into(), SID.into()),
                ("from".into(), "whatsapp:+14155550100".into()),
            ],
            callback_url: Some("https://hooks.example.test/hooks/end_1".into()),
        }
    }

    fn msg() -> OutboundMessage {
        OutboundMessage {
            to: Party {
                phone: Some("14017122661".into()),
                user_id: None,
                name: None,
            },
            content: Content::Text("hi".into()),
            reply_to: None,
            idempotency_key: "k1".into(),
        }
    }

    #[test]
    fn verify_checks_the_signature_in_the_host() {
        // twilio-python's published vector (auth token `12345`), as in `verify`'s tests.
        let _host = FakeHost::new()
            .secret(verify::AUTH_TOKEN, "12345")
            .install();
        let req = |signature: &str| {
            HttpRequest {
            method: "POST".into(),
            url: "https://mycompany.com/myapp.php?foo=1&bar=2".into(),
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                (verify::SIGNATURE_HEADER.into(), signature.into()),
            ],
            body: b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309".to_vec(),
        }
        };
        assert!(matches!(
            Twilio::verify(req("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
            Verdict::AcceptWithResponse(_)
        ));
        assert!(matches!(
            Twilio::verify(req("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
            Verdict::Reject(Rejection { status: 403, .. })
        ));
    }

    #[test]
    fn rest_calls_go_through_the_host_and_failures_are_logged() {
        let host = FakeHost::new()
            .secret(verify::AUTH_TOKEN, "tok-s3cret")
            .on_json(
                "POST",
                "https://api.twilio.com/2010-04-01/Accounts/",
                400,
                serde_json::json!({"code": 21211, "message": "Invalid 'To' Phone Number"}),
            )
            .install();
        let e = Twilio::send(conn(), msg()).expect_err("refused");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::InvalidRecipient, "21211")
        );
        let sent = host.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].credentials, api::basic(SID));
        let logs = host.logs();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(
            (logs[0].level, logs[0].message.as_str()),
            (Level::Warn, "twilio call failed")
        );
        assert_eq!(
            logs[0].fields,
            [
                ("call".to_string(), "send".to_string()),
                ("code".to_string(), "21211".to_string()),
                (
                    "kind".to_string(),
                    "ErrorKind::InvalidRecipient".to_string()
                ),
            ]
        );
        assert!(!format!("{logs:?}").contains("tok-s3cret"));
        drop(host);
        // The host's refusals keep this crate's classification (not the SDK's `egress` code).
        let _host = FakeHost::new().install();
        let e = Twilio::send(conn(), msg()).expect_err("no token");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::AuthExpired, "egress-credential-missing")
        );
    }

    #[test]
    fn templates_are_listed_from_the_content_api_through_the_host() {
        let host = FakeHost::new()
            .secret(verify::AUTH_TOKEN, "tok-s3cret")
            .on_json(
                "GET",
                "https://content.twilio.com/v1/ContentAndApprovals",
                200,
                serde_json::json!({
                    "contents": [{
                        "sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e",
                        "friendly_name": "order_update",
                        "language": "en",
                        "variables": {"1": "name"},
                        "types": {"twilio/text": {"body": "Hi {{1}}"}},
                        "approval_requests": {"name": "order_update", "category": "UTILITY",
                            "status": "approved", "rejection_reason": "",
                            "content_type": "twilio/text"}
                    }],
                    "meta": {"page": 0, "page_size": 500, "next_page_url": null, "key": "contents"}
                }),
            )
            .install();
        let listed = Twilio::list_templates(conn()).expect("listed");
        assert_eq!(
            listed,
            [TemplateInfo {
                id: "HXb5b62575e6e4ff6129ad7c8efe1f983e".into(),
                name: "HXb5b62575e6e4ff6129ad7c8efe1f983e".into(),
                language: "en".into(),
                category: TemplateCategory::Utility,
                status: "APPROVED".into(),
                display_name: Some("order_update".into()),
            }]
        );
        let sent = host.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].request.url,
            "https://content.twilio.com/v1/ContentAndApprovals?PageSize=500"
        );
        assert_eq!(sent[0].credentials, api::basic(SID));
        assert!(host.logs().is_empty(), "{:?}", host.logs());
    }
}
