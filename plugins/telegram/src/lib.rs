//! Connector for the Telegram Bot API: each connection is one bot, with its own webhook
//! endpoint; the channel address is the bot's username.
//!
//! - `verify`: the `X-Telegram-Bot-Api-Secret-Token` header, compared in the host with the
//!   `webhook_secret` it generated ([`verify`]);
//! - `parse`: one `Update` per request: private messages, their edits and inline-button presses
//!   ([`update`]);
//! - `send`, `check-credentials`, `connect`, `disconnect`, `fetch-media`: Bot API calls through
//!   host egress, which puts the bot token in the URL ([`api`]); Telegram's errors are mapped to
//!   the host's kinds in one place ([`errors`]).
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
pub mod percent;
pub mod update;
pub mod verify;

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit/since_v0.2.0", world: "connector" });
    // Exported only in the component: the export names are not valid native symbols.
    #[cfg(target_arch = "wasm32")]
    use super::Telegram;
    #[cfg(target_arch = "wasm32")]
    export!(Telegram);
}

use bindings::exports::switchyard::plugin::channel::Guest;
use bindings::switchyard::plugin::egress::{self, Credential, EgressError};
use bindings::switchyard::plugin::log::{self, Level};
use bindings::switchyard::plugin::secrets::{self, SecretError};
use bindings::switchyard::plugin::types::*;

/// The connector; exported as the component's `channel` interface.
pub struct Telegram;

/// The host's `secrets` interface.
struct HostSecrets;

impl verify::SecretCheck for HostSecrets {
    fn equals(&self, name: &str, candidate: &str) -> Result<bool, SecretError> {
        secrets::equals(name, candidate)
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

/// Log a failed Bot API call with Telegram's code and the kind it maps to.
fn logged<T>(call: &str, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
    if let Err(e) = &result {
        log::write(
            Level::Warn,
            "telegram call failed",
            &[
                ("call".into(), call.into()),
                ("code".into(), e.code.clone()),
                ("kind".into(), format!("{:?}", e.kind)),
            ],
        );
    }
    result
}

impl Guest for Telegram {
    fn verify(req: HttpRequest) -> Verdict {
        verify::verify(&req, &HostSecrets)
    }

    fn parse(
        req: HttpRequest,
        connection: Option<ConnectionInfo>,
    ) -> Result<Vec<InboundEvent>, String> {
        update::parse(
            &req,
            connection.as_ref().map(|c| c.channel_address.as_str()),
        )
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

    fn connect(connection: ConnectionInfo) -> Result<(), ProviderError> {
        let result = logged("connect", api::connect(&HostEgress, &connection));
        if result.is_ok() {
            log::write(
                Level::Info,
                "telegram webhook set",
                &[("connection".into(), connection.connection_id.clone())],
            );
        }
        result
    }

    fn disconnect(connection: ConnectionInfo) -> Result<(), ProviderError> {
        logged("disconnect", api::disconnect(&HostEgress, &connection))
    }

    fn fetch_media(
        connection: ConnectionInfo,
        media: MediaRef,
    ) -> Result<MediaSource, ProviderError> {
        logged(
            "fetch-media",
            api::fetch_media(&HostEgress, &connection, &media),
        )
    }

    /// Telegram has no templates.
    fn list_templates(_connection: ConnectionInfo) -> Result<Vec<TemplateInfo>, ProviderError> {
        Ok(Vec::new())
    }
}
