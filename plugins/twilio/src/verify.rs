//! Webhook authenticity: `X-Twilio-Signature`, as Twilio's own request validators check it.
//!
//! The signed string is the full URL Twilio called (query string included) followed by every
//! POST parameter sorted by name, each name then its value; a repeated name's values are sorted
//! and de-duplicated. The signature is the base64 HMAC-SHA1 of it keyed by the account's auth
//! token, computed and compared in the host ([`SecretCheck`]). Because Twilio is inconsistent
//! about ports, the URL is tried as given, with the default port added when it has none, and
//! with its port removed. JSON-bodied callbacks carry `bodySHA256=<hex SHA-256 of the body>` in
//! the URL instead of form parameters: the body must hash to it, then the URL alone is signed.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::form;
use switchyard_sdk::types::SecretError;
use switchyard_sdk::types::{HttpRequest, HttpResponse, Rejection, Verdict};

/// The header Twilio signs webhooks in.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The empty TwiML document: Twilio sends nothing of its own in answer.
pub const EMPTY_TWIML: &str = "<Response/>";

/// The connection secret Twilio signs webhooks with and API calls authenticate with (HTTP
/// Basic, as the Account SID), as the manifest declares it.
pub const AUTH_TOKEN: &str = "auth_token";

/// The host's secret checks, as a trait so the logic can be tested natively.
pub trait SecretCheck {
    /// True when HMAC-SHA1(secret, message) equals `expected` (constant time, in the host).
    fn hmac_sha1_equals(
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

/// Accepted: answer with an empty TwiML response.
fn accepted() -> Verdict {
    Verdict::AcceptWithResponse(HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: EMPTY_TWIML.as_bytes().to_vec(),
    })
}

/// Decide whether a webhook request comes from Twilio.
pub fn verify(req: &HttpRequest, secrets: &impl SecretCheck) -> Verdict {
    if !matches!(req.method.as_str(), "POST" | "GET") {
        return reject(405, "method not allowed");
    }
    let Some((_, header)) = req.headers.iter().find(|(k, _)| k == SIGNATURE_HEADER) else {
        return reject(401, "signature missing");
    };
    let Some(expected) = parse_signature(header) else {
        return reject(403, "signature malformed");
    };
    let body_hash = form::query_of(&req.url).and_then(|q| {
        form::pairs(q)
            .into_iter()
            .find(|(k, _)| k == "bodySHA256")
            .map(|(_, v)| v)
    });
    let params = match (&body_hash, req.method.as_str()) {
        (Some(hash), _) => {
            if !hash.eq_ignore_ascii_case(&body_sha256(&req.body)) {
                return reject(403, "bodySHA256 does not match the body");
            }
            Vec::new()
        }
        // GET webhooks carry their parameters in the URL, which is signed as it is.
        (None, "GET") => Vec::new(),
        (None, _) => form::pairs(&String::from_utf8_lossy(&req.body)),
    };
    let suffix = signed_params(&params);
    for url in url_variants(&req.url) {
        let message = format!("{url}{suffix}");
        match secrets.hmac_sha1_equals(AUTH_TOKEN, message.as_bytes(), &expected) {
            Ok(true) => return accepted(),
            Ok(false) => {}
            Err(_) => return reject(403, "auth token not configured"),
        }
    }
    reject(403, "signature mismatch")
}

/// The 20 digest bytes of a base64 signature header.
pub fn parse_signature(header: &str) -> Option<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()?;
    (bytes.len() == 20).then_some(bytes)
}

