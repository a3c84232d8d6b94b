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

#[path = "src/runtime/cargo_plugin.rs"]
#[allow(dead_code)]
mod cargo_plugin;
#[path = "src/runtime/manifest_section.rs"]
mod manifest_section;

use cargo_plugin::TARGET;

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
    // `sqlx::migrate!` embeds the migrations: a new file must rebuild the host.
    println!(
        "cargo::rerun-if-changed={}",
        root.join("migrations").display()
    );

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    cargo_plugin::ensure_target(&rustc, |m| println!("cargo::warning={m}"))?;
    let target_dir = plugin_target_dir(&out_dir);
    let packages = plugin_packages(&plugins)?;

    // One build per plugin: cargo unifies features across the packages of one build, and a
    // component built with both of the SDK's worlds would have to export both.
    for pkg in &packages {
        let mut cmd = cargo();
        cmd.args(["build", "--release", "--target", TARGET, "--manifest-path"])
            .arg(plugins.join("Cargo.toml"))
            .args(["-p", &pkg.name])
            .arg("--target-dir")
            .arg(&target_dir);
        let status = cmd
            .status()
            .map_err(|e| format!("running cargo for the plugins: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building the plugin {} in {} for {TARGET} failed (see the output above)",
                pkg.name,
                plugins.display()
            ));
        }
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
            .join(format!("{}.wasm", pkg.lib_name));
        let bytes =
            std::fs::read(&built).map_err(|e| format!("reading {}: {e}", built.display()))?;
        let manifest = pkg.manifest.to_string();
        let mut packed = bytes;
        manifest_section::append_custom_section(
            &mut packed,
            manifest_section::SECTION_NAME,
            manifest.as_bytes(),
        );
        let dest = out_dir.join(format!("{}.wasm", pkg.name));
        std::fs::write(&dest, &packed).map_err(|e| format!("writing {}: {e}", dest.display()))?;
        match pkg.bundle.as_deref().unwrap_or_default() {
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

/// `<outer target dir>/switchyard-plugins`: shared by every profile and by clippy.
fn plugin_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(|target| target.join("switchyard-plugins"))
        .unwrap_or_else(|| out_dir.join("switchyard-plugins"))
}

/// The plugin packages and their manifests, from `cargo metadata`.
fn plugin_packages(plugins: &Path) -> Result<Vec<cargo_plugin::CargoPlugin>, String> {
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
    cargo_plugin::plugins_in(&meta)
}
