//! Webhook authenticity: `X-Twilio-Signature`, as Twilio's own request validators check it.
//!
//! The signed string is the full URL Twilio called (query string included) followed by every
//! POST parameter sorted by name, each name then its value; a repeated name's values are sorted
//! and de-duplicated. The signature is the base64 HMAC-SHA1 of it keyed by the account's auth
//! token, computed and compared in the host ([`SecretCheck`]). Because Twilio is inconsistent
//! about ports, the URL is tried as given, with the default port added when it has none, and
//! with its port removed. JSON-bodied callbacks carry `bodySHA256=<hex SHA-256 of the body>` in
//! the URL instead of form parameters: the body must hash to it, then the URL alone is signed.
//!
//! When every accepted form fails, a few other forms of the URL are checked for diagnosis only
//! ([`diagnosis_variants`]): the other scheme, the `Host` and `X-Forwarded-Host` hosts,
//! `X-Forwarded-Proto`'s scheme, with and without ports. A match is still refused; its reason
//! names the scheme, host and port Twilio signed, which the operator's `SWITCHYARD_PUBLIC_URL`
//! should say. Only a request signed with the auth token can match, so no one else learns more
//! than "signature mismatch".

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
    let tried = url_variants(&req.url);
    for url in &tried {
        let message = format!("{url}{suffix}");
        match secrets.hmac_sha1_equals(AUTH_TOKEN, message.as_bytes(), &expected) {
            Ok(true) => return accepted(),
            Ok(false) => {}
            Err(_) => return reject(403, "auth token not configured"),
        }
    }
    // Diagnosis only: a match here is still refused, with a reason that says what matched.
    for variant in diagnosis_variants(&req.url, &req.headers, &tried) {
        let message = format!("{}{suffix}", variant.url);
        match secrets.hmac_sha1_equals(AUTH_TOKEN, message.as_bytes(), &expected) {
            Ok(true) => return reject(403, &mismatch_reason(&variant.origin, &req.url)),
            Ok(false) => {}
            Err(_) => break,
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
    let Some(parts) = UrlParts::of(url) else {
        return out;
    };
    let other = match parts.port {
        Some(_) => parts.with(parts.scheme, parts.host, None),
        None => match default_port(parts.scheme) {
            Some(port) => parts.with(parts.scheme, parts.host, Some(port)),
            None => return out,
        },
    };
    if other != url {
        out.push(other);
    }
    out
}

/// Most extra HMAC checks a refused request costs for its diagnosis.
pub const MAX_DIAGNOSIS_CHECKS: usize = 12;

/// Longest reason the host keeps (it truncates the rest).
const REASON_MAX: usize = 200;

/// A URL checked for diagnosis only, and its `scheme://host[:port]` (what a reason may show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The URL as it would have been signed.
    pub url: String,
    /// Its scheme, host and port, without credentials, path or query.
    pub origin: String,
}

