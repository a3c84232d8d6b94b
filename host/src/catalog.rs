//! The plugin catalog: every plugin version a host can run (bundled in the binary, read from
//! the plugin directory at start, or uploaded into the database), which one a call runs (a pin
//! of its endpoint or tenant, else the name's promoted version), and keeping each host's loaded
//! set in step with the database without a restart: every change bumps a generation counter
//! that each host polls, then loads what it lacks (compiled once per host through the on-disk
//! cache). A call holds its plugin, so calls in flight finish on the version they started.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::runtime::signature::{self, PublicKey, SignatureError};
use crate::runtime::{
    ConnectorPlugin, LoadError, Manifest, Origins, Plugin, PolicyPlugin, Runtime, World,
};
use crate::store::{
    FailurePolicy, Mode, NewUpload, PinRow, PluginRow, Promotion, PublisherKey, Store, StoreError,
    now_ms,
};
use crate::supervise::{Ended, every, supervise};
use crate::tenancy::Scope;

/// Who publishes a plugin: the namespace its names must live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publisher {
    /// The plugins built into the binary.
    Switchyard,
    /// The operator: any name no other publisher holds.
    Operator,
    /// A partner: names `<namespace>-…` only.
    Partner {
        /// `par_…`.
        id: String,
        /// Its namespace, when the operator gave it one.
        namespace: Option<String>,
    },
}

impl Publisher {
    /// As stored: `switchyard`, `operator` or `partner:<id>`.
    pub fn as_stored(&self) -> String {
        match self {
            Publisher::Switchyard => "switchyard".into(),
            Publisher::Operator => "operator".into(),
            Publisher::Partner { id, .. } => format!("partner:{id}"),
        }
    }
}

/// What pins a call's plugin version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinKind {
    /// A connector endpoint.
    Endpoint,
    /// A tenant's reply policy.
    Tenant,
}

impl PinKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PinKind::Endpoint => "endpoint",
            PinKind::Tenant => "tenant",
        }
    }

    fn parse(s: &str) -> Option<PinKind> {
        match s {
            "endpoint" => Some(PinKind::Endpoint),
            "tenant" => Some(PinKind::Tenant),
            _ => None,
        }
    }
}

/// Why an upload, promotion, pin or deletion was refused; each names the failed check.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Larger than `SWITCHYARD_PLUGIN_MAX_BYTES`.
    #[error("the component is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A core WebAssembly module, or not WebAssembly at all.
    #[error("{0}")]
    NotAComponent(&'static str),
    /// Loading failed (manifest, compile, world, imports).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The name is outside the publisher's namespace or held by another publisher.
    #[error("{0}")]
    Namespace(String),
    /// This name and version exist with other bytes.
    #[error("{name} {version} already exists with other bytes; publish a new version")]
    VersionExists {
        /// Name.
        name: String,
        /// Version.
        version: String,
    },
    /// No such plugin or version (for this caller).
    #[error("{0}")]
    NotFound(String),
    /// The version is in use: pinned, promoted, or not an upload.
    #[error("{0}")]
    InUse(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Compiling on a blocking thread failed to run.
    #[error("the compile task failed: {0}")]
    Task(String),
    /// The component carries a signature that does not verify (always refused).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// `SWITCHYARD_REQUIRE_SIGNED` is on and no trusted publisher key signed it.
    #[error("{0}")]
    Unsigned(String),
    /// A grant names a host the version's manifest does not request.
    #[error("{0}")]
    NotRequested(String),
    /// A pin or promotion names a version this host does not have loaded.
    #[error("{0}")]
    UnknownVersion(String),
    /// The publisher keeps as many uploaded versions as it may.
    #[error("{0}")]
    Quota(String),
    /// Uploads already being checked on this host are at their limit.
    #[error("{0}")]
    Busy(String),
}

impl CatalogError {
    /// The stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            CatalogError::TooLarge { .. } => "plugin_too_large",
            CatalogError::NotAComponent(_) => "not_a_component",
            CatalogError::Load(LoadError::Manifest(_)) => "invalid_manifest",
            CatalogError::Load(LoadError::Compile { .. }) => "does_not_compile",
            CatalogError::Load(LoadError::WrongWorld { .. }) => "wrong_world",
            CatalogError::Load(LoadError::ForbiddenImport { .. }) => "forbidden_import",
            CatalogError::Load(_) => "invalid_plugin",
            CatalogError::Namespace(_) => "namespace_forbidden",
            CatalogError::VersionExists { .. } => "version_exists",
            CatalogError::NotFound(_) => "not_found",
            CatalogError::InUse(_) => "version_in_use",
            CatalogError::Signature(_) => "bad_signature",
            CatalogError::Unsigned(_) => "signature_required",
            CatalogError::NotRequested(_) => "host_not_requested",
            CatalogError::UnknownVersion(_) => "unknown_version",
            CatalogError::Quota(_) => "upload_quota",
            CatalogError::Busy(_) => "too_many_uploads",
            CatalogError::Store(_) | CatalogError::Task(_) => "internal",
        }
    }
}

/// One loaded version and where it came from.
#[derive(Clone)]
struct Loaded {
    plugin: Plugin,
    /// From this host's binary or plugin directory (not the database).
    local: bool,
    /// The egress hosts it was loaded with (`None`: every requested host).
    granted: Option<Vec<String>>,
}

/// What the host runs, as of one catalog generation.
#[derive(Default)]
struct Snapshot {
    /// The generation this snapshot reflects (`-1` before the first load).
    generation: i64,
    /// name → version → plugin.
    versions: HashMap<String, BTreeMap<String, Loaded>>,
    /// Promotions from the database: name → promotion.
    promoted: HashMap<String, Promotion>,
    /// (kind, target, plugin) → pinned version.
    pins: Pins,
    /// Every row of the catalog, for listing.
    rows: Vec<PluginRow>,
    /// Uploaded versions this host could not load: sha256 → why.
    failures: HashMap<String, String>,
    /// Publisher keys the operator registered (revoked ones included).
    keys: Vec<PublisherKey>,
    /// Partners' namespaces: partner id → namespace.
    namespaces: HashMap<String, String>,
    /// Egress hosts the operator granted: (name, version) → hosts.
    grants: HashMap<(String, String), Vec<String>>,
    /// Names' own failure policies.
    policies: HashMap<String, FailurePolicy>,
}

impl Snapshot {
    /// This host's own (bundled or directory) version of `name`.
    fn local_version(&self, name: &str) -> Option<&str> {
        self.versions
            .get(name)?
            .iter()
            .find(|(_, l)| l.local)
            .map(|(v, _)| v.as_str())
    }

    /// The version `name`'s unpinned calls run: the promoted one, else this host's own.
    fn promoted_version(&self, name: &str) -> Option<&str> {
        match self.promoted.get(name) {
            Some(p) => Some(p.version.as_str()),
            None => self.local_version(name),
        }
    }
}

