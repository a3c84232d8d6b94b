//! `switchyard:plugin@0.2.0`, frozen, beside the newest version: the host side of its imports.
//!
//! 0.3.0 only added the `pricing` a status may carry, so every 0.2.0 type has the newest one's
//! shape (a 0.2.0 status converts with no pricing) and converts through its serde form; the
//! imports delegate to the newest host implementations.

use super::bindings::v0_2_0::connector::switchyard::plugin as old;
use super::bindings::{convert, egress as new_egress, log as new_log, secrets as new_secrets};
use super::state::CallState;

super::bindings::byte_conversions!(super::bindings::v0_2_0::connector::switchyard::plugin::types);

/// A 0.2.0 secret error from the newest one.
fn secret_error(e: new_secrets::SecretError) -> old::secrets::SecretError {
    match e {
        new_secrets::SecretError::NotDeclared => old::secrets::SecretError::NotDeclared,
        new_secrets::SecretError::NotConfigured => old::secrets::SecretError::NotConfigured,
    }
}

impl old::secrets::Host for CallState {
    fn hmac_sha256_equals(
        &mut self,
        name: String,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, old::secrets::SecretError> {
        new_secrets::Host::hmac_sha256_equals(self, name, message, expected).map_err(secret_error)
    }

    fn hmac_sha1_equals(
        &mut self,
        name: String,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, old::secrets::SecretError> {
        new_secrets::Host::hmac_sha1_equals(self, name, message, expected).map_err(secret_error)
    }

    fn equals(
        &mut self,
        name: String,
        candidate: String,
    ) -> Result<bool, old::secrets::SecretError> {
        new_secrets::Host::equals(self, name, candidate).map_err(secret_error)
    }
}

impl old::egress::Host for CallState {
    async fn send(
        &mut self,
        req: old::types::HttpRequest,
        credentials: Vec<old::types::Credential>,
    ) -> Result<old::types::HttpResponse, old::egress::EgressError> {
        use new_egress::EgressError as N;
        use old::egress::EgressError as O;
        // Credentials are names only; the request's body moves as it is.
        let credentials = convert(&credentials).map_err(O::InvalidUrl)?;
        match new_egress::Host::send(self, request_up(req), credentials).await {
            Ok(resp) => Ok(response_down(resp)),
            Err(e) => Err(match e {
                N::HostNotAllowed(h) => O::HostNotAllowed(h),
                N::InvalidUrl(m) => O::InvalidUrl(m),
                N::CredentialMissing(n) => O::CredentialMissing(n),
                N::CredentialNotAllowed(n) => O::CredentialNotAllowed(n),
                N::Timeout => O::Timeout,
                N::ResponseTooLarge => O::ResponseTooLarge,
                N::ConnectionFailed(m) => O::ConnectionFailed(m),
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
    use super::super::bindings::types;
    use super::*;

    fn status(pricing: Option<types::Pricing>) -> types::InboundEvent {
        types::InboundEvent::Status(types::StatusUpdate {
            provider_message_id: "wamid.1".into(),
            channel_address: "123".into(),
            recipient: None,
            state: types::DeliveryState::Delivered,
            timestamp: 9,
            error: None,
            pricing,
        })
    }

    /// Bodies cross between the versions as they are, both ways (moved, never through JSON).
    #[test]
    fn requests_responses_and_verdicts_keep_their_bytes() {
        let body: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let req = types::HttpRequest {
            method: "POST".into(),
            url: "https://hooks.example/x".into(),
            headers: vec![("a".into(), "b".into())],
            body: body.clone(),
        };
        assert_eq!(request_up(request_down(&req)), req);
        let resp = types::HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: body.clone(),
        };
        let verdict = verdict_up(old::types::Verdict::AcceptWithResponse(response_down(
            resp.clone(),
        )));
        assert_eq!(verdict, types::Verdict::AcceptWithResponse(resp));
        let content = media_content_up(old::types::MediaContent {
            mime_type: "image/png".into(),
            body: body.clone(),
        });
        assert_eq!(content.body, body);
    }

    /// A 0.2.0 status converts up with no pricing; going down, the pricing 0.2.0 cannot hold
    /// is dropped and everything else survives.
    #[test]
    fn a_status_converts_without_its_pricing() {
        let priced = status(Some(types::Pricing {
            category: "utility".into(),
            billable: Some(true),
            model: Some("PMP".into()),
            pricing_type: Some("regular".into()),
        }));
        let old: old::types::InboundEvent = convert(&priced).expect("down");
        let back: types::InboundEvent = convert(&old).expect("up");
        assert_eq!(back, status(None));
    }
}