/// The other forms of `url` Twilio may have signed when the public URL is wrong or a proxy
/// changed the request: the other scheme, the host of `Host` and of `X-Forwarded-Host` (first
/// value, when a valid `host[:port]`), the scheme of `X-Forwarded-Proto` (`http`/`https`), each
/// with and without a port (the scheme's default, `X-Forwarded-Port` when numeric). Distinct,
/// none of `tried`, most likely first, at most [`MAX_DIAGNOSIS_CHECKS`]. Never to be accepted.
pub fn diagnosis_variants(
    url: &str,
    headers: &[(String, String)],
    tried: &[String],
) -> Vec<Diagnosis> {
    let Some(parts) = UrlParts::of(url) else {
        return Vec::new();
    };
    let Some(swapped) = other_scheme(parts.scheme) else {
        return Vec::new();
    };
    let forwarded_scheme = first_value(headers, "x-forwarded-proto")
        .and_then(|v| {
            ["http", "https"]
                .into_iter()
                .find(|s| v.eq_ignore_ascii_case(s))
        })
        .unwrap_or(parts.scheme);
    let forwarded_other = other_scheme(forwarded_scheme).unwrap_or(swapped);
    let forwarded_port = first_value(headers, "x-forwarded-port").filter(|p| valid_port(p));
    let forwarded_host = first_value(headers, "x-forwarded-host").and_then(authority);
    let host_header = first_value(headers, "host").and_then(authority);
    let own = Some((parts.host, parts.port));
    // Most likely first: the proxy's view of the request, then the other scheme of the public
    // URL, then the rest.
    let pairs = [
        (forwarded_scheme, forwarded_host),
        (forwarded_scheme, host_header),
        (swapped, own),
        (forwarded_other, forwarded_host),
        (forwarded_other, host_header),
        (parts.scheme, own),
    ];
    let mut out: Vec<Diagnosis> = Vec::new();
    for (scheme, hostport) in pairs {
        let Some((host, port)) = hostport else {
            continue;
        };
        let ports = [port, None, default_port(scheme), forwarded_port];
        for port in ports {
            let candidate = Diagnosis {
                url: parts.with(scheme, host, port),
                origin: origin(scheme, host, port),
            };
            if tried.contains(&candidate.url) || out.iter().any(|d| d.url == candidate.url) {
                continue;
            }
            out.push(candidate);
            if out.len() >= MAX_DIAGNOSIS_CHECKS {
                return out;
            }
        }
    }
    out
}

/// The refusal's reason when the signature matches `matched` (an origin) rather than `url`:
/// the useful part first and at most [`REASON_MAX`] characters when the hosts allow it. Never
/// a path or query (a query may carry a token).
fn mismatch_reason(matched: &str, url: &str) -> String {
    let public = UrlParts::of(url).map(|p| origin(p.scheme, p.host, p.port));
    let fix = format!("set SWITCHYARD_PUBLIC_URL to {matched}");
    let forms = [
        public.map(|p| format!("signature matches {matched}, not the public URL {p}: {fix}")),
        Some(format!(
            "signature matches {matched}: set SWITCHYARD_PUBLIC_URL to it"
        )),
    ];
    forms
        .into_iter()
        .flatten()
        .find(|r| r.chars().count() <= REASON_MAX)
        .unwrap_or_else(|| format!("signature matches {matched}"))
}

/// A URL cut where the validators change it: `scheme://userinfo@host:port` then the rest.
struct UrlParts<'a> {
    scheme: &'a str,
    /// Credentials with their `@`, or empty.
    userinfo: &'a str,
    /// The host, with an IPv6 literal's brackets.
    host: &'a str,
    /// The digits after the port's `:`, when there is one.
    port: Option<&'a str>,
    /// Path, query and fragment.
    tail: &'a str,
}

impl<'a> UrlParts<'a> {
    /// The parts of an absolute URL; `None` without a `://`.
    fn of(url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at_checked(end)?;
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => authority.split_at_checked(i + 1)?,
            None => ("", authority),
        };
        // A port is what follows the last ':' that is not inside an IPv6 literal.
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (hostport, None),
        };
        Some(Self {
            scheme,
            userinfo,
            host,
            port,
            tail,
        })
    }

    /// This URL with another scheme, host and port (credentials and the rest kept).
    fn with(&self, scheme: &str, host: &str, port: Option<&str>) -> String {
        format!(
            "{scheme}://{}{}{}",
            self.userinfo,
            hostport(host, port),
            self.tail
        )
    }
}

/// `host` or `host:port`.
fn hostport(host: &str, port: Option<&str>) -> String {
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// `scheme://host[:port]`.
fn origin(scheme: &str, host: &str, port: Option<&str>) -> String {
    format!("{scheme}://{}", hostport(host, port))
}

/// The scheme's default port.
fn default_port(scheme: &str) -> Option<&'static str> {
    if scheme.eq_ignore_ascii_case("https") {
        Some("443")
    } else if scheme.eq_ignore_ascii_case("http") {
        Some("80")
    } else {
        None
    }
}

