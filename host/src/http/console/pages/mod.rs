//! The console's pages, one file per area: signing in, a tenant's numbers, its inbox, its
//! other pages (notifications, consent, people, account) and a partner's.

mod account;
mod inbox;
mod numbers;
mod operator;
mod partner;
mod sign_in;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;

use axum::http::StatusCode;

use super::text::EN;
use super::{Console, Failure};

/// Every page route.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(sign_in::home))
        .route("/console/sign-in", get(sign_in::sign_in))
        .route("/console/forgot", get(sign_in::forgot))
        .route("/password-reset", get(sign_in::reset))
        .route("/invitation", get(sign_in::invitation))
        .route("/console/signup-done", get(numbers::signup_done))
        .route("/console/meta-return", get(numbers::meta_return))
        .route("/console/t/{tenant}", get(numbers::numbers))
        .route("/console/t/{tenant}/connect", get(numbers::connect))
        .route(
            "/console/t/{tenant}/connect/meta/{session}",
            get(numbers::pick),
        )
        .route(
            "/console/t/{tenant}/numbers/{connection}",
            get(numbers::number),
        )
        .route("/console/t/{tenant}/inbox", get(inbox::inbox))
        .route(
            "/console/t/{tenant}/conversations/{conversation}",
            get(inbox::conversation),
        )
        .route(
            "/console/t/{tenant}/notifications",
            get(account::notifications),
        )
        .route("/console/t/{tenant}/consent", get(account::consent))
        .route("/console/t/{tenant}/people", get(account::people))
        .route("/console/t/{tenant}/account", get(account::account))
        .route("/console/operator/sign-in", get(operator::sign_in))
        .route("/console/operator", get(operator::partners))
        .route("/console/operator/plugins", get(operator::plugins))
        .route("/console/operator/jobs", get(operator::jobs))
        .route("/console/operator/health", get(operator::health))
        .route("/console/p/{partner}", get(partner::tenants))
        .route("/console/p/{partner}/people", get(partner::people))
}

/// The sign-in page (the operator's or a person's) that returns to `next` afterwards.
pub fn sign_in_url(next: &str, operator: bool) -> String {
    let next: String = url::form_urlencoded::byte_serialize(safe_next(next).as_bytes()).collect();
    let page = if operator {
        "/console/operator/sign-in"
    } else {
        "/console/sign-in"
    };
    format!("{page}?next={next}")
}

/// `next` when it is a console path of this host, else the start page (no open redirect).
pub fn safe_next(next: &str) -> &str {
    let ok = (next == "/console" || next.starts_with("/console/"))
        && !next.contains("//")
        && !next.contains(['\\', '{', '}'])
        && next.len() <= 2000
        && next.bytes().all(|b| b.is_ascii_graphic());
    if ok { next } else { "/console" }
}

/// An id from the page's URL, checked before it goes into an API path (404 otherwise).
pub fn id(id: &str) -> Result<&str, Failure> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(Failure::Api {
            status: StatusCode::NOT_FOUND,
            code: "not_found".into(),
            message: EN.not_found.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(
            safe_next("/console/t/ten_1/inbox?x=1"),
            "/console/t/ten_1/inbox?x=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/console",
            "/console//evil",
            "/console\\evil",
            "/consoles",
            "/api/v1/session",
            "/console/\u{7f}",
            "/console/x?c={csrf_token}",
        ] {
            assert_eq!(safe_next(bad), "/console", "{bad}");
        }
        assert_eq!(
            sign_in_url("/console/t/a?b=c&d", false),
            "/console/sign-in?next=%2Fconsole%2Ft%2Fa%3Fb%3Dc%26d"
        );
    }
}
