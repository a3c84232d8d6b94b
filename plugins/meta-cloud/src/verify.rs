//! Webhook authenticity: the `hub.challenge` handshake and `X-Hub-Signature-256`.
//!
//! The secrets stay in the host: the verify token is compared and the HMAC computed there, in
//! constant time, through [`SecretCheck`].

use switchyard_sdk::types::SecretError;
use switchyard_sdk::types::{HttpRequest, HttpResponse, Rejection, Verdict};

/// The header Meta signs webhook bodies in (`sha256=<hex HMAC-SHA256 of the raw body>`).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The endpoint secret Meta signs webhooks with, as the manifest declares it.
pub const APP_SECRET: &str = "app_secret";

/// The endpoint secret the `hub.verify_token` handshake must match, as the manifest declares it.
pub const VERIFY_TOKEN: &str = "verify_token";

/// The host's secret checks, as a trait so the logic can be tested natively.
pub trait SecretCheck {
    /// True when the named secret equals `candidate` (constant time, in the host).
    fn equals(&self, name: &str, candidate: &str) -> Result<bool, SecretError>;
    /// True when HMAC-SHA256(secret, message) equals `expected` (constant time, in the host).
    fn hmac_sha256_equals(
        &self,
        name: &str,
        message: &[u8],
        expected: &[u8],
    ) -> Result<bool, SecretError>;
}

fn reject(status: u16, reason: &str) -> Verdict {
    Verdict::Reject(Rejection {
        status,
        reason: reason.into(),
    })
}

/// Decide whether a webhook request is authentic, or answer Meta's subscription handshake.
pub fn verify(req: &HttpRequest, secrets: &impl SecretCheck) -> Verdict {
    match req.method.as_str() {
        "GET" => handshake(&req.url, secrets),
        "POST" => signature(req, secrets),
        _ => reject(405, "method not allowed"),
    }
}

/// `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` → the challenge, as text.
fn handshake(url: &str, secrets: &impl SecretCheck) -> Verdict {
    if query(url, "hub.mode").as_deref() != Some("subscribe") {
        return reject(403, "hub.mode is not subscribe");
    }
    let Some(token) = query(url, "hub.verify_token") else {
        return reject(403, "hub.verify_token missing");
    };
    match secrets.equals(VERIFY_TOKEN, &token) {
        Ok(true) => {}
        Ok(false) => return reject(403, "verify token mismatch"),
        Err(_) => return reject(403, "verify token not configured"),
    }
    match query(url, "hub.challenge") {
        Some(challenge) => Verdict::Respond(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: challenge.into_bytes(),
        }),
        None => reject(400, "hub.challenge missing"),
    }
}

/// `POST` with `x-hub-signature-256: sha256=<hex>` over the raw body, keyed with the app secret.
fn signature(req: &HttpRequest, secrets: &impl SecretCheck) -> Verdict {
    let Some((_, header)) = req.headers.iter().find(|(k, _)| k == SIGNATURE_HEADER) else {
        return reject(401, "signature missing");
    };
    let Some(expected) = parse_signature(header) else {
        return reject(403, "signature malformed");
    };
    match secrets.hmac_sha256_equals(APP_SECRET, &req.body, &expected) {
        Ok(true) => Verdict::Accept,
        Ok(false) => reject(403, "signature mismatch"),
        Err(_) => reject(403, "app secret not configured"),
    }
}

