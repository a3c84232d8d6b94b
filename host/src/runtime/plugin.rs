//! Loaded plugins and calls into them: validate a component against its world, link it once,
//! then run every call in a fresh instance under the runtime's limits.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{Engine, Store, UpdateDeadline};

use super::PluginShared;
use super::bindings::convert;
use super::bindings::egress::EgressError;
use super::bindings::types::{
    Action, ConnectionInfo, ConversationContext, CredentialHealth, ErrorKind, HttpRequest,
    InboundEvent, InboundMessage, Insight, MediaContent, MediaRef, MediaSource, OutboundMessage,
    ProviderError, TemplateInfo, Turn, Verdict,
};
use super::bindings::v0_2_0::connector::switchyard::plugin::types as t020;
use super::bindings::{v0_1_0, v0_2_0, v0_3_0};
use super::error::{CallError, LoadError};
use super::manifest::{ChannelRules, ConnectionShape, Interface, Manifest, World};
use super::since_v0_1_0::{self, credential_health};
use super::since_v0_2_0;
use super::state::CallState;
use crate::vault::SecretScope;

/// A loaded plugin of either world.
#[derive(Clone)]
pub enum Plugin {
    /// A connector.
    Connector(Arc<ConnectorPlugin>),
    /// A reply policy.
    Policy(Arc<PolicyPlugin>),
}

impl Plugin {
    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        match self {
            Plugin::Connector(c) => c.manifest(),
            Plugin::Policy(p) => p.manifest(),
        }
    }

    /// SHA-256 of its packed component (hex).
    pub fn sha256(&self) -> &str {
        match self {
            Plugin::Connector(c) => c.sha256(),
            Plugin::Policy(p) => p.sha256(),
        }
    }

    /// How its calls ended so far: `(calls, faults)`.
    pub fn call_stats(&self) -> (u64, u64) {
        match self {
            Plugin::Connector(c) => c.shared.stats.read(),
            Plugin::Policy(p) => p.shared.stats.read(),
        }
    }
}

/// A loaded connector, ready for calls.
pub struct ConnectorPlugin {
    shared: Arc<PluginShared>,
    pre: ConnectorPre,
    shape: ConnectionShape,
    channel: ChannelRules,
}

/// A connector linked against the interface version it was built for.
enum ConnectorPre {
    V0_1_0(v0_1_0::connector::ConnectorPre<CallState>),
    V0_2_0(v0_2_0::connector::ConnectorPre<CallState>),
    V0_3_0(v0_3_0::connector::ConnectorPre<CallState>),
}

/// A loaded reply policy, ready for calls.
pub struct PolicyPlugin {
    shared: Arc<PluginShared>,
    pre: PolicyPre,
    /// Its `insights` export, when it has one (0.2.0 and later).
    insights: Option<InsightsPre>,
}

/// A policy's `insights` export, linked against the interface version it was built for.
enum InsightsPre {
    V0_2_0(v0_2_0::policy_with_insights::PolicyWithInsightsPre<CallState>),
    V0_3_0(v0_3_0::policy_with_insights::PolicyWithInsightsPre<CallState>),
}

/// The export that makes a policy report insights, without its version.
const INSIGHTS_EXPORT: &str = "switchyard:plugin/insights";

/// A reply policy linked against the interface version it was built for.
enum PolicyPre {
    V0_1_0(v0_1_0::reply_policy::ReplyPolicyPre<CallState>),
    V0_2_0(v0_2_0::reply_policy::ReplyPolicyPre<CallState>),
    V0_3_0(v0_3_0::reply_policy::ReplyPolicyPre<CallState>),
}

/// The interface packages a world may import, besides WASI.
fn allowed_imports(world: World, interface: Interface) -> &'static [&'static str] {
    match (world, interface) {
        (World::Connector, _) => &[
            "switchyard:plugin/types",
            "switchyard:plugin/secrets",
            "switchyard:plugin/egress",
            "switchyard:plugin/log",
        ],
        (World::ReplyPolicy, Interface::V0_1_0) => {
            &["switchyard:plugin/types", "switchyard:plugin/log"]
        }
        // A 0.2.0 policy may call a model or the tenant's own API, through granted egress.
        (World::ReplyPolicy, Interface::V0_2_0 | Interface::V0_3_0) => &[
            "switchyard:plugin/types",
            "switchyard:plugin/egress",
            "switchyard:plugin/log",
        ],
    }
}

