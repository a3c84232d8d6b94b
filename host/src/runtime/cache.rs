//! Compiled-code cache on local disk, keyed by the component's sha256 and the engine's
//! configuration, so a restart does not recompile.
//!
//! File: `<dir>/<sha256>-<engine>.cwasm`, holding the sha256 of the compiled artifact followed by
//! the artifact. The hash is checked before wasmtime reads the bytes, so a truncated or corrupted
//! file is recompiled instead of loaded; wasmtime itself refuses code from another engine version
//! or configuration.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compile `bytes`, or load the cached compilation of the same bytes for this engine.
pub(crate) fn compile(
    engine: &Engine,
    bytes: &[u8],
    sha256: &str,
    dir: Option<&Path>,
) -> Result<Component, String> {
    let Some(dir) = dir else {
        return Component::new(engine, bytes).map_err(|e| format!("{e:#}"));
    };
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let path = dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()));
    if let Some(component) = read_cached(engine, &path) {
        return Ok(component);
    }
    let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    if let Err(e) = write_cached(&component, dir, &path) {
        tracing::warn!(path = %path.display(), error = %e, "could not cache compiled plugin");
    }
    Ok(component)
}

fn read_cached(engine: &Engine, path: &Path) -> Option<Component> {
    let data = std::fs::read(path).ok()?;
    let (digest, artifact) = data.split_at_checked(32)?;
    if Sha256::digest(artifact).as_slice() != digest {
        tracing::warn!(path = %path.display(), "cached plugin code is corrupt; recompiling");
        return None;
    }
    // SAFETY: the artifact was produced by `Component::serialize` of this host (its sha256 was
    // written beside it and matches, so it is complete and unaltered since), in the data
    // directory only the operator controls; wasmtime checks engine compatibility itself.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, artifact) };
    match component {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::info!(path = %path.display(), error = %e, "cached plugin code not usable; recompiling");
            None
        }
    }
}

fn write_cached(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let artifact = component.serialize()?;
    let mut data = Sha256::digest(&artifact).to_vec();
    data.extend_from_slice(&artifact);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &data)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
