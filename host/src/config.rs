//! Configuration: command-line flags and `SWITCHYARD_*` environment variables, validated in one place.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::runtime::RuntimeConfig;
use crate::vault::Secret;
use crate::vault::crypto::MasterKeys;

/// Switchyard: runs messaging-channel connectors as sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run the host: HTTP server, plugin runtime, database.
    Serve(ServeArgs),
    /// Apply database migrations and exit (on PostgreSQL as the owner, granting the app role).
    Migrate(DatabaseArgs),
    /// Work with the vault.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Work with the consent ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Work with the job queue.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Check the set-up with `serve`'s settings (database, keys, public URL, and against the
    /// running host its plugins and each endpoint's route) and print what to fix; exits 1 when
    /// a check fails.
    Doctor(ServeArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Directory for the SQLite database, compiled-plugin cache and generated files.
    #[arg(long, env = "SWITCHYARD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Database URL of the app role: `sqlite://path` (default: `<data-dir>/switchyard.db`) or
    /// `postgres://app_role@host/db`.
    #[arg(long, env = "SWITCHYARD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL only: URL of the role that owns the tables; `migrate` and `serve` apply
    /// migrations with it and grant the app role what it needs.
    #[arg(long, env = "SWITCHYARD_DATABASE_OWNER_URL", hide_env_values = true)]
    pub database_owner_url: Option<String>,
}