/// Pinned versions by kind, target and plugin name, looked up without allocating (every call
/// resolves its plugin here).
#[derive(Default)]
struct Pins {
    endpoint: HashMap<String, HashMap<String, String>>,
    tenant: HashMap<String, HashMap<String, String>>,
}

impl Pins {
    fn of(&self, kind: PinKind) -> &HashMap<String, HashMap<String, String>> {
        match kind {
            PinKind::Endpoint => &self.endpoint,
            PinKind::Tenant => &self.tenant,
        }
    }

    fn get(&self, kind: PinKind, target: &str, plugin: &str) -> Option<&str> {
        self.of(kind).get(target)?.get(plugin).map(String::as_str)
    }

    /// How many endpoints and tenants pin `plugin` at `version`.
    fn count(&self, plugin: &str, version: &str) -> usize {
        [&self.endpoint, &self.tenant]
            .iter()
            .flat_map(|m| m.values())
            .filter(|by| by.get(plugin).is_some_and(|v| v == version))
            .count()
    }

    fn from_rows(rows: Vec<PinRow>) -> Pins {
        let mut pins = Pins::default();
        for p in rows {
            let map = match PinKind::parse(&p.kind) {
                Some(PinKind::Endpoint) => &mut pins.endpoint,
                Some(PinKind::Tenant) => &mut pins.tenant,
                None => continue,
            };
            map.entry(p.target).or_default().insert(p.plugin, p.version);
        }
        pins
    }
}

/// Recent call outcomes of one promoted version, as one host saw them.
#[derive(Default)]
struct Watch {
    /// The plugin's `(calls, faults)` at the last look.
    last: (u64, u64),
    /// `(when, calls, faults)` since each earlier look, newest last.
    samples: std::collections::VecDeque<(std::time::Instant, u64, u64)>,
}

impl Watch {
    /// Add what happened since the last look; `(calls, faults)` within `window`.
    fn observe(&mut self, now: (u64, u64), window: Duration) -> (u64, u64) {
        let at = std::time::Instant::now();
        let delta = (
            now.0.saturating_sub(self.last.0),
            now.1.saturating_sub(self.last.1),
        );
        self.last = now;
        self.samples.push_back((at, delta.0, delta.1));
        while self
            .samples
            .front()
            .is_some_and(|(t, _, _)| at.duration_since(*t) > window)
        {
            self.samples.pop_front();
        }
        self.samples
            .iter()
            .fold((0, 0), |(c, f), (_, dc, df)| (c + dc, f + df))
    }
}

/// Whether `calls` calls with `faults` faults break `policy`.
fn breaks(policy: &FailurePolicy, calls: u64, faults: u64) -> bool {
    policy.auto_rollback == 1
        && calls >= u64::try_from(policy.min_calls).unwrap_or(u64::MAX)
        && faults.saturating_mul(100)
            > calls.saturating_mul(u64::try_from(policy.max_fault_pct).unwrap_or(100))
}

/// What a version's signature says, judged against the keys registered now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SignatureInfo {
    /// `unsigned`; `trusted` (a registered, unrevoked key of a publisher that may publish the
    /// name); `untrusted` (an unknown or revoked key).
    pub state: String,
    /// The signing key's id.
    pub key: Option<String>,
    /// The key's publisher, when it is registered.
    pub publisher: Option<String>,
}

impl SignatureInfo {
    fn trusted(&self) -> bool {
        self.state == "trusted"
    }
}

/// Judge a stored signature (`unsigned` or `key:<id>`) of `name`; `Err` when a registered key
/// signed a name its publisher may not publish (no partner ships a `meta-cloud`).
fn judge(
    stored: &str,
    name: &str,
    holders: &[String],
    keys: &[PublisherKey],
    namespaces: &HashMap<String, String>,
) -> Result<SignatureInfo, CatalogError> {
    let Some(id) = stored.strip_prefix("key:") else {
        return Ok(SignatureInfo {
            state: "unsigned".into(),
            key: None,
            publisher: None,
        });
    };
    let untrusted = |publisher: Option<String>| SignatureInfo {
        state: "untrusted".into(),
        key: Some(id.to_string()),
        publisher,
    };
    let Some(k) = keys.iter().find(|k| k.id == id) else {
        return Ok(untrusted(None));
    };
    if k.revoked_at.is_some() {
        return Ok(untrusted(Some(k.publisher.clone())));
    }
    let publisher = match k.publisher.strip_prefix("partner:") {
        Some(partner) => Publisher::Partner {
            id: partner.to_string(),
            namespace: namespaces.get(partner).cloned(),
        },
        None => Publisher::Operator,
    };
    check_namespace(&publisher, name, holders).map_err(|e| {
        CatalogError::Namespace(format!("the signing key {id} of {}: {e}", k.publisher))
    })?;
    Ok(SignatureInfo {
        state: "trusted".into(),
        key: Some(id.to_string()),
        publisher: Some(k.publisher.clone()),
    })
}

/// The egress hosts a stored version may reach: `None` (every requested host) unless a partner
/// published it, then what the operator granted to that version.
fn granted_to(
    row: &PluginRow,
    grants: &HashMap<(String, String), Vec<String>>,
) -> Option<Vec<String>> {
    row.publisher.starts_with("partner:").then(|| {
        grants
            .get(&(row.name.clone(), row.version.clone()))
            .cloned()
            .unwrap_or_default()
    })
}

/// How a signature is recorded: `unsigned`, `key:<id>` when the very key is registered, else
/// `key:<id>:unregistered` (never matched by id alone).
fn stored_signature(signer: Option<&PublicKey>, keys: &[PublisherKey]) -> String {
    match signer {
        Some(key)
            if keys
                .iter()
                .any(|k| k.id == key.id() && k.public_key == key.to_text()) =>
        {
            format!("key:{}", key.id())
        }
        Some(key) => format!("key:{}:unregistered", key.id()),
        None => "unsigned".to_string(),
    }
}

/// The most versions one partner may keep uploaded (each is compiled on every host).
pub const MAX_PARTNER_VERSIONS: i64 = 100;

/// A plugin this host loaded at start, and from where.
pub struct LocalPlugin {
    /// The loaded plugin.
    pub plugin: Plugin,
    /// `None` for a bundled one (part of the binary); for a plugin-directory one, the key its
    /// valid signature names (`Some(None)`: unsigned), judged again on every reload.
    pub directory_signer: Option<Option<PublicKey>>,
}

/// The publishers of `name` in `rows`.
fn holders(rows: &[PluginRow], name: &str) -> Vec<String> {
    let mut h: Vec<String> = rows
        .iter()
        .filter(|r| r.name == name)
        .map(|r| r.publisher.clone())
        .collect();
    h.sort();
    h.dedup();
    h
}

