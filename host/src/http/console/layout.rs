//! The page shell (head, navigation, sign-out) and the small pieces pages share: forms that
//! post to the API, fields, state badges and times.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::assets::{CSS, JS};
use super::text::{EN, fill};
use super::{Visit, s};

/// Which part of the console a page is in (what the navigation shows).
#[derive(Clone, Copy)]
pub enum Area<'a> {
    /// A tenant's pages.
    Tenant(&'a str),
    /// A partner's pages.
    Partner(&'a str),
    /// The operator's pages.
    Operator,
    /// The person's own (the start page).
    Home,
}

/// The tabs of the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// A tenant's numbers and connections.
    Numbers,
    /// A tenant's conversations.
    Inbox,
    /// The person's notifications in a tenant.
    Notifications,
    /// A tenant's consent ledger.
    Consent,
    /// A tenant's or partner's people.
    People,
    /// A tenant's plan, usage and account.
    Account,
    /// A partner's tenants.
    Tenants,
    /// The operator's partners.
    Partners,
    /// The operator's plugins.
    Plugins,
    /// The operator's dead jobs.
    Jobs,
    /// The host's health.
    Health,
    /// No tab.
    None,
}

/// A whole page for a signed-in person.
pub async fn page(v: &Visit, area: Area<'_>, tab: Tab, title: &str, body: Markup) -> Response {
    let (events, unread) = match area {
        Area::Tenant(t) => {
            let unread = v
                .get(&format!(
                    "/api/v1/tenants/{t}/notifications?limit=1&unread=true"
                ))
                .await
                .ok()
                .and_then(|n| n["unread"].as_i64());
            (Some(format!("/api/v1/tenants/{t}/events")), unread)
        }
        _ => (None, None),
    };
    let links: Vec<(Tab, String, &str)> = match area {
        Area::Tenant(t) => vec![
            (Tab::Numbers, format!("/console/t/{t}"), EN.nav_numbers),
            (Tab::Inbox, format!("/console/t/{t}/inbox"), EN.nav_inbox),
            (
                Tab::Notifications,
                format!("/console/t/{t}/notifications"),
                EN.nav_notifications,
            ),
            (
                Tab::Consent,
                format!("/console/t/{t}/consent"),
                EN.nav_consent,
            ),
            (Tab::People, format!("/console/t/{t}/people"), EN.nav_people),
            (
                Tab::Account,
                format!("/console/t/{t}/account"),
                EN.nav_account,
            ),
        ],
        Area::Partner(p) => vec![
            (Tab::Tenants, format!("/console/p/{p}"), EN.nav_tenants),
            (Tab::People, format!("/console/p/{p}/people"), EN.nav_people),
        ],
        Area::Operator => vec![
            (Tab::Partners, "/console/operator".into(), EN.nav_partners),
            (
                Tab::Plugins,
                "/console/operator/plugins".into(),
                EN.nav_plugins,
            ),
            (Tab::Jobs, "/console/operator/jobs".into(), EN.nav_jobs),
            (
                Tab::Health,
                "/console/operator/health".into(),
                EN.nav_health,
            ),
        ],
        Area::Home => Vec::new(),
    };
    let (sign_out_api, sign_out_next, who) = if v.operator {
        (
            "/api/v1/operator/session",
            "/console/operator/sign-in",
            EN.operator,
        )
    } else {
        (
            "/api/v1/session",
            "/console/sign-in",
            s(&v.session["user"], "email"),
        )
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(v.csrf())))
            body data-events=[events] data-live-paused=(EN.live_paused) {
                a.skip href="#main" { (EN.skip_to_content) }
                header.top {
                    a.brand href="/console" { (EN.brand) }
                    @if !links.is_empty() {
                        nav aria-label=(EN.nav_label) {
                            ul {
                                @for (t, href, label) in &links {
                                    li {
                                        a href=(href) aria-current=[(*t == tab).then_some("page")]
                                            class=[(*t == Tab::Notifications).then_some("notifications")] {
                                            (label)
                                            @if *t == Tab::Notifications {
                                                @let n = unread.unwrap_or(0);
                                                " "
                                                span.count data-unread=(n) {
                                                    span.visually-hidden { (EN.unread) " " }
                                                    (n)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form.sign-out data-api=(sign_out_api) data-method="DELETE" data-next=(sign_out_next) {
                        (csrf(v))
                        span.who { (who) }
                        " "
                        button.link type="submit" { (EN.sign_out) }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// A page without a session (sign-in, invitations, errors).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, None))
                body.bare {
                    a.skip href="#main" { (EN.skip_to_content) }
                    header.top { a.brand href="/console" { (EN.brand) } }
                    main #main tabindex="-1" {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
        .into_string(),
    )
}

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(token) = csrf { meta name="csrf-token" content=(token); }
            title { (title) " · " (EN.brand) }
            link rel="stylesheet" href=(CSS.url());
            script type="module" src=(JS.url()) {}
        }
    }
}

/// The hidden CSRF field every form that changes something carries.
pub fn csrf(v: &Visit) -> Markup {
    html! { input type="hidden" name="_csrf" value=(v.csrf()); }
}

/// The "invite its owner" form of a new tenant or partner (`api`: its invitations route).
pub fn invite_owner(v: &Visit, api: &str, id: &str) -> Markup {
    html! {
        details {
            summary { (EN.invite_owner) }
            form data-api=(api) data-method="POST" data-reset data-done=(EN.invited) {
                (csrf(v))
                (field(&format!("owner-{id}"), "email", EN.email, "email", None))
                input type="hidden" name="role" value="owner";
                button.secondary type="submit" { (EN.invite) }
            }
        }
    }
}

/// A problem (the API's refusal) in words.
pub fn problem(status: StatusCode, code: &str, message: &str) -> Markup {
    html! {
        p.notice.error role="alert" { (message) }
        p.hint { (fill(EN.error_detail, &[("status", status.as_str()), ("code", code)])) }
        p { a href="/console" { (EN.back_home) } }
    }
}

/// A labelled input with an optional hint.
pub fn field(id: &str, name: &str, label: &str, kind: &str, hint: Option<&str>) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input #(id) name=(name) type=(kind) aria-describedby=[hint.map(|_| format!("{id}-hint"))];
            @if let Some(h) = hint { p.hint #(format!("{id}-hint")) { (h) } }
        }
    }
}

/// A time (Unix ms) as text the browser shows in local time.
pub fn time(ms: Option<i64>) -> Markup {
    // httpdate formats up to the end of year 9999.
    let Some(ms) = ms.filter(|ms| *ms > 0 && *ms < 253_402_300_800_000) else {
        return html! { "—" };
    };
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.unsigned_abs());
    html! { time datetime=(crate::calendar::iso8601(ms)) data-local { (httpdate::fmt_http_date(at)) } }
}

/// A connection's status as page 000 words it, with its CSS state.
pub fn connection_state(status: &str, active: bool) -> (&'static str, &'static str) {
    match (status, active) {
        ("live", false) => ("state-disabled", EN.state_inactive),
        ("live", true) => ("state-live", EN.state_live),
        ("connecting", _) => ("state-connecting", EN.state_connecting),
        ("expired", _) => ("state-expired", EN.state_expired),
        ("error", _) => ("state-error", EN.state_error),
        ("disconnected", _) => ("state-none", EN.state_disconnected),
        _ => ("state-none", EN.state_not_connected),
    }
}