/// The interface a world must export.
fn required_export(world: World) -> &'static str {
    match world {
        World::Connector => "switchyard:plugin/channel",
        World::ReplyPolicy => "switchyard:plugin/policy",
    }
}

/// Check `component` against its manifest's world and link it.
pub(crate) fn link(
    engine: &Engine,
    linker: &Linker<CallState>,
    component: &Component,
    shared: Arc<PluginShared>,
) -> Result<Plugin, LoadError> {
    let world = shared.manifest.world;
    let interface = shared.interface;
    let version = interface.version();
    let ty = component.component_type();
    let plugin = shared.label.clone();

    let expected = format!("{}@{version}", required_export(world));
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if !exports.contains(&expected) {
        return Err(LoadError::WrongWorld {
            plugin,
            world: world.to_string(),
            missing: format!(
                "it does not export `{expected}` (it exports: {})",
                if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                }
            ),
        });
    }

    let mut linker = linker.clone();
    for (name, item) in ty.imports(engine) {
        let package = name.split('@').next().unwrap_or(name);
        let ours = allowed_imports(world, interface).contains(&package)
            && name.ends_with(&format!("@{version}"));
        let wasi =
            name.starts_with("wasi:") && matches!(item.ty, ComponentItem::ComponentInstance(_));
        if !ours && !wasi {
            return Err(LoadError::ForbiddenImport {
                plugin,
                world: world.to_string(),
                import: name.to_string(),
            });
        }
    }
    // WASI functions the host does not provide (filesystem, sockets) trap if called.
    super::wasi::deny_others(engine, &mut linker, component).map_err(|e| {
        LoadError::WrongWorld {
            plugin: plugin.clone(),
            world: world.to_string(),
            missing: format!("{e:#}"),
        }
    })?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::WrongWorld {
            plugin: plugin.clone(),
            world: world.to_string(),
            missing: format!("{e:#}"),
        })?;
    let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld {
        plugin: plugin.clone(),
        world: world.to_string(),
        missing: format!("{e:#}"),
    };
    Ok(match world {
        World::Connector => Plugin::Connector(Arc::new(ConnectorPlugin {
            pre: match interface {
                Interface::V0_1_0 => ConnectorPre::V0_1_0(
                    v0_1_0::connector::ConnectorPre::new(pre).map_err(wrong_world)?,
                ),
                Interface::V0_2_0 => ConnectorPre::V0_2_0(
                    v0_2_0::connector::ConnectorPre::new(pre).map_err(wrong_world)?,
                ),
                Interface::V0_3_0 => ConnectorPre::V0_3_0(
                    v0_3_0::connector::ConnectorPre::new(pre).map_err(wrong_world)?,
                ),
            },
            shape: shared
                .manifest
                .connection
                .clone()
                .unwrap_or_else(ConnectionShape::generic),
            channel: shared.manifest.channel_rules(),
            shared,
        })),
        World::ReplyPolicy => Plugin::Policy(Arc::new(PolicyPlugin {
            insights: match interface {
                _ if !exports.contains(&format!("{INSIGHTS_EXPORT}@{version}")) => None,
                Interface::V0_1_0 => None,
                Interface::V0_2_0 => Some(InsightsPre::V0_2_0(
                    v0_2_0::policy_with_insights::PolicyWithInsightsPre::new(pre.clone())
                        .map_err(wrong_world)?,
                )),
                Interface::V0_3_0 => Some(InsightsPre::V0_3_0(
                    v0_3_0::policy_with_insights::PolicyWithInsightsPre::new(pre.clone())
                        .map_err(wrong_world)?,
                )),
            },
            pre: match interface {
                Interface::V0_1_0 => PolicyPre::V0_1_0(
                    v0_1_0::reply_policy::ReplyPolicyPre::new(pre).map_err(wrong_world)?,
                ),
                Interface::V0_2_0 => PolicyPre::V0_2_0(
                    v0_2_0::reply_policy::ReplyPolicyPre::new(pre).map_err(wrong_world)?,
                ),
                Interface::V0_3_0 => PolicyPre::V0_3_0(
                    v0_3_0::reply_policy::ReplyPolicyPre::new(pre).map_err(wrong_world)?,
                ),
            },
            shared,
        })),
    })
}

