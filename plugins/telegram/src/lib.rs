//! Connector for the Telegram Bot API: each connection is one bot, with its own webhook
//! endpoint; the channel address is the bot's username.
//!
//! - `verify`: the `X-Telegram-Bot-Api-Secret-Token` header, compared in the host with the
//!   `webhook_secret` it generated; an authentic button press is answered with
//!   `answerCallbackQuery` in the webhook's response ([`verify`]);
//! - `parse`: one `Update` per request: private messages, their edits and inline-button presses
//!   ([`update`]);
//! - `send`, `check-credentials`, `connect`, `disconnect`, `fetch-media`: Bot API calls through
//!   host egress, which puts the bot token in the URL ([`api`]); Telegram's errors are mapped to
//!   the host's kinds in one place ([`errors`]).
//!
//! This file is glue: the logic lives in plain modules that call the host through
//! `switchyard_sdk` and are unit-tested natively against its `FakeHost`.

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
pub mod update;
pub mod verify;

use switchyard_sdk::host::log;
use switchyard_sdk::types::*;

/// The connector; exported as the component's `channel` interface.
pub struct Telegram;

/// Log a failed Bot API call with Telegram's code and the kind it maps to.
fn logged<T>(call: &str, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
    if let Err(e) = &result {
        log(
            Level::Warn,
            "telegram call failed",
            &[
                ("call", call),
                ("code", &e.code),
                ("kind", &format!("{:?}", e.kind)),
            ],
        );
    }
    result
}

impl switchyard_sdk::Connector for Telegram {
    fn verify(req: HttpRequest) -> Verdict {
        verify::verify(&req)
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
        logged("send", api::send_message(&connection, &msg))
    }

    fn check_credentials(connection: ConnectionInfo) -> Result<CredentialHealth, ProviderError> {
        logged("check-credentials", api::check_credentials(&connection))
    }

    fn connect(connection: ConnectionInfo) -> Result<(), ProviderError> {
        let result = logged("connect", api::connect(&connection));
        if result.is_ok() {
            log(
                Level::Info,
                "telegram webhook set",
                &[("connection", &connection.connection_id)],
            );
        }
        result
    }

    fn disconnect(connection: ConnectionInfo) -> Result<(), ProviderError> {
        logged("disconnect", api::disconnect(&connection))
    }

    fn fetch_media(
        connection: ConnectionInfo,
        media: MediaRef,
    ) -> Result<MediaSource, ProviderError> {
        logged("fetch-media", api::fetch_media(&connection, &media))
    }

    /// Telegram has no templates.
    fn list_templates(_connection: ConnectionInfo) -> Result<Vec<TemplateInfo>, ProviderError> {
        Ok(Vec::new())
    }
}

switchyard_sdk::export_connector!(Telegram);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::Connector;
    use switchyard_sdk::testing::FakeHost;

    fn conn() -> ConnectionInfo {
        ConnectionInfo {
            connection_id: "con_1".into(),
            channel_address: "ShopHelperBot".into(),
            account_id: None,
            api_base_url: "https://api.telegram.org".into(),
            settings: Vec::new(),
            callback_url: Some("https://hooks.example.test/hooks/end_1".into()),
        }
    }

    #[test]
    fn calls_are_logged_with_telegrams_code_and_never_the_token() {
        let blocked = r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#;
        let host = FakeHost::new()
            .secret(api::BOT_TOKEN, "123456:ABC-DEF")
            .secret(verify::WEBHOOK_SECRET, "whsec")
            .on(
                "POST",
                "https://api.telegram.org/bot{{bot_token}}/sendMessage",
                move |_| HttpResponse {
                    status: 403,
                    headers: Vec::new(),
                    body: blocked.as_bytes().to_vec(),
                },
            )
            .on_json(
                "POST",
                "https://api.telegram.org/bot{{bot_token}}/setWebhook",
                200,
                serde_json::json!({"ok": true, "result": true}),
            )
            .install();
        let msg = OutboundMessage {
            to: Party {
                phone: None,
                user_id: Some("1111111".into()),
                name: None,
            },
            content: Content::Text("hi".into()),
            reply_to: None,
            idempotency_key: "k1".into(),
        };
        let e = Telegram::send(conn(), msg).expect_err("blocked");
        assert_eq!(e.kind, ErrorKind::InvalidRecipient);
        Telegram::connect(conn()).expect("connected");
        let logs = host.logs();
        let fields = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(logs.len(), 2, "{logs:?}");
        assert_eq!(
            (logs[0].level, logs[0].message.as_str()),
            (Level::Warn, "telegram call failed")
        );
        assert_eq!(
            logs[0].fields,
            fields(&[
                ("call", "send"),
                ("code", "403"),
                // wit-bindgen's Debug names the enum too.
                ("kind", "ErrorKind::InvalidRecipient")
            ])
        );
        assert_eq!(
            (logs[1].level, logs[1].message.as_str()),
            (Level::Info, "telegram webhook set")
        );
        assert_eq!(logs[1].fields, fields(&[("connection", "con_1")]));
        assert!(!format!("{logs:?}").contains("123456:ABC-DEF"));
    }
}
