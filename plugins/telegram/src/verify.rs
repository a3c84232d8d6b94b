//! Webhook authenticity: Telegram sends the `secret_token` given to `setWebhook` in the
//! `X-Telegram-Bot-Api-Secret-Token` header of every update
//! (<https://core.telegram.org/bots/api#setwebhook>). The host generated that secret
//! (`webhook_secret`) and compares it in constant time ([`SecretCheck`]); the plugin never sees it.

use crate::bindings::switchyard::plugin::secrets::SecretError;
use crate::bindings::switchyard::plugin::types::{HttpRequest, Rejection, Verdict};

/// The header Telegram puts the secret token in (header names arrive lower-case).
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The secret the header must equal, as the manifest declares it.
pub const WEBHOOK_SECRET: &str = "webhook_secret";

/// The host's secret checks, as a trait so the logic can be tested natively.
pub trait SecretCheck {
    /// True when the named secret equals `candidate` (constant time, in the host).
    fn equals(&self, name: &str, candidate: &str) -> Result<bool, SecretError>;
}

fn reject(status: u16, reason: &str) -> Verdict {
    Verdict::Reject(Rejection {
        status,
        reason: reason.into(),
    })
}

/// Decide whether a webhook request comes from Telegram for this connection's bot.
pub fn verify(req: &HttpRequest, secrets: &impl SecretCheck) -> Verdict {
    if req.method != "POST" {
        return reject(405, "method not allowed");
    }
    let Some((_, token)) = req.headers.iter().find(|(k, _)| k == SECRET_HEADER) else {
        return reject(401, "secret token header missing");
    };
    match secrets.equals(WEBHOOK_SECRET, token) {
        Ok(true) => Verdict::Accept,
        Ok(false) => reject(403, "secret token mismatch"),
        Err(SecretError::NotConfigured | SecretError::NotDeclared) => reject(
            403,
            "the webhook secret is not configured for this connection",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Secret(Result<&'static str, SecretError>);

    impl SecretCheck for Secret {
        fn equals(&self, name: &str, candidate: &str) -> Result<bool, SecretError> {
            assert_eq!(name, WEBHOOK_SECRET);
            self.0.map(|s| s == candidate)
        }
    }

    const SECRET: &str = "k3Jd9_x-Qz0aP8vLm2NwE5rTy7UiOb4cVfGh6Sj1AbC";

    fn request(method: &str, token: Option<&str>) -> HttpRequest {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(t) = token {
            headers.push((SECRET_HEADER.into(), t.into()));
        }
        HttpRequest {
            method: method.into(),
            url: "https://hooks.example.test/hooks/end_1".into(),
            headers,
            body: br#"{"update_id":1}"#.to_vec(),
        }
    }

    fn rejection(v: Verdict) -> Option<(u16, String)> {
        match v {
            Verdict::Reject(r) => Some((r.status, r.reason)),
            _ => None,
        }
    }

    #[test]
    fn accepts_the_right_token() {
        let v = verify(&request("POST", Some(SECRET)), &Secret(Ok(SECRET)));
        assert!(matches!(v, Verdict::Accept));
    }

    #[test]
    fn rejections() {
        let ok = Secret(Ok(SECRET));
        assert_eq!(
            rejection(verify(&request("GET", Some(SECRET)), &ok)),
            Some((405, "method not allowed".into()))
        );
        assert_eq!(
            rejection(verify(&request("POST", None), &ok)).map(|r| r.0),
            Some(401)
        );
        let wrong = "not-the-secret-value";
        let (status, reason) =
            rejection(verify(&request("POST", Some(wrong)), &ok)).expect("rejected");
        assert_eq!(status, 403);
        assert!(!reason.contains(wrong));
        for e in [SecretError::NotConfigured, SecretError::NotDeclared] {
            let (status, reason) =
                rejection(verify(&request("POST", Some(SECRET)), &Secret(Err(e))))
                    .expect("rejected");
            assert_eq!(status, 403);
            assert!(reason.contains("not configured"), "{reason}");
            assert!(!reason.contains(SECRET));
        }
    }
}
