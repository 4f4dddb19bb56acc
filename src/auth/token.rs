//! Bearer tokens: random, shown once, stored only as a hash.

use sha2::{Digest, Sha256};

/// Prefix that makes a leaked token recognisable to secret scanners and to people.
const PREFIX: &str = "cvn_";

#[derive(Debug, thiserror::Error)]
#[error("the system's random source failed: {0}")]
pub struct RandomError(pub(crate) String);

/// A new random token (256 bits). The text is shown to its owner once and never stored.
///
/// # Errors
/// The operating system's random source is unavailable.
pub fn generate() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{PREFIX}{hex}"))
}

/// What the store keeps: a SHA-256 of the token. Tokens are 256-bit random, so a fast hash
/// is enough; there is nothing to brute-force as with a password.
pub fn hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("cvn_") && a.len() == 4 + 64);
    }

    #[test]
    fn the_hash_does_not_contain_the_token() {
        let token = generate().unwrap();
        let h = hash(&token);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&token[4..20]));
        assert_eq!(h, hash(&token));
    }
}