/// Whose view of the catalog a listing is.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// The operator: everything.
    Operator,
    /// A partner, or a tenant of that partner (`None`: a tenant of the operator's own): the
    /// public plugins and that partner's.
    PartnerOf(Option<&'a str>),
}

/// A name's versions as the API shows them.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PluginInfo {
    /// Plugin name.
    pub name: String,
    /// `connector` or `reply-policy`.
    pub world: String,
    /// `switchyard` (bundled), `operator` or `partner:<id>`.
    pub publisher: String,
    /// Who may use it: `every tenant`, or `tenants of partner <id>`.
    pub usable_by: String,
    /// The version calls run when nothing pins one.
    pub promoted: Option<String>,
    /// Why that version is promoted (`bundled`, `first version`, `promoted: …`, `rolled back: …`).
    pub promoted_reason: Option<String>,
    /// The version promoted before it (what a roll back returns to).
    pub previous: Option<String>,
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
    /// When the host rolls the promoted version back by itself.
    pub failure_policy: FailurePolicyView,
}

/// A name's failure policy (Istio's fail-open/closed, made a roll back): when the promoted
/// version faults (traps, CPU deadline, memory cap) on more than `max_fault_pct` percent of at
/// least `min_calls` calls within `window_secs`, a host rolls back to the previous promotion.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailurePolicyView {
    /// Roll back automatically.
    pub auto_rollback: bool,
    /// Percentage of faulty calls that triggers it (1-100).
    #[schema(minimum = 1, maximum = 100)]
    pub max_fault_pct: i64,
    /// Calls needed in the window before it can trigger (1-100000).
    #[schema(minimum = 1, maximum = 100000)]
    pub min_calls: i64,
    /// The sliding window in seconds (5-3600).
    #[schema(minimum = 5, maximum = 3600)]
    pub window_secs: i64,
}

impl FailurePolicyView {
    fn of(p: &FailurePolicy) -> FailurePolicyView {
        FailurePolicyView {
            auto_rollback: p.auto_rollback == 1,
            max_fault_pct: p.max_fault_pct,
            min_calls: p.min_calls,
            window_secs: p.window_secs,
        }
    }

    /// The stored policy of `name`, when every field is in range.
    pub fn for_name(&self, name: &str) -> Option<FailurePolicy> {
        ((1..=100).contains(&self.max_fault_pct)
            && (1..=100_000).contains(&self.min_calls)
            && (5..=3600).contains(&self.window_secs))
        .then(|| FailurePolicy {
            name: name.to_string(),
            auto_rollback: i64::from(self.auto_rollback),
            max_fault_pct: self.max_fault_pct,
            min_calls: self.min_calls,
            window_secs: self.window_secs,
        })
    }
}

/// One version as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    /// Version.
    pub version: String,
    /// SHA-256 of the packed component (hex).
    pub sha256: String,
    /// Interface package it was built against, e.g. `switchyard:plugin@0.1.0`.
    pub interface: String,
    /// `bundled`, `directory` or `upload`.
    pub source: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Hosts its manifest asks to reach.
    pub egress_requested: Vec<String>,
    /// Of those, the hosts its manifest says receive the connection's credentials (a grant of
    /// such a host lets them go there).
    pub credentials_requested: Vec<String>,
    /// Of those, the hosts it may reach: all for bundled, directory and operator-uploaded
    /// versions; for a partner's version, what the operator granted to it.
    pub egress_granted: Vec<String>,
    /// Whether this host has it loaded and callable.
    pub loaded: bool,
    /// Why this host could not load it, when it could not.
    pub load_error: Option<String>,
    /// How many endpoints and tenants pin it.
    pub pinned_by: usize,
    /// Who uploaded it.
    pub uploaded_by: Option<String>,
    /// When (Unix ms).
    pub uploaded_at: Option<i64>,
    /// Its signature, judged against the publisher keys registered now.
    pub signature: SignatureInfo,
}

/// The catalog of one host process.
pub struct Catalog {
    runtime: Arc<Runtime>,
    store: Store,
    origins: Box<dyn Fn(&str) -> Origins + Send + Sync>,
    max_upload: usize,
    require_signed: bool,
    /// What this host loaded at start from its binary and plugin directory.
    local: Vec<LocalPlugin>,
    current: RwLock<Arc<Snapshot>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Call outcomes of promoted versions: (name, version) → recent window.
    watches: std::sync::Mutex<HashMap<(String, String), Watch>>,
    /// Uploads checked and compiled at once on this host (each holds the component twice and
    /// a compile thread).
    uploads: tokio::sync::Semaphore,
}

/// The wasm binary header's version field: a core module's, and a component's.
const CORE_MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

/// Refuse what is not a component before anything parses it.
fn check_component(bytes: &[u8]) -> Result<(), CatalogError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(CatalogError::NotAComponent(
            "not WebAssembly: upload a component packed by `switchyard plugin pack`",
        ));
    }
    match <[u8; 4]>::try_from(&bytes[4..8]) {
        Ok(CORE_MODULE) => Err(CatalogError::NotAComponent(
            "a core WebAssembly module, not a component: build for wasm32-wasip2 and pack it",
        )),
        Ok(COMPONENT) => Ok(()),
        _ => Err(CatalogError::NotAComponent(
            "an unknown WebAssembly binary version: build a component for wasm32-wasip2",
        )),
    }
}

/// Whether `publisher` may publish `name`, given who already holds it.
fn check_namespace(
    publisher: &Publisher,
    name: &str,
    holders: &[String],
) -> Result<(), CatalogError> {
    let me = publisher.as_stored();
    // The operator may ship any name no partner holds (a fix of a bundled plugin included).
    let clash = |h: &&String| match publisher {
        Publisher::Operator | Publisher::Switchyard => h.starts_with("partner:"),
        Publisher::Partner { .. } => **h != me,
    };
    if let Some(other) = holders.iter().find(clash) {
        return Err(CatalogError::Namespace(format!(
            "{name} is published by {other}; choose another name"
        )));
    }
    match publisher {
        Publisher::Switchyard | Publisher::Operator => Ok(()),
        Publisher::Partner {
            namespace: None, ..
        } => Err(CatalogError::Namespace(
            "this partner has no plugin namespace yet; the operator assigns one".into(),
        )),
        Publisher::Partner {
            namespace: Some(ns),
            ..
        } if name.starts_with(&format!("{ns}-")) => Ok(()),
        Publisher::Partner {
            namespace: Some(ns),
            ..
        } => Err(CatalogError::Namespace(format!(
            "{name} is outside this partner's namespace: name it {ns}-…"
        ))),
    }
}

