//! Host side of `switchyard:plugin/egress`: a plugin's HTTP goes through [`crate::egress`].

use super::bindings::egress::{Credential, EgressError as WitEgressError, Host};
use super::bindings::types::{HttpRequest, HttpResponse};
use super::state::CallState;
use crate::egress::{Auth, EgressError, Request};
use crate::vault::{Secret, SecretName};

impl From<EgressError> for WitEgressError {
    fn from(e: EgressError) -> Self {
        match e {
            EgressError::HostNotAllowed(h) => WitEgressError::HostNotAllowed(h),
            // 0.1.0 has no variant of its own for these: the closest ones, with the reason.
            EgressError::AddressNotAllowed(h) => {
                WitEgressError::HostNotAllowed(format!("{h} (not a public address)"))
            }
            e @ EgressError::CredentialNotAllowed(_) => WitEgressError::InvalidUrl(e.to_string()),
            e @ EgressError::TooManyRedirects => WitEgressError::ConnectionFailed(e.to_string()),
            EgressError::InvalidUrl(m) => WitEgressError::InvalidUrl(m),
            EgressError::Timeout => WitEgressError::Timeout,
            EgressError::ResponseTooLarge => WitEgressError::ResponseTooLarge,
            EgressError::ConnectionFailed(m) => WitEgressError::ConnectionFailed(m),
        }
    }
}

impl CallState {
    fn auth(&self, credential: Credential) -> Result<Auth, WitEgressError> {
        let shared = self.plugin.services.secrets.as_ref();
        let get = |name| {
            self.scope
                .secret(shared, name)
                .ok_or(WitEgressError::CredentialMissing)
        };
        Ok(match credential {
            Credential::None => Auth::None,
            Credential::BearerAccessToken => Auth::Bearer(get(SecretName::AccessToken)?),
            Credential::BasicAccountAuthToken => Auth::Basic {
                user: self
                    .scope
                    .account_id
                    .clone()
                    .ok_or(WitEgressError::CredentialMissing)?,
                password: get(SecretName::AuthToken)?,
            },
        })
    }

    /// Every secret this call's scope holds: all of them are redacted from responses.
    fn held_secrets(&self) -> Vec<Secret> {
        SecretName::ALL
            .into_iter()
            .filter_map(|name| {
                self.scope
                    .secret(self.plugin.services.secrets.as_ref(), name)
            })
            .collect()
    }
}

impl Host for CallState {
    async fn send(
        &mut self,
        req: HttpRequest,
        credential: Credential,
    ) -> Result<HttpResponse, WitEgressError> {
        // Refuse before touching any secret.
        let url = self.plugin.grants.check(&req.url)?;
        if credential != Credential::None && !self.plugin.grants.carries_credentials(&url) {
            let host = url.host_str().unwrap_or_default().to_string();
            return Err(EgressError::CredentialNotAllowed(host).into());
        }
        let auth = self.auth(credential)?;
        let secrets = self.held_secrets();
        let request = Request {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        // Waiting here is not guest time: the call's future is not being polled meanwhile.
        let result = self
            .plugin
            .services
            .egress
            .send(&self.plugin.grants, request, auth, &secrets)
            .await;
        let resp = result.map_err(|e| {
            tracing::debug!(plugin = %self.plugin.label, error = %e, "egress refused or failed");
            WitEgressError::from(e)
        })?;
        Ok(HttpResponse {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        })
    }
}
