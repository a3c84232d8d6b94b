//! Signing in, the start page, and the pages mailed links open (invitations, password resets).
//! Mailed tokens stay in the link: the page never renders them; its script reads them from
//! the address when the form is sent.

use axum::extract::Query;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::super::layout::{self, Area, Tab, field};
use super::super::text::EN;
use super::super::{Visit, list, s};
use super::safe_next;

/// `?next=` of the sign-in page.
#[derive(Deserialize)]
pub struct Next {
    /// Where to go after signing in.
    pub next: Option<String>,
}

/// `GET /console/sign-in`.
pub async fn sign_in(Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref().unwrap_or("/console"));
    layout::bare(
        EN.sign_in_title,
        html! {
            form.narrow data-api="/api/v1/session" data-method="POST" data-next=(next) {
                (field("email", "email", EN.email, "email", None))
                (field("password", "password", EN.password, "password", None))
                button type="submit" { (EN.sign_in) }
            }
            p { a href="/console/forgot" { (EN.forgot_link) } }
        },
    )
    .into_response()
}

/// `GET /console/forgot`: ask for a reset link.
pub async fn forgot() -> Response {
    layout::bare(
        EN.forgot_title,
        html! {
            form.narrow data-api="/api/v1/password-resets" data-method="POST"
                data-next="reload" data-done=(EN.forgot_done) {
                p.hint { (EN.forgot_hint) }
                (field("email", "email", EN.email, "email", None))
                button type="submit" { (EN.forgot_send) }
            }
        },
    )
    .into_response()
}

/// `GET /password-reset?token=…` (the mailed link).
pub async fn reset() -> Response {
    layout::bare(
        EN.reset_title,
        html! {
            form.narrow data-api="/api/v1/password-resets/confirm" data-method="POST" data-next="/console" data-no-auth-redirect {
                input type="hidden" name="token" data-from-query="token";
                (field("password", "password", EN.new_password, "password", Some(EN.password_rules)))
                button type="submit" { (EN.reset_save) }
            }
        },
    )
    .into_response()
}

/// `GET /invitation?token=…` (the mailed link).
pub async fn invitation() -> Response {
    layout::bare(
        EN.invitation_title,
        html! {
            form.narrow data-api="/api/v1/invitations/accept" data-method="POST" data-next="/console" data-no-auth-redirect {
                p.hint { (EN.invitation_hint) }
                input type="hidden" name="token" data-from-query="token";
                (field("name", "name", EN.your_name, "text", Some(EN.your_name_hint)))
                (field("password", "password", EN.password, "password", Some(EN.password_rules)))
                button type="submit" { (EN.invitation_accept) }
            }
        },
    )
    .into_response()
}

/// `GET /console`: where the person belongs; straight there when it is one place.
pub async fn home(v: Visit) -> Response {
    let memberships = list(&v.session, "memberships");
    let href = |m: &serde_json::Value| match s(m, "kind") {
        "partner" => format!("/console/p/{}", s(m, "id")),
        _ => format!("/console/t/{}", s(m, "id")),
    };
    if let [only] = memberships {
        return Redirect::to(&href(only)).into_response();
    }
    layout::page(
        &v,
        Area::Home,
        Tab::None,
        EN.home_title,
        html! {
            @if memberships.is_empty() {
                div.empty { (EN.home_none) }
            } @else {
                ul.choices {
                    @for m in memberships {
                        li {
                            a href=(href(m)) { (s(m, "name")) }
                            " "
                            span.pill { (kind_label(s(m, "kind"))) " · " (s(m, "role")) }
                        }
                    }
                }
            }
        },
    )
    .await
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "partner" => EN.kind_partner,
        _ => EN.kind_business,
    }
}
