//! `POST /api/v1/tenants/{tenant}/connect/twilio/senders`: the WhatsApp senders of the Twilio
//! account whose Account SID and auth token the tenant typed, for the connect form's sender
//! list ([`crate::onboarding::twilio`]). Nothing is stored; the token goes only to Twilio.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Tenant;
use super::json::ApiJson;
use crate::error::ApiError;
use crate::onboarding::twilio::{Sender, SendersError};
use crate::store::Mode;
use crate::vault::Secret;

/// The Twilio account to list the senders of.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSenders {
    /// The Account SID.
    #[schema(
        pattern = "^AC[0-9a-f]{32}$(?!\\n)",
        example = "AC0123456789abcdef0123456789abcdef"
    )]
    pub account_sid: String,
    /// The account's auth token, 1–128 printable ASCII characters (sent to Twilio only; never
    /// stored or returned).
    #[schema(min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$(?!\\n)")]
    pub auth_token: String,
}

/// The account's WhatsApp senders, online ones first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SenderList {
    /// The senders.
    pub data: Vec<Sender>,
}

/// List a Twilio account's WhatsApp senders (owners and admins, when the plan has Twilio):
/// 422 `invalid_settings` for a malformed SID or token, 422 `invalid_credentials` when Twilio
/// refuses them, 502 `provider_unavailable` when Twilio fails.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connect/twilio/senders",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = ListSenders,
    responses(
        (status = 200, description = "The senders", body = SenderList),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::TooManyRequests,
        crate::http::openapi::BadGateway,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<ListSenders>,
) -> Result<Json<SenderList>, ApiError> {
    let access = &tenant.access;
    // Exactly as the schema says: no spaces around either, as Twilio would refuse them too.
    let sid = body.account_sid.as_str();
    let sid_ok = sid.len() == 34
        && sid.starts_with("AC")
        && sid[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !sid_ok {
        return Err(ApiError::unprocessable(
            "invalid_settings",
            "account_sid must be AC followed by 32 lowercase hex digits",
        ));
    }
    let token = body.auth_token.as_str();
    if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::unprocessable(
            "invalid_settings",
            "auth_token must be 1 to 128 printable characters",
        ));
    }
    {
        let mut tx = access.begin(&state.store, Mode::Read).await?;
        crate::plans::check_channel(&mut tx, "twilio").await?;
        tx.commit().await?;
    }
    let _permit = state.plugin_calls.acquire(access.scope.id())?;
    let token = Secret::new(token.as_bytes().to_vec());
    match state.twilio.list(sid, &token).await {
        Ok(data) => Ok(Json(SenderList { data })),
        Err(e @ SendersError::Refused { .. }) => Err(ApiError::unprocessable(
            "invalid_credentials",
            e.to_string(),
        )),
        Err(e) => {
            tracing::warn!(tenant = %access.scope.id(), error = %e, "Twilio senders not listed");
            Err(ApiError::BadGateway {
                code: "provider_unavailable",
                message: e.to_string(),
            })
        }
    }
}