/// Refuse a plugin-directory component that no trusted publisher key signed (when
/// `SWITCHYARD_REQUIRE_SIGNED` is on); bundled plugins are part of the binary and exempt.
pub async fn check_directory_signature(
    store: &Store,
    bytes: &[u8],
    name: &str,
) -> Result<(), CatalogError> {
    let signer = signature::signer(bytes)?;
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let rows = tx.plugin_rows().await?;
    let keys = tx.publisher_keys().await?;
    let namespaces: HashMap<String, String> = tx.partner_namespaces().await?.into_iter().collect();
    tx.commit().await?;
    let stored = stored_signature(signer.as_ref(), &keys);
    let trust = judge(&stored, name, &holders(&rows, name), &keys, &namespaces)?;
    if trust.trusted() {
        Ok(())
    } else {
        Err(CatalogError::Unsigned(format!(
            "SWITCHYARD_REQUIRE_SIGNED is on and {name}'s signature is {}",
            trust.state
        )))
    }
}

impl Catalog {
    /// The plugin threads' runtime (see [`Runtime::plugin_threads`]).
    pub fn plugin_threads(&self) -> tokio::runtime::Handle {
        self.runtime.plugin_threads().clone()
    }

    /// A catalog over `runtime`, with the plugins loaded from the binary and the plugin
    /// directory (`local`), then the database's uploads, promotions and pins.
    pub async fn start(
        runtime: Runtime,
        store: Store,
        origins: Box<dyn Fn(&str) -> Origins + Send + Sync>,
        max_upload: usize,
        require_signed: bool,
        local: Vec<LocalPlugin>,
    ) -> anyhow::Result<Arc<Catalog>> {
        let mut names = std::collections::HashSet::new();
        for l in &local {
            let name = &l.plugin.manifest().name;
            if !names.insert(name.clone()) {
                anyhow::bail!("{}", LoadError::Duplicate(name.clone()));
            }
        }
        let catalog = Arc::new(Catalog {
            runtime: Arc::new(runtime),
            store,
            origins,
            max_upload,
            require_signed,
            local,
            current: RwLock::new(Arc::new(Snapshot {
                generation: -1,
                ..Snapshot::default()
            })),
            reloading: tokio::sync::Mutex::new(()),
            watches: std::sync::Mutex::new(HashMap::new()),
            uploads: tokio::sync::Semaphore::new(2),
        });
        catalog.reload().await?;
        Ok(catalog)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The version `name` runs for `pin` (its endpoint or tenant), else the promoted one, else
    /// this host's own (bundled or directory) version.
    fn resolve(&self, name: &str, pin: Option<(PinKind, &str)>) -> Option<Plugin> {
        let s = self.snapshot();
        let versions = s.versions.get(name)?;
        let version = pin
            .and_then(|(kind, target)| s.pins.get(kind, target, name))
            .or_else(|| s.promoted_version(name))?;
        versions.get(version).map(|l| l.plugin.clone())
    }

    /// The connector `name` as `endpoint` runs it (`None` endpoint: the promoted version).
    pub fn connector(&self, name: &str, endpoint: Option<&str>) -> Option<Arc<ConnectorPlugin>> {
        match self.resolve(name, endpoint.map(|e| (PinKind::Endpoint, e)))? {
            Plugin::Connector(c) => Some(c),
            Plugin::Policy(_) => None,
        }
    }

    /// The reply policy `name` as `tenant` runs it.
    pub fn policy(&self, name: &str, tenant: &str) -> Option<Arc<PolicyPlugin>> {
        match self.resolve(name, Some((PinKind::Tenant, tenant)))? {
            Plugin::Policy(p) => Some(p),
            Plugin::Connector(_) => None,
        }
    }

    /// The largest component an upload may be, in bytes.
    pub fn max_upload(&self) -> usize {
        self.max_upload
    }

    /// How many plugin versions this host has loaded.
    pub fn loaded(&self) -> usize {
        self.snapshot().versions.values().map(BTreeMap::len).sum()
    }

    /// Versions calls can reach (promoted, or pinned) that this host could not load, as
    /// `name@version: why`; and a note when the catalog was never read.
    pub fn not_loaded(&self) -> Vec<String> {
        let s = self.snapshot();
        if s.generation < 0 {
            return vec!["the plugin catalog has not been read yet".into()];
        }
        s.rows
            .iter()
            .filter_map(|r| {
                let why = s.failures.get(&r.sha256)?;
                let reachable = s
                    .promoted
                    .get(&r.name)
                    .is_some_and(|p| p.version == r.version)
                    || s.pins.count(&r.name, &r.version) > 0;
                reachable.then(|| format!("{}@{}: {why}", r.name, r.version))
            })
            .collect()
    }

    /// The catalog generation this host has loaded.
    pub fn generation(&self) -> i64 {
        self.snapshot().generation
    }

    /// Whether tenants of `partner` (`None`: the operator's own tenants) may use `name`: a
    /// partner's plugin serves that partner's tenants only.
    pub fn usable_by(&self, name: &str, partner: Option<&str>) -> bool {
        match self.publisher(name) {
            Some(p) => match p.strip_prefix("partner:") {
                Some(owner) => Some(owner) == partner,
                None => true,
            },
            // Loaded from this host's binary or directory but not yet recorded.
            None => true,
        }
    }

    /// The version `kind`/`target` pins `name` at, if any.
    pub fn pinned(&self, kind: PinKind, target: &str, name: &str) -> Option<String> {
        self.snapshot()
            .pins
            .get(kind, target, name)
            .map(str::to_string)
    }

    /// Who published `name` (`None`: no such plugin).
    pub fn publisher(&self, name: &str) -> Option<String> {
        let s = self.snapshot();
        s.rows
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.publisher.clone())
    }

    /// The plugins a caller sees: everything for the operator; otherwise what Switchyard and
    /// the operator publish, and the caller's partner's own.
    pub fn list(&self, viewer: Viewer<'_>) -> Vec<PluginInfo> {
        self.describe(viewer, None)
    }

    /// One name as `viewer` sees it (`None`: no such plugin, or not theirs to see).
    pub fn info(&self, viewer: Viewer<'_>, name: &str) -> Option<PluginInfo> {
        self.describe(viewer, Some(name)).pop()
    }

