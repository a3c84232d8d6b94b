//! A native test harness: in `cargo test`, the host's interfaces are answered by a
//! [`FakeHost`] installed on the test's thread, so a connector's functions run as they would
//! in the host, without one.
//!
//! ```ignore
//! let host = FakeHost::new()
//!     .secret("api_key", "k-123")
//!     .on_json("POST", "https://api.example.com/v1/messages", 200, json!({"id": "m1"}))
//!     .install();
//! assert_eq!(MyConnector::send(conn(), msg()), Ok("m1".into()));
//! let sent = host.requests();
//! assert_eq!(sent[0].credentials, vec![Credential::Bearer("api_key".into())]);
//! ```
//!
//! Secrets are checked for real (constant-time equality, HMAC-SHA256/SHA1 over your bytes).
//! Egress answers from the routes you gave, records every request with its credentials, and
//! refuses as the host does: a credential naming a secret you did not give, an `in-url`
//! credential whose `{{name}}` is not in the URL. It never fills the secret in, so a test can
//! assert that no request carries one.

use std::cell::RefCell;
use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};

use crate::types::{Credential, EgressError, HttpRequest, HttpResponse, Level};

type Responder = Box<dyn Fn(&HttpRequest) -> Result<HttpResponse, EgressError>>;

struct Route {
    method: String,
    url_prefix: String,
    respond: Responder,
}

/// A request a plugin sent through the fake egress.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The request as the plugin built it.
    pub request: HttpRequest,
    /// The credentials it asked the host to add.
    pub credentials: Vec<Credential>,
}

/// A log line a plugin wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// Its message.
    pub message: String,
    /// Its fields.
    pub fields: Vec<(String, String)>,
}

/// The fake host: secrets, provider routes, and what the plugin did.
#[derive(Default)]
pub struct FakeHost {
    secrets: HashMap<String, Vec<u8>>,
    routes: Vec<Route>,
    sent: Vec<Sent>,
    logs: Vec<LogLine>,
}

thread_local! {
    static HOST: RefCell<Option<FakeHost>> = const { RefCell::new(None) };
}

/// Run `f` against the fake installed on this thread.
#[allow(clippy::panic, clippy::expect_used)]
pub(crate) fn with<R>(f: impl FnOnce(&mut FakeHost) -> R) -> R {
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        let host = h.as_mut().unwrap_or_else(|| {
            panic!(
                "a host function was called outside a component with no FakeHost installed: \
                 call switchyard_sdk::testing::FakeHost::new()…install() in the test first"
            )
        });
        f(host)
    })
}

impl FakeHost {
    /// A host with no secrets and no routes.
    pub fn new() -> FakeHost {
        FakeHost::default()
    }

    /// Give the secret `name` (as your manifest declares it) this value.
    pub fn secret(mut self, name: &str, value: &str) -> FakeHost {
        self.secrets
            .insert(name.to_string(), value.as_bytes().to_vec());
        self
    }

    /// Answer requests with `method` whose URL starts with `url_prefix` by `respond`; the first
    /// matching route answers.
    pub fn on(
        mut self,
        method: &str,
        url_prefix: &str,
        respond: impl Fn(&HttpRequest) -> HttpResponse + 'static,
    ) -> FakeHost {
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            url_prefix: url_prefix.to_string(),
            respond: Box::new(move |r| Ok(respond(r))),
        });
        self
    }

    /// Make such requests fail in the host as `error` says (a timeout, a host not granted…).
    pub fn fail(mut self, method: &str, url_prefix: &str, error: EgressError) -> FakeHost {
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            url_prefix: url_prefix.to_string(),
            respond: Box::new(move |_| Err(error.clone())),
        });
        self
    }

    /// Answer such requests with `status` and a JSON body.
    pub fn on_json(
        self,
        method: &str,
        url_prefix: &str,
        status: u16,
        body: serde_json::Value,
    ) -> FakeHost {
        let body = body.to_string().into_bytes();
        self.on(method, url_prefix, move |_| HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.clone(),
        })
    }

    /// Install it on this thread until the returned guard drops (then the one it replaced, if
    /// any, is back).
    #[must_use = "the fake is uninstalled when this guard drops: bind it, e.g. `let host = …`"]
    pub fn install(self) -> Installed {
        let previous = HOST.with(|h| h.borrow_mut().replace(self));
        Installed { previous }
    }

    #[cfg(feature = "connector")]
    pub(crate) fn secret_equals(
        &mut self,
        name: &str,
        candidate: &[u8],
    ) -> Result<bool, crate::types::SecretError> {
        let value = self.lookup(name)?;
        // Constant time is the host's business; equality is what a test needs.
        Ok(value == candidate)
    }

    #[cfg(feature = "connector")]
    pub(crate) fn hmac_equals(
        &mut self,
        name: &str,
        message: &[u8],
        expected: &[u8],
        sha1: bool,
    ) -> Result<bool, crate::types::SecretError> {
        let key = self.lookup(name)?;
        Ok(if sha1 {
            verify::<Hmac<sha1::Sha1>>(&key, message, expected)
        } else {
            verify::<Hmac<sha2::Sha256>>(&key, message, expected)
        })
    }

    #[cfg(feature = "connector")]
    fn lookup(&self, name: &str) -> Result<Vec<u8>, crate::types::SecretError> {
        self.secrets
            .get(name)
            .cloned()
            .ok_or(crate::types::SecretError::NotConfigured)
    }

    pub(crate) fn egress(
        &mut self,
        req: &HttpRequest,
        credentials: &[Credential],
    ) -> Result<HttpResponse, EgressError> {
        self.sent.push(Sent {
            request: req.clone(),
            credentials: credentials.to_vec(),
        });
        for c in credentials {
            let name = match c {
                Credential::Bearer(n) | Credential::InUrl(n) => n,
                Credential::Basic(b) => &b.secret,
                Credential::Header(h) => &h.secret,
            };
            if !self.secrets.contains_key(name) {
                return Err(EgressError::CredentialMissing(name.clone()));
            }
            if let Credential::InUrl(n) = c
                && !req.url.contains(&format!("{{{{{n}}}}}"))
            {
                return Err(EgressError::InvalidUrl(format!(
                    "the URL has no {{{{{n}}}}} for its secret"
                )));
            }
        }
        let route = self
            .routes
            .iter()
            .find(|r| r.method == req.method && req.url.starts_with(&r.url_prefix));
        match route {
            Some(r) => (r.respond)(req),
            None => Err(EgressError::ConnectionFailed(format!(
                "no fake answers {} {}",
                req.method, req.url
            ))),
        }
    }

    pub(crate) fn log(&mut self, level: Level, message: &str, fields: Vec<(String, String)>) {
        self.logs.push(LogLine {
            level,
            message: message.to_string(),
            fields,
        });
    }
}

