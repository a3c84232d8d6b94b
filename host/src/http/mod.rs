//! The HTTP layer: the router and the state handlers share. One file per resource; auth and
//! tenant scope come from extractors ([`auth`]), so a handler that needs a tenant cannot be
//! written without one.

pub mod access;
mod account;
mod auth;
mod channels;
mod connections;
mod consent;
pub mod console;
mod desk;
mod endpoints;
mod health;
mod inbox;
mod jobs;
mod json;
mod keys;
mod lifecycle;
mod live;
mod onboarding;
mod openapi;
mod partners;
mod people;
mod plans;
mod plugins;
mod senders;
pub mod server;
mod sharing;

pub use live::spawn_relay;
mod tenants;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::catalog::Catalog;
use crate::store::Store;
use crate::tenancy::auth::OperatorToken;
use crate::vault::Vault;

/// Largest management-API request body (settings and secrets are small).
pub const API_BODY_LIMIT: usize = 1 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The loaded plugins.
    pub plugins: Arc<Catalog>,
    /// The vault.
    pub vault: Vault,
    /// The operator token's hash.
    pub operator: OperatorToken,
    /// Public base URL (no trailing slash).
    pub public_url: String,
    /// Provider base URLs and the operator's connector settings.
    pub providers: Arc<crate::connector::Providers>,
    /// The Graph API as Meta onboarding calls it (host code, A2).
    pub meta: crate::onboarding::meta::Graph,
    /// Twilio's Senders API, for the connect form's sender list (host code).
    pub twilio: crate::onboarding::twilio::Senders,
    /// Largest webhook body accepted, in bytes.
    pub ingress_max_body: usize,
    /// Wakes the job workers when ingress queues a job.
    pub jobs: Arc<tokio::sync::Notify>,
    /// Where ingress hands accepted requests for their (group) commit.
    pub receipts: tokio::sync::mpsc::Sender<crate::ingress::Pending>,
    /// Endpoints and their opened secrets, briefly kept for ingress.
    pub endpoints: crate::ingress::EndpointCache,
    /// Ingress rate limits, refusal sampling and counters.
    pub ingress: Arc<crate::ingress::guard::Guard>,
    /// API-triggered plugin calls in progress, per tenant (capped).
    pub plugin_calls: PluginCalls,
    /// The host's mail.
    pub mailer: Arc<crate::mail::Mailer>,
    /// Sign-ins, resets and invitation acceptances per client address.
    pub sign_ins: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// Session cookies carry `Secure` (all but plain http on loopback).
    pub secure_cookies: bool,
    /// Event streams open now, per tenant (capped).
    pub streams: PluginCalls,
    /// Largest media file kept, in bytes (people's uploads too).
    pub media_max_bytes: usize,
    /// The metrics scraper's token's hash, when one is configured.
    pub metrics_token: Option<OperatorToken>,
    /// How many job workers this host runs (`/readyz` expects them all).
    pub workers: usize,
    /// This host's job workers and receipt writer, as they run, die and stop.
    pub tasks: &'static crate::supervise::Tasks,
}

/// API requests running a plugin call (or holding an event stream open), counted per tenant:
/// one tenant gets at most `cap` at once, so its calls (each may wait on the provider for the
/// whole wall-clock limit) cannot take the plugin pool, nor its streams the connections, from
/// other tenants and from ingress.
///
/// Hand-rolled on a mutex-guarded map: `governor` limits rates, not concurrency, and a
/// semaphore per tenant would need the same map (and its clean-up) around it.
#[derive(Clone)]
pub struct PluginCalls {
    cap: u32,
    /// The refusal's code and what is counted, in words.
    refusal: (&'static str, &'static str),
    running: Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
}

/// A tenant's place among its running API plugin calls; released when dropped.
pub struct PluginCallPermit {
    tenant: String,
    running: Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
}

impl PluginCalls {
    /// At most `cap` calls per tenant at once.
    pub fn new(cap: u32) -> PluginCalls {
        PluginCalls {
            cap: cap.max(1),
            refusal: ("too_many_plugin_calls", "provider calls"),
            running: Arc::default(),
        }
    }

    /// At most `cap` event streams per tenant at once.
    pub fn streams(cap: u32) -> PluginCalls {
        PluginCalls {
            refusal: ("too_many_streams", "event streams"),
            ..PluginCalls::new(cap)
        }
    }