/// `switchyard serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database and data directory.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Directory of extra packed plugin components (`*.wasm`) to load besides the bundled ones.
    #[arg(long, env = "SWITCHYARD_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Largest plugin component accepted by `POST /api/v1/plugins`, in KiB.
    #[arg(long, env = "SWITCHYARD_PLUGIN_MAX_KIB", default_value_t = 8192,
          value_parser = clap::value_parser!(u64).range(16..=262_144))]
    pub plugin_max_kib: u64,
    /// Refuse plugins no registered publisher key signed (uploads and the plugin directory;
    /// bundled plugins are part of the binary).
    #[arg(long, env = "SWITCHYARD_REQUIRE_SIGNED")]
    pub require_signed: bool,
    /// How often each host looks for plugin catalog changes made through another host, in
    /// milliseconds (changes made through this host apply at once).
    #[arg(long, env = "SWITCHYARD_PLUGIN_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub plugin_poll_ms: u64,
    /// Linear-memory cap per plugin instance, in MiB.
    #[arg(long, env = "SWITCHYARD_PLUGIN_MEMORY_MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub plugin_memory_mib: u64,
    /// CPU deadline per plugin call, in milliseconds (time in plugin code, not egress waits).
    #[arg(long, env = "SWITCHYARD_PLUGIN_CPU_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub plugin_cpu_ms: u64,
    /// Wall-clock limit per plugin call including egress waits, in milliseconds.
    #[arg(long, env = "SWITCHYARD_PLUGIN_WALL_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub plugin_wall_ms: u64,
    /// Most plugin instances alive at once (size of the instance pool).
    #[arg(long, env = "SWITCHYARD_PLUGIN_MAX_INSTANCES", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub plugin_max_instances: u32,
    /// Threads that run plugin code, apart from those serving HTTP (0 = one per CPU).
    #[arg(long, env = "SWITCHYARD_PLUGIN_THREADS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub plugin_threads: u64,
    /// Instances of the pool kept for webhook verification only (at most the pool's size less
    /// one): jobs and API-triggered plugin calls share the rest, so they cannot make ingress 503.
    #[arg(long, env = "SWITCHYARD_PLUGIN_RESERVED_FOR_VERIFY", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub plugin_reserved_for_verify: u32,
    /// API requests of one tenant that may run a plugin call at once (template sync, verify,
    /// test send, connect); more answer 429 with Retry-After.
    #[arg(long, env = "SWITCHYARD_API_PLUGIN_CALLS_PER_TENANT", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub api_plugin_calls_per_tenant: u32,
    /// Timeout of one egress HTTP request, in milliseconds.
    #[arg(long, env = "SWITCHYARD_EGRESS_TIMEOUT_MS", default_value_t = 15_000)]
    pub egress_timeout_ms: u64,
    /// Largest provider response egress accepts, in MiB (WhatsApp media is up to 16 MB).
    #[arg(long, env = "SWITCHYARD_EGRESS_MAX_RESPONSE_MIB", default_value_t = 20)]
    pub egress_max_response_mib: usize,
    /// Extra origins a plugin's egress may reach, as `plugin=scheme://host:port`, comma-separated
    /// (e.g. a media server on the operator's network). They may be private addresses; they
    /// never receive credentials (only the provider base URL and the manifest's credential
    /// hosts do).
    #[arg(long, env = "SWITCHYARD_EGRESS_ORIGINS", value_delimiter = ',')]
    pub egress_origins: Vec<String>,
    /// Provider API base URLs by connector, as `connector=http(s)://host[:port][/path]`,
    /// comma-separated: where a connector's API calls go instead of the URL its manifest names
    /// (a sandbox, or a fake in tests). That origin receives the connection's credentials.
    /// For `meta-cloud` and `twilio` it overrides SWITCHYARD_META_GRAPH_URL and
    /// SWITCHYARD_TWILIO_API_URL.
    #[arg(long, env = "SWITCHYARD_API_URLS", value_delimiter = ',')]
    pub api_urls: Vec<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "SWITCHYARD_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Export traces over OTLP to this collector URL (e.g. `http://collector:4318/v1/traces`);
    /// unset: no traces.
    #[arg(long, env = "SWITCHYARD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<url::Url>,
    /// The OTLP body encoding: `http/protobuf` or `http/json`.
    #[arg(
        long,
        env = "SWITCHYARD_OTLP_PROTOCOL",
        default_value = "http/protobuf"
    )]
    pub otlp_protocol: crate::telemetry::OtlpProtocol,
    /// Bearer token of the operator (required unless in demo mode).
    #[arg(long, env = "SWITCHYARD_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<Secret>,
    /// Bearer token a metrics scraper presents at `/metrics` (the operator token also works).
    #[arg(long, env = "SWITCHYARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// Vault keys (current master key, older versions for rotation).
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The public base URL providers reach this host at; webhook URLs are built from it
    /// (default: `http://<listen>`).
    #[arg(long, env = "SWITCHYARD_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// SMTP server for the host's mail (invitations, password resets), as
    /// `smtp://[user:password@]host[:port]` (`?tls=required` for STARTTLS) or `smtps://…`.
    /// Unset: mail is written as .eml files under `<data-dir>/mail/`.
    #[arg(long, env = "SWITCHYARD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,
    /// The From of the host's mail (default: `Switchyard <no-reply@<public host>>`).
    #[arg(long, env = "SWITCHYARD_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Meta Graph API base URL.
    #[arg(
        long,
        env = "SWITCHYARD_META_GRAPH_URL",
        default_value = "https://graph.facebook.com"
    )]
    pub meta_graph_url: url::Url,
    /// Meta Graph API version.
    #[arg(long, env = "SWITCHYARD_META_GRAPH_VERSION", default_value = "v26.0")]
    pub meta_graph_version: String,
    /// Base URL of Facebook's OAuth dialog (the Meta redirect onboarding flow).
    #[arg(
        long,
        env = "SWITCHYARD_META_DIALOG_URL",
        default_value = "https://www.facebook.com"
    )]
    pub meta_dialog_url: url::Url,
    /// Twilio REST API base URL.
    #[arg(
        long,
        env = "SWITCHYARD_TWILIO_API_URL",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_api_url: url::Url,
    /// Largest webhook body accepted, in KiB (larger requests get 413 before any hashing).
    #[arg(long, env = "SWITCHYARD_INGRESS_MAX_BODY_KIB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub ingress_max_body_kib: u64,
    /// Job workers in this process (each runs one job at a time; they mostly wait on the
    /// database, whose grouped writes fill up with more of them).
    #[arg(long, env = "SWITCHYARD_WORKERS", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: u64,
    /// What a committed SQLite write survives: `crash` (kill -9; WAL with synchronous=NORMAL)
    /// or `power-loss` (also power loss / OS crash; synchronous=FULL, an fsync per commit).
    #[arg(long, env = "SWITCHYARD_SQLITE_DURABILITY", value_enum, default_value_t = crate::store::Durability::Crash)]
    pub sqlite_durability: crate::store::Durability,
    /// How long a worker's claim on a job holds, in seconds; a crashed worker's jobs run again
    /// after it. Must exceed SWITCHYARD_PLUGIN_WALL_MS so a running job never loses its lease.
    #[arg(long, env = "SWITCHYARD_JOB_LEASE_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub job_lease_secs: u64,
    /// Sends per second per connection (Meta's default per number is 80), shared by every host
    /// process on the same database.
    #[arg(long, env = "SWITCHYARD_SEND_RATE", default_value_t = 80,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub send_rate: u64,
    /// Largest inbound media download kept, in MiB (Meta's largest media is 16 MB).
    #[arg(long, env = "SWITCHYARD_MEDIA_MAX_MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub media_max_mib: u64,
    /// Seconds between credential checks of every live connection.
    #[arg(long, env = "SWITCHYARD_HEALTH_INTERVAL_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub health_interval_secs: u64,
    /// Seconds between passes that give conversations people left idle back to their policies
    /// (each tenant sets its own idle time).
    #[arg(long, env = "SWITCHYARD_HAND_BACK_EVERY_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub hand_back_every_secs: u64,
    /// Days before a token's expiry that its connection shows a warning.
    #[arg(long, env = "SWITCHYARD_TOKEN_WARN_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u64).range(0..=365))]
    pub token_warn_days: u64,
    /// Longest wait for a request's complete header block, in seconds, from the connection's
    /// start or its previous response (also closes idle keep-alive connections).
    #[arg(long, env = "SWITCHYARD_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub http_header_timeout_secs: u64,
    /// Longest wait between two chunks of a request body, in seconds.
    #[arg(long, env = "SWITCHYARD_HTTP_BODY_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub http_body_timeout_secs: u64,
    /// Longest a request may take to be answered, in seconds (then 503). Must exceed
    /// SWITCHYARD_PLUGIN_WALL_MS, since a request may wait for a plugin call.
    #[arg(long, env = "SWITCHYARD_HTTP_HANDLER_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_handler_timeout_secs: u64,
    /// Most HTTP connections open at once; at the cap the longest-idle one is closed to make
    /// room (one with a request in flight never is).
    #[arg(long, env = "SWITCHYARD_HTTP_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub http_max_connections: u64,
    /// Webhook requests per second one endpoint accepts (bursts of twice that; 0: no limit).
    /// Default 10,000: above Meta's highest per-number throughput (1,000 messages/s) times the
    /// up to four webhooks each message causes (Meta asks servers to take 3x outgoing plus 1x
    /// incoming traffic), and far above Twilio's per-sender WhatsApp throughput (80 MPS by
    /// default, 400 with an upgrade).
    #[arg(long, env = "SWITCHYARD_INGRESS_ENDPOINT_RATE", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub ingress_endpoint_rate: u32,
    /// Webhook requests per second one client address (an IPv6 /64) may send (bursts of twice
    /// that; 0: no limit). Behind a reverse proxy every request has the proxy's address: raise
    /// it or set 0 there and limit at the proxy.
    #[arg(long, env = "SWITCHYARD_INGRESS_CLIENT_RATE", default_value_t = 2_000,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub ingress_client_rate: u32,
    /// Refused webhook requests per endpoint per minute that leave a receipt (the rest are only
    /// counted and reported in a log line).
    #[arg(long, env = "SWITCHYARD_INGRESS_REFUSED_SAMPLE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub ingress_refused_sample: u32,
    /// Unfinished jobs (queued or running, every host on the database) past which webhooks are
    /// answered 503 with `Retry-After`, so that a flood is held by the providers' retries, not
    /// by this host's disk (0: no bound).
    #[arg(long, env = "SWITCHYARD_MAX_BACKLOG", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub max_backlog: u64,
    /// How often the job queue is counted for `SWITCHYARD_MAX_BACKLOG`, in ms.
    #[arg(long, env = "SWITCHYARD_BACKLOG_COUNT_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub backlog_count_ms: u64,
    /// Days a processed receipt keeps its body and headers (replay works until then); refused
    /// requests' receipts are deleted after as long.
    #[arg(long, env = "SWITCHYARD_RECEIPT_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub receipt_retention_days: u64,
    /// Serve on PostgreSQL even when the app role is a superuser, has BYPASSRLS or owns the
    /// tables (row-level security then does not isolate tenants; for single-role test set-ups).
    #[arg(long, env = "SWITCHYARD_INSECURE_DB_ROLE")]
    pub insecure_db_role: bool,
}

