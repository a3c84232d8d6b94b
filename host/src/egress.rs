//! Egress: the host's only HTTP client for plugin traffic.
//!
//! It enforces the allow-list (a plugin reaches only hosts it declared and the operator granted),
//! adds credentials the plugin never sees, refuses redirects (they would leave the allow-list),
//! caps response sizes, and replaces every secret it holds for the call with `[redacted]` before a
//! response goes back to a plugin.

use std::time::Duration;

use crate::vault::Secret;

/// What replaces a secret found in a provider's response.
pub const REDACTED: &[u8] = b"[redacted]";

/// Request headers a plugin may not set: the host owns authentication and framing.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "cookie",
];

/// An outgoing request.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers (reserved ones are dropped).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A provider's response, after redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The credential the host adds to a request.
#[derive(Debug)]
pub enum Auth {
    /// No credential.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name (e.g. Twilio Account SID).
        user: String,
        /// Password (e.g. Twilio auth token).
        password: Secret,
    },
}

/// Where a plugin may connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Host names reachable over HTTPS on port 443.
    pub https_hosts: Vec<String>,
    /// Exact origins (`scheme://host:port`) the operator configured, e.g. a provider base URL.
    pub origins: Vec<String>,
}

impl Grants {
    /// Check a URL against the grants; return the parsed URL when allowed.
    pub fn check(&self, raw: &str) -> Result<url::Url, EgressError> {
        let url = url::Url::parse(raw).map_err(|e| EgressError::InvalidUrl(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| EgressError::InvalidUrl("URL has no host".into()))?
            .to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::InvalidUrl(
                "URL must not carry credentials".into(),
            ));
        }
        let origin = url.origin().ascii_serialization();
        let by_origin = self
            .origins
            .iter()
            .any(|o| o.trim_end_matches('/') == origin);
        let by_host = url.scheme() == "https"
            && url.port_or_known_default() == Some(443)
            && self.https_hosts.contains(&host);
        if by_origin || by_host {
            Ok(url)
        } else if url.scheme() != "https" && self.https_hosts.contains(&host) {
            Err(EgressError::InvalidUrl(format!(
                "{host} is allowed over https only"
            )))
        } else {
            Err(EgressError::HostNotAllowed(host))
        }
    }
}

/// Why egress did not deliver a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Not on the allow-list.
    #[error("host {0} is not allowed")]
    HostNotAllowed(String),
    /// Not a usable URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// Response larger than the cap.
    #[error("response larger than the host allows")]
    ResponseTooLarge,
    /// Connection-level failure.
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
}