    /// A place for one more call of `tenant`, or 429 `too_many_plugin_calls`.
    pub fn acquire(&self, tenant: &str) -> Result<PluginCallPermit, crate::error::ApiError> {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = running.entry(tenant.to_string()).or_insert(0);
        if *n >= self.cap {
            return Err(crate::error::ApiError::TooManyRequests {
                code: self.refusal.0,
                message: format!(
                    "this tenant already has {} {} open; try again shortly",
                    self.cap, self.refusal.1
                ),
                retry_after: 1,
            });
        }
        *n += 1;
        Ok(PluginCallPermit {
            tenant: tenant.to_string(),
            running: self.running.clone(),
        })
    }
}

impl Drop for PluginCallPermit {
    fn drop(&mut self) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.tenant);
            }
        }
    }
}

impl AppState {
    /// The public webhook URL of an endpoint.
    pub fn webhook_url(&self, endpoint_id: &str) -> String {
        crate::connector::webhook_url(&self.public_url, endpoint_id)
    }

    /// The browser URL of a redirect flow: this host's page that sets the flow's cookie and
    /// forwards to Facebook's dialog.
    pub fn meta_start_url(&self, ticket: &str) -> String {
        let ticket: String = url::form_urlencoded::byte_serialize(ticket.as_bytes()).collect();
        format!("{}/connect/meta/start?ticket={ticket}", self.public_url)
    }

    /// Where Facebook's dialog sends the browser back (the redirect flow).
    pub fn meta_callback_url(&self) -> String {
        format!("{}/connect/meta/callback", self.public_url)
    }
}

