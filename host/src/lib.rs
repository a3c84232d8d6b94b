//! Switchyard: a multi-tenant host that runs messaging-channel connectors and reply policies as
//! sandboxed WebAssembly components.
//!
//! [`run`] is shared by the `switchyard` binary and the tests.

pub mod authoring;
pub mod bundled;
pub mod calendar;
pub mod catalog;
pub mod commands;
pub mod config;
pub mod connector;
pub mod consent;
pub mod demo;
pub mod desk;
pub mod doctor;
pub mod egress;
pub mod error;
pub mod http;
pub mod ingress;
pub mod insights;
pub mod jobs;
pub mod lifecycle;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod onboarding;
pub mod people;
pub mod plans;
pub mod replies;
pub mod runtime;
pub mod store;
pub mod supervise;
pub mod telemetry;
pub mod tenancy;
pub mod vault;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::egress::EgressClient;
use crate::runtime::{Runtime, Services};
use crate::store::{PluginSource, Store};
use crate::tenancy::auth::OperatorToken;
use crate::vault::{StaticSecrets, Vault};

/// Whether session cookies carry `Secure`: always, but for a plain-http public URL on loopback
/// (a laptop), where a browser would otherwise never send them back.
pub fn secure_cookies(public_url: &str) -> bool {
    let Ok(url) = url::Url::parse(public_url) else {
        return true;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    !(url.scheme() == "http" && loopback)
}

/// Run the host on `listener` until SIGINT or SIGTERM, then shut down gracefully.
pub async fn run(config: Config, listener: TcpListener) -> anyhow::Result<()> {
    serve(config, listener, shutdown_signal()).await
}

/// Run the host on `listener` until `shutdown` completes.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    runtime::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let (operator_token, master_keys) = demo::credentials(&config)?;
    let store = open_store(&config).await?;
    let cache_key = runtime::CacheKey::derive(&master_keys)?;
    let vault = Vault::new(master_keys);

    // One client (and connection pool) for plugins' egress and the host's own provider calls.
    let egress = EgressClient::new(config.egress_timeout, config.egress_max_response_bytes)?;
    let services = Services {
        // The encrypted vault replaces this source; until then plugins get no secrets.
        secrets: Arc::new(StaticSecrets::new()),
        egress: egress.clone(),
    };
    let runtime = Runtime::new(
        runtime::RuntimeConfig {
            cache_key: Some(cache_key),
            ..config.runtime.clone()
        },
        services,
    )?;
    let local = load_plugins(&runtime, &config, &store).await?;
    let origins_config = config.clone();
    let catalog = catalog::Catalog::start(
        runtime,
        store.clone(),
        Box::new(move |name| origins_config.origins(name)),
        config.plugin_max_bytes,
        config.require_signed,
        local,
    )
    .await?;

    let mailer = mail::Mailer::new(
        config
            .smtp_url
            .as_ref()
            .map(|s| String::from_utf8_lossy(s.expose()).into_owned())
            .as_deref(),
        &config.mail_from,
        &config.data_dir,
    )?;
    if mailer.to_files() {
        tracing::warn!(
            mail = mailer.describe(),
            "no SWITCHYARD_SMTP_URL: invitations and password resets are written as .eml files, not sent"
        );
    } else {
        tracing::info!(mail = mailer.describe(), "mail goes out over SMTP");
    }
    let mailer = Arc::new(mailer);
    let jobs_notify = Arc::new(tokio::sync::Notify::new());
    // This host's workers and receipt writer, for `/readyz`: one small map per `serve`, kept
    // for the process's life (tests serve many hosts in one process, each with its own).
    let tasks: &'static supervise::Tasks = Box::leak(Box::default());
    let state = http::AppState {
        store: store.clone(),
        plugins: catalog.clone(),
        vault,
        operator: OperatorToken::new(&String::from_utf8_lossy(operator_token.expose())),
        public_url: config.public_url.clone(),
        providers: Arc::new(connector::Providers::new(
            config.provider_urls.clone(),
            HashMap::from([(
                "meta-cloud".to_string(),
                BTreeMap::from([(
                    "graph_version".to_string(),
                    config.meta_graph_version.clone(),
                )]),
            )]),
        )),
        meta: onboarding::meta::Graph::new(
            egress.clone(),
            config
                .provider_urls
                .get("meta-cloud")
                .map(String::as_str)
                .unwrap_or_default(),
            &config.meta_graph_version,
            &config.meta_dialog_url,
        ),
        twilio: onboarding::twilio::Senders::new(
            egress.clone(),
            config
                .provider_urls
                .get("twilio")
                .map(String::as_str)
                .unwrap_or(onboarding::twilio::REST_API),
        ),
        ingress_max_body: config.ingress_max_body,
        jobs: jobs_notify.clone(),
        receipts: ingress::start_writer(store.clone(), jobs_notify, tasks),
        endpoints: ingress::EndpointCache::default(),
        ingress: Arc::new(ingress::guard::Guard::new(&config.ingress)),
        plugin_calls: http::PluginCalls::new(config.api_plugin_calls_per_tenant),
        mailer: mailer.clone(),
        sign_ins: Arc::new(governor::RateLimiter::keyed(governor::Quota::per_minute(
            std::num::NonZeroU32::MIN.saturating_add(19),
        ))),
        secure_cookies: secure_cookies(&config.public_url),
        media_max_bytes: config.media_max_bytes,
        streams: http::PluginCalls::streams(STREAMS_PER_TENANT),
        metrics_token: config
            .metrics_token
            .as_ref()
            .map(|t| OperatorToken::new(&String::from_utf8_lossy(t.expose()))),
        workers: config.workers,
        tasks,
    };
    let warnings = state.meta.version_warning(store::now_ms()).into_iter();
    for w in warnings.chain(connector::public_url_warning(&state.public_url)) {
        tracing::warn!("{w}");
    }
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    catalog.spawn_poller(config.plugin_poll, workers_stopped.clone());
    jobs::Workers {
        store: state.store.clone(),
        plugins: state.plugins.clone(),
        vault: state.vault.clone(),
        notify: state.jobs.clone(),
        providers: state.providers.clone(),
        public_url: state.public_url.clone(),
        lease_ms: config.job_lease.as_millis() as i64,
        send_rate: config.send_rate,
        endpoints: state.endpoints.clone(),
        mailer,
        media_max_bytes: config.media_max_bytes,
    }
    .spawn(config.workers, workers_stopped.clone(), tasks);
    // Token health and the `connecting` sweep run next to the workers and stop with them.
    lifecycle::Lifecycle {
        store: state.store.clone(),
        plugins: state.plugins.clone(),
        vault: state.vault.clone(),
        providers: state.providers.clone(),
        public_url: state.public_url.clone(),
        token_warn_ms: config.token_warn.as_millis() as i64,
        meta: state.meta.clone(),
    }
    .spawn(config.health_interval, workers_stopped.clone());
    http::spawn_relay(state.store.clone(), workers_stopped.clone());
    desk::spawn_hand_back(
        state.store.clone(),
        config.hand_back_every,
        workers_stopped.clone(),
    );
    ingress::backlog::spawn(
        state.store.clone(),
        state.ingress.backlog().clone(),
        config.ingress.backlog_count_every,
        workers_stopped.clone(),
    );
    ingress::retention::spawn(
        state.store.clone(),
        state.ingress.clone(),
        config.receipt_retention,
        workers_stopped,
    );
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "switchyard listening");
    http::server::serve(
        listener,
        http::router(state),
        config.server.clone(),
        shutdown,
    )
    .await?;
    let _ = stop_workers.send(true);
    tracing::info!("switchyard stopped");
    Ok(())
}

