//! The sandboxed plugin runtime: one wasmtime engine, plugins compiled once and linked once, and a
//! fresh instance for every call, under a memory cap and a CPU deadline.
//!
//! Owns: the engine and its pooling allocator, the epoch ticker, the compiled-code cache, plugin
//! loading and validation, and the host side of every WIT interface (one module each). It does
//! not touch the database or HTTP ingress: callers hand it requests and get typed results back.

mod bindings;
mod cache;
pub mod cargo_plugin;
mod clock;
mod egress;
pub mod error;
mod log;
pub mod manifest;
mod manifest_section;
mod plugin;
mod secrets;
pub mod signature;
mod since_v0_1_0;
mod since_v0_2_0;
mod state;
mod wasi;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::Digest;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use bindings::types;
pub use cache::CacheKey;
pub(crate) use cache::create_private_dir;
pub use error::{CallError, LoadError};
pub use manifest::{Interface, Manifest, World};
pub use plugin::{ConnectorPlugin, Plugin, PolicyPlugin};
use state::CallState;

use crate::egress::{EgressClient, Grants};
use crate::vault::SecretSource;

/// Limits and sizes of the runtime; every field has a sane default.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Linear-memory cap per instance, in bytes.
    pub memory_bytes: usize,
    /// Table-element cap per instance.
    pub table_elements: usize,
    /// CPU deadline per call (time spent running plugin code, not waiting on egress).
    pub cpu_limit: Duration,
    /// Wall-clock limit per call, egress waits included.
    pub wall_limit: Duration,
    /// How many instances may exist at once (the pool's size).
    pub max_instances: u32,
    /// Instances only webhook verification (`verify`) may use: every other call shares the
    /// rest, so jobs and API-triggered calls can never fill the pool and make ingress 503
    /// (`serve` reserves `SWITCHYARD_PLUGIN_RESERVED_FOR_VERIFY`; a bare runtime none).
    pub reserved_for_verify: u32,
    /// How often the epoch advances; the CPU deadline is checked at this granularity.
    pub epoch_tick: Duration,
    /// Where compiled code is cached; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// The key that authenticates cached code; without one nothing is cached.
    pub cache_key: Option<CacheKey>,
    /// Threads that run plugin code (their own, apart from the threads serving HTTP);
    /// 0 = one per CPU.
    pub threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            cpu_limit: Duration::from_millis(100),
            wall_limit: Duration::from_secs(30),
            max_instances: 256,
            reserved_for_verify: 0,
            epoch_tick: Duration::from_millis(5),
            cache_dir: None,
            cache_key: None,
            threads: 0,
        }
    }
}

/// Exact origins (`scheme://host:port`) the operator configured for one plugin: reachable at any
/// address, where declared hosts must resolve to public ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    /// The provider API's origin (its configured base URL): credentials attach here.
    pub api: Vec<String>,
    /// Further origins (`SWITCHYARD_EGRESS_ORIGINS`): reachable, never sent credentials.
    pub extra: Vec<String>,
}

impl From<Vec<String>> for Origins {
    /// API origins only.
    fn from(api: Vec<String>) -> Self {
        Origins {
            api,
            extra: Vec::new(),
        }
    }
}

/// What plugins reach through the host: the secret source and the egress client.
pub struct Services {
    /// Where secret values come from.
    pub secrets: Arc<dyn SecretSource>,
    /// The HTTP client for plugin traffic.
    pub egress: EgressClient,
}

/// The runtime: create one per process.
pub struct Runtime {
    engine: Engine,
    config: RuntimeConfig,
    /// One linker per world and interface version.
    linkers: Linkers,
    services: Arc<Services>,
    ticker: Arc<AtomicBool>,
    /// The plugin threads; `None` once dropped.
    threads: Option<tokio::runtime::Runtime>,
    threads_handle: tokio::runtime::Handle,
    general: Arc<tokio::sync::Semaphore>,
}

/// Everything a call needs to know about its plugin; shared by all its calls.
pub(crate) struct PluginShared {
    pub(crate) manifest: Manifest,
    /// The interface version it was built against.
    pub(crate) interface: Interface,
    /// The secrets it declares (the only ones `secrets` and `egress` give it, and where).
    pub(crate) declared_secrets: Vec<manifest::SecretSpec>,
    pub(crate) label: String,
    pub(crate) sha256: String,
    pub(crate) grants: Grants,
    pub(crate) limits: RuntimeConfig,
    pub(crate) services: Arc<Services>,
    pub(crate) engine: Engine,
    /// Where its calls run.
    pub(crate) threads: tokio::runtime::Handle,
    /// Permits for calls other than `verify` (the pool minus the share reserved for it).
    pub(crate) general: Arc<tokio::sync::Semaphore>,
    /// Its calls and faults so far.
    pub(crate) stats: CallStats,
}

