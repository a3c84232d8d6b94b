//! Requests to a provider's API through the host's egress.
//!
//! ```ignore
//! let resp = Request::post(format!("{}/v1/messages", conn.api_base_url))
//!     .json(&serde_json::json!({"to": to, "text": text}))
//!     .credential(Credential::Bearer("api_key".into()))
//!     .send()?;                       // Err: the host could not deliver it (classified)
//! let sent: Sent = resp.json()?;      // Err: the provider refused it (classified by status)
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::{from_egress, kind_of_status, provider_error, retry_after_seconds};
use crate::types::{Credential, ErrorKind, HttpRequest, HttpResponse, ProviderError};

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    req: HttpRequest,
    credentials: Vec<Credential>,
}

impl Request {
    /// A request with this method and absolute URL.
    pub fn new(method: &str, url: impl Into<String>) -> Request {
        Request {
            req: HttpRequest {
                method: method.to_ascii_uppercase(),
                url: url.into(),
                headers: Vec::new(),
                body: Vec::new(),
            },
            credentials: Vec::new(),
        }
    }

    /// A GET.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }

    /// A POST.
    pub fn post(url: impl Into<String>) -> Request {
        Request::new("POST", url)
    }

    /// Add a header (lower-case names are what providers and the host expect).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.req
            .headers
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// A JSON body (and its content type).
    pub fn json(mut self, body: &impl Serialize) -> Request {
        self.req.body = serde_json::to_vec(body).unwrap_or_default();
        self.header("content-type", "application/json")
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, fields: &[(&str, &str)]) -> Request {
        self.req.body = crate::webhook::form_encode(fields).into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// Raw body bytes.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.req.body = body.into();
        self
    }

    /// A secret for the host to add (by the name the manifest declares).
    pub fn credential(mut self, credential: Credential) -> Request {
        self.credentials.push(credential);
        self
    }

    /// The request as it will be sent, and its credentials.
    pub fn parts(&self) -> (&HttpRequest, &[Credential]) {
        (&self.req, &self.credentials)
    }

    /// Send it through the host; an error is the host's refusal or a failed connection,
    /// classified ([`from_egress`]). A provider's error status is a [`Response`], not an error.
    pub fn send(self) -> Result<Response, ProviderError> {
        crate::host::egress(&self.req, &self.credentials)
            .map(Response)
            .map_err(from_egress)
    }
}

/// A provider's answer.
#[derive(Debug, Clone)]
pub struct Response(pub HttpResponse);

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.0.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.0.status)
    }

    /// A header's first value (names are lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.0.body
    }

    /// The body as `T` when the status is 2xx; otherwise the provider's refusal classified by
    /// status ([`kind_of_status`], `Retry-After` kept) with the body as its message. Read the
    /// body yourself first when the provider's error codes say more.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        if !self.is_success() {
            return Err(self.error());
        }
        serde_json::from_slice(&self.0.body).map_err(|e| {
            provider_error(
                ErrorKind::Transient,
                self.0.status.to_string(),
                format!("unreadable answer: {e}"),
            )
        })
    }

    /// This answer as a provider error classified by its status.
    pub fn error(&self) -> ProviderError {
        let text = String::from_utf8_lossy(&self.0.body);
        let mut e = provider_error(
            kind_of_status(self.0.status),
            self.0.status.to_string(),
            text.chars().take(500).collect::<String>(),
        );
        e.retry_after = self.header("retry-after").and_then(retry_after_seconds);
        e
    }
}