/// Event streams one tenant may hold open at once (a desk's browsers and integrations).
const STREAMS_PER_TENANT: u32 = 64;

/// Open the database the configuration names, apply migrations, and on PostgreSQL refuse an app
/// role that row-level security would not hold.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::open_durable(&config.database_url, 8, config.durability)
        .await
        .context("opening the database (SWITCHYARD_DATABASE_URL)")?;
    match store.backend() {
        store::Backend::Sqlite => store
            .migrate()
            .await
            .context("applying database migrations")?,
        store::Backend::Postgres => {
            if let Some(owner_url) = &config.database_owner_url {
                migrate_postgres(owner_url, &config.database_url).await?;
            } else if config.insecure_db_role {
                store
                    .migrate()
                    .await
                    .context("applying database migrations")?;
            } else {
                tracing::info!(
                    "SWITCHYARD_DATABASE_OWNER_URL is not set: migrations are left to `switchyard migrate`"
                );
            }
            if let Some(check) = store.role_check().await?
                && let Some(refusal) = check.refusal()
            {
                if config.insecure_db_role {
                    tracing::warn!("{refusal} (continuing: --insecure-db-role)");
                } else {
                    anyhow::bail!("{refusal}");
                }
            }
        }
    }
    Ok(store)
}

/// Apply PostgreSQL migrations as the owner and grant the app role of `app_url` (when it is a
/// different role) what it needs.
pub async fn migrate_postgres(owner_url: &str, app_url: &str) -> anyhow::Result<()> {
    let owner = Store::open_with(owner_url, 1)
        .await
        .context("opening the database as the owner (SWITCHYARD_DATABASE_OWNER_URL)")?;
    owner
        .migrate()
        .await
        .context("applying database migrations")?;
    let user = |u: &str| url::Url::parse(u).ok().map(|u| u.username().to_string());
    if let Some(app_role) = user(app_url).filter(|r| !r.is_empty())
        && user(owner_url).as_deref() != Some(app_role.as_str())
    {
        owner
            .grant_app_role(&app_role)
            .await
            .context("granting the app role")?;
    }
    owner.close().await;
    Ok(())
}

