//! The instance's Ed25519 key pair: made at first start in the data directory, the private
//! half readable by its owner only. It signs checkpoints of the chain heads, so a chain
//! recomputed by someone without the key no longer matches what was signed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest as _, Sha256};

use super::merkle::{from_hex, to_hex};

/// The private key's file in the data directory (PKCS#8, as `ring` writes it).
pub const KEY_FILE: &str = "instance.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the instance key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the instance key {0} is not an Ed25519 key in PKCS#8")]
    Invalid(PathBuf),
    #[error("the instance key {0} can be read by other users (mode {1:o}); make it 0600")]
    Exposed(PathBuf, u32),
    #[error("the system's random source failed")]
    Random,
}

pub struct InstanceKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InstanceKey({})", self.fingerprint())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

impl InstanceKey {
    /// Loads the key from `data_dir`, making it first if there is none.
    ///
    /// # Errors
    /// The file cannot be read or written, is not a key, or others can read it.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(KEY_FILE);
        if !path.exists() {
            std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| KeyError::Random)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).map_err(io(&path))?;
            file.write_all(pkcs8.as_ref()).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        Self::load(&path)
    }

    /// Loads an existing key file.
    ///
    /// # Errors
    /// As [`InstanceKey::load_or_create`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)
                .map_err(io(path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(KeyError::Exposed(path.to_owned(), mode & 0o777));
            }
        }
        // A key file is 83 bytes; anything far larger is not one.
        let bytes = std::fs::read(path).map_err(io(path))?;
        if bytes.len() > 1024 {
            return Err(KeyError::Invalid(path.to_owned()));
        }
        let pair =
            Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| KeyError::Invalid(path.to_owned()))?;
        Ok(Self { pair })
    }

    /// The public key, 64 hex digits.
    pub fn public_hex(&self) -> String {
        to_hex(self.pair.public_key().as_ref())
    }

    /// The raw public key.
    pub fn public(&self) -> [u8; 32] {
        let mut out = [0; 32];
        let raw = self.pair.public_key().as_ref();
        if raw.len() == out.len() {
            out.copy_from_slice(raw);
        }
        out
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(self.pair.public_key().as_ref())
    }

    /// The signature of `message`, 128 hex digits.
    pub fn sign(&self, message: &[u8]) -> String {
        to_hex(self.pair.sign(message).as_ref())
    }
}

/// `sha256:` and the first 16 bytes of SHA-256 over the raw public key, in hex.
pub fn fingerprint(public: &[u8]) -> String {
    let digest = Sha256::digest(public);
    format!("sha256:{}", to_hex(&digest[..16]))
}

/// A public key given as 64 hex digits.
pub fn parse_public(text: &str) -> Option<[u8; 32]> {
    from_hex(text.trim())?.try_into().ok()
}

/// True when `signature_hex` is `public`'s signature of `message`.
pub fn verify(public: &[u8; 32], message: &[u8], signature_hex: &str) -> bool {
    let Some(signature) = from_hex(signature_hex) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_private_to_its_owner_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = InstanceKey::load_or_create(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = InstanceKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_hex(), again.public_hex());
        let public = parse_public(&first.public_hex()).unwrap();
        let signature = first.sign(b"head");
        assert!(verify(&public, b"head", &signature));
        assert!(!verify(&public, b"other head", &signature));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        InstanceKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = InstanceKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::Exposed(..)), "{err}");
    }
}
