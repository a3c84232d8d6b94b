//! The inbox (page 003): conversations with filters, and a conversation with its messages,
//! the composer (free text, or a template once the window has closed), the desk's actions and
//! the insights panel. Both refresh themselves from the tenant's event stream.

use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::super::layout::{self, Area, Tab, csrf, time};
use super::super::text::{EN, fill};
use super::super::{Failure, Visit, list, s};
use super::id;
use super::numbers::is_admin;

/// The inbox's filters (the API's own names).
#[derive(Deserialize, Default)]
pub struct Filters {
    state: Option<String>,
    owner: Option<String>,
    assignee: Option<String>,
    connection: Option<String>,
    q: Option<String>,
}

/// `GET /console/t/{tenant}/inbox`.
pub async fn inbox(
    v: Visit,
    Path(tenant): Path<String>,
    Query(f): Query<Filters>,
) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    // Built in its own function: the serializer is not `Send` and must not live across an await.
    let query = filter_query(&f);
    let page = v
        .get(&format!("/api/v1/tenants/{t}/conversations?{query}"))
        .await?;
    let select = |name: &str, label: &str, current: &Option<String>, options: &[(&str, &str)]| {
        html! {
            div.field {
                label for=(format!("filter-{name}")) { (label) }
                select id=(format!("filter-{name}")) name=(name) data-autosubmit {
                    option value="" { (EN.any) }
                    @for (value, text) in options {
                        option value=(value) selected[current.as_deref() == Some(*value)] { (text) }
                    }
                }
            }
        }
    };
    let body = html! {
        form.filters method="get" role="search" aria-label=(EN.filters) {
            (select("state", EN.conversation_state, &f.state,
                &[("open", EN.state_open), ("closed", EN.state_closed), ("archived", EN.state_archived)]))
            (select("owner", EN.owner, &f.owner, &[("policy", EN.owner_policy), ("people", EN.owner_people)]))
            (select("assignee", EN.assignee, &f.assignee, &[("me", EN.assigned_me), ("none", EN.assigned_none)]))
            div.field {
                label for="filter-q" { (EN.search) }
                input #filter-q type="search" name="q" maxlength="100" value=[f.q.as_deref()];
            }
            button.secondary type="submit" { (EN.apply) }
        }
        section #conversations data-live="message conversation insights" aria-live="off" {
            (conversation_list(t, list(&page, "data")))
        }
    };
    Ok(layout::page(&v, Area::Tenant(t), Tab::Inbox, EN.inbox_title, body).await)
}

/// The API query of the inbox's filters.
fn filter_query(f: &Filters) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", "100");
    let pairs = [
        ("state", &f.state),
        ("owner", &f.owner),
        ("assignee", &f.assignee),
        ("connection", &f.connection),
        ("q", &f.q),
    ];
    for (k, val) in pairs {
        if let Some(val) = val.as_deref().filter(|x| !x.is_empty()) {
            query.append_pair(k, val);
        }
    }
    query.finish()
}

fn contact(c: &Value) -> &str {
    c["contact_name"]
        .as_str()
        .or(c["contact_phone"].as_str())
        .or(c["contact_user_id"].as_str())
        .unwrap_or(EN.unknown_contact)
}

fn conversation_list(t: &str, rows: &[Value]) -> Markup {
    html! {
        @if rows.is_empty() {
            div.empty { (EN.no_conversations) }
        } @else {
            ul.conversation-list {
                @for c in rows {
                    li {
                        a href=(format!("/console/t/{t}/conversations/{}", s(c, "id"))) {
                            strong.contact { (contact(c)) }
                            " "
                            span.pill { (state_label(s(c, "state"))) }
                            " "
                            span.pill class=(s(c, "owner")) { (owner_label(s(c, "owner"))) }
                            " "
                            span.when { (time(c["last_message_at"].as_i64())) }
                        }
                    }
                }
            }
        }
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        "closed" => EN.state_closed,
        "archived" => EN.state_archived,
        _ => EN.state_open,
    }
}

fn owner_label(owner: &str) -> &'static str {
    match owner {
        "people" => EN.owner_people,
        _ => EN.owner_policy,
    }
}

/// `GET /console/t/{tenant}/conversations/{conversation}`.
pub async fn conversation(
    v: Visit,
    Path((tenant, conversation)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let c_id = id(&conversation)?;
    let api = format!("/api/v1/tenants/{t}/conversations/{c_id}");
    let view = v.get(&api).await?;
    let messages = v.get(&format!("{api}/messages?limit=100")).await?;
    let mut messages: Vec<&Value> = list(&messages, "data").iter().collect();
    messages.reverse();
    let c = &view["conversation"];
    let me = s(&v.session["user"], "id").to_string();
    let admin = is_admin(&v, t);
    let title = contact(c).to_string();
    let body = html! {
        nav.crumbs aria-label=(EN.breadcrumb) { ol {
            li { a href=(format!("/console/t/{t}/inbox")) { (EN.nav_inbox) } }
            li aria-current="page" { (title) }
        } }
        div.split {
            section.thread {
                div #conversation-facts data-live="conversation" {
                    (facts(c, &me))
                }
                ol.messages #messages data-live="message status" aria-label=(EN.messages) {
                    @for m in &messages { (message(t, m, &me)) }
                }
                (composer(&v, &api, &view["reply"]))
            }
            aside.side {
                section.card {
                    h2 { (EN.actions) }
                    div #conversation-actions data-live="conversation" {
                        (actions(&v, &api, c, &me, admin, t))
                    }
                }
                section.card {
                    h2 { (EN.insights) }
                    div #insights data-live="insights message" {
                        (insights(&view["insights"]))
                    }
                    form data-api=(format!("{api}/insights")) data-method="POST" data-reset data-done=(EN.insights_done) {
                        (csrf(&v))
                        button.secondary type="submit" { (EN.insights_generate) }
                    }
                }
            }
        }
    };
    Ok(layout::page(&v, Area::Tenant(t), Tab::Inbox, &title, body).await)
}

