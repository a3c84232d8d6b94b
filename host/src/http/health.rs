//! `GET /healthz`: liveness and readiness for load balancers and operators.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use crate::error::ApiError;

/// The health report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// `ok` when the database answers.
    pub database: &'static str,
    /// How many plugins are loaded.
    pub plugins: usize,
    /// What the operator should fix soon (e.g. a Graph API version past its end of life).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// 200 with the report when the database answers, 503 `database_unavailable` when it does not.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "OK", body = Health),
        crate::http::openapi::Unavailable,
    ),
    security(())
)]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if !state.store.ping().await {
        return Err(ApiError::DatabaseUnavailable);
    }
    Ok(Json(Health {
        status: "ok",
        database: "ok",
        plugins: state.plugins.loaded(),
        warnings: state
            .meta
            .version_warning(crate::store::now_ms())
            .into_iter()
            .chain(crate::connector::public_url_warning(&state.public_url))
            .collect(),
    }))
}
