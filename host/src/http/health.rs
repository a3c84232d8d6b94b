//! `GET /healthz` (liveness), `GET /readyz` (readiness) and `GET /metrics` for load balancers,
//! operators and their scrapers.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::error::ApiError;
use crate::store::Mode;
use crate::tenancy::Scope;

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

/// Whether this host should receive traffic, and what stops it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `ok` or `unavailable`.
    pub database: &'static str,
    /// How many plugin versions are loaded.
    pub plugins: usize,
    /// The supervised background tasks by name (job workers, receipt writer, …).
    #[schema(value_type = std::collections::BTreeMap<String, crate::supervise::TaskCount>)]
    pub tasks: std::collections::BTreeMap<&'static str, crate::supervise::TaskCount>,
    /// What keeps the host from being ready (empty when ready).
    pub problems: Vec<String>,
}

/// 200 when the database answers, every job worker and the receipt writer run and every
/// plugin version calls can reach is loaded; else 503 with the problems.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: `problems` says why", body = Readiness),
    ),
    security(())
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = state.store.ping().await;
    let readiness = readiness(
        database,
        state.tasks.snapshot(),
        &[("job worker", state.workers), ("receipt writer", 1)],
        state.plugins.loaded(),
        state.plugins.not_loaded(),
    );
    let status = if readiness.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// Judge readiness: the database answers, each `expected` task runs as many times as wanted
/// and none is restarting or stopped, and no reachable plugin version failed to load.
fn readiness(
    database: bool,
    tasks: std::collections::BTreeMap<&'static str, crate::supervise::TaskCount>,
    expected: &[(&str, usize)],
    plugins: usize,
    not_loaded: Vec<String>,
) -> Readiness {
    let mut problems = Vec::new();
    if !database {
        problems.push("database: does not answer".to_string());
    }
    for (name, want) in expected {
        let running = tasks.get(name).map_or(0, |c| c.running as usize);
        if running < *want {
            problems.push(format!("{name}: {running} of {want} running"));
        }
    }
    problems.extend(crate::supervise::problems(&tasks));
    problems.extend(not_loaded.into_iter().map(|p| format!("plugin {p}")));
    Readiness {
        status: if problems.is_empty() {
            "ready"
        } else {
            "not_ready"
        },
        database: if database { "ok" } else { "unavailable" },
        plugins,
        tasks,
        problems,
    }
}

/// The host's metrics in Prometheus's text format, for the operator's scraper: it presents
/// `SWITCHYARD_METRICS_TOKEN` (or the operator token) as a bearer token. Job queue gauges are
/// read from the database at each scrape.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "No bearer token, or not the metrics or operator token", body = crate::http::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let allowed = presented.is_some_and(|t| {
        state.operator.matches(t) || state.metrics_token.as_ref().is_some_and(|m| m.matches(t))
    });
    if !allowed {
        return ApiError::Unauthorized.into_response();
    }
    let now = crate::store::now_ms();
    match state.store.begin(Scope::Host, Mode::Read).await {
        Ok(mut tx) => match tx.job_queue(now).await {
            Ok(rows) => crate::metrics::set_queue(&crate::jobs::KINDS, &rows, now),
            Err(e) => tracing::warn!(error = %e, "metrics: the job queue could not be read"),
        },
        Err(e) => tracing::warn!(error = %e, "metrics: the job queue could not be read"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        crate::metrics::render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::TaskCount;

    fn running(n: u32) -> TaskCount {
        TaskCount {
            running: n,
            ..TaskCount::default()
        }
    }

    #[test]
    fn ready_only_when_everything_runs() {
        let all = std::collections::BTreeMap::from([
            ("job worker", running(4)),
            ("receipt writer", running(1)),
        ]);
        let expected = [("job worker", 4), ("receipt writer", 1)];
        let ok = readiness(true, all.clone(), &expected, 3, Vec::new());
        assert_eq!((ok.status, ok.problems.len()), ("ready", 0));

        // A job worker died and waits to restart: not ready, and it says which.
        let mut dying = all.clone();
        dying.insert(
            "job worker",
            TaskCount {
                running: 3,
                restarting: 1,
                stopped: 0,
                restarts: 1,
            },
        );
        let r = readiness(true, dying, &expected, 3, Vec::new());
        assert_eq!(r.status, "not_ready");
        assert_eq!(
            r.problems,
            vec![
                "job worker: 3 of 4 running".to_string(),
                "job worker: 1 of 4 restarting after a failure".to_string()
            ]
        );

        // The workers stopped (shutting down): not ready.
        let mut stopped = all.clone();
        stopped.insert(
            "job worker",
            TaskCount {
                stopped: 4,
                ..TaskCount::default()
            },
        );
        let r = readiness(true, stopped, &expected, 3, Vec::new());
        assert!(
            r.problems
                .contains(&"job worker: 4 of 4 stopped".to_string())
        );

        // A missing receipt writer, the database and a plugin.
        let mut no_writer = all.clone();
        no_writer.remove("receipt writer");
        let r = readiness(
            false,
            no_writer,
            &expected,
            3,
            vec!["chaos@1.0.0: does not compile".into()],
        );
        assert_eq!(r.database, "unavailable");
        assert_eq!(
            r.problems,
            vec![
                "database: does not answer".to_string(),
                "receipt writer: 0 of 1 running".to_string(),
                "plugin chaos@1.0.0: does not compile".to_string()
            ]
        );
    }
}
