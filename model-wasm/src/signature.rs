//! ed25519 signatures over manifests: the canonical bytes they cover and their verification.
//!
//! Defined on the manifest's JSON text rather than on a struct, so every reader (the control
//! plane that signs, an edge, the browser SDK, a script) recomputes the same bytes from the
//! stored file alone, and members a later schema adds are covered too: the manifest without its
//! `signature` member, object keys sorted at every level, no whitespace, numbers as serde_json
//! writes them (shortest round trip; parsing with `float_roundtrip` gives the same bytes back).
//!
//! ```
//! use model_wasm::signature::{canonical_json, signed_bytes};
//!
//! let manifest = br#"{"version": 2, "name": "wine", "signature": {"value": "..."}}"#;
//! assert_eq!(signed_bytes(manifest).unwrap(), br#"{"name":"wine","version":2}"#);
//! let value: serde_json::Value = serde_json::from_str(r#"{"b": [1.5, {"d": 1, "c": 2}], "a": null}"#).unwrap();
//! assert_eq!(canonical_json(&value), br#"{"a":null,"b":[1.5,{"c":2,"d":1}]}"#);
//! ```

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The one signature algorithm.
pub const SIGNATURE_ALGORITHM: &str = "ed25519";

/// A public key as the control plane publishes it (`keys/manifest-signing.pub.json`,
/// `GET /api/v1/signing-key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub algorithm: String,
    /// The first 16 hex digits of the sha256 of the public key bytes.
    pub key_id: String,
    /// The 32-byte public key, lowercase hex.
    pub public_key: String,
}

/// A manifest's `signature` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub algorithm: String,
    /// The signing key's [`PublicKey::key_id`].
    pub key_id: String,
    /// 64 bytes, lowercase hex.
    pub value: String,
}

/// Why a manifest's signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the manifest is not JSON: {0}")]
    NotJson(String),
    #[error("it is not signed")]
    Unsigned,
    #[error("invalid signature member: {0}")]
    Malformed(String),
    #[error("unsupported signature algorithm '{0}'")]
    Algorithm(String),
    #[error("invalid public key: {0}")]
    BadKey(String),
    #[error("it was signed by key {signed_by}, not by the trusted key {trusted}")]
    OtherKey { signed_by: String, trusted: String },
    #[error("the signature does not match its content (it was changed after signing)")]
    Mismatch,
}

impl PublicKey {
    /// The published form of a key.
    pub fn of(key: &VerifyingKey) -> PublicKey {
        let bytes = key.to_bytes();
        PublicKey {
            algorithm: SIGNATURE_ALGORITHM.to_owned(),
            key_id: key_id(&bytes),
            public_key: hex(&bytes),
        }
    }

    /// The key, checked: algorithm, 32 bytes of hex, a valid point, and an id that matches.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        if self.algorithm != SIGNATURE_ALGORITHM {
            return Err(SignatureError::BadKey(format!(
                "unsupported key algorithm '{}'",
                self.algorithm
            )));
        }
        let bytes: [u8; 32] = unhex(&self.public_key)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| SignatureError::BadKey("the public key is not 32 bytes of hex".into()))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| SignatureError::BadKey(e.to_string()))?;
        if key_id(&bytes) != self.key_id {
            return Err(SignatureError::BadKey(format!(
                "key id {} does not match the public key",
                self.key_id
            )));
        }
        Ok(key)
    }
}

/// Checks `signature` over `message` (the canonical bytes) against `key`.
pub fn verify(message: &[u8], signature: &Signature, key: &PublicKey) -> Result<(), SignatureError> {
    if signature.algorithm != SIGNATURE_ALGORITHM {
        return Err(SignatureError::Algorithm(signature.algorithm.clone()));
    }
    if signature.key_id != key.key_id {
        return Err(SignatureError::OtherKey {
            signed_by: signature.key_id.clone(),
            trusted: key.key_id.clone(),
        });
    }
    let verifying_key = key.verifying_key()?;
    let bytes: [u8; 64] = unhex(&signature.value)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignatureError::Malformed("the signature is not 64 bytes of hex".into()))?;
    verifying_key
        .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks the signature of a manifest, given as the bytes of its JSON file.
