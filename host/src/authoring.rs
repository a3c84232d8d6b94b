//! Tools for plugin authors: `switchyard plugin new` scaffolds a crate on the SDK that builds,
//! packs and passes its own tests; `switchyard plugin build` builds a crate for the wasm target
//! and packs it with the manifest its `Cargo.toml` declares.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::runtime::manifest::{Manifest, World};

use crate::runtime::cargo_plugin::TARGET;

/// The SDK beside this host's sources, when this binary was built from a checkout.
pub fn default_sdk() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/sdk")
        .canonicalize()
        .ok()
}

/// Write a new plugin crate named `name` for `world` into `dir`, depending on the SDK at `sdk`.
pub fn new_plugin(name: &str, world: World, dir: &Path, sdk: &Path) -> anyhow::Result<()> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        bail!(
            "{name:?}: a plugin name is 1-64 lower-case letters, digits and '-', starting with a letter"
        );
    }
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("the SDK at {}", sdk.display()))?;
    if !sdk.join("Cargo.toml").exists() {
        bail!(
            "{} is not the switchyard-sdk crate (no Cargo.toml)",
            sdk.display()
        );
    }
    let (lib, metadata) = match world {
        World::Connector => (
            include_str!("authoring/connector.rs.txt"),
            include_str!("authoring/connector.toml.txt"),
        ),
        World::ReplyPolicy => (
            include_str!("authoring/policy.rs.txt"),
            include_str!("authoring/policy.toml.txt"),
        ),
    };
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{world}}", world.as_str())
            .replace("{{sdk}}", &sdk.display().to_string().replace('\\', "/"))
            .replace("{{metadata}}", &metadata.replace("{{name}}", name))
    };
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    for (path, text) in [
        ("Cargo.toml", fill(include_str!("authoring/Cargo.toml.txt"))),
        ("src/lib.rs", fill(lib)),
        (".gitignore", "/target\n*.wasm\n".to_string()),
    ] {
        std::fs::write(dir.join(path), text)
            .with_context(|| format!("writing {}", dir.join(path).display()))?;
    }
    Ok(())
}

/// What [`build_plugin`] made.
pub struct Built {
    /// The packed component.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Build the plugin crate at `manifest_path` in release mode for the wasm target and pack it
/// with the manifest from its `[package.metadata.switchyard]`; written to `output` (default:
/// `<name>.wasm` beside `Cargo.toml`), building in `target_dir` when given.
pub fn build_plugin(
    manifest_path: &Path,
    output: Option<&Path>,
    target_dir: Option<&Path>,
) -> anyhow::Result<Built> {
    let cargo = || {
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        if let Some(dir) = target_dir {
            c.env("CARGO_TARGET_DIR", dir);
        }
        c
    };
    let metadata = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(manifest_path)
        .output()
        .context("running cargo metadata")?;
    if !metadata.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&metadata.stderr).trim()
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).context("reading cargo metadata")?;
    let wanted = manifest_path
        .canonicalize()
        .with_context(|| format!("{}", manifest_path.display()))?;
    let plugins = crate::runtime::cargo_plugin::plugins_in(&meta).map_err(anyhow::Error::msg)?;
    let plugin = plugins
        .into_iter()
        .find(|p| Path::new(&p.manifest_path).canonicalize().ok() == Some(wanted.clone()))
        .with_context(|| {
            format!(
                "{} has no [package.metadata.switchyard] table (see docs/plugin-authors.md)",
                manifest_path.display()
            )
        })?;
    let manifest: Manifest = serde_json::from_value(plugin.manifest.clone())
        .context("[package.metadata.switchyard] is not a valid manifest")?;
    manifest.validate()?;
    crate::runtime::cargo_plugin::ensure_target("rustc", |m| eprintln!("{m}"))
        .map_err(anyhow::Error::msg)?;
    let status = cargo()
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(manifest_path)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed (see above)");
    }
    let target_dir = meta["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    let built = Path::new(target_dir)
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", plugin.lib_name));
    let bytes = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let packed = manifest.embed(&bytes)?;
    let path = match output {
        Some(p) => p.to_path_buf(),
        None => wanted
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("{}.wasm", manifest.name)),
    };
    std::fs::write(&path, packed).with_context(|| format!("writing {}", path.display()))?;
    Ok(Built { path, manifest })
}
