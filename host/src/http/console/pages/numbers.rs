//! A tenant's numbers: the connect cards (page 000's states), connecting (Meta's Embedded
//! Signup, the redirect flow, the pick step, and a form per connector built from what the
//! connector declares), and each number's page (edit, active, policy, access, verify, test
//! send, disconnect).

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::super::assets::SIGNUP;
use super::super::layout::{self, Area, Tab, connection_state, csrf, time};
use super::super::text::{CONSENT_VERSION, EN, fill, setting_label};
use super::super::{CSP, Failure, Visit, list, s};
use super::id;

/// Whether the visitor may connect and change numbers (a tenant's owner or admin).
pub fn is_admin(v: &Visit, tenant: &str) -> bool {
    v.membership("tenant", tenant)
        .is_some_and(|m| matches!(s(m, "role"), "owner" | "admin"))
}

/// `GET /console/t/{tenant}`: the number cards.
pub async fn numbers(v: Visit, Path(tenant): Path<String>) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let info = v.get(&format!("/api/v1/tenants/{t}")).await?;
    let connections = v
        .get(&format!("/api/v1/tenants/{t}/connections?limit=200"))
        .await?;
    let live: Vec<&Value> = list(&connections, "data")
        .iter()
        .filter(|c| s(c, "status") != "disconnected")
        .collect();
    let admin = is_admin(&v, t);
    let body = html! {
        p.lead { (s(&info, "name")) }
        @if admin {
            p.actions { a.button href=(format!("/console/t/{t}/connect")) { (EN.connect_number) } }
        }
        @if live.is_empty() {
            article.card.state-none #connect-card {
                header { h2 { (EN.whatsapp_business) } span.badge.state-none { (EN.state_not_connected) } }
                p { (EN.no_numbers) }
            }
        } @else {
            section.cards aria-label=(EN.nav_numbers) {
                @for c in &live { (card(t, c, admin)) }
            }
        }
    };
    Ok(layout::page(&v, Area::Tenant(t), Tab::Numbers, EN.numbers_title, body).await)
}

/// One number's card.
fn card(t: &str, c: &Value, admin: bool) -> Markup {
    let (class, label) = connection_state(s(c, "status"), c["active"].as_bool().unwrap_or(false));
    let title = c["display_name"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or(s(c, "channel_address"));
    let href = format!("/console/t/{t}/numbers/{}", s(c, "id"));
    html! {
        article.card class=(class) {
            header {
                h2 { a href=(href) { (title) } }
                span.badge class=(class) { (label) }
            }
            dl.facts {
                @if let Some(name) = c["name"].as_str() { div { dt { (EN.number_name) } dd { (name) } } }
                div { dt { (EN.connector) } dd { (s(c, "connector")) } }
                @if let Some(exp) = c["token_expires_at"].as_i64() {
                    div { dt { (EN.token_expires) } dd { (time(Some(exp))) } }
                }
            }
            (what_to_fix(c))
            div.actions {
                a.button.secondary href=(href) { (EN.open) }
                @if admin && s(c, "status") == "expired" {
                    a.button href=(format!("/console/t/{t}/connect")) { (EN.reconnect) }
                }
            }
        }
    }
}

/// What to fix, for a number that is not working.
fn what_to_fix(c: &Value) -> Markup {
    let reason = c["status_reason"].as_str().unwrap_or_default();
    let fix = match s(c, "status") {
        "expired" => Some(EN.fix_expired),
        "error" => Some(EN.fix_error),
        "connecting" => Some(EN.fix_connecting),
        _ => None,
    };
    html! {
        @if let Some(fix) = fix {
            p.fix { (fix) @if !reason.is_empty() { " " span.reason { "(" (reason) ")" } } }
        }
    }
}

/// `GET /console/t/{tenant}/connect`: every way to connect a number the tenant has.
pub async fn connect(v: Visit, Path(tenant): Path<String>) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let channels = v.get(&format!("/api/v1/tenants/{t}/channels")).await?;
    let channels: Vec<&Value> = list(&channels, "data")
        .iter()
        .filter(|c| c["in_plan"].as_bool().unwrap_or(false))
        .collect();
    let signups: Vec<(&str, &Value)> = channels
        .iter()
        .flat_map(|c| list(c, "endpoints"))
        .filter_map(|e| e.get("meta_signup").map(|m| (s(e, "id"), m)))
        .collect();
    let body = html! {
        p.lead { (EN.connect_lead) }
        @if channels.is_empty() { div.empty { (EN.no_channels) } }
        @for (endpoint, m) in &signups {
            @if m["config_id"].is_string() { (embedded_signup(&v, t, endpoint, m)) }
            @if m["redirect"].as_bool().unwrap_or(false) { (redirect_flow(&v, t, endpoint)) }
        }
        @for c in &channels { (manual_form(&v, t, c)) }
    };
    let mut res = layout::page(&v, Area::Tenant(t), Tab::Numbers, EN.connect_title, body).await;
    if signups.iter().any(|(_, m)| m["config_id"].is_string()) {
        // Meta's SDK and its dialog, on this page only.
        let csp = CSP
            .replace(
                "script-src 'self'",
                "script-src 'self' https://connect.facebook.net/en_US/sdk.js",
            )
            .replace(
                "connect-src 'self'",
                "connect-src 'self' https://*.facebook.com https://*.facebook.net; frame-src https://*.facebook.com",
            );
        if let Ok(csp) = HeaderValue::from_str(&csp) {
            res.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, csp);
        }
    }
    Ok(res)
}

