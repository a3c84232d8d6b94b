//! `switchyard:plugin@0.1.0`, frozen, beside the newest version: the host side of its imports
//! and the conversion of its types to and from the newest ones.
//!
//! A 0.1.0 type converts through its serde form: each newer record only adds optional fields
//! or ones the older side drops, so the shapes line up field by field (the tests below hold
//! every converted type to that). The few meanings that changed are converted by hand:
//! secret and credential names, credential health's warnings, and fetched media.

#[cfg(test)]
use super::bindings::convert;
use super::bindings::v0_1_0::connector::switchyard::plugin as old;
use super::bindings::{egress as new_egress, log as new_log, secrets as new_secrets, types};
use super::state::CallState;

super::bindings::byte_conversions!(super::bindings::v0_1_0::connector::switchyard::plugin::types);

/// How a 0.1.0 connector marked a warning: `detail` starting with this.
const WARNING_PREFIX: &str = "warning: ";

/// The field name of a 0.1.0 secret.
fn secret_field(name: old::secrets::SecretName) -> &'static str {
    use old::secrets::SecretName as N;
    match name {
        N::AppSecret => "app_secret",
        N::VerifyToken => "verify_token",
        N::AuthToken => "auth_token",
        N::AccessToken => "access_token",
    }
}

/// A 0.1.0 credential health: its `detail` carried a warning as a `warning: ` prefix.
pub(crate) fn credential_health(h: old::types::CredentialHealth) -> types::CredentialHealth {
    let warnings = h
        .detail
        .strip_prefix(WARNING_PREFIX)
        .map(|w| vec![w.to_string()])
        .unwrap_or_default();
    types::CredentialHealth {
        expires_at: h.expires_at,
        scopes: h.scopes,
        warnings,
        detail: h.detail,
    }
}

