//! People over HTTP: signing in and out (`/session`), password resets, invitations and their
//! acceptance, and the people of a tenant or partner (`…/people`, `…/invitations`).

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::AppState;
use super::access::{OPERATOR_COOKIE, OperatorSession, SESSION_COOKIE};
use super::auth::{Auth, Client, Person, Tenant};
use super::json::ApiJson;
use crate::error::ApiError;
use crate::people::{self, Device, Invite, PeopleError, Started};
use crate::store::{InvitationRecord, Member, Mode, Org};
use crate::tenancy::{PartnerRole, Role, Scope};
use crate::vault::Secret;

/// `POST /api/v1/session` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The person's email.
    #[schema(max_length = 254, example = "ana@example.com")]
    pub email: String,
    /// Their password.
    #[schema(value_type = String, max_length = 256)]
    pub password: Secret,
}

/// A signed-in person.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// `usr_…`.
    pub id: String,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
}

/// One of a person's memberships.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MembershipView {
    /// `tenant` or `partner`.
    pub kind: &'static str,
    /// The tenant's or partner's id: what `Switchyard-Context` names.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The person's role there.
    pub role: String,
}

/// A person's session.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Who.
    pub user: UserView,
    /// Where they belong and with which role.
    pub memberships: Vec<MembershipView>,
    /// Send it as `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    /// When the session ends (Unix ms).
    pub expires_at: i64,
}

/// The people-operation errors as API errors.
impl From<PeopleError> for ApiError {
    fn from(e: PeopleError) -> Self {
        let message = e.to_string();
        match e {
            PeopleError::BadCredentials => ApiError::Unauthenticated {
                code: "invalid_credentials",
                message,
            },
            PeopleError::Locked { retry_after, .. } => ApiError::TooManyRequests {
                code: "sign_in_locked",
                message,
                retry_after,
            },
            PeopleError::WeakPassword => ApiError::unprocessable("weak_password", message),
            PeopleError::BadEmail => ApiError::unprocessable("invalid_email", message),
            PeopleError::BadName => ApiError::unprocessable("invalid_name", message),
            PeopleError::BadToken => ApiError::unprocessable("invalid_link", message),
            PeopleError::Expired => ApiError::unprocessable("link_expired", message),
            PeopleError::Used => ApiError::Conflict {
                code: "link_used",
                message,
            },
            PeopleError::AlreadyMember => ApiError::Conflict {
                code: "already_member",
                message,
            },
            PeopleError::LastOwner => ApiError::Conflict {
                code: "last_owner",
                message,
            },
            PeopleError::OwnerOnly => ApiError::Refused {
                code: "owner_only",
                message,
            },
            PeopleError::NoMember => ApiError::NotFound("member"),
            PeopleError::Mail(_) => ApiError::BadGateway {
                code: "mail_failed",
                message,
            },
            PeopleError::Store(s) => s.into(),
            PeopleError::Hash => ApiError::Internal(anyhow::anyhow!(message)),
        }
    }
}

/// A secret from a body as text, wiped when dropped.
fn text(secret: &Secret) -> Zeroizing<String> {
    Zeroizing::new(String::from_utf8_lossy(secret.expose()).into_owned())
}

fn device(client: &Client) -> Device {
    Device {
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    }
}

/// One try of a sign-in, reset or acceptance from this client address, or 429.
fn limit(state: &AppState, client: &Client) -> Result<(), ApiError> {
    let ip = client
        .ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .map(crate::ingress::guard::client_key);
    // The limiter keeps a cell per address: forget the quiet ones now and then.
    if state.sign_ins.len() > 10_000 {
        state.sign_ins.retain_recent();
    }
    if let Some(ip) = ip
        && state.sign_ins.check_key(&ip).is_err()
    {
        return Err(ApiError::TooManyRequests {
            code: "too_many_sign_ins",
            message: "too many sign-in attempts from this address; wait a minute".into(),
            retry_after: 60,
        });
    }
    Ok(())
}

fn cookie(state: &AppState, value: &str, max_age_s: i64) -> Result<HeaderValue, ApiError> {
    named_cookie(state, SESSION_COOKIE, "Lax", value, max_age_s)
}

/// A session cookie: HttpOnly, Secure unless the host is plain http on loopback.
fn named_cookie(
    state: &AppState,
    name: &str,
    same_site: &str,
    value: &str,
    max_age_s: i64,
) -> Result<HeaderValue, ApiError> {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_s}{secure}"
    ))
    .map_err(|e| ApiError::Internal(e.into()))
}