/// The consent disclosure a business ticks before connecting (page 000).
fn consent(id: &str) -> Markup {
    html! {
        details.disclosure open {
            summary { (EN.consent_summary) }
            ul { @for line in EN.consent_points.split('\n') { li { (line) } } }
        }
        div.field.check {
            input type="checkbox" id=(id) required;
            label for=(id) { (EN.consent_tick) }
        }
        input type="hidden" name="consent.document_version" value=(CONSENT_VERSION);
        input type="hidden" name="consent.scopes" data-type="json" value=r#"["messaging"]"#;
    }
}

fn embedded_signup(v: &Visit, t: &str, endpoint: &str, m: &Value) -> Markup {
    html! {
        article.card.state-none #connect-card {
            header { h2 { (EN.embedded_title) } span.badge.state-none { (EN.state_not_connected) } }
            p { (EN.embedded_lead) }
            form #embedded-signup data-tenant=(t) data-endpoint=(endpoint)
                data-app-id=(s(m, "app_id")) data-config-id=(s(m, "config_id"))
                data-graph-version=(s(m, "graph_version")) data-dialog=(s(m, "dialog_url"))
                data-sdk="https://connect.facebook.net/en_US/sdk.js"
                data-next=(format!("/console/t/{t}/numbers/{{connection_id}}"))
                data-pick=(format!("/console/t/{t}/connect/meta/{{session}}"))
                data-connecting=(EN.state_connecting) data-cancelled=(EN.signup_cancelled) {
                (csrf(v))
                (consent(&format!("consent-{endpoint}")))
                button type="submit" { (EN.embedded_button) }
                p.status role="status" aria-live="polite" {}
            }
            script type="module" src=(SIGNUP.url()) {}
        }
    }
}

fn redirect_flow(v: &Visit, t: &str, endpoint: &str) -> Markup {
    html! {
        article.card {
            header { h2 { (EN.redirect_title) } }
            p { (EN.redirect_lead) }
            form data-api=(format!("/api/v1/tenants/{t}/connect/meta")) data-method="POST"
                data-next="{dialog_url}" {
                (csrf(v))
                input type="hidden" name="endpoint" value=(endpoint);
                input type="hidden" name="flow" value="redirect";
                (consent(&format!("consent-redirect-{endpoint}")))
                button.secondary type="submit" { (EN.redirect_button) }
            }
        }
    }
}