/// How one loaded plugin's calls ended, counted since it was loaded.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: std::sync::atomic::AtomicU64,
    faults: std::sync::atomic::AtomicU64,
}

impl CallStats {
    /// Count a finished call; `fault` when the plugin itself failed (trap, CPU deadline,
    /// memory cap), not when a provider was slow or the pool was full.
    pub(crate) fn record(&self, fault: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if fault {
            self.faults.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(calls, faults)` so far.
    pub fn read(&self) -> (u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.faults.load(Ordering::Relaxed),
        )
    }
}

thread_local! {
    /// Set on the threads of the plugin runtime.
    static ON_PLUGIN_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is one of the plugin runtime's.
fn on_plugin_thread() -> bool {
    ON_PLUGIN_THREAD.get()
}

impl Runtime {
    /// The plugin threads' runtime: work that calls plugins all the time (the job workers)
    /// runs here, so its calls need no hop from another runtime.
    pub fn plugin_threads(&self) -> &tokio::runtime::Handle {
        &self.threads_handle
    }

    /// Build the engine and linkers and start the epoch ticker.
    pub fn new(config: RuntimeConfig, services: Services) -> anyhow::Result<Self> {
        let engine = build_engine(&config)?;
        let linkers = Linkers::new(&engine)?;
        let ticker = Arc::new(AtomicBool::new(true));
        {
            let engine = engine.clone();
            let running = ticker.clone();
            let tick = config.epoch_tick;
            std::thread::Builder::new()
                .name("switchyard-epoch".into())
                .spawn(move || {
                    while running.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })?;
        }
        // Guests run on threads of their own: a CPU-heavy guest competes with HTTP for the CPU
        // under the OS scheduler, never by occupying the workers that answer requests.
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let threads = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .on_thread_start(|| ON_PLUGIN_THREAD.set(true))
            .thread_name("switchyard-plugin")
            .enable_all()
            .build()?;
        let reserved = config
            .reserved_for_verify
            .min(config.max_instances.saturating_sub(1));
        let general = Arc::new(tokio::sync::Semaphore::new(
            (config.max_instances - reserved) as usize,
        ));
        Ok(Runtime {
            engine,
            general,
            config,
            linkers,
            services: Arc::new(services),
            ticker,
            threads_handle: threads.handle().clone(),
            threads: Some(threads),
        })
    }

    /// The limits this runtime enforces.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Load a packed component: read its manifest, compile (or load cached code), check that
    /// it implements the world it names and imports nothing else, and link it once.
    ///
    /// `origins` are the exact origins the operator configured for it (see [`Origins`]).
    pub fn load(&self, bytes: &[u8], origins: impl Into<Origins>) -> Result<Plugin, LoadError> {
        self.load_granted(bytes, origins, None)
    }

    /// [`Runtime::load`], reaching only the requested egress hosts in `granted` (`None`: every
    /// host the manifest requests).
    pub fn load_granted(
        &self,
        bytes: &[u8],
        origins: impl Into<Origins>,
        granted: Option<&[String]>,
    ) -> Result<Plugin, LoadError> {
        let origins = origins.into();
        let manifest = Manifest::from_component(bytes)?;
        let label = format!("{}@{}", manifest.name, manifest.version);
        let interface = manifest.interface_version()?;
        let declared_secrets = match manifest.world {
            World::Connector => {
                manifest
                    .connection
                    .clone()
                    .unwrap_or_else(manifest::ConnectionShape::generic)
                    .secrets
            }
            World::ReplyPolicy => Vec::new(),
        };
        let sha256 = hex::encode(sha2::Sha256::digest(bytes));
        let component = cache::compile(
            &self.engine,
            bytes,
            &sha256,
            self.config
                .cache_dir
                .as_deref()
                .zip(self.config.cache_key.as_ref()),
        )
        .map_err(|reason| LoadError::Compile {
            plugin: label.clone(),
            reason,
        })?;
        let allowed = |hosts: &[String]| -> Vec<String> {
            hosts
                .iter()
                .filter(|h| granted.is_none_or(|g| g.contains(h)))
                .cloned()
                .collect()
        };
        let grants = Grants {
            https_hosts: allowed(&manifest.egress),
            origins: origins.api,
            extra_origins: origins.extra,
            credential_hosts: allowed(&manifest.credentials),
        };
        let world = manifest.world;
        let shared = Arc::new(PluginShared {
            manifest,
            interface,
            declared_secrets,
            label,
            sha256,
            grants,
            limits: self.config.clone(),
            services: self.services.clone(),
            engine: self.engine.clone(),
            threads: self.threads_handle.clone(),
            general: self.general.clone(),
            stats: CallStats::default(),
        });
        let linker = self.linkers.get(world, interface);
        let sha256 = shared.sha256.clone();
        let linked = plugin::link(&self.engine, linker, &component, shared);
        if linked.is_err()
            && let Some(dir) = self.config.cache_dir.as_deref()
        {
            cache::forget(&self.engine, &sha256, dir);
        }
        linked
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
        // Without blocking: the runtime may be dropped inside an async context.
        if let Some(threads) = self.threads.take() {
            threads.shutdown_background();
        }
    }
}

/// A linker for each world of each supported interface version, WASI included.
struct Linkers {
    connector_v0_1_0: Linker<CallState>,
    policy_v0_1_0: Linker<CallState>,
    connector_v0_2_0: Linker<CallState>,
    policy_v0_2_0: Linker<CallState>,
    connector_v0_3_0: Linker<CallState>,
    policy_v0_3_0: Linker<CallState>,
}

impl Linkers {
    fn new(engine: &Engine) -> anyhow::Result<Self> {
        use bindings::{v0_1_0, v0_2_0, v0_3_0};
        type Own = HasSelf<CallState>;
        let linker = |add: &dyn Fn(&mut Linker<CallState>) -> wasmtime::Result<()>| {
            let mut l = Linker::new(engine);
            add(&mut l)?;
            wasi::add_to_linker(&mut l)?;
            anyhow::Ok(l)
        };
        Ok(Linkers {
            connector_v0_1_0: linker(&|l| {
                v0_1_0::connector::Connector::add_to_linker::<CallState, Own>(l, |s| s)
            })?,
            policy_v0_1_0: linker(&|l| {
                v0_1_0::reply_policy::ReplyPolicy::add_to_linker::<CallState, Own>(l, |s| s)
            })?,
            connector_v0_2_0: linker(&|l| {
                v0_2_0::connector::Connector::add_to_linker::<CallState, Own>(l, |s| s)
            })?,
            policy_v0_2_0: linker(&|l| {
                v0_2_0::reply_policy::ReplyPolicy::add_to_linker::<CallState, Own>(l, |s| s)
            })?,
            connector_v0_3_0: linker(&|l| {
                v0_3_0::connector::Connector::add_to_linker::<CallState, Own>(l, |s| s)
            })?,
            policy_v0_3_0: linker(&|l| {
                v0_3_0::reply_policy::ReplyPolicy::add_to_linker::<CallState, Own>(l, |s| s)
            })?,
        })
    }

    fn get(&self, world: World, interface: Interface) -> &Linker<CallState> {
        match (world, interface) {
            (World::Connector, Interface::V0_1_0) => &self.connector_v0_1_0,
            (World::ReplyPolicy, Interface::V0_1_0) => &self.policy_v0_1_0,
            (World::Connector, Interface::V0_2_0) => &self.connector_v0_2_0,
            (World::ReplyPolicy, Interface::V0_2_0) => &self.policy_v0_2_0,
            (World::Connector, Interface::V0_3_0) => &self.connector_v0_3_0,
            (World::ReplyPolicy, Interface::V0_3_0) => &self.policy_v0_3_0,
        }
    }
}

fn build_engine(config: &RuntimeConfig) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    let n = config.max_instances;
    pool.total_component_instances(n);
    // A Rust component holds a few core instances (its module plus adapter shims).
    pool.total_core_instances(n * 4);
    pool.total_memories(n);
    pool.total_tables(n * 4);
    pool.total_stacks(n);
    pool.max_memory_size(config.memory_bytes);
    pool.max_memories_per_module(1);
    pool.max_tables_per_module(4);
    pool.table_elements(config.table_elements);
    pool.max_component_instance_size(1 << 20);
    pool.max_core_instance_size(1 << 20);
    pool.max_core_instances_per_component(16);
    pool.max_memories_per_component(4);
    pool.max_tables_per_component(16);
    // Zero the first pages of a freed instance's memory, tables and stack in place instead of
    // returning them to the kernel: no page faults on the next call and no TLB-shootdown IPIs
    // (measured: these were a tenth of ingress CPU under load). The contents are still wiped.
    pool.linear_memory_keep_resident(1 << 20);
    pool.table_keep_resident(64 << 10);
    pool.async_stack_keep_resident(128 << 10);
    // Of that, reset only the pages the guest touched (Linux's PAGEMAP_SCAN, 6.7 and later;
    // elsewhere the whole kept region is zeroed): a parse dirties a few pages, not a MiB.
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    // Pages past the kept region go back to the kernel in batches: one IPI for many slots.
    pool.decommit_batch_size(32);

    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Plugins run in a fiber; 512 KiB is ample for serde-heavy parsing.
    cfg.async_stack_size(512 << 10);
    cfg.max_wasm_stack(256 << 10);
    Ok(Engine::new(&cfg)?)
}
