//! `/api/v1/plans`, a partner's ceiling and a tenant's plan (DECISIONS C5): the operator defines
//! plans; a partner defines its own within the ceiling the operator gives it; the operator or the
//! tenant's partner puts a tenant on a plan (or none: unlimited), and the tenant's owner may
//! switch among its partner's plans.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Auth, Tenant};
use super::json::ApiJson;
use crate::error::ApiError;
use crate::plans::{Terms, Usage};
use crate::store::{Mode, PlanRecord, StoreError, now_ms};
use crate::tenancy::{Actor, Principal, Role, Scope, ids};

/// `POST /api/v1/plans` and `PUT /api/v1/plans/{plan}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// Name (see [`PlanBodyDoc`]).
    pub name: String,
    /// What it allows.
    #[serde(flatten)]
    pub terms: Terms,
}

/// A document-only struct of a plan: the given fields and the terms (channels, numbers, monthly
/// messages, AI policies) side by side in one object. The derived schema of a flattened
/// [`Terms`] would be an `allOf` whose halves each forbid the other's fields.
macro_rules! plan_doc {
    ($(#[$attr:meta])* $name:ident { $($(#[$fattr:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$attr])*
        #[allow(dead_code)]
        pub struct $name {
            $($(#[$fattr])* pub $field: $ty,)*
            /// Connector names a tenant may connect, up to 100 (`null`: every channel).
            #[schema(max_items = 100, inline)]
            pub channels: Option<Vec<ChannelName>>,
            /// Numbers a tenant may have connected at once, 0 to 1,000,000 (`null`: unlimited).
            #[schema(minimum = 0, maximum = 1_000_000)]
            pub numbers: Option<i64>,
            /// Outbound messages per calendar month, UTC, 0 to 10^12 (`null`: unlimited).
            #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
            pub monthly_messages: Option<i64>,
            /// Whether AI policies (policies that reach the network or report insights) may run.
            pub ai_policies: bool,
        }
    };
}

plan_doc! {
    /// A plan's name and terms: the document's shape of [`PlanBody`] (else 422 `invalid_plan`).
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(as = PlanBody)]
    PlanBodyDoc {
        /// Name, unique among its owner's plans: 1–200 characters, not blank, no control
        /// characters (else 422 `invalid_name`).
        #[schema(
            min_length = 1,
            max_length = 200,
            pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$(?!\\n)",
            example = "Starter"
        )]
        name: String,
    }
}

/// A connector name in a plan's `channels`: 1–64 of a-z, 0-9 and `-` (else 422 `invalid_plan`).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(pattern = "^[a-z0-9-]{1,64}$(?!\\n)", example = "meta-cloud")]
#[allow(dead_code)]
pub struct ChannelName(String);

plan_doc! {
    /// A plan as the API shows it: the document's shape of [`PlanView`].
    #[derive(utoipa::ToSchema)]
    #[schema(as = PlanView)]
    PlanViewDoc {
        /// `pln_…`.
        id: String,
        /// Name.
        name: String,
        /// The partner that defined it (`null`: the operator).
        partner_id: Option<String>,
        /// Creation time (Unix ms).
        created_at: i64,
        /// Last change (Unix ms).
        updated_at: i64,
    }
}

/// [`PlanView`]'s schema is [`PlanViewDoc`]'s.
impl utoipa::PartialSchema for PlanView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <PlanViewDoc as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for PlanView {
    fn name() -> std::borrow::Cow<'static, str> {
        <PlanViewDoc as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <PlanViewDoc as utoipa::ToSchema>::schemas(schemas)
    }
}

