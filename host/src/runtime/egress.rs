//! Host side of `switchyard:plugin/egress`: a plugin's HTTP goes through [`crate::egress`].

use super::PluginShared;
use super::bindings::egress::{EgressError as WitEgressError, Host};
use super::bindings::types::{Credential, HttpRequest, HttpResponse};
use super::manifest::Placement;
use super::state::CallState;
use crate::egress::{Auth, EgressError, Request, Response, UrlPlace};
use crate::vault::SecretScope;

impl From<EgressError> for WitEgressError {
    fn from(e: EgressError) -> Self {
        match e {
            EgressError::HostNotAllowed(h) => WitEgressError::HostNotAllowed(h),
            EgressError::AddressNotAllowed(h) => {
                WitEgressError::HostNotAllowed(format!("{h} (not a public address)"))
            }
            EgressError::CredentialNotAllowed(h) => WitEgressError::CredentialNotAllowed(h),
            e @ EgressError::TooManyRedirects => WitEgressError::ConnectionFailed(e.to_string()),
            EgressError::InvalidUrl(m) => WitEgressError::InvalidUrl(m),
            EgressError::Timeout => WitEgressError::Timeout,
            EgressError::ResponseTooLarge => WitEgressError::ResponseTooLarge,
            EgressError::ConnectionFailed(m) => WitEgressError::ConnectionFailed(m),
        }
    }
}

impl PluginShared {
    /// The secrets `credentials` name, as egress adds them; each must be declared, held, and
    /// placed where its declaration allows.
    pub(crate) fn auth(
        &self,
        scope: &SecretScope,
        credentials: Vec<Credential>,
    ) -> Result<Vec<Auth>, WitEgressError> {
        let get = |name: &str| {
            self.secret(scope, name)
                .map_err(|_| WitEgressError::CredentialMissing(name.chars().take(64).collect()))
        };
        let placement = |name: &str| {
            self.declared_secrets
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.placement().ok().flatten())
        };
        let misplaced = |name: &str, what: &str| {
            WitEgressError::InvalidUrl(format!(
                "the secret {:?} may not be sent as {what}: its manifest places it elsewhere",
                name.chars().take(64).collect::<String>()
            ))
        };
        credentials
            .into_iter()
            .map(|c| {
                Ok(match c {
                    Credential::Bearer(name) => {
                        if !matches!(placement(&name), None | Some(Placement::Bearer)) {
                            return Err(misplaced(&name, "a bearer token"));
                        }
                        Auth::Bearer(get(&name)?)
                    }
                    Credential::Basic(b) => {
                        if !matches!(placement(&b.secret), None | Some(Placement::Basic)) {
                            return Err(misplaced(&b.secret, "a Basic password"));
                        }
                        Auth::Basic {
                            password: get(&b.secret)?,
                            user: b.user,
                        }
                    }
                    Credential::Header(h) => {
                        let header = h.header.to_ascii_lowercase();
                        match placement(&h.secret) {
                            None => {}
                            Some(Placement::Header(declared)) if declared == header => {}
                            _ => return Err(misplaced(&h.secret, &format!("the {header} header"))),
                        }
                        Auth::Header {
                            value: get(&h.secret)?,
                            name: header,
                        }
                    }
                    Credential::InUrl(name) => {
                        let place = match placement(&name) {
                            Some(Placement::Path) => UrlPlace::Path,
                            Some(Placement::Query(q)) => UrlPlace::Query(q),
                            _ => return Err(misplaced(&name, "part of the URL")),
                        };
                        Auth::InUrl {
                            value: get(&name)?,
                            name,
                            place,
                        }
                    }
                })
            })
            .collect()
    }

    /// Send `req` through the host's egress under this plugin's grants, with the secrets
    /// `credentials` name added; every secret `scope` holds is redacted from the answer.
    pub(crate) async fn egress(
        &self,
        scope: &SecretScope,
        req: HttpRequest,
        credentials: Vec<Credential>,
    ) -> Result<Response, WitEgressError> {
        // Refuse a request that may not go out before any secret is opened.
        let url = self.grants.check(&req.url)?;
        if !credentials.is_empty() && !self.grants.carries_credentials(&url) {
            let host = url.host_str().unwrap_or_default().to_string();
            return Err(EgressError::CredentialNotAllowed(host).into());
        }
        let auth = self.auth(scope, credentials)?;
        let secrets = scope.all(self.services.secrets.as_ref());
        let request = Request {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        self.services
            .egress
            .send(&self.grants, request, &auth, &secrets)
            .await
            .map_err(|e| {
                tracing::debug!(plugin = %self.label, error = %e, "egress refused or failed");
                WitEgressError::from(e)
            })
    }
}

impl Host for CallState {
    async fn send(
        &mut self,
        req: HttpRequest,
        credentials: Vec<Credential>,
    ) -> Result<HttpResponse, WitEgressError> {
        // Waiting here is not guest time: the call's future is not being polled meanwhile.
        let resp = self.plugin.egress(&self.scope, req, credentials).await?;
        Ok(HttpResponse {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        })
    }
}
