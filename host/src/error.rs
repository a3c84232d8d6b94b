//! HTTP-facing errors: every API error has a stable `code` and turns into a response here, once.
//!
//! Internal failures are logged with their cause and answered with an opaque 500; nothing from
//! inside the host (SQL, file paths, secrets) reaches a client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;
use crate::tenancy::AccessError;
use crate::vault::VaultError;

/// An error an HTTP handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request is malformed in a way the client can name by code (400), e.g. an invalid
    /// onboarding `state`.
    #[error("{message}")]
    Invalid {
        /// Stable code, e.g. `state_invalid`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No or invalid credentials (401).
    #[error("missing or invalid API key")]
    Unauthorized,
    /// Credentials that failed, for a reason the client can name by code (401), e.g. a wrong
    /// password (`invalid_credentials`) or an ended session (`session_ended`).
    #[error("{message}")]
    Unauthenticated {
        /// Stable code.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// A revoked API key (401 `key_revoked`).
    #[error("this API key was revoked")]
    KeyRevoked,
    /// An expired API key (401 `key_expired`).
    #[error("this API key has expired")]
    KeyExpired,
    /// The tenant's own key while the tenant is suspended (403 `tenant_suspended`).
    #[error("this tenant is suspended; its partner or the operator can reinstate it")]
    TenantSuspended,
    /// The caller's role may not do this (403).
    #[error("this key may not do that")]
    Forbidden,
    /// The caller may not do this, for a reason it can name by code (403), e.g. a plugin
    /// name outside its namespace.
    #[error("{message}")]
    Refused {
        /// Stable code, e.g. `namespace_forbidden`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The tenant's plan does not allow this (403 `feature_not_in_plan`, with the plan's terms
    /// in `error.plan`).
    #[error("{message}")]
    NotInPlan {
        /// What was refused.
        message: String,
        /// The plan's id, name and terms.
        plan: serde_json::Value,
    },
    /// No such object for this caller (404), also when it belongs to someone else.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The path exists but not with this method (405).
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict {
        /// Stable code, e.g. `number_already_connected`.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// The body is too large (413).
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The request is well-formed but cannot be done (422).
    #[error("{message}")]
    Unprocessable {
        /// Stable code, e.g. `unknown_connector`, `invalid_credentials`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The provider or the connector plugin failed (502).
    #[error("{message}")]
    BadGateway {
        /// Stable code, e.g. `provider_unavailable`, `connector_failed`.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// Too many requests of this caller at once (429, with `Retry-After` in seconds).
    #[error("{message}")]
    TooManyRequests {
        /// Stable code, e.g. `too_many_plugin_calls`.
        code: &'static str,
        /// What happened.
        message: String,
        /// Seconds to wait before trying again.
        retry_after: u64,
    },
    /// The database did not answer (503).
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    /// Something failed inside the host; details are logged, not returned (500).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// A Meta onboarding step failed but its session stays open for a retry (the inner error's
    /// status and code, plus `session` in the body).
    #[error("{error}; retry with a pick in session {session}")]
    Retryable {
        /// What failed.
        error: Box<ApiError>,
        /// The onboarding session to retry in (`onb_…`).
        session: String,
    },
}

impl ApiError {
    /// A 422 with a code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// The stable code (what the onboarding callback puts in `?error=`).
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Invalid { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Unauthenticated { code, .. } => (StatusCode::UNAUTHORIZED, code),
            ApiError::KeyRevoked => (StatusCode::UNAUTHORIZED, "key_revoked"),
            ApiError::KeyExpired => (StatusCode::UNAUTHORIZED, "key_expired"),
            ApiError::TenantSuspended => (StatusCode::FORBIDDEN, "tenant_suspended"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Refused { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::NotInPlan { .. } => (StatusCode::FORBIDDEN, "feature_not_in_plan"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::BadGateway { code, .. } => (StatusCode::BAD_GATEWAY, code),
            ApiError::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::DatabaseUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Retryable { error, .. } => error.status_and_code(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("object"),
            StoreError::Conflict(what) => ApiError::Conflict {
                code: "conflict",
                message: format!("already exists ({what})"),
            },
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => ApiError::DatabaseUnavailable,
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Unauthenticated => ApiError::Unauthorized,
            AccessError::SessionEnded => ApiError::Unauthenticated {
                code: "session_ended",
                message: e.to_string(),
            },
            AccessError::ContextRequired => ApiError::Invalid {
                code: "context_required",
                message: format!(
                    "{e}: send {} with a tenant or partner id",
                    crate::tenancy::auth::CONTEXT_HEADER
                ),
            },
            AccessError::KeyRevoked => ApiError::KeyRevoked,
            AccessError::KeyExpired => ApiError::KeyExpired,
            AccessError::Suspended => ApiError::TenantSuspended,
            AccessError::Forbidden => ApiError::Forbidden,
            AccessError::NotFound => ApiError::NotFound("tenant"),
            AccessError::Store(s) => s.into(),
        }
    }
}

impl From<crate::lifecycle::EndError> for ApiError {
    fn from(e: crate::lifecycle::EndError) -> Self {
        match e {
            crate::lifecycle::EndError::Store(s) => s.into(),
            crate::lifecycle::EndError::Vault(v) => v.into(),
        }
    }
}

impl From<crate::connector::SettingsError> for ApiError {
    fn from(e: crate::connector::SettingsError) -> Self {
        ApiError::unprocessable(e.code(), e.to_string())
    }
}

impl From<crate::catalog::CatalogError> for ApiError {
    fn from(e: crate::catalog::CatalogError) -> Self {
        use crate::catalog::CatalogError as E;
        let (code, message) = (e.code(), e.to_string());
        match e {
            E::TooLarge { .. } => ApiError::PayloadTooLarge,
            E::NotAComponent(_) | E::Load(_) => ApiError::Unprocessable { code, message },
            E::Namespace(_) | E::Unsigned(_) => ApiError::Refused { code, message },
            E::Signature(_) | E::NotRequested(_) | E::UnknownVersion(_) => {
                ApiError::Unprocessable { code, message }
            }
            E::Quota(_) => ApiError::Refused { code, message },
            E::Busy(_) => ApiError::TooManyRequests {
                code,
                message,
                retry_after: 5,
            },
            E::VersionExists { .. } | E::InUse(_) => ApiError::Conflict { code, message },
            E::NotFound(_) => ApiError::NotFound("plugin"),
            E::Store(s) => s.into(),
            E::Task(_) => ApiError::Internal(anyhow::anyhow!(message)),
        }
    }
}

impl From<crate::desk::DeskError> for ApiError {
    fn from(e: crate::desk::DeskError) -> Self {
        use crate::desk::DeskError as E;
        match e {
            E::NotFound(what) => ApiError::NotFound(what),
            E::Conflict { code, message } => ApiError::Conflict { code, message },
            E::Refused { code, message } => ApiError::Unprocessable { code, message },
            E::Plan(p) => p.into(),
            E::ConnectorMissing(name) => ApiError::BadGateway {
                code: "connector_failed",
                message: format!("connector {name} is not loaded"),
            },
            E::Store(s) => s.into(),
            E::Internal(what) => ApiError::Internal(anyhow::anyhow!(what)),
        }
    }
}

impl From<crate::insights::InsightsError> for ApiError {
    fn from(e: crate::insights::InsightsError) -> Self {
        use crate::insights::InsightsError as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::NotFound(what),
            E::Unavailable(_) => ApiError::Conflict {
                code: "no_insights",
                message,
            },
            E::Plan(p) => p.into(),
            E::Busy => ApiError::TooManyRequests {
                code: "plugin_busy",
                message,
                retry_after: 5,
            },
            E::Failed(_) => ApiError::BadGateway {
                code: "insights_failed",
                message,
            },
            E::Store(s) => s.into(),
        }
    }
}

impl From<crate::plans::PlanError> for ApiError {
    fn from(e: crate::plans::PlanError) -> Self {
        match e {
            crate::plans::PlanError::NotInPlan { message, plan } => {
                ApiError::NotInPlan { message, plan }
            }
            crate::plans::PlanError::Store(s) => s.into(),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Store(s) => s.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %format!("{e:#}"), "internal error");
        }
        let mut body =
            serde_json::json!({ "error": { "code": code, "message": self.to_string() } });
        if let ApiError::Retryable { session, .. } = &self {
            body["error"]["session"] = serde_json::json!(session);
        }
        if let ApiError::NotInPlan { plan, .. } = &self {
            body["error"]["plan"] = plan.clone();
        }
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after),
            );
        }
        response
    }
}