/// The vault's master keys.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Current master key: 32 bytes, base64, optionally `version:base64` (default version 1).
    #[arg(long, env = "SWITCHYARD_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<Secret>,
    /// Older master keys still accepted for reading, `version:base64`, comma-separated.
    #[arg(long, env = "SWITCHYARD_MASTER_KEYS_PREVIOUS", hide_env_values = true)]
    pub master_keys_previous: Option<Secret>,
    /// A file holding the master key (first line) and older versions (further lines).
    #[arg(long, env = "SWITCHYARD_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// Whether any key source is configured.
    pub fn is_set(&self) -> bool {
        self.master_key.is_some() || self.master_key_file.is_some()
    }

    /// Read the configured keys (`None` when none are configured).
    pub fn load(&self) -> Result<Option<MasterKeys>, ConfigError> {
        let bad = |variable: &'static str, e: &dyn std::fmt::Display| ConfigError {
            variable,
            reason: e.to_string(),
        };
        if let Some(current) = &self.master_key {
            let text = |s: &Secret| String::from_utf8_lossy(s.expose()).into_owned();
            let current = zeroize::Zeroizing::new(text(current));
            let previous = zeroize::Zeroizing::new(
                self.master_keys_previous
                    .as_ref()
                    .map(text)
                    .unwrap_or_default(),
            );
            return MasterKeys::parse(&current, &previous)
                .map(Some)
                .map_err(|e| bad("SWITCHYARD_MASTER_KEY", &e));
        }
        if let Some(path) = &self.master_key_file {
            return MasterKeys::from_file(path)
                .map(Some)
                .map_err(|e| bad("SWITCHYARD_MASTER_KEY_FILE", &e));
        }
        Ok(None)
    }
}

