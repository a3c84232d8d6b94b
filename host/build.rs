//! Builds the plugins in `../plugins` for wasm32-wasip2, packs each with its manifest, and
//! generates `$OUT_DIR/plugins.rs`: the bundled plugins embedded as bytes, and the paths of the
//! test-only plugins.
//!
//! Like wasmtime's `crates/test-programs/artifacts/build.rs`: a nested `cargo build` with its own
//! target directory, an environment scrubbed of the outer build's wrappers and flags, and the
//! wasm target installed through rustup when it is missing (RUSTUP_AUTO_INSTALL=0 machines).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/runtime/manifest_section.rs"]
mod manifest_section;

const TARGET: &str = "wasm32-wasip2";
/// The interface a plugin whose metadata names none was built against.
const DEFAULT_INTERFACE: &str = "switchyard:plugin@0.1.0";

fn main() {
    if let Err(message) = run() {
        println!("cargo::error={message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir
        .parent()
        .ok_or("host crate has no parent directory")?
        .to_path_buf();
    let plugins = root.join("plugins");
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    println!("cargo::rerun-if-changed={}", plugins.display());
    println!("cargo::rerun-if-changed={}", root.join("wit").display());

    ensure_target()?;
    let target_dir = plugin_target_dir(&out_dir);
    let packages = plugin_packages(&plugins)?;

    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    let status = cmd
        .status()
        .map_err(|e| format!("running cargo for the plugins: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the plugins in {} for {TARGET} failed (see the output above)",
            plugins.display()
        ));
    }

    let mut generated = String::from(
        "/// Plugins built into the binary: (name, packed component bytes).\n\
         pub static BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    let mut testing = String::from(
        "/// Test-only plugins: (name, path of the packed component).\n\
         #[doc(hidden)]\npub static TESTING: &[(&str, &str)] = &[\n",
    );
    for pkg in &packages {
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", pkg.name.replace('-', "_")));
        let bytes =
            std::fs::read(&built).map_err(|e| format!("reading {}: {e}", built.display()))?;
        let mut manifest = serde_json::json!({
            "name": pkg.name,
            "version": pkg.version,
            "world": pkg.world,
            "interface": pkg.interface,
            "egress": pkg.egress,
        });
        if let Some(base) = &pkg.api_base_url {
            manifest["api_base_url"] = serde_json::json!(base);
        }
        if let Some(channel) = &pkg.channel {
            manifest["channel"] =
                serde_json::from_str(channel).map_err(|e| format!("{}: {e}", pkg.name))?;
        }
        if !pkg.credentials.is_empty() {
            manifest["credentials"] = serde_json::json!(pkg.credentials);
        }
        if let Some(connection) = &pkg.connection {
            manifest["connection"] =
                serde_json::from_str(connection).map_err(|e| format!("{}: {e}", pkg.name))?;
        }
        let manifest = manifest.to_string();
        let mut packed = bytes;
        manifest_section::append_custom_section(
            &mut packed,
            manifest_section::SECTION_NAME,
            manifest.as_bytes(),
        );
        let dest = out_dir.join(format!("{}.wasm", pkg.name));
        std::fs::write(&dest, &packed).map_err(|e| format!("writing {}: {e}", dest.display()))?;
        match pkg.bundle.as_str() {
            "bundled" => writeln!(
                generated,
                "    ({:?}, include_bytes!({:?})),",
                pkg.name,
                dest.display().to_string()
            ),
            _ => writeln!(
                testing,
                "    ({:?}, {:?}),",
                pkg.name,
                dest.display().to_string()
            ),
        }
        .map_err(|e| e.to_string())?;
    }
    generated.push_str("];\n");
    testing.push_str("];\n");
    generated.push_str(&testing);
    std::fs::write(out_dir.join("plugins.rs"), generated).map_err(|e| e.to_string())?;
    Ok(())
}

/// A `cargo` command with the outer build's wrappers and flags removed.
fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Make sure the wasm target's standard library is installed for the toolchain in use.
fn ensure_target() -> Result<(), String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running {rustc} --print sysroot: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return Ok(());
    }
    println!(
        "cargo::warning=installing the {TARGET} target with rustup (needed to build the bundled plugins)"
    );
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

/// `<outer target dir>/switchyard-plugins`: shared by every profile and by clippy.
fn plugin_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(|target| target.join("switchyard-plugins"))
        .unwrap_or_else(|| out_dir.join("switchyard-plugins"))
}

struct PluginPackage {
    name: String,
    version: String,
    world: String,
    /// The interface package and version it targets.
    interface: String,
    /// A 0.2.0 connector's provider API base URL.
    api_base_url: Option<String>,
    /// A connector's channel rules (JSON), if declared.
    channel: Option<String>,
    egress: Vec<String>,
    credentials: Vec<String>,
    bundle: String,
    /// The connector's declared settings and secrets (JSON), if any.
    connection: Option<String>,
}

/// A list of host names from the metadata (absent = empty).
fn hosts(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str().map(str::to_string))
        .collect()
}

/// The plugin packages and their `[package.metadata.switchyard]`, from `cargo metadata`.
fn plugin_packages(plugins: &Path) -> Result<Vec<PluginPackage>, String> {
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata for {} failed: {}",
            plugins.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let mut found = Vec::new();
    for pkg in meta["packages"].as_array().into_iter().flatten() {
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
        found.push(PluginPackage {
            name: text(&pkg["name"], "name")?,
            version: text(&pkg["version"], "version")?,
            world: text(&sy["world"], "world")?,
            interface: sy["interface"]
                .as_str()
                .unwrap_or(DEFAULT_INTERFACE)
                .to_string(),
            api_base_url: sy["api_base_url"].as_str().map(str::to_string),
            channel: (!sy["channel"].is_null()).then(|| sy["channel"].to_string()),
            bundle: text(&sy["bundle"], "bundle")?,
            egress: hosts(&sy["egress"]),
            credentials: hosts(&sy["credentials"]),
            connection: (!sy["connection"].is_null()).then(|| sy["connection"].to_string()),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}
