//! Who may call what: one rule per API route, enforced here before any handler or body is
//! read, and rendered into docs/security.md (a unit test keeps the two equal).
//!
//! A request is authenticated by a bearer token (operator token or API key), by the operator's
//! console session cookie, or by a person's session cookie; a cookie request that may change
//! something must carry the session's CSRF token in `X-CSRF-Token`. A person acts through one membership: the one of the `{tenant}` or
//! `{partner}` in the path (a partner member reaches the partner's tenants as the partner), else
//! the one `Switchyard-Context` names, else their only one.

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::error::ApiError;
pub use crate::tenancy::auth::CONTEXT_HEADER;
use crate::tenancy::auth::{self, Context};
use crate::tenancy::{PartnerRole, Principal, Role};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "switchyard_session";
/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The operator's console session cookie (the operator signs in with the operator token).
pub const OPERATOR_COOKIE: &str = "switchyard_operator";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Anyone, without credentials (it proves what it needs itself).
    Public,
    /// A signed-in person (session cookie), whatever their memberships.
    Person,
    /// These callers: the operator, partners from a least role, tenant members from a least
    /// role. On `{tenant}` routes a partner reaches only its own tenants.
    Callers {
        /// The operator.
        operator: bool,
        /// Partners (keys act as owners), from this role.
        partner: Option<PartnerRole>,
        /// Tenant members (keys and people), from this role.
        tenant: Option<Role>,
    },
}

/// One route and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// HTTP method.
    pub method: &'static str,
    /// Path as the router names it.
    pub path: &'static str,
    /// Who may call it.
    pub who: Who,
}

const fn rule(method: &'static str, path: &'static str, who: Who) -> Rule {
    Rule { method, path, who }
}

const O: bool = true;
const NO: bool = false;
const fn callers(operator: bool, partner: Option<PartnerRole>, tenant: Option<Role>) -> Who {
    Who::Callers {
        operator,
        partner,
        tenant,
    }
}
const PO: Option<PartnerRole> = Some(PartnerRole::Owner);
const PM: Option<PartnerRole> = Some(PartnerRole::Member);
const P_: Option<PartnerRole> = None;
const TOWNER: Option<Role> = Some(Role::Owner);
const TADMIN: Option<Role> = Some(Role::Admin);
const TAGENT: Option<Role> = Some(Role::Agent);
const TVIEW: Option<Role> = Some(Role::Viewer);
const T_: Option<Role> = None;