/// `switchyard vault …`.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Re-seal every data key under the current master-key version (online; run once after
    /// making a new key current and listing the old one in SWITCHYARD_MASTER_KEYS_PREVIOUS).
    Rotate {
        /// Database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// Keys.
        #[command(flatten)]
        keys: KeyArgs,
    },
}

/// `switchyard jobs …`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List dead-lettered jobs.
    Dead {
        /// Database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Queue a dead job again.
    Replay {
        /// Database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The job's id.
        id: String,
    },
}

/// `switchyard ledger …`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute every tenant's consent hash chain and name the first broken row.
    Verify {
        /// Database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `switchyard plugin …`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Embed a manifest into a component built for wasm32-wasip2, producing a loadable plugin.
    Pack {
        /// The component (`target/wasm32-wasip2/release/<name>.wasm`).
        component: PathBuf,
        /// Plugin name (lower-case letters, digits, `-`).
        #[arg(long)]
        name: String,
        /// Plugin version (semver).
        #[arg(long)]
        version: String,
        /// World it implements: `connector` or `reply-policy`.
        #[arg(long)]
        world: String,
        /// A host it may reach over HTTPS; repeat for several.
        #[arg(long = "egress-host")]
        egress: Vec<String>,
        /// One of the egress hosts that serves the provider's API and receives the connection's
        /// credentials; repeat for several (other egress hosts never see credentials).
        #[arg(long = "credential-host")]
        credentials: Vec<String>,
        /// A connector's settings and secrets as JSON (`{"settings": [...], "secrets": [...]}`,
        /// see docs/plugin-authors.md); without it the generic shape applies.
        #[arg(long)]
        connection: Option<PathBuf>,
        /// A 0.2.0-or-later connector's provider API base URL (https, on a credential host); the
        /// operator may point it elsewhere with `SWITCHYARD_API_URLS`.
        #[arg(long)]
        api_base_url: Option<String>,
        /// A connector's channel rules as JSON (`{"text_limit": 4096, ...}`, see
        /// docs/plugin-authors.md); without it WhatsApp's rules apply.
        #[arg(long)]
        channel: Option<PathBuf>,
        /// Where to write the packed plugin.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Load a packed plugin with the host's checks and print its manifest and signature.
    Inspect {
        /// The packed plugin.
        component: PathBuf,
    },
    /// Make a new plugin crate on the SDK that builds, packs and passes its own tests.
    New {
        /// Plugin (and crate) name: lower-case letters, digits and `-`.
        name: String,
        /// `connector` or `reply-policy`.
        #[arg(long, default_value = "connector")]
        world: String,
        /// Where to create it (default: `./<name>`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The switchyard-sdk crate (default: `plugins/sdk` of the checkout this binary was
        /// built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-wasip2 and pack it with the manifest its Cargo.toml
    /// declares in `[package.metadata.switchyard]`, then run the host's load checks on it.
    Build {
        /// The crate's Cargo.toml.
        #[arg(long, default_value = "Cargo.toml")]
        manifest_path: PathBuf,
        /// Where to write the packed plugin (default: `<name>.wasm` beside Cargo.toml).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Make an Ed25519 publisher key: the secret goes to `--out` (mode 0600), the public key
    /// (for `POST /api/v1/publisher-keys`) is printed.
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a packed plugin with a publisher key (the signature becomes its last section).
    Sign {
        /// The packed plugin.
        component: PathBuf,
        /// The secret key file written by `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed plugin.
        #[arg(long, short)]
        output: PathBuf,
    },
}

/// Validated configuration of `serve`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Extra plugin directory.
    pub plugin_dir: Option<PathBuf>,
    /// Largest uploaded plugin component, in bytes.
    pub plugin_max_bytes: usize,
    /// How often the plugin catalog is polled for other hosts' changes.
    pub plugin_poll: Duration,
    /// Only signed plugins from registered publisher keys load.
    pub require_signed: bool,
    /// Runtime limits.
    pub runtime: RuntimeConfig,
    /// Egress request timeout.
    pub egress_timeout: Duration,
    /// Egress response cap in bytes.
    pub egress_max_response_bytes: usize,
    /// Extra egress origins per plugin name (`SWITCHYARD_EGRESS_ORIGINS`; no credentials).
    pub egress_origins: HashMap<String, Vec<String>>,
    /// PostgreSQL owner URL (runs migrations).
    pub database_owner_url: Option<String>,
    /// Serve even on an unsafe PostgreSQL role.
    pub insecure_db_role: bool,
    /// The operator's bearer token (`None` until demo mode fills it in).
    pub operator_token: Option<Secret>,
    /// The metrics scraper's bearer token.
    pub metrics_token: Option<Secret>,
    /// Master-key sources.
    pub keys: KeyArgs,
    /// Public base URL (no trailing slash).
    pub public_url: String,
    /// SMTP URL of the mailer (may hold credentials), or none for .eml files.
    pub smtp_url: Option<Secret>,
    /// The From of the host's mail.
    pub mail_from: String,
    /// Provider API base URLs by connector name.
    pub provider_urls: HashMap<String, String>,
    /// Meta Graph API version.
    pub meta_graph_version: String,
    /// Facebook's OAuth dialog base URL (no trailing slash).
    pub meta_dialog_url: String,
    /// Largest webhook body, in bytes.
    pub ingress_max_body: usize,
    /// Job workers.
    pub workers: usize,
    /// A job claim's lease.
    pub job_lease: Duration,
    /// SQLite durability.
    pub durability: crate::store::Durability,
    /// Sends per second per connection.
    pub send_rate: u32,
    /// API requests of one tenant running a plugin call at once.
    pub api_plugin_calls_per_tenant: u32,
    /// Largest inbound media download kept, in bytes.
    pub media_max_bytes: usize,
    /// Time between credential checks of every live connection.
    pub health_interval: Duration,
    /// Between idle hand-back passes.
    pub hand_back_every: Duration,
    /// How long before a token's expiry its connection shows a warning.
    pub token_warn: Duration,
    /// True when the database URL was not given (the default SQLite file): demo mode may apply.
    pub default_database: bool,
    /// HTTP server limits.
    pub server: crate::http::server::ServerLimits,
    /// Webhook ingress limits.
    pub ingress: crate::ingress::guard::IngressLimits,
    /// How long a processed receipt keeps its body.
    pub receipt_retention: Duration,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable (or flag) at fault.
    pub variable: &'static str,
    /// Why.
    pub reason: String,
}

impl Config {
    /// The exact origins the operator configured for `plugin`: its provider base URL (its API
    /// origin, credentials attach) and its `SWITCHYARD_EGRESS_ORIGINS` entries (no credentials).
    pub fn origins(&self, plugin: &str) -> crate::runtime::Origins {
        let api: Vec<String> = self
            .provider_urls
            .get(plugin)
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| vec![u.origin().ascii_serialization()])
            .unwrap_or_default();
        let extra = self
            .egress_origins
            .get(plugin)
            .map(|list| list.iter().filter(|o| !api.contains(o)).cloned().collect())
            .unwrap_or_default();
        crate::runtime::Origins { api, extra }
    }
}

impl DatabaseArgs {
    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn url(&self) -> String {
        match &self.database_url {
            // A SQLite file the operator names is created when missing, like the default one
            // (sqlx opens read-write without creating unless `mode=rwc` says so).
            Some(u)
                if u.starts_with("sqlite:") && !u.contains("mode=") && !u.contains(":memory:") =>
            {
                format!("{u}{}mode=rwc", if u.contains('?') { '&' } else { '?' })
            }
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("switchyard.db").display()
            ),
        }
    }
}

