//! Egress: the host's only HTTP client for plugin traffic.
//!
//! It enforces the allow-list (a plugin reaches only hosts it declared and the operator granted),
//! connects only to public addresses unless the operator configured the exact origin
//! ([`address`]), adds credentials the plugin never sees and only for the provider's API origin,
//! follows a few redirects to allow-listed hosts without credentials, ignores proxy settings in
//! the environment, caps response sizes, and replaces every secret it holds for the call with
//! `[redacted]` before a response goes back to a plugin.
//!
//! It owns no state beyond its HTTP clients; grants and secrets come with each call.

pub mod address;

use std::sync::Arc;
use std::time::Duration;

use crate::vault::Secret;

/// What replaces a secret found in a provider's response.
pub const REDACTED: &[u8] = b"[redacted]";

/// Most redirects followed for one request (Twilio media answers one: API → signed CDN URL).
pub const MAX_REDIRECTS: usize = 3;

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

/// A credential the host adds to a request.
#[derive(Debug)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name (e.g. Twilio Account SID).
        user: String,
        /// Password (e.g. Twilio auth token).
        password: Secret,
    },
    /// A header whose whole value is the secret.
    Header {
        /// Header name.
        name: String,
        /// Its value.
        value: Secret,
    },
    /// The secret in place of `{{name}}`, percent-encoded, where the URL may carry it
    /// (Telegram's `/bot<token>/` path).
    InUrl {
        /// The placeholder's name.
        name: String,
        /// Its value.
        value: Secret,
        /// Where the placeholder must stand.
        place: UrlPlace,
    },
}

/// Where a URL may carry a secret: never anywhere a provider would store or forward it (a
/// message text, a callback URL), only where its manifest declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlPlace {
    /// Once, in the path.
    Path,
    /// As the whole value of this query parameter, once.
    Query(String),
}

/// Where a plugin may connect, and where its credentials may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Host names reachable over HTTPS on port 443, at public addresses only.
    pub https_hosts: Vec<String>,
    /// The provider API's exact origins (`scheme://host:port`, its configured base URL): any
    /// address (the operator chose it), and credentials attach.
    pub origins: Vec<String>,
    /// Further exact origins the operator allowed (`SWITCHYARD_EGRESS_ORIGINS`): any address,
    /// never credentials.
    pub extra_origins: Vec<String>,
    /// Declared hosts (a subset of `https_hosts`) that serve the provider's API and receive
    /// credentials over HTTPS on port 443, e.g. Meta's media host, which requires the token.
    pub credential_hosts: Vec<String>,
}

/// How an allowed URL may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// An origin the operator configured: any address.
    Configured,
    /// A declared host: public addresses only.
    Declared,
}

impl Grants {
    /// Check a URL against the grants; return the parsed URL when allowed.
    pub fn check(&self, raw: &str) -> Result<url::Url, EgressError> {
        let url = url::Url::parse(raw).map_err(|e| EgressError::InvalidUrl(e.to_string()))?;
        self.route(&url)?;
        Ok(url)
    }

    /// True when credentials may be sent to `url`: the provider's API origin only.
    pub fn carries_credentials(&self, url: &url::Url) -> bool {
        let origin = url.origin().ascii_serialization();
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        same_origin_listed(&self.origins, &origin)
            || (url.scheme() == "https"
                && url.port_or_known_default() == Some(443)
                && self.https_hosts.contains(&host)
                && self.credential_hosts.contains(&host))
    }

    fn route(&self, url: &url::Url) -> Result<Reach, EgressError> {
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
        if same_origin_listed(&self.origins, &origin)
            || same_origin_listed(&self.extra_origins, &origin)
        {
            return Ok(Reach::Configured);
        }
        if url.scheme() == "https"
            && url.port_or_known_default() == Some(443)
            && self.https_hosts.contains(&host)
        {
            return Ok(Reach::Declared);
        }
        if url.scheme() != "https" && self.https_hosts.contains(&host) {
            Err(EgressError::InvalidUrl(format!(
                "{host} is allowed over https only"
            )))
        } else {
            Err(EgressError::HostNotAllowed(host))
        }
    }
}

