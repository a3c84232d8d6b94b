//! Typed errors of the runtime: loading a plugin, and one call into one.

use super::manifest::ManifestError;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest is missing or invalid.
    #[error("plugin manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The component did not compile.
    #[error("{plugin}: does not compile: {reason}")]
    Compile {
        /// `name@version`.
        plugin: String,
        /// Compiler's reason.
        reason: String,
    },
    /// The component does not implement the world its manifest names.
    #[error("{plugin}: does not implement world `{world}`: {missing}")]
    WrongWorld {
        /// `name@version`.
        plugin: String,
        /// The world the manifest names.
        world: String,
        /// What is missing or mismatched.
        missing: String,
    },
    /// The component imports something the host does not provide to its world.
    #[error("{plugin}: imports `{import}`, which world `{world}` does not provide")]
    ForbiddenImport {
        /// `name@version`.
        plugin: String,
        /// The world.
        world: String,
        /// The import's name.
        import: String,
    },
    /// A plugin with the same name is already loaded.
    #[error("a plugin named {0} is already loaded")]
    Duplicate(String),
    /// Reading a plugin file failed.
    #[error("reading {path}: {reason}")]
    Io {
        /// File path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Why one call into a plugin failed. The plugin's instance is gone; the host and pool are fine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin ran past its CPU deadline.
    #[error("{plugin}: exceeded its CPU deadline of {limit_ms} ms")]
    Timeout {
        /// `name@version`.
        plugin: String,
        /// The deadline.
        limit_ms: u64,
    },
    /// The call (including egress waits) ran past its wall-clock limit.
    #[error("{plugin}: exceeded its wall-clock limit of {limit_ms} ms")]
    WallClock {
        /// `name@version`.
        plugin: String,
        /// The limit.
        limit_ms: u64,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("{plugin}: exceeded its memory cap of {limit_mib} MiB")]
    OutOfMemory {
        /// `name@version`.
        plugin: String,
        /// The cap.
        limit_mib: u64,
    },
    /// The plugin trapped (panic, `unreachable`, bad memory access, denied WASI call …).
    #[error("{plugin}: trapped: {reason}")]
    Trap {
        /// `name@version`.
        plugin: String,
        /// The trap, and the plugin's last stderr line when it printed one (e.g. a panic).
        reason: String,
    },
    /// Every instance slot is in use; retry later.
    #[error("no free plugin instance slot (all {0} in use)")]
    Busy(u32),
}

impl CallError {
    /// True when retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CallError::Busy(_))
    }
}