impl ServeArgs {
    /// Validate the flags into a [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mut egress_origins: HashMap<String, Vec<String>> = HashMap::new();
        for entry in self.egress_origins.iter().filter(|e| !e.trim().is_empty()) {
            let bad = |reason: &str| ConfigError {
                variable: "SWITCHYARD_EGRESS_ORIGINS",
                reason: format!("{entry:?}: {reason}"),
            };
            let (plugin, origin) = entry
                .trim()
                .split_once('=')
                .ok_or_else(|| bad("expected plugin=scheme://host:port"))?;
            let url = url::Url::parse(origin).map_err(|e| bad(&e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(bad("expected an http(s) origin"));
            }
            egress_origins
                .entry(plugin.to_string())
                .or_default()
                .push(url.origin().ascii_serialization());
        }
        let database_url = self.database.url();
        if crate::store::backend_of(&database_url).is_none() {
            return Err(ConfigError {
                variable: "SWITCHYARD_DATABASE_URL",
                reason: "expected a sqlite:// or postgres:// URL".into(),
            });
        }
        if let Some(owner) = &self.database.database_owner_url
            && crate::store::backend_of(owner) != Some(crate::store::Backend::Postgres)
        {
            return Err(ConfigError {
                variable: "SWITCHYARD_DATABASE_OWNER_URL",
                reason: "only PostgreSQL has a separate owner (expected postgres://)".into(),
            });
        }
        let public_url = match &self.public_url {
            Some(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                u.as_str().trim_end_matches('/').to_string()
            }
            Some(_) => {
                return Err(ConfigError {
                    variable: "SWITCHYARD_PUBLIC_URL",
                    reason: "expected an http(s) URL".into(),
                });
            }
            None => format!("http://{}", self.listen),
        };
        // The configured provider base URLs are their connector's API origins (A6); see
        // `Config::origins`.
        let mut provider_urls = HashMap::new();
        for (plugin, url) in [
            ("meta-cloud", &self.meta_graph_url),
            ("twilio", &self.twilio_api_url),
        ] {
            let base = url.as_str().trim_end_matches('/').to_string();
            provider_urls.insert(plugin.to_string(), base);
        }
        for entry in self.api_urls.iter().filter(|e| !e.trim().is_empty()) {
            let bad = |reason: &str| ConfigError {
                variable: "SWITCHYARD_API_URLS",
                reason: format!("{entry:?}: {reason}"),
            };
            let (plugin, base) = entry
                .trim()
                .split_once('=')
                .ok_or_else(|| bad("expected connector=http(s)://host[:port][/path]"))?;
            let url = url::Url::parse(base).map_err(|e| bad(&e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.host_str().is_none()
                || url.query().is_some()
                || !url.username().is_empty()
            {
                return Err(bad("expected an http(s) URL without query or user"));
            }
            provider_urls.insert(
                plugin.to_string(),
                url.as_str().trim_end_matches('/').to_string(),
            );
        }
        // The version is one Graph URL path segment: `v26.0`, never anything that could add one.
        let version_ok = self
            .meta_graph_version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(major, minor)| {
                [major, minor]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
            });
        if !version_ok {
            return Err(ConfigError {
                variable: "SWITCHYARD_META_GRAPH_VERSION",
                reason: "expected a Graph API version such as v26.0".into(),
            });
        }
        if !matches!(self.meta_dialog_url.scheme(), "http" | "https") {
            return Err(ConfigError {
                variable: "SWITCHYARD_META_DIALOG_URL",
                reason: "expected an http(s) URL".into(),
            });
        }
        self.keys.load()?;
        if self.job_lease_secs * 1000 <= self.plugin_wall_ms {
            return Err(ConfigError {
                variable: "SWITCHYARD_JOB_LEASE_SECS",
                reason: format!(
                    "{} s does not outlast a plugin call (SWITCHYARD_PLUGIN_WALL_MS = {} ms): a \
                     job still running would be taken over",
                    self.job_lease_secs, self.plugin_wall_ms
                ),
            });
        }
        if self.http_handler_timeout_secs * 1000 <= self.plugin_wall_ms {
            return Err(ConfigError {
                variable: "SWITCHYARD_HTTP_HANDLER_TIMEOUT_SECS",
                reason: format!(
                    "{} s does not outlast a plugin call (SWITCHYARD_PLUGIN_WALL_MS = {} ms)",
                    self.http_handler_timeout_secs, self.plugin_wall_ms
                ),
            });
        }
        Ok(Config {
            server: crate::http::server::ServerLimits {
                header_timeout: Duration::from_secs(self.http_header_timeout_secs),
                body_timeout: Duration::from_secs(self.http_body_timeout_secs),
                handler_timeout: Duration::from_secs(self.http_handler_timeout_secs),
                max_connections: self.http_max_connections as usize,
            },
            ingress: crate::ingress::guard::IngressLimits {
                endpoint_rate: self.ingress_endpoint_rate,
                client_rate: self.ingress_client_rate,
                refused_sample: self.ingress_refused_sample,
                max_backlog: self.max_backlog,
                backlog_count_every: Duration::from_millis(self.backlog_count_ms),
            },
            receipt_retention: Duration::from_secs(self.receipt_retention_days * 86_400),
            database_owner_url: self.database.database_owner_url.clone(),
            insecure_db_role: self.insecure_db_role,
            operator_token: self.operator_token,
            metrics_token: self.metrics_token,
            keys: self.keys,
            mail_from: self.mail_from.unwrap_or_else(|| {
                let host = url::Url::parse(&public_url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .filter(|h| h.contains('.') && h.parse::<std::net::IpAddr>().is_err())
                    .filter(|h| !h.starts_with('['))
                    .unwrap_or_else(|| "localhost.localdomain".into());
                format!("Switchyard <no-reply@{host}>")
            }),
            smtp_url: self.smtp_url,
            public_url,
            provider_urls,
            meta_graph_version: self.meta_graph_version,
            meta_dialog_url: self
                .meta_dialog_url
                .as_str()
                .trim_end_matches('/')
                .to_string(),
            default_database: self.database.database_url.is_none(),
            ingress_max_body: (self.ingress_max_body_kib << 10) as usize,
            workers: self.workers as usize,
            job_lease: Duration::from_secs(self.job_lease_secs),
            durability: self.sqlite_durability,
            send_rate: self.send_rate as u32,
            api_plugin_calls_per_tenant: self.api_plugin_calls_per_tenant,
            media_max_bytes: (self.media_max_mib << 20) as usize,
            health_interval: Duration::from_secs(self.health_interval_secs),
            hand_back_every: Duration::from_secs(self.hand_back_every_secs),
            token_warn: Duration::from_secs(self.token_warn_days * 86_400),
            listen: self.listen,
            runtime: RuntimeConfig {
                memory_bytes: (self.plugin_memory_mib << 20) as usize,
                cpu_limit: Duration::from_millis(self.plugin_cpu_ms),
                wall_limit: Duration::from_millis(self.plugin_wall_ms),
                max_instances: self.plugin_max_instances,
                reserved_for_verify: self.plugin_reserved_for_verify,
                cache_dir: Some(self.database.data_dir.join("cache")),
                threads: self.plugin_threads as usize,
                ..RuntimeConfig::default()
            },
            data_dir: self.database.data_dir,
            database_url,
            plugin_dir: self.plugin_dir,
            plugin_max_bytes: (self.plugin_max_kib << 10) as usize,
            plugin_poll: Duration::from_millis(self.plugin_poll_ms),
            require_signed: self.require_signed,
            egress_timeout: Duration::from_millis(self.egress_timeout_ms),
            egress_max_response_bytes: self.egress_max_response_mib << 20,
            egress_origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["switchyard", "serve"];
        full.extend_from_slice(args);
        let cli = Cli::try_parse_from(full).expect("flags parse");
        let Command::Serve(serve) = cli.command else {
            panic!("not serve")
        };
        serve.into_config()
    }

    #[test]
    fn defaults_are_sane() {
        let c = parse(&["--data-dir", "/tmp/sy"]).expect("config");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite:///tmp/sy/switchyard.db?mode=rwc");
        assert_eq!(c.runtime.memory_bytes, 64 << 20);
        assert_eq!(c.runtime.cpu_limit, Duration::from_millis(100));
    }

    #[test]
    fn a_named_sqlite_file_is_created_when_missing() {
        for (given, used) in [
            (
                "sqlite:///srv/sy/switchyard.db",
                "sqlite:///srv/sy/switchyard.db?mode=rwc",
            ),
            (
                "sqlite:///srv/sy/s.db?cache=shared",
                "sqlite:///srv/sy/s.db?cache=shared&mode=rwc",
            ),
            (
                "sqlite:///srv/sy/s.db?mode=ro",
                "sqlite:///srv/sy/s.db?mode=ro",
            ),
        ] {
            let c = parse(&["--database-url", given]).expect("config");
            assert_eq!(c.database_url, used);
        }
    }

    #[test]
    fn api_urls_point_any_connector_at_its_provider() {
        let c = parse(&[
            "--api-urls",
            "telegram=http://127.0.0.1:4011/,twilio=https://twilio.example/base",
        ])
        .expect("config");
        assert_eq!(c.provider_urls["telegram"], "http://127.0.0.1:4011");
        assert_eq!(c.origins("telegram").api, vec!["http://127.0.0.1:4011"]);
        // It overrides the dedicated flag's default.
        assert_eq!(c.provider_urls["twilio"], "https://twilio.example/base");
        for bad in [
            "telegram",
            "telegram=ftp://x",
            "telegram=http://u@x",
            "telegram=http://x/?a=1",
        ] {
            assert!(parse(&["--api-urls", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn egress_origins_are_parsed_per_plugin() {
        let c = parse(&[
            "--egress-origins",
            "chaos=http://127.0.0.1:4010/x,meta-cloud=https://graph.example",
        ])
        .expect("config");
        assert_eq!(c.egress_origins["chaos"], vec!["http://127.0.0.1:4010"]);
        assert_eq!(c.origins("chaos").extra, vec!["http://127.0.0.1:4010"]);
        assert!(c.origins("chaos").api.is_empty());
        // The configured provider base URL is the connector's API origin (credentials go
        // there); the extra origin is reachable but gets none.
        let meta = c.origins("meta-cloud");
        assert_eq!(meta.api, vec!["https://graph.facebook.com"]);
        assert_eq!(meta.extra, vec!["https://graph.example"]);
        let err = parse(&["--egress-origins", "chaos"]).expect_err("no =");
        assert_eq!(err.variable, "SWITCHYARD_EGRESS_ORIGINS");
    }

    #[test]
    fn a_job_lease_must_outlast_a_plugin_call() {
        let err = parse(&["--job-lease-secs", "2", "--plugin-wall-ms", "2000"]).expect_err("short");
        assert_eq!(err.variable, "SWITCHYARD_JOB_LEASE_SECS");
        let c = parse(&["--job-lease-secs", "3", "--plugin-wall-ms", "2000"]).expect("config");
        assert_eq!(c.job_lease, Duration::from_secs(3));
        let defaults = parse(&[]).expect("defaults");
        assert_eq!(defaults.send_rate, 80);
        assert_eq!(defaults.media_max_bytes, 16 << 20);
        assert_eq!(defaults.health_interval, Duration::from_secs(3600));
        assert_eq!(defaults.token_warn, Duration::from_secs(7 * 86_400));
        assert_eq!(defaults.receipt_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(defaults.server.header_timeout, Duration::from_secs(10));
        assert_eq!(defaults.server.max_connections, 1024);
        assert_eq!(defaults.ingress.endpoint_rate, 10_000);
        let err = parse(&["--http-handler-timeout-secs", "30"]).expect_err("short");
        assert_eq!(err.variable, "SWITCHYARD_HTTP_HANDLER_TIMEOUT_SECS");
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        let r = Cli::try_parse_from(["switchyard", "serve", "--plugin-memory-mib", "0"]);
        assert!(r.is_err());
    }
}