/// The operator's console cookie: Strict, since nothing links into the operator's pages.
fn operator_cookie(state: &AppState, value: &str, max_age_s: i64) -> Result<HeaderValue, ApiError> {
    named_cookie(state, OPERATOR_COOKIE, "Strict", value, max_age_s)
}

/// The view of a session, with its CSRF token.
async fn view(
    state: &AppState,
    user_id: &str,
    token: &str,
    expires_at: i64,
) -> Result<SessionView, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let user = tx.user(user_id).await?.ok_or(ApiError::Unauthorized)?;
    let rows = tx.memberships_of(user_id).await?;
    let mut memberships = Vec::with_capacity(rows.len());
    for m in &rows {
        if let Some(p) = &m.partner_id {
            let name = tx.partner(p).await?.map(|p| p.name).unwrap_or_default();
            memberships.push(MembershipView {
                kind: "partner",
                id: p.clone(),
                name,
                role: m.role.clone(),
            });
        }
    }
    tx.commit().await?;
    let mut tx = state.store.begin(Scope::Operator, Mode::Read).await?;
    for m in &rows {
        if let Some(t) = &m.tenant_id {
            let Some(tenant) = tx.tenant(t).await? else {
                continue;
            };
            memberships.push(MembershipView {
                kind: "tenant",
                id: t.clone(),
                name: tenant.name,
                role: m.role.clone(),
            });
        }
    }
    tx.commit().await?;
    Ok(SessionView {
        user: UserView {
            id: user.id,
            email: user.email,
            name: user.name,
        },
        memberships,
        csrf_token: people::csrf_token(token),
        expires_at,
    })
}

/// A started session as a response: the cookie, and the view.
async fn started(state: &AppState, s: Started) -> Result<Response, ApiError> {
    let body = view(state, &s.user_id, &s.token, s.expires_at).await?;
    let max_age = (s.expires_at - crate::store::now_ms()) / 1000;
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(SET_COOKIE, cookie(state, &s.token, max_age)?);
    // One browser is one signed-in party: a person's sign-in ends the operator's there.
    headers.append(SET_COOKIE, operator_cookie(state, "", 0)?);
    Ok(response)
}

/// Sign in with email and password: sets the session cookie (HttpOnly, SameSite=Lax, Secure
/// unless the host is plain http on loopback) and returns the CSRF token. Five wrong
/// passwords in a row lock the account for 15 minutes.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "people",
    request_body = SignIn,
    responses(
        (status = 201, description = "Signed in; `Set-Cookie: switchyard_session=…`", body = SessionView),
        crate::http::openapi::BadRequest,
        (status = 401, description = "wrong email or password (`invalid_credentials`)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unprocessable,
        (status = 429, description = "locked after repeated failures (`sign_in_locked`) or too many tries from this address (`too_many_sign_ins`); see Retry-After", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    limit(&state, &client)?;
    let s = people::sign_in(
        &state.store,
        &body.email,
        text(&body.password),
        &device(&client),
    )
    .await?;
    started(&state, s).await
}

/// The signed-in person, their memberships and the session's CSRF token.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "people",
    responses(
        (status = 200, description = "OK", body = SessionView),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Unavailable,
    ),
    security(("session" = []))
)]
pub async fn show_session(
    State(state): State<AppState>,
    Person(p): Person,
) -> Result<Json<SessionView>, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let session = tx
        .session(&p.session_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    tx.commit().await?;
    Ok(Json(
        view(&state, &p.user_id, &p.token, session.expires_at).await?,
    ))
}

/// Sign out: the session ends here and its cookie is cleared.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "people",
    responses(
        (status = 204, description = "Signed out"),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Unavailable,
    ),
    security(("session" = []))
)]
pub async fn sign_out(
    State(state): State<AppState>,
    Person(p): Person,
) -> Result<Response, ApiError> {
    people::sign_out(&state.store, &p.session_id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}

/// `POST /api/v1/password-resets` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The account's email (any text: the answer is the same whether or not it names an
    /// account).
    #[schema(example = "ana@example.com")]
    pub email: String,
}

/// A request that was taken.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// What happens next.
    pub message: &'static str,
}