fn facts(c: &Value, me: &str) -> Markup {
    html! {
        dl.facts {
            div { dt { (EN.conversation_state) } dd { span.pill { (state_label(s(c, "state"))) } } }
            div { dt { (EN.owner) } dd { span.pill class=(s(c, "owner")) { (owner_label(s(c, "owner"))) } } }
            div { dt { (EN.assignee) } dd {
                @match c["assignee"].as_str() {
                    Some(a) if a == me => { (EN.assigned_me) }
                    Some(a) => { (a) }
                    None => { (EN.assigned_none) }
                }
            } }
            @if let Some(p) = c["contact_phone"].as_str() { div { dt { (EN.phone) } dd { (p) } } }
            @if let Some(e) = c["contact_email"].as_str() { div { dt { (EN.email) } dd { (e) } } }
            @if let Some(r) = c["handoff_reason"].as_str() { div { dt { (EN.handoff_reason) } dd { (r) } } }
        }
    }
}

fn message(t: &str, m: &Value, me: &str) -> Markup {
    // The API names directions `in` and `out`.
    let dir = match s(m, "direction") {
        "out" => "out",
        _ => "in",
    };
    let failed = s(m, "status") == "failed";
    html! {
        li.message class=(dir) class=[failed.then_some("status-failed")] id=(format!("m-{}", s(m, "id"))) {
            div.bubble {
                @if m["referral"].is_object() { (referral(&m["referral"])) }
                @if let Some(body) = m["body"].as_str() {
                    p.body { (body) }
                } @else {
                    p.body.kind { "[" (s(m, "kind")) "]" }
                }
                @for media in list(m, "media") {
                    p.media {
                        a href=(format!("/api/v1/tenants/{t}/media/{}", s(media, "id"))) {
                            (media["caption"].as_str().or(media["mime_type"].as_str()).unwrap_or(EN.attachment))
                        }
                    }
                }
                @if let Some(f) = m["failure"].as_str() { p.failure role="note" { (f) } }
                p.meta {
                    (time(m["created_at"].as_i64()))
                    @if dir == "out" { " " span.status { (s(m, "status")) } }
                    @match m["author"].as_str() {
                        Some(a) if a == me => { " " span.author { (EN.you) } }
                        Some("host") => { " " span.author { (EN.author_host) } }
                        Some("policy") => { " " span.author { (EN.author_policy) } }
                        Some("echo") => { " " span.author { (EN.author_echo) } }
                        Some(a) if a.starts_with("key_") => { " " span.author { (EN.author_program) } }
                        Some(_) => { " " span.author { (EN.author_teammate) } }
                        None => {}
                    }
                }
            }
        }
    }
}

/// The ad or post that started the chat: its headline, linked to it when its URL is https (the
/// URL comes from the provider; nothing else is linked).
fn referral(r: &Value) -> Markup {
    let headline = r["headline"]
        .as_str()
        .or(r["body"].as_str())
        .filter(|h| !h.trim().is_empty())
        .unwrap_or(EN.referral_untitled);
    let from = match r["source_type"].as_str() {
        Some("post") => EN.referral_post,
        _ => EN.referral_ad,
    };
    let link = r["source_url"]
        .as_str()
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| u.scheme() == "https");
    html! {
        p.referral {
            (from) " "
            @match link {
                Some(u) => {
                    a href=(u.as_str()) rel="noopener noreferrer nofollow" target="_blank" { (headline) }
                }
                None => { (headline) }
            }
        }
    }
}

