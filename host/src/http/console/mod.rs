//! The web console (DECISIONS C2): server-rendered pages for people, served at `/console`
//! beside the JSON API. A page reads through the API itself, in process and with the visitor's
//! own session cookie, so it sees exactly what the API lets that person see; what a page
//! changes, its forms send to the API from the browser (`assets/console.js`), with the
//! session's CSRF token in `X-CSRF-Token`. The pages hold no rules of their own.

mod assets;
mod layout;
mod pages;
mod text;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::Value;
use tower::ServiceExt as _;

use super::AppState;
use super::access::{CONTEXT_HEADER, OPERATOR_COOKIE, SESSION_COOKIE};

pub use text::Text;

/// The pages' policy: nothing but this origin's own files; no inline script or style.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// What console pages reach: the host's state and the API router they read through.
#[derive(Clone)]
pub struct Console {
    /// The host's state.
    pub state: AppState,
    /// The API (`/api/v1/…`), called in process.
    api: Router,
}

/// The console's routes; `api` is the router that serves `/api/v1`.
pub fn router(state: AppState, api: Router) -> Router {
    let console = Console { state, api };
    Router::new()
        .route("/console/assets/{file}", get(assets::serve))
        .merge(pages::routes())
        .layer(axum::middleware::map_response(secure))
        .with_state(console)
}

/// Headers every console answer carries (a page may set a wider CSP itself).
async fn secure(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    // Another site that opens the console keeps no handle on it (the sign-in dialog's return
    // page sets its own: it must reach its opener).
    h.entry(header::HeaderName::from_static(
        "cross-origin-opener-policy",
    ))
    .or_insert(HeaderValue::from_static("same-origin-allow-popups"));
    res
}

/// A signed-in visit: the person's session as the API shows it, and a way to read the API as
/// them. Without a valid session the visitor is sent to the sign-in page (and back after).
pub struct Visit {
    api: Router,
    cookie: HeaderValue,
    connect: Option<ConnectInfo<SocketAddr>>,
    user_agent: Option<HeaderValue>,
    /// `GET /api/v1/session` (`user`, `memberships`, `csrf_token`), or for the operator
    /// `GET /api/v1/operator/session` (`csrf_token`).
    pub session: Value,
    /// The path (and query) visited.
    pub path: String,
    /// The operator's console session (else a person's).
    pub operator: bool,
}

/// A visit of the operator, signed in with the operator token.
pub struct OperatorVisit(pub Visit);

/// Why a page could not be shown.
pub enum Failure {
    /// No session (or it ended): sign in, then come back to `next`.
    SignIn {
        /// Where to return.
        next: String,
        /// The operator's sign-in (else a person's).
        operator: bool,
    },
    /// The API refused or failed: its status, code and words.
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The API's error code.
        code: String,
        /// The API's message.
        message: String,
    },
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::SignIn { next, operator } => {
                Redirect::to(&pages::sign_in_url(&next, operator)).into_response()
            }
            Failure::Api {
                status,
                code,
                message,
            } => (
                status,
                layout::bare(
                    text::EN.error_title,
                    layout::problem(status, &code, &message),
                ),
            )
                .into_response(),
        }
    }
}

impl FromRequestParts<Console> for Visit {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Failure> {
        Visit::start(parts, console, false).await
    }
}

impl FromRequestParts<Console> for OperatorVisit {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Failure> {
        Visit::start(parts, console, true).await.map(OperatorVisit)
    }
}

impl Visit {
    async fn start(parts: &Parts, console: &Console, operator: bool) -> Result<Visit, Failure> {
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let path = path
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/console".into());
        let cookie = session_cookie(&parts.headers, operator).ok_or_else(|| Failure::SignIn {
            next: path.clone(),
            operator,
        })?;
        let mut visit = Visit {
            api: console.api.clone(),
            cookie,
            connect: parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
            user_agent: parts.headers.get(header::USER_AGENT).cloned(),
            session: Value::Null,
            path,
            operator,
        };
        visit.session = visit
            .get(if operator {
                "/api/v1/operator/session"
            } else {
                "/api/v1/session"
            })
            .await?;
        Ok(visit)
    }
}

/// The request's session cookie (the operator's or a person's) as a `Cookie` header holding
/// only it.
fn session_cookie(headers: &HeaderMap, operator: bool) -> Option<HeaderValue> {
    let (name, value) = if operator {
        (OPERATOR_COOKIE, super::access::operator_cookie(headers)?)
    } else {
        (SESSION_COOKIE, super::access::session_cookie(headers)?)
    };
    HeaderValue::from_str(&format!("{name}={value}")).ok()
}

impl Visit {
    /// `GET path` on the API as this person.
    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.get_in(path, None).await
    }

    /// `GET path` on the API as this person acting in `context` (a tenant or partner id).
    pub async fn get_in(&self, path: &str, context: Option<&str>) -> Result<Value, Failure> {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::COOKIE, self.cookie.clone())
            .header(header::ACCEPT, "application/json");
        if let Some(ua) = &self.user_agent {
            req = req.header(header::USER_AGENT, ua.clone());
        }
        if let Some(context) = context.and_then(|c| HeaderValue::from_str(c).ok()) {
            req = req.header(CONTEXT_HEADER, context);
        }
        let mut req = req.body(Body::empty()).map_err(|e| internal(&e))?;
        if let Some(c) = &self.connect {
            req.extensions_mut().insert(*c);
        }
        let res = self
            .api
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| internal(&e))?;
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 32 << 20)
            .await
            .map_err(|e| internal(&e))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(Failure::SignIn {
                next: self.path.clone(),
                operator: self.operator,
            });
        }
        Err(Failure::Api {
            status,
            code: body["error"]["code"]
                .as_str()
                .unwrap_or("error")
                .to_string(),
            message: body["error"]["message"]
                .as_str()
                .unwrap_or("the request failed")
                .to_string(),
        })
    }

    /// The session's CSRF token, for the page's forms.
    pub fn csrf(&self) -> &str {
        self.session["csrf_token"].as_str().unwrap_or_default()
    }

    /// The person's membership of `kind` (`tenant`, `partner`) `id`, if they have it.
    pub fn membership(&self, kind: &str, id: &str) -> Option<&Value> {
        self.session["memberships"]
            .as_array()?
            .iter()
            .find(|m| m["kind"] == kind && m["id"] == id)
    }
}

fn internal(e: &dyn std::fmt::Display) -> Failure {
    tracing::error!(error = %e, "console: in-process API call failed");
    Failure::Api {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal".into(),
        message: "something went wrong on our side".into(),
    }
}

/// A field of a JSON value as text (`""` when absent).
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A field of a JSON value as a list (empty when absent).
pub fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}