/// `http` for https, `https` for http.
fn other_scheme(scheme: &str) -> Option<&'static str> {
    if scheme.eq_ignore_ascii_case("https") {
        Some("http")
    } else if scheme.eq_ignore_ascii_case("http") {
        Some("https")
    } else {
        None
    }
}

/// The first comma-separated value of the first header called `name`, trimmed.
fn first_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    let (_, value) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// A `host[:port]` from a header, checked strictly (the header is the caller's to write): a
/// DNS name or IPv4 address (letters, digits, `-` and `.`), or a bracketed IPv6 literal, and a
/// port of 1 to 65535 without leading zeros.
fn authority(value: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if value.starts_with('[') {
        let close = value.find(']')?;
        let (host, rest) = value.split_at_checked(close + 1)?;
        let literal = host.strip_prefix('[')?.strip_suffix(']')?;
        let valid = literal.contains(':')
            && literal
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !valid {
            return None;
        }
        match rest {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        };
        if !valid_hostname(host) {
            return None;
        }
        (host, port)
    };
    if port.is_some_and(|p| !valid_port(p)) {
        return None;
    }
    Some((host, port))
}

/// Letters, digits and inner `-` in labels of 1 to 63 characters, at most 253 in all.
fn valid_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A TCP port: 1 to 65535, digits only, no leading zero.
fn valid_port(port: &str) -> bool {
    !port.starts_with('0')
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
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

    /// [`Token`], counting the HMAC checks.
    struct Counted {
        token: Token,
        calls: std::cell::Cell<usize>,
    }

    impl Counted {
        fn new() -> Self {
            Self {
                token: TOKEN,
                calls: std::cell::Cell::new(0),
            }
        }
    }

    impl SecretCheck for Counted {
        fn hmac_sha1_equals(
            &self,
            name: &str,
            message: &[u8],
            expected: &[u8],
        ) -> Result<bool, SecretError> {
            self.calls.set(self.calls.get() + 1);
            self.token.hmac_sha1_equals(name, message, expected)
        }
    }

    /// Twilio's signature of a form `body` posted to `url`, under [`TOKEN`].
    fn sign(url: &str, body: &str) -> String {
        let mut mac =
            hmac::Hmac::<sha1::Sha1>::new_from_slice(TOKEN.0.as_bytes()).expect("any key length");
        mac.update(format!("{url}{}", signed_params(&form::pairs(body))).as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// A POST to `url` signed for `signed_for`, with extra headers.
    fn posted(url: &str, signed_for: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let sig = sign(signed_for, PARAMS);
        let mut req = post(url, PARAMS, Some(&sig));
        req.headers
            .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        req
    }

    fn reason(v: &Verdict) -> &str {
        match v {
            Verdict::Reject(r) => {
                assert_eq!(r.status, 403, "{v:?}");
                &r.reason
            }
            _ => panic!("accepted: {v:?}"),
        }
    }

    const PUBLIC: &str = "https://switchyard.example.com/hooks/end_1?token=s3cr3t";

    #[test]
    fn a_signature_over_the_other_scheme_is_refused_and_named() {
        let http = PUBLIC.replace("https://", "http://");
        let v = verify(&posted(PUBLIC, &http, &[]), &TOKEN);
        let r = reason(&v);
        assert_eq!(
            r,
            "signature matches http://switchyard.example.com, not the public URL \
             https://switchyard.example.com: set SWITCHYARD_PUBLIC_URL to \
             http://switchyard.example.com"
        );
        assert!(!r.contains("s3cr3t") && !r.contains("token"), "{r}");
        assert!(r.chars().count() <= 200);
        // With the default port written out too.
        let v = verify(
            &posted(
                PUBLIC,
                "http://switchyard.example.com:80/hooks/end_1?token=s3cr3t",
                &[],
            ),
            &TOKEN,
        );
        assert!(reason(&v).starts_with("signature matches http://switchyard.example.com:80,"));
        // The other way round: a public URL on http, Twilio calling https.
        let v = verify(&posted(&http, PUBLIC, &[]), &TOKEN);
        assert!(
            reason(&v).starts_with(
                "signature matches https://switchyard.example.com, not the public URL http://"
            ),
            "{v:?}"
        );
    }

    #[test]
    fn a_signature_over_the_forwarded_host_is_named() {
        let public = "http://switchyard:8080/hooks/end_1";
        let forwarded = [
            ("host", "switchyard:8080"),
            ("x-forwarded-host", "hooks.example.com, proxy.internal"),
            ("x-forwarded-proto", "https"),
        ];
        let v = verify(
            &posted(public, "https://hooks.example.com/hooks/end_1", &forwarded),
            &TOKEN,
        );
        assert_eq!(
            reason(&v),
            "signature matches https://hooks.example.com, not the public URL \
             http://switchyard:8080: set SWITCHYARD_PUBLIC_URL to https://hooks.example.com"
        );
        // X-Forwarded-Port, and a port in X-Forwarded-Host.
        let mut with_port = forwarded.to_vec();
        with_port.push(("x-forwarded-port", "8443"));
        let v = verify(
            &posted(
                public,
                "https://hooks.example.com:8443/hooks/end_1",
                &with_port,
            ),
            &TOKEN,
        );
        assert!(reason(&v).starts_with("signature matches https://hooks.example.com:8443,"));
        let v = verify(
            &posted(
                public,
                "http://hooks.example.com:8081/hooks/end_1",
                &[("x-forwarded-host", "hooks.example.com:8081")],
            ),
            &TOKEN,
        );
        assert!(reason(&v).starts_with("signature matches http://hooks.example.com:8081,"));
        // The Host header alone (no proxy, a wrong SWITCHYARD_PUBLIC_URL), and an IPv6 literal.
        let v = verify(
            &posted(
                PUBLIC,
                "https://hooks.example.com/hooks/end_1?token=s3cr3t",
                &[("Host", "hooks.example.com")],
            ),
            &TOKEN,
        );
        assert!(reason(&v).starts_with("signature matches https://hooks.example.com, not the public URL https://switchyard.example.com:"));
        let v = verify(
            &posted(
                PUBLIC,
                "https://[2001:db8::1]:8443/hooks/end_1?token=s3cr3t",
                &[("x-forwarded-host", "[2001:db8::1]:8443")],
            ),
            &TOKEN,
        );
        assert!(reason(&v).starts_with("signature matches https://[2001:db8::1]:8443,"));
    }

    #[test]
    fn a_bogus_forwarded_host_or_proto_is_ignored() {
        for bogus in [
            "hooks example.com",
            "user@hooks.example.com",
            "hooks.example.com/evil",
            "hooks.example.com?x=1",
            "hooks.example.com#x",
            "hooks.example.com:99999",
            "hooks.example.com:0",
            "hooks.example.com:080",
            "hooks.example.com:80x",
            "hooks.example.com:",
            "-hooks.example.com",
            "hooks..example.com",
            "hooks_1.example.com",
            "h\u{f6}oks.example.com",
            "[zz::1]",
            "[2001:db8::1]x",
            "[2001:db8::1",
            "",
        ] {
            assert_eq!(authority(bogus), None, "{bogus:?}");
            let headers = [("x-forwarded-host", bogus), ("host", bogus)];
            let signed = format!("https://{bogus}/hooks/end_1?token=s3cr3t");
            let req = posted(PUBLIC, &signed, &headers);
            let variants = diagnosis_variants(&req.url, &req.headers, &url_variants(PUBLIC));
            assert!(
                variants
                    .iter()
                    .all(|d| d.origin.contains("switchyard.example.com")),
                "{bogus:?}: {variants:?}"
            );
            assert_eq!(
                reason(&verify(&req, &TOKEN)),
                "signature mismatch",
                "{bogus:?}"
            );
        }
        // Only http and https from X-Forwarded-Proto, only a port from X-Forwarded-Port.
        let req = posted(
            PUBLIC,
            "ftp://switchyard.example.com:21x/hooks/end_1?token=s3cr3t",
            &[("x-forwarded-proto", "ftp"), ("x-forwarded-port", "21x")],
        );
        assert_eq!(reason(&verify(&req, &TOKEN)), "signature mismatch");
        assert_eq!(
            authority("hooks.example.com:8443"),
            Some(("hooks.example.com", Some("8443")))
        );
        assert_eq!(authority("[::1]"), Some(("[::1]", None)));
        assert_eq!(
            authority("192.0.2.1:65535"),
            Some(("192.0.2.1", Some("65535")))
        );
    }

    #[test]
    fn a_signature_that_matches_nothing_keeps_the_plain_reason() {
        let headers = [
            ("host", "internal:8080"),
            ("x-forwarded-host", "hooks.example.com"),
            ("x-forwarded-proto", "http"),
        ];
        let mut req = posted(
            PUBLIC,
            "https://elsewhere.example.com/hooks/end_1",
            &headers,
        );
        assert_eq!(reason(&verify(&req, &TOKEN)), "signature mismatch");
        req.headers.retain(|(k, _)| k != SIGNATURE_HEADER);
        req.headers.push((SIGNATURE_HEADER.into(), EXPECTED.into()));
        assert_eq!(reason(&verify(&req, &Token("12346"))), "signature mismatch");
    }

    #[test]
    fn diagnosis_checks_are_capped_and_a_valid_request_costs_none() {
        let headers = [
            ("host", "internal:8080"),
            ("x-forwarded-host", "hooks.example.com:8443"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-port", "9443"),
        ];
        let req = posted(PUBLIC, "https://elsewhere.example.com/", &headers);
        let tried = url_variants(PUBLIC);
        let variants = diagnosis_variants(&req.url, &req.headers, &tried);
        assert_eq!(variants.len(), MAX_DIAGNOSIS_CHECKS, "{variants:?}");
        assert!(variants.iter().all(|d| !tried.contains(&d.url)));
        let check = Counted::new();
        assert_eq!(reason(&verify(&req, &check)), "signature mismatch");
        assert_eq!(check.calls.get(), tried.len() + MAX_DIAGNOSIS_CHECKS);
        // The proxy's view comes first.
        assert_eq!(
            variants.first().map(|d| d.url.as_str()),
            Some("http://hooks.example.com:8443/hooks/end_1?token=s3cr3t")
        );

        // A request that verifies: one check, whatever the headers say.
        let check = Counted::new();
        let mut ok = post(URI, PARAMS, Some(EXPECTED));
        ok.headers
            .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert!(accepts(&verify(&ok, &check)));
        assert_eq!(check.calls.get(), 1);
        // Nor does a refusal before the signature is checked.
        let check = Counted::new();
        let mut unsigned = ok.clone();
        unsigned.headers.retain(|(k, _)| k != SIGNATURE_HEADER);
        assert_eq!(rejected(&verify(&unsigned, &check)), Some(401));
        assert_eq!(check.calls.get(), 0);
    }

    #[test]
    fn the_reason_puts_the_useful_part_first_within_200_characters() {
        let label = "a".repeat(60);
        let medium = format!("https://{label}.{label}.example");
        let r = mismatch_reason(&medium, "https://switchyard.example.com/hooks/end_1");
        assert_eq!(
            r,
            format!("signature matches {medium}: set SWITCHYARD_PUBLIC_URL to it")
        );
        assert!(r.chars().count() <= 200);
        let long = format!("https://{label}.{label}.{label}.example");
        let r = mismatch_reason(&long, "https://switchyard.example.com/hooks/end_1");
        assert_eq!(r, format!("signature matches {long}"));
    }
}
