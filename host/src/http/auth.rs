//! Extractors: the bearer principal, a principal's access to the `{tenant}` in the path, and
//! the client's address and user agent for the consent ledger.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Path};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;

use super::AppState;
use crate::consent::Origin;
use crate::error::ApiError;
use crate::tenancy::{Capability, Principal, TenantAccess, auth};

/// The authenticated caller.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let principal = auth::authenticate(&state.store, &state.operator, token).await?;
        Ok(Auth(principal))
    }
}

/// The caller, who must be the operator (403 for anyone else).
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Auth::from_request_parts(parts, state).await? {
            Auth(Principal::Operator) => Ok(Operator),
            Auth(_) => Err(ApiError::Forbidden),
        }
    }
}

/// The caller's access to the tenant named in the path (404 for anyone else's tenant).
pub struct Tenant {
    /// Scope and actor.
    pub access: TenantAccess,
}

impl Tenant {
    /// `Forbidden` unless the actor may do `cap`.
    pub fn require(&self, cap: Capability) -> Result<(), ApiError> {
        Ok(self.access.require(cap)?)
    }
}

#[derive(serde::Deserialize)]
struct TenantParam {
    tenant: String,
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Auth(principal) = Auth::from_request_parts(parts, state).await?;
        let Path(p) = Path::<TenantParam>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("tenant"))?;
        if p.tenant.len() > 64 {
            return Err(ApiError::NotFound("tenant"));
        }
        let access = auth::access(&state.store, &principal, &p.tenant).await?;
        Ok(Tenant { access })
    }
}

/// The client's IP and user agent.
pub struct Client {
    /// Peer IP address.
    pub ip: Option<String>,
    /// `User-Agent`, clipped.
    pub user_agent: Option<String>,
}

impl Client {
    /// A ledger origin for `actor`.
    pub fn origin(&self, actor: String) -> Origin {
        Origin {
            actor,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        Ok(Client { ip, user_agent })
    }
}
