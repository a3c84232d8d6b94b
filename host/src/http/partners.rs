//! `/api/v1/partners`: the operator creates partners; a partner reads its report.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Auth, Operator};
use super::json::ApiJson;
use crate::error::ApiError;
use crate::store::{Mode, ReportRow};
use crate::tenancy::{Principal, Scope, auth, ids};

/// `POST /api/v1/partners` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePartner {
    /// Display name: 1–200 characters (after trimming spaces), no control characters
    /// (else 422 `invalid_name`).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$(?!\\n)",
        example = "Acme"
    )]
    pub name: String,
    /// Its plugin namespace (`^[a-z][a-z0-9]{1,30}$`, not `switchyard`, `operator`,
    /// `partner`, `plugin` or `test`; else 422 `invalid_namespace`): it publishes plugins named
    /// `<namespace>-…` only. Can be given later with `PUT …/partners/{partner}/namespace`.
    #[serde(default)]
    #[schema(
        pattern = "^(?!(switchyard|operator|partner|plugin|test)$)[a-z][a-z0-9]{1,30}$(?!\\n)",
        example = "acme"
    )]
    pub namespace: Option<String>,
    /// Mint the partner's first key with it (default `true`); `false` when its people will
    /// sign in instead (invite its owner next), so no unused key exists.
    #[serde(default = "super::tenants::minted")]
    pub owner_key: bool,
}

/// `PUT /api/v1/partners/{partner}/namespace` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutNamespace {
    /// The namespace (`^[a-z][a-z0-9]{1,30}$`, not `switchyard`, `operator`, `partner`,
    /// `plugin` or `test`; else 422 `invalid_namespace`).
    #[schema(
        pattern = "^(?!(switchyard|operator|partner|plugin|test)$)[a-z][a-z0-9]{1,30}$(?!\\n)",
        example = "acme"
    )]
    pub namespace: String,
}

/// A partner's plugin namespace.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NamespaceView {
    /// `par_…`.
    pub partner: String,
    /// Its namespace.
    pub namespace: String,
}

/// Names no partner may take as a namespace.
const RESERVED_NAMESPACES: &[&str] = &["switchyard", "operator", "partner", "plugin", "test"];

/// Check a namespace: its shape, and that no plugin of another publisher already lives in it.
fn checked_namespace(state: &AppState, partner: &str, ns: &str) -> Result<(), ApiError> {
    let shape = ns.len() >= 2
        && ns.len() <= 31
        && ns.as_bytes()[0].is_ascii_lowercase()
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !shape || RESERVED_NAMESPACES.contains(&ns) {
        return Err(ApiError::unprocessable(
            "invalid_namespace",
            "a namespace is 2-31 lower-case letters and digits, starting with a letter, and not reserved",
        ));
    }
    let me = format!("partner:{partner}");
    let prefix = format!("{ns}-");
    if let Some(p) = state
        .plugins
        .list(crate::catalog::Viewer::Operator)
        .into_iter()
        .find(|p| p.name.starts_with(&prefix) && p.publisher != me)
    {
        return Err(ApiError::Conflict {
            code: "namespace_taken",
            message: format!(
                "{} is published by {}: choose another namespace",
                p.name, p.publisher
            ),
        });
    }
    Ok(())
}

/// Give a partner its plugin namespace (operator only).
#[utoipa::path(
    put,
    path = "/api/v1/partners/{partner}/namespace",
    tag = "partners",
    params(("partner" = String, Path, description = "Partner id (`par_…`)")),
    request_body = PutNamespace,
    responses(
        (status = 200, description = "OK", body = NamespaceView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn put_namespace(
    State(state): State<AppState>,
    _: Operator,
    axum::extract::Path(partner): axum::extract::Path<String>,
    ApiJson(body): ApiJson<PutNamespace>,
) -> Result<Json<NamespaceView>, ApiError> {
    checked_namespace(&state, &partner, &body.namespace)?;
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    tx.set_partner_namespace(&partner, &body.namespace)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound("partner"),
            crate::store::StoreError::Conflict(_) => ApiError::Conflict {
                code: "namespace_taken",
                message: format!("another partner has the namespace {:?}", body.namespace),
            },
            other => other.into(),
        })?;
    tx.commit().await?;
    Ok(Json(NamespaceView {
        partner,
        namespace: body.namespace,
    }))
}

/// A created partner with its first API key (shown once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedPartner {
    /// `par_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The partner's API key; store it now, it is not shown again (absent with
    /// `owner_key: false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// Create a partner (operator only).
