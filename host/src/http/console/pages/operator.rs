//! The operator's pages (signed in with the operator token): partners, plugins (upload,
//! promote, roll back, grants, signatures), dead jobs and replay, and the host's health.

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::Value;

use super::super::layout::{self, Area, Tab, csrf, field, invite_owner, time};
use super::super::text::{EN, fill};
use super::super::{Failure, OperatorVisit, list, s};
use super::sign_in::Next;
use super::{id, safe_next};

/// `GET /console/operator/sign-in`: the operator token opens an 8-hour console session.
pub async fn sign_in(Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref().unwrap_or("/console/operator"));
    layout::bare(
        EN.operator_sign_in_title,
        html! {
            form.narrow data-api="/api/v1/operator/session" data-method="POST" data-next=(next) data-no-auth-redirect {
                p.hint { (EN.operator_sign_in_hint) }
                (field("token", "token", EN.operator_token, "password", None))
                button type="submit" { (EN.sign_in) }
            }
        },
    )
    .into_response()
}

/// `GET /console/operator`: the partners, with their businesses' counts.
pub async fn partners(OperatorVisit(v): OperatorVisit) -> Result<Response, Failure> {
    let partners = v.get("/api/v1/partners").await?;
    let mut rows = Vec::new();
    for p in list(&partners, "data").iter().take(200) {
        let pid = id(s(p, "id"))?;
        let report = v
            .get(&format!("/api/v1/partners/{pid}/report"))
            .await
            .unwrap_or(Value::Null);
        rows.push((p, report));
    }
    let body = html! {
        section.card {
            h2 { (EN.create_partner) }
            form data-api="/api/v1/partners" data-method="POST" data-reset data-done=(EN.partner_created) {
                (csrf(&v))
                (field("partner-name", "name", EN.partner_name, "text", None))
                div.field {
                    label for="partner-namespace" { (EN.namespace) " " span.optional { (EN.optional) } }
                    input #partner-namespace name="namespace" type="text" pattern="[a-z][a-z0-9]{1,30}" autocomplete="off";
                    p.hint { (EN.namespace_hint) }
                }
                input type="hidden" name="owner_key" data-type="json" value="false";
                button type="submit" { (EN.create_partner) }
            }
        }
        section #partners data-live="" {
            @if rows.is_empty() { div.empty { (EN.no_partners) } }
            div.cards {
                @for (p, report) in &rows {
                    @let pid = s(p, "id");
                    @let tenants = list(report, "tenants");
                    article.card {
                        header { h2 { (s(p, "name")) } }
                        dl.facts {
                            div { dt { (EN.tenant_id) } dd { code { (pid) } } }
                            div { dt { (EN.nav_tenants) } dd { (tenants.len()) } }
                            div { dt { (EN.messages_in_out) } dd {
                                (tenants.iter().filter_map(|t| t["messages_in"].as_i64()).sum::<i64>())
                                " / "
                                (tenants.iter().filter_map(|t| t["messages_out"].as_i64()).sum::<i64>())
                            } }
                            div { dt { (EN.created) } dd { (time(p["created_at"].as_i64())) } }
                        }
                        (invite_owner(&v, &format!("/api/v1/partners/{pid}/invitations"), pid))
                    }
                }
            }
        }
    };
    Ok(layout::page(&v, Area::Operator, Tab::Partners, EN.partners_title, body).await)
}