/// Load the bundled plugins and those in the plugin directory; any invalid plugin stops start-up.
async fn load_plugins(
    runtime: &Runtime,
    config: &Config,
    store: &Store,
) -> anyhow::Result<Vec<catalog::LocalPlugin>> {
    let mut local = Vec::new();
    let mut sources: Vec<(String, Vec<u8>, PluginSource)> = bundled::BUNDLED
        .iter()
        .map(|(name, bytes)| {
            (
                format!("bundled {name}"),
                bytes.to_vec(),
                PluginSource::Bundled,
            )
        })
        .collect();
    if let Some(dir) = &config.plugin_dir {
        for path in plugin_files(dir)? {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            sources.push((path.display().to_string(), bytes, PluginSource::Directory));
        }
    }
    for (origin, bytes, source) in sources {
        let name = runtime::Manifest::from_component(&bytes)
            .map(|m| m.name)
            .with_context(|| format!("plugin {origin}"))?;
        if config.require_signed && matches!(source, PluginSource::Directory) {
            catalog::check_directory_signature(store, &bytes, &name)
                .await
                .with_context(|| format!("plugin {origin}"))?;
        }
        let plugin = runtime
            .load(&bytes, config.origins(&name))
            .with_context(|| format!("loading plugin {origin}"))?;
        let manifest = plugin.manifest().clone();
        let sha256 = match &plugin {
            runtime::Plugin::Connector(c) => c.sha256().to_string(),
            runtime::Plugin::Policy(p) => p.sha256().to_string(),
        };
        let directory_signer = match source {
            PluginSource::Bundled => None,
            PluginSource::Directory => Some(
                runtime::signature::signer(&bytes).with_context(|| format!("plugin {origin}"))?,
            ),
        };
        local.push(catalog::LocalPlugin {
            plugin,
            directory_signer,
        });
        store
            .record_plugin(&manifest, &sha256, bytes.len(), source)
            .await?;
        tracing::info!(plugin = %manifest.name, version = %manifest.version, world = %manifest.world,
                       sha256 = %&sha256[..12], from = %origin, "plugin loaded");
    }
    Ok(local)
}

/// The `*.wasm` files of a plugin directory, sorted.
fn plugin_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "reading plugin directory {} (SWITCHYARD_PLUGIN_DIR)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM that arrives while the server is still starting (or
/// before its accept loop first polls the future) must stop it gracefully, not kill it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            // A signal that cannot be listened for is logged, and the other still works.
            let wait = |stream: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match stream {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            let (int, term) = streams;
            tokio::select! {
                () = wait(int, "SIGINT") => tracing::info!("SIGINT received, shutting down"),
                () = wait(term, "SIGTERM") => tracing::info!("SIGTERM received, shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C received, shutting down");
        }
    }
}