    /// The listing of every name, or of `only` that one.
    fn describe(&self, viewer: Viewer<'_>, only: Option<&str>) -> Vec<PluginInfo> {
        let s = self.snapshot();
        let mine = match viewer {
            Viewer::Operator => None,
            Viewer::PartnerOf(p) => Some(p.map(|p| format!("partner:{p}"))),
        };
        let visible = |publisher: &str| match &mine {
            None => true,
            Some(own) => !publisher.starts_with("partner:") || Some(publisher) == own.as_deref(),
        };
        let mut by_name: BTreeMap<&str, Vec<&PluginRow>> = BTreeMap::new();
        for r in &s.rows {
            if visible(&r.publisher) && only.is_none_or(|n| n == r.name) {
                by_name.entry(&r.name).or_default().push(r);
            }
        }
        by_name
            .into_iter()
            .map(|(name, rows)| {
                let promotion = s.promoted.get(name);
                let local = s.local_version(name).map(str::to_string);
                let name_holders = holders(&s.rows, name);
                let mut versions: Vec<VersionInfo> = Vec::new();
                for r in &rows {
                    // A bundled version re-recorded with new bytes (a rebuild) shows once: the
                    // bytes this host runs.
                    let loaded = s
                        .versions
                        .get(name)
                        .and_then(|v| v.get(&r.version))
                        .is_some_and(|l| l.plugin.sha256() == r.sha256);
                    if r.source != "upload" && !loaded {
                        continue;
                    }
                    let manifest: Option<Manifest> = serde_json::from_str(&r.manifest).ok();
                    let (requested, credentials) = manifest
                        .map(|m| (m.egress, m.credentials))
                        .unwrap_or_default();
                    let granted = match granted_to(r, &s.grants) {
                        Some(g) => requested
                            .iter()
                            .filter(|h| g.contains(h))
                            .cloned()
                            .collect(),
                        None => requested.clone(),
                    };
                    versions.push(VersionInfo {
                        version: r.version.clone(),
                        sha256: r.sha256.clone(),
                        interface: r.interface.clone(),
                        source: r.source.clone(),
                        size_bytes: r.size_bytes,
                        egress_requested: requested,
                        credentials_requested: credentials,
                        egress_granted: granted,
                        loaded,
                        load_error: s.failures.get(&r.sha256).cloned(),
                        pinned_by: s.pins.count(name, &r.version),
                        uploaded_by: r.uploaded_by.clone(),
                        uploaded_at: r.uploaded_at,
                        signature: judge(&r.signature, name, &name_holders, &s.keys, &s.namespaces)
                            .unwrap_or_else(|_| SignatureInfo {
                                state: "untrusted".into(),
                                key: r.signature.strip_prefix("key:").map(str::to_string),
                                publisher: None,
                            }),
                    });
                }
                let publisher = rows
                    .first()
                    .map(|r| r.publisher.clone())
                    .unwrap_or_default();
                PluginInfo {
                    name: name.to_string(),
                    world: rows.first().map(|r| r.world.clone()).unwrap_or_default(),
                    publisher: publisher.clone(),
                    usable_by: match publisher.strip_prefix("partner:") {
                        Some(p) => format!("tenants of partner {p}"),
                        None => "every tenant".into(),
                    },
                    promoted: promotion.map(|p| p.version.clone()).or(local.clone()),
                    promoted_reason: promotion
                        .map(|p| p.reason.clone())
                        .or(local.map(|_| "bundled with this host".to_string())),
                    previous: promotion.and_then(|p| p.previous.clone()),
                    versions,
                    failure_policy: FailurePolicyView::of(
                        &s.policies
                            .get(name)
                            .cloned()
                            .unwrap_or_else(|| FailurePolicy::default_for(name)),
                    ),
                }
            })
            .collect()
    }

    /// Load what the database holds and this host lacks, when the generation moved; whether
    /// anything was reloaded.
    pub async fn reload(&self) -> Result<bool, CatalogError> {
        let _one = self.reloading.lock().await;
        let mut tx = self.store.begin(Scope::Host, Mode::Read).await?;
        let generation = tx.plugin_generation().await?;
        let current = self.snapshot();
        if generation == current.generation {
            tx.commit().await?;
            return Ok(false);
        }
        let rows = tx.plugin_rows().await?;
        let promotions = tx.promotions().await?;
        let pins = tx.pins().await?;
        let keys = tx.publisher_keys().await?;
        let namespaces: HashMap<String, String> =
            tx.partner_namespaces().await?.into_iter().collect();
        let mut grants: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (name, version, host) in tx.plugin_grants().await? {
            grants.entry((name, version)).or_default().push(host);
        }
        let policies = tx
            .failure_policies()
            .await?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        tx.commit().await?;
        let mut versions: HashMap<String, BTreeMap<String, Loaded>> = HashMap::new();
        let mut failures = HashMap::new();
        // Why a version may not load now: SWITCHYARD_REQUIRE_SIGNED and a signature that is not
        // (or no longer) trusted.
        let distrusted = |stored: &str, name: &str| -> Option<String> {
            if !self.require_signed {
                return None;
            }
            match judge(stored, name, &holders(&rows, name), &keys, &namespaces) {
                Ok(t) if t.trusted() => None,
                other => Some(format!(
                    "not loaded: SWITCHYARD_REQUIRE_SIGNED is on and its signature is not trusted ({})",
                    other.map(|t| t.state).unwrap_or_else(|e| e.to_string())
                )),
            }
        };
        for l in &self.local {
            let m = l.plugin.manifest();
            if let Some(signer) = &l.directory_signer
                && let Some(why) = distrusted(&stored_signature(signer.as_ref(), &keys), &m.name)
            {
                tracing::warn!(plugin = %m.name, version = %m.version, "{why}");
                failures.insert(l.plugin.sha256().to_string(), why);
                continue;
            }
            versions.entry(m.name.clone()).or_default().insert(
                m.version.clone(),
                Loaded {
                    plugin: l.plugin.clone(),
                    local: true,
                    granted: None,
                },
            );
        }
        // Only versions a call can reach are compiled and kept: promoted ones, what a roll back
        // returns to, and pinned ones. Others load when promoted or pinned.
        let needed: std::collections::HashSet<(String, String)> = promotions
            .iter()
            .flat_map(|p| {
                std::iter::once(p.version.clone())
                    .chain(p.previous.clone())
                    .map(|v| (p.name.clone(), v))
            })
            .chain(pins.iter().map(|p| (p.plugin.clone(), p.version.clone())))
            .collect();
        for r in rows.iter().filter(|r| r.source == "upload") {
            if !needed.contains(&(r.name.clone(), r.version.clone())) {
                continue;
            }
            if let Some(why) = distrusted(&r.signature, &r.name) {
                tracing::warn!(plugin = %r.name, version = %r.version, "{why}");
                failures.insert(r.sha256.clone(), why);
                continue;
            }
            let granted = granted_to(r, &grants);
            let already = current
                .versions
                .get(&r.name)
                .and_then(|v| v.get(&r.version))
                .filter(|l| l.plugin.sha256() == r.sha256 && l.granted == granted)
                .cloned();
            let loaded = match already {
                Some(l) => l,
                None => match self.load_stored(&r.sha256, &r.name, granted.clone()).await {
                    Ok(plugin) => Loaded {
                        plugin,
                        local: false,
                        granted,
                    },
                    Err(e) => {
                        tracing::error!(plugin = %r.name, version = %r.version, error = %e, "uploaded plugin not loadable on this host");
                        failures.insert(r.sha256.clone(), e.to_string());
                        continue;
                    }
                },
            };
            let slot = versions.entry(r.name.clone()).or_default();
            if slot.get(&r.version).is_some_and(|l| l.local) {
                continue; // this host's own build of the same version wins
            }
            slot.insert(r.version.clone(), loaded);
        }
        let next = Snapshot {
            generation,
            versions,
            promoted: promotions
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect(),
            pins: Pins::from_rows(pins),
            rows,
            failures,
            keys,
            namespaces,
            grants,
            policies,
        };
        if let Ok(mut slot) = self.current.write() {
            *slot = Arc::new(next);
        }
        tracing::info!(generation, "plugin catalog loaded");
        Ok(true)
    }