/// A connector's own form, from the settings and credentials it declares.
fn manual_form(v: &Visit, t: &str, c: &Value) -> Markup {
    let connector = s(c, "connector");
    let endpoints = list(c, "endpoints");
    let own = c["own_endpoint"].as_bool().unwrap_or(false);
    let f = |name: &str| format!("{connector}-{name}");
    html! {
        details.card.manual {
            summary { h2 { (fill(EN.manual_title, &[("connector", connector)])) } }
            @if connector == "twilio" { p.hint { (EN.twilio_hint) } }
            @if connector == "telegram" { p.hint { (EN.telegram_hint) } }
            @if !own && endpoints.is_empty() {
                p.notice.warn { (EN.no_endpoint) }
            } @else {
                form data-api=(format!("/api/v1/tenants/{t}/connections")) data-method="POST"
                    data-next=(format!("/console/t/{t}/numbers/{{id}}")) {
                    (csrf(v))
                    input type="hidden" name="connector" value=(connector);
                    @if !own {
                        div.field {
                            label for=(f("endpoint")) { (EN.endpoint) }
                            select id=(f("endpoint")) name="endpoint" required {
                                @for e in endpoints { option value=(s(e, "id")) { (s(e, "id")) } }
                            }
                        }
                    }
                    @for st in list(c, "settings") {
                        @let name = s(st, "name");
                        @let required = st["required"].as_bool().unwrap_or(false);
                        @let senders = (connector == "twilio" && name == "from").then(|| f("senders"));
                        div.field {
                            label for=(f(name)) { (setting_label(name)) @if !required { " " span.optional { (EN.optional) } } }
                            input id=(f(name)) name=(format!("settings.{name}")) type="text"
                                pattern=(s(st, "pattern")) required[required] autocomplete="off"
                                list=[senders.as_deref()];
                        }
                    }
                    @for sec in list(c, "secrets") {
                        @let name = s(sec, "name");
                        @let required = sec["required"].as_bool().unwrap_or(false);
                        div.field {
                            label for=(f(name)) { (setting_label(name)) @if !required { " " span.optional { (EN.optional) } } }
                            input id=(f(name)) name=(format!("secrets.{name}")) type="password"
                                required[required] autocomplete="off";
                            p.hint { (EN.secret_hint) }
                        }
                    }
                    @if connector == "twilio" { (twilio_senders(t, &f)) }
                    (consent(&f("consent")))
                    button type="submit" { (EN.connect_button) }
                }
            }
        }
    }
}

/// Twilio's sender finder: lists the account's WhatsApp senders (from the SID and token typed
/// above) into the `from` field's suggestions; typing a sender stays possible.
fn twilio_senders(t: &str, f: &dyn Fn(&str) -> String) -> Markup {
    html! {
        div.field.senders {
            button.secondary type="button"
                data-senders=(format!("/api/v1/tenants/{t}/connect/twilio/senders"))
                data-sid=(f("account_sid")) data-token=(f("auth_token")) data-list=(f("senders"))
                data-target=(f("from")) data-none=(EN.senders_none)
                data-found=(EN.senders_found) data-offline=(EN.senders_offline) {
                (EN.senders_button)
            }
            p.hint { (EN.senders_hint) }
            p.status role="status" aria-live="polite" {}
            datalist id=(f("senders")) {}
        }
    }
}

