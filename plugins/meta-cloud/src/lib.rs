//! WhatsApp connector for Meta's Cloud API.
//!
//! - `verify`: the `hub.challenge` handshake and `X-Hub-Signature-256`, with the verify token
//!   and app secret checked in the host ([`verify`]);
//! - `parse`: every entry and change of a webhook ([`webhook`]);
//! - `send`, `check-credentials`, `fetch-media`, `list-templates`: Graph API calls through host
//!   egress, which adds the access token ([`graph`], [`send`]); Meta's error codes are mapped
//!   to the host's kinds in one place ([`errors`]). `fetch-media` asks Graph for the file's URL
//!   and lets the host download it;
//! - `connect`, `disconnect`: nothing to do (the host's onboarding subscribes the app).
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

pub mod errors;
pub mod graph;
pub mod send;
pub mod verify;
pub mod webhook;

use switchyard_sdk::host::{egress, log, secrets};
use switchyard_sdk::types::*;

/// The connector; exported as the component's `channel` interface.
pub struct MetaCloud;

/// The host's `secrets` interface.
struct HostSecrets;

impl verify::SecretCheck for HostSecrets {
    fn equals(&self, name: &str, candidate: &str) -> Result<bool, SecretError> {
        secrets::equals(name, candidate)
    }
    fn hmac_sha256_equals(
        &self,
        name: &str,
        message: &[u8],
        expected: &[u8],
    ) -> Result<bool, SecretError> {
        secrets::hmac_sha256_equals(name, message, expected)
    }
}

/// The host's `egress` interface.
struct HostEgress;

impl graph::Transport for HostEgress {
    fn send(
        &self,
        req: &HttpRequest,
        credentials: &[Credential],
    ) -> Result<HttpResponse, EgressError> {
        egress(req, credentials)
    }
}

/// Log a failed Graph call with Meta's code and the kind it maps to.
fn logged<T>(call: &str, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
    if let Err(e) = &result {
        log(
            Level::Warn,
            "graph call failed",
            &[
                ("call", call),
                ("code", &e.code),
                ("kind", &format!("{:?}", e.kind)),
            ],
        );
    }
    result
}

impl switchyard_sdk::Connector for MetaCloud {
    fn verify(req: HttpRequest) -> Verdict {
        verify::verify(&req, &HostSecrets)
    }

    /// Meta's webhooks name the business number (`metadata.phone_number_id`) and arrive on a
    /// shared endpoint, so `connection` is not needed (and is always none).
    fn parse(
        req: HttpRequest,
        _connection: Option<ConnectionInfo>,
    ) -> Result<Vec<InboundEvent>, String> {
        webhook::parse(&req.body)
    }

    fn send(connection: ConnectionInfo, msg: OutboundMessage) -> Result<String, ProviderError> {
        logged("send", graph::send_message(&HostEgress, &connection, &msg))
    }

    fn check_credentials(connection: ConnectionInfo) -> Result<CredentialHealth, ProviderError> {
        logged(
            "check-credentials",
            graph::check_credentials(&HostEgress, &connection),
        )
    }

    /// Nothing to set up: the app's subscription to the WhatsApp Business Account's webhooks
    /// (`POST /{waba-id}/subscribed_apps`) is made by the host's onboarding, and
    /// `check-credentials` warns when it is missing.
    fn connect(_connection: ConnectionInfo) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Nothing to undo here: the subscription belongs to the account, which other numbers (of
    /// any tenant) may still use, and only the host knows whether one does; unsubscribing the
    /// last number's account (`DELETE /{waba-id}/subscribed_apps`) is the host's.
    fn disconnect(_connection: ConnectionInfo) -> Result<(), ProviderError> {
        Ok(())
    }

    fn fetch_media(
        connection: ConnectionInfo,
        media: MediaRef,
    ) -> Result<MediaSource, ProviderError> {
        logged(
            "fetch-media",
            graph::fetch_media(&HostEgress, &connection, &media),
        )
    }

    fn list_templates(connection: ConnectionInfo) -> Result<Vec<TemplateInfo>, ProviderError> {
        logged(
            "list-templates",
            graph::list_templates(&HostEgress, &connection),
        )
    }
}

// Exported only in the component (the macro expands to nothing natively): the export names
// (`…/channel@0.3.0#…`) are not valid native symbols, and the host's benchmark links this
// crate natively for its baseline.
switchyard_sdk::export_connector!(MetaCloud);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::{conn, text};
    use switchyard_sdk::Connector;
    use switchyard_sdk::testing::{FakeHost, hmac_sha256, to_hex};

    fn post(body: &[u8], signature: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://hooks.example.test/hooks/meta".into(),
            headers: vec![(verify::SIGNATURE_HEADER.into(), signature.into())],
            body: body.to_vec(),
        }
    }

    #[test]
    fn verify_checks_secrets_in_the_host() {
        let _host = FakeHost::new()
            .secret(verify::APP_SECRET, "app-s3cret")
            .secret(verify::VERIFY_TOKEN, "my verify token")
            .install();
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let good = format!("sha256={}", to_hex(&hmac_sha256("app-s3cret", body)));
        assert_eq!(MetaCloud::verify(post(body, &good)), Verdict::Accept);
        let bad = format!("sha256={}", to_hex(&hmac_sha256("other", body)));
        assert!(matches!(
            MetaCloud::verify(post(body, &bad)),
            Verdict::Reject(Rejection { status: 403, .. })
        ));
        let handshake = HttpRequest {
            method: "GET".into(),
            url: "https://hooks.example.test/hooks/meta?hub.mode=subscribe&hub.verify_token=my+verify+token&hub.challenge=1158201444".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        match MetaCloud::verify(handshake) {
            Verdict::Respond(r) => assert_eq!(r.body, b"1158201444"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn graph_calls_go_through_the_host_and_failures_are_logged() {
        let host = FakeHost::new()
            .secret(graph::ACCESS_TOKEN, "EAAG-token")
            .on_json(
                "POST",
                "https://graph.facebook.com/v26.0/106540352242922/messages",
                400,
                serde_json::json!({"error": {"message": "(#131047) Re-engagement message", "code": 131047}}),
            )
            .install();
        let e = MetaCloud::send(conn(), text()).expect_err("window");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::WindowClosed, "131047")
        );
        let sent = host.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].credentials, graph::bearer());
        let logs = host.logs();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(
            (logs[0].level, logs[0].message.as_str()),
            (Level::Warn, "graph call failed")
        );
        assert_eq!(
            logs[0].fields,
            [
                ("call".to_string(), "send".to_string()),
                ("code".to_string(), "131047".to_string()),
                ("kind".to_string(), "ErrorKind::WindowClosed".to_string()),
            ]
        );
        assert!(!format!("{logs:?}").contains("EAAG-token"));
        drop(host);
        // The host's refusals keep this crate's classification (not the SDK's `egress` code).
        let _host = FakeHost::new().install();
        let e = MetaCloud::send(conn(), text()).expect_err("no token");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::AuthExpired, "egress-credential-missing")
        );
    }
}