#[utoipa::path(
    post,
    path = "/api/v1/partners",
    tag = "partners",
    request_body = CreatePartner,
    responses(
        (status = 201, description = "Created", body = CreatedPartner),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    _: Operator,
    ApiJson(body): ApiJson<CreatePartner>,
) -> Result<(StatusCode, Json<CreatedPartner>), ApiError> {
    let name = super::tenants::checked_name(&body.name)?;
    let id = ids::new_id("par");
    let key = auth::new_key();
    if let Some(ns) = &body.namespace {
        checked_namespace(&state, &id, ns)?;
    }
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    tx.insert_partner(&id, name).await?;
    if let Some(ns) = &body.namespace {
        tx.set_partner_namespace(&id, ns)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => ApiError::Conflict {
                    code: "namespace_taken",
                    message: format!("another partner has the namespace {ns:?}"),
                },
                other => other.into(),
            })?;
    }
    if body.owner_key {
        tx.insert_api_key(
            &key.id,
            &key.secret_hash,
            Some(&id),
            None,
            None,
            Some("initial"),
            "operator",
            None,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(partner = %id, key = body.owner_key.then_some(key.id.as_str()), "partner created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedPartner {
            id,
            name: name.to_string(),
            api_key: body.owner_key.then(|| key.token.to_string()),
        }),
    ))
}

/// Every partner (operator).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PartnerList {
    /// Oldest first (at most 1,000).
    pub data: Vec<crate::store::PartnerRecord>,
}

/// The partners (operator).
#[utoipa::path(
    get,
    path = "/api/v1/partners",
    tag = "partners",
    responses(
        (status = 200, description = "OK", body = PartnerList),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Operator,
) -> Result<Json<PartnerList>, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let data = tx.partners().await?;
    tx.commit().await?;
    Ok(Json(PartnerList { data }))
}

/// Connection states of one tenant in a report.
#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct ConnectionHealth {
    /// Live connections.
    pub live: i64,
    /// Connections that need attention (`expired`, `error`).
    pub attention: i64,
    /// Connections being set up.
    pub connecting: i64,
    /// Disconnected connections.
    pub disconnected: i64,
}

/// One tenant's line in a report: aggregates only.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportLine {
    /// Totals.
    #[serde(flatten)]
    pub totals: ReportRow,
    /// Connection states.
    pub connections: ConnectionHealth,
    /// Its plan (`null`: none, unlimited) and what it uses of it: counts only.
    pub plan: Option<super::plans::PlanView>,
    /// Numbers connected and messages sent this month, against the plan's terms (`null` for
    /// a deleted account).
    pub usage: Option<crate::plans::Usage>,
}

/// A partner's report.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Report {
    /// The partner.
    pub partner_id: String,
    /// One line per tenant.
    pub tenants: Vec<ReportLine>,
}

/// Per-tenant message counts and connection health of a partner's tenants.
#[utoipa::path(
    get,
    path = "/api/v1/partners/{partner}/report",
    tag = "partners",
    params(("partner" = String, Path, description = "Partner id (`par_…`)")),
    responses(
        (status = 200, description = "OK", body = Report),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(partner_id): Path<String>,
) -> Result<Json<Report>, ApiError> {
    let scope = match &principal {
        Principal::Operator => Scope::Operator,
        Principal::Partner {
            partner_id: own, ..
        } if own == &partner_id => principal.listing_scope(),
        Principal::Partner { .. } => return Err(ApiError::NotFound("partner")),
        Principal::Tenant { .. } => return Err(ApiError::Forbidden),
    };
    let mut tx = state.store.begin(scope, Mode::Read).await?;
    if !tx.partner_exists(&partner_id).await? {
        return Err(ApiError::NotFound("partner"));
    }
    let rows = tx.partner_report(&partner_id).await?;
    tx.commit().await?;
    let mut tenants = Vec::with_capacity(rows.len());
    for totals in rows {
        if totals.deleted_at.is_some() {
            // A deleted account keeps its counters in the report, nothing else.
            tenants.push(ReportLine {
                totals,
                connections: ConnectionHealth::default(),
                plan: None,
                usage: None,
            });
            continue;
        }
        // The partner's access to each of its tenants covers connection status, nothing more.
        let access = auth::access(&state.store, &principal, &totals.tenant_id).await?;
        let mut tx = state
            .store
            .begin(Scope::Tenant(access.scope), Mode::Read)
            .await?;
        let mut health = ConnectionHealth::default();
        for (status, n) in tx.connection_status_counts().await? {
            match status.as_str() {
                "live" => health.live += n,
                "connecting" => health.connecting += n,
                "disconnected" => health.disconnected += n,
                _ => health.attention += n,
            }
        }
        let plan = tx.tenant_plan().await?;
        let usage = crate::plans::usage(&mut tx).await?;
        tx.commit().await?;
        tenants.push(ReportLine {
            totals,
            connections: health,
            plan: plan.map(Into::into),
            usage: Some(usage),
        });
    }
    Ok(Json(Report {
        partner_id,
        tenants,
    }))
}