/// Marker error: the CPU deadline passed.
#[derive(Debug)]
struct CpuDeadline;

impl std::fmt::Display for CpuDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CPU deadline exceeded")
    }
}

impl std::error::Error for CpuDeadline {}

impl PluginShared {
    /// A place in the share of the pool every call but `verify` uses; `Busy` when it is full
    /// (fail fast, as the pool itself does).
    fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, CallError> {
        self.general
            .clone()
            .try_acquire_owned()
            .map_err(|_| CallError::Busy(self.limits.max_instances))
    }

    /// A fresh store for one call, with limits and the deadline armed.
    fn store(self: &Arc<Self>, scope: SecretScope) -> Store<CallState> {
        let mut store = Store::new(&self.engine, CallState::new(self.clone(), scope));
        store.limiter(|s| &mut s.limits);
        let cpu_limit = self.limits.cpu_limit;
        store.set_epoch_deadline(1);
        // On every epoch tick: stop a guest past its CPU time, else give the thread back to the
        // scheduler so other calls on the plugin threads make progress.
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().guest_time() >= cpu_limit {
                Err(wasmtime::Error::new(CpuDeadline))
            } else {
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        store
    }

    /// Run one call's future on the plugin threads, never on the caller's (HTTP) workers: in
    /// place when the caller already runs there (the job workers), else spawned there and
    /// awaited. Dropping the returned future cancels the call.
    async fn on_plugin_threads<R: Send + 'static>(
        &self,
        call: impl Future<Output = Result<R, CallError>> + Send + 'static,
    ) -> Result<R, CallError> {
        if super::on_plugin_thread() {
            return call.await;
        }
        /// Aborts the spawned call when the caller stops waiting for it.
        struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
        impl<T> Drop for AbortOnDrop<T> {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let mut task = AbortOnDrop(self.threads.spawn(call));
        match (&mut task.0).await {
            Ok(result) => result,
            Err(e) => Err(CallError::Trap {
                plugin: self.label.clone(),
                reason: if e.is_cancelled() {
                    "the plugin runtime is shutting down".into()
                } else {
                    "the call panicked in the host".into()
                },
            }),
        }
    }

    /// Turn the outcome of a call into the caller's result and record it in the metrics.
    fn finish<R>(
        &self,
        store: &mut Store<CallState>,
        started: std::time::Instant,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, CallError> {
        let result = self.classify(store, outcome);
        let label = match &result {
            Ok(_) => "ok",
            Err(CallError::Timeout { .. }) => "timeout",
            Err(CallError::WallClock { .. }) => "wall_clock",
            Err(CallError::OutOfMemory { .. }) => "out_of_memory",
            Err(CallError::Trap { .. }) => "trap",
            Err(CallError::Busy(_)) => "busy",
        };
        let m = &self.manifest;
        crate::metrics::plugin_call(&m.name, &m.version, label, started.elapsed());
        result
    }

    /// Log what the plugin printed, count the call and say how it ended.
    fn classify<R>(
        &self,
        store: &mut Store<CallState>,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, CallError> {
        let output = store.data_mut().take_output();
        if let Some(text) = &output {
            for line in text.lines().filter(|l| !l.trim().is_empty()).take(20) {
                tracing::warn!(target: "plugin", plugin = %self.label, "stderr: {line}");
            }
        }
        let plugin = self.label.clone();
        let err = match outcome {
            Err(_) => {
                self.stats.record(false);
                return Err(CallError::WallClock {
                    plugin,
                    limit_ms: self.limits.wall_limit.as_millis() as u64,
                });
            }
            Ok(Ok(value)) => {
                self.stats.record(false);
                return Ok(value);
            }
            Ok(Err(err)) => err,
        };
        let classified = if err.chain().any(|c| c.is::<CpuDeadline>()) {
            CallError::Timeout {
                plugin,
                limit_ms: self.limits.cpu_limit.as_millis() as u64,
            }
        } else if store.data().limits.memory_hit {
            CallError::OutOfMemory {
                plugin,
                limit_mib: (self.limits.memory_bytes >> 20) as u64,
            }
        } else if err
            .chain()
            .any(|c| c.is::<wasmtime::PoolConcurrencyLimitError>())
        {
            CallError::Busy(self.limits.max_instances)
        } else {
            let mut reason = match err.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                None => format!("{err:#}"),
            };
            if let Some(last) = output.as_deref().and_then(last_words) {
                reason.push_str(" (plugin said: ");
                reason.push_str(last.trim());
                reason.push(')');
            }
            CallError::Trap { plugin, reason }
        };
        match classified {
            CallError::Busy(_) => {}
            _ => self.stats.record(true),
        }
        tracing::warn!(plugin = %self.label, error = %classified, "plugin call failed");
        Err(classified)
    }
}

/// The most telling line a plugin printed: a panic's message, else its last line.
fn last_words(output: &str) -> Option<&str> {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let panic_at = lines.iter().rposition(|l| l.contains(" panicked at "));
    match panic_at {
        Some(i) if i + 1 < lines.len() => Some(lines[i + 1]),
        _ => lines.last().copied(),
    }
}

/// Run one call on the plugin threads: fresh store, instantiate, call under the CPU clock and the
/// wall-clock limit, classify. The listed arguments are cloned into the call.
macro_rules! call {
    ($self:ident, $pre:expr, $scope:expr, [$($arg:ident),*], |$inst:ident, $store:ident| $body:expr) => {{
        let shared = $self.shared.clone();
        let pre = $pre.clone();
        let scope = $scope;
        $(let $arg = $arg.clone();)*
        $self
            .shared
            .on_plugin_threads(async move {
                let started = std::time::Instant::now();
                let mut store = shared.store(scope);
                let clock = store.data().clock.clone();
                let outcome = tokio::time::timeout(
                    shared.limits.wall_limit,
                    super::clock::Timed::new(clock, async {
                        let $inst = pre.instantiate_async(&mut store).await?;
                        let $store = &mut store;
                        $(let $arg = &$arg;)*
                        $body.await
                    }),
                )
                .await;
                shared.finish(&mut store, started, outcome)
            })
            .await
    }};
}

impl ConnectorPlugin {
    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// The settings and secrets its connections accept (declared, or the generic shape).
    pub fn shape(&self) -> &ConnectionShape {
        &self.shape
    }

    /// What its channel allows (declared, or WhatsApp's).
    pub fn channel_rules(&self) -> &ChannelRules {
        &self.channel
    }

    /// The sha256 of its component bytes.
    pub fn sha256(&self) -> &str {
        &self.shared.sha256
    }

    /// Whether it sets the provider up at connect and undoes it at disconnect (0.2.0 and
    /// later; a 0.1.0 connector has neither).
    pub fn has_lifecycle(&self) -> bool {
        !matches!(self.pre, ConnectorPre::V0_1_0(_))
    }

    /// `connector.verify`: is this webhook request authentic, or a handshake to answer?
    pub async fn verify(
        &self,
        scope: SecretScope,
        req: &HttpRequest,
    ) -> Result<Verdict, CallError> {
        match &self.pre {
            ConnectorPre::V0_3_0(pre) => call!(self, pre, scope, [req], |inst, store| inst
                .switchyard_plugin_channel()
                .call_verify(store, req)),
            ConnectorPre::V0_2_0(pre) => {
                let req = since_v0_2_0::request_down(req);
                let verdict = call!(self, pre, scope, [req], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_verify(store, req))?;
                Ok(since_v0_2_0::verdict_up(verdict))
            }
            ConnectorPre::V0_1_0(pre) => {
                let req = since_v0_1_0::request_down(req);
                let verdict = call!(self, pre, scope, [req], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_verify(store, req))?;
                Ok(since_v0_1_0::verdict_up(verdict))
            }
        }
    }

    /// `connector.parse`: the events in an accepted webhook request (`Err` = malformed body).
    /// `connection` is the connection whose own endpoint received it, if the endpoint is one.
    pub async fn parse(
        &self,
        scope: SecretScope,
        req: &HttpRequest,
        connection: Option<&ConnectionInfo>,
    ) -> Result<Result<Vec<InboundEvent>, String>, CallError> {
        let _permit = self.shared.admit()?;
        match &self.pre {
            ConnectorPre::V0_3_0(pre) => {
                let connection = connection.cloned();
                call!(self, pre, scope, [req, connection], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_parse(store, req, connection.as_ref()))
            }
            ConnectorPre::V0_2_0(pre) => {
                let req = since_v0_2_0::request_down(req);
                let connection: Option<t020::ConnectionInfo> = self.shared.convert(&connection)?;
                let events = call!(self, pre, scope, [req, connection], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_parse(store, req, connection.as_ref()))?;
                match events {
                    Ok(events) => Ok(Ok(self.shared.convert(&events)?)),
                    Err(malformed) => Ok(Err(malformed)),
                }
            }
            ConnectorPre::V0_1_0(pre) => {
                let req = since_v0_1_0::request_down(req);
                let events = call!(self, pre, scope, [req], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_parse(store, req))?;
                match events {
                    Ok(events) => Ok(Ok(self.shared.convert(&events)?)),
                    Err(malformed) => Ok(Err(malformed)),
                }
            }
        }
    }

    /// `connector.send`: send one message; `Ok(Ok(id))` carries the provider's message id.
    pub async fn send(
        &self,
        scope: SecretScope,
        connection: &ConnectionInfo,
        msg: &OutboundMessage,
    ) -> Result<Result<String, ProviderError>, CallError> {
        let _permit = self.shared.admit()?;
        match &self.pre {
            ConnectorPre::V0_3_0(pre) => {
                call!(self, pre, scope, [connection, msg], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_send(store, connection, msg))
            }
            ConnectorPre::V0_2_0(pre) => {
                let connection: t020::ConnectionInfo = self.shared.convert(connection)?;
                let msg: t020::OutboundMessage = self.shared.convert(msg)?;
                let sent = call!(self, pre, scope, [connection, msg], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_send(store, connection, msg))?;
                self.up_result(sent, Ok)
            }
            ConnectorPre::V0_1_0(pre) => {
                let (connection, msg) = self.down(connection, msg)?;
                let sent = call!(self, pre, scope, [connection, msg], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_send(store, connection, msg))?;
                self.up_result(sent, Ok)
            }
        }
    }

    /// `connector.check-credentials`.
    pub async fn check_credentials(
        &self,
        scope: SecretScope,
        connection: &ConnectionInfo,
    ) -> Result<Result<CredentialHealth, ProviderError>, CallError> {
        let _permit = self.shared.admit()?;
        match &self.pre {
            ConnectorPre::V0_3_0(pre) => call!(self, pre, scope, [connection], |inst, store| inst
                .switchyard_plugin_channel()
                .call_check_credentials(store, connection)),
            ConnectorPre::V0_2_0(pre) => {
                let connection: t020::ConnectionInfo = self.shared.convert(connection)?;
                let health = call!(self, pre, scope, [connection], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_check_credentials(store, connection))?;
                self.up_result(health, |h| self.shared.convert(&h))
            }
            ConnectorPre::V0_1_0(pre) => {
                let connection: v0_1_0::connector::switchyard::plugin::types::ConnectionInfo =
                    self.shared.convert(connection)?;
                let health = call!(self, pre, scope, [connection], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_check_credentials(store, connection))?;
                self.up_result(health, |h| Ok(credential_health(h)))
            }
        }
    }

    /// `connector.connect`: set the provider up for a connection whose credentials were just
    /// proven (a 0.1.0 connector has nothing to do).
    pub async fn connect(
        &self,
        scope: SecretScope,
        connection: &ConnectionInfo,
    ) -> Result<Result<(), ProviderError>, CallError> {
        let _permit = self.shared.admit()?;
        match &self.pre {
            ConnectorPre::V0_3_0(pre) => call!(self, pre, scope, [connection], |inst, store| inst
                .switchyard_plugin_channel()
                .call_connect(store, connection)),
            ConnectorPre::V0_2_0(pre) => {
                let connection: t020::ConnectionInfo = self.shared.convert(connection)?;
                let done = call!(self, pre, scope, [connection], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_connect(store, connection))?;
                self.up_result(done, Ok)
            }
            ConnectorPre::V0_1_0(_) => Ok(Ok(())),
        }
    }

    /// `connector.disconnect`: undo `connect` for a connection that ends.
    pub async fn disconnect(
        &self,
        scope: SecretScope,
        connection: &ConnectionInfo,
    ) -> Result<Result<(), ProviderError>, CallError> {
        let _permit = self.shared.admit()?;
        match &self.pre {
            ConnectorPre::V0_3_0(pre) => call!(self, pre, scope, [connection], |inst, store| inst
                .switchyard_plugin_channel()
                .call_disconnect(store, connection)),
            ConnectorPre::V0_2_0(pre) => {
                let connection: t020::ConnectionInfo = self.shared.convert(connection)?;
                let done = call!(self, pre, scope, [connection], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_disconnect(store, connection))?;
                self.up_result(done, Ok)
            }
            ConnectorPre::V0_1_0(_) => Ok(Ok(())),
        }
    }

    /// `connector.fetch-media`: the media's bytes, downloaded by the plugin or, when it says
    /// where, by the host itself under the plugin's grants.
    pub async fn fetch_media(
        &self,
        scope: SecretScope,
        connection: &ConnectionInfo,
        media: &MediaRef,
    ) -> Result<Result<MediaContent, ProviderError>, CallError> {
        let _permit = self.shared.admit()?;
        match &self.pre {
            ConnectorPre::V0_3_0(pre) => {
                let source = call!(
                    self,
                    pre,
                    scope.clone(),
                    [connection, media],
                    |inst, store| inst
                        .switchyard_plugin_channel()
                        .call_fetch_media(store, connection, media)
                )?;
                Ok(match source {
                    Ok(MediaSource::Content(content)) => Ok(content),
                    Ok(MediaSource::Fetch(fetch)) => self.shared.fetch(&scope, fetch).await,
                    Err(e) => Err(e),
                })
            }
            ConnectorPre::V0_2_0(pre) => {
                let connection: t020::ConnectionInfo = self.shared.convert(connection)?;
                let media: t020::MediaRef = self.shared.convert(media)?;
                let source = call!(
                    self,
                    pre,
                    scope.clone(),
                    [connection, media],
                    |inst, store| inst
                        .switchyard_plugin_channel()
                        .call_fetch_media(store, connection, media)
                )?;
                match source {
                    Ok(t020::MediaSource::Content(content)) => {
                        Ok(Ok(since_v0_2_0::media_content_up(content)))
                    }
                    Ok(t020::MediaSource::Fetch(fetch)) => {
                        let fetch = super::bindings::types::MediaFetch {
                            request: since_v0_2_0::request_up(fetch.request),
                            credentials: self.shared.convert(&fetch.credentials)?,
                            mime_type: fetch.mime_type,
                        };
                        Ok(self.shared.fetch(&scope, fetch).await)
                    }
                    Err(e) => Ok(Err(self.shared.convert(&e)?)),
                }
            }
            ConnectorPre::V0_1_0(pre) => {
                let connection: v0_1_0::connector::switchyard::plugin::types::ConnectionInfo =
                    self.shared.convert(connection)?;
                let media: v0_1_0::connector::switchyard::plugin::types::MediaRef =
                    self.shared.convert(media)?;
                let content = call!(self, pre, scope, [connection, media], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_fetch_media(store, connection, media))?;
                self.up_result(content, |c| Ok(since_v0_1_0::media_content_up(c)))
            }
        }
    }

    /// `connector.list-templates`.
    pub async fn list_templates(
        &self,
        scope: SecretScope,
        connection: &ConnectionInfo,
    ) -> Result<Result<Vec<TemplateInfo>, ProviderError>, CallError> {
        let _permit = self.shared.admit()?;
        match &self.pre {
            ConnectorPre::V0_3_0(pre) => call!(self, pre, scope, [connection], |inst, store| inst
                .switchyard_plugin_channel()
                .call_list_templates(store, connection)),
            ConnectorPre::V0_2_0(pre) => {
                let connection: t020::ConnectionInfo = self.shared.convert(connection)?;
                let templates = call!(self, pre, scope, [connection], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_list_templates(store, connection))?;
                self.up_result(templates, |t| self.shared.convert(&t))
            }
            ConnectorPre::V0_1_0(pre) => {
                let connection: v0_1_0::connector::switchyard::plugin::types::ConnectionInfo =
                    self.shared.convert(connection)?;
                let templates = call!(self, pre, scope, [connection], |inst, store| inst
                    .switchyard_plugin_channel()
                    .call_list_templates(store, connection))?;
                self.up_result(templates, |t| self.shared.convert(&t))
            }
        }
    }

    /// A connection and an outbound message in 0.1.0's types.
    #[allow(clippy::type_complexity)]
    fn down(
        &self,
        connection: &ConnectionInfo,
        msg: &OutboundMessage,
    ) -> Result<
        (
            v0_1_0::connector::switchyard::plugin::types::ConnectionInfo,
            v0_1_0::connector::switchyard::plugin::types::OutboundMessage,
        ),
        CallError,
    > {
        Ok((self.shared.convert(connection)?, self.shared.convert(msg)?))
    }

    /// An older version's call result in the newest types: `ok` converts its value, its
    /// provider error converts as it is.
    fn up_result<T, U, E: serde::Serialize>(
        &self,
        result: Result<T, E>,
        ok: impl FnOnce(T) -> Result<U, CallError>,
    ) -> Result<Result<U, ProviderError>, CallError> {
        match result {
            Ok(value) => Ok(Ok(ok(value)?)),
            Err(e) => Ok(Err(self.shared.convert(&e)?)),
        }
    }
}

impl PluginShared {
    /// Convert between an older version's type and the newest (a failure is the plugin's call
    /// failing).
    fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(
        &self,
        a: &A,
    ) -> Result<B, CallError> {
        convert(a).map_err(|reason| CallError::Trap {
            plugin: self.label.clone(),
            reason,
        })
    }

    /// Download media where a connector said, under its grants and with the secrets it named.
    async fn fetch(
        &self,
        scope: &SecretScope,
        fetch: super::bindings::types::MediaFetch,
    ) -> Result<MediaContent, ProviderError> {
        let refused = |code: &str, message: String| ProviderError {
            kind: ErrorKind::Permanent,
            code: code.into(),
            message,
            retry_after: None,
        };
        if !fetch.request.method.eq_ignore_ascii_case("GET") {
            return Err(refused("egress", "a media download is a GET".to_string()));
        }
        let resp = self
            .egress(scope, fetch.request, fetch.credentials)
            .await
            .map_err(|e| match e {
                EgressError::Timeout | EgressError::ConnectionFailed(_) => ProviderError {
                    kind: ErrorKind::Transient,
                    code: "egress".into(),
                    message: format!("{e:?}"),
                    retry_after: None,
                },
                e => refused("egress", format!("{e:?}")),
            })?;
        if !(200..300).contains(&resp.status) {
            // A refusal here is the file's (an expired link, a CDN the credentials never
            // reached), not the connection's: it never pauses the connection.
            return Err(ProviderError {
                kind: match resp.status {
                    429 => ErrorKind::RateLimited,
                    s if s >= 500 => ErrorKind::Transient,
                    _ => ErrorKind::Permanent,
                },
                code: resp.status.to_string(),
                message: "the media download was refused".into(),
                retry_after: None,
            });
        }
        let mime_type = fetch.mime_type.unwrap_or_else(|| {
            resp.headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map_or_else(|| "application/octet-stream".into(), |(_, v)| v.clone())
        });
        Ok(MediaContent {
            mime_type,
            body: resp.body,
        })
    }
}

impl PolicyPlugin {
    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// The sha256 of its component bytes.
    pub fn sha256(&self) -> &str {
        &self.shared.sha256
    }

    /// Whether it exports `insights` (sentiment and a summary of a conversation).
    pub fn has_insights(&self) -> bool {
        self.insights.is_some()
    }

    /// `insights.analyze`: how a conversation is going, from its transcript (oldest first);
    /// `Ok(Err(reason))` is the policy declining, in its words. `None` without the export.
    pub async fn analyze(
        &self,
        ctx: &ConversationContext,
        transcript: &[Turn],
    ) -> Option<Result<Result<Insight, String>, CallError>> {
        let insights = self.insights.as_ref()?;
        let _permit = match self.shared.admit() {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        Some(match insights {
            InsightsPre::V0_3_0(pre) => {
                let transcript = transcript.to_vec();
                call!(
                    self,
                    pre,
                    SecretScope::default(),
                    [ctx, transcript],
                    |inst, store| inst
                        .switchyard_plugin_insights()
                        .call_analyze(store, ctx, transcript)
                )
            }
            InsightsPre::V0_2_0(pre) => self.analyze_v0_2_0(pre, ctx, transcript).await,
        })
    }

    /// `analyze` for a 0.2.0 policy, in its types.
    async fn analyze_v0_2_0(
        &self,
        pre: &v0_2_0::policy_with_insights::PolicyWithInsightsPre<CallState>,
        ctx: &ConversationContext,
        transcript: &[Turn],
    ) -> Result<Result<Insight, String>, CallError> {
        let ctx: t020::ConversationContext = self.shared.convert(ctx)?;
        let transcript: Vec<t020::Turn> = self.shared.convert(&transcript)?;
        let insight = call!(
            self,
            pre,
            SecretScope::default(),
            [ctx, transcript],
            |inst, store| inst
                .switchyard_plugin_insights()
                .call_analyze(store, ctx, transcript)
        )?;
        match insight {
            Ok(insight) => Ok(Ok(self.shared.convert(&insight)?)),
            Err(declined) => Ok(Err(declined)),
        }
    }

    /// `policy.decide`: the actions it proposes for one inbound message.
    pub async fn decide(
        &self,
        ctx: &ConversationContext,
        msg: &InboundMessage,
    ) -> Result<Vec<Action>, CallError> {
        let _permit = self.shared.admit()?;
        match &self.pre {
            PolicyPre::V0_3_0(pre) => {
                call!(
                    self,
                    pre,
                    SecretScope::default(),
                    [ctx, msg],
                    |inst, store| inst.switchyard_plugin_policy().call_decide(store, ctx, msg)
                )
            }
            PolicyPre::V0_2_0(pre) => {
                let ctx: t020::ConversationContext = self.shared.convert(ctx)?;
                let msg: t020::InboundMessage = self.shared.convert(msg)?;
                let actions = call!(
                    self,
                    pre,
                    SecretScope::default(),
                    [ctx, msg],
                    |inst, store| inst.switchyard_plugin_policy().call_decide(store, ctx, msg)
                )?;
                self.shared.convert(&actions)
            }
            PolicyPre::V0_1_0(pre) => {
                let ctx: v0_1_0::connector::switchyard::plugin::types::ConversationContext =
                    self.shared.convert(ctx)?;
                let msg: v0_1_0::connector::switchyard::plugin::types::InboundMessage =
                    self.shared.convert(msg)?;
                let actions = call!(
                    self,
                    pre,
                    SecretScope::default(),
                    [ctx, msg],
                    |inst, store| inst.switchyard_plugin_policy().call_decide(store, ctx, msg)
                )?;
                self.shared.convert(&actions)
            }
        }
    }
}
