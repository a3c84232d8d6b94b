//! The vault's envelope cryptography (no database code).
//!
//! Each holder (a connection or an endpoint) has its own random 32-byte [`DataKey`]; the holder's
//! secrets are sealed under it ([`SealedSecret`]), and the data key itself is sealed
//! ([`SealedKey`]) under an owner key derived with HKDF-SHA256 from a versioned master key
//! ([`MasterKeys`]). Destroying a holder's sealed data key crypto-shreds its secrets.
//!
//! Every seal is AES-256-GCM with a fresh random 96-bit nonce from the OS, and binds what the
//! ciphertext belongs to (purpose, owner, holder, and the field or master-key version) as
//! associated data, so a ciphertext moved to another holder, owner, field or version does not open.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::Secret;

/// Length of master, owner and data keys, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce, in bytes.
pub const NONCE_LEN: usize = 12;
/// Length of an AES-GCM authentication tag, in bytes.
const TAG_LEN: usize = 16;
/// HKDF salt: the domain of every owner key.
const HKDF_SALT: &[u8] = b"switchyard-vault-v1";
/// The variable holding the current master key.
const CURRENT_VAR: &str = "SWITCHYARD_MASTER_KEY";
/// The variable holding older master keys.
const PREVIOUS_VAR: &str = "SWITCHYARD_MASTER_KEYS_PREVIOUS";

/// Where a master key was read from (named in errors; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `SWITCHYARD_MASTER_KEY`.
    Current,
    /// `SWITCHYARD_MASTER_KEYS_PREVIOUS`, entry `n` (1-based).
    Previous(usize),
    /// The master key file, line `n` (1-based).
    FileLine(usize),
    /// The master key file as a whole.
    File,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Current => f.write_str(CURRENT_VAR),
            KeySource::Previous(n) => write!(f, "{PREVIOUS_VAR} (entry {n})"),
            KeySource::FileLine(n) => write!(f, "the master key file (line {n})"),
            KeySource::File => f.write_str("the master key file"),
        }
    }
}

/// A master-key configuration error (names the variable, never carries key material).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key was given.
    #[error("{at} is empty: expected a 32-byte base64 master key, optionally `<version>:<base64>`")]
    Missing {
        /// Where the key was expected.
        at: KeySource,
    },
    /// The key is not base64.
    #[error("{at} is not valid base64 (standard alphabet, with `=` padding)")]
    NotBase64 {
        /// Where the key was read from.
        at: KeySource,
    },
    /// The key decodes to the wrong number of bytes.
    #[error("{at} decodes to {given} bytes; a master key is exactly {KEY_LEN} bytes")]
    WrongLength {
        /// Where the key was read from.
        at: KeySource,
        /// How many bytes were given.
        given: usize,
    },
    /// An older key has no `<version>:` prefix.
    #[error("{at} has no version: older keys are written `<version>:<base64>`")]
    MissingVersion {
        /// Where the key was read from.
        at: KeySource,
    },
    /// The version is not a whole number from 1 to 4294967295.
    #[error("{at} has a bad version: expected a whole number from 1 to 4294967295 before `:`")]
    BadVersion {
        /// Where the key was read from.
        at: KeySource,
    },
    /// The same version is given twice.
    #[error("{at} repeats master-key version {version}; each version may be given once")]
    DuplicateVersion {
        /// Where the repeated version was read from.
        at: KeySource,
        /// The repeated version.
        version: u32,
    },
    /// An older key has a higher version than the current one.
    #[error(
        "{CURRENT_VAR} has version {current} but {at} has the higher version {highest}; \
         the current master key must have the highest version"
    )]
    CurrentNotHighest {
        /// The current key's version.
        current: u32,
        /// The highest older version.
        highest: u32,
        /// Where that older key was read from.
        at: KeySource,
    },
    /// The key file could not be read.
    #[error("could not read the master key file {path}: {error}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        error: std::io::Error,
    },
}