fn composer(v: &Visit, api: &str, reply: &Value) -> Markup {
    html! {
        @match s(reply, "mode") {
            "free-form" => {
                form.composer data-api=(format!("{api}/messages")) data-method="POST" data-reset data-done=(EN.sent) {
                    (csrf(v))
                    label for="reply-text" { (EN.reply) }
                    textarea #reply-text name="text" required rows="3" maxlength="4096" {}
                    @if let Some(closes) = reply["window_closes_at"].as_i64() {
                        p.hint { (EN.window_closes) " " (time(Some(closes))) }
                    }
                    button type="submit" { (EN.send) }
                }
            }
            "template" => {
                p.notice.info { (reply["reason"].as_str().unwrap_or(EN.window_closed)) }
                @for tpl in list(reply, "templates") {
                    form.composer data-api=(format!("{api}/messages")) data-method="POST" data-reset data-done=(EN.sent) {
                        (csrf(v))
                        input type="hidden" name="template.name" value=(s(tpl, "name"));
                        input type="hidden" name="template.language" value=(s(tpl, "language"));
                        @let fid = format!("tpl-{}-{}", s(tpl, "name"), s(tpl, "language"));
                        @let shown = match tpl["display_name"].as_str() {
                            Some(d) => format!("{d} ({})", s(tpl, "name")),
                            None => s(tpl, "name").to_string(),
                        };
                        label for=(fid) { (fill(EN.template_parameters, &[("name", &shown), ("language", s(tpl, "language"))])) }
                        textarea id=(fid) name="template.parameters" data-type="lines" rows="2" {}
                        button type="submit" { (EN.send_template) }
                    }
                }
                @if list(reply, "templates").is_empty() { p.hint { (EN.no_templates) } }
            }
            _ => {
                p.notice.warn { (reply["reason"].as_str().unwrap_or(EN.cannot_send)) }
            }
        }
    }
}

fn actions(v: &Visit, api: &str, c: &Value, me: &str, admin: bool, t: &str) -> Markup {
    let patch = |fields: Markup, label: &str, class: &str| {
        html! {
            form data-api=(api) data-method="PATCH" {
                (csrf(v))
                (fields)
                button class=(class) type="submit" { (label) }
            }
        }
    };
    let hidden = |name: &str, value: &str| html! { input type="hidden" name=(name) value=(value); };
    html! {
        div.actions {
            @match s(c, "state") {
                "open" => {
                    (patch(hidden("state", "closed"), EN.close, "secondary"))
                    (patch(hidden("state", "archived"), EN.archive, "secondary"))
                }
                _ => { (patch(hidden("state", "open"), EN.reopen, "secondary")) }
            }
            @if s(c, "owner") == "policy" {
                (patch(hidden("owner", "people"), EN.ai_off, "secondary"))
            } @else {
                (patch(hidden("owner", "policy"), EN.ai_on, "secondary"))
            }
            @if c["assignee"].as_str() != Some(me) && !me.is_empty() {
                (patch(hidden("assignee", me), EN.assign_me, "secondary"))
            }
            @if c["assignee"].is_string() {
                (patch(html! { input type="hidden" name="assignee" data-type="json" value="null"; }, EN.unassign, "link"))
            }
        }
        @if admin {
            details.danger-zone {
                summary { (EN.delete_conversation) }
                p { (EN.delete_conversation_lead) }
                form data-api=(api) data-method="DELETE" data-next=(format!("/console/t/{t}/inbox")) {
                    (csrf(v))
                    div.field.check {
                        input #delete-sure type="checkbox" required;
                        label for="delete-sure" { (EN.delete_sure) }
                    }
                    button.danger type="submit" { (EN.delete) }
                }
            }
        }
    }
}

fn insights(i: &Value) -> Markup {
    html! {
        @if i.is_null() {
            p.hint { (EN.insights_none) }
        } @else {
            dl.facts {
                div { dt { (EN.sentiment) } dd { span.pill class=(format!("sentiment-{}", s(i, "sentiment"))) { (s(i, "sentiment")) }
                    " " (format!("{:+.2}", i["score"].as_f64().unwrap_or(0.0))) } }
                div { dt { (EN.summary) } dd { (s(i, "summary")) } }
                @if let Some(l) = i["language"].as_str() { div { dt { (EN.language) } dd { (l) } } }
                div { dt { (EN.computed) } dd { (time(i["computed_at"].as_i64())) } }
            }
            @if i["stale"].as_bool().unwrap_or(false) { p.notice.info { (EN.insights_stale) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An ad's headline shows on its message, linked only to an https URL, never carrying
    /// markup of its own.
    #[test]
    fn a_referral_links_only_to_https() {
        // Shaped as the API serves it.
        let kept = crate::store::ReferralRecord {
            source_type: Some("ad".into()),
            headline: Some("Spring <b>sale</b>".into()),
            source_url: Some("https://fb.me/2ZulEu42P".into()),
            click_id: Some("k".into()),
            ..Default::default()
        };
        let linked = referral(&serde_json::to_value(kept).expect("json")).into_string();
        assert!(linked.contains("Started from an ad:"), "{linked}");
        assert!(
            linked.contains(
                r#"<a href="https://fb.me/2ZulEu42P" rel="noopener noreferrer nofollow""#
            ),
            "{linked}"
        );
        assert!(
            linked.contains("Spring &lt;b&gt;sale&lt;/b&gt;"),
            "{linked}"
        );
        for url in [
            "http://fb.me/x",
            "javascript:alert(1)",
            "//fb.me/x",
            "fb.me",
        ] {
            let plain = referral(&json!({"source_type": "post", "source_url": url})).into_string();
            assert!(!plain.contains("<a"), "{url}: {plain}");
            assert!(
                plain.contains("Started from a post: (no headline)"),
                "{plain}"
            );
        }
    }
}