/// `GET /console/operator/plugins`: every plugin, its versions and what each may reach.
pub async fn plugins(OperatorVisit(v): OperatorVisit) -> Result<Response, Failure> {
    let plugins = v.get("/api/v1/plugins").await?;
    let body = html! {
        section.card {
            h2 { (EN.upload_plugin) }
            form data-api="/api/v1/plugins" data-method="POST" data-upload data-content-type="application/wasm" data-next="reload" {
                (csrf(&v))
                div.field {
                    label for="plugin-file" { (EN.plugin_file) }
                    input #plugin-file type="file" name="file" accept=".wasm,application/wasm" required;
                    p.hint { (EN.plugin_file_hint) }
                }
                button type="submit" { (EN.upload) }
            }
        }
        @for p in list(&plugins, "data") {
            @let name = s(p, "name");
            @let api = format!("/api/v1/plugins/{}", url_seg(name));
            section.card.plugin {
                header {
                    h2 { (name) }
                    span.pill { (s(p, "world")) }
                }
                dl.facts {
                    div { dt { (EN.publisher) } dd { (s(p, "publisher")) } }
                    div { dt { (EN.promoted) } dd { (p["promoted"].as_str().unwrap_or("—"))
                        @if let Some(r) = p["promoted_reason"].as_str() { " · " (r) } } }
                    @if let Some(prev) = p["previous"].as_str() {
                        div { dt { (EN.previous) } dd { (prev) } }
                    }
                    div { dt { (EN.auto_rollback) } dd {
                        (if p["failure_policy"]["auto_rollback"].as_bool().unwrap_or(false) { EN.yes } else { EN.no })
                    } }
                }
                @if p["previous"].is_string() {
                    form data-api=(format!("{api}/rollback")) data-method="POST" data-next="reload"
                        data-confirm=(fill(EN.rollback_confirm, &[("name", name)])) {
                        (csrf(&v))
                        input type="hidden" name="reason" value="rolled back from the console";
                        button.secondary type="submit" { (EN.roll_back) }
                    }
                }
                div.table-wrap { table.list {
                    caption.visually-hidden { (fill(EN.versions_of, &[("name", name)])) }
                    thead { tr {
                        th scope="col" { (EN.version) } th scope="col" { (EN.source) } th scope="col" { (EN.signature) }
                        th scope="col" { (EN.egress) } th scope="col" { (EN.actions) }
                    } }
                    tbody {
                        @for ver in list(p, "versions") {
                            @let version = s(ver, "version");
                            @let requested: Vec<&str> = list(ver, "egress_requested").iter().filter_map(Value::as_str).collect();
                            @let granted: Vec<&str> = list(ver, "egress_granted").iter().filter_map(Value::as_str).collect();
                            tr {
                                td { strong { (version) } br; small { (s(ver, "interface")) }
                                    @if let Some(e) = ver["load_error"].as_str() { br; span.failure { (e) } } }
                                td { (s(ver, "source")) br; small { (ver["size_bytes"].as_i64().unwrap_or(0) / 1024) " KiB" } }
                                td { (s(&ver["signature"], "state"))
                                    @if let Some(k) = ver["signature"]["key"].as_str() { br; small { code { (k) } } } }
                                td {
                                    @if requested.is_empty() { "—" } @else {
                                        form data-api=(format!("{api}/{}/grants", url_seg(version))) data-method="PUT" data-next="reload" {
                                            (csrf(&v))
                                            @let fid = format!("grants-{name}-{version}");
                                            label.visually-hidden for=(fid) { (EN.egress) }
                                            textarea id=(fid) name="hosts" data-type="lines" rows=(requested.len().min(6)) { (granted.join("\n")) }
                                            p.hint { (EN.requested) " " (requested.join(", ")) }
                                            button.secondary type="submit" { (EN.grant) }
                                        }
                                    }
                                }
                                td {
                                    @if p["promoted"].as_str() != Some(version) && ver["loaded"].as_bool().unwrap_or(false) {
                                        form data-api=(format!("{api}/promote")) data-method="POST" data-next="reload" {
                                            (csrf(&v))
                                            input type="hidden" name="version" value=(version);
                                            button.secondary type="submit" { (EN.promote) }
                                        }
                                    }
                                    @if s(ver, "source") == "upload" && p["promoted"].as_str() != Some(version) {
                                        form data-api=(format!("{api}/{}", url_seg(version))) data-method="DELETE" data-next="reload"
                                            data-confirm=(fill(EN.delete_version_confirm, &[("name", name), ("version", version)])) {
                                            (csrf(&v))
                                            button.link type="submit" { (EN.delete) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    };
    Ok(layout::page(&v, Area::Operator, Tab::Plugins, EN.plugins_title, body).await)
}

/// A plugin name or version in a path (names and versions are checked on upload; this keeps
/// a path a path whatever they hold).
fn url_seg(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `GET /console/operator/jobs`: jobs that ran out of attempts, to replay.
pub async fn jobs(OperatorVisit(v): OperatorVisit) -> Result<Response, Failure> {
    let dead = v.get("/api/v1/jobs/dead").await?;
    let jobs = dead.as_array().map(Vec::as_slice).unwrap_or_default();
    let body = html! {
        p.lead { (EN.jobs_lead) }
        @if jobs.is_empty() { div.empty { (EN.no_dead_jobs) } }
        @else {
            div.table-wrap { table.list {
                caption.visually-hidden { (EN.nav_jobs) }
                thead { tr { th scope="col" { (EN.job) } th scope="col" { (EN.kind) } th scope="col" { (EN.attempts) }
                    th scope="col" { (EN.last_error) } th scope="col" { (EN.actions) } } }
                tbody {
                    @for j in jobs {
                        tr {
                            td { code { (s(j, "id")) } }
                            td { (s(j, "kind")) }
                            td.num { (j["attempts"].as_i64().unwrap_or(0)) }
                            td { (j["last_error"].as_str().unwrap_or("—")) }
                            td {
                                form data-api=(format!("/api/v1/jobs/{}/replay", url_seg(s(j, "id")))) data-method="POST" data-next="reload" {
                                    (csrf(&v))
                                    button.secondary type="submit" { (EN.replay) }
                                }
                            }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page(&v, Area::Operator, Tab::Jobs, EN.jobs_title, body).await)
}

/// `GET /console/operator/health`: what `/healthz` says.
pub async fn health(OperatorVisit(v): OperatorVisit) -> Result<Response, Failure> {
    let health = v.get("/healthz").await?;
    let body = html! {
        dl.facts.card {
            @if let Some(fields) = health.as_object() {
                @for (k, val) in fields {
                    div { dt { (k) } dd { (match val { Value::String(t) => t.clone(), other => other.to_string() }) } }
                }
            }
        }
    };
    Ok(layout::page(&v, Area::Operator, Tab::Health, EN.health_title, body).await)
}