/// A plan as the API shows it (its schema: [`PlanViewDoc`]).
#[derive(Debug, Serialize)]
pub struct PlanView {
    /// `pln_…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// The partner that defined it (`null`: the operator).
    pub partner_id: Option<String>,
    /// What it allows.
    #[serde(flatten)]
    pub terms: Terms,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

impl From<PlanRecord> for PlanView {
    fn from(p: PlanRecord) -> Self {
        PlanView {
            terms: Terms::of(&p),
            id: p.id,
            name: p.name,
            partner_id: p.partner_id,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A list of plans.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanList {
    /// The plans, the operator's first, by name.
    pub data: Vec<PlanView>,
}

/// Path of a plan.
#[derive(Deserialize)]
pub struct PlanPath {
    plan: String,
}

/// The plan `id` as the caller sees it (404 for another partner's).
async fn visible(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<PlanRecord, ApiError> {
    let who = super::plugins::viewer_of(state, principal).await?;
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let plan = tx.plan(id).await?;
    tx.commit().await?;
    plan.filter(|p| match &who {
        None => true,
        Some(partner) => p.partner_id.is_none() || p.partner_id == *partner,
    })
    .ok_or(ApiError::NotFound("plan"))
}

/// The plan's owner: the operator for the operator's plans, the partner for its own.
fn may_change(principal: &Principal, plan: &PlanRecord) -> Result<(), ApiError> {
    match (principal, &plan.partner_id) {
        (Principal::Operator, _) => Ok(()),
        (Principal::Partner { partner_id, .. }, Some(owner)) if owner == partner_id => Ok(()),
        _ => Err(ApiError::Refused {
            code: "not_plan_owner",
            message: "only the plan's owner changes or deletes it".into(),
        }),
    }
}

/// Checked terms: valid, and within the partner's ceiling for a partner's plan.
async fn checked(
    state: &AppState,
    partner: Option<&str>,
    body: &PlanBody,
) -> Result<String, ApiError> {
    let name = super::tenants::checked_name(&body.name)?.to_string();
    if let Some(why) = body.terms.invalid() {
        return Err(ApiError::unprocessable("invalid_plan", why));
    }
    if let Some(partner) = partner {
        let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
        let ceiling = match tx.partner_ceiling(partner).await? {
            Some(id) => tx.plan(&id).await?,
            None => None,
        };
        tx.commit().await?;
        let Some(ceiling) = ceiling else {
            return Err(ApiError::Refused {
                code: "plans_not_allowed",
                message:
                    "the operator has not given this partner a ceiling plan to define plans within"
                        .into(),
            });
        };
        if let Some(why) = body.terms.beyond(&Terms::of(&ceiling)) {
            return Err(ApiError::Refused {
                code: "plan_beyond_ceiling",
                message: format!("this plan allows {why} (ceiling \"{}\")", ceiling.name),
            });
        }
    }
    Ok(name)
}

fn record(id: String, partner: Option<String>, name: String, t: &Terms) -> PlanRecord {
    let now = now_ms();
    PlanRecord {
        id,
        partner_id: partner,
        name,
        channels: t
            .channels
            .as_ref()
            .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into())),
        max_numbers: t.numbers,
        monthly_messages: t.monthly_messages,
        ai_policies: i64::from(t.ai_policies),
        created_at: now,
        updated_at: now,
    }
}

fn name_taken(e: StoreError, name: &str) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::Conflict {
            code: "plan_name_taken",
            message: format!("a plan named {name:?} exists already"),
        },
        other => other.into(),
    }
}

/// Define a plan: the operator's, or a partner's own within its ceiling.
#[utoipa::path(
    post,
    path = "/api/v1/plans",
    tag = "plans",
    request_body = PlanBodyDoc,
    responses(
        (status = 201, description = "Created", body = PlanView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<(StatusCode, Json<PlanView>), ApiError> {
    let partner = match &principal {
        Principal::Partner { partner_id, .. } => Some(partner_id.clone()),
        _ => None,
    };
    let name = checked(&state, partner.as_deref(), &body).await?;
    let plan = record(ids::new_id("pln"), partner, name.clone(), &body.terms);
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    tx.insert_plan(&plan)
        .await
        .map_err(|e| name_taken(e, &name))?;
    tx.commit().await?;
    tracing::info!(plan = %plan.id, by = %principal.name(), "plan defined");
    Ok((StatusCode::CREATED, Json(plan.into())))
}

/// The plans the caller sees: the operator's, and a partner's own (a tenant: its partner's).
#[utoipa::path(
    get,
    path = "/api/v1/plans",
    tag = "plans",
    responses(
        (status = 200, description = "OK", body = PlanList),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<PlanList>, ApiError> {
    let who = super::plugins::viewer_of(&state, &principal).await?;
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let rows = tx
        .plans(who.clone().flatten().as_deref(), who.is_none())
        .await?;
    tx.commit().await?;
    Ok(Json(PlanList {
        data: rows.into_iter().map(PlanView::from).collect(),
    }))
}

/// One plan.
#[utoipa::path(
    get,
    path = "/api/v1/plans/{plan}",
    tag = "plans",
    params(("plan" = String, Path, description = "Plan id (`pln_…`)")),
    responses(
        (status = 200, description = "OK", body = PlanView),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<PlanPath>,
) -> Result<Json<PlanView>, ApiError> {
    Ok(Json(visible(&state, &principal, &p.plan).await?.into()))
}

/// Change a plan's name and terms (its owner). Tenants on it get the new terms at once.
#[utoipa::path(
    put,
    path = "/api/v1/plans/{plan}",
    tag = "plans",
    params(("plan" = String, Path, description = "Plan id (`pln_…`)")),
    request_body = PlanBodyDoc,
    responses(
        (status = 200, description = "Changed", body = PlanView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<PlanPath>,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<Json<PlanView>, ApiError> {
    let old = visible(&state, &principal, &p.plan).await?;
    may_change(&principal, &old)?;
    let name = checked(&state, old.partner_id.as_deref(), &body).await?;
    let mut plan = record(
        old.id.clone(),
        old.partner_id.clone(),
        name.clone(),
        &body.terms,
    );
    plan.created_at = old.created_at;
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    tx.update_plan(&plan)
        .await
        .map_err(|e| name_taken(e, &name))?;
    let stored = tx.plan(&plan.id).await?.ok_or(ApiError::NotFound("plan"))?;
    tx.commit().await?;
    Ok(Json(stored.into()))
}

/// Delete a plan no tenant is on and no partner is bounded by (its owner).
#[utoipa::path(
    delete,
    path = "/api/v1/plans/{plan}",
    tag = "plans",
    params(("plan" = String, Path, description = "Plan id (`pln_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<PlanPath>,
) -> Result<StatusCode, ApiError> {
    let plan = visible(&state, &principal, &p.plan).await?;
    may_change(&principal, &plan)?;
    let mut tx = state.store.begin(Scope::Operator, Mode::Write).await?;
    let users = tx.plan_users(&plan.id).await?;
    if users > 0 {
        return Err(ApiError::Conflict {
            code: "plan_in_use",
            message: format!("{users} tenants or partners use this plan; move them first"),
        });
    }
    tx.delete_plan(&plan.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT …/plan` and `PUT …/plan-ceiling` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoosePlan {
    /// The plan (`pln_…`), or `null` for none.
    pub plan: Option<String>,
}

/// Path of a partner.
#[derive(Deserialize)]
pub struct PartnerPath {
    partner: String,
}

/// Give a partner a ceiling plan (one of the operator's) to define its own plans within, or
/// take it away (`null`).
#[utoipa::path(
    put,
    path = "/api/v1/partners/{partner}/plan-ceiling",
    tag = "plans",
    params(("partner" = String, Path, description = "Partner id (`par_…`)")),
    request_body = ChoosePlan,
    responses(
        (status = 204, description = "Set"),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_plan` (a ceiling is one of the operator's plans)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn put_ceiling(
    State(state): State<AppState>,
    Path(p): Path<PartnerPath>,
    ApiJson(body): ApiJson<ChoosePlan>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    if let Some(id) = &body.plan
        && tx.plan(id).await?.is_none_or(|p| p.partner_id.is_some())
    {
        return Err(ApiError::unprocessable(
            "unknown_plan",
            "a ceiling must be one of the operator's plans",
        ));
    }
    tx.set_partner_ceiling(&p.partner, body.plan.as_deref())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("partner"),
            other => other.into(),
        })?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A tenant's plan and what it uses of it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantPlan {
    /// The plan (`null`: none, unlimited).
    pub plan: Option<PlanView>,
    /// What the tenant uses: counts only.
    pub usage: Usage,
}

async fn tenant_plan(state: &AppState, tenant: &Tenant) -> Result<TenantPlan, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let plan = tx.tenant_plan().await?;
    let usage = crate::plans::usage(&mut tx).await?;
    tx.commit().await?;
    Ok(TenantPlan {
        plan: plan.map(PlanView::from),
        usage,
    })
}

/// A tenant's plan and its use: numbers connected, messages sent this month.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/plan",
    tag = "plans",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses((status = 200, description = "OK", body = TenantPlan), crate::http::openapi::TenantErrors)
)]
pub async fn show_tenant_plan(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<TenantPlan>, ApiError> {
    Ok(Json(tenant_plan(&state, &tenant).await?))
}

/// Put a tenant on a plan: the operator (any plan, or none), its partner (the operator's plans
/// or its own, or none), its owner (one of its partner's plans — the operator's when it has no
/// partner). Numbers already connected stay; the new terms hold from the next connect or send.
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/plan",
    tag = "plans",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = ChoosePlan,
    responses(
        (status = 200, description = "Changed", body = TenantPlan),
        crate::http::openapi::TenantErrors,
        crate::http::openapi::BadRequest,
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_plan` (no such plan among those the tenant may have)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn put_tenant_plan(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<ChoosePlan>,
) -> Result<Json<TenantPlan>, ApiError> {
    let partner = tenant.access.tenant.partner_id.clone();
    let plan = match &body.plan {
        None => None,
        Some(id) => {
            let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
            let found = tx.plan(id).await?;
            tx.commit().await?;
            Some(found.ok_or_else(|| ApiError::unprocessable("unknown_plan", "no such plan"))?)
        }
    };
    // A partner the operator bounded with a ceiling stays within it: its own plans (made
    // within it), or the operator's that fit in it, never none.
    let ceiling = match &tenant.access.actor {
        Actor::Partner { partner_id, .. } => {
            let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
            let c = match tx.partner_ceiling(partner_id).await? {
                Some(id) => tx.plan(&id).await?,
                None => None,
            };
            tx.commit().await?;
            c
        }
        _ => None,
    };
    let allowed = match (&tenant.access.actor, &plan) {
        (Actor::Operator, _) => true,
        (Actor::Partner { .. }, None) => ceiling.is_none(),
        (Actor::Partner { partner_id, .. }, Some(p)) => {
            p.partner_id.as_ref() == Some(partner_id)
                || (p.partner_id.is_none()
                    && ceiling
                        .as_ref()
                        .is_none_or(|c| Terms::of(p).beyond(&Terms::of(c)).is_none()))
        }
        (Actor::User { role, .. }, Some(p)) => {
            *role == Role::Owner && partner.is_some() && p.partner_id == partner
        }
        (Actor::User { .. }, None) => false,
    };
    if !allowed {
        return Err(ApiError::Refused {
            code: "plan_not_offered",
            message: match &tenant.access.actor {
                Actor::User { .. } => {
                    "an owner chooses among the plans the tenant's partner offers".into()
                }
                _ => "a partner puts its tenants on the operator's plans or its own".into(),
            },
        });
    }
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    tx.set_tenant_plan(plan.as_ref().map(|p| p.id.as_str()))
        .await?;
    tx.commit().await?;
    tracing::info!(tenant = %tenant.access.scope.id(), plan = ?body.plan, by = %tenant.access.actor.ledger_name(), "tenant plan set");
    Ok(Json(tenant_plan(&state, &tenant).await?))
}
