//! Percent-encoding for query values and path segments (RFC 3986): the unreserved characters
//! (`A-Z a-z 0-9 - . _ ~`) pass, every other byte of the UTF-8 text becomes `%XX`.

use std::fmt::Write;

fn push_encoded(out: &mut String, byte: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "%{byte:02X}");
}

fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// `s` percent-encoded for a query value: only the unreserved characters pass.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if unreserved(byte) {
            out.push(char::from(byte));
        } else {
            push_encoded(&mut out, byte);
        }
    }
    out
}

/// `s` percent-encoded as a URL path: each `/`-separated segment is encoded, the slashes kept.
pub fn encode_path(s: &str) -> String {
    s.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_pass_the_rest_is_encoded() {
        assert_eq!(encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(
            encode("https://hooks.example.test/hooks/end_1?a=b&c=d"),
            "https%3A%2F%2Fhooks.example.test%2Fhooks%2Fend_1%3Fa%3Db%26c%3Dd"
        );
        assert_eq!(
            encode(r#"["message","edited_message","callback_query"]"#),
            "%5B%22message%22%2C%22edited_message%22%2C%22callback_query%22%5D"
        );
        assert_eq!(encode("a b+{}"), "a%20b%2B%7B%7D");
        assert_eq!(encode("é€"), "%C3%A9%E2%82%AC");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn paths_keep_their_slashes() {
        assert_eq!(encode_path("photos/file_0.jpg"), "photos/file_0.jpg");
        assert_eq!(
            encode_path("documents/my file #1.pdf"),
            "documents/my%20file%20%231.pdf"
        );
    }
}
