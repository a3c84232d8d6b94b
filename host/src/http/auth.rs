//! Extractors: what [`super::access`] found for the request (the principal, its access to the
//! `{tenant}` in the path, a person's session), and the client's address and user agent for
//! the consent ledger.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;

use super::AppState;
use super::access::SessionUser;
use crate::consent::Origin;
use crate::error::ApiError;
use crate::tenancy::{Principal, TenantAccess};

/// The authenticated caller.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Auth)
            .ok_or(ApiError::Unauthorized)
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

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<TenantAccess>()
            .cloned()
            .map(|access| Tenant { access })
            .ok_or(ApiError::NotFound("tenant"))
    }
}

/// The signed-in person of a session route.
pub struct Person(pub SessionUser);

impl FromRequestParts<AppState> for Person {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<SessionUser>()
            .cloned()
            .map(Person)
            .ok_or(ApiError::Unauthorized)
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