/// The 32 digest bytes of a `sha256=<64 hex digits>` header value.
pub fn parse_signature(header: &str) -> Option<Vec<u8>> {
    let header = header.trim();
    let (scheme, hex) = header.split_once('=')?;
    if !scheme.eq_ignore_ascii_case("sha256") || hex.len() != 64 {
        return None;
    }
    unhex(hex)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strict hex decoding: an even number of hex digits, nothing else.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(hex_digit(*hi)? << 4 | hex_digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// Percent-decode a query component (`+` is a space); invalid escapes stay as they are.
pub fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_digit);
                let lo = bytes.get(i + 2).copied().and_then(hex_digit);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded value of the first query parameter called `name` (a bare `name` is empty).
pub fn query(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| decode(k) == name)
        .map(|(_, v)| decode(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets as the host would check them, with plain values and a toy HMAC stand-in.
    struct Fake {
        verify_token: Option<&'static str>,
        app_secret: Option<&'static str>,
        /// The digest the "host" computes for any body.
        digest: [u8; 32],
    }

    impl SecretCheck for Fake {
        fn equals(&self, name: &str, candidate: &str) -> Result<bool, SecretError> {
            assert_eq!(name, "verify_token");
            self.verify_token
                .map(|t| t == candidate)
                .ok_or(SecretError::NotConfigured)
        }
        fn hmac_sha256_equals(
            &self,
            name: &str,
            _message: &[u8],
            expected: &[u8],
        ) -> Result<bool, SecretError> {
            assert_eq!(name, "app_secret");
            self.app_secret
                .map(|_| expected == self.digest)
                .ok_or(SecretError::NotConfigured)
        }
    }

    const FAKE: Fake = Fake {
        verify_token: Some("my verify token"),
        app_secret: Some("s"),
        digest: [0xab; 32],
    };

    fn req(method: &str, url: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: br#"{"object":"whatsapp_business_account"}"#.to_vec(),
        }
    }

    fn status(v: &Verdict) -> u16 {
        match v {
            Verdict::Accept => 200,
            Verdict::AcceptWithResponse(r) | Verdict::Respond(r) => r.status,
            Verdict::Reject(r) => r.status,
        }
    }

    #[test]
    fn handshake_answers_the_challenge_for_the_right_token() {
        let url = "https://hooks.example/hooks/end_1?hub.mode=subscribe&hub.verify_token=my+verify%20token&hub.challenge=1158201444";
        match verify(&req("GET", url, &[]), &FAKE) {
            Verdict::Respond(r) => {
                assert_eq!(r.status, 200);
                assert_eq!(r.body, b"1158201444");
                assert_eq!(r.headers, [("content-type".into(), "text/plain".into())]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn handshake_rejections() {
        let cases = [
            "https://h/x?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
            "https://h/x?hub.mode=unsubscribe&hub.verify_token=my+verify+token&hub.challenge=1",
            "https://h/x?hub.verify_token=my+verify+token&hub.challenge=1",
            "https://h/x?hub.mode=subscribe&hub.challenge=1",
            "https://h/x",
        ];
        for url in cases {
            assert_eq!(status(&verify(&req("GET", url, &[]), &FAKE)), 403, "{url}");
        }
        let no_token = Fake {
            verify_token: None,
            ..FAKE
        };
        let url = "https://h/x?hub.mode=subscribe&hub.verify_token=my+verify+token&hub.challenge=1";
        assert!(matches!(
            verify(&req("GET", url, &[]), &no_token),
            Verdict::Reject(r) if r.status == 403 && r.reason.contains("not configured")
        ));
        let url = "https://h/x?hub.mode=subscribe&hub.verify_token=my+verify+token";
        assert_eq!(status(&verify(&req("GET", url, &[]), &FAKE)), 400);
    }

    #[test]
    fn signatures() {
        let good = format!("sha256={}", "ab".repeat(32));
        let url = "https://h/x";
        let v = verify(&req("POST", url, &[(SIGNATURE_HEADER, &good)]), &FAKE);
        assert!(matches!(v, Verdict::Accept));
        let upper = format!("sha256={}", "AB".repeat(32));
        let v = verify(&req("POST", url, &[(SIGNATURE_HEADER, &upper)]), &FAKE);
        assert!(matches!(v, Verdict::Accept));

        let wrong = format!("sha256={}", "cd".repeat(32));
        let v = verify(&req("POST", url, &[(SIGNATURE_HEADER, &wrong)]), &FAKE);
        assert!(
            matches!(&v, Verdict::Reject(r) if r.status == 403 && r.reason == "signature mismatch")
        );

        let v = verify(
            &req("POST", url, &[("content-type", "application/json")]),
            &FAKE,
        );
        assert!(matches!(&v, Verdict::Reject(r) if r.status == 401));

        for bad in [
            "sha1=abc",
            "sha256=",
            "sha256=zz",
            &format!("sha256={}", "ab".repeat(31)),
            &format!("sha256={}+a", "ab".repeat(31)),
            &format!("sha1={}", "ab".repeat(32)),
            &"ab".repeat(32),
            &format!("sha256={}", "é".repeat(32)),
        ] {
            let v = verify(&req("POST", url, &[(SIGNATURE_HEADER, bad)]), &FAKE);
            assert!(
                matches!(&v, Verdict::Reject(r) if r.status == 403 && r.reason == "signature malformed"),
                "{bad}: {v:?}"
            );
        }

        let no_secret = Fake {
            app_secret: None,
            ..FAKE
        };
        let v = verify(&req("POST", url, &[(SIGNATURE_HEADER, &good)]), &no_secret);
        assert!(matches!(&v, Verdict::Reject(r) if r.status == 403));
    }

    #[test]
    fn other_methods_are_not_allowed() {
        for m in ["PUT", "DELETE", "HEAD", "PATCH", "get"] {
            assert_eq!(status(&verify(&req(m, "https://h/x", &[]), &FAKE)), 405);
        }
    }

    #[test]
    fn query_decoding() {
        assert_eq!(decode("a+b%20c%2Fd"), "a b c/d");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%+1"), "% 1");
        assert_eq!(decode("%C3%A9"), "é");
        assert_eq!(decode("%FF"), "\u{fffd}");
        assert_eq!(
            query("https://h/x?a=1&hub%2Emode=b#frag", "hub.mode").as_deref(),
            Some("b")
        );
        assert_eq!(query("https://h/x?flag&b=2", "flag").as_deref(), Some(""));
        assert_eq!(query("https://h/x?b=2#c=3", "c"), None);
        assert_eq!(query("https://h/x", "b"), None);
    }
}
