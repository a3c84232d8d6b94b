//! The WASI a plugin gets: only what Rust's standard library needs to run and report a panic.
//!
//! Linked (harmless, no host resources behind them):
//! - `wasi:io/{error,poll,streams}`: the stream types that stdout/stderr are made of;
//! - `wasi:cli/{stdout,stderr}`: one capped in-memory buffer the host logs after the call
//!   (this is where a Rust panic message goes); `wasi:cli/stdin` is empty;
//! - `wasi:cli/terminal-*`: report "not a terminal";
//! - `wasi:cli/environment`: no variables, no arguments, no working directory;
//! - `wasi:cli/exit`: ends the call as a trap;
//! - `wasi:clocks/{wall-clock,monotonic-clock}` and `wasi:random/*`: time and randomness
//!   (`HashMap` seeds), which reveal nothing about the host or other tenants.
//!
//! Not linked: `wasi:filesystem/*`, `wasi:sockets/*`, `wasi:http/*`. A component that imports
//! them still loads (std links some of them in), but every such function traps when called.
//! The plugin's only way out is `switchyard:plugin/egress`.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasData, Linker, ResourceTable, ResourceType};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView as _};

use super::state::CallState;

struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Add the allowed WASI interfaces to a plugin linker.
pub(crate) fn add_to_linker(l: &mut Linker<CallState>) -> wasmtime::Result<()> {
    type T = CallState;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    Ok(())
}

/// The WASI interfaces [`add_to_linker`] provides (any 0.2.x version matches).
const PROVIDED: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/exit",
    "wasi:cli/environment",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// True when `import` (e.g. `wasi:cli/stderr@0.2.6`) is a WASI interface the host provides.
pub(crate) fn is_provided(import: &str) -> bool {
    PROVIDED.contains(&import.split('@').next().unwrap_or(import))
}

/// Define every function of the component's other WASI imports (filesystem, sockets, …) as a
/// trap, so components that merely link them load, and any call to them fails the call.
///
/// (wasmtime's `define_unknown_imports_as_traps` would also shadow the provided interfaces when
/// the component imports an older 0.2.x version of them, so the host does it itself.)
pub(crate) fn deny_others(
    engine: &Engine,
    linker: &mut Linker<CallState>,
    component: &Component,
) -> wasmtime::Result<()> {
    for (name, import) in component.component_type().imports(engine) {
        if !name.starts_with("wasi:") || is_provided(name) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        let mut stub = linker.instance(name)?;
        for (item, export) in instance.exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) => {
                    let denied = format!("{name}#{item} is not available to plugins");
                    stub.func_new(item, move |_, _, _, _| {
                        Err(wasmtime::Error::msg(denied.clone()))
                    })?;
                }
                ComponentItem::Resource(_) => {
                    stub.resource(item, ResourceType::host::<()>(), |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}
