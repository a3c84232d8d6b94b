//! A plugin's manifest from its Cargo package: `[package.metadata.switchyard]` as
//! `cargo metadata` reports it. Shared by the host's build script (the bundled plugins) and
//! `switchyard plugin build` (an author's crate), so both build and pack the same way.

use std::path::PathBuf;
use std::process::Command;

/// The target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// A plugin package found in `cargo metadata` output.
pub struct CargoPlugin {
    /// Package name (the plugin's name).
    pub name: String,
    /// The library target's name: the built file is `<lib_name>.wasm`.
    pub lib_name: String,
    /// Where the package's `Cargo.toml` is.
    pub manifest_path: String,
    /// The plugin manifest, as JSON.
    pub manifest: serde_json::Value,
    /// `bundle` (`bundled` or `testing`), for the host's own plugins.
    pub bundle: Option<String>,
}

/// The interface a package whose metadata names none was built against.
pub const DEFAULT_INTERFACE: &str = "switchyard:plugin@0.1.0";

/// Every package with a `[package.metadata.switchyard]` table in `metadata`, sorted by name.
pub fn plugins_in(metadata: &serde_json::Value) -> Result<Vec<CargoPlugin>, String> {
    let mut found = Vec::new();
    for pkg in metadata["packages"].as_array().into_iter().flatten() {
        let sy = &pkg["metadata"]["switchyard"];
        if sy.is_null() {
            continue;
        }
        let text = |v: &serde_json::Value, what: &str| {
            v.as_str().map(str::to_string).ok_or_else(|| {
                format!(
                    "plugin {}: `{what}` missing in [package.metadata.switchyard]",
                    pkg["name"]
                )
            })
        };
        let name = text(&pkg["name"], "name")?;
        let lib_name = pkg["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
            })
            .and_then(|t| t["name"].as_str())
            .map(|n| n.replace('-', "_"))
            .ok_or_else(|| format!("plugin {name}: no `cdylib` library target"))?;
        let mut manifest = serde_json::json!({
            "name": name,
            "version": text(&pkg["version"], "version")?,
            "world": text(&sy["world"], "world")?,
            "interface": sy["interface"].as_str().unwrap_or(DEFAULT_INTERFACE),
            "egress": sy["egress"].as_array().cloned().unwrap_or_default(),
        });
        for key in ["credentials", "connection", "channel", "api_base_url"] {
            if !sy[key].is_null() {
                manifest[key] = sy[key].clone();
            }
        }
        found.push(CargoPlugin {
            name,
            lib_name,
            manifest_path: text(&pkg["manifest_path"], "manifest_path")?,
            manifest,
            bundle: sy["bundle"].as_str().map(str::to_string),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Make sure the wasm target's standard library is installed for `rustc`, installing it with
/// rustup when it is not (`RUSTUP_AUTO_INSTALL=0` machines do not install targets on demand);
/// `say` is told before rustup runs.
pub fn ensure_target(rustc: &str, say: impl Fn(&str)) -> Result<(), String> {
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running {rustc} --print sysroot: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return Ok(());
    }
    say(&format!(
        "installing the {TARGET} target with rustup (needed to build plugins)"
    ));
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|e| {
            format!("the {TARGET} target is not installed and rustup could not run ({e}): install it with `rustup target add {TARGET}`")
        })?;
    if !status.success() || !sysroot.join("lib/rustlib").join(TARGET).exists() {
        return Err(format!(
            "could not install the {TARGET} target: run `rustup target add {TARGET}` and build again"
        ));
    }
    Ok(())
}
