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

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit/since_v0.2.0", world: "connector" });
    // Exported only in the component: the export names (`…/channel@0.2.0#…`) are not valid
    // native symbols, and the host's benchmark links this crate natively for its baseline.
    #[cfg(target_arch = "wasm32")]
    use super::MetaCloud;
    #[cfg(target_arch = "wasm32")]
    export!(MetaCloud);
}

use bindings::exports::switchyard::plugin::channel::Guest;
use bindings::switchyard::plugin::egress::{self, Credential, EgressError};
use bindings::switchyard::plugin::log::{self, Level};
use bindings::switchyard::plugin::secrets::{self, SecretError};
use bindings::switchyard::plugin::types::*;

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
        egress::send(req, credentials)
    }
}

/// Log a failed Graph call with Meta's code and the kind it maps to.
fn logged<T>(call: &str, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
    if let Err(e) = &result {
        log::write(
            Level::Warn,
            "graph call failed",
            &[
                ("call".into(), call.into()),
                ("code".into(), e.code.clone()),
                ("kind".into(), format!("{:?}", e.kind)),
            ],
        );
    }
    result
}

impl Guest for MetaCloud {
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