fn same_origin_listed(list: &[String], origin: &str) -> bool {
    list.iter().any(|o| o.trim_end_matches('/') == origin)
}

/// Why egress did not deliver a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Not on the allow-list.
    #[error("host {0} is not allowed")]
    HostNotAllowed(String),
    /// The host is allowed, but resolves (or is) only a non-public address.
    #[error("host {0} resolves only to addresses egress may not reach")]
    AddressNotAllowed(String),
    /// The credential asked for may not go to this URL (it is not the provider's API origin).
    #[error("credentials are only sent to the provider's API origin, not to {0}")]
    CredentialNotAllowed(String),
    /// More redirects than [`MAX_REDIRECTS`].
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
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
    /// For declared hosts: resolves through [`address::PublicOnly`].
    public: reqwest::Client,
    /// For origins the operator configured: the system resolver, any address.
    configured: reqwest::Client,
    max_response_bytes: usize,
}

impl EgressClient {
    /// A client with a per-request timeout and a response size cap.
    pub fn new(timeout: Duration, max_response_bytes: usize) -> anyhow::Result<Self> {
        // Redirects are followed by hand (each hop checked); proxies from the environment
        // (HTTPS_PROXY, ALL_PROXY, ...) are ignored: they would route around the address check
        // and see every credential.
        let builder = || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        };
        Ok(Self {
            public: builder()
                .dns_resolver(Arc::new(address::PublicOnly))
                .build()?,
            configured: builder().build()?,
            max_response_bytes,
        })
    }

    /// Send `req` if the grants allow it, with `auth` added, and redact `secrets` from the answer.
    ///
    /// Redirects to allow-listed URLs are followed (at most [`MAX_REDIRECTS`]), each hop under
    /// the same checks; `auth` goes only to the first request's origin, never across hosts.
    pub async fn send(
        &self,
        grants: &Grants,
        req: Request,
        auth: &[Auth],
        secrets: &[Secret],
    ) -> Result<Response, EgressError> {
        // Judged on the URL as the plugin wrote it: a secret never decides where a request goes.
        let first = grants.check(&req.url)?;
        if !auth.is_empty() && !grants.carries_credentials(&first) {
            return Err(EgressError::CredentialNotAllowed(host_of(&first)));
        }
        let first = with_url_secrets(&req.url, first, auth)?;
        let authorization = authorization(auth)?;
        let mut method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| EgressError::InvalidUrl(format!("bad method {:?}", req.method)))?;
        let mut body = req.body;
        let mut url = first.clone();
        let mut hops = 0;
        let mut resp = loop {
            let reach = grants.route(&url)?;
            let client = match reach {
                Reach::Configured => &self.configured,
                Reach::Declared => {
                    // An IP literal never reaches the resolver: check it here.
                    let literal = match url.host() {
                        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
                        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
                        _ => None,
                    };
                    if literal.is_some_and(|ip| !address::is_public(ip)) {
                        return Err(EgressError::AddressNotAllowed(host_of(&url)));
                    }
                    &self.public
                }
            };
            let mut builder = client.request(method.clone(), url.clone());
            for (name, value) in &req.headers {
                if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    continue;
                }
                builder = builder.header(name.as_str(), value.as_str());
            }
            if url.origin() == first.origin() {
                for (name, value) in &authorization {
                    builder = builder.header(name, value.clone());
                }
            }
            let resp = builder.body(body.clone()).send().await.map_err(classify)?;
            let status = resp.status();
            let location = match status.as_u16() {
                301 | 302 | 303 | 307 | 308 => resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                _ => None,
            };
            let Some(location) = location else {
                break resp;
            };
            if hops == MAX_REDIRECTS {
                return Err(EgressError::TooManyRedirects);
            }
            hops += 1;
            let next = url
                .join(&location)
                .map_err(|e| EgressError::InvalidUrl(format!("redirect target: {e}")))?;
            // A provider copying the path into `Location` would hand a URL-borne secret on.
            if next.origin() != first.origin()
                && auth.iter().any(|a| matches!(a, Auth::InUrl { .. }))
            {
                return Err(EgressError::InvalidUrl(
                    "a request with a secret in its URL does not follow redirects to another origin"
                        .into(),
                ));
            }
            // 303 always, and 301/302 after a POST, become a GET without a body (RFC 9110 15.4).
            let to_get = status.as_u16() == 303
                || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST);
            if to_get && method != reqwest::Method::HEAD {
                method = reqwest::Method::GET;
                body = Vec::new();
            }
            url = next;
        };
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
        for form in redacted_forms(secrets) {
            redact(&mut body, &form);
            for (_, value) in headers.iter_mut() {
                let mut bytes = std::mem::take(value).into_bytes();
                redact(&mut bytes, &form);
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

fn host_of(url: &url::Url) -> String {
    url.host_str().unwrap_or_default().to_ascii_lowercase()
}

/// The headers `auth` adds, marked sensitive (never logged by the client).
fn authorization(
    auth: &[Auth],
) -> Result<Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>, EgressError> {
    use reqwest::header::{AUTHORIZATION, HeaderName};
    let mut out = Vec::new();
    for a in auth {
        let mut value = match a {
            Auth::InUrl { .. } => continue,
            Auth::Bearer(token) => {
                let mut value = b"Bearer ".to_vec();
                value.extend_from_slice(token.expose());
                value
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
                value
            }
            Auth::Header { value, .. } => value.expose().to_vec(),
        };
        let name = match a {
            Auth::Header { name, .. } => {
                let lower = name.to_ascii_lowercase();
                if lower != "authorization" && RESERVED_HEADERS.contains(&lower.as_str()) {
                    return Err(EgressError::InvalidUrl(format!(
                        "a credential cannot be sent as the {lower} header"
                    )));
                }
                HeaderName::from_bytes(lower.as_bytes()).map_err(|_| {
                    EgressError::InvalidUrl(format!("{name:?} is not a header name"))
                })?
            }
            _ => AUTHORIZATION,
        };
        let header = sensitive(&value);
        zeroize::Zeroize::zeroize(&mut value);
        out.push((name, header?));
    }
    Ok(out)
}

/// `url` with the `{{name}}` of each [`Auth::InUrl`] replaced by its secret, percent-encoded;
/// `checked` is `url` as parsed and allowed. Each placeholder must stand exactly once, where
/// its [`UrlPlace`] says, and the origin may not change.
fn with_url_secrets(url: &str, checked: url::Url, auth: &[Auth]) -> Result<url::Url, EgressError> {
    let mut raw = zeroize::Zeroizing::new(url.to_string());
    let mut any = false;
    for a in auth {
        let Auth::InUrl { name, value, place } = a else {
            continue;
        };
        let placeholder = format!("{{{{{name}}}}}");
        let misplaced = |why: &str| EgressError::InvalidUrl(format!("{placeholder} {why}"));
        if raw.matches(&placeholder).count() != 1 {
            return Err(misplaced("must appear exactly once in the URL"));
        }
        // Judged on the template, where the secret is not yet.
        let path_start = url
            .find("://")
            .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
            .unwrap_or(url.len());
        let query_start = url.find(['?', '#']).unwrap_or(url.len());
        let at = url.find(&placeholder).unwrap_or_default();
        let allowed = match place {
            UrlPlace::Path => at > path_start && at < query_start,
            UrlPlace::Query(param) => {
                let query = url
                    .get(query_start..)
                    .filter(|q| q.starts_with('?'))
                    .map(|q| q[1..].split('#').next().unwrap_or_default())
                    .unwrap_or_default();
                query
                    .split('&')
                    .any(|pair| pair == format!("{param}={placeholder}"))
            }
        };
        if !allowed {
            return Err(misplaced(&match place {
                UrlPlace::Path => "may stand only in the URL's path".to_string(),
                UrlPlace::Query(p) => format!("may stand only as the whole value of `{p}`"),
            }));
        }
        // `.` and `..` segments would move the request elsewhere on the origin.
        if value.expose().iter().all(|b| *b == b'.') {
            return Err(misplaced("has a value the URL cannot carry"));
        }
        let encoded = zeroize::Zeroizing::new(percent_encode(value.expose()));
        *raw = raw.replace(&placeholder, &encoded);
        any = true;
    }
    if !any {
        return Ok(checked);
    }
    let out = url::Url::parse(&raw)
        .map_err(|_| EgressError::InvalidUrl("the URL with its secrets is not valid".into()))?;
    if out.origin() != checked.origin() {
        return Err(EgressError::InvalidUrl(
            "a secret may not change the URL's origin".into(),
        ));
    }
    Ok(out)
}

/// Every form in which a secret may come back in a response: as it is, and percent-encoded
/// as a URL carried it (upper- and lower-case hex, for a provider echoing the URL); longest
/// first, so a short secret inside a longer one cannot leave the longer one half-redacted.
fn redacted_forms(secrets: &[Secret]) -> Vec<zeroize::Zeroizing<Vec<u8>>> {
    let mut forms: Vec<zeroize::Zeroizing<Vec<u8>>> = Vec::new();
    for s in secrets {
        let raw = s.expose().to_vec();
        let upper = percent_encode(&raw).into_bytes();
        let lower = upper
            .iter()
            .map(|b| b.to_ascii_lowercase())
            .collect::<Vec<u8>>();
        for form in [raw, upper, lower] {
            if !form.is_empty() && !forms.iter().any(|f| f.as_slice() == form.as_slice()) {
                forms.push(zeroize::Zeroizing::new(form));
            }
        }
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

/// Percent-encode all but RFC 3986's unreserved characters and `:` (valid in a path segment,
/// and part of Telegram's tokens). Hand-written: `url`'s encoders either keep `/` and `?` or
/// escape `:`, and this is eight lines.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sensitive(value: &[u8]) -> Result<reqwest::header::HeaderValue, EgressError> {
    let mut header = reqwest::header::HeaderValue::from_bytes(value)
        .map_err(|_| EgressError::InvalidUrl("credential is not a valid header value".into()))?;
    header.set_sensitive(true);
    Ok(header)
}

fn classify(e: reqwest::Error) -> EgressError {
    // The resolver's refusal, wherever the client wrapped it (an `io::Error` hides its payload
    // from `source()`, so look inside those too).
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let refused = s.downcast_ref::<address::AddressRefused>().or_else(|| {
            s.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<address::AddressRefused>())
        });
        if let Some(refused) = refused {
            return EgressError::AddressNotAllowed(refused.host.clone());
        }
        source = s.source();
    }
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
            https_hosts: vec!["graph.facebook.com".into(), "cdn.example".into()],
            origins: vec!["http://127.0.0.1:4010".into()],
            extra_origins: vec!["http://127.0.0.1:4020".into()],
            credential_hosts: vec!["graph.facebook.com".into()],
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
    fn credentials_go_to_the_api_origin_and_declared_api_hosts_only() {
        let g = grants();
        let url = |s: &str| url::Url::parse(s).expect("url");
        assert!(g.carries_credentials(&url("https://graph.facebook.com/v26.0/1")));
        assert!(g.carries_credentials(&url("http://127.0.0.1:4010/x")));
        // Allowed, but not the API: a declared CDN host and an extra origin.
        assert!(!g.carries_credentials(&url("https://cdn.example/f")));
        assert!(!g.carries_credentials(&url("http://127.0.0.1:4020/x")));
        assert!(!g.carries_credentials(&url("https://graph.facebook.com:8443/x")));
    }

    #[tokio::test]
    async fn declared_hosts_must_resolve_to_public_addresses() {
        let client = EgressClient::new(Duration::from_secs(5), 1 << 10).expect("client");
        let g = Grants {
            https_hosts: vec!["localhost".into(), "127.0.0.1".into(), "10.1.2.3".into()],
            ..Grants::default()
        };
        for (raw, host) in [
            ("https://localhost/x", "localhost"),
            ("https://127.0.0.1/x", "127.0.0.1"),
            ("https://10.1.2.3/x", "10.1.2.3"),
        ] {
            let req = Request {
                method: "GET".into(),
                url: raw.into(),
                headers: Vec::new(),
                body: Vec::new(),
            };
            assert_eq!(
                client.send(&g, req, &[], &[]).await,
                Err(EgressError::AddressNotAllowed(host.into())),
                "{raw}"
            );
        }
    }

    #[test]
    fn url_secrets_fill_their_placeholders_and_cannot_move_the_request() {
        let secret = |v: &str| Secret::new(v.as_bytes().to_vec());
        let checked = |u: &str| url::Url::parse(u).expect("url");
        let raw = "https://api.telegram.org/bot{{bot_token}}/setWebhook?secret_token={{hook}}";
        let token = |v: &str| Auth::InUrl {
            name: "bot_token".into(),
            value: secret(v),
            place: UrlPlace::Path,
        };
        let auth = [
            token("123:AB/c?d"),
            Auth::InUrl {
                name: "hook".into(),
                value: secret("x y&z"),
                place: UrlPlace::Query("secret_token".into()),
            },
        ];
        let out = with_url_secrets(raw, checked(raw), &auth).expect("filled");
        assert_eq!(
            out.as_str(),
            "https://api.telegram.org/bot123:AB%2Fc%3Fd/setWebhook?secret_token=x%20y%26z"
        );
        // A placeholder the URL lacks is refused, not silently skipped.
        let missing = "https://api.telegram.org/getMe";
        assert!(matches!(
            with_url_secrets(missing, checked(missing), &auth[..1]),
            Err(EgressError::InvalidUrl(_))
        ));
        // Only where the manifest declares it, and once: never in a message text or a callback
        // URL the provider would store or deliver elsewhere.
        for misplaced in [
            "https://api.telegram.org/bot{{bot_token}}/sendMessage?chat_id=1&text={{bot_token}}",
            "https://api.telegram.org/sendMessage?chat_id=1&text={{bot_token}}",
            "https://api.telegram.org/setWebhook?url=https://evil.example/{{bot_token}}",
            "https://api.telegram.org/x#{{bot_token}}",
        ] {
            assert!(
                matches!(
                    with_url_secrets(misplaced, checked(misplaced), &[token("1:A")]),
                    Err(EgressError::InvalidUrl(_))
                ),
                "{misplaced}"
            );
        }
        let hook = |u: &str| {
            with_url_secrets(
                u,
                checked(u),
                &[Auth::InUrl {
                    name: "hook".into(),
                    value: secret("s"),
                    place: UrlPlace::Query("secret_token".into()),
                }],
            )
        };
        assert!(hook("https://api.telegram.org/x?text={{hook}}").is_err());
        assert!(hook("https://api.telegram.org/x?secret_token=a{{hook}}").is_err());
        assert!(hook("https://api.telegram.org/x?a=1&secret_token={{hook}}").is_ok());
        // A secret in the authority cannot change the origin the grants judged.
        let sneaky = "https://{{bot_token}}@api.telegram.org/x";
        assert!(with_url_secrets(sneaky, checked(sneaky), &[token("evil.example")]).is_err());
        // Dot segments would move the request elsewhere on the origin.
        let dots = "https://api.telegram.org/a/{{bot_token}}/b";
        assert!(with_url_secrets(dots, checked(dots), &[token("..")]).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_every_form_a_url_gave_them_longest_first() {
        let secrets = [
            Secret::new(b"12".to_vec()),
            Secret::new(b"ab+c/12==".to_vec()),
        ];
        let mut body = b"echo /x/ab%2Bc%2F12%3D%3D and ab%2bc%2f12%3d%3d and ab+c/12==".to_vec();
        for form in redacted_forms(&secrets) {
            redact(&mut body, &form);
        }
        assert_eq!(
            String::from_utf8_lossy(&body),
            "echo /x/[redacted] and [redacted] and [redacted]"
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