/// A sealing or opening failure (never carries key or secret material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultCryptoError {
    /// The sealed data key names a master-key version that is not configured.
    #[error(
        "master-key version {0} is not configured (list it in {PREVIOUS_VAR} until rotation \
         has re-sealed every data key)"
    )]
    UnknownKeyVersion(u32),
    /// Authentication failed: wrong key, or the ciphertext was altered or moved.
    #[error(
        "the {field} of {holder} could not be decrypted (wrong key, or the ciphertext was \
         altered or belongs elsewhere)"
    )]
    Undecryptable {
        /// The holder (`connection:…`, `endpoint:…`).
        holder: String,
        /// The field, or `data key`.
        field: String,
    },
    /// A sealed value has the wrong shape (nonce or ciphertext length, version out of range).
    #[error("a sealed vault value is malformed (wrong nonce, ciphertext or version)")]
    Malformed,
}

/// Fill `buf` from the OS random number generator.
///
/// Panics if the OS generator fails: sealing with a predictable key or nonce would be worse.
fn random(buf: &mut [u8]) {
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the OS random number generator failed");
}

/// The vault's master keys: the current version, which seals, and older versions, which only open.
pub struct MasterKeys {
    current: u32,
    keys: BTreeMap<u32, Zeroizing<[u8; KEY_LEN]>>,
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeys")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Decode one base64 key.
fn decode_key(b64: &str, at: &KeySource) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let b64 = b64.trim();
    if b64.is_empty() {
        return Err(KeyError::Missing { at: at.clone() });
    }
    let bytes = Zeroizing::new(
        STANDARD
            .decode(b64)
            .map_err(|_| KeyError::NotBase64 { at: at.clone() })?,
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(KeyError::WrongLength {
            at: at.clone(),
            given: bytes.len(),
        });
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Parse `<version>:<base64>`; without a `:`, `default` is the version (or it is an error).
fn parse_entry(
    entry: &str,
    at: &KeySource,
    default: Option<u32>,
) -> Result<(u32, Zeroizing<[u8; KEY_LEN]>), KeyError> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err(KeyError::Missing { at: at.clone() });
    }
    // Base64 never contains `:`, so the first one ends the version.
    let (version, b64) = match entry.split_once(':') {
        Some((v, b64)) => {
            let v = v.trim();
            let version = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                v.parse::<u32>().ok().filter(|&n| n >= 1)
            } else {
                None
            };
            (
                version.ok_or_else(|| KeyError::BadVersion { at: at.clone() })?,
                b64,
            )
        }
        None => (
            default.ok_or_else(|| KeyError::MissingVersion { at: at.clone() })?,
            entry,
        ),
    };
    Ok((version, decode_key(b64, at)?))
}

impl MasterKeys {
    /// Keys from `SWITCHYARD_MASTER_KEY` (`base64`, version 1, or `<version>:<base64>`) and
    /// `SWITCHYARD_MASTER_KEYS_PREVIOUS` (comma-separated `<version>:<base64>`, may be empty).
    pub fn parse(current: &str, previous: &str) -> Result<MasterKeys, KeyError> {
        let (version, key) = parse_entry(current, &KeySource::Current, Some(1))?;
        let mut keys = MasterKeys::single(version, key);
        for (i, entry) in previous.split(',').enumerate() {
            if entry.trim().is_empty() {
                continue;
            }
            let at = KeySource::Previous(i + 1);
            let (version, key) = parse_entry(entry, &at, None)?;
            keys.add_previous(version, key, at)?;
        }
        Ok(keys)
    }

