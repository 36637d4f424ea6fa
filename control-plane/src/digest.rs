//! Content digests: SHA-256 in lowercase hex.

use sha2::{Digest, Sha256};

/// SHA-256 of a sequence of strings, each length-prefixed so that `["ab", "c"]` and `["a", "bc"]`
/// differ (step input digests, run ids).
pub(crate) fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Lowercase hex SHA-256 of some bytes (artifact checksums).
pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