/// `GET /console/t/{tenant}/connect/meta/{session}`: pick one of the numbers Meta found.
pub async fn pick(
    v: Visit,
    Path((tenant, session)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let sid = id(&session)?;
    let view = v
        .get(&format!("/api/v1/tenants/{t}/connect/meta/{sid}"))
        .await?;
    let body = html! {
        @match s(&view, "status") {
            "picking" => {
                p.lead { (EN.pick_lead) }
                @for w in list(&view, "wabas") {
                    section.card {
                        header { h2 { (w["name"].as_str().unwrap_or(s(w, "id"))) } }
                        @for n in list(w, "phone_numbers") {
                            form data-api=(format!("/api/v1/tenants/{t}/connect/meta/{sid}/pick"))
                                data-method="POST" data-next=(format!("/console/t/{t}/numbers/{{connection_id}}")) {
                                (csrf(&v))
                                input type="hidden" name="waba_id" value=(s(w, "id"));
                                input type="hidden" name="phone_number_id" value=(s(n, "id"));
                                button type="submit" {
                                    (n["display_phone_number"].as_str().unwrap_or(s(n, "id")))
                                    @if let Some(vn) = n["verified_name"].as_str() { " · " (vn) }
                                }
                            }
                        }
                    }
                }
            }
            "completed" => {
                p.notice.ok { (EN.pick_done) " "
                    a href=(format!("/console/t/{t}/numbers/{}", s(&view, "connection_id"))) { (EN.open) } }
            }
            _ => {
                p.notice.error { (EN.pick_failed) " " (s(&view, "error")) }
                p { a.button href=(format!("/console/t/{t}/connect")) { (EN.try_again) } }
            }
        }
    };
    Ok(layout::page(&v, Area::Tenant(t), Tab::Numbers, EN.pick_title, body).await)
}

/// `GET /console/signup-done`: where the sign-in dialog returns its code; the script hands it
/// to the page that opened the dialog and closes the window.
pub async fn signup_done() -> Response {
    let mut res = layout::bare(
        EN.signup_done_title,
        html! {
            p role="status" { (EN.signup_done) }
            script type="module" src=(SIGNUP.url()) {}
        },
    )
    .into_response();
    let h = res.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("unsafe-none"),
    );
    res
}