/// The full router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/partners", post(partners::create).get(partners::list))
        .route(
            "/operator/session",
            post(people::operator_sign_in)
                .get(people::show_operator_session)
                .delete(people::operator_sign_out),
        )
        .route("/partners/{partner}/report", get(partners::report))
        .route(
            "/partners/{partner}/namespace",
            put(partners::put_namespace),
        )
        .route(
            "/partners/{partner}/keys",
            get(keys::list_partner_keys).post(keys::create_partner_key),
        )
        .route(
            "/partners/{partner}/keys/{key}",
            delete(keys::revoke_partner_key),
        )
        .route(
            "/partners/{partner}/keys/{key}/rotate",
            post(keys::rotate_partner_key),
        )
        .route("/endpoints", post(endpoints::create))
        .route("/endpoints/{endpoint}/plugin", put(plugins::pin_endpoint))
        .route(
            "/endpoints/{endpoint}/self-test",
            post(endpoints::self_test),
        )
        .route(
            "/plugins",
            post(plugins::upload)
                .get(plugins::list)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/plugins/{name}", get(plugins::show))
        .route(
            "/publisher-keys",
            post(plugins::add_key).get(plugins::list_keys),
        )
        .route("/publisher-keys/{key}", delete(plugins::revoke_key))
        .route("/plugins/{name}/{version}/grants", put(plugins::grant))
        .route("/plugins/{name}/promote", post(plugins::promote))
        .route("/plugins/{name}/rollback", post(plugins::roll_back))
        .route(
            "/plugins/{name}/failure-policy",
            put(plugins::put_failure_policy),
        )
        .route(
            "/plugins/{name}/{version}",
            get(plugins::show_version).delete(plugins::delete),
        )
        .route("/jobs/dead", get(jobs::dead))
        .route("/jobs/{job}/replay", post(jobs::replay))
        .route("/tenants", post(tenants::create).get(tenants::list))
        .route(
            "/tenants/{tenant}",
            get(tenants::show)
                .patch(desk::settings)
                .delete(account::delete),
        )
        .route("/tenants/{tenant}/export", get(account::export))
        .route(
            "/tenants/{tenant}/contacts/{contact}",
            delete(account::erase_contact),
        )
        .route(
            "/tenants/{tenant}/keys",
            get(keys::list_tenant_keys).post(keys::create_tenant_key),
        )
        .route(
            "/tenants/{tenant}/keys/{key}",
            delete(keys::revoke_tenant_key),
        )
        .route("/tenants/{tenant}/suspend", post(tenants::suspend))
        .route("/tenants/{tenant}/reinstate", post(tenants::reinstate))
        .route(
            "/tenants/{tenant}/policy",
            get(tenants::policy).put(tenants::put_policy),
        )
        .route(
            "/tenants/{tenant}/connections",
            post(connections::create).get(connections::list),
        )
        .route(
            "/tenants/{tenant}/connections/{connection}",
            get(connections::show)
                .patch(connections::edit)
                .delete(connections::disconnect),
        )
        .route("/tenants/{tenant}/channels", get(channels::list))
        .route("/tenants/{tenant}/connect/meta", post(onboarding::start))
        .route(
            "/tenants/{tenant}/connect/twilio/senders",
            post(senders::list),
        )
        .route(
            "/tenants/{tenant}/connect/meta/{session}",
            get(onboarding::show),
        )
        .route(
            "/tenants/{tenant}/connect/meta/{session}/pick",
            post(onboarding::pick),
        )
        .route(
            "/tenants/{tenant}/connections/{connection}/self-test",
            post(connections::self_test),
        )
        .route(
            "/tenants/{tenant}/connections/{connection}/verify",
            post(connections::verify),
        )
        .route(
            "/tenants/{tenant}/connections/{connection}/test",
            post(connections::test_send),
        )
        .route(
            "/tenants/{tenant}/connections/{connection}/templates",
            get(lifecycle::templates),
        )
        .route(
            "/tenants/{tenant}/connections/{connection}/templates/sync",
            post(lifecycle::sync_templates),
        )
        .route("/tenants/{tenant}/media/{media}", get(lifecycle::media))
        .route("/tenants/{tenant}/conversations", get(inbox::conversations))
        .route(
            "/tenants/{tenant}/conversations/{conversation}",
            get(desk::show).patch(inbox::change).delete(inbox::delete),
        )
        .route(
            "/tenants/{tenant}/conversations/{conversation}/messages",
            get(inbox::messages).post(desk::reply),
        )
        .route(
            "/tenants/{tenant}/conversations/{conversation}/media",
            post(desk::send_media).layer(axum::extract::DefaultBodyLimit::max(
                state.media_max_bytes.saturating_add(1),
            )),
        )
        .route(
            "/tenants/{tenant}/conversations/{conversation}/insights",
            post(desk::insights),
        )
        .route(
            "/tenants/{tenant}/connections/{connection}/access",
            get(sharing::show).put(sharing::change),
        )
        .route("/tenants/{tenant}/access-requests", get(sharing::requests))
        .route(
            "/tenants/{tenant}/access-requests/{request}",
            post(sharing::decide),
        )
        .route("/tenants/{tenant}/events", get(live::events))
        .route("/tenants/{tenant}/notifications", get(live::notifications))
        .route(
            "/tenants/{tenant}/notifications/read",
            post(live::mark_all_read),
        )
        .route(
            "/tenants/{tenant}/notifications/{notification}/read",
            post(live::mark_read),
        )
        .route(
            "/tenants/{tenant}/consent",
            get(consent::list).post(consent::change),
        )
        .route("/tenants/{tenant}/consent/export", get(consent::export))
        .route("/openapi.json", get(openapi::document))
        .route(
            "/session",
            post(people::sign_in)
                .get(people::show_session)
                .delete(people::sign_out),
        )
        .route("/password-resets", post(people::request_reset))
        .route("/password-resets/confirm", post(people::confirm_reset))
        .route("/invitations/accept", post(people::accept))
        .route("/plans", post(plans::create).get(plans::list))
        .route(
            "/plans/{plan}",
            get(plans::show).put(plans::update).delete(plans::delete),
        )
        .route("/partners/{partner}/plan-ceiling", put(plans::put_ceiling))
        .route(
            "/tenants/{tenant}/plan",
            get(plans::show_tenant_plan).put(plans::put_tenant_plan),
        )
        .route("/tenants/{tenant}/people", get(people::tenant_people))
        .route(
            "/tenants/{tenant}/people/{user}",
            axum::routing::patch(people::change_tenant_member).delete(people::remove_tenant_member),
        )
        .route(
            "/tenants/{tenant}/invitations",
            get(people::tenant_invitations).post(people::invite_to_tenant),
        )
        .route(
            "/tenants/{tenant}/invitations/{invitation}",
            delete(people::withdraw_tenant_invitation),
        )
        .route("/partners/{partner}/people", get(people::partner_people))
        .route(
            "/partners/{partner}/people/{user}",
            axum::routing::patch(people::change_partner_member)
                .delete(people::remove_partner_member),
        )
        .route(
            "/partners/{partner}/invitations",
            get(people::partner_invitations).post(people::invite_to_partner),
        )
        .route(
            "/partners/{partner}/invitations/{invitation}",
            delete(people::withdraw_partner_invitation),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .fallback(|| async { crate::error::ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { crate::error::ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(API_BODY_LIMIT));
    let app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/media/{token}", get(desk::linked_media))
        .route("/connect/meta/start", get(onboarding::browser_start))
        .route("/connect/meta/callback", get(onboarding::callback))
        .route(
            "/connect/meta/confirm",
            post(onboarding::confirm).layer(axum::extract::DefaultBodyLimit::max(16 * 1024)),
        )
        .route(
            "/hooks/{endpoint}",
            get(crate::ingress::hook)
                .post(crate::ingress::hook)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .nest("/api/v1", api)
        .with_state(state.clone());
    // The console reads through the API (in process, as the visitor).
    app.clone().merge(console::router(state, app))
}