/// Ask for a password-reset link by mail. The answer is the same whether or not the email
/// belongs to someone.
#[utoipa::path(
    post,
    path = "/api/v1/password-resets",
    tag = "people",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "A link is mailed if the email belongs to an account", body = Accepted),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::TooManyRequests,
        crate::http::openapi::Unavailable,
    )
)]
pub async fn request_reset(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    limit(&state, &client)?;
    people::request_reset(&state.store, &state.mailer, &state.public_url, &body.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "if this email belongs to an account, a reset link is on its way (valid one hour)",
        }),
    ))
}

/// `POST /api/v1/password-resets/confirm` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the mailed link (`rst_….…`).
    #[schema(value_type = String, max_length = 200)]
    pub token: Secret,
    /// The new password (12 to 256 bytes).
    #[schema(value_type = String, min_length = 12, max_length = 256)]
    pub password: Secret,
}

/// Set a new password with a reset link: every other session of the person ends, a lock-out is
/// lifted, and a new session starts.
#[utoipa::path(
    post,
    path = "/api/v1/password-resets/confirm",
    tag = "people",
    request_body = ResetConfirm,
    responses(
        (status = 201, description = "Password set; signed in", body = SessionView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Conflict,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_link` (not a link this host mailed, or expired or used), or a password it does not take", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::TooManyRequests,
        crate::http::openapi::Unavailable,
    )
)]
pub async fn confirm_reset(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<Response, ApiError> {
    limit(&state, &client)?;
    let s = people::reset_password(
        &state.store,
        &text(&body.token),
        text(&body.password),
        &device(&client),
    )
    .await?;
    started(&state, s).await
}

/// `POST /api/v1/invitations/accept` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The token from the mailed link (`inv_….…`).
    #[schema(value_type = String, max_length = 200)]
    pub token: Secret,
    /// Your name (new accounts; 1 to 200 characters).
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// A new password (new accounts), or your password (an existing account).
    #[schema(value_type = String, max_length = 256)]
    pub password: Secret,
}

/// Accept an invitation: creates the account (or, for an existing one, checks its password),
/// adds the membership and signs in.
#[utoipa::path(
    post,
    path = "/api/v1/invitations/accept",
    tag = "people",
    request_body = AcceptInvitation,
    responses(
        (status = 201, description = "Member now; signed in", body = SessionView),
        crate::http::openapi::BadRequest,
        (status = 401, description = "an existing account's password is wrong (`invalid_credentials`)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Conflict,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_link` (not a link this host mailed, or expired or used), or a name or password it does not take", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::TooManyRequests,
        crate::http::openapi::Unavailable,
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> Result<Response, ApiError> {
    limit(&state, &client)?;
    let s = people::accept(
        &state.store,
        &text(&body.token),
        body.name.as_deref(),
        text(&body.password),
        &device(&client),
    )
    .await?;
    started(&state, s).await
}

/// `POST /api/v1/tenants/{tenant}/invitations` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// Who to invite (not an address → 422 `invalid_email`).
    #[schema(format = Email, max_length = 254, example = "ana@example.com")]
    pub email: String,
    /// `owner`, `admin`, `agent` or `viewer` (another → 422 `invalid_role`).
    #[schema(pattern = "^(owner|admin|agent|viewer)$(?!\\n)", example = "agent")]
    pub role: String,
}

/// `POST /api/v1/partners/{partner}/invitations` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartnerInvitation {
    /// Who to invite (not an address → 422 `invalid_email`).
    #[schema(format = Email, max_length = 254, example = "ana@example.com")]
    pub email: String,
    /// `owner` or `member` (another → 422 `invalid_role`).
    #[schema(pattern = "^(owner|member)$(?!\\n)", example = "member")]
    pub role: String,
}

/// `PATCH /api/v1/tenants/{tenant}/people/{user}` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// The new role: `owner`, `admin`, `agent` or `viewer` (another → 422 `invalid_role`).
    #[schema(pattern = "^(owner|admin|agent|viewer)$(?!\\n)", example = "admin")]
    pub role: String,
}

/// `PATCH /api/v1/partners/{partner}/people/{user}` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePartnerRole {
    /// The new role: `owner` or `member` (another → 422 `invalid_role`).
    #[schema(pattern = "^(owner|member)$(?!\\n)", example = "member")]
    pub role: String,
}

/// A list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct List<T> {
    /// The items.
    pub data: Vec<T>,
}

