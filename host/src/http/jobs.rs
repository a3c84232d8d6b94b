//! `/api/v1/jobs`: the operator lists dead-lettered jobs and replays them.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::AppState;
use super::auth::Operator;
use super::json::{ApiQuery, LimitQuery};
use crate::error::ApiError;
use crate::store::Mode;
use crate::tenancy::Scope;

/// A dead-lettered job.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadJob {
    /// `job_…`.
    pub id: String,
    /// What it was doing.
    pub kind: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// The dead-lettered jobs, oldest first, up to `limit` (operator only).
#[utoipa::path(
    get,
    path = "/api/v1/jobs/dead",
    tag = "jobs",
    params(LimitQuery),
    responses(
        (status = 200, description = "OK", body = Vec<DeadJob>),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn dead(
    State(state): State<AppState>,
    _: Operator,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> Result<Json<Vec<DeadJob>>, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let rows = tx.dead_jobs(q.limit()?).await?;
    tx.commit().await?;
    Ok(Json(
        rows.into_iter()
            .map(|(id, kind, attempts, last_error)| DeadJob {
                id,
                kind,
                attempts,
                last_error,
            })
            .collect(),
    ))
}

/// A replayed job.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// `job_…`.
    pub id: String,
    /// `queued`.
    pub state: &'static str,
}

/// Queue a dead job again with a fresh attempt budget (operator only).
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{job}/replay",
    tag = "jobs",
    params(("job" = String, Path, description = "Job id (`job_…`)")),
    responses(
        (status = 200, description = "Queued again", body = Replayed),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn replay(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Replayed>, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    if !tx.replay_job(&id).await? {
        return Err(ApiError::NotFound("dead job"));
    }
    tx.commit().await?;
    state.jobs.notify_one();
    Ok(Json(Replayed {
        id,
        state: "queued",
    }))
}
