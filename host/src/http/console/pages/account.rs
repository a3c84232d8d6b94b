//! A tenant's other pages: the person's notifications, the consent ledger with its chain's
//! state, the people and their invitations, and the account (plan and usage, keys, delete).

use axum::extract::Path;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use super::super::layout::{self, Area, Tab, csrf, field, time};
use super::super::text::{EN, fill};
use super::super::{Failure, Visit, list, s};
use super::id;
use super::numbers::is_admin;

/// `GET /console/t/{tenant}/notifications`.
pub async fn notifications(v: Visit, Path(tenant): Path<String>) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let api = format!("/api/v1/tenants/{t}/notifications");
    let page = v.get(&format!("{api}?limit=100")).await?;
    let unread = page["unread"].as_i64().unwrap_or(0);
    let body = html! {
        @if unread > 0 {
            form data-api=(format!("{api}/read")) data-method="POST" {
                (csrf(&v))
                button.secondary type="submit" { (EN.mark_all_read) }
            }
        }
        section #notifications data-live="notification" {
            @if list(&page, "data").is_empty() { div.empty { (EN.no_notifications) } }
            ul.notifications {
                @for n in list(&page, "data") {
                    @let read = !n["read_at"].is_null();
                    li class=(if read { "read" } else { "unread" }) {
                        span.pill { (s(n, "kind")) }
                        " "
                        @if let Some(c) = n["conversation_id"].as_str() {
                            a href=(format!("/console/t/{t}/conversations/{c}")) { (s(n, "text")) }
                        } @else if let Some(c) = n["connection_id"].as_str() {
                            a href=(format!("/console/t/{t}/numbers/{c}")) { (s(n, "text")) }
                        } @else {
                            (s(n, "text"))
                        }
                        " "
                        span.when { (time(n["created_at"].as_i64())) }
                        @if !read {
                            form.inline data-api=(format!("{api}/{}/read", s(n, "id"))) data-method="POST" {
                                (csrf(&v))
                                button.link type="submit" { (EN.mark_read) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        &v,
        Area::Tenant(t),
        Tab::Notifications,
        EN.notifications_title,
        body,
    )
    .await)
}

/// `GET /console/t/{tenant}/consent`: the ledger, and (for admins) whether its chain holds.
pub async fn consent(v: Visit, Path(tenant): Path<String>) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let api = format!("/api/v1/tenants/{t}/consent");
    let admin = is_admin(&v, t);
    // Admins read the export (every row, verified); others the newest rows.
    let (rows, verified): (Vec<Value>, Option<bool>) = if admin {
        let export = v.get(&format!("{api}/export")).await?;
        (list(&export, "rows").to_vec(), export["verified"].as_bool())
    } else {
        let page = v.get(&format!("{api}?limit=200")).await?;
        (list(&page, "data").to_vec(), None)
    };
    let body = html! {
        p.lead { (EN.consent_lead) }
        @match verified {
            Some(true) => { p.notice.ok role="status" { (EN.chain_verified) } }
            Some(false) => { p.notice.error role="alert" { (EN.chain_broken) } }
            None => {}
        }
        @if admin {
            p { a.button.secondary href=(format!("{api}/export")) download="consent-ledger.json" { (EN.export_ledger) } }
        }
        div.table-wrap {
            table.list {
                caption.visually-hidden { (EN.consent_title) }
                thead { tr {
                    th scope="col" { (EN.when) } th scope="col" { (EN.action) } th scope="col" { (EN.scopes) }
                    th scope="col" { (EN.number) } th scope="col" { (EN.who) } th scope="col" { (EN.document) }
                } }
                tbody {
                    @for r in rows.iter().rev() {
                        tr class=(format!("action-{}", s(r, "action"))) {
                            td { (time(r["created_at"].as_i64())) }
                            td { span.pill { (s(r, "action")) } }
                            td { (scopes(r)) }
                            td { (r["connection_id"].as_str().unwrap_or(EN.whole_business)) }
                            td { (s(r, "actor")) @if let Some(ip) = r["ip"].as_str() { br; small { (ip) } } }
                            td { (r["document_version"].as_str().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { div.empty { (EN.no_consent) } }
    };
    Ok(layout::page(&v, Area::Tenant(t), Tab::Consent, EN.consent_title, body).await)
}

fn scopes(row: &Value) -> String {
    serde_json::from_str::<Vec<String>>(s(row, "scopes"))
        .map(|v| v.join(", "))
        .unwrap_or_default()
}

/// `GET /console/t/{tenant}/people`.
pub async fn people(v: Visit, Path(tenant): Path<String>) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let api = format!("/api/v1/tenants/{t}");
    let members = v.get(&format!("{api}/people")).await?;
    let admin = is_admin(&v, t);
    let invitations = if admin {
        v.get(&format!("{api}/invitations")).await.ok()
    } else {
        None
    };
    let roles = [
        ("agent", EN.role_agent),
        ("viewer", EN.role_viewer),
        ("admin", EN.role_admin),
        ("owner", EN.role_owner),
    ];
    let body = html! {
        (members_table(&members))
        @if let Some(inv) = &invitations {
            section.card {
                h2 { (EN.invite_title) }
                (invite_form(&v, &api, &roles))
                div #invitations data-live="" {
                    @if !list(inv, "data").is_empty() {
                        h3 { (EN.pending_invitations) }
                        ul {
                            @for i in list(inv, "data") {
                                li {
                                    (s(i, "email")) " · " (s(i, "role")) " · " (EN.expires) " " (time(i["expires_at"].as_i64()))
                                    form.inline data-api=(format!("{api}/invitations/{}", s(i, "id"))) data-method="DELETE" {
                                        (csrf(&v))
                                        button.link type="submit" { (EN.withdraw) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&v, Area::Tenant(t), Tab::People, EN.people_title, body).await)
}

/// The members of a tenant or partner, as `…/people` lists them.
pub fn members_table(members: &Value) -> maud::Markup {
    html! {
        div.table-wrap { table.list {
            caption.visually-hidden { (EN.people_title) }
            thead { tr { th scope="col" { (EN.name) } th scope="col" { (EN.email) } th scope="col" { (EN.role) } th scope="col" { (EN.since) } } }
            tbody {
                @for m in list(members, "data") {
                    tr { td { (s(m, "name")) } td { (s(m, "email")) } td { (s(m, "role")) } td { (time(m["created_at"].as_i64())) } }
                }
            }
        } }
    }
}

/// The invitation form of a tenant's or partner's people page (`api`: the tenant or partner).
pub fn invite_form(v: &Visit, api: &str, roles: &[(&str, &str)]) -> maud::Markup {
    html! {
        form data-api=(format!("{api}/invitations")) data-method="POST" data-reset data-done=(EN.invited) {
            (csrf(v))
            (field("invite-email", "email", EN.email, "email", None))
            div.field {
                label for="invite-role" { (EN.role) }
                select #invite-role name="role" {
                    @for (value, label) in roles { option value=(value) { (label) } }
                }
            }
            button type="submit" { (EN.invite) }
        }
    }
}

/// `GET /console/t/{tenant}/account`: plan and usage, keys, and deleting the account.
pub async fn account(v: Visit, Path(tenant): Path<String>) -> Result<Response, Failure> {
    let t = id(&tenant)?;
    let api = format!("/api/v1/tenants/{t}");
    let info = v.get(&api).await?;
    let plan = v.get(&format!("{api}/plan")).await?;
    let admin = is_admin(&v, t);
    let owner = v
        .membership("tenant", t)
        .is_some_and(|m| s(m, "role") == "owner");
    let keys = if admin {
        v.get(&format!("{api}/keys?limit=200")).await.ok()
    } else {
        None
    };
    let usage = &plan["usage"];
    let terms = &plan["plan"]["terms"];
    let limit = |v: &Value| {
        v.as_i64()
            .map_or(EN.unlimited.to_string(), |n| n.to_string())
    };
    let body = html! {
        section.card {
            h2 { (EN.plan_title) }
            dl.facts {
                div { dt { (EN.plan) } dd { (plan["plan"]["name"].as_str().unwrap_or(EN.no_plan)) } }
                div { dt { (EN.numbers_used) } dd {
                    (fill(EN.used_of, &[("used", &usage["numbers"].as_i64().unwrap_or(0).to_string()), ("limit", &limit(&terms["numbers"]))]))
                } }
                div { dt { (EN.messages_used) } dd {
                    (fill(EN.used_of, &[("used", &usage["messages_this_month"].as_i64().unwrap_or(0).to_string()), ("limit", &limit(&terms["monthly_messages"]))]))
                } }
                @if let Some(ch) = terms["channels"].as_array() {
                    div { dt { (EN.channels) } dd { (ch.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) } }
                }
                div { dt { (EN.ai_policies) } dd {
                    (if plan["plan"].is_null() || terms["ai_policies"].as_bool().unwrap_or(false) { EN.yes } else { EN.no })
                } }
            }
        }
        @if let Some(keys) = &keys {
            section.card {
                h2 { (EN.keys_title) }
                p.hint { (EN.keys_hint) }
                ul {
                    @for k in list(keys, "data") {
                        li {
                            code { (s(k, "id")) } " "
                            (k["label"].as_str().unwrap_or("")) " · " (k["role"].as_str().unwrap_or("")) " · "
                            (EN.created) " " (time(k["created_at"].as_i64()))
                            @if k["revoked_at"].is_null() {
                                form.inline data-api=(format!("{api}/keys/{}", s(k, "id"))) data-method="DELETE"
                                    data-confirm=(EN.revoke_confirm) {
                                    (csrf(&v))
                                    button.link type="submit" { (EN.revoke) }
                                }
                            } @else {
                                " " span.pill { (EN.revoked) }
                            }
                        }
                    }
                }
            }
        }
        @if owner {
            details.danger-zone {
                summary { (EN.delete_account) }
                p { (EN.delete_account_lead) }
                form data-api=(api.clone()) data-method="DELETE" data-next="/console" {
                    (csrf(&v))
                    (field("confirm-name", "confirm", &fill(EN.delete_account_confirm, &[("name", s(&info, "name"))]), "text", None))
                    button.danger type="submit" { (EN.delete_account) }
                }
            }
        }
    };
    Ok(layout::page(&v, Area::Tenant(t), Tab::Account, EN.account_title, body).await)
}
