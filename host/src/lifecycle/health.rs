//! Connection lifecycle in the background: a periodic credential check of every live connection
//! (token refused → `expired` with a reconnect hint; expiry inside the warning window → a
//! warning in `status_reason`; provider unavailable → unchanged) and a sweep that moves
//! connections stuck in `connecting` to `error`. Both run once through [`Lifecycle::run_once`]
//! and [`sweep_once`], so they can be driven without timers.

use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::runtime::types::ErrorKind;
use crate::store::{ConnectionRecord, Mode, Store, StoreError, now_ms};
use crate::tenancy::{Scope, TenantScope, auth};
use crate::vault::Vault;

/// How long a connection may stay `connecting` before the sweep gives up on it.
pub const CONNECTING_TIMEOUT_MS: i64 = 5 * 60 * 1000;
/// The reason a swept connection gets.
pub const CONNECT_DID_NOT_FINISH: &str = "connect did not finish";
/// How often the `connecting` sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// The start of every warning in `status_reason` (the host's, and a connector's `detail` that
/// starts with it), so a later check can clear warnings that no longer apply.
pub const WARNING_PREFIX: &str = "warning: ";

/// What the credential check needs.
#[derive(Clone)]
pub struct Lifecycle {
    /// The database.
    pub store: Store,
    /// The loaded plugins.
    pub plugins: Arc<Catalog>,
    /// The vault.
    pub vault: Vault,
    /// Provider base URLs and the operator's connector settings.
    pub providers: Arc<crate::connector::Providers>,
    /// Public base URL.
    pub public_url: String,
    /// How long before a token's expiry a warning shows (ms).
    pub token_warn_ms: i64,
    /// The Graph API, for `debug_token` on Meta connections (host code, A2).
    pub meta: crate::onboarding::meta::Graph,
}

/// Meta apps by endpoint id, read once a check round (`None`: the endpoint has no app).
type MetaApps = std::collections::HashMap<String, Option<(String, crate::vault::Secret)>>;

/// What one credential check round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// Connections checked.
    pub checked: usize,
    /// Connections marked `expired`.
    pub expired: usize,
    /// Connections given an expiry warning.
    pub warned: usize,
    /// Connections left as they were because the provider or the connector did not answer.
    pub unavailable: usize,
}

/// The connection's new `(status, reason)` after a check, or `None` to leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Leave the status as it is.
    Unchanged,
    /// Still live, with this reason (a warning, or none to clear an old warning).
    Live(Option<String>),
    /// The token no longer works.
    Expired(String),
}

/// The status reason that records a connector's warnings (each marked with
/// [`WARNING_PREFIX`]), if it gave any.
pub fn warning_reason(warnings: &[String]) -> Option<String> {
    (!warnings.is_empty()).then(|| {
        warnings
            .iter()
            .map(|w| format!("{WARNING_PREFIX}{w}"))
            .collect::<Vec<_>>()
            .join(" | ")
    })
}