/// `GET /console/t/{tenant}/numbers/{connection}`: one number.
pub async fn number(
    v: Visit,
    Path((tenant, connection)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let c_id = id(&connection)?;
    let c = v
        .get(&format!("/api/v1/tenants/{t}/connections/{c_id}"))
        .await?;
    let admin = is_admin(&v, t);
    let api = format!("/api/v1/tenants/{t}/connections/{c_id}");
    let (class, label) = connection_state(s(&c, "status"), c["active"].as_bool().unwrap_or(false));
    let (policies, access) = if admin {
        let plugins = v.get("/api/v1/plugins").await.unwrap_or(Value::Null);
        let policies: Vec<String> = list(&plugins, "data")
            .iter()
            .filter(|p| s(p, "world").contains("policy"))
            .map(|p| s(p, "name").to_string())
            .collect();
        (policies, v.get(&format!("{api}/access")).await.ok())
    } else {
        (Vec::new(), None)
    };
    let gone = s(&c, "status") == "disconnected";
    let templates = v
        .get(&format!("{api}/templates"))
        .await
        .unwrap_or(Value::Null);
    let title = c["display_name"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or(s(&c, "channel_address"))
        .to_string();
    let body = html! {
        nav.crumbs aria-label=(EN.breadcrumb) { ol {
            li { a href=(format!("/console/t/{t}")) { (EN.nav_numbers) } }
            li aria-current="page" { (title) }
        } }
        article.card class=(class) #connect-card {
            header { h2 { (EN.status) } span.badge class=(class) { (label) } }
            (what_to_fix(&c))
            @for w in list(&c, "warnings") {
                p.notice.warn role="status" { (w.as_str().unwrap_or_default()) }
            }
            dl.facts {
                @if let Some(name) = c["name"].as_str() { div { dt { (EN.number_name) } dd { (name) } } }
                div { dt { (EN.connector) } dd { (s(&c, "connector")) } }
                div { dt { (EN.address) } dd { (s(&c, "channel_address")) } }
                @if let Some(a) = c["account_id"].as_str() { div { dt { (EN.account) } dd { (a) } } }
                div { dt { (EN.token_expires) } dd { (time(c["token_expires_at"].as_i64())) } }
                div { dt { (EN.policy) } dd {
                    (c["policy"]["plugin"].as_str().unwrap_or(EN.policy_default))
                } }
                div { dt { (EN.webhook_url) } dd {
                    code.copy #webhook-url { (s(&c, "webhook_url")) }
                    " "
                    button.link type="button" data-copy="webhook-url" data-copied=(EN.copied) { (EN.copy) }
                } }
                div { dt { (EN.connected_at) } dd { (time(c["created_at"].as_i64())) } }
            }
            @if admin && !gone {
                div.actions {
                    form data-api=(format!("{api}/verify")) data-method="POST" data-done=(EN.verified) {
                        (csrf(&v))
                        button.secondary type="submit" { (EN.verify) }
                    }
                    @if s(&c, "status") == "expired" {
                        a.button href=(format!("/console/t/{t}/connect")) { (EN.reconnect) }
                    }
                }
            }
        }
        @if admin && !gone {
            section.card {
                h2 { (EN.edit_number) }
                form data-api=(api.clone()) data-method="PATCH" {
                    (csrf(&v))
                    div.field {
                        label for="number-name" { (EN.number_name) }
                        input #number-name name="name" type="text" maxlength="200"
                            value=[c["name"].as_str()] placeholder=(EN.number_name_example);
                    }
                    div.field.check {
                        input #number-active type="checkbox" name="active" checked[c["active"].as_bool().unwrap_or(false)];
                        label for="number-active" { (EN.active) }
                    }
                    p.hint { (EN.active_hint) }
                    button type="submit" { (EN.save) }
                }
            }
            section.card {
                h2 { (EN.policy) }
                form data-api=(api.clone()) data-method="PATCH" {
                    (csrf(&v))
                    div.field {
                        label for="policy-plugin" { (EN.policy_plugin) }
                        select #policy-plugin name="policy.plugin" required {
                            @for p in &policies {
                                option value=(p) selected[c["policy"]["plugin"].as_str() == Some(p.as_str())] { (p) }
                            }
                        }
                    }
                    div.field {
                        label for="policy-config" { (EN.policy_config) }
                        textarea #policy-config name="policy.config" data-type="json" rows="4" spellcheck="false" {
                            (c["policy"].get("config").filter(|c| !c.is_null()).map(Value::to_string).unwrap_or_else(|| "{}".into()))
                        }
                    }
                    button type="submit" { (EN.save) }
                }
                @if !c["policy"].is_null() {
                    form data-api=(api.clone()) data-method="PATCH" {
                        (csrf(&v))
                        input type="hidden" name="policy" data-type="json" value="null";
                        button.link type="submit" { (EN.policy_use_default) }
                    }
                }
            }
            @if let Some(access) = &access { (access_form(&v, &api, access)) }
            (templates_card(&v, &api, &templates))
            section.card {
                h2 { (EN.test_send) }
                p.hint { (EN.test_send_hint) }
                form data-api=(format!("{api}/test")) data-method="POST" data-done=(EN.test_sent) data-reset {
                    (csrf(&v))
                    div.field {
                        label for="test-to" { (EN.test_to) }
                        input #test-to name="to" type="tel" required placeholder="+14155550123";
                    }
                    div.field {
                        label for="test-message" { (EN.message) }
                        textarea #test-message name="message" required rows="2" {}
                    }
                    button.secondary type="submit" { (EN.send) }
                }
            }
            details.danger-zone {
                summary { (EN.disconnect) }
                p { (EN.disconnect_lead) }
                ul { @for line in EN.disconnect_points.split('\n') { li { (line) } } }
                form data-api=(api.clone()) data-method="DELETE" data-next=(format!("/console/t/{t}")) {
                    (csrf(&v))
                    div.field.check {
                        input #disconnect-sure type="checkbox" required;
                        label for="disconnect-sure" { (EN.disconnect_sure) }
                    }
                    button.danger type="submit" { (EN.disconnect) }
                }
            }
        }
    };
    Ok(layout::page(&v, Area::Tenant(t), Tab::Numbers, &title, body).await)
}

