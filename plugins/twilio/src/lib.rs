//! WhatsApp connector for Twilio's Messaging API.
//!
//! - `verify`: `X-Twilio-Signature` (HMAC-SHA1 keyed by the auth token, computed in the host),
//!   answering accepted requests with an empty TwiML `<Response/>` ([`verify`]);
//! - `parse`: incoming messages and status callbacks ([`webhook`]);
//! - `send`, `check-credentials`, `fetch-media`: REST calls through host egress, which adds
//!   HTTP Basic auth with the Account SID and auth token ([`api`]); Twilio's error codes are
//!   mapped to the host's kinds in one place ([`errors`]);
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
pub mod errors;
pub mod form;
pub mod verify;
pub mod webhook;

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit/since_v0.2.0", world: "connector" });
    #[cfg(target_arch = "wasm32")]
    use super::Twilio;
    #[cfg(target_arch = "wasm32")]
    export!(Twilio);
}

use bindings::exports::switchyard::plugin::channel::Guest;
use bindings::switchyard::plugin::egress::{self, Credential, EgressError};
use bindings::switchyard::plugin::log::{self, Level};
use bindings::switchyard::plugin::secrets::{self, SecretError};
use bindings::switchyard::plugin::types::*;

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
        egress::send(req, credentials)
    }
}

/// Log a failed Twilio call with its code and the kind it maps to.
fn logged<T>(call: &str, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
    if let Err(e) = &result {
        log::write(
            Level::Warn,
            "twilio call failed",
            &[
                ("call".into(), call.into()),
                ("code".into(), e.code.clone()),
                ("kind".into(), format!("{:?}", e.kind)),
            ],
        );
    }
    result
}

impl Guest for Twilio {
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

    /// Twilio's templates live in the Content API, which this connector does not call yet:
    /// templates are sent by their content SID (`HX…`) as the template name.
    fn list_templates(_connection: ConnectionInfo) -> Result<Vec<TemplateInfo>, ProviderError> {
        Ok(Vec::new())
    }
}
