//! `application/x-www-form-urlencoded` decoding and encoding, as Twilio sends and expects it.

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode one form component (`+` is a space); invalid escapes stay as they are.
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

/// Every `name=value` pair of a form body or query string, decoded, in order (a bare `name`
/// has an empty value; empty pieces are skipped).
pub fn pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The query string of a URL (without `?` and any `#fragment`), if it has one.
pub fn query_of(url: &str) -> Option<&str> {
    let q = url.split_once('?')?.1;
    Some(q.split_once('#').map_or(q, |(q, _)| q))
}

/// Percent-encode one form component (spaces as `%20`; only unreserved bytes stay).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form body from pairs, in the order given.
pub fn body(fields: &[(&str, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Parsed form fields with lookups by name.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Parse a form body.
    pub fn parse(body: &[u8]) -> Form {
        Form(pairs(&String::from_utf8_lossy(body)))
    }

    /// The first value of `name`, when present and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// The first value of `name` as an owned string, when present and not blank.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_encoding() {
        assert_eq!(decode("a+b%20c%2Fd"), "a b c/d");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("whatsapp%3A%2B14155238886"), "whatsapp:+14155238886");
        assert_eq!(decode("%F0%9F%91%8B"), "👋");
        assert_eq!(encode("whatsapp:+1 415"), "whatsapp%3A%2B1%20415");
        assert_eq!(decode(&encode("a&b=c+d é")), "a&b=c+d é");
        assert_eq!(
            pairs("a=1&&b&c=x%3Dy"),
            [
                ("a".into(), "1".into()),
                ("b".into(), String::new()),
                ("c".into(), "x=y".into())
            ]
        );
        assert_eq!(query_of("https://h/p?x=1#f"), Some("x=1"));
        assert_eq!(query_of("https://h/p"), None);
        let f = Form::parse(b"Body=&To=whatsapp%3A%2B1");
        assert_eq!(f.get("Body"), None);
        assert_eq!(f.get("To"), Some("whatsapp:+1"));
    }
}
