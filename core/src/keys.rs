//! ed25519 key pairs and their on-disk form: a hex secret in a text file that only its owner may read
//! (mode 0600, written so from the start). Secrets read or written pass through zeroized buffers.

use std::{fmt, path::Path};

use ed25519_dalek::{Signer, SigningKey};

use crate::ids::AccountId;

/// An ed25519 signing key together with its public account id. The secret is never printed.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

/// A key file's content could not be read as an ed25519 secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an ed25519 secret key is 32 bytes as 64 hex characters: {0}")]
pub struct BadSecretKey(String);

/// A key file could not be read or does not hold a secret key; names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("reading key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Its content is not a secret key.
    #[error("key file {path}: {source}")]
    Bad {
        /// The file.
        path: String,
        /// Why.
        source: BadSecretKey,
    },
}

impl Keypair {
    /// Reads a key file: the 64 hex characters of a secret key (whitespace around them ignored). Callers
    /// that run as a service warn when [`loose_mode`] says others may read it.
    pub fn read_file(path: &Path) -> Result<Self, KeyFileError> {
        let name = || path.display().to_string();
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Read { path: name(), source })?,
        );
        Self::from_secret_hex(&text).map_err(|source| KeyFileError::Bad { path: name(), source })
    }

    /// Writes the secret to `path` (created or truncated) readable by its owner only (mode 0600 on Unix,
    /// set at creation, so the secret is never readable by others, even for a moment).
    pub fn write_file(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts.open(path)?;
        // An existing file keeps its mode on open: make it 0600 too.
        #[cfg(unix)]
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let secret = zeroize::Zeroizing::new(self.secret_hex());
        file.write_all(secret.as_bytes())?;
        file.sync_all()
    }

    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self { signing: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    /// A key derived from a 32-byte seed (deterministic tests and fixtures).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { signing: SigningKey::from_bytes(&seed) }
    }

    /// Parses the 64 hex characters of a secret key (whitespace around it ignored).
    pub fn from_secret_hex(s: &str) -> Result<Self, BadSecretKey> {
        let bytes = zeroize::Zeroizing::new(hex::decode(s.trim()).map_err(|e| BadSecretKey(e.to_string()))?);
        let seed = zeroize::Zeroizing::new(
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| BadSecretKey(format!("got {} bytes", bytes.len())))?,
        );
        Ok(Self::from_seed(*seed))
    }

    /// The secret as 64 hex characters, for a key file.
    pub fn secret_hex(&self) -> String {
        hex::encode(self.signing.to_bytes())
    }

    /// The public key, which is also the account id.
    pub fn account(&self) -> AccountId {
        AccountId(self.signing.verifying_key().to_bytes())
    }

    /// The 32 secret bytes, for deriving this node's libp2p identity from the same key. Never log them.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Signs `message` as is. Every shardex message is domain-separated with [`crate::signing`]; this is for
    /// layouts fixed outside shardex that carry their own prefix (the consensus engine's binding of a
    /// validator key to its peer id, which starts with `PoV`).
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// The permission bits of a key file when anyone but its owner may read or write it (Unix), else None.
pub fn loose_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.account())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hex_round_trips_and_debug_hides_secret() {
        let k = Keypair::generate();
        let back = Keypair::from_secret_hex(&k.secret_hex()).expect("valid");
        assert_eq!(back.account(), k.account());
        assert!(!format!("{k:?}").contains(&k.secret_hex()));
        assert!(Keypair::from_secret_hex("00").is_err());
    }

    #[test]
    fn key_files_are_read_and_their_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("shardex-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (good, bad, missing) = (dir.join("good.key"), dir.join("bad.key"), dir.join("missing.key"));
        let k = Keypair::generate();
        std::fs::write(&good, format!("{}\n", k.secret_hex())).expect("write");
        std::fs::write(&bad, "not hex").expect("write");
        assert_eq!(Keypair::read_file(&good).expect("good").account(), k.account());
        let e = Keypair::read_file(&bad).expect_err("bad");
        assert!(matches!(e, KeyFileError::Bad { .. }) && e.to_string().contains("bad.key"), "{e}");
        let e = Keypair::read_file(&missing).expect_err("missing");
        assert!(matches!(e, KeyFileError::Read { .. }) && e.to_string().contains("missing.key"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_written_for_their_owner_only_and_loose_ones_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir("modes");
        let path = dir.join("node.key");
        let k = Keypair::generate();
        // A file left readable by others before is tightened when the key is written over it.
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(loose_mode(&path), Some(0o644));
        k.write_file(&path).expect("write key");
        assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);
        assert_eq!(loose_mode(&path), None);
        assert_eq!(Keypair::read_file(&path).expect("read").account(), k.account());
        let fresh = dir.join("fresh.key");
        k.write_file(&fresh).expect("write key");
        assert_eq!(std::fs::metadata(&fresh).expect("stat").permissions().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("shardex-keys-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }
}
