//! Connecting numbers through Meta: `POST /api/v1/tenants/{tenant}/connect/meta` starts the
//! redirect flow or takes an Embedded Signup code; when several numbers are found,
//! `GET …/connect/meta/{session}` lists them and `POST …/{session}/pick` chooses.
//!
//! The redirect flow is bound to one browser and shows the tenant before anything is
//! registered (account-linking CSRF: a tenant must not obtain another business's number by
//! sending it a link). The API call (a machine, with a key) gets a browser URL on this host with
//! a signed one-time ticket; `GET /connect/meta/start` (public) sets an HttpOnly, SameSite=Lax
//! cookie holding a random nonce, binds the session (and a fresh signed `state`) to the nonce's
//! hash, and sends the browser to Facebook's dialog. `GET /connect/meta/callback` (public)
//! refuses a browser without that cookie, exchanges the code, finds the numbers, and answers a
//! confirmation page naming the tenant and the numbers; only `POST /connect/meta/confirm` from
//! the same browser (cookie, a single-use signed token from the page, same origin) connects.
//! Every Graph call is the host's own ([`crate::onboarding::meta`]); the connection is made by
//! the same code as a manual connect ([`super::connections::connect`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, ORIGIN,
    REFERRER_POLICY, SET_COOKIE, X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Client, Tenant};
use super::connections::{
    ConnectionView, ConsentInput, NewConnect, connect, shared_endpoint, view,
};
use super::json::{ApiJson, ApiQuery};
use crate::consent::Origin;
use crate::error::ApiError;
use crate::onboarding::meta::{GraphError, PhoneNumber, Waba};
use crate::onboarding::{self as ob, Purpose, SESSION_TTL_MS, Step};
use crate::store::{
    ConnectionRecord, EndpointRecord, Mode, OnboardingRecord, OnboardingUpdate, now_ms,
};
use crate::tenancy::{Principal, Scope, TenantAccess, ids};
use crate::vault::Secret;

/// Which onboarding flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// Facebook Login dialog, then `GET /connect/meta/callback`.
    Redirect,
    /// Embedded Signup: the page posts the code (and the ids from the session event).
    Embedded,
}

/// `POST /api/v1/tenants/{tenant}/connect/meta` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartMeta {
    /// The Meta app endpoint (`end_…`) with settings `app_id` (and `return_url` for the
    /// redirect flow) and secret `app_secret`.
    pub endpoint: String,
    /// `redirect` or `embedded`.
    pub flow: Flow,
    /// Embedded Signup: the code from `FB.login`.
    #[serde(default)]
    pub code: Option<String>,
    /// Embedded Signup: the WABA id from the session event, when known.
    #[serde(default)]
    pub waba_id: Option<String>,
    /// Embedded Signup: the phone number id from the session event, when known.
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// The business's consent (default: scope `messaging`, no document version).
    #[serde(default)]
    pub consent: Option<ConsentInput>,
}

/// An onboarding session as the API shows it: what was found, never a token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// `onb_…`.
    pub session: String,
    /// `redirect` or `embedded`.
    pub flow: String,
    /// `started`, `confirming` (the browser is shown the tenant and the numbers), `picking`,
    /// `completed` or `failed`.
    pub status: String,
    /// The Meta app endpoint.
    pub endpoint: String,
    /// Redirect flow, `started`: where to send the browser (a page of this host that binds the
    /// browser to the flow with a cookie, then forwards it to Facebook's dialog; single use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialog_url: Option<String>,
    /// When the state or the pick expires (Unix ms).
    pub expires_at: i64,
    /// `picking`: the WABAs and numbers to choose from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wabas: Vec<Waba>,
    /// `failed`: the error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `completed`: the connection made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionView>,
    /// `completed`: its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
}

fn session_view(s: &OnboardingRecord) -> SessionView {
    SessionView {
        session: s.id.clone(),
        flow: s.flow.clone(),
        status: if s.status == "started" && s.confirm_hash.is_some() {
            "confirming".into()
        } else {
            s.status.clone()
        },
        endpoint: s.endpoint_id.clone(),
        dialog_url: None,
        expires_at: s.expires_at,
        wabas: s
            .discovered
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default(),
        error: s.error_code.clone(),
        connection: None,
        connection_id: s.connection_id.clone(),
    }
}

/// The Meta app endpoint's settings and secrets onboarding needs.
struct App {
    endpoint: EndpointRecord,
    app_id: String,
    app_secret: Secret,
    verify_token: Option<Secret>,
    return_url: Option<url::Url>,
    override_callback: bool,
}

fn not_configured(what: &str) -> ApiError {
    ApiError::unprocessable(
        "endpoint_not_configured",
        format!("the Meta endpoint is not set up for onboarding: {what}"),
    )
}

pub(super) use crate::onboarding::endpoint_setting;

async fn app(state: &AppState, endpoint: EndpointRecord) -> Result<App, ApiError> {
    let settings: serde_json::Value =
        serde_json::from_str(&endpoint.settings).unwrap_or(serde_json::Value::Null);
    let text = |k: &str| endpoint_setting(&settings, k);
    let app_id = text("app_id").ok_or_else(|| not_configured("setting \"app_id\" is missing"))?;
    let return_url = match text("return_url") {
        Some(u) => {
            let url = url::Url::parse(&u)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| not_configured("setting \"return_url\" must be an http(s) URL"))?;
            Some(url)
        }
        None => None,
    };
    let override_callback = match settings.get("override_callback") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    };
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let secrets = state.vault.open_endpoint(&mut tx, &endpoint).await?;
    tx.commit().await?;
    let mut app_secret = None;
    let mut verify_token = None;
    for (field, value) in secrets {
        match field.as_str() {
            "app_secret" => app_secret = Some(value),
            "verify_token" => verify_token = Some(value),
            _ => {}
        }
    }
    Ok(App {
        endpoint,
        app_id,
        app_secret: app_secret.ok_or_else(|| not_configured("secret \"app_secret\" is missing"))?,
        verify_token,
        return_url,
        override_callback,
    })
}

