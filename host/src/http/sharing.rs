//! Who may reach a number's reply policy (reference 001's access policies): each number's
//! policy and the emails it is shared with, and the access requests customers make, for owners
//! and admins to approve or refuse.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Tenant;
use super::connections::ConnectionPath;
use super::json::{ApiJson, ApiQuery};
use crate::error::ApiError;
use crate::store::{AccessRequestRecord, Mode, SharedEmail, StoreError};

/// The most emails one number may be shared with.
pub const MAX_SHARED: usize = 1_000;

/// A number's access policy and the emails it is shared with.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessView {
    /// `open` (anyone reaches the policy), `email` (contacts who proved an email with
    /// `/login`) or `sharing` (contacts whose proved email is in `shared`).
    pub policy: String,
    /// The emails the number is shared with.
    pub shared: Vec<SharedEmail>,
}

/// A number's new access policy and the whole list of emails it is shared with.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessChange {
    /// `open`, `email` or `sharing`.
    #[schema(pattern = "^(open|email|sharing)$(?!\\n)")]
    pub policy: String,
    /// Every email it is shared with (at most 1,000, else 422 `too_many_emails`; replaces the
    /// list). Omitted: unchanged.
    #[schema(value_type = Option<Vec<EmailText>>, max_items = 1000)]
    pub shared: Option<Vec<String>>,
}

/// An email address (else 422 `invalid_email`), at most 254 characters.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Email, example = "ana@example.com")]
#[allow(dead_code)]
pub struct EmailText(String);

async fn view(state: &AppState, tenant: &Tenant, connection: &str) -> Result<AccessView, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    if tx.connection(connection).await?.is_none() {
        return Err(ApiError::NotFound("connection"));
    }
    let view = AccessView {
        policy: tx.access_policy(connection).await?,
        shared: tx.shared_with(connection).await?,
    };
    tx.commit().await?;
    Ok(view)
}

/// Who may reach the number's reply policy (owners and admins).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connections/{connection}/access",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    responses(
        (status = 200, description = "OK", body = AccessView),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConnectionPath>,
) -> Result<Json<AccessView>, ApiError> {
    Ok(Json(view(&state, &tenant, &p.connection).await?))
}

/// Set the number's access policy and, optionally, the whole list of emails it is shared with
/// (owners and admins). Customers reach the policy only as it allows; the host answers the rest
/// and their `/login`, `/logout` and `/whoami` itself.
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/connections/{connection}/access",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    request_body = AccessChange,
    responses(
        (status = 200, description = "OK", body = AccessView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn change(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConnectionPath>,
    ApiJson(body): ApiJson<AccessChange>,
) -> Result<Json<AccessView>, ApiError> {
    if !crate::commands::POLICIES.contains(&body.policy.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_access_policy",
            "policy must be open, email or sharing",
        ));
    }
    let shared = match &body.shared {
        Some(list) => Some(emails(list)?),
        None => None,
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    if tx.connection(&p.connection).await?.is_none() {
        return Err(ApiError::NotFound("connection"));
    }
    let shared = match shared {
        Some(list) => list,
        None => tx
            .shared_with(&p.connection)
            .await?
            .into_iter()
            .map(|s| s.email)
            .collect(),
    };
    tx.set_access(
        &p.connection,
        &body.policy,
        &shared,
        tenant.access.actor.author(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(view(&state, &tenant, &p.connection).await?))
}

/// The emails of a list, checked and lower-cased, without repeats.
fn emails(list: &[String]) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_SHARED {
        return Err(ApiError::unprocessable(
            "too_many_emails",
            format!("a number may be shared with at most {MAX_SHARED} emails"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let address = crate::mail::address(e).map_err(|_| {
            ApiError::unprocessable(
                "invalid_email",
                format!("shared[{i}] is not an email address"),
            )
        })?;
        let address = address.to_string();
        if !out.contains(&address) {
            out.push(address);
        }
    }
    Ok(out)
}

/// `GET …/access-requests` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    /// `pending`, `approved` or `refused`.
    #[param(pattern = "^(pending|approved|refused)$(?!\\n)")]
    pub state: Option<String>,
    /// Items per page, 1–200 (default 50); another number → 400 `bad_request`.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (at most 200 characters; one this API did not
    /// issue may answer 400 `bad_request`).
    #[param(max_length = 200)]
    pub cursor: Option<String>,
}

/// A page of access requests.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessRequests {
    /// Newest first.
    pub data: Vec<AccessRequestRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Customers' requests for access to the tenant's numbers, newest first (owners and admins).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/access-requests",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), RequestsQuery),
    responses(
        (status = 200, description = "OK", body = AccessRequests),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn requests(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<RequestsQuery>,
) -> Result<Json<AccessRequests>, ApiError> {
    if let Some(s) = &q.state
        && !["pending", "approved", "refused"].contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(
            "state must be pending, approved or refused".into(),
        ));
    }
    let paging = super::json::PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = paging.limit()?;
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rows = tx
        .access_requests(q.state.as_deref(), paging.cursor()?, limit + 1)
        .await?;
    tx.commit().await?;
    let page = super::json::page(rows, limit, |r| r.id.clone());
    Ok(Json(AccessRequests {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize)]
pub(super) struct RequestPath {
    #[allow(dead_code)]
    tenant: String,
    request: String,
}

/// An owner's or admin's answer to an access request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `approve` (the number is shared with the request's email) or `refuse`.
    #[schema(pattern = "^(approve|refuse)$(?!\\n)")]
    pub decision: String,
}

/// Approve an access request (the number is shared with its email, so the customer reaches the
/// policy from their next message) or refuse it (owners and admins; 409 once decided).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/access-requests/{request}",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("request" = String, Path, description = "Access request id (`acr_…`)")),
    request_body = Decision,
    responses(
        (status = 200, description = "The decided request", body = AccessRequestRecord),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn decide(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<RequestPath>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Json<AccessRequestRecord>, ApiError> {
    let approve = match body.decision.as_str() {
        "approve" => true,
        "refuse" => false,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_decision",
                "decision must be approve or refuse",
            ));
        }
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    let decided = match tx
        .decide_access(&p.request, approve, tenant.access.actor.author())
        .await
    {
        Ok(Some(r)) => r,
        Ok(None) => return Err(ApiError::NotFound("access request")),
        Err(StoreError::Conflict(message)) => {
            return Err(ApiError::Conflict {
                code: "already_decided",
                message,
            });
        }
        Err(e) => return Err(e.into()),
    };
    tx.emit(
        "access",
        decided.conversation_id.as_deref(),
        None,
        serde_json::json!({"request": decided.id, "state": decided.state}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(decided))
}