pub fn verify_manifest(manifest: &[u8], key: &PublicKey) -> Result<(), SignatureError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| SignatureError::NotJson(e.to_string()))?;
    let signature = match &mut value {
        serde_json::Value::Object(map) => map.remove("signature"),
        _ => return Err(SignatureError::NotJson("not a JSON object".into())),
    };
    let signature: Signature = match signature {
        None | Some(serde_json::Value::Null) => return Err(SignatureError::Unsigned),
        Some(s) => serde_json::from_value(s).map_err(|e| SignatureError::Malformed(e.to_string()))?,
    };
    verify(&canonical_json(&value), &signature, key)
}

/// The bytes a manifest's signature covers, from the manifest's JSON text.
pub fn signed_bytes(manifest: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| SignatureError::NotJson(e.to_string()))?;
    match &mut value {
        serde_json::Value::Object(map) => map.remove("signature"),
        _ => return Err(SignatureError::NotJson("not a JSON object".into())),
    };
    Ok(canonical_json(&value))
}

/// Compact JSON with object keys sorted (whatever order the map kept them in).
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    fn write(value: &serde_json::Value, out: &mut Vec<u8>) {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).expect("strings serialise");
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            scalar => serde_json::to_writer(&mut *out, scalar).expect("scalars serialise"),
        }
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

fn key_id(public_key: &[u8; 32]) -> String {
    hex(&Sha256::digest(public_key))[..16].to_owned()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn signed(manifest: &str, key: &SigningKey) -> Vec<u8> {
        let mut value: serde_json::Value = serde_json::from_str(manifest).unwrap();
        let signature = key.sign(&canonical_json(&value));
        value["signature"] = serde_json::to_value(Signature {
            algorithm: SIGNATURE_ALGORITHM.into(),
            key_id: PublicKey::of(&key.verifying_key()).key_id,
            value: hex(&signature.to_bytes()),
        })
        .unwrap();
        serde_json::to_vec_pretty(&value).unwrap()
    }

    #[test]
    fn a_signed_manifest_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = PublicKey::of(&key.verifying_key());
        let bytes = signed(
            r#"{"name": "wine", "version": 3, "weights": [0.1, 1e-7, 12345.678]}"#,
            &key,
        );
        verify_manifest(&bytes, &public).unwrap();

        let text = String::from_utf8(bytes).unwrap();
        let changed = text.replace("\"version\": 3", "\"version\": 4");
        assert_ne!(changed, text);
        assert_eq!(
            verify_manifest(changed.as_bytes(), &public),
            Err(SignatureError::Mismatch)
        );

        let other = PublicKey::of(&SigningKey::from_bytes(&[8; 32]).verifying_key());
        assert!(matches!(
            verify_manifest(text.as_bytes(), &other),
            Err(SignatureError::OtherKey { .. })
        ));
        let unsigned = br#"{"name": "wine", "version": 3}"#;
        assert_eq!(verify_manifest(unsigned, &public), Err(SignatureError::Unsigned));
        assert!(matches!(
            verify_manifest(b"{\"name\": ", &public),
            Err(SignatureError::NotJson(_))
        ));
    }

    #[test]
    fn keys_are_checked_before_use() {
        let public = PublicKey::of(&SigningKey::from_bytes(&[7; 32]).verifying_key());
        assert!(public.verifying_key().is_ok());
        let wrong_id = PublicKey {
            key_id: "0000000000000000".into(),
            ..public.clone()
        };
        assert!(matches!(wrong_id.verifying_key(), Err(SignatureError::BadKey(_))));
        let short = PublicKey {
            public_key: "abcd".into(),
            ..public
        };
        assert!(matches!(short.verifying_key(), Err(SignatureError::BadKey(_))));
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
