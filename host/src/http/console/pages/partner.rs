//! A partner's pages: its tenants with their connection states, volume and plan use (counts
//! only, never contact data), creating, suspending and reinstating them, inviting each one's
//! first owner; its plugins; its people.

use axum::extract::Path;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use super::super::layout::{self, Area, Tab, csrf, field, invite_owner};
use super::super::text::{EN, fill};
use super::super::{Failure, Visit, list, s};
use super::account::{invite_form, members_table};
use super::id;

/// `GET /console/p/{partner}`: the partner's tenants.
pub async fn tenants(v: Visit, Path(partner): Path<String>) -> Result<Response, Failure> {
    let p = id(&partner)?;
    let report = v.get(&format!("/api/v1/partners/{p}/report")).await?;
    let plugins = v
        .get_in("/api/v1/plugins", Some(p))
        .await
        .unwrap_or(Value::Null);
    let mine = format!("partner:{p}");
    let body = html! {
        section.card {
            h2 { (EN.create_tenant) }
            form data-api="/api/v1/tenants" data-method="POST" data-context=(p) data-reset data-done=(EN.tenant_created) {
                (csrf(&v))
                (field("tenant-name", "name", EN.business_name, "text", None))
                input type="hidden" name="owner_key" data-type="json" value="false";
                button type="submit" { (EN.create_tenant) }
            }
        }
        section #tenants data-live="" {
            @let lines = list(&report, "tenants");
            @if lines.is_empty() { div.empty { (EN.no_tenants) } }
            div.cards {
                @for line in lines {
                    @let t = s(line, "tenant_id");
                    @let suspended = s(line, "status") == "suspended";
                    article.card class=(if suspended { "state-disabled" } else { "state-live" }) {
                        header {
                            h2 { (s(line, "name")) }
                            span.badge class=(if suspended { "state-disabled" } else { "state-live" }) {
                                (if suspended { EN.suspended } else { EN.active_tenant })
                            }
                        }
                        dl.facts {
                            div { dt { (EN.tenant_id) } dd { code { (t) } } }
                            div { dt { (EN.messages_in_out) } dd {
                                (line["messages_in"].as_i64().unwrap_or(0)) " / " (line["messages_out"].as_i64().unwrap_or(0))
                            } }
                            div { dt { (EN.numbers_by_state) } dd {
                                @if let Some(states) = line["connections"].as_object() {
                                    (states.iter().filter(|(_, n)| n.as_i64().unwrap_or(0) > 0)
                                        .map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", "))
                                }
                            } }
                            div { dt { (EN.plan) } dd { (line["plan"]["name"].as_str().unwrap_or(EN.no_plan)) } }
                            @if let Some(u) = line["usage"].as_object() {
                                div { dt { (EN.messages_used) } dd { (u.get("messages_this_month").and_then(Value::as_i64).unwrap_or(0)) } }
                                @let priced = u.get("pricing_this_month").and_then(Value::as_array).cloned().unwrap_or_default();
                                @if !priced.is_empty() {
                                    div { dt { (EN.pricing_categories) } dd {
                                        (priced.iter().map(|p| fill(EN.pricing_line, &[
                                            ("category", s(p, "category")),
                                            ("messages", &p["messages"].as_i64().unwrap_or(0).to_string()),
                                            ("billable", &p["billable"].as_i64().unwrap_or(0).to_string()),
                                        ])).collect::<Vec<_>>().join(", "))
                                    } }
                                }
                            }
                        }
                        div.actions {
                            @if suspended {
                                form data-api=(format!("/api/v1/tenants/{t}/reinstate")) data-method="POST" {
                                    (csrf(&v)) button.secondary type="submit" { (EN.reinstate) }
                                }
                            } @else {
                                form data-api=(format!("/api/v1/tenants/{t}/suspend")) data-method="POST"
                                    data-confirm=(fill(EN.suspend_confirm, &[("name", s(line, "name"))])) {
                                    (csrf(&v)) button.danger type="submit" { (EN.suspend) }
                                }
                            }
                        }
                        (invite_owner(&v, &format!("/api/v1/tenants/{t}/invitations"), t))
                    }
                }
            }
        }
        section.card {
            h2 { (EN.plugins_title) }
            ul {
                @for pl in list(&plugins, "data") {
                    li {
                        strong { (s(pl, "name")) } " · " (s(pl, "world"))
                        " · " (pl["promoted"].as_str().unwrap_or("—"))
                        @if s(pl, "publisher") == mine { " " span.pill { (EN.yours) } }
                    }
                }
            }
        }
    };
    Ok(layout::page(&v, Area::Partner(p), Tab::Tenants, EN.tenants_title, body).await)
}

/// `GET /console/p/{partner}/people`.
pub async fn people(v: Visit, Path(partner): Path<String>) -> Result<Response, Failure> {
    let p = id(&partner)?;
    let api = format!("/api/v1/partners/{p}");
    let members = v.get(&format!("{api}/people")).await?;
    let body = html! {
        (members_table(&members))
        section.card {
            h2 { (EN.invite_title) }
            (invite_form(&v, &api, &[("member", EN.role_member), ("owner", EN.role_owner)]))
        }
    };
    Ok(layout::page(&v, Area::Partner(p), Tab::People, EN.people_title, body).await)
}