/// Path of a member.
#[derive(Deserialize)]
pub struct MemberPath {
    #[allow(dead_code)]
    tenant: Option<String>,
    #[allow(dead_code)]
    partner: Option<String>,
    user: String,
}

/// Path of an invitation.
#[derive(Deserialize)]
pub struct InvitationPath {
    #[allow(dead_code)]
    tenant: Option<String>,
    #[allow(dead_code)]
    partner: Option<String>,
    invitation: String,
}

async fn members(state: &AppState, org: Org<'_>) -> Result<Json<List<Member>>, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let data = tx.members(org).await?;
    tx.commit().await?;
    Ok(Json(List { data }))
}

async fn invitations(
    state: &AppState,
    org: Org<'_>,
) -> Result<Json<List<InvitationRecord>>, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let data = tx.open_invitations(org).await?;
    tx.commit().await?;
    Ok(Json(List { data }))
}

fn tenant_role(role: &str) -> Result<&'static str, ApiError> {
    Role::parse(role).map(Role::as_str).ok_or_else(|| {
        ApiError::unprocessable("invalid_role", "role must be owner, admin, agent or viewer")
    })
}

fn partner_role(role: &str) -> Result<&'static str, ApiError> {
    PartnerRole::parse(role)
        .map(PartnerRole::as_str)
        .ok_or_else(|| ApiError::unprocessable("invalid_role", "role must be owner or member"))
}