/// The shared egress client.
#[derive(Debug, Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl EgressClient {
    /// A client with a per-request timeout and a response size cap.
    pub fn new(timeout: Duration, max_response_bytes: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            max_response_bytes,
        })
    }

    /// Send `req` if the grants allow it, with `auth` added, and redact `secrets` from the answer.
    pub async fn send(
        &self,
        grants: &Grants,
        req: Request,
        auth: Auth,
        secrets: &[Secret],
    ) -> Result<Response, EgressError> {
        let url = grants.check(&req.url)?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| EgressError::InvalidUrl(format!("bad method {:?}", req.method)))?;
        let mut builder = self.client.request(method, url);
        for (name, value) in &req.headers {
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match &auth {
            Auth::None => builder,
            Auth::Bearer(token) => {
                let mut value = b"Bearer ".to_vec();
                value.extend_from_slice(token.expose());
                builder.header(reqwest::header::AUTHORIZATION, sensitive(&value)?)
            }
            Auth::Basic { user, password } => {
                use base64::Engine as _;
                let mut pair = format!("{user}:").into_bytes();
                pair.extend_from_slice(password.expose());
                let mut value = b"Basic ".to_vec();
                value.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(&pair)
                        .as_bytes(),
                );
                zeroize::Zeroize::zeroize(&mut pair);
                builder.header(reqwest::header::AUTHORIZATION, sensitive(&value)?)
            }
        };
        let mut resp = builder.body(req.body).send().await.map_err(classify)?;
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(EgressError::ResponseTooLarge);
        }
        let status = resp.status().as_u16();
        let mut headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(EgressError::ResponseTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        for secret in secrets {
            redact(&mut body, secret.expose());
            for (_, value) in headers.iter_mut() {
                let mut bytes = std::mem::take(value).into_bytes();
                redact(&mut bytes, secret.expose());
                *value = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn sensitive(value: &[u8]) -> Result<reqwest::header::HeaderValue, EgressError> {
    let mut header = reqwest::header::HeaderValue::from_bytes(value)
        .map_err(|_| EgressError::InvalidUrl("credential is not a valid header value".into()))?;
    header.set_sensitive(true);
    Ok(header)
}

fn classify(e: reqwest::Error) -> EgressError {
    if e.is_timeout() {
        EgressError::Timeout
    } else {
        // Without the URL: it is the plugin's own, but keep messages short and uniform.
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        EgressError::ConnectionFailed(text)
    }
}

/// Replace every occurrence of `secret` in `bytes` with [`REDACTED`].
pub fn redact(bytes: &mut Vec<u8>, secret: &[u8]) {
    if secret.is_empty() || bytes.len() < secret.len() {
        return;
    }
    let hits: Vec<usize> = memchr::memmem::find_iter(bytes.as_slice(), secret).collect();
    if hits.is_empty() {
        return;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut last = 0;
    for at in hits {
        if at < last {
            continue; // overlapping match inside one already replaced
        }
        out.extend_from_slice(&bytes[last..at]);
        out.extend_from_slice(REDACTED);
        last = at + secret.len();
    }
    out.extend_from_slice(&bytes[last..]);
    zeroize::Zeroize::zeroize(bytes);
    *bytes = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants {
            https_hosts: vec!["graph.facebook.com".into()],
            origins: vec!["http://127.0.0.1:4010".into()],
        }
    }

    #[test]
    fn declared_hosts_pass_over_https_only() {
        let g = grants();
        assert!(
            g.check("https://graph.facebook.com/v26.0/123/messages")
                .is_ok()
        );
        assert!(matches!(
            g.check("http://graph.facebook.com/v26.0"),
            Err(EgressError::InvalidUrl(_))
        ));
        assert_eq!(
            g.check("https://graph.facebook.com:8443/x").err(),
            Some(EgressError::HostNotAllowed("graph.facebook.com".into()))
        );
        assert_eq!(
            g.check("https://evil.example/steal").err(),
            Some(EgressError::HostNotAllowed("evil.example".into()))
        );
        assert!(matches!(
            g.check("https://user:pw@graph.facebook.com/"),
            Err(EgressError::InvalidUrl(_))
        ));
    }

    #[test]
    fn configured_origins_match_exactly() {
        let g = grants();
        assert!(g.check("http://127.0.0.1:4010/2010-04-01/Accounts").is_ok());
        assert_eq!(
            g.check("http://127.0.0.1:4011/").err(),
            Some(EgressError::HostNotAllowed("127.0.0.1".into()))
        );
        assert_eq!(
            g.check("https://127.0.0.1:4010/").err(),
            Some(EgressError::HostNotAllowed("127.0.0.1".into()))
        );
    }

    #[test]
    fn redaction_replaces_every_occurrence() {
        let mut body = br#"{"auth_token":"s3cr3t","again":"xs3cr3ts3cr3t"}"#.to_vec();
        redact(&mut body, b"s3cr3t");
        assert_eq!(
            body,
            br#"{"auth_token":"[redacted]","again":"x[redacted][redacted]"}"#
        );
        let mut untouched = b"nothing here".to_vec();
        redact(&mut untouched, b"");
        redact(&mut untouched, b"s3cr3t");
        assert_eq!(untouched, b"nothing here");
    }
}