/// Judge a connection that passed its credential check from its token expiry (Unix ms, if
/// known) at `now` and the connector's own warnings (e.g. no webhook subscription): expired,
/// live with the warnings (expiry within `warn_ms`), or live. `old_reason` is kept unless it
/// is an old warning.
pub fn judge(
    expires_at: Option<i64>,
    now: i64,
    warn_ms: i64,
    old_reason: Option<&str>,
    connector_warnings: &[String],
) -> Verdict {
    let mut warnings = Vec::new();
    match expires_at.filter(|t| *t > 0) {
        Some(t) if t <= now => {
            return Verdict::Expired(format!(
                "the access token expired on {}; reconnect the number to renew it",
                date(t)
            ));
        }
        Some(t) if t - now <= warn_ms => warnings.push(format!(
            "{WARNING_PREFIX}the access token expires on {}; reconnect the number before then",
            date(t)
        )),
        _ => {}
    }
    warnings.extend(warning_reason(connector_warnings));
    if !warnings.is_empty() {
        return Verdict::Live(Some(warnings.join(" | ")));
    }
    match old_reason {
        Some(r) if r.starts_with(WARNING_PREFIX) => Verdict::Live(None),
        _ => Verdict::Unchanged,
    }
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix-ms time.
pub fn date(ms: i64) -> String {
    let c = crate::calendar::civil(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        c.year,
        c.month,
        c.day,
        c.seconds / 3600,
        c.seconds % 3600 / 60
    )
}

/// Move every connection left in `connecting` for more than [`CONNECTING_TIMEOUT_MS`] to
/// `error` ("connect did not finish"); the number of connections moved.
pub async fn sweep_once(store: &Store) -> Result<usize, StoreError> {
    let before = now_ms() - CONNECTING_TIMEOUT_MS;
    let mut moved = 0;
    for tenant in auth::every_tenant(store).await? {
        let mut tx = store.begin(Scope::Tenant(tenant), Mode::Write).await?;
        let ids = tx.sweep_connecting(before, CONNECT_DID_NOT_FINISH).await?;
        tx.commit().await?;
        for id in &ids {
            tracing::warn!(connection = %id, "connect did not finish; connection set to error");
        }
        moved += ids.len();
    }
    Ok(moved)
}

/// Shred the tokens of every tenant's expired onboarding sessions (a flow started and
/// abandoned); how many.
pub async fn expire_onboarding_once(
    store: &Store,
    vault: &Vault,
) -> Result<usize, crate::vault::VaultError> {
    let mut shredded = 0;
    for tenant in auth::every_tenant(store).await? {
        let mut tx = store.begin(Scope::Tenant(tenant), Mode::Write).await?;
        shredded += crate::onboarding::expire_sessions(&mut tx, vault).await?;
        tx.commit().await?;
    }
    Ok(shredded)
}

/// What asking a connector about a connection's credentials found.
type Asked = Result<crate::runtime::types::CredentialHealth, crate::runtime::types::ProviderError>;

/// Ask a connection's connector whether the provider accepts its credentials (its secrets are
/// opened for this one call); `Err` when no call could be made.
pub(crate) async fn ask_provider(
    store: &Store,
    vault: &Vault,
    plugins: &Catalog,
    providers: &crate::connector::Providers,
    public_url: &str,
    tenant: &TenantScope,
    c: &ConnectionRecord,
) -> Result<Asked, String> {
    let secrets = open_secrets(store, vault, tenant, c).await?;
    ask_with(plugins, providers, public_url, c, secrets).await
}

/// A connection's secrets, opened.
async fn open_secrets(
    store: &Store,
    vault: &Vault,
    tenant: &TenantScope,
    c: &ConnectionRecord,
) -> Result<Vec<(String, crate::vault::Secret)>, String> {
    let mut tx = store
        .begin(Scope::Tenant(tenant.clone()), Mode::Read)
        .await
        .map_err(|e| e.to_string())?;
    let secrets = vault
        .open_connection(&mut tx, &c.id)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(secrets)
}

/// [`ask_provider`] with the connection's secrets already opened.
async fn ask_with(
    plugins: &Catalog,
    providers: &crate::connector::Providers,
    public_url: &str,
    c: &ConnectionRecord,
    secrets: Vec<(String, crate::vault::Secret)>,
) -> Result<Asked, String> {
    let plugin = plugins
        .connector(&c.connector, Some(&c.endpoint_id))
        .ok_or_else(|| format!("connector {} is not loaded", c.connector))?;
    let info = providers.connection_info(c, &plugin, public_url);
    plugin
        .check_credentials(Vault::call_scope(None, Some((c, secrets))), &info)
        .await
        .map_err(|e| format!("connector failed: {e}"))
}

impl Lifecycle {
    /// Start the periodic credential check (every `interval`, first after one interval) and
    /// the `connecting` and expired-onboarding sweeps (every minute); all stop when `shutdown`
    /// fires.
    pub fn spawn(self, interval: Duration, shutdown: tokio::sync::watch::Receiver<bool>) {
        use crate::supervise::every;
        let me = self.clone();
        every("credential check", interval, shutdown.clone(), move || {
            let me = me.clone();
            async move {
                match me.run_once().await {
                    Ok(r) => tracing::info!(?r, "credential check done"),
                    Err(e) => tracing::warn!(error = %e, "credential check failed"),
                }
            }
        });
        let (store, vault) = (self.store, self.vault);
        every("connection sweeps", SWEEP_INTERVAL, shutdown, move || {
            let (store, vault) = (store.clone(), vault.clone());
            async move {
                if let Err(e) = sweep_once(&store).await {
                    tracing::warn!(error = %e, "connecting sweep failed");
                }
                if let Err(e) = expire_onboarding_once(&store, &vault).await {
                    tracing::warn!(error = %e, "onboarding session sweep failed");
                }
            }
        });
    }

    /// Check the credentials of every live connection of every tenant once.
    pub async fn run_once(&self) -> Result<HealthReport, StoreError> {
        let mut report = HealthReport::default();
        // Many tenants' numbers share one Meta app endpoint: its app is read once a round.
        let mut apps = MetaApps::new();
        for tenant in auth::every_tenant(&self.store).await? {
            let mut tx = self
                .store
                .begin(Scope::Tenant(tenant.clone()), Mode::Read)
                .await?;
            let live = tx.connections_with_status("live").await?;
            tx.commit().await?;
            for c in live {
                report.checked += 1;
                match self.check(&tenant, &c, &mut apps).await {
                    Ok(Verdict::Expired(_)) => report.expired += 1,
                    Ok(Verdict::Live(Some(_))) => report.warned += 1,
                    Ok(_) => {}
                    Err(e) => {
                        report.unavailable += 1;
                        tracing::warn!(connection = %c.id, error = %e, "credential check not done");
                    }
                }
            }
        }
        Ok(report)
    }

    /// Check one connection and record the verdict; `Err` when nobody answered.
    async fn check(
        &self,
        tenant: &TenantScope,
        c: &ConnectionRecord,
        apps: &mut MetaApps,
    ) -> Result<Verdict, String> {
        // Opened once: the connector's check and Meta's `debug_token` both need them.
        let secrets = open_secrets(&self.store, &self.vault, tenant, c).await?;
        let token = secrets
            .iter()
            .find_map(|(name, s)| (name == "access_token").then(|| s.clone()));
        let asked = ask_with(&self.plugins, &self.providers, &self.public_url, c, secrets).await?;
        let (verdict, expires_at) = match asked {
            Err(e) => match e.kind {
                ErrorKind::AuthExpired => (
                    Verdict::Expired(format!(
                        "the provider refused the access token ({} {}); reconnect the number to renew it",
                        e.code, e.message
                    )),
                    None,
                ),
                _ => return Err(format!("{} {}", e.code, e.message)),
            },
            Ok(health) => {
                let mut warnings = health.warnings;
                let mut reported = health
                    .expires_at
                    .and_then(|s| i64::try_from(s).ok())
                    .filter(|s| *s > 0)
                    .map(|s| s.saturating_mul(1000));
                // Meta's own word on the token, whoever connected it (a token typed in by hand
                // has no expiry on record otherwise).
                let now = now_ms();
                match self.meta_token(c, token, apps).await {
                    Ok(Some(info)) if !info.is_valid => {
                        let reason = "Meta says the access token is no longer valid (debug_token); reconnect the number to renew it".to_string();
                        return self.record(tenant, c, Verdict::Expired(reason), None).await;
                    }
                    Ok(Some(info)) => {
                        reported = info.expires_at.or(reported);
                        if let Some(t) = info
                            .data_access_expires_at
                            .filter(|t| *t - now <= self.token_warn_ms)
                        {
                            warnings.push(format!(
                                "the app's access to the business's data ends on {}; reconnect the number before then",
                                date(t)
                            ));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::info!(connection = %c.id, error = %e, "debug_token not asked");
                    }
                }
                let expires = reported.or(c.token_expires_at);
                (
                    judge(
                        expires,
                        now,
                        self.token_warn_ms,
                        c.status_reason.as_deref(),
                        &warnings,
                    ),
                    reported,
                )
            }
        };
        self.record(tenant, c, verdict, expires_at).await
    }

    /// What `debug_token` says about a Meta connection's access `token`, asked with its
    /// endpoint's app (`app_id` setting, `app_secret` secret); `None` for other connectors,
    /// endpoints without an app and connections without a token.
    async fn meta_token(
        &self,
        c: &ConnectionRecord,
        token: Option<crate::vault::Secret>,
        apps: &mut MetaApps,
    ) -> Result<Option<crate::onboarding::meta::TokenInfo>, String> {
        let Some(token) = token.filter(|_| c.connector == "meta-cloud") else {
            return Ok(None);
        };
        let app = match apps.get(&c.endpoint_id) {
            Some(app) => app.clone(),
            None => {
                let app = self.meta_app(&c.endpoint_id).await?;
                apps.insert(c.endpoint_id.clone(), app.clone());
                app
            }
        };
        let Some((app_id, app_secret)) = app else {
            return Ok(None);
        };
        self.meta
            .token_info(&app_id, &app_secret, &token)
            .await
            .map(Some)
            .map_err(|e| e.summary())
    }

    /// The Meta app of endpoint `id`: its `app_id` setting and `app_secret` secret, when it has
    /// both.
    async fn meta_app(&self, id: &str) -> Result<Option<(String, crate::vault::Secret)>, String> {
        let mut tx = self
            .store
            .begin(Scope::Host, Mode::Read)
            .await
            .map_err(|e| e.to_string())?;
        let Some(endpoint) = tx.endpoint(id).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let settings: serde_json::Value =
            serde_json::from_str(&endpoint.settings).unwrap_or_default();
        let Some(app_id) = crate::onboarding::endpoint_setting(&settings, "app_id") else {
            return Ok(None);
        };
        let app_secret = self
            .vault
            .open_endpoint(&mut tx, &endpoint)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find_map(|(name, s)| (name == "app_secret").then_some(s));
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(app_secret.map(|s| (app_id, s)))
    }

    /// Record a check's verdict and a newly reported expiry.
    async fn record(
        &self,
        tenant: &TenantScope,
        c: &ConnectionRecord,
        verdict: Verdict,
        expires_at: Option<i64>,
    ) -> Result<Verdict, String> {
        let scope = Scope::Tenant(tenant.clone());
        let mut tx = self
            .store
            .begin(scope, Mode::Write)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(t) = expires_at {
            tx.set_token_expiry(&c.id, t)
                .await
                .map_err(|e| e.to_string())?;
        }
        match &verdict {
            Verdict::Unchanged => {}
            Verdict::Live(reason) => {
                tx.move_connection_status(&c.id, "live", "live", reason.as_deref())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Verdict::Expired(reason) => {
                tracing::warn!(connection = %c.id, reason, "credentials expired");
                tx.move_connection_status(&c.id, "live", "expired", Some(reason))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_795_435_200_000), "2026-11-23 12:00 UTC");
        assert_eq!(date(951_782_400_000), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn expiry_is_judged_against_the_warning_window() {
        let now = 1_795_435_200_000;
        let warn = 7 * DAY;
        let healthy: &[String] = &[];
        assert_eq!(judge(None, now, warn, None, healthy), Verdict::Unchanged);
        // `expires_at: 0` is a token that never expires.
        assert_eq!(judge(Some(0), now, warn, None, &[]), Verdict::Unchanged);
        assert_eq!(
            judge(Some(now + 30 * DAY), now, warn, Some("kept"), &[]),
            Verdict::Unchanged
        );
        let Verdict::Live(Some(w)) = judge(Some(now + 2 * DAY), now, warn, None, healthy) else {
            panic!("warning expected")
        };
        assert!(
            w.starts_with("warning: the access token expires on 2026-11-25 12:00"),
            "{w}"
        );
        // A renewed token clears the old warning.
        assert_eq!(
            judge(Some(now + 30 * DAY), now, warn, Some(&w), &[]),
            Verdict::Live(None)
        );
        assert!(matches!(
            judge(Some(now - 1), now, warn, None, &[]),
            Verdict::Expired(r) if r.contains("reconnect")
        ));
        // The connector's own warning (no webhook subscription) joins the expiry warning.
        let sub = ["no app is subscribed to the webhooks".to_string()];
        assert_eq!(
            judge(None, now, warn, None, &sub),
            Verdict::Live(Some("warning: no app is subscribed to the webhooks".into()))
        );
        let Verdict::Live(Some(both)) = judge(Some(now + DAY), now, warn, None, &sub) else {
            panic!("warnings expected")
        };
        assert!(both.contains("expires on") && both.contains("no app is subscribed"));
    }
}