/// The people of a tenant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/people",
    tag = "people",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses((status = 200, description = "OK", body = List<Member>), crate::http::openapi::TenantErrors),
    security(("bearer" = []), ("session" = []))
)]
pub async fn tenant_people(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<List<Member>>, ApiError> {
    members(&state, Org::Tenant(tenant.access.scope.id())).await
}

/// Invite someone to a tenant by email (only an owner, the partner or the operator invites an
/// owner).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/invitations",
    tag = "people",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = NewInvitation,
    responses(
        (status = 201, description = "Invited; the link is mailed (never returned)", body = InvitationRecord),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::BadGateway,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn invite_to_tenant(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<NewInvitation>,
) -> Result<(StatusCode, Json<InvitationRecord>), ApiError> {
    let role = tenant_role(&body.role)?;
    if role == "owner" && !tenant.access.actor.owner_powers() {
        return Err(PeopleError::OwnerOnly.into());
    }
    let by = tenant.access.actor.ledger_name();
    let record = people::invite(
        &state.store,
        &state.mailer,
        &state.public_url,
        &Invite {
            org: Org::Tenant(tenant.access.scope.id()),
            org_name: &tenant.access.tenant.name,
            email: &body.email,
            role,
            invited_by: &by,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// A tenant's open invitations.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/invitations",
    tag = "people",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses((status = 200, description = "OK", body = List<InvitationRecord>), crate::http::openapi::TenantErrors),
    security(("bearer" = []), ("session" = []))
)]
pub async fn tenant_invitations(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<List<InvitationRecord>>, ApiError> {
    invitations(&state, Org::Tenant(tenant.access.scope.id())).await
}

/// Withdraw a tenant's invitation.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/invitations/{invitation}",
    tag = "people",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`)"),
        ("invitation" = String, Path, description = "Invitation id (`inv_…`)"),
    ),
    responses(
        (status = 204, description = "Withdrawn"),
        crate::http::openapi::TenantErrors,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn withdraw_tenant_invitation(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<InvitationPath>,
) -> Result<StatusCode, ApiError> {
    match people::withdraw(
        &state.store,
        Org::Tenant(tenant.access.scope.id()),
        &p.invitation,
    )
    .await
    {
        Err(PeopleError::BadToken) => Err(ApiError::NotFound("invitation")),
        other => other.map(|()| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}

/// Change a tenant member's role (only an owner, the partner or the operator touches the owner
/// role; the last owner keeps it).
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/people/{user}",
    tag = "people",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`)"),
        ("user" = String, Path, description = "Person id (`usr_…`)"),
    ),
    request_body = ChangeRole,
    responses(
        (status = 204, description = "Changed"),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn change_tenant_member(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<MemberPath>,
    ApiJson(body): ApiJson<ChangeRole>,
) -> Result<StatusCode, ApiError> {
    let role = tenant_role(&body.role)?;
    people::change_member(
        &state.store,
        Org::Tenant(tenant.access.scope.id()),
        tenant.access.actor.owner_powers(),
        &p.user,
        Some(role),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove someone from a tenant (the last owner stays).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/people/{user}",
    tag = "people",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`)"),
        ("user" = String, Path, description = "Person id (`usr_…`)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        crate::http::openapi::TenantErrors,
        crate::http::openapi::Conflict,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn remove_tenant_member(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<MemberPath>,
) -> Result<StatusCode, ApiError> {
    people::change_member(
        &state.store,
        Org::Tenant(tenant.access.scope.id()),
        tenant.access.actor.owner_powers(),
        &p.user,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct PartnerPath {
    partner: String,
}

/// The partner a partner route is about (its owner or the operator reached it), or 404.
async fn partner_of(state: &AppState, id: &str) -> Result<crate::store::PartnerRecord, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let found = tx.partner(id).await?;
    tx.commit().await?;
    found.ok_or(ApiError::NotFound("partner"))
}

/// The people of a partner.
#[utoipa::path(
    get,
    path = "/api/v1/partners/{partner}/people",
    tag = "people",
    params(("partner" = String, Path, description = "Partner id (`par_…`)")),
    responses(
        (status = 200, description = "OK", body = List<Member>),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn partner_people(
    State(state): State<AppState>,
    Path(p): Path<PartnerPath>,
) -> Result<Json<List<Member>>, ApiError> {
    let partner = partner_of(&state, &p.partner).await?;
    members(&state, Org::Partner(&partner.id)).await
}

/// Invite someone to a partner by email.
#[utoipa::path(
    post,
    path = "/api/v1/partners/{partner}/invitations",
    tag = "people",
    params(("partner" = String, Path, description = "Partner id (`par_…`)")),
    request_body = NewPartnerInvitation,
    responses(
        (status = 201, description = "Invited; the link is mailed (never returned)", body = InvitationRecord),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::BadGateway,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn invite_to_partner(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<PartnerPath>,
    ApiJson(body): ApiJson<NewPartnerInvitation>,
) -> Result<(StatusCode, Json<InvitationRecord>), ApiError> {
    let partner = partner_of(&state, &p.partner).await?;
    let role = partner_role(&body.role)?;
    let by = principal.name();
    let record = people::invite(
        &state.store,
        &state.mailer,
        &state.public_url,
        &Invite {
            org: Org::Partner(&partner.id),
            org_name: &partner.name,
            email: &body.email,
            role,
            invited_by: &by,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// A partner's open invitations.
#[utoipa::path(
    get,
    path = "/api/v1/partners/{partner}/invitations",
    tag = "people",
    params(("partner" = String, Path, description = "Partner id (`par_…`)")),
    responses(
        (status = 200, description = "OK", body = List<InvitationRecord>),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn partner_invitations(
    State(state): State<AppState>,
    Path(p): Path<PartnerPath>,
) -> Result<Json<List<InvitationRecord>>, ApiError> {
    let partner = partner_of(&state, &p.partner).await?;
    invitations(&state, Org::Partner(&partner.id)).await
}

/// Withdraw a partner's invitation.
#[utoipa::path(
    delete,
    path = "/api/v1/partners/{partner}/invitations/{invitation}",
    tag = "people",
    params(
        ("partner" = String, Path, description = "Partner id (`par_…`)"),
        ("invitation" = String, Path, description = "Invitation id (`inv_…`)"),
    ),
    responses(
        (status = 204, description = "Withdrawn"),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn withdraw_partner_invitation(
    State(state): State<AppState>,
    Path(p): Path<InvitationPath>,
) -> Result<StatusCode, ApiError> {
    let partner = p.partner.clone().unwrap_or_default();
    match people::withdraw(&state.store, Org::Partner(&partner), &p.invitation).await {
        Err(PeopleError::BadToken) => Err(ApiError::NotFound("invitation")),
        other => other.map(|()| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}

/// Change a partner member's role (the last owner keeps it).
#[utoipa::path(
    patch,
    path = "/api/v1/partners/{partner}/people/{user}",
    tag = "people",
    params(
        ("partner" = String, Path, description = "Partner id (`par_…`)"),
        ("user" = String, Path, description = "Person id (`usr_…`)"),
    ),
    request_body = ChangePartnerRole,
    responses(
        (status = 204, description = "Changed"),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn change_partner_member(
    State(state): State<AppState>,
    Path(p): Path<MemberPath>,
    ApiJson(body): ApiJson<ChangePartnerRole>,
) -> Result<StatusCode, ApiError> {
    let role = partner_role(&body.role)?;
    let partner = p.partner.clone().unwrap_or_default();
    people::change_member(
        &state.store,
        Org::Partner(&partner),
        true,
        &p.user,
        Some(role),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove someone from a partner (the last owner stays).
#[utoipa::path(
    delete,
    path = "/api/v1/partners/{partner}/people/{user}",
    tag = "people",
    params(
        ("partner" = String, Path, description = "Partner id (`par_…`)"),
        ("user" = String, Path, description = "Person id (`usr_…`)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn remove_partner_member(
    State(state): State<AppState>,
    Path(p): Path<MemberPath>,
) -> Result<StatusCode, ApiError> {
    let partner = p.partner.clone().unwrap_or_default();
    people::change_member(&state.store, Org::Partner(&partner), true, &p.user, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/operator/session` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorSignIn {
    /// The operator token.
    #[schema(value_type = String, max_length = 512)]
    pub token: Secret,
}

/// The operator's console session.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OperatorSessionView {
    /// Send it as `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    /// When the session ends (Unix ms).
    pub expires_at: i64,
}

/// Sign the operator in to the console with the operator token: sets the HttpOnly,
/// SameSite=Strict cookie `switchyard_operator` (8 hours) and returns the CSRF token.
#[utoipa::path(
    post,
    path = "/api/v1/operator/session",
    tag = "people",
    request_body = OperatorSignIn,
    responses(
        (status = 201, description = "Signed in; `Set-Cookie: switchyard_operator=…`", body = OperatorSessionView),
        crate::http::openapi::Unprocessable,
        crate::http::openapi::BadRequest,
        (status = 401, description = "not the operator token (`invalid_credentials`)", body = crate::http::openapi::ErrorBody),
        (status = 429, description = "too many tries from this address (`too_many_sign_ins`); see Retry-After", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    )
)]
pub async fn operator_sign_in(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<OperatorSignIn>,
) -> Result<Response, ApiError> {
    limit(&state, &client)?;
    let Some((token, expires_at)) = people::sign_in_operator(
        &state.store,
        &state.operator,
        &text(&body.token),
        &device(&client),
    )
    .await?
    else {
        return Err(PeopleError::BadCredentials.into());
    };
    let view = OperatorSessionView {
        csrf_token: people::csrf_token(&token),
        expires_at,
    };
    let max_age = (expires_at - crate::store::now_ms()) / 1000;
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    let headers = response.headers_mut();
    headers.insert(SET_COOKIE, operator_cookie(&state, &token, max_age)?);
    headers.append(SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}

fn operator_session(
    session: Option<axum::Extension<OperatorSession>>,
) -> Result<OperatorSession, ApiError> {
    session.map(|s| s.0).ok_or_else(|| {
        // Like `person_only`: the credential is valid but not the kind this route is about.
        ApiError::Refused {
            code: "operator_session_only",
            message: "this route is about the operator's console session; sign in with the operator token at POST /api/v1/operator/session".into(),
        }
    })
}

/// The operator's console session and its CSRF token.
#[utoipa::path(
    get,
    path = "/api/v1/operator/session",
    tag = "people",
    responses(
        (status = 200, description = "OK", body = OperatorSessionView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Unavailable,
    ),
    security(("session" = []))
)]
pub async fn show_operator_session(
    State(state): State<AppState>,
    session: Option<axum::Extension<OperatorSession>>,
) -> Result<Json<OperatorSessionView>, ApiError> {
    let s = operator_session(session)?;
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let found = tx.operator_session(&s.session_id).await?;
    tx.commit().await?;
    let (_, expires_at) = found.ok_or(ApiError::Unauthorized)?;
    Ok(Json(OperatorSessionView {
        csrf_token: people::csrf_token(&s.token),
        expires_at,
    }))
}

/// Sign the operator out of the console: the session ends and its cookie is cleared.
#[utoipa::path(
    delete,
    path = "/api/v1/operator/session",
    tag = "people",
    responses(
        (status = 204, description = "Signed out"),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Unavailable,
    ),
    security(("session" = []))
)]
pub async fn operator_sign_out(
    State(state): State<AppState>,
    session: Option<axum::Extension<OperatorSession>>,
) -> Result<Response, ApiError> {
    let s = operator_session(session)?;
    people::sign_out_operator(&state.store, &s.session_id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, operator_cookie(&state, "", 0)?);
    Ok(response)
}