/// The number's message templates as the provider approved them, and a sync from it.
fn templates_card(v: &Visit, api: &str, templates: &Value) -> Markup {
    let rows = templates.as_array().map(Vec::as_slice).unwrap_or_default();
    html! {
        section.card {
            h2 { (EN.templates_title) }
            p.hint { (EN.templates_hint) }
            @if rows.is_empty() { p.empty { (EN.no_templates_synced) } }
            @else {
                div.table-wrap { table.list {
                    caption.visually-hidden { (EN.templates_title) }
                    thead { tr { th scope="col" { (EN.name) } th scope="col" { (EN.language) }
                        th scope="col" { (EN.category) } th scope="col" { (EN.status) } } }
                    tbody {
                        @for t in rows {
                            tr class=[(!t["sendable"].as_bool().unwrap_or(false)).then_some("muted")] {
                                td {
                                    @if let Some(shown) = t["display_name"].as_str() {
                                        (shown) " " small { code { (s(t, "name")) } }
                                    } @else { (s(t, "name")) }
                                }
                                td { (s(t, "language")) }
                                td { (s(t, "category")) } td { (s(t, "status")) }
                            }
                        }
                    }
                } }
            }
            form data-api=(format!("{api}/templates/sync")) data-method="POST" data-next="reload" {
                (csrf(v))
                button.secondary type="submit" { (EN.templates_sync) }
            }
        }
    }
}

/// Who may reach the number's reply policy (access policies, reference 001).
fn access_form(v: &Visit, api: &str, access: &Value) -> Markup {
    let policy = s(access, "policy");
    let shared: Vec<&str> = list(access, "shared")
        .iter()
        .map(|e| s(e, "email"))
        .collect();
    html! {
        section.card {
            h2 { (EN.access_title) }
            form data-api=(format!("{api}/access")) data-method="PUT" {
                (csrf(v))
                fieldset {
                    legend { (EN.access_legend) }
                    @for (value, label) in [("open", EN.access_open), ("email", EN.access_email), ("sharing", EN.access_sharing)] {
                        div.field.check {
                            input type="radio" id=(format!("access-{value}")) name="policy" value=(value) checked[policy == value];
                            label for=(format!("access-{value}")) { (label) }
                        }
                    }
                }
                div.field {
                    label for="access-shared" { (EN.access_shared) }
                    textarea #access-shared name="shared" data-type="lines" rows="3" { (shared.join("\n")) }
                }
                button type="submit" { (EN.save) }
            }
        }
    }
}

/// What Meta's redirect flow sends back to the endpoint's `return_url`.
#[derive(serde::Deserialize)]
pub struct Returned {
    connected: Option<String>,
    session: Option<String>,
    error: Option<String>,
}

/// `GET /console/meta-return`: the redirect flow's way back (an endpoint's `return_url` may
/// point here). The page the person lands on is found among their businesses through the API.
pub async fn meta_return(
    v: Visit,
    axum::extract::Query(q): axum::extract::Query<Returned>,
) -> Result<Response, Failure> {
    let tenants: Vec<String> = list(&v.session, "memberships")
        .iter()
        .filter(|m| s(m, "kind") == "tenant")
        .map(|m| s(m, "id").to_string())
        .collect();
    for t in &tenants {
        let t = id(t)?;
        if let Some(c) = q.connected.as_deref() {
            let c = id(c)?;
            if v.get(&format!("/api/v1/tenants/{t}/connections/{c}"))
                .await
                .is_ok()
            {
                return Ok(Redirect::to(&format!("/console/t/{t}/numbers/{c}")).into_response());
            }
        }
        if let Some(sid) = q.session.as_deref() {
            let sid = id(sid)?;
            if v.get(&format!("/api/v1/tenants/{t}/connect/meta/{sid}"))
                .await
                .is_ok()
            {
                return Ok(
                    Redirect::to(&format!("/console/t/{t}/connect/meta/{sid}")).into_response()
                );
            }
        }
    }
    let message = match q.error.as_deref() {
        Some("access_denied") => EN.signup_cancelled.to_string(),
        Some(code)
            if !code.is_empty()
                && code.len() <= 64
                && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            fill(EN.connect_failed_code, &[("code", code)])
        }
        Some(_) => EN.connect_failed.to_string(),
        None => EN.not_found.to_string(),
    };
    Ok(layout::bare(
        EN.connect_title,
        html! {
            p.notice.error role="alert" { (message) }
            p { a href="/console" { (EN.back_home) } }
        },
    )
    .into_response())
}