    /// Keys from a file: the current key (as in `SWITCHYARD_MASTER_KEY`) on the first non-empty
    /// line, then optionally older keys, one `<version>:<base64>` per line.
    pub fn from_file(path: impl AsRef<Path>) -> Result<MasterKeys, KeyError> {
        let path = path.as_ref();
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| KeyError::Io {
            path: path.to_path_buf(),
            error,
        })?);
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let Some((n, first)) = lines.next() else {
            return Err(KeyError::Missing {
                at: KeySource::File,
            });
        };
        let (version, key) = parse_entry(first, &KeySource::FileLine(n), Some(1))?;
        let mut keys = MasterKeys::single(version, key);
        for (n, line) in lines {
            let at = KeySource::FileLine(n);
            let (version, key) = parse_entry(line, &at, None)?;
            keys.add_previous(version, key, at)?;
        }
        Ok(keys)
    }

    /// A fresh random master key, version 1 (demo mode).
    pub fn generate() -> MasterKeys {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        random(key.as_mut_slice());
        MasterKeys::single(1, key)
    }

    /// The text [`MasterKeys::from_file`] reads back: `<version>:<base64>` per line, current first.
    pub fn to_file_contents(&self) -> Zeroizing<String> {
        // Reserve up front so the string never reallocates (leaving key copies behind).
        let mut out = Zeroizing::new(String::with_capacity(self.keys.len() * 64));
        let ordered = std::iter::once(self.current).chain(
            self.keys
                .keys()
                .rev()
                .copied()
                .filter(|&v| v != self.current),
        );
        for version in ordered {
            if let Some(key) = self.keys.get(&version) {
                out.push_str(&version.to_string());
                out.push(':');
                STANDARD.encode_string(key.as_slice(), &mut out);
                out.push('\n');
            }
        }
        out
    }

    /// The version new seals are made under.
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// Whether the key of `version` is configured.
    pub fn has_version(&self, version: u32) -> bool {
        self.keys.contains_key(&version)
    }

    fn single(version: u32, key: Zeroizing<[u8; KEY_LEN]>) -> MasterKeys {
        MasterKeys {
            current: version,
            keys: BTreeMap::from([(version, key)]),
        }
    }

    fn add_previous(
        &mut self,
        version: u32,
        key: Zeroizing<[u8; KEY_LEN]>,
        at: KeySource,
    ) -> Result<(), KeyError> {
        if self.keys.contains_key(&version) {
            return Err(KeyError::DuplicateVersion { at, version });
        }
        if version > self.current {
            return Err(KeyError::CurrentNotHighest {
                current: self.current,
                highest: version,
                at,
            });
        }
        self.keys.insert(version, key);
        Ok(())
    }

    /// The master key of `version`.
    fn key(&self, version: u32) -> Result<&[u8; KEY_LEN], VaultCryptoError> {
        self.keys
            .get(&version)
            .map(|k| &**k)
            .ok_or(VaultCryptoError::UnknownKeyVersion(version))
    }

    /// The owner key of `owner` (`tenant:ten_…`, `partner:par_…`, `operator`) under `version`.
    fn owner_key(
        &self,
        version: u32,
        owner: &str,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultCryptoError> {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), self.key(version)?);
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        hkdf.expand(owner.as_bytes(), okm.as_mut_slice())
            .map_err(|_| VaultCryptoError::Malformed)?;
        Ok(okm)
    }

    /// A key for one host purpose (e.g. `onboarding-state`), derived from master-key `version`
    /// with its own HKDF label, so it never equals an owner key.
    pub fn purpose_key(
        &self,
        version: u32,
        purpose: &str,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultCryptoError> {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), self.key(version)?);
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        hkdf.expand(format!("purpose:{purpose}").as_bytes(), okm.as_mut_slice())
            .map_err(|_| VaultCryptoError::Malformed)?;
        Ok(okm)
    }

    /// Seal `key` for `holder` of `owner` under the current master-key version.
    pub fn seal_data_key(&self, owner: &str, holder: &str, key: &DataKey) -> SealedKey {
        let version = self.current;
        // The current version is always configured, and HKDF expands 32 bytes without fail.
        let owner_key = match self.owner_key(version, owner) {
            Ok(k) => k,
            Err(e) => unreachable!("the current master key is configured: {e}"),
        };
        let aad = aad(&[
            b"data-key",
            owner.as_bytes(),
            holder.as_bytes(),
            &version.to_be_bytes(),
        ]);
        let (nonce, ciphertext) = seal(&owner_key, &aad, key.0.as_slice());
        SealedKey {
            key_version: version,
            nonce,
            ciphertext,
        }
    }

    /// Open the data key of `holder` of `owner`, under the master-key version it was sealed with.
    pub fn open_data_key(
        &self,
        owner: &str,
        holder: &str,
        sealed: &SealedKey,
    ) -> Result<DataKey, VaultCryptoError> {
        let owner_key = self.owner_key(sealed.key_version, owner)?;
        if sealed.ciphertext.len() != KEY_LEN + TAG_LEN {
            return Err(VaultCryptoError::Malformed);
        }
        let aad = aad(&[
            b"data-key",
            owner.as_bytes(),
            holder.as_bytes(),
            &sealed.key_version.to_be_bytes(),
        ]);
        let plain = open(&owner_key, &aad, &sealed.nonce, &sealed.ciphertext).ok_or_else(|| {
            VaultCryptoError::Undecryptable {
                holder: holder.to_string(),
                field: "data key".to_string(),
            }
        })?;
        let mut key = DataKey(Zeroizing::new([0u8; KEY_LEN]));
        key.0.copy_from_slice(&plain);
        Ok(key)
    }
}

