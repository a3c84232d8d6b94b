//! Demo mode: a first `serve` on a laptop works without any set-up.
//!
//! With no operator token and no master key, on the default SQLite file and a loopback address,
//! the host generates both into the data directory (mode 0600), reuses them on later starts, and
//! says so on stderr, naming the file that holds the token (never the token). Anywhere else a
//! missing token or key is a start-up error that names the variable.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::config::Config;
use crate::vault::Secret;
use crate::vault::crypto::MasterKeys;

/// File holding the demo operator token.
pub const TOKEN_FILE: &str = "operator-token";
/// File holding the demo master key.
pub const KEY_FILE: &str = "master.key";

/// The operator token and master keys to run with (generated in demo mode).
pub fn credentials(config: &Config) -> anyhow::Result<(Secret, MasterKeys)> {
    let keys = config.keys.load()?;
    match (&config.operator_token, keys) {
        (Some(token), Some(keys)) => Ok((token.clone(), keys)),
        (None, None) if demo_allowed(config) => demo(&config.data_dir),
        (None, _) => anyhow::bail!(
            "SWITCHYARD_OPERATOR_TOKEN is not set (demo mode, which generates one, needs the \
             default SQLite database, a loopback listen address and no master key either)"
        ),
        (Some(_), None) => anyhow::bail!(
            "SWITCHYARD_MASTER_KEY (or SWITCHYARD_MASTER_KEY_FILE) is not set: the vault needs a \
             32-byte base64 master key"
        ),
    }
}

/// Whether demo mode may generate the credentials: the default SQLite database and a
/// loopback listen address.
pub fn demo_allowed(config: &Config) -> bool {
    config.default_database && config.listen.ip().is_loopback()
}

fn demo(dir: &Path) -> anyhow::Result<(Secret, MasterKeys)> {
    let token_path = dir.join(TOKEN_FILE);
    let key_path = dir.join(KEY_FILE);
    let token = match std::fs::read_to_string(&token_path) {
        Ok(t) if !t.trim().is_empty() => Secret::new(t.trim().as_bytes().to_vec()),
        _ => {
            let t = crate::tenancy::ids::new_secret();
            write_private(&token_path, t.as_bytes())?;
            Secret::new(t.as_bytes().to_vec())
        }
    };
    let keys = if key_path.exists() {
        MasterKeys::from_file(&key_path)
            .with_context(|| format!("reading the demo master key {}", key_path.display()))?
    } else {
        let keys = MasterKeys::generate();
        write_private(&key_path, keys.to_file_contents().as_bytes())?;
        keys
    };
    eprintln!(
        "\n  *** DEMO MODE ***\n  \
         No SWITCHYARD_OPERATOR_TOKEN or SWITCHYARD_MASTER_KEY was given, so this host generated both:\n  \
         operator token: {}\n  master key:     {}\n  \
         Anyone who can read these files holds the operator's rights and can open the vault.\n  \
         Set both variables before this host faces anything but your own machine.\n",
        token_path.display(),
        key_path.display()
    );
    Ok((token, keys))
}

/// Create `path` readable by its owner only and write `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()?;
    Ok(())
}
