//! Reading a webhook request: headers, form and JSON bodies, query strings, hex signatures,
//! and the verdicts `verify` answers with.

use serde::de::DeserializeOwned;

use crate::types::{HttpRequest, Rejection, Verdict};

/// A header's first value (the host gives names in lower case).
pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The body as JSON.
pub fn json<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, String> {
    serde_json::from_slice(&req.body).map_err(|e| format!("the body is not the expected JSON: {e}"))
}

/// The body as `application/x-www-form-urlencoded` fields, in order.
pub fn form(req: &HttpRequest) -> Vec<(String, String)> {
    parse_pairs(&req.body)
}

/// The URL's query parameters, in order.
pub fn query(req: &HttpRequest) -> Vec<(String, String)> {
    let q = req.url.split_once('?').map_or("", |(_, q)| q);
    let q = q.split('#').next().unwrap_or_default();
    parse_pairs(q.as_bytes())
}

/// The first value of `name` among `pairs`.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = it.next().unwrap_or_default();
            let v = it.next().unwrap_or_default();
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decode form text (`+` is a space).
fn decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode form fields (`a=1&b=x%20y`).
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encode all but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Hex text as bytes (a signature header such as `sha256=9f…` after its prefix).
pub fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

/// Refuse a webhook request: 401 when it carries no credentials, 403 when they are wrong, 400
/// when it is malformed. `reason` goes to the receipt: never put secret material in it.
pub fn reject(status: u16, reason: impl Into<String>) -> Verdict {
    Verdict::Reject(Rejection {
        status,
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("x-signature".into(), "ab01".into())],
            body: body.to_vec(),
        }
    }

    #[test]
    fn forms_queries_headers_and_hex_read_back() {
        let r = req(
            "https://h/x?a=1&b=x%20y#f",
            b"To=%2B1555&Body=hi+there&Empty=",
        );
        assert_eq!(header(&r, "X-Signature"), Some("ab01"));
        let f = form(&r);
        assert_eq!(field(&f, "To"), Some("+1555"));
        assert_eq!(field(&f, "Body"), Some("hi there"));
        assert_eq!(field(&f, "Empty"), Some(""));
        let q = query(&r);
        assert_eq!(field(&q, "b"), Some("x y"));
        assert_eq!(hex("ab01"), Some(vec![0xab, 0x01]));
        assert_eq!(hex("abc"), None);
        assert_eq!(hex("zz"), None);
        assert_eq!(form_encode(&[("a b", "c&d")]), "a%20b=c%26d");
        assert!(matches!(
            reject(403, "bad"),
            Verdict::Reject(Rejection { status: 403, .. })
        ));
    }
}