/// A holder's data key: 32 random bytes, zeroized on drop, printed as `[redacted]`.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> DataKey {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        random(key.as_mut_slice());
        DataKey(key)
    }

    /// Seal `plaintext`, the secret `field` of `holder` of `owner`.
    pub fn seal(&self, owner: &str, holder: &str, field: &str, plaintext: &[u8]) -> SealedSecret {
        let aad = aad(&[
            b"secret",
            owner.as_bytes(),
            holder.as_bytes(),
            field.as_bytes(),
        ]);
        let (nonce, ciphertext) = seal(&self.0, &aad, plaintext);
        SealedSecret { nonce, ciphertext }
    }

    /// Open the secret `field` of `holder` of `owner`.
    pub fn open(
        &self,
        owner: &str,
        holder: &str,
        field: &str,
        sealed: &SealedSecret,
    ) -> Result<Secret, VaultCryptoError> {
        if sealed.ciphertext.len() < TAG_LEN {
            return Err(VaultCryptoError::Malformed);
        }
        let aad = aad(&[
            b"secret",
            owner.as_bytes(),
            holder.as_bytes(),
            field.as_bytes(),
        ]);
        let plain = open(&self.0, &aad, &sealed.nonce, &sealed.ciphertext).ok_or_else(|| {
            VaultCryptoError::Undecryptable {
                holder: holder.to_string(),
                field: field.to_string(),
            }
        })?;
        // An exact-size copy: `Secret` boxes it without reallocating; `plain` is zeroized.
        Ok(Secret::new(plain.to_vec()))
    }
}

/// A data key sealed under an owner key (stored; ciphertext only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    /// The master-key version the owner key was derived from.
    pub key_version: u32,
    /// The AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The sealed key and its authentication tag.
    pub ciphertext: Vec<u8>,
}

/// A secret sealed under its holder's data key (stored; ciphertext only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The sealed secret and its authentication tag.
    pub ciphertext: Vec<u8>,
}