/// Lower-case hex SHA-256 of a body (the `bodySHA256` value).
pub fn body_sha256(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The parameters as signed: sorted by name, each name's values sorted and de-duplicated,
/// each written as name then value.
pub fn signed_params(params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.iter().map(|(k, v)| format!("{k}{v}")).collect()
}

/// The URL as given, then with the default port added (when it has none) or removed (when it
/// has one); at most two distinct URLs.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    // A port is digits after the last ':' that is not inside an IPv6 literal.
    let port_at = hostport
        .rfind(':')
        .filter(|&i| !hostport[i..].contains(']'));
    let other = match port_at {
        Some(i) => format!("{scheme}://{userinfo}{}{tail}", &hostport[..i]),
        None => {
            let port = match scheme.to_ascii_lowercase().as_str() {
                "https" => 443,
                "http" => 80,
                _ => return out,
            };
            format!("{scheme}://{userinfo}{hostport}:{port}{tail}")
        }
    };
    if other != url {
        out.push(other);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{KeyInit, Mac};

    /// The host's check with a real HMAC-SHA1 over a known token.
    struct Token(&'static str);

    impl SecretCheck for Token {
        fn hmac_sha1_equals(
            &self,
            name: &str,
            message: &[u8],
            expected: &[u8],
        ) -> Result<bool, SecretError> {
            assert_eq!(name, "auth_token");
            let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(self.0.as_bytes())
                .expect("any key length");
            mac.update(message);
            Ok(mac.verify_slice(expected).is_ok())
        }
    }

    struct Missing;

    impl SecretCheck for Missing {
        fn hmac_sha1_equals(&self, _: &str, _: &[u8], _: &[u8]) -> Result<bool, SecretError> {
            Err(SecretError::NotConfigured)
        }
    }

    // Published test vectors of Twilio's official helper library twilio-python
    // (tests/unit/test_request_validator.py): auth token `12345`.
    const TOKEN: Token = Token("12345");
    const URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const PARAMS: &str = "CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
    const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    const BODY: &str = r#"{"property": "value", "boolean": true}"#;
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    const BODY_SIGNATURE: &str = "a9nBmqA0ju/hNViExpshrM61xv4=";
    const DUPLICATES: &str = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
    const DUPLICATES_EXPECTED: &str = "IK+Dwps556ElfBT0I3Rgjkr1wJU=";

    fn post(url: &str, body: &str, signature: Option<&str>) -> HttpRequest {
        let mut headers = vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        )];
        if let Some(s) = signature {
            headers.push((SIGNATURE_HEADER.into(), s.into()));
        }
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn accepts(v: &Verdict) -> bool {
        match v {
            Verdict::AcceptWithResponse(r) => {
                assert_eq!(r.status, 200);
                assert_eq!(r.body, EMPTY_TWIML.as_bytes());
                assert_eq!(r.headers, [("content-type".into(), "text/xml".into())]);
                true
            }
            _ => false,
        }
    }

    fn rejected(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Reject(r) => Some(r.status),
            _ => None,
        }
    }

    #[test]
    fn twilio_python_vectors_validate() {
        assert!(accepts(&verify(&post(URI, PARAMS, Some(EXPECTED)), &TOKEN)));
        // Parameter order in the body does not matter: they are sorted.
        let reordered = "To=%2B18005551212&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&CallSid=CA1234567890ABCDE";
        assert!(accepts(&verify(
            &post(URI, reordered, Some(EXPECTED)),
            &TOKEN
        )));
        // Repeated keys: values sorted, duplicates removed.
        assert!(accepts(&verify(
            &post(URI, DUPLICATES, Some(DUPLICATES_EXPECTED)),
            &TOKEN
        )));
    }

    #[test]
    fn twilio_python_port_vectors() {
        // Removes the port on https: signed without it.
        let with_port = URI.replace(".com", ".com:1234");
        assert!(accepts(&verify(
            &post(&with_port, PARAMS, Some(EXPECTED)),
            &TOKEN
        )));
        // Removes the port on http.
        let http_port = with_port.replace("https", "http");
        let v = verify(
            &post(&http_port, PARAMS, Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")),
            &TOKEN,
        );
        assert!(accepts(&v));
        // Adds 443 on https.
        let v = verify(
            &post(URI, PARAMS, Some("kvajT1Ptam85bY51eRf/AJRuM3w=")),
            &TOKEN,
        );
        assert!(accepts(&v));
        // Adds 80 on http.
        let http = URI.replace("https", "http");
        let v = verify(
            &post(&http, PARAMS, Some("0ZXoZLH/DfblKGATFgpif+LLRf4=")),
            &TOKEN,
        );
        assert!(accepts(&v));
    }

    #[test]
    fn twilio_python_body_sha256_vector() {
        assert_eq!(body_sha256(BODY.as_bytes()), BODY_HASH);
        let url = format!("{URI}&bodySHA256={BODY_HASH}");
        let mut req = post(&url, BODY, Some(BODY_SIGNATURE));
        req.headers[0].1 = "application/json".into();
        assert!(accepts(&verify(&req, &TOKEN)));
        // A body that does not hash to bodySHA256 is refused even with the URL's signature.
        let mut changed = req.clone();
        changed.body = BODY.replace("value", "valuf").into_bytes();
        assert_eq!(rejected(&verify(&changed, &TOKEN)), Some(403));
        // A changed hash in the URL changes the signed URL.
        let other = url.replace("6620", "6621");
        assert_eq!(
            rejected(&verify(&post(&other, BODY, Some(BODY_SIGNATURE)), &TOKEN)),
            Some(403)
        );
    }

    /// Every one-character change (URL, any parameter name or value, the signature, the token)
    /// is rejected.
    #[test]
    fn any_one_character_change_is_rejected() {
        let flip = |s: &str, i: usize| -> Option<String> {
            if !s.is_char_boundary(i) {
                return None;
            }
            let c = s[i..].chars().next()?;
            if matches!(c, '%' | '&' | '=' | '+') {
                return None;
            }
            let replacement = if c == 'x' { 'y' } else { 'x' };
            Some(format!(
                "{}{replacement}{}",
                &s[..i],
                &s[i + c.len_utf8()..]
            ))
        };
        let mut checked = 0;
        for i in 0..URI.len() {
            if let Some(url) = flip(URI, i) {
                // Changing the port separator or scheme may still be a port variant of the same
                // URL only if the result is identical, which a flip never is.
                let v = verify(&post(&url, PARAMS, Some(EXPECTED)), &TOKEN);
                assert_eq!(rejected(&v), Some(403), "url {url}");
                checked += 1;
            }
        }
        for i in 0..PARAMS.len() {
            if let Some(body) = flip(PARAMS, i) {
                let v = verify(&post(URI, &body, Some(EXPECTED)), &TOKEN);
                assert_eq!(rejected(&v), Some(403), "body {body}");
                checked += 1;
            }
        }
        for i in 0..EXPECTED.len() - 1 {
            if let Some(sig) = flip(EXPECTED, i) {
                let v = verify(&post(URI, PARAMS, Some(&sig)), &TOKEN);
                assert_eq!(rejected(&v), Some(403), "signature {sig}");
                checked += 1;
            }
        }
        assert!(checked > 150, "{checked}");
        // An added parameter (Twilio signs every one) and a different token.
        let more = format!("{PARAMS}&Extra=1");
        assert_eq!(
            rejected(&verify(&post(URI, &more, Some(EXPECTED)), &TOKEN)),
            Some(403)
        );
        let v = verify(&post(URI, PARAMS, Some(EXPECTED)), &Token("12346"));
        assert_eq!(rejected(&v), Some(403));
    }

    #[test]
    fn missing_malformed_and_unconfigured() {
        assert_eq!(
            rejected(&verify(&post(URI, PARAMS, None), &TOKEN)),
            Some(401)
        );
        for bad in [
            "",
            "not base64!",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8",
            "AAAA",
            "c2hvcnQ=",
        ] {
            let v = verify(&post(URI, PARAMS, Some(bad)), &TOKEN);
            assert!(
                matches!(&v, Verdict::Reject(r) if r.status == 403 && r.reason == "signature malformed"),
                "{bad:?}: {v:?}"
            );
        }
        let v = verify(&post(URI, PARAMS, Some(EXPECTED)), &Missing);
        assert_eq!(rejected(&v), Some(403));
        let mut put = post(URI, PARAMS, Some(EXPECTED));
        put.method = "PUT".into();
        assert_eq!(rejected(&verify(&put, &TOKEN)), Some(405));
    }

    #[test]
    fn url_variants_follow_the_validators() {
        assert_eq!(
            url_variants("https://a.example/x?p=1"),
            ["https://a.example/x?p=1", "https://a.example:443/x?p=1"]
        );
        assert_eq!(
            url_variants("http://a.example:8080/x"),
            ["http://a.example:8080/x", "http://a.example/x"]
        );
        assert_eq!(
            url_variants("https://a.example"),
            ["https://a.example", "https://a.example:443"]
        );
        assert_eq!(
            url_variants("https://[::1]:8443/h"),
            ["https://[::1]:8443/h", "https://[::1]/h"]
        );
        assert_eq!(url_variants("nonsense"), ["nonsense"]);
    }
}