#[cfg(feature = "connector")]
fn verify<M: Mac + KeyInit>(key: &[u8], message: &[u8], expected: &[u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    mac.verify_slice(expected).is_ok()
}

/// HMAC-SHA256 of `message` under `key`: what a provider would sign, for building test
/// requests.
pub fn hmac_sha256(key: &str, message: &[u8]) -> Vec<u8> {
    match <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The installed fake; uninstalled when dropped.
pub struct Installed {
    previous: Option<FakeHost>,
}

impl Installed {
    /// Every request the plugin sent so far.
    pub fn requests(&self) -> Vec<Sent> {
        with(|h| h.sent.clone())
    }

    /// Every log line the plugin wrote so far.
    pub fn logs(&self) -> Vec<LogLine> {
        with(|h| h.logs.clone())
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        HOST.with(|h| *h.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Request;
    use serde_json::json;

    #[test]
    fn egress_answers_from_routes_and_refuses_as_the_host_does() {
        let host = FakeHost::new()
            .secret("api_key", "k-1")
            .on_json(
                "POST",
                "https://api.example.com/v1/",
                200,
                json!({"id": "m1"}),
            )
            .install();
        let ok = Request::post("https://api.example.com/v1/messages")
            .json(&json!({"to": "1"}))
            .credential(Credential::Bearer("api_key".into()))
            .send()
            .expect("sent");
        assert_eq!(ok.json::<serde_json::Value>().expect("json")["id"], "m1");
        let missing = Request::post("https://api.example.com/v1/messages")
            .credential(Credential::Bearer("nope".into()))
            .send()
            .expect_err("undeclared secret");
        assert!(missing.message.contains("nope"), "{missing:?}");
        let no_placeholder = Request::get("https://api.example.com/v1/me")
            .credential(Credential::InUrl("api_key".into()))
            .send()
            .expect_err("placeholder missing");
        assert!(
            no_placeholder.message.contains("{{api_key}}"),
            "{no_placeholder:?}"
        );
        let unrouted = Request::get("https://other.example/")
            .send()
            .expect_err("no route");
        assert_eq!(unrouted.kind, crate::types::ErrorKind::Transient);
        let sent = host.requests();
        assert_eq!(sent.len(), 4);
        let slow = FakeHost::new()
            .fail("GET", "https://api.example.com/", EgressError::Timeout)
            .install();
        let timed_out = Request::get("https://api.example.com/v1/me")
            .send()
            .expect_err("timeout");
        assert_eq!(timed_out.kind, crate::types::ErrorKind::Transient);
        drop(slow);
        // The earlier fake is back.
        assert_eq!(host.requests().len(), 4);
        assert_eq!(
            sent[0].credentials,
            vec![Credential::Bearer("api_key".into())]
        );
        assert!(!String::from_utf8_lossy(&sent[0].request.body).contains("k-1"));
    }

    #[cfg(feature = "connector")]
    #[test]
    fn secrets_are_checked_for_real() {
        let _host = FakeHost::new().secret("app_secret", "s3").install();
        let tag = hmac_sha256("s3", b"body");
        assert_eq!(
            crate::host::secrets::hmac_sha256_equals("app_secret", b"body", &tag),
            Ok(true)
        );
        assert_eq!(
            crate::host::secrets::hmac_sha256_equals("app_secret", b"bodY", &tag),
            Ok(false)
        );
        assert_eq!(crate::host::secrets::equals("app_secret", "s3"), Ok(true));
        assert_eq!(
            crate::host::secrets::equals("other", "s3"),
            Err(crate::types::SecretError::NotConfigured)
        );
    }
}