    /// Compile and link an uploaded version's stored bytes (off the async threads).
    async fn load_stored(
        &self,
        sha256: &str,
        name: &str,
        granted: Option<Vec<String>>,
    ) -> Result<Plugin, CatalogError> {
        let mut tx = self.store.begin(Scope::Host, Mode::Read).await?;
        let bytes = tx.plugin_component(sha256).await?;
        tx.commit().await?;
        let bytes =
            bytes.ok_or_else(|| CatalogError::NotFound(format!("{sha256} has no bytes")))?;
        self.compile(bytes, name, granted).await
    }

    async fn compile(
        &self,
        bytes: Vec<u8>,
        name: &str,
        granted: Option<Vec<String>>,
    ) -> Result<Plugin, CatalogError> {
        let runtime = self.runtime.clone();
        let origins = (self.origins)(name);
        tokio::task::spawn_blocking(move || {
            runtime.load_granted(&bytes, origins, granted.as_deref())
        })
        .await
        .map_err(|e| CatalogError::Task(e.to_string()))?
        .map_err(CatalogError::Load)
    }

    /// Check, compile and store an uploaded component; the first version of a new name is
    /// promoted at once. Returns the name, version and sha256, and whether it was new.
    pub async fn upload(
        &self,
        bytes: Vec<u8>,
        publisher: &Publisher,
        actor: &str,
    ) -> Result<(PluginRow, bool), CatalogError> {
        if bytes.len() > self.max_upload {
            return Err(CatalogError::TooLarge {
                size: bytes.len(),
                max: self.max_upload,
            });
        }
        check_component(&bytes)?;
        let _one = self.uploads.try_acquire().map_err(|_| {
            CatalogError::Busy(
                "two uploads are being checked on this host; try again shortly".into(),
            )
        })?;
        let manifest = Manifest::from_component(&bytes).map_err(LoadError::from)?;
        let signer = signature::signer(&bytes)?;
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let mut tx = self.store.begin(Scope::Host, Mode::Read).await?;
        let rows = tx.plugin_rows().await?;
        let keys = tx.publisher_keys().await?;
        let namespaces: HashMap<String, String> =
            tx.partner_namespaces().await?.into_iter().collect();
        tx.commit().await?;
        let same_name: Vec<&PluginRow> = rows.iter().filter(|r| r.name == manifest.name).collect();
        if let Publisher::Partner { id, .. } = publisher {
            let mine = format!("partner:{id}");
            let stored = rows
                .iter()
                .filter(|r| r.publisher == mine && r.source == "upload")
                .count();
            if i64::try_from(stored).unwrap_or(i64::MAX) >= MAX_PARTNER_VERSIONS {
                return Err(CatalogError::Quota(format!(
                    "this partner keeps {stored} uploaded versions, the most allowed; delete unused ones first"
                )));
            }
        }
        let name_holders = holders(&rows, &manifest.name);
        check_namespace(publisher, &manifest.name, &name_holders)?;
        let stored_signature = stored_signature(signer.as_ref(), &keys);
        let trust = judge(
            &stored_signature,
            &manifest.name,
            &name_holders,
            &keys,
            &namespaces,
        )?;
        if self.require_signed && !trust.trusted() {
            return Err(CatalogError::Unsigned(match trust.key {
                Some(k) => format!("SWITCHYARD_REQUIRE_SIGNED is on and key {k} is not a registered, unrevoked publisher key"),
                None => "SWITCHYARD_REQUIRE_SIGNED is on: sign the component with `switchyard plugin sign` and register the key".into(),
            }));
        }
        if let Some(existing) = same_name.iter().find(|r| r.version == manifest.version) {
            if existing.sha256 == sha256 && existing.source == "upload" {
                // The same bytes again: nothing new, but a key registered since is noticed.
                if existing.signature != stored_signature {
                    let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
                    tx.set_signature(&sha256, &stored_signature).await?;
                    tx.bump_plugin_generation().await?;
                    tx.commit().await?;
                    self.reload().await?;
                }
                return Ok(((*existing).clone(), false));
            }
            return Err(CatalogError::VersionExists {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
            });
        }
        // The loader's checks: the component compiles, implements its world, imports nothing else.
        self.compile(bytes.clone(), &manifest.name, None).await?;
        let manifest_json =
            serde_json::to_string(&manifest).map_err(|e| CatalogError::Task(e.to_string()))?;
        let publisher_name = publisher.as_stored();
        let world = manifest.world.as_str();
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        tx.insert_upload(&NewUpload {
            sha256: &sha256,
            name: &manifest.name,
            version: &manifest.version,
            world,
            interface: &manifest.interface,
            manifest: &manifest_json,
            publisher: &publisher_name,
            uploaded_by: actor,
            component: &bytes,
            signature: &stored_signature,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => CatalogError::VersionExists {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
            },
            other => other.into(),
        })?;
        if same_name.is_empty() {
            tx.promote(
                &manifest.name,
                &manifest.version,
                None,
                "first version",
                actor,
            )
            .await?;
        }
        tx.bump_plugin_generation().await?;
        let mut rows = tx.plugin_rows().await?;
        tx.commit().await?;
        self.reload().await?;
        let row = rows
            .drain(..)
            .find(|r| r.sha256 == sha256)
            .ok_or_else(|| CatalogError::NotFound(format!("{sha256} vanished")))?;
        tracing::info!(plugin = %manifest.name, version = %manifest.version, sha256 = %&sha256[..12], publisher = %publisher_name, actor, "plugin uploaded");
        Ok((row, true))
    }

    /// Check that `name` `version` can run on this host: loaded already, or an upload that is
    /// trusted and loads (compiled now, through the cache; kept once a promotion or pin needs it).
    async fn ensure_loadable(
        &self,
        s: &Snapshot,
        name: &str,
        version: &str,
    ) -> Result<(), CatalogError> {
        if s.versions
            .get(name)
            .is_some_and(|v| v.contains_key(version))
        {
            return Ok(());
        }
        let unknown = || {
            CatalogError::UnknownVersion(format!(
                "{name} {version} is not a version this host can run"
            ))
        };
        let row = s
            .rows
            .iter()
            .find(|r| r.name == name && r.version == version && r.source == "upload")
            .ok_or_else(unknown)?;
        if self.require_signed {
            let trust = judge(
                &row.signature,
                name,
                &holders(&s.rows, name),
                &s.keys,
                &s.namespaces,
            );
            if !trust.is_ok_and(|t| t.trusted()) {
                return Err(CatalogError::Unsigned(format!(
                    "SWITCHYARD_REQUIRE_SIGNED is on and {name} {version}'s signature is not trusted"
                )));
            }
        }
        self.load_stored(&row.sha256, name, granted_to(row, &s.grants))
            .await
            .map(|_| ())
    }

