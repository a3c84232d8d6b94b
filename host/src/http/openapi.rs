//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of this API, generated from the
//! handlers' `#[utoipa::path]` annotations (no auth needed).

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every API error: `{"error": {"code", "message"}}` (see `ApiError::into_response`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    // No doc comment: with one, utoipa wraps the inlined object in a `oneOf`.
    #[schema(inline)]
    error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable code, e.g. `not_found`, `invalid_credentials`, `number_already_connected`.
    code: String,
    /// What happened, for humans.
    message: String,
    /// A Meta onboarding session that failed at or after registering the number and waits
    /// for a retry (`POST …/connect/meta/{session}/pick`).
    session: Option<String>,
    /// With `feature_not_in_plan`: the plan's `id`, `name` and `terms` (what it allows).
    plan: Option<serde_json::Value>,
}

/// One reusable error response per status, each an [`ErrorBody`].
macro_rules! error_responses {
    ($($name:ident = $status:literal, $desc:literal;)*) => {$(
        #[doc = $desc]
        #[derive(utoipa::IntoResponses)]
        #[response(status = $status, description = $desc)]
        #[allow(dead_code)]
        pub struct $name(ErrorBody);
    )*};
}

error_responses! {
    BadRequest = 400, "the body is not JSON or the query string is malformed";
    Unauthorized = 401, "missing or invalid (`unauthorized`), revoked (`key_revoked`) or expired (`key_expired`) API key";
    Forbidden = 403, "the key may not do this (`forbidden`), or its tenant is suspended (`tenant_suspended`)";
    NotFound = 404, "not found (also for another caller's objects)";
    Conflict = 409, "conflicts with the current state";
    TooLarge = 413, "the body is too large";
    Unprocessable = 422, "the body is well-formed but cannot be used";
    TooManyRequests = 429, "too many requests of this caller at once; see Retry-After";
    BadGateway = 502, "the provider or the connector plugin failed";
    Unavailable = 503, "the database is unavailable";
}

/// The errors of every `/tenants/{tenant}/…` route: 401, 403, 404 (also for another
/// caller's tenant) and 503.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum TenantErrors {
    /// 401.
    #[response(
        status = 401,
        description = "missing or invalid (`unauthorized`), revoked (`key_revoked`) or expired (`key_expired`) API key"
    )]
    Unauthorized(ErrorBody),
    /// 403.
    #[response(
        status = 403,
        description = "the key may not do this (`forbidden`), or its tenant is suspended (`tenant_suspended`)"
    )]
    Forbidden(ErrorBody),
    /// 404.
    #[response(
        status = 404,
        description = "not found (also for another caller's objects)"
    )]
    NotFound(ErrorBody),
    /// 503.
    #[response(status = 503, description = "the database is unavailable")]
    Unavailable(ErrorBody),
}

/// Adds the `bearer` security scheme (API keys and the operator token) and the `session`
/// cookie of people (with `X-CSRF-Token` on requests that change something).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // Each operation's security says what its access rule admits: nothing for a public
        // route, the session cookie for a person's own routes, else a bearer token or a
        // session.
        use utoipa::openapi::security::SecurityRequirement;
        let none: Vec<String> = Vec::new();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in [
                (axum::http::Method::GET, &mut item.get),
                (axum::http::Method::POST, &mut item.post),
                (axum::http::Method::PUT, &mut item.put),
                (axum::http::Method::PATCH, &mut item.patch),
                (axum::http::Method::DELETE, &mut item.delete),
            ] {
                let (Some(op), Some(rule)) = (op.as_mut(), super::access::rule_of(&method, path))
                else {
                    continue;
                };
                op.security = Some(match rule.who {
                    super::access::Who::Public => vec![SecurityRequirement::default()],
                    super::access::Who::Person => {
                        vec![SecurityRequirement::new("session", none.clone())]
                    }
                    super::access::Who::Callers { .. } => vec![
                        SecurityRequirement::new("bearer", none.clone()),
                        SecurityRequirement::new("session", none.clone()),
                    ],
                });
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::new(super::access::SESSION_COOKIE),
            )),
        );
    }
}

/// The document: every route of [`super::router`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard API",
        description = "Multi-tenant host for sandboxed messaging-channel connector plugins."
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::health::metrics,
        document,
        super::partners::create,
        super::partners::list,
        super::people::operator_sign_in,
        super::people::show_operator_session,
        super::people::operator_sign_out,
        super::partners::put_namespace,
        super::partners::report,
        super::endpoints::create,
        super::plugins::upload,
        super::plugins::list,
        super::plugins::show,
        super::plugins::show_version,
        super::plugins::delete,
        super::plugins::promote,
        super::plugins::roll_back,
        super::plugins::pin_endpoint,
        super::endpoints::self_test,
        super::plugins::add_key,
        super::plugins::list_keys,
        super::plugins::revoke_key,
        super::plugins::grant,
        super::plugins::put_failure_policy,
        super::jobs::dead,
        super::jobs::replay,
        super::tenants::create,
        super::tenants::list,
        super::tenants::show,
        super::tenants::suspend,
        super::tenants::reinstate,
        super::keys::list_tenant_keys,
        super::keys::create_tenant_key,
        super::keys::revoke_tenant_key,
        super::keys::list_partner_keys,
        super::keys::create_partner_key,
        super::keys::revoke_partner_key,
        super::keys::rotate_partner_key,
        super::tenants::policy,
        super::tenants::put_policy,
        super::connections::create,
        super::connections::list,
        super::channels::list,
        super::connections::show,
        super::connections::edit,
        super::connections::disconnect,
        super::onboarding::start,
        super::senders::list,
        super::onboarding::browser_start,
        super::onboarding::callback,
        super::onboarding::confirm,
        super::onboarding::show,
        super::onboarding::pick,
        super::connections::verify,
        super::connections::self_test,
        super::connections::test_send,
        super::lifecycle::templates,
        super::lifecycle::sync_templates,
        super::lifecycle::media,
        super::inbox::conversations,
        super::inbox::messages,
        super::inbox::change,
        super::inbox::delete,
        super::desk::show,
        super::desk::reply,
        super::desk::send_media,
        super::desk::insights,
        super::sharing::show,
        super::sharing::change,
        super::sharing::requests,
        super::sharing::decide,
        super::desk::settings,
        super::live::events,
        super::live::notifications,
        super::live::mark_read,
        super::live::mark_all_read,
        super::consent::list,
        super::consent::change,
        super::consent::export,
        super::account::export,
        super::account::delete,
        super::account::erase_contact,
        super::plans::create,
        super::plans::list,
        super::plans::show,
        super::plans::update,
        super::plans::delete,
        super::plans::put_ceiling,
        super::plans::show_tenant_plan,
        super::plans::put_tenant_plan,
        super::people::sign_in,
        super::people::show_session,
        super::people::sign_out,
        super::people::request_reset,
        super::people::confirm_reset,
        super::people::accept,
        super::people::tenant_people,
        super::people::change_tenant_member,
        super::people::remove_tenant_member,
        super::people::tenant_invitations,
        super::people::invite_to_tenant,
        super::people::withdraw_tenant_invitation,
        super::people::partner_people,
        super::people::change_partner_member,
        super::people::remove_partner_member,
        super::people::partner_invitations,
        super::people::invite_to_partner,
        super::people::withdraw_partner_invitation,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The OpenAPI document as JSON.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
    security(())
)]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