/// Associated data: every field prefixed with its length (u32, big-endian), so no two different
/// field lists encode the same.
fn aad(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| 4 + f.len()).sum());
    for f in fields {
        // Owner, holder and field names are short; saturate rather than wrap if one is not.
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// AES-256-GCM seal under a fresh random nonce.
fn seal(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> ([u8; NONCE_LEN], Vec<u8>) {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce);
    // Room for the tag up front: the buffer never reallocates while it still holds plaintext.
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
    buf.extend_from_slice(plaintext);
    if cipher
        .encrypt_in_place(&Nonce::from(nonce), aad, &mut *buf)
        .is_err()
    {
        // Only for plaintexts beyond GCM's 64 GiB limit, which no secret comes near.
        unreachable!("AES-GCM plaintext too long");
    }
    (nonce, std::mem::take(&mut *buf))
}

/// AES-256-GCM open; `None` when authentication fails.
fn open(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new(key.into());
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_in_place(&Nonce::from(*nonce), aad, &mut *buf)
        .ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const OWNER: &str = "tenant:ten_123";
    const HOLDER: &str = "connection:con_1";

    fn b64(byte: u8) -> String {
        STANDARD.encode([byte; KEY_LEN])
    }

    fn keys_v1() -> MasterKeys {
        MasterKeys::parse(&b64(1), "").expect("keys")
    }

    fn keys_v2_v1() -> MasterKeys {
        MasterKeys::parse(&format!("2:{}", b64(2)), &format!("1:{}", b64(1))).expect("keys")
    }

    fn undecryptable(r: Result<impl fmt::Debug, VaultCryptoError>) -> bool {
        matches!(r, Err(VaultCryptoError::Undecryptable { .. }))
    }

    #[test]
    fn data_key_round_trip() {
        let keys = keys_v1();
        let dk = DataKey::generate();
        let sealed = keys.seal_data_key(OWNER, HOLDER, &dk);
        assert_eq!(sealed.key_version, 1);
        assert_eq!(sealed.ciphertext.len(), KEY_LEN + TAG_LEN);
        assert!(!sealed.ciphertext.windows(KEY_LEN).any(|w| w == *dk.0));
        let opened = keys.open_data_key(OWNER, HOLDER, &sealed).expect("open");
        assert_eq!(*opened.0, *dk.0);
    }

    #[test]
    fn secret_round_trip() {
        let dk = DataKey::generate();
        for plain in [
            &b""[..],
            b"x",
            b"EAAG-access-token-0123456789",
            &[0xff; 4096],
        ] {
            let sealed = dk.seal(OWNER, HOLDER, "access_token", plain);
            assert_eq!(sealed.ciphertext.len(), plain.len() + TAG_LEN);
            let opened = dk
                .open(OWNER, HOLDER, "access_token", &sealed)
                .expect("open");
            assert_eq!(opened.expose(), plain);
        }
    }

    #[test]
    fn moved_secret_does_not_open() {
        let dk = DataKey::generate();
        let sealed = dk.seal(OWNER, HOLDER, "app_secret", b"s3cret");
        assert!(undecryptable(dk.open(
            OWNER,
            "connection:con_2",
            "app_secret",
            &sealed
        )));
        assert!(undecryptable(dk.open(
            "tenant:ten_456",
            HOLDER,
            "app_secret",
            &sealed
        )));
        assert!(undecryptable(dk.open(
            OWNER,
            HOLDER,
            "verify_token",
            &sealed
        )));
        // Another holder's data key.
        assert!(undecryptable(DataKey::generate().open(
            OWNER,
            HOLDER,
            "app_secret",
            &sealed
        )));
        // Tampered ciphertext or nonce.
        let mut bad = sealed.clone();
        bad.ciphertext[0] ^= 1;
        assert!(undecryptable(dk.open(OWNER, HOLDER, "app_secret", &bad)));
        let mut bad = sealed.clone();
        bad.nonce[0] ^= 1;
        assert!(undecryptable(dk.open(OWNER, HOLDER, "app_secret", &bad)));
        // Field-boundary ambiguity: ("ab", "c") is not ("a", "bc").
        let sealed = dk.seal("ab", "c", "f", b"v");
        assert!(undecryptable(dk.open("a", "bc", "f", &sealed)));
        // The error names the holder and field, not the value.
        let err = dk
            .open(
                OWNER,
                HOLDER,
                "verify_token",
                &dk.seal(OWNER, HOLDER, "x", b"s3cret"),
            )
            .expect_err("moved");
        let msg = err.to_string();
        assert!(
            msg.contains(HOLDER) && msg.contains("verify_token"),
            "{msg}"
        );
        assert!(!msg.contains("s3cret"));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let keys = keys_v1();
        let dk = DataKey::generate();
        let short = SealedSecret {
            nonce: [0; NONCE_LEN],
            ciphertext: vec![1; TAG_LEN - 1],
        };
        assert_eq!(
            dk.open(OWNER, HOLDER, "f", &short).expect_err("short"),
            VaultCryptoError::Malformed
        );
        let mut sealed = keys.seal_data_key(OWNER, HOLDER, &dk);
        sealed.ciphertext.truncate(KEY_LEN);
        assert_eq!(
            keys.open_data_key(OWNER, HOLDER, &sealed)
                .expect_err("short"),
            VaultCryptoError::Malformed
        );
        sealed.ciphertext.clear();
        assert!(keys.open_data_key(OWNER, HOLDER, &sealed).is_err());
    }

    #[test]
    fn moved_data_key_does_not_open() {
        let keys = keys_v2_v1();
        let dk = DataKey::generate();
        let sealed = keys.seal_data_key(OWNER, HOLDER, &dk);
        assert_eq!(sealed.key_version, 2);
        assert!(undecryptable(keys.open_data_key(
            OWNER,
            "connection:con_2",
            &sealed
        )));
        assert!(undecryptable(keys.open_data_key(
            "tenant:ten_456",
            HOLDER,
            &sealed
        )));
        assert!(undecryptable(
            keys.open_data_key("operator", HOLDER, &sealed)
        ));
        // Relabelled with the other configured version.
        let mut relabelled = sealed.clone();
        relabelled.key_version = 1;
        assert!(undecryptable(keys.open_data_key(
            OWNER,
            HOLDER,
            &relabelled
        )));
        // An unconfigured version.
        let mut unknown = sealed.clone();
        unknown.key_version = 3;
        assert_eq!(
            keys.open_data_key(OWNER, HOLDER, &unknown)
                .expect_err("unknown"),
            VaultCryptoError::UnknownKeyVersion(3)
        );
        // A different master key of the same version.
        let other = MasterKeys::parse(&format!("2:{}", b64(9)), "").expect("keys");
        assert!(undecryptable(other.open_data_key(OWNER, HOLDER, &sealed)));
    }

    #[test]
    fn rotation_opens_old_and_reseals_current() {
        let old = keys_v1();
        let dk = DataKey::generate();
        let sealed_v1 = old.seal_data_key(OWNER, HOLDER, &dk);
        let secret = dk.seal(OWNER, HOLDER, "auth_token", b"token");
        assert_eq!(sealed_v1.key_version, 1);

        let new = keys_v2_v1();
        assert_eq!(new.current_version(), 2);
        let opened = new.open_data_key(OWNER, HOLDER, &sealed_v1).expect("v1");
        let sealed_v2 = new.seal_data_key(OWNER, HOLDER, &opened);
        assert_eq!(sealed_v2.key_version, 2);
        let reopened = new.open_data_key(OWNER, HOLDER, &sealed_v2).expect("v2");
        let s = reopened
            .open(OWNER, HOLDER, "auth_token", &secret)
            .expect("secret");
        assert_eq!(s.expose(), b"token");
        // Once v1 is retired, v1 seals no longer open; v2 seals still do.
        let retired = MasterKeys::parse(&format!("2:{}", b64(2)), "").expect("keys");
        assert_eq!(
            retired
                .open_data_key(OWNER, HOLDER, &sealed_v1)
                .expect_err("retired"),
            VaultCryptoError::UnknownKeyVersion(1)
        );
        assert!(retired.open_data_key(OWNER, HOLDER, &sealed_v2).is_ok());
    }

    #[test]
    fn owner_keys_differ_by_owner_and_version() {
        let keys = keys_v2_v1();
        let a = keys.owner_key(2, "tenant:ten_1").expect("a");
        let b = keys.owner_key(2, "tenant:ten_2").expect("b");
        let c = keys.owner_key(1, "tenant:ten_1").expect("c");
        assert_ne!(*a, *b);
        assert_ne!(*a, *c);
        assert_eq!(*a, *keys.owner_key(2, "tenant:ten_1").expect("again"));
        assert_eq!(
            keys.owner_key(7, "operator").expect_err("unknown"),
            VaultCryptoError::UnknownKeyVersion(7)
        );
    }

    #[test]
    fn no_repeated_nonce_in_200k_seals() {
        let dk = DataKey::generate();
        let keys = keys_v1();
        let mut seen = HashSet::with_capacity(200_001);
        for _ in 0..200_000 {
            let s = dk.seal(OWNER, HOLDER, "f", b"v");
            assert!(seen.insert(s.nonce), "repeated nonce");
        }
        let k = keys.seal_data_key(OWNER, HOLDER, &dk);
        assert!(seen.insert(k.nonce));
    }

    #[test]
    fn parse_forms() {
        let k = MasterKeys::parse(&format!("  {}  ", b64(1)), "").expect("bare");
        assert_eq!(k.current_version(), 1);
        let k = MasterKeys::parse(
            &format!("7:{}", b64(7)),
            &format!(" 3:{} , 5:{},", b64(3), b64(5)),
        )
        .expect("versions");
        assert_eq!(k.current_version(), 7);
        assert_eq!(k.keys.keys().copied().collect::<Vec<_>>(), [3, 5, 7]);
        assert_eq!(*k.key(5).expect("v5"), [5; KEY_LEN]);
    }

    #[test]
    fn parse_errors_name_the_variable_not_the_key() {
        let short = STANDARD.encode([7u8; 16]);
        let long = STANDARD.encode([7u8; 33]);
        let good = b64(1);
        let cases: Vec<(String, String, &str, &str)> = vec![
            (String::new(), String::new(), CURRENT_VAR, "empty"),
            ("not base64!!".into(), String::new(), CURRENT_VAR, "base64"),
            (format!("{good}x"), String::new(), CURRENT_VAR, "base64"),
            (short.clone(), String::new(), CURRENT_VAR, "16 bytes"),
            (long.clone(), String::new(), CURRENT_VAR, "33 bytes"),
            (format!("0:{good}"), String::new(), CURRENT_VAR, "version"),
            (format!("x1:{good}"), String::new(), CURRENT_VAR, "version"),
            (format!("-1:{good}"), String::new(), CURRENT_VAR, "version"),
            (
                format!("99999999999:{good}"),
                String::new(),
                CURRENT_VAR,
                "version",
            ),
            (
                format!("2:{good}"),
                good.clone(),
                PREVIOUS_VAR,
                "no version",
            ),
            (
                format!("2:{good}"),
                format!("1:{short}"),
                PREVIOUS_VAR,
                "16 bytes",
            ),
            (
                format!("2:{good}"),
                format!("1:{good},1:{}", b64(3)),
                PREVIOUS_VAR,
                "version 1",
            ),
            (
                format!("2:{good}"),
                format!("2:{}", b64(3)),
                PREVIOUS_VAR,
                "version 2",
            ),
            (
                format!("2:{good}"),
                format!("3:{}", b64(3)),
                PREVIOUS_VAR,
                "highest",
            ),
            (
                good.clone(),
                format!("1:{}", b64(3)),
                PREVIOUS_VAR,
                "version 1",
            ),
            (format!("2:{good}"), "1:???".into(), PREVIOUS_VAR, "base64"),
        ];
        for (current, previous, var, what) in cases {
            let err = MasterKeys::parse(&current, &previous).expect_err(what);
            let msg = err.to_string();
            assert!(msg.contains(var), "{msg}");
            assert!(msg.contains(what), "{msg}");
            for input in [&current, &previous] {
                for part in input.split([':', ',']) {
                    if part.len() >= 8 {
                        assert!(!msg.contains(part), "{msg} leaks input");
                    }
                }
            }
            assert!(!format!("{err:?}").contains(&good));
        }
    }

    #[test]
    fn file_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let generated = MasterKeys::generate();
        assert_eq!(generated.current_version(), 1);
        let path = dir.path().join("master.key");
        std::fs::write(&path, generated.to_file_contents().as_bytes()).expect("write");
        let read = MasterKeys::from_file(&path).expect("read");
        assert_eq!(read.current_version(), 1);
        assert_eq!(*read.key(1).expect("v1"), *generated.key(1).expect("v1"));
        let sealed = generated.seal_data_key(OWNER, HOLDER, &DataKey::generate());
        assert!(read.open_data_key(OWNER, HOLDER, &sealed).is_ok());

        // Several versions, blank lines and whitespace.
        let keys = keys_v2_v1();
        std::fs::write(&path, keys.to_file_contents().as_bytes()).expect("write");
        let read = MasterKeys::from_file(&path).expect("read");
        assert_eq!(read.current_version(), 2);
        assert_eq!(read.keys.len(), 2);
        std::fs::write(&path, format!("\n  {}  \n\n 1:{} \n", b64(2), b64(1))).expect("write");
        // A bare first line is version 1, so version 1 below it is a duplicate.
        let err = MasterKeys::from_file(&path).expect_err("duplicate");
        assert!(err.to_string().contains("line 4"), "{err}");
        std::fs::write(&path, format!("\n  2:{}  \n\n 1:{} \n", b64(2), b64(1))).expect("write");
        let read = MasterKeys::from_file(&path).expect("read");
        assert_eq!(read.current_version(), 2);
        assert_eq!(*read.key(1).expect("v1"), [1; KEY_LEN]);

        std::fs::write(&path, "\n \n").expect("write");
        assert!(matches!(
            MasterKeys::from_file(&path),
            Err(KeyError::Missing { .. })
        ));
        assert!(matches!(
            MasterKeys::from_file(dir.path().join("absent")),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = [0x5a_u8; KEY_LEN];
        let keys = MasterKeys::parse(&format!("3:{}", STANDARD.encode(key)), "").expect("keys");
        let dk = DataKey(Zeroizing::new(key));
        let secret = Secret::new(key.to_vec());
        let printed = format!("{keys:?} {dk:?} {secret:?} {secret} {keys:#?}");
        assert!(printed.contains("3"), "{printed}");
        for needle in [
            STANDARD.encode(key),
            hex::encode(key),
            hex::encode_upper(key),
            format!("{:?}", &key[..4]),
            "90, 90".to_string(),
            "ZZZZ".to_string(),
        ] {
            assert!(!printed.contains(&needle), "{printed} shows {needle}");
        }
        assert_eq!(format!("{dk:?}"), "[redacted]");
    }
}