    /// Make `version` the one `name`'s unpinned calls run, on every host.
    pub async fn promote(
        &self,
        name: &str,
        version: &str,
        reason: &str,
        actor: &str,
    ) -> Result<(), CatalogError> {
        self.reload().await?;
        let s = self.snapshot();
        self.ensure_loadable(&s, name, version).await?;
        let current = s.promoted_version(name).map(str::to_string);
        if current.as_deref() == Some(version) {
            return Ok(());
        }
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        tx.promote(name, version, current.as_deref(), reason, actor)
            .await?;
        tx.bump_plugin_generation().await?;
        tx.commit().await?;
        self.reload().await?;
        tracing::warn!(
            plugin = name,
            version,
            reason,
            actor,
            "plugin version promoted"
        );
        Ok(())
    }

    /// Return `name` to the version promoted before the current one.
    pub async fn roll_back(
        &self,
        name: &str,
        why: &str,
        actor: &str,
    ) -> Result<String, CatalogError> {
        let s = self.snapshot();
        let previous = s
            .promoted
            .get(name)
            .and_then(|p| p.previous.clone())
            .ok_or_else(|| {
                CatalogError::InUse(format!("{name} has no earlier promoted version"))
            })?;
        self.promote(name, &previous, &format!("rolled back: {why}"), actor)
            .await?;
        Ok(previous)
    }

    /// Pin `kind`/`target`'s `name` at `version` (`None`: follow the promoted version).
    pub async fn pin(
        &self,
        kind: PinKind,
        target: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), CatalogError> {
        // Up to date first (one query when nothing changed), so the comparison below is fair.
        self.reload().await?;
        let s = self.snapshot();
        // Saving the same pin again changes nothing and makes no host reload.
        if s.pins.get(kind, target, name) == version {
            return Ok(());
        }
        if let Some(v) = version {
            self.ensure_loadable(&s, name, v).await?;
        }
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        tx.set_pin(kind.as_str(), target, name, version).await?;
        tx.bump_plugin_generation().await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(())
    }

    /// Delete an uploaded version nothing pins or promotes.
    pub async fn delete(&self, name: &str, version: &str) -> Result<(), CatalogError> {
        // Decide on what the database says now, not on a poll that may be a second old.
        self.reload().await?;
        let s = self.snapshot();
        let row = s
            .rows
            .iter()
            .find(|r| r.name == name && r.version == version && r.source == "upload")
            .ok_or_else(|| CatalogError::NotFound(format!("no uploaded {name} {version}")))?;
        if s.promoted_version(name) == Some(version)
            && s.rows.iter().filter(|r| r.name == name).count() > 1
        {
            return Err(CatalogError::InUse(format!(
                "{name} {version} is the promoted version; promote another first"
            )));
        }
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        let pinned = tx.pins_on(name, version).await?;
        if pinned > 0 {
            return Err(CatalogError::InUse(format!(
                "{name} {version} is pinned by {pinned} endpoint(s) or tenant(s)"
            )));
        }
        tx.delete_upload(&row.name, &row.version).await?;
        if s.rows.iter().filter(|r| r.name == name).count() == 1 {
            tx.drop_promotion(name).await?;
        }
        tx.bump_plugin_generation().await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(())
    }

