//! Per-call store data: what one fresh plugin instance can reach, and the limits it runs under.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::PluginShared;
use crate::vault::SecretScope;

/// Most bytes of a plugin's stderr kept per call (the rest is dropped).
const STDERR_CAPACITY: usize = 16 * 1024;

/// The data of one call's `Store`.
pub struct CallState {
    /// The plugin being called.
    pub(crate) plugin: Arc<PluginShared>,
    /// Whose secrets this call may use.
    pub(crate) scope: SecretScope,
    /// Memory and table caps; records when the memory cap was hit.
    pub(crate) limits: Limits,
    /// CPU time the guest has used in this call (egress waits and scheduling delays excluded).
    pub(crate) clock: Arc<super::clock::GuestClock>,
    /// Log lines the plugin may still write in this call.
    pub(crate) log_budget: u32,
    /// WASI state, created on the plugin's first WASI call (most calls make none).
    wasi: Option<WasiParts>,
}

struct WasiParts {
    ctx: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
}

impl CallState {
    pub(crate) fn new(plugin: Arc<PluginShared>, scope: SecretScope) -> Self {
        let limits = Limits {
            memory_bytes: plugin.limits.memory_bytes,
            table_elements: plugin.limits.table_elements,
            memory_hit: false,
        };
        CallState {
            plugin,
            scope,
            limits,
            clock: Arc::default(),
            log_budget: super::log::LINES_PER_CALL,
            wasi: None,
        }
    }

    /// CPU time the plugin itself has used.
    pub(crate) fn guest_time(&self) -> Duration {
        self.clock.used()
    }

    /// What the plugin wrote to stdout/stderr during the call, if anything.
    pub(crate) fn take_output(&mut self) -> Option<String> {
        let parts = self.wasi.take()?;
        let bytes = parts.stderr.contents();
        if bytes.is_empty() {
            None
        } else {
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let parts = self.wasi.get_or_insert_with(|| {
            // Nothing from the host: no environment, arguments, preopened directories or
            // network; stdout and stderr go to one capped buffer that the host logs.
            let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
            let ctx = WasiCtx::builder()
                .stdout(stderr.clone())
                .stderr(stderr.clone())
                .allow_blocking_current_thread(false)
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build();
            WasiParts {
                ctx,
                table: ResourceTable::new(),
                stderr,
            }
        });
        WasiCtxView {
            ctx: &mut parts.ctx,
            table: &mut parts.table,
        }
    }
}

/// Memory and table caps for one call.
pub(crate) struct Limits {
    memory_bytes: usize,
    table_elements: usize,
    pub(crate) memory_hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        // A component instantiates a few core instances (the module, shims, adapters).
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}