impl old::secrets::Host for CallState {
    fn hmac_sha256_equals(
        &mut self,
        key: old::secrets::SecretName,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, old::secrets::SecretError> {
        new_secrets::Host::hmac_sha256_equals(self, secret_field(key).into(), message, expected)
            .map_err(|_| old::secrets::SecretError::NotConfigured)
    }

    fn hmac_sha1_equals(
        &mut self,
        key: old::secrets::SecretName,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, old::secrets::SecretError> {
        new_secrets::Host::hmac_sha1_equals(self, secret_field(key).into(), message, expected)
            .map_err(|_| old::secrets::SecretError::NotConfigured)
    }

    fn equals(
        &mut self,
        key: old::secrets::SecretName,
        candidate: String,
    ) -> Result<bool, old::secrets::SecretError> {
        new_secrets::Host::equals(self, secret_field(key).into(), candidate)
            .map_err(|_| old::secrets::SecretError::NotConfigured)
    }
}

impl old::egress::Host for CallState {
    async fn send(
        &mut self,
        req: old::types::HttpRequest,
        credential: old::egress::Credential,
    ) -> Result<old::types::HttpResponse, old::egress::EgressError> {
        use old::egress::{Credential as C, EgressError as E};
        let credentials = match credential {
            C::None => Vec::new(),
            C::BearerAccessToken => vec![types::Credential::Bearer("access_token".into())],
            C::BasicAccountAuthToken => {
                let Some(user) = self.scope.account_id.clone() else {
                    return Err(E::CredentialMissing);
                };
                vec![types::Credential::Basic(types::BasicCredential {
                    user,
                    secret: "auth_token".into(),
                })]
            }
        };
        match new_egress::Host::send(self, request_up(req), credentials).await {
            Ok(r) => Ok(response_down(r)),
            Err(e) => Err(match e {
                new_egress::EgressError::HostNotAllowed(h) => E::HostNotAllowed(h),
                new_egress::EgressError::InvalidUrl(m) => E::InvalidUrl(m),
                new_egress::EgressError::CredentialMissing(_) => E::CredentialMissing,
                // 0.1.0 has no variant of its own for this one: the closest, with the reason.
                new_egress::EgressError::CredentialNotAllowed(h) => {
                    E::InvalidUrl(crate::egress::EgressError::CredentialNotAllowed(h).to_string())
                }
                new_egress::EgressError::Timeout => E::Timeout,
                new_egress::EgressError::ResponseTooLarge => E::ResponseTooLarge,
                new_egress::EgressError::ConnectionFailed(m) => E::ConnectionFailed(m),
            }),
        }
    }
}

impl old::log::Host for CallState {
    fn write(&mut self, level: old::log::Level, message: String, fields: Vec<(String, String)>) {
        use new_log::Level as N;
        use old::log::Level as O;
        let level = match level {
            O::Trace => N::Trace,
            O::Debug => N::Debug,
            O::Info => N::Info,
            O::Warn => N::Warn,
            O::Error => N::Error,
        };
        new_log::Host::write(self, level, message, fields);
    }
}

impl old::types::Host for CallState {}

#[cfg(test)]
mod tests {
    use super::*;

    fn party() -> types::Party {
        types::Party {
            phone: Some("15551234567".into()),
            user_id: Some("US.1".into()),
            name: Some("Ann".into()),
        }
    }

    fn media() -> types::MediaRef {
        types::MediaRef {
            provider_media_id: Some("m1".into()),
            url: Some("https://cdn.example/x".into()),
            mime_type: Some("image/jpeg".into()),
            sha256: None,
            caption: Some("c".into()),
            filename: None,
        }
    }

    fn message() -> types::InboundMessage {
        types::InboundMessage {
            provider_message_id: "wamid.1".into(),
            channel_address: "123".into(),
            sender: party(),
            timestamp: 7,
            kind: types::MessageKind::Interactive,
            text: Some("hi".into()),
            media: vec![media()],
            location: Some(types::Location {
                latitude: 1.5,
                longitude: -2.0,
                name: None,
                address: Some("a".into()),
            }),
            interactive: Some(types::InteractiveReply::FlowResponse(types::FlowResponse {
                name: None,
                body: Some("b".into()),
                response_json: "{}".into(),
            })),
            reply_to: Some("wamid.0".into()),
            referral: Some(types::Referral {
                source_url: None,
                source_type: Some("ad".into()),
                source_id: None,
                headline: None,
                body: None,
                click_id: Some("k".into()),
            }),
            details: None,
            edits: None,
        }
    }

    /// Every type that crosses between the versions survives the trip both ways.
    #[test]
    fn the_shared_types_convert_both_ways() {
        let msg = message();
        let old_msg: old::types::InboundMessage = convert(&msg).expect("down");
        let back: types::InboundMessage = convert(&old_msg).expect("up");
        assert_eq!(back, msg);

        let events = vec![
            types::InboundEvent::Message(msg),
            types::InboundEvent::Status(types::StatusUpdate {
                provider_message_id: "w".into(),
                channel_address: "123".into(),
                recipient: Some(party()),
                state: types::DeliveryState::Failed,
                timestamp: 9,
                error: Some(types::ProviderError {
                    kind: types::ErrorKind::WindowClosed,
                    code: "131047".into(),
                    message: "m".into(),
                    retry_after: None,
                }),
                pricing: None,
            }),
            types::InboundEvent::Account(types::AccountEvent {
                occurred_at: None,
                account_id: "waba".into(),
                change: types::AccountChange::Restricted,
                details: "d".into(),
            }),
            types::InboundEvent::TemplateStatus(types::TemplateStatus {
                account_id: "waba".into(),
                name: "n".into(),
                language: "en".into(),
                status: "APPROVED".into(),
                reason: None,
            }),
            types::InboundEvent::ContactChanged(types::ContactChange {
                channel_address: "1".into(),
                previous: party(),
                current: party(),
            }),
            types::InboundEvent::MarketingPreference(types::MarketingPreference {
                channel_address: "1".into(),
                contact: party(),
                stopped: true,
            }),
            types::InboundEvent::Ignored("x".into()),
        ];
        let old_events: Vec<old::types::InboundEvent> = convert(&events).expect("down");
        let back: Vec<types::InboundEvent> = convert(&old_events).expect("up");
        assert_eq!(back, events);

        let actions = vec![
            types::Action::Reply(types::Reply {
                content: types::Content::Media(media()),
                fallback: Some(types::Template {
                    name: "t".into(),
                    language: "en".into(),
                    category: types::TemplateCategory::Utility,
                    parameters: vec!["1".into()],
                }),
            }),
            types::Action::Reply(types::Reply {
                content: types::Content::Reaction(types::Reaction {
                    message_id: "w".into(),
                    emoji: "👍".into(),
                }),
                fallback: None,
            }),
            types::Action::HandOff("human".into()),
        ];
        let old_actions: Vec<old::types::Action> = convert(&actions).expect("down");
        let back: Vec<types::Action> = convert(&old_actions).expect("up");
        assert_eq!(back, actions);

        let verdicts = vec![
            types::Verdict::Accept,
            types::Verdict::AcceptWithResponse(types::HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/xml".into())],
                body: b"<Response/>".to_vec(),
            }),
            types::Verdict::Reject(types::Rejection {
                status: 403,
                reason: "r".into(),
            }),
        ];
        let old_verdicts: Vec<old::types::Verdict> = convert(&verdicts).expect("down");
        let back: Vec<types::Verdict> = convert(&old_verdicts).expect("up");
        assert_eq!(back, verdicts);
    }

    /// What only the newer side has is dropped going down, and the older side's warning
    /// prefix becomes a warning going up.
    #[test]
    fn newer_fields_drop_and_warnings_lift() {
        let ctx = types::ConversationContext {
            tenant_id: "ten_1".into(),
            conversation_id: "cnv_1".into(),
            channel: "telegram".into(),
            rules: types::ChannelRules {
                window_seconds: None,
                templates: false,
                text_limit: 4096,
                media: vec![types::MediaKind::Image],
                reactions: false,
                reply_context: true,
            },
            contact: party(),
            window_open: true,
            window_closes_at: None,
            history: vec![types::Turn {
                inbound: true,
                kind: types::MessageKind::Text,
                text: Some("hi".into()),
                provider_message_id: Some("1:2".into()),
                timestamp: 3,
            }],
            config: "{}".into(),
            owner: types::ConversationOwner::Policy,
            assignee: None,
            contact_email: None,
        };
        let old_ctx: old::types::ConversationContext = convert(&ctx).expect("down");
        assert_eq!(old_ctx.history.len(), 1);
        assert_eq!(old_ctx.history[0].text.as_deref(), Some("hi"));
        let health = credential_health(old::types::CredentialHealth {
            expires_at: Some(5),
            scopes: vec!["s".into()],
            detail: "warning: sandbox sender".into(),
        });
        assert_eq!(health.warnings, vec!["sandbox sender".to_string()]);
    }
}