    /// Look at the promoted versions' recent calls and roll back, on every host, each one that
    /// breaks its name's failure policy; the names rolled back.
    pub async fn watch_once(&self) -> Result<Vec<String>, CatalogError> {
        let s = self.snapshot();
        let mut broken = Vec::new();
        {
            let mut watches = match self.watches.lock() {
                Ok(w) => w,
                Err(poisoned) => poisoned.into_inner(),
            };
            let mut seen = Vec::new();
            for (name, promotion) in &s.promoted {
                let Some(previous) = &promotion.previous else {
                    continue;
                };
                // Only to a version this host can run, and only one automatic step: a version
                // restored automatically is not rolled back again by itself (no flip-flop).
                if !s
                    .versions
                    .get(name)
                    .is_some_and(|v| v.contains_key(previous))
                    || promotion.reason.starts_with("rolled back automatically")
                {
                    continue;
                }
                let Some(loaded) = s.versions.get(name).and_then(|v| v.get(&promotion.version))
                else {
                    continue;
                };
                let policy = s
                    .policies
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| FailurePolicy::default_for(name));
                let key = (name.clone(), promotion.version.clone());
                let stats = loaded.plugin.call_stats();
                let watch = watches.entry(key.clone()).or_insert_with(|| Watch {
                    last: stats,
                    ..Watch::default()
                });
                let window = Duration::from_secs(u64::try_from(policy.window_secs).unwrap_or(60));
                let (calls, faults) = watch.observe(stats, window);
                seen.push(key);
                if breaks(&policy, calls, faults) {
                    broken.push((
                        name.clone(),
                        promotion.version.clone(),
                        previous.clone(),
                        format!(
                            "rolled back automatically: {faults} of {calls} calls of {} failed within {} s (traps, CPU deadline or memory cap; the policy allows {} %)",
                            promotion.version, policy.window_secs, policy.max_fault_pct
                        ),
                    ));
                }
            }
            watches.retain(|k, _| seen.contains(k));
        }
        let mut rolled = Vec::new();
        for (name, from, to, reason) in broken {
            let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
            let done = tx
                .promote_if(&name, &from, &to, &reason, "switchyard")
                .await?;
            if done {
                tx.bump_plugin_generation().await?;
            }
            tx.commit().await?;
            if done {
                tracing::error!(plugin = %name, from = %from, to = %to, "{reason}");
                rolled.push(name);
            }
        }
        if !rolled.is_empty() {
            self.reload().await?;
        }
        Ok(rolled)
    }

    /// Set a name's failure policy (its publisher or the operator).
    pub async fn set_failure_policy(&self, policy: &FailurePolicy) -> Result<(), CatalogError> {
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        tx.set_failure_policy(policy).await?;
        tx.bump_plugin_generation().await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(())
    }

    /// Grant an uploaded version the egress `hosts` (each one its manifest requests), replacing
    /// what it had; every host reloads it with them.
    pub async fn grant(
        &self,
        name: &str,
        version: &str,
        hosts: &[String],
        actor: &str,
    ) -> Result<(), CatalogError> {
        let s = self.snapshot();
        let row = s
            .rows
            .iter()
            .find(|r| r.name == name && r.version == version && r.source == "upload")
            .ok_or_else(|| CatalogError::NotFound(format!("no uploaded {name} {version}")))?;
        let requested = serde_json::from_str::<Manifest>(&row.manifest)
            .map(|m| m.egress)
            .unwrap_or_default();
        if let Some(h) = hosts.iter().find(|h| !requested.contains(h)) {
            return Err(CatalogError::NotRequested(format!(
                "{name} {version} does not request {h} (it requests: {})",
                requested.join(", ")
            )));
        }
        let mut hosts = hosts.to_vec();
        hosts.sort();
        hosts.dedup();
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        tx.set_grants(name, version, &hosts, actor).await?;
        tx.bump_plugin_generation().await?;
        tx.commit().await?;
        self.reload().await?;
        tracing::warn!(plugin = name, version, hosts = ?hosts, actor, "egress granted");
        Ok(())
    }

    /// Register a publisher key (`publisher`: `operator` or `partner:<id>`).
    pub async fn add_key(
        &self,
        publisher: &str,
        key: &PublicKey,
        label: Option<String>,
    ) -> Result<PublisherKey, CatalogError> {
        let record = PublisherKey {
            id: key.id(),
            publisher: publisher.to_string(),
            public_key: key.to_text(),
            label,
            created_at: now_ms(),
            revoked_at: None,
        };
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        tx.insert_publisher_key(&record)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => CatalogError::VersionExists {
                    name: "publisher key".into(),
                    version: record.id.clone(),
                },
                other => other.into(),
            })?;
        tx.bump_plugin_generation().await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(record)
    }

    /// Revoke a publisher key: its signatures are no longer trusted, on every host.
    pub async fn revoke_key(&self, id: &str) -> Result<(), CatalogError> {
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        if !tx.revoke_publisher_key(id).await? {
            return Err(CatalogError::NotFound(format!(
                "no active publisher key {id}"
            )));
        }
        tx.bump_plugin_generation().await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(())
    }

    /// Every registered publisher key.
    pub fn keys(&self) -> Vec<PublisherKey> {
        self.snapshot().keys.clone()
    }

    /// Poll the generation every `interval` and reload on change, and watch the promoted
    /// versions' faults, until `shutdown`.
    pub fn spawn_poller(
        self: &Arc<Self>,
        interval: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        // PostgreSQL announces each change: reload at once (the poll stays as the fallback).
        let (listener, stopping) = (self.clone(), shutdown.clone());
        supervise("plugin catalog listener", move || {
            let (me, mut stop) = (listener.clone(), stopping.clone());
            async move {
                let mut listen = match me.store.listen(crate::store::PLUGIN_CHANNEL).await {
                    Ok(Some(l)) => l,
                    Ok(None) => return Ended::Finished, // SQLite: the poll alone
                    Err(e) => {
                        tracing::warn!(error = %e, "plugin catalog: LISTEN failed");
                        return Ended::Unexpectedly;
                    }
                };
                loop {
                    tokio::select! {
                        got = listen.recv() => {
                            if let Err(e) = got {
                                tracing::warn!(error = %e, "plugin catalog: LISTEN connection lost");
                                return Ended::Unexpectedly;
                            }
                            if let Err(e) = me.reload().await {
                                tracing::warn!(error = %e, "plugin catalog reload failed");
                            }
                        }
                        _ = stop.changed() => return Ended::Finished,
                    }
                }
            }
        });
        let me = self.clone();
        every("plugin catalog poller", interval, shutdown, move || {
            let me = me.clone();
            async move {
                if let Err(e) = me.reload().await {
                    tracing::warn!(error = %e, "plugin catalog reload failed");
                }
                if let Err(e) = me.watch_once().await {
                    tracing::warn!(error = %e, "plugin failure watch failed");
                }
            }
        });
    }

    /// The world of a loaded plugin name.
    pub fn world(&self, name: &str) -> Option<World> {
        self.resolve(name, None).map(|p| p.manifest().world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promoted_version_breaks_its_policy_only_past_the_share_within_the_window() {
        let policy = FailurePolicy {
            name: "x".into(),
            auto_rollback: 1,
            max_fault_pct: 50,
            min_calls: 10,
            window_secs: 60,
        };
        let mut w = Watch::default();
        let window = Duration::from_secs(60);
        // Too few calls: not yet, however bad.
        assert_eq!(w.observe((5, 5), window), (5, 5));
        assert!(!breaks(&policy, 5, 5));
        // Half exactly is allowed; more is not.
        assert_eq!(w.observe((10, 5), window), (10, 5));
        assert!(!breaks(&policy, 10, 5));
        assert_eq!(w.observe((12, 7), window), (12, 7));
        assert!(breaks(&policy, 12, 7));
        assert!(!breaks(
            &FailurePolicy {
                auto_rollback: 0,
                ..policy.clone()
            },
            12,
            7
        ));
        // Old samples leave the window.
        let mut w = Watch::default();
        w.observe((20, 20), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(w.observe((21, 20), Duration::from_millis(1)), (1, 0));
    }

    #[test]
    fn only_components_pass_the_header_check() {
        assert!(check_component(b"\0asm\x0d\x00\x01\x00rest").is_ok());
        assert_eq!(
            check_component(b"\0asm\x01\x00\x00\x00rest")
                .err()
                .map(|e| e.code()),
            Some("not_a_component")
        );
        assert!(check_component(b"PK\x03\x04zipfile").is_err());
        assert!(check_component(b"\0asm").is_err());
    }

    #[test]
    fn partners_publish_only_in_their_namespace_and_names_stay_with_their_publisher() {
        let acme = Publisher::Partner {
            id: "par_1".into(),
            namespace: Some("acme".into()),
        };
        assert!(check_namespace(&acme, "acme-telegram", &[]).is_ok());
        assert!(check_namespace(&acme, "acme-telegram", &["partner:par_1".into()]).is_ok());
        // Outside the namespace, or a name Switchyard or another partner holds.
        for (name, holders) in [
            ("meta-cloud", vec!["switchyard".to_string()]),
            ("acmex-bot", vec![]),
            ("acme-bot", vec!["partner:par_2".to_string()]),
        ] {
            assert_eq!(
                check_namespace(&acme, name, &holders)
                    .err()
                    .map(|e| e.code()),
                Some("namespace_forbidden"),
                "{name}"
            );
        }
        let none = Publisher::Partner {
            id: "par_3".into(),
            namespace: None,
        };
        assert!(check_namespace(&none, "anything", &[]).is_err());
        // The operator publishes any name no partner holds, Switchyard's own included.
        assert!(check_namespace(&Publisher::Operator, "acme-bot", &[]).is_ok());
        assert!(
            check_namespace(&Publisher::Operator, "meta-cloud", &["switchyard".into()]).is_ok()
        );
        assert!(
            check_namespace(&Publisher::Operator, "acme-bot", &["partner:par_1".into()]).is_err()
        );
    }
}