/// Every API route and who may call it.
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    rule("GET", "/api/v1/openapi.json", Who::Public),
    // People and sessions.
    rule("POST", "/api/v1/session", Who::Public),
    rule("GET", "/api/v1/session", Who::Person),
    rule("DELETE", "/api/v1/session", Who::Person),
    rule("POST", "/api/v1/password-resets", Who::Public),
    rule("POST", "/api/v1/password-resets/confirm", Who::Public),
    rule("POST", "/api/v1/invitations/accept", Who::Public),
    // The operator's.
    rule("POST", "/api/v1/operator/session", Who::Public),
    rule("GET", "/api/v1/operator/session", callers(O, P_, T_)),
    rule("DELETE", "/api/v1/operator/session", callers(O, P_, T_)),
    rule("POST", "/api/v1/partners", callers(O, P_, T_)),
    rule("GET", "/api/v1/partners", callers(O, P_, T_)),
    rule("PUT", "/api/v1/partners/{partner}/namespace", callers(O, P_, T_)),
    rule("POST", "/api/v1/publisher-keys", callers(O, P_, T_)),
    rule("GET", "/api/v1/publisher-keys", callers(O, P_, T_)),
    rule("DELETE", "/api/v1/publisher-keys/{key}", callers(O, P_, T_)),
    rule("PUT", "/api/v1/plugins/{name}/{version}/grants", callers(O, P_, T_)),
    rule("GET", "/api/v1/jobs/dead", callers(O, P_, T_)),
    rule("POST", "/api/v1/jobs/{job}/replay", callers(O, P_, T_)),
    // Partners.
    rule("GET", "/api/v1/partners/{partner}/report", callers(O, PM, T_)),
    rule("GET", "/api/v1/partners/{partner}/keys", callers(O, PO, T_)),
    rule("POST", "/api/v1/partners/{partner}/keys", callers(O, PO, T_)),
    rule("DELETE", "/api/v1/partners/{partner}/keys/{key}", callers(O, PO, T_)),
    rule("POST", "/api/v1/partners/{partner}/keys/{key}/rotate", callers(O, PO, T_)),
    rule("GET", "/api/v1/partners/{partner}/people", callers(O, PO, T_)),
    rule("PATCH", "/api/v1/partners/{partner}/people/{user}", callers(O, PO, T_)),
    rule("DELETE", "/api/v1/partners/{partner}/people/{user}", callers(O, PO, T_)),
    rule("GET", "/api/v1/partners/{partner}/invitations", callers(O, PO, T_)),
    rule("POST", "/api/v1/partners/{partner}/invitations", callers(O, PO, T_)),
    rule("DELETE", "/api/v1/partners/{partner}/invitations/{invitation}", callers(O, PO, T_)),
    rule("POST", "/api/v1/endpoints", callers(O, PO, T_)),
    rule("PUT", "/api/v1/endpoints/{endpoint}/plugin", callers(O, PO, T_)),
    rule("POST", "/api/v1/endpoints/{endpoint}/self-test", callers(O, PO, T_)),
    rule("POST", "/api/v1/plugins", callers(O, PO, T_)),
    rule("GET", "/api/v1/plugins", callers(O, PM, TVIEW)),
    rule("GET", "/api/v1/plugins/{name}", callers(O, PM, TVIEW)),
    rule("GET", "/api/v1/plugins/{name}/{version}", callers(O, PM, TVIEW)),
    rule("DELETE", "/api/v1/plugins/{name}/{version}", callers(O, PO, T_)),
    rule("POST", "/api/v1/plugins/{name}/promote", callers(O, PO, T_)),
    rule("POST", "/api/v1/plugins/{name}/rollback", callers(O, PO, T_)),
    rule("PUT", "/api/v1/plugins/{name}/failure-policy", callers(O, PO, T_)),
    // Plans.
    rule("POST", "/api/v1/plans", callers(O, PO, T_)),
    rule("GET", "/api/v1/plans", callers(O, PM, TVIEW)),
    rule("GET", "/api/v1/plans/{plan}", callers(O, PM, TVIEW)),
    rule("PUT", "/api/v1/plans/{plan}", callers(O, PO, T_)),
    rule("DELETE", "/api/v1/plans/{plan}", callers(O, PO, T_)),
    rule("PUT", "/api/v1/partners/{partner}/plan-ceiling", callers(O, P_, T_)),
    rule("GET", "/api/v1/tenants/{tenant}/plan", callers(O, PM, TVIEW)),
    rule("PUT", "/api/v1/tenants/{tenant}/plan", callers(O, PM, TOWNER)),
    rule("POST", "/api/v1/tenants", callers(O, PM, T_)),
    rule("GET", "/api/v1/tenants", callers(O, PM, TVIEW)),
    // A tenant: its status, keys and people.
    rule("GET", "/api/v1/tenants/{tenant}", callers(O, PM, TVIEW)),
    rule("PATCH", "/api/v1/tenants/{tenant}", callers(NO, P_, TADMIN)),
    rule("DELETE", "/api/v1/tenants/{tenant}", callers(NO, P_, TOWNER)),
    rule("GET", "/api/v1/tenants/{tenant}/export", callers(NO, P_, TOWNER)),
    rule("DELETE", "/api/v1/tenants/{tenant}/contacts/{contact}", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/suspend", callers(O, PM, T_)),
    rule("POST", "/api/v1/tenants/{tenant}/reinstate", callers(O, PM, T_)),
    rule("GET", "/api/v1/tenants/{tenant}/keys", callers(O, PM, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/keys", callers(O, PM, TADMIN)),
    rule("DELETE", "/api/v1/tenants/{tenant}/keys/{key}", callers(O, PM, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/people", callers(O, PM, TADMIN)),
    rule("PATCH", "/api/v1/tenants/{tenant}/people/{user}", callers(O, PM, TADMIN)),
    rule("DELETE", "/api/v1/tenants/{tenant}/people/{user}", callers(O, PM, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/invitations", callers(O, PM, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/invitations", callers(O, PM, TADMIN)),
    rule("DELETE", "/api/v1/tenants/{tenant}/invitations/{invitation}", callers(O, PM, TADMIN)),
    // Its numbers and policy.
    rule("GET", "/api/v1/tenants/{tenant}/policy", callers(NO, P_, TVIEW)),
    rule("PUT", "/api/v1/tenants/{tenant}/policy", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/connections", callers(NO, P_, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/connections", callers(O, PM, TVIEW)),
    rule("GET", "/api/v1/tenants/{tenant}/connections/{connection}", callers(O, PM, TVIEW)),
    rule("PATCH", "/api/v1/tenants/{tenant}/connections/{connection}", callers(NO, P_, TADMIN)),
    rule("DELETE", "/api/v1/tenants/{tenant}/connections/{connection}", callers(NO, P_, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/channels", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/connect/meta", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/connect/twilio/senders", callers(NO, P_, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/connect/meta/{session}", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/connect/meta/{session}/pick", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/connections/{connection}/verify", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/connections/{connection}/self-test", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/connections/{connection}/test", callers(NO, P_, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/connections/{connection}/templates", callers(O, PM, TVIEW)),
    rule("POST", "/api/v1/tenants/{tenant}/connections/{connection}/templates/sync", callers(NO, P_, TADMIN)),
    // Its conversations and consent.
    rule("GET", "/api/v1/tenants/{tenant}/media/{media}", callers(NO, P_, TVIEW)),
    rule("GET", "/api/v1/tenants/{tenant}/conversations", callers(NO, P_, TVIEW)),
    rule("GET", "/api/v1/tenants/{tenant}/conversations/{conversation}", callers(NO, P_, TVIEW)),
    rule("GET", "/api/v1/tenants/{tenant}/events", callers(NO, P_, TVIEW)),
    rule("GET", "/api/v1/tenants/{tenant}/notifications", callers(NO, P_, TVIEW)),
    rule("POST", "/api/v1/tenants/{tenant}/notifications/read", callers(NO, P_, TVIEW)),
    rule("POST", "/api/v1/tenants/{tenant}/notifications/{notification}/read", callers(NO, P_, TVIEW)),
    rule("PATCH", "/api/v1/tenants/{tenant}/conversations/{conversation}", callers(NO, P_, TAGENT)),
    rule("DELETE", "/api/v1/tenants/{tenant}/conversations/{conversation}", callers(NO, P_, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/conversations/{conversation}/messages", callers(NO, P_, TVIEW)),
    rule("POST", "/api/v1/tenants/{tenant}/conversations/{conversation}/messages", callers(NO, P_, TAGENT)),
    rule("POST", "/api/v1/tenants/{tenant}/conversations/{conversation}/media", callers(NO, P_, TAGENT)),
    rule("POST", "/api/v1/tenants/{tenant}/conversations/{conversation}/insights", callers(NO, P_, TAGENT)),
    rule("GET", "/api/v1/tenants/{tenant}/connections/{connection}/access", callers(NO, P_, TADMIN)),
    rule("PUT", "/api/v1/tenants/{tenant}/connections/{connection}/access", callers(NO, P_, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/access-requests", callers(NO, P_, TADMIN)),
    rule("POST", "/api/v1/tenants/{tenant}/access-requests/{request}", callers(NO, P_, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/consent", callers(NO, P_, TVIEW)),
    rule("POST", "/api/v1/tenants/{tenant}/consent", callers(NO, P_, TADMIN)),
    rule("GET", "/api/v1/tenants/{tenant}/consent/export", callers(NO, P_, TADMIN)),
];

/// The rule of `(method, path)`; HEAD follows GET.
pub fn rule_of(method: &Method, path: &str) -> Option<&'static Rule> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    RULES.iter().find(|r| r.method == method && r.path == path)
}

/// Whether `principal` is one of `who`'s callers (before any tenant or partner is looked at).
pub fn admits(who: Who, principal: &Principal) -> bool {
    match (who, principal) {
        (Who::Public, _) => true,
        (Who::Person, _) => false,
        (Who::Callers { operator, .. }, Principal::Operator) => operator,
        (Who::Callers { partner, .. }, Principal::Partner { role, .. }) => {
            partner.is_some_and(|least| role.at_least(least))
        }
        (Who::Callers { tenant, .. }, Principal::Tenant { role, .. }) => {
            tenant.is_some_and(|least| role.at_least(least))
        }
    }
}

/// A signed-in person, for the routes about their own session.
#[derive(Clone)]
pub struct SessionUser {
    /// `usr_…`.
    pub user_id: String,
    /// `ses_…`.
    pub session_id: String,
    /// The cookie's token (to derive its CSRF token).
    pub token: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for SessionUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionUser")
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// The session cookie's value, when the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The operator's console session cookie's value, when the request has one.
pub fn operator_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, OPERATOR_COOKIE)
}

fn cookie<'a>(headers: &'a HeaderMap, wanted: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// The operator's console session of a request made with its cookie.
#[derive(Clone)]
pub struct OperatorSession {
    /// `ops_…`.
    pub session_id: String,
    /// The cookie's token (to derive its CSRF token).
    pub token: zeroize::Zeroizing<String>,
}

/// A cookie request that may change something must carry the session's CSRF token.
fn check_csrf(parts: &axum::http::request::Parts, token: &str) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let expected = crate::people::csrf_token(token);
    let given = parts
        .headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if expected.is_empty() || !bool::from(given.ct_eq(expected.as_bytes())) {
        return Err(ApiError::Refused {
            code: "csrf_failed",
            message: format!(
                "a signed-in request that changes something needs the session's CSRF token in {CSRF_HEADER}"
            ),
        });
    }
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The middleware: find the route's rule, authenticate, check the caller against it, resolve
/// the tenant in the path, and hand the handler what it found (request extensions).
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match resolve(&state, &mut parts).await {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => e.into_response(),
    }
}

async fn resolve(state: &AppState, parts: &mut axum::http::request::Parts) -> Result<(), ApiError> {
    let Some(matched) = parts.extensions.get::<MatchedPath>() else {
        // No route matched: the router's fallbacks answer.
        return Ok(());
    };
    let path = matched.as_str().to_string();
    let Some(rule) = rule_of(&parts.method, &path) else {
        tracing::error!(method = %parts.method, path, "route without an access rule");
        return Err(ApiError::Forbidden);
    };
    if rule.who == Who::Public {
        return Ok(());
    }
    let params: Vec<(String, String)> = {
        use axum::extract::FromRequestParts as _;
        RawPathParams::from_request_parts(parts, state)
            .await
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .map_err(|_| ApiError::BadRequest("the path is not valid UTF-8".into()))?
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let tenant = param("tenant");
    let partner = param("partner");
    if tenant.is_some_and(|t| t.len() > 64) {
        return Err(ApiError::NotFound("tenant"));
    }
    if partner.is_some_and(|p| p.len() > 64) {
        return Err(ApiError::NotFound("partner"));
    }

    let principal = if let Some(token) = bearer(&parts.headers) {
        if rule.who == Who::Person {
            return Err(ApiError::Refused {
                code: "person_only",
                message: "this route is about a person's session; sign in instead of using a key"
                    .into(),
            });
        }
        auth::authenticate(&state.store, &state.operator, token).await?
    } else if let Some((token, session_id)) = operator_session(state, parts, rule).await? {
        check_csrf(parts, &token)?;
        parts
            .extensions
            .insert(OperatorSession { session_id, token });
        Principal::Operator
    } else if let Some(token) = session_cookie(&parts.headers) {
        let (user_id, session_id) = auth::authenticate_session(&state.store, token).await?;
        check_csrf(parts, token)?;
        if rule.who == Who::Person {
            parts.extensions.insert(SessionUser {
                user_id,
                session_id,
                token: zeroize::Zeroizing::new(token.to_string()),
            });
            return Ok(());
        }
        let context = match (tenant, partner) {
            (Some(t), _) => Context::Tenant(t),
            (None, Some(p)) => Context::Partner(p),
            (None, None) => Context::Named(
                parts
                    .headers
                    .get(CONTEXT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| v.len() <= 64),
            ),
        };
        auth::as_member(&state.store, &user_id, &session_id, context).await?
    } else {
        return Err(ApiError::Unauthorized);
    };

    // Someone else's tenant or partner is 404 (and a suspended tenant's own caller hears so)
    // before the role is looked at, whatever the role.
    if let Some(partner) = partner
        && let Principal::Partner { partner_id, .. } = &principal
        && partner_id != partner
    {
        return Err(ApiError::NotFound("partner"));
    }
    let access = match tenant {
        Some(tenant) => Some(auth::access(&state.store, &principal, tenant).await?),
        None => None,
    };
    if !admits(rule.who, &principal) {
        return Err(ApiError::Forbidden);
    }
    if let Some(access) = access {
        parts.extensions.insert(access);
    }
    parts.extensions.insert(principal);
    Ok(())
}

/// The operator's console session of a request, when its cookie holds a live one (never on a
/// person's own routes). A cookie that does not hold one, beside a person's session cookie, is
/// passed over: a stale or planted operator cookie must not lock a person out.
async fn operator_session(
    state: &AppState,
    parts: &axum::http::request::Parts,
    rule: &Rule,
) -> Result<Option<(zeroize::Zeroizing<String>, String)>, ApiError> {
    let Some(token) = operator_cookie(&parts.headers).filter(|_| rule.who != Who::Person) else {
        return Ok(None);
    };
    match auth::authenticate_operator_session(&state.store, &state.operator, token).await {
        Ok(id) => Ok(Some((zeroize::Zeroizing::new(token.to_string()), id))),
        Err(_) if session_cookie(&parts.headers).is_some() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The access table as docs/security.md shows it.
pub fn markdown_table() -> String {
    let mark = |yes: bool| if yes { "✓" } else { "·" };
    let mut out = String::from(
        "| Method | Path | Operator | Partner owner | Partner member | Owner | Admin | Agent | Viewer |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in RULES {
        let cells: Vec<String> = match r.who {
            Who::Public => vec!["anyone (no credentials)".into()],
            Who::Person => vec!["a signed-in person (session)".into()],
            Who::Callers {
                operator,
                partner,
                tenant,
            } => {
                let mut cells = vec![mark(operator).to_string()];
                for p in PartnerRole::ALL {
                    cells.push(mark(partner.is_some_and(|least| p.at_least(least))).into());
                }
                for t in Role::ALL {
                    cells.push(mark(tenant.is_some_and(|least| t.at_least(least))).into());
                }
                cells
            }
        };
        let cells = if cells.len() == 1 {
            format!("{} | | | | | | |", cells[0])
        } else {
            cells.join(" | ")
        };
        out.push_str(&format!("| {} | `{}` | {cells} |\n", r.method, r.path));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_unique() {
        for (i, a) in RULES.iter().enumerate() {
            for b in &RULES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    /// docs/security.md carries the table exactly as the code enforces it.
    #[test]
    fn the_docs_show_the_enforced_table() {
        let docs = include_str!("../../../docs/security.md");
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/security.md must contain this table (between the access markers):\n\n{table}"
        );
    }

    #[test]
    fn roles_admit_from_their_least() {
        let who = callers(NO, PM, TADMIN);
        let tenant = |role| Principal::Tenant {
            tenant_id: "ten_1".into(),
            by: crate::tenancy::Credential::Key("key_1".into()),
            role,
        };
        assert!(admits(who, &tenant(Role::Owner)));
        assert!(admits(who, &tenant(Role::Admin)));
        assert!(!admits(who, &tenant(Role::Agent)));
        assert!(!admits(who, &Principal::Operator));
        assert!(!admits(Who::Person, &Principal::Operator));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; switchyard_session=ses_1.abc; b=2"
                .parse()
                .expect("header"),
        );
        assert_eq!(session_cookie(&h), Some("ses_1.abc"));
        h.insert(
            axum::http::header::COOKIE,
            "switchyard_session=".parse().expect("header"),
        );
        assert_eq!(session_cookie(&h), None);
    }
}
