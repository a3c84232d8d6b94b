//! Webhook authenticity: Telegram sends the `secret_token` given to `setWebhook` in the
//! `X-Telegram-Bot-Api-Secret-Token` header of every update
//! (<https://core.telegram.org/bots/api#setwebhook>). The host generated that secret
//! (`webhook_secret`) and compares it in constant time ([`secrets::equals`]); the plugin never
//! sees it.
//!
//! An authentic button press is answered in the webhook's response: Telegram shows a spinner on
//! an inline button until the bot calls `answerCallbackQuery`, and the answer to a webhook may
//! carry one Bot API call, named by its `method` parameter
//! (<https://core.telegram.org/bots/api#making-requests-when-getting-updates>). No egress, no
//! token: the call rides on Telegram's own connection.

use serde_json::{Value, json};
use switchyard_sdk::host::secrets;
use switchyard_sdk::types::{HttpRequest, HttpResponse, SecretError, Verdict};
use switchyard_sdk::webhook::{self, reject};

/// The header Telegram puts the secret token in (header names arrive lower-case).
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The secret the header must equal, as the manifest declares it.
pub const WEBHOOK_SECRET: &str = "webhook_secret";

/// Decide whether a webhook request comes from Telegram for this connection's bot; a button
/// press that does is answered with `answerCallbackQuery` ([`callback_answer`]).
pub fn verify(req: &HttpRequest) -> Verdict {
    if req.method != "POST" {
        return reject(405, "method not allowed");
    }
    let Some(token) = webhook::header(req, SECRET_HEADER) else {
        return reject(401, "secret token header missing");
    };
    verdict(secrets::equals(WEBHOOK_SECRET, token), &req.body)
}

/// The verdict on an update with the host's answer to "does the token equal the secret?".
fn verdict(token_matches: Result<bool, SecretError>, body: &[u8]) -> Verdict {
    match token_matches {
        Ok(true) => callback_answer(body).map_or(Verdict::Accept, Verdict::AcceptWithResponse),
        Ok(false) => reject(403, "secret token mismatch"),
        Err(SecretError::NotConfigured | SecretError::NotDeclared) => reject(
            403,
            "the webhook secret is not configured for this connection",
        ),
    }
}

/// The webhook answer that calls `answerCallbackQuery` for an update with a `callback_query`,
/// which stops the spinner on the pressed button; `None` for any other body.
pub fn callback_answer(body: &[u8]) -> Option<HttpResponse> {
    let update: Value = serde_json::from_slice(body).ok()?;
    let id = update.pointer("/callback_query/id")?.as_str()?;
    Some(HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({ "method": "answerCallbackQuery", "callback_query_id": id })
            .to_string()
            .into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::FakeHost;
    use switchyard_sdk::types::Rejection;

    const SECRET: &str = "k3Jd9_x-Qz0aP8vLm2NwE5rTy7UiOb4cVfGh6Sj1AbC";

    const MESSAGE: &str = r#"{"update_id":1,"message":{"message_id":2,"from":{"id":5,"is_bot":false,"first_name":"Ada"},"chat":{"id":5,"type":"private","first_name":"Ada"},"date":3,"text":"hi"}}"#;

    const PRESS: &str = r#"{"update_id":10002,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":1111111,"is_bot":false,"first_name":"Ada"},"message":{"message_id":1370,"chat":{"id":1111111,"type":"private"},"date":1441645540,"text":"Pick a size"},"chat_instance":"-8811726712345","data":"size_l"}}"#;

    /// A host holding the connection's webhook secret (and only under its declared name).
    fn host() -> FakeHost {
        FakeHost::new().secret(WEBHOOK_SECRET, SECRET)
    }

    fn request(method: &str, token: Option<&str>, body: &str) -> HttpRequest {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(t) = token {
            headers.push((SECRET_HEADER.into(), t.into()));
        }
        HttpRequest {
            method: method.into(),
            url: "https://hooks.example.test/hooks/end_1".into(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn rejection(v: Verdict) -> Option<(u16, String)> {
        match v {
            Verdict::Reject(Rejection { status, reason }) => Some((status, reason)),
            _ => None,
        }
    }

    #[test]
    fn accepts_the_right_token() {
        let _host = host().install();
        let v = verify(&request("POST", Some(SECRET), r#"{"update_id":1}"#));
        assert_eq!(v, Verdict::Accept);
    }

    #[test]
    fn rejections() {
        let host = host().install();
        assert_eq!(
            rejection(verify(&request("GET", Some(SECRET), MESSAGE))),
            Some((405, "method not allowed".into()))
        );
        assert_eq!(
            rejection(verify(&request("POST", None, MESSAGE))).map(|r| r.0),
            Some(401)
        );
        let wrong = "not-the-secret-value";
        let (status, reason) =
            rejection(verify(&request("POST", Some(wrong), MESSAGE))).expect("rejected");
        assert_eq!(status, 403);
        assert!(!reason.contains(wrong));
        // A forged button press is refused like any other update: no answer is given for it.
        let (status, _) =
            rejection(verify(&request("POST", Some(wrong), PRESS))).expect("rejected");
        assert_eq!(status, 403);
        assert!(host.requests().is_empty());
    }

    #[test]
    fn a_secret_missing_from_the_host_is_refused() {
        // The host holds no webhook secret for this connection.
        let _host = FakeHost::new().install();
        let (status, reason) =
            rejection(verify(&request("POST", Some(SECRET), MESSAGE))).expect("rejected");
        assert_eq!(status, 403);
        assert!(reason.contains("not configured"), "{reason}");
        assert!(!reason.contains(SECRET));
        // The fake host cannot leave a secret undeclared: its answer is mapped the same way.
        for e in [SecretError::NotConfigured, SecretError::NotDeclared] {
            let (status, reason) =
                rejection(verdict(Err(e), MESSAGE.as_bytes())).expect("rejected");
            assert_eq!(status, 403);
            assert!(reason.contains("not configured"), "{reason}");
        }
    }

    #[test]
    fn a_button_press_is_answered_with_answer_callback_query() {
        let host = host().install();
        let Verdict::AcceptWithResponse(answer) = verify(&request("POST", Some(SECRET), PRESS))
        else {
            panic!("a button press gets an answer");
        };
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.headers,
            [("content-type".to_string(), "application/json".to_string())]
        );
        let body: Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(
            body,
            json!({"method": "answerCallbackQuery", "callback_query_id": "4382bfdwdsb323b2d9"})
        );
        // The call rides on the webhook's answer: nothing goes out through egress.
        assert!(host.requests().is_empty());
    }

    #[test]
    fn other_updates_get_the_default_answer() {
        let _host = host().install();
        for body in [
            MESSAGE,
            r#"{"update_id":1}"#,
            // Not a button press this connector can answer: parse refuses or ignores them.
            r#"{"update_id":1,"callback_query":{"from":{"id":1}}}"#,
            r#"{"update_id":1,"callback_query":{"id":42}}"#,
            r#"{"update_id":1,"message":{"callback_query":{"id":"x"}}}"#,
            "not json",
            "",
        ] {
            assert_eq!(
                verify(&request("POST", Some(SECRET), body)),
                Verdict::Accept,
                "{body}"
            );
        }
    }
}
