//! Compiled-code cache on local disk, keyed by the component's sha256 and the engine's
//! configuration, so a restart does not recompile.
//!
//! File: `<dir>/<sha256>-<engine>.cwasm`, holding an HMAC-SHA256 tag followed by the compiled
//! artifact. The tag is keyed by a key derived (HKDF, purpose `plugin-cache`) from the vault's
//! master key and covers the file's name (component hash and engine) and the artifact, and it is
//! checked before wasmtime reads a byte: `deserialize` trusts its input completely (it maps it
//! as executable code), so a file anyone but this host wrote — or a valid artifact of another
//! component moved under this name — is recompiled instead of loaded. The directory is created
//! 0700 and its files 0600.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;
use zeroize::Zeroizing;

/// Length of the tag in front of the artifact.
const TAG_LEN: usize = 32;

/// The key that authenticates cached code; derive it with [`CacheKey::derive`].
#[derive(Clone)]
pub struct CacheKey(Zeroizing<[u8; 32]>);

impl CacheKey {
    /// The cache key of the vault's current master key.
    pub fn derive(keys: &crate::vault::crypto::MasterKeys) -> anyhow::Result<CacheKey> {
        let key = keys
            .purpose_key(keys.current_version(), "plugin-cache")
            .map_err(|e| anyhow::anyhow!("deriving the plugin cache key: {e}"))?;
        Ok(CacheKey(Zeroizing::new(*key)))
    }

    /// A key from raw bytes (tests and tools).
    pub fn from_bytes(bytes: [u8; 32]) -> CacheKey {
        CacheKey(Zeroizing::new(bytes))
    }

    fn tag(&self, name: &str, artifact: &[u8]) -> Hmac<Sha256> {
        // A 32-byte key always fits HMAC: `new_from_slice` cannot fail here.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"switchyard-plugin-cache-v1\0");
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac.update(artifact);
        mac
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey([redacted])")
    }
}

/// Compile `bytes`, or load the cached compilation of the same bytes for this engine.
/// Without a directory and a key nothing is cached.
pub(crate) fn compile(
    engine: &Engine,
    bytes: &[u8],
    sha256: &str,
    cache: Option<(&Path, &CacheKey)>,
) -> Result<Component, String> {
    let Some((dir, key)) = cache else {
        return Component::new(engine, bytes).map_err(|e| format!("{e:#}"));
    };
    let name = file_name(engine, sha256);
    let path = dir.join(&name);
    if let Some(component) = read_cached(engine, &path, &name, key) {
        return Ok(component);
    }
    let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    if let Err(e) = write_cached(&component, dir, &path, &name, key) {
        tracing::warn!(path = %path.display(), error = %e, "could not cache compiled plugin");
    }
    Ok(component)
}

/// The cache file of `sha256`'s compilation for this engine.
fn file_name(engine: &Engine, sha256: &str) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{sha256}-{:016x}.cwasm", hasher.finish())
}

/// Drop the cached compilation of a component that failed the loader's later checks, so
/// refused components do not accumulate in the cache.
pub(crate) fn forget(engine: &Engine, sha256: &str, dir: &Path) {
    let _ = std::fs::remove_file(dir.join(file_name(engine, sha256)));
}

fn read_cached(engine: &Engine, path: &Path, name: &str, key: &CacheKey) -> Option<Component> {
    let data = std::fs::read(path).ok()?;
    let (tag, artifact) = data.split_at_checked(TAG_LEN)?;
    // Constant-time comparison inside `verify_slice`.
    if key.tag(name, artifact).verify_slice(tag).is_err() {
        tracing::warn!(path = %path.display(), "cached plugin code fails authentication; recompiling");
        return None;
    }
    // SAFETY: the artifact carries a valid HMAC under a key only this host holds (derived from
    // the vault master key) over this file name, so it is exactly what this host's
    // `Component::serialize` wrote for this component; wasmtime checks engine compatibility.
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

fn write_cached(
    component: &Component,
    dir: &Path,
    path: &Path,
    name: &str,
    key: &CacheKey,
) -> anyhow::Result<()> {
    create_private_dir(dir)?;
    let artifact = component.serialize()?;
    let tag = key.tag(name, &artifact).finalize().into_bytes();
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = private_file(&tmp)?;
    file.write_all(&tag)?;
    file.write_all(&artifact)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Create `dir` (and parents) readable by the owner only; tighten it if it exists.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        builder.mode(0o700);
        builder.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// A new file readable and writable by the owner only.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn engine() -> Engine {
        Engine::new(wasmtime::Config::new().wasm_component_model(true)).expect("engine")
    }

    fn component(name: &str) -> &'static [u8] {
        crate::bundled::plugin(name).expect("bundled plugin")
    }

    #[test]
    fn a_forged_cache_file_is_refused_and_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("cache");
        let engine = engine();
        let key = CacheKey::from_bytes([7; 32]);
        let echo = component("echo");
        let sha = hex::encode(sha2::Sha256::digest(echo));
        compile(&engine, echo, &sha, Some((&cache, &key))).expect("compile");
        let files: Vec<_> = std::fs::read_dir(&cache)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        assert_eq!(files.len(), 1);
        let path = &files[0];
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&cache), 0o700);
            assert_eq!(mode(path), 0o600);
        }
        assert!(
            read_cached(&engine, path, name, &key).is_some(),
            "own file loads"
        );

        // Another component's genuine artifact under echo's name, framed the way the old cache
        // did (its sha256 in front, which matches): an attacker can compute that, not the MAC.
        let other = Component::new(&engine, component("auto-reply")).expect("compile other");
        let artifact = other.serialize().expect("serialize");
        let mut forged = sha2::Sha256::digest(&artifact).to_vec();
        forged.extend_from_slice(&artifact);
        std::fs::write(path, &forged).expect("write forged");
        assert!(
            read_cached(&engine, path, name, &key).is_none(),
            "forged file refused"
        );
        // A valid file made under another key (another host's master key) is refused too.
        let stranger = CacheKey::from_bytes([8; 32]);
        let mut foreign = stranger
            .tag(name, &artifact)
            .finalize()
            .into_bytes()
            .to_vec();
        foreign.extend_from_slice(&artifact);
        std::fs::write(path, &foreign).expect("write foreign");
        assert!(
            read_cached(&engine, path, name, &key).is_none(),
            "other key refused"
        );

        // Loading recompiles and rewrites the file with a valid tag.
        compile(&engine, echo, &sha, Some((&cache, &key))).expect("recompile");
        let rewritten = std::fs::read(path).expect("read");
        assert_ne!(rewritten, foreign);
        assert!(read_cached(&engine, path, name, &key).is_some());
    }
}