/// An onboarding failure with a stable code.
fn failure(step: Step, e: &GraphError) -> ApiError {
    let code = ob::error_code(step, e);
    tracing::warn!(code, meta = %e.summary(), "meta onboarding step failed");
    let message = format!("{} ({})", ob::hint(code), e.summary());
    if code == "provider_unavailable" {
        ApiError::BadGateway { code, message }
    } else {
        ApiError::unprocessable(code, message)
    }
}

/// Shred the sealed tokens of this tenant's expired sessions (and fail those still open).
async fn sweep(state: &AppState, access: &TenantAccess) -> Result<(), ApiError> {
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    ob::expire_sessions(&mut tx, &state.vault).await?;
    tx.commit().await?;
    Ok(())
}

/// Start connecting through Meta (owner/admin): the redirect flow's dialog URL, or an
/// Embedded Signup code exchanged and its number connected (or a session to pick from).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connect/meta",
    tag = "onboarding",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = StartMeta,
    responses(
        (status = 200, description = "Redirect flow started, or Embedded Signup waiting for a pick", body = SessionView),
        (status = 201, description = "Embedded Signup: the number is connected", body = SessionView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_endpoint` (no such Meta endpoint), `invalid_consent`", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::BadGateway,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
    ApiJson(body): ApiJson<StartMeta>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let access = &tenant.access;
    {
        let mut tx = access.begin(&state.store, Mode::Read).await?;
        crate::plans::check_channel(&mut tx, "meta-cloud").await?;
        tx.commit().await?;
    }
    let endpoint = shared_endpoint(&state, access, "meta-cloud", Some(&body.endpoint)).await?;
    let app = app(&state, endpoint).await?;
    sweep(&state, access).await?;
    let (consent_version, scopes) = match &body.consent {
        Some(c) => (
            Some(c.document_version.trim().to_string()),
            c.scopes.clone(),
        ),
        None => (None, Vec::new()),
    };
    let now = now_ms();
    let mut session = OnboardingRecord {
        id: ids::new_id("onb"),
        tenant_id: access.scope.id().to_string(),
        endpoint_id: app.endpoint.id.clone(),
        flow: match body.flow {
            Flow::Redirect => "redirect".into(),
            Flow::Embedded => "embedded".into(),
        },
        state_hash: None,
        ticket_hash: None,
        browser_hash: None,
        confirm_hash: None,
        actor: access.actor.ledger_name(),
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        consent_version,
        consent_scopes: serde_json::to_string(&scopes).map_err(|e| ApiError::Internal(e.into()))?,
        status: "started".into(),
        discovered: None,
        error_code: None,
        connection_id: None,
        token_expires_at: None,
        created_at: now,
        expires_at: now + SESSION_TTL_MS,
        used_at: None,
        updated_at: now,
    };
    match body.flow {
        Flow::Redirect => {
            if app.return_url.is_none() {
                return Err(not_configured(
                    "setting \"return_url\" is required for the redirect flow",
                ));
            }
            // The state is made when a browser opens the ticket, bound to that browser.
            let (ticket, hash) = ob::sign(
                &state.vault,
                Purpose::Ticket,
                access.scope.id(),
                &session.id,
            );
            session.ticket_hash = Some(hash);
            let mut tx = access.begin(&state.store, Mode::Write).await?;
            tx.insert_onboarding(&session).await?;
            tx.commit().await?;
            let mut v = session_view(&session);
            v.dialog_url = Some(state.meta_start_url(&ticket));
            Ok((StatusCode::OK, Json(v)))
        }
        Flow::Embedded => {
            let code = body
                .code
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty() && c.len() <= 2048)
                .ok_or_else(|| {
                    ApiError::unprocessable("code_required", "Embedded Signup needs the \"code\"")
                })?;
            // The business integration system-user token: no fb_exchange_token, may never expire.
            let token = state
                .meta
                .exchange_code(&app.app_id, &app.app_secret, code, None)
                .await
                .map_err(|e| failure(Step::Exchange, &e))?;
            let token_expires_at = token.expires_in.map(|s| now + s.saturating_mul(1000));
            let wabas = match body
                .waba_id
                .as_deref()
                .map(str::trim)
                .filter(|w| !w.is_empty())
            {
                Some(w) => vec![(w.to_string(), None)],
                None => state
                    .meta
                    .granted_wabas(&app.app_id, &app.app_secret, &token.access_token)
                    .await
                    .map_err(|e| failure(Step::Discovery, &e))?
                    .into_iter()
                    .map(|id| (id, None))
                    .collect(),
            };
            let mut found = numbers(&state, &token.access_token, wabas).await?;
            if let Some(p) = body
                .phone_number_id
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                for w in &mut found {
                    w.phone_numbers.retain(|n| n.id == p);
                }
                found.retain(|w| !w.phone_numbers.is_empty());
                if found.is_empty() {
                    return Err(ApiError::unprocessable(
                        "no_number_found",
                        format!(
                            "phone number {p} is not in the WhatsApp Business Accounts this code grants"
                        ),
                    ));
                }
            }
            let origin = client.origin(session.actor.clone());
            settle(
                &state,
                access,
                &origin,
                &app,
                session,
                token.access_token,
                token_expires_at,
                found,
            )
            .await
        }
    }
}

/// Each WABA with its numbers; `no_waba_found` / `no_number_found` when there is nothing to connect.
async fn numbers(
    state: &AppState,
    token: &Secret,
    wabas: Vec<(String, Option<String>)>,
) -> Result<Vec<Waba>, ApiError> {
    if wabas.is_empty() {
        return Err(ApiError::unprocessable(
            "no_waba_found",
            "Meta shows no WhatsApp Business Account for this login; the user must be an admin of the business that owns one",
        ));
    }
    let mut out = Vec::with_capacity(wabas.len());
    for (id, name) in wabas {
        let phone_numbers = state
            .meta
            .phone_numbers(&id, token)
            .await
            .map_err(|e| failure(Step::Discovery, &e))?;
        out.push(Waba {
            id,
            name,
            phone_numbers,
        });
    }
    if out.iter().all(|w| w.phone_numbers.is_empty()) {
        return Err(ApiError::unprocessable(
            "no_number_found",
            "the WhatsApp Business Accounts found have no phone number; add one in WhatsApp Manager first",
        ));
    }
    Ok(out)
}

/// With exactly one number: connect it. With several: keep the token sealed and let the user pick.
#[allow(clippy::too_many_arguments)]
async fn settle(
    state: &AppState,
    access: &TenantAccess,
    origin: &Origin,
    app: &App,
    mut session: OnboardingRecord,
    token: Secret,
    token_expires_at: Option<i64>,
    found: Vec<Waba>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let total: usize = found.iter().map(|w| w.phone_numbers.len()).sum();
    let discovered = serde_json::to_string(&found).map_err(|e| ApiError::Internal(e.into()))?;
    let fresh = session.used_at.is_none() && session.flow == "embedded";
    if total == 1 {
        let (waba, number) = found
            .iter()
            .find_map(|w| w.phone_numbers.first().map(|n| (w.id.clone(), n.clone())))
            .ok_or(ApiError::NotFound("number"))?;
        if fresh {
            session.discovered = Some(discovered);
            let mut tx = access.begin(&state.store, Mode::Write).await?;
            tx.insert_onboarding(&session).await?;
            tx.commit().await?;
        }
        let record = finish(
            state,
            access,
            origin,
            app,
            &session,
            &token,
            token_expires_at,
            &waba,
            &number,
        )
        .await;
        return match record {
            Ok(c) => {
                let mut v = session_view(&session);
                v.status = "completed".into();
                v.connection_id = Some(c.id.clone());
                v.wabas = found;
                v.connection = Some(view(state, c));
                Ok((StatusCode::CREATED, Json(v)))
            }
            Err(Unfinished {
                error,
                retryable: true,
            }) => Err(ApiError::Retryable {
                error: Box::new(error),
                session: session.id.clone(),
            }),
            Err(Unfinished { error, .. }) => {
                fail(state, access, &session.id, error.code()).await?;
                Err(error)
            }
        };
    }
    session.status = "picking".into();
    session.discovered = Some(discovered.clone());
    session.expires_at = now_ms() + SESSION_TTL_MS;
    session.token_expires_at = token_expires_at;
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    if fresh {
        tx.insert_onboarding(&session).await?;
    } else {
        tx.update_onboarding(
            &session.id,
            &OnboardingUpdate {
                status: "picking",
                discovered: Some(&discovered),
                expires_at: Some(session.expires_at),
                token_expires_at,
                ..Default::default()
            },
        )
        .await?;
    }
    state
        .vault
        .seal_onboarding(
            &mut tx,
            &session.id,
            &[("access_token".to_string(), token)],
            token_expires_at,
        )
        .await?;
    tx.commit().await?;
    Ok((StatusCode::OK, Json(session_view(&session))))
}

/// Mark a session failed with `code` and shred its token.
async fn fail(
    state: &AppState,
    access: &TenantAccess,
    id: &str,
    code: &'static str,
) -> Result<(), ApiError> {
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    tx.update_onboarding(
        id,
        &OnboardingUpdate {
            status: "failed",
            error_code: Some(code),
            ..Default::default()
        },
    )
    .await?;
    state.vault.shred_onboarding(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Why [`finish`] failed, and whether the session stays open to try again.
struct Unfinished {
    /// What to answer.
    error: ApiError,
    /// The number's two-step PIN is sealed in the session (it may be registered at Meta): the
    /// session is left `picking`, so a retry reuses the PIN instead of locking the number.
    retryable: bool,
}

impl From<ApiError> for Unfinished {
    fn from(error: ApiError) -> Self {
        Unfinished {
            error,
            retryable: false,
        }
    }
}

impl From<crate::store::StoreError> for Unfinished {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::vault::VaultError> for Unfinished {
    fn from(e: crate::vault::VaultError) -> Self {
        ApiError::from(e).into()
    }
}

/// Subscribe the app to the WABA, register the number with its two-step PIN, and make the
/// connection (the manual connect's own code path); the session is then `completed` and its
/// token and PIN shredded. The PIN is sealed into the session before `register`, so a failure
/// after it leaves the session retryable with the same PIN (Meta answers 133005 to another).
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    access: &TenantAccess,
    origin: &Origin,
    app: &App,
    session: &OnboardingRecord,
    token: &Secret,
    token_expires_at: Option<i64>,
    waba: &str,
    number: &PhoneNumber,
) -> Result<ConnectionRecord, Unfinished> {
    subscribe(state, access, app, token, waba, &number.id).await?;
    let pin = session_pin(state, access, session, token, token_expires_at, &number.id).await?;
    let registered = register_and_connect(
        state,
        access,
        origin,
        app,
        session,
        (token, pin),
        token_expires_at,
        waba,
        number,
    )
    .await;
    let record = match registered {
        Ok(r) => r,
        Err(error) => {
            let kept = keep_pickable(state, access, &session.id, error.code()).await;
            return Err(Unfinished {
                error: kept.err().unwrap_or(error),
                retryable: true,
            });
        }
    };
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    tx.update_onboarding(
        &session.id,
        &OnboardingUpdate {
            status: "completed",
            connection_id: Some(&record.id),
            ..Default::default()
        },
    )
    .await?;
    state.vault.shred_onboarding(&mut tx, &session.id).await?;
    tx.commit().await?;
    Ok(record)
}

/// Refuse a number another tenant has connected, then subscribe the app to the WABA.
async fn subscribe(
    state: &AppState,
    access: &TenantAccess,
    app: &App,
    token: &Secret,
    waba: &str,
    number: &str,
) -> Result<(), ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let taken = tx
        .route_taken("meta-cloud", number, access.scope.id())
        .await?;
    tx.commit().await?;
    if taken {
        return Err(ApiError::Conflict {
            code: "number_already_connected",
            message: format!("{number} is already connected on this endpoint"),
        });
    }
    let webhook = state.webhook_url(&app.endpoint.id);
    let override_callback = if app.override_callback {
        let verify = app
            .verify_token
            .as_ref()
            .ok_or_else(|| not_configured("override_callback needs the secret \"verify_token\""))?;
        Some((webhook.as_str(), verify))
    } else {
        None
    };
    state
        .meta
        .subscribe(waba, token, override_callback)
        .await
        .map_err(|e| failure(Step::Subscribe, &e))
}

/// Register the number with its sealed PIN and make the connection (the manual connect's own
/// code path).
#[allow(clippy::too_many_arguments)]
async fn register_and_connect(
    state: &AppState,
    access: &TenantAccess,
    origin: &Origin,
    app: &App,
    session: &OnboardingRecord,
    (token, pin): (&Secret, Secret),
    token_expires_at: Option<i64>,
    waba: &str,
    number: &PhoneNumber,
) -> Result<ConnectionRecord, ApiError> {
    state
        .meta
        .register(&number.id, token, &pin)
        .await
        .map_err(|e| failure(Step::Register, &e))?;
    let mut settings = BTreeMap::from([
        ("phone_number_id".to_string(), number.id.clone()),
        ("waba_id".to_string(), waba.to_string()),
    ]);
    if let Some(d) = &number.display_phone_number {
        settings.insert("display_phone_number".into(), d.clone());
    }
    let scopes: Vec<String> = serde_json::from_str(&session.consent_scopes).unwrap_or_default();
    connect(
        state,
        access,
        origin,
        NewConnect {
            connector: "meta-cloud".into(),
            endpoint: Some(app.endpoint.id.clone()),
            settings,
            secrets: vec![("access_token".into(), token.clone())],
            host_secrets: vec![("two_step_pin".into(), pin)],
            document_version: session.consent_version.clone(),
            scopes,
            token_expires_at,
        },
    )
    .await
    .map(|c| c.record)
}

/// The two-step PIN for `number` in this session: the one sealed by an earlier try, or a new
/// one sealed (with the token) before anything reaches Meta.
async fn session_pin(
    state: &AppState,
    access: &TenantAccess,
    session: &OnboardingRecord,
    token: &Secret,
    token_expires_at: Option<i64>,
    number: &str,
) -> Result<Secret, ApiError> {
    let field = format!("two_step_pin:{number}");
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    let mut sealed = state.vault.open_onboarding(&mut tx, &session.id).await?;
    if let Some((_, pin)) = sealed.iter().find(|(f, _)| *f == field) {
        let pin = pin.clone();
        tx.commit().await?;
        return Ok(pin);
    }
    let pin = ob::new_pin();
    sealed.retain(|(f, _)| f != "access_token");
    sealed.push(("access_token".into(), token.clone()));
    sealed.push((field, pin.clone()));
    state
        .vault
        .seal_onboarding(&mut tx, &session.id, &sealed, token_expires_at)
        .await?;
    tx.commit().await?;
    Ok(pin)
}

/// After a failure at or past `register`: the session waits for another pick, its token and
/// PIN kept sealed until it expires.
async fn keep_pickable(
    state: &AppState,
    access: &TenantAccess,
    session_id: &str,
    code: &'static str,
) -> Result<(), ApiError> {
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    tx.update_onboarding(
        session_id,
        &OnboardingUpdate {
            status: "picking",
            error_code: Some(code),
            expires_at: Some(now_ms() + SESSION_TTL_MS),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `GET /connect/meta/callback` query (what Facebook's dialog sends back).
#[derive(Deserialize, utoipa::IntoParams)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The signed state (made by `GET /connect/meta/start`).
    pub state: Option<String>,
    /// Set when the user cancelled or Meta refused (`access_denied`).
    pub error: Option<String>,
    /// Meta's reason (`user_denied`).
    pub error_reason: Option<String>,
    /// Meta's description.
    pub error_description: Option<String>,
}

fn redirect(to: url::Url, key: &str, value: &str) -> Response {
    redirect_with(to, &[(key, value)])
}

/// A 303 to `to` with these query parameters added.
fn redirect_with(mut to: url::Url, pairs: &[(&str, &str)]) -> Response {
    to.query_pairs_mut().extend_pairs(pairs);
    (
        StatusCode::SEE_OTHER,
        [
            (LOCATION, to.to_string()),
            (CACHE_CONTROL, "no-store".to_string()),
            (REFERRER_POLICY, "no-referrer".to_string()),
        ],
    )
        .into_response()
}

fn invalid_state() -> ApiError {
    ApiError::Invalid {
        code: "state_invalid",
        message: "the state is not one this host issued, or was already used".into(),
    }
}

fn invalid_ticket() -> ApiError {
    ApiError::Invalid {
        code: "ticket_invalid",
        message: "the link is not one this host issued, expired, or was already opened; start connecting again".into(),
    }
}

fn invalid_confirmation() -> ApiError {
    ApiError::Invalid {
        code: "confirmation_invalid",
        message:
            "this confirmation is not one this host issued to this browser, or was already used"
                .into(),
    }
}

/// The value of the flow's cookie in the request, if the browser sent one.
///
/// Hand-parsed rather than through a cookie crate: one name looked up in `name=value; …`,
/// the value a base64url nonce compared only through its hash.
fn browser_nonce(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == ob::BROWSER_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

/// Whether the browser presented the cookie of the browser that opened the session's ticket.
fn same_browser(headers: &HeaderMap, session: &OnboardingRecord) -> bool {
    browser_nonce(headers)
        .is_some_and(|n| ob::same_hash(session.browser_hash.as_deref(), &ob::nonce_hash(n)))
}

/// The flow's cookie: HttpOnly, SameSite=Lax (sent on Facebook's top-level redirect back, not
/// on another site's POST), Secure unless the public URL is plain http on loopback, scoped to
/// `/connect/meta`. An empty value with `Max-Age=0` clears it.
fn browser_cookie(state: &AppState, value: &str) -> String {
    let public = url::Url::parse(&state.public_url).ok();
    let insecure_ok = public.as_ref().is_some_and(|u| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            }
    });
    let path = public
        .as_ref()
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    // Long enough for the dialog (10 minutes) and then the confirmation (10 more).
    let max_age = if value.is_empty() {
        0
    } else {
        2 * SESSION_TTL_MS / 1000
    };
    format!(
        "{}={value}; Path={path}/connect/meta; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        ob::BROWSER_COOKIE,
        if insecure_ok { "" } else { "; Secure" }
    )
}

/// `GET /connect/meta/start` query.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct BrowserStartQuery {
    /// The one-time ticket from `dialog_url`.
    pub ticket: Option<String>,
}

/// Where `dialog_url` sends the browser (public, single use): binds the flow to this browser
/// with a cookie and sends it on (303) to Facebook's dialog with a fresh signed state.
#[utoipa::path(
    get,
    path = "/connect/meta/start",
    tag = "onboarding",
    params(BrowserStartQuery),
    responses(
        (status = 303, description = "On to Facebook's dialog; sets the flow's HttpOnly SameSite=Lax cookie"),
        (status = 400, description = "Unknown, expired or already used ticket (`ticket_invalid`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The Meta endpoint is not set up for onboarding (`endpoint_not_configured`)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn browser_start(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<BrowserStartQuery>,
) -> Result<Response, ApiError> {
    let claims = q
        .ticket
        .as_deref()
        .and_then(|t| ob::verify(&state.vault, Purpose::Ticket, t))
        .ok_or_else(invalid_ticket)?;
    let access =
        crate::tenancy::auth::access(&state.store, &Principal::Operator, &claims.tenant_id)
            .await
            .map_err(|_| invalid_ticket())?;
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let session = tx
        .onboarding(&claims.session_id)
        .await?
        .filter(|s| {
            s.flow == "redirect"
                && s.expires_at >= now_ms()
                && ob::same_hash(s.ticket_hash.as_deref(), &claims.nonce_hash)
        })
        .ok_or_else(invalid_ticket)?;
    tx.commit().await?;
    let endpoint =
        shared_endpoint(&state, &access, "meta-cloud", Some(&session.endpoint_id)).await?;
    let app = app(&state, endpoint).await?;
    let (signed, state_hash) =
        ob::sign(&state.vault, Purpose::State, access.scope.id(), &session.id);
    let (nonce, browser_hash) = ob::new_nonce();
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    // Single use: the ticket is forgotten in the transaction that binds the browser.
    if !tx
        .bind_onboarding_browser(&session.id, &state_hash, &browser_hash)
        .await?
    {
        return Err(invalid_ticket());
    }
    tx.commit().await?;
    let dialog = state
        .meta
        .dialog_url(&app.app_id, &state.meta_callback_url(), &signed);
    Ok((
        StatusCode::SEE_OTHER,
        [
            (LOCATION, dialog),
            (SET_COOKIE, browser_cookie(&state, &nonce)),
            (CACHE_CONTROL, "no-store".to_string()),
            (REFERRER_POLICY, "no-referrer".to_string()),
        ],
    )
        .into_response())
}

/// Facebook's redirect back (public): checks the signed single-use state and that this is the
/// browser that started the flow, exchanges the code for a long-lived token, discovers the
/// numbers, and answers a confirmation page naming the tenant and the numbers (nothing is
/// registered yet). Failures redirect (303) to the endpoint's `return_url` with
/// `?error=<code>`; an invalid state with no known return URL is a 400.
#[utoipa::path(
    get,
    path = "/connect/meta/callback",
    tag = "onboarding",
    params(CallbackQuery),
    responses(
        (status = 200, description = "The confirmation page (HTML): the tenant and the numbers found, and a form that confirms or cancels", content_type = "text/html"),
        (status = 303, description = "Back to the endpoint's return_url with ?error= (e.g. `browser_mismatch`: not the browser that started the flow)"),
        (status = 400, description = "Invalid state and no return URL known (`state_invalid`)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Result<Response, ApiError> {
    let claims = q
        .state
        .as_deref()
        .and_then(|s| ob::verify(&state.vault, Purpose::State, s))
        .ok_or_else(invalid_state)?;
    // The signed state names the tenant that started the session.
    let access =
        crate::tenancy::auth::access(&state.store, &Principal::Operator, &claims.tenant_id)
            .await
            .map_err(|_| invalid_state())?;
    let now = now_ms();
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    let session = tx
        .onboarding(&claims.session_id)
        .await?
        .filter(|s| {
            s.flow == "redirect" && ob::same_hash(s.state_hash.as_deref(), &claims.nonce_hash)
        })
        .ok_or_else(invalid_state)?;
    // Single use: used_at is set in the transaction that checks it.
    let first_use = tx.use_onboarding_state(&session.id, now).await?;
    let expired = session.expires_at < now;
    if first_use && expired {
        tx.update_onboarding(
            &session.id,
            &OnboardingUpdate {
                status: "failed",
                error_code: Some("state_expired"),
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    let endpoint = shared_endpoint(&state, &access, "meta-cloud", Some(&session.endpoint_id)).await;
    let app = match endpoint {
        Ok(e) => app(&state, e).await.ok(),
        Err(_) => None,
    };
    let Some((app, return_url)) = app.and_then(|a| a.return_url.clone().map(|r| (a, r))) else {
        return Err(invalid_state());
    };
    if !first_use {
        return Ok(redirect(return_url, "error", "state_invalid"));
    }
    if expired {
        return Ok(redirect(return_url, "error", "state_expired"));
    }
    // Account-linking CSRF: a dialog link forwarded to someone else comes back in a browser
    // without the cookie. Nothing is exchanged or registered for it.
    if !same_browser(&headers, &session) {
        tracing::warn!(session = %session.id, tenant = %access.scope.id(), "meta callback from a browser that did not start the flow: refused");
        let _ = fail(&state, &access, &session.id, "browser_mismatch").await;
        return Ok(redirect(return_url, "error", "browser_mismatch"));
    }
    let outcome = redirect_flow(&state, &access, &app, &session, &q).await;
    Ok(match outcome {
        Ok(page) => page,
        Err(e) => {
            let code = e.code();
            let _ = fail(&state, &access, &session.id, code).await;
            redirect(return_url, "error", code)
        }
    })
}

/// The code exchanged, the numbers found, the token sealed into the session: the confirmation
/// page.
async fn redirect_flow(
    state: &AppState,
    access: &TenantAccess,
    app: &App,
    session: &OnboardingRecord,
    q: &CallbackQuery,
) -> Result<Response, ApiError> {
    if q.error.is_some() {
        tracing::info!(
            session = %session.id,
            reason = q.error_reason.as_deref().unwrap_or_default(),
            description = q.error_description.as_deref().unwrap_or_default(),
            "meta login cancelled or refused"
        );
        return Err(ApiError::unprocessable(
            "access_denied",
            "the Facebook login was cancelled or refused",
        ));
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| ApiError::unprocessable("token_exchange_failed", "no code came back"))?;
    let short = state
        .meta
        .exchange_code(
            &app.app_id,
            &app.app_secret,
            code,
            Some(&state.meta_callback_url()),
        )
        .await
        .map_err(|e| failure(Step::Exchange, &e))?;
    let long = state
        .meta
        .long_lived(&app.app_id, &app.app_secret, &short.access_token)
        .await
        .map_err(|e| failure(Step::Exchange, &e))?;
    let token_expires_at = long.expires_in.map(|s| now_ms() + s.saturating_mul(1000));
    let wabas = state
        .meta
        .owned_wabas(&long.access_token)
        .await
        .map_err(|e| failure(Step::Discovery, &e))?;
    let found = numbers(state, &long.access_token, wabas).await?;
    let discovered = serde_json::to_string(&found).map_err(|e| ApiError::Internal(e.into()))?;
    let (confirm, confirm_hash) = ob::sign(
        &state.vault,
        Purpose::Confirm,
        access.scope.id(),
        &session.id,
    );
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    tx.update_onboarding(
        &session.id,
        &OnboardingUpdate {
            status: "started",
            discovered: Some(&discovered),
            expires_at: Some(now_ms() + SESSION_TTL_MS),
            token_expires_at,
            ..Default::default()
        },
    )
    .await?;
    tx.set_onboarding_confirm(&session.id, Some(&confirm_hash))
        .await?;
    state
        .vault
        .seal_onboarding(
            &mut tx,
            &session.id,
            &[("access_token".to_string(), long.access_token)],
            token_expires_at,
        )
        .await?;
    tx.commit().await?;
    Ok(confirmation_page(&access.tenant, &found, &confirm))
}

/// Escape text for HTML text and double-quoted attribute values. Hand-written: five characters,
/// for one server-made page; no template engine is needed for it.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page that names the tenant and the numbers before anything is registered; its form
/// posts back to `confirm` with the single-use token. No script; framing forbidden.
fn confirmation_page(tenant: &crate::store::TenantRecord, found: &[Waba], token: &str) -> Response {
    let mut numbers = String::new();
    for w in found {
        for n in &w.phone_numbers {
            numbers.push_str(&format!(
                "<li>{} — {} (WhatsApp Business Account {})</li>\n",
                html(n.display_phone_number.as_deref().unwrap_or(&n.id)),
                html(n.verified_name.as_deref().unwrap_or("no verified name")),
                html(w.name.as_deref().unwrap_or(&w.id)),
            ));
        }
    }
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Connect WhatsApp numbers to {name}</title></head><body>\n\
         <h1>Connect WhatsApp numbers to “{name}”</h1>\n\
         <p>You are giving the account <strong>{name}</strong> (<code>{id}</code>) the right to \
         send and receive WhatsApp messages with these numbers. Confirm only if that account is \
         yours or you trust it with them.</p>\n<ul>\n{numbers}</ul>\n\
         <form method=\"post\" action=\"confirm\">\
         <input type=\"hidden\" name=\"confirm\" value=\"{token}\">\
         <button type=\"submit\" name=\"decision\" value=\"connect\">Connect to {name}</button> \
         <button type=\"submit\" name=\"decision\" value=\"cancel\">Cancel</button>\
         </form>\n</body></html>\n",
        name = html(&tenant.name),
        id = html(&tenant.id),
        token = html(token),
    );
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
            (REFERRER_POLICY, "no-referrer"),
            (X_FRAME_OPTIONS, "DENY"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// Whether a form post comes from this host's own page: a browser's `Origin` (when sent) is the
/// public URL's origin and `Sec-Fetch-Site` (when sent) is not `cross-site`.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let public = url::Url::parse(&state.public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let origin_ok = headers
        .get(ORIGIN)
        .is_none_or(|o| o.to_str().is_ok_and(|o| o == public));
    let site_ok = headers
        .get("sec-fetch-site")
        .is_none_or(|s| s.to_str().is_ok_and(|s| s != "cross-site"));
    origin_ok && site_ok
}

/// The confirmation page's form.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ConfirmForm {
    /// The page's single-use token.
    confirm: String,
    /// `connect`; anything else cancels.
    #[schema(example = "connect")]
    decision: String,
}

/// The confirmation page's answer (public, form-encoded `confirm` and `decision`): from the
/// browser that started the flow, with the page's single-use token, `decision=connect` connects
/// the number (or, with several, lets the tenant pick through the API); anything else cancels.
/// Redirects (303) to `return_url` with `?connected=`, `?session=` or `?error=`.
#[utoipa::path(
    post,
    path = "/connect/meta/confirm",
    tag = "onboarding",
    request_body(content = ConfirmForm, content_type = "application/x-www-form-urlencoded", description = "`confirm=<token from the page>&decision=connect|cancel`"),
    responses(
        (status = 303, description = "Back to the endpoint's return_url with ?connected=, ?session= or ?error="),
        (status = 400, description = "Not this browser's confirmation, not from this host's page, or already used (`confirmation_invalid`)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if !same_origin(&state, &headers) {
        tracing::warn!("meta confirmation posted from another site: refused");
        return Err(invalid_confirmation());
    }
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let claims = form
        .get("confirm")
        .and_then(|t| ob::verify(&state.vault, Purpose::Confirm, t))
        .ok_or_else(invalid_confirmation)?;
    let access =
        crate::tenancy::auth::access(&state.store, &Principal::Operator, &claims.tenant_id)
            .await
            .map_err(|_| invalid_confirmation())?;
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let session = tx
        .onboarding(&claims.session_id)
        .await?
        .filter(|s| {
            s.flow == "redirect" && ob::same_hash(s.confirm_hash.as_deref(), &claims.nonce_hash)
        })
        .ok_or_else(invalid_confirmation)?;
    tx.commit().await?;
    if !same_browser(&headers, &session) {
        tracing::warn!(session = %session.id, "meta confirmation from a browser that did not start the flow: refused");
        return Err(invalid_confirmation());
    }
    let endpoint =
        shared_endpoint(&state, &access, "meta-cloud", Some(&session.endpoint_id)).await?;
    let app = app(&state, endpoint).await?;
    let return_url = app.return_url.clone().ok_or_else(invalid_confirmation)?;
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    let first_use = tx.take_onboarding_confirm(&session.id).await?;
    tx.commit().await?;
    let done_with = |pairs: &[(&str, &str)]| {
        let mut r = redirect_with(return_url.clone(), pairs);
        if let Ok(v) = browser_cookie(&state, "").parse::<axum::http::HeaderValue>() {
            r.headers_mut().insert(SET_COOKIE, v);
        }
        r
    };
    let done = |key: &str, value: &str| done_with(&[(key, value)]);
    if !first_use {
        return Ok(done("error", "state_invalid"));
    }
    let refused = if session.expires_at < now_ms() {
        Some("state_expired")
    } else if form.get("decision").map(String::as_str) != Some("connect") {
        Some("access_denied")
    } else if access.tenant.status == crate::tenancy::auth::SUSPENDED {
        Some("tenant_suspended")
    } else {
        None
    };
    if let Some(code) = refused {
        fail(&state, &access, &session.id, code).await?;
        return Ok(done("error", code));
    }
    let found: Vec<Waba> = session
        .discovered
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let total: usize = found.iter().map(|w| w.phone_numbers.len()).sum();
    if total != 1 {
        // Several numbers: the tenant picks through the API, among those this browser approved.
        let mut tx = access.begin(&state.store, Mode::Write).await?;
        tx.update_onboarding(
            &session.id,
            &OnboardingUpdate {
                status: "picking",
                expires_at: Some(now_ms() + SESSION_TTL_MS),
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(done("session", &session.id));
    }
    let outcome = connect_confirmed(&state, &access, &client, &app, &session, &found).await;
    Ok(match outcome {
        Ok(record) => done("connected", &record.id),
        Err(Unfinished {
            error,
            retryable: true,
        }) => {
            // The PIN is sealed in the session: the tenant retries with a pick, not a new flow.
            done_with(&[("error", error.code()), ("session", &session.id)])
        }
        Err(Unfinished { error, .. }) => {
            let code = error.code();
            let _ = fail(&state, &access, &session.id, code).await;
            done("error", code)
        }
    })
}

/// Connect the one number a confirmed session found, with its sealed token.
async fn connect_confirmed(
    state: &AppState,
    access: &TenantAccess,
    client: &Client,
    app: &App,
    session: &OnboardingRecord,
    found: &[Waba],
) -> Result<ConnectionRecord, Unfinished> {
    let (waba, number) = found
        .iter()
        .find_map(|w| w.phone_numbers.first().map(|n| (w.id.clone(), n.clone())))
        .ok_or(ApiError::NotFound("number"))?;
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let secrets = state.vault.open_onboarding(&mut tx, &session.id).await?;
    tx.commit().await?;
    let token = secrets
        .into_iter()
        .find(|(f, _)| f == "access_token")
        .map(|(_, t)| t)
        .ok_or_else(|| {
            ApiError::unprocessable("state_expired", "the session's token is gone; start again")
        })?;
    let origin = Origin {
        actor: session.actor.clone(),
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    };
    finish(
        state,
        access,
        &origin,
        app,
        session,
        &token,
        session.token_expires_at,
        &waba,
        &number,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct SessionPath {
    #[allow(dead_code)]
    tenant: String,
    session: String,
}

/// An onboarding session: its status and the WABAs and numbers found (never a token).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connect/meta/{session}",
    tag = "onboarding",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("session" = String, Path, description = "Onboarding session id (`onb_…`)")),
    responses(
        (status = 200, description = "OK", body = SessionView),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<SessionPath>,
) -> Result<Json<SessionView>, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let s = tx
        .onboarding(&p.session)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    tx.commit().await?;
    Ok(Json(session_view(&s)))
}

/// `POST …/connect/meta/{session}/pick` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pick {
    /// One of the session's WABA ids.
    pub waba_id: String,
    /// One of that WABA's phone number ids.
    pub phone_number_id: String,
}

/// Choose the number to connect (owner/admin) when onboarding found several.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connect/meta/{session}/pick",
    tag = "onboarding",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("session" = String, Path, description = "Onboarding session id (`onb_…`)")),
    request_body = Pick,
    responses(
        (status = 201, description = "Connected", body = ConnectionView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::BadGateway,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn pick(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
    Path(p): Path<SessionPath>,
    ApiJson(body): ApiJson<Pick>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    let access = &tenant.access;
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let session = tx
        .onboarding(&p.session)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    tx.commit().await?;
    if session.status != "picking" {
        return Err(ApiError::Conflict {
            code: "session_not_pickable",
            message: format!("the session is {}, not waiting for a pick", session.status),
        });
    }
    if session.expires_at < now_ms() {
        sweep(&state, access).await?;
        return Err(ApiError::unprocessable(
            "state_expired",
            "the session expired; start connecting again",
        ));
    }
    let wabas: Vec<Waba> = session
        .discovered
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let number = wabas
        .iter()
        .find(|w| w.id == body.waba_id)
        .and_then(|w| {
            w.phone_numbers
                .iter()
                .find(|n| n.id == body.phone_number_id)
        })
        .cloned()
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_number",
                "pick a waba_id and phone_number_id from the session's list",
            )
        })?;
    let endpoint =
        shared_endpoint(&state, access, "meta-cloud", Some(&session.endpoint_id)).await?;
    let app = app(&state, endpoint).await?;
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let secrets = state.vault.open_onboarding(&mut tx, &session.id).await?;
    tx.commit().await?;
    let token = secrets
        .into_iter()
        .find(|(f, _)| f == "access_token")
        .map(|(_, t)| t)
        .ok_or_else(|| {
            ApiError::unprocessable("state_expired", "the session's token is gone; start again")
        })?;
    let origin = client.origin(access.actor.ledger_name());
    let record = finish(
        &state,
        access,
        &origin,
        &app,
        &session,
        &token,
        session.token_expires_at,
        &body.waba_id,
        &number,
    )
    .await
    .map_err(|u| match u.retryable {
        true => ApiError::Retryable {
            error: Box::new(u.error),
            session: session.id.clone(),
        },
        false => u.error,
    })?;
    Ok((StatusCode::CREATED, Json(view(&state, record))))
}
