//! ed25519 signatures over manifests: the canonical bytes they cover and their verification.
//!
//! Defined on the manifest's JSON text rather than on a struct, so every reader (the control
//! plane that signs, an edge, the browser SDK, a script) recomputes the same bytes from the
//! stored file alone, and members a later schema adds are covered too: the manifest without its
//! `signature` member, object keys sorted at every level, no whitespace, numbers as serde_json
//! writes them (shortest round trip; parsing with `float_roundtrip` gives the same bytes back).
//!
//! The signer ([`canonical_json`]) works on a serde_json value; verifiers read the file with
//! [`crate::json`], which keeps each number as written. The two agree on every manifest the
//! control plane wrote, since serde_json wrote its numbers; a manifest whose numbers were
//! rewritten after signing (`1.5` as `1.50`) is refused, as any other change is.
//!
//! ```
//! use model_wasm::signature::{canonical_json, signed_bytes};
//!
//! let manifest = br#"{"version": 2, "name": "wine", "signature": {"value": "..."}}"#;
//! assert_eq!(signed_bytes(manifest).unwrap(), br#"{"name":"wine","version":2}"#);
//! let value: serde_json::Value = serde_json::from_str(r#"{"b": [1.5, {"d": 1, "c": 2}], "a": null}"#).unwrap();
//! assert_eq!(canonical_json(&value), br#"{"a":null,"b":[1.5,{"c":2,"d":1}]}"#);
//! ```
//!
//! Verification is in two parts: [`manifest_signed_message`] applies every rule of a signature
//! (present, well-formed, the one algorithm, made by the trusted key, that key well-formed) and
//! returns the canonical bytes with the key and signature bytes; [`SignedMessage::verify`] does
//! the ed25519 arithmetic (`verify_strict`). [`verify_manifest`] is both. The browser SDK runs
//! the first part and hands the second to the browser's WebCrypto, so it ships no curve code.

use alloc::{borrow::ToOwned, format, string::String, vec::Vec};

#[cfg(feature = "std")]
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::json;

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

/// A signature that passed every rule but the ed25519 arithmetic: what [`verify_strict`] (or the
/// browser's WebCrypto `Ed25519`) checks.
///
/// [`verify_strict`]: ed25519_dalek::VerifyingKey::verify_strict
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// The canonical bytes the signature covers.
    pub message: Vec<u8>,
    /// The trusted key's 32 bytes (its id and algorithm checked).
    pub public_key: [u8; 32],
    /// The signature's 64 bytes.
    pub signature: [u8; 64],
}

#[cfg(feature = "std")]
impl SignedMessage {
    /// The ed25519 check (`verify_strict`: no small-order key or `R`, canonical `S`).
    pub fn verify(&self) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.public_key).map_err(|e| SignatureError::BadKey(e.to_string()))?;
        key.verify_strict(&self.message, &ed25519_dalek::Signature::from_bytes(&self.signature))
            .map_err(|_| SignatureError::Mismatch)
    }
}

impl PublicKey {
    /// The published form of a key.
    #[cfg(feature = "std")]
    pub fn of(key: &VerifyingKey) -> PublicKey {
        let bytes = key.to_bytes();
        PublicKey {
            algorithm: SIGNATURE_ALGORITHM.to_owned(),
            key_id: key_id(&bytes),
            public_key: hex(&bytes),
        }
    }

    /// The key, checked: [`key_bytes`](Self::key_bytes) and a valid point.
    #[cfg(feature = "std")]
    pub fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        VerifyingKey::from_bytes(&self.key_bytes()?).map_err(|e| SignatureError::BadKey(e.to_string()))
    }

    /// The key's bytes, checked without curve arithmetic: the algorithm, 32 bytes of hex, and an
    /// id that matches them.
    pub fn key_bytes(&self) -> Result<[u8; 32], SignatureError> {
        if self.algorithm != SIGNATURE_ALGORITHM {
            return Err(SignatureError::BadKey(format!(
                "unsupported key algorithm '{}'",
                self.algorithm
            )));
        }
        let bytes: [u8; 32] = unhex(&self.public_key)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| SignatureError::BadKey("the public key is not 32 bytes of hex".into()))?;
        if key_id(&bytes) != self.key_id {
            return Err(SignatureError::BadKey(format!(
                "key id {} does not match the public key",
                self.key_id
            )));
        }
        Ok(bytes)
    }
}

/// Checks `signature` over `message` (the canonical bytes) against `key`.
#[cfg(feature = "std")]
pub fn verify(message: &[u8], signature: &Signature, key: &PublicKey) -> Result<(), SignatureError> {
    signed_message(message.to_vec(), signature, key)?.verify()
}

/// Every rule of `signature` over `message` but the ed25519 arithmetic: the algorithm, the
/// signing key's id against `key`'s, `key` itself, and 64 bytes of hex.
pub fn signed_message(
    message: Vec<u8>,
    signature: &Signature,
    key: &PublicKey,
) -> Result<SignedMessage, SignatureError> {
    if signature.algorithm != SIGNATURE_ALGORITHM {
        return Err(SignatureError::Algorithm(signature.algorithm.clone()));
    }
    if signature.key_id != key.key_id {
        return Err(SignatureError::OtherKey {
            signed_by: signature.key_id.clone(),
            trusted: key.key_id.clone(),
        });
    }
    let public_key = key.key_bytes()?;
    let signature: [u8; 64] = unhex(&signature.value)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignatureError::Malformed("the signature is not 64 bytes of hex".into()))?;
    Ok(SignedMessage {
        message,
        public_key,
        signature,
    })
}

/// Checks the signature of a manifest, given as the bytes of its JSON file.
#[cfg(feature = "std")]
pub fn verify_manifest(manifest: &[u8], key: &PublicKey) -> Result<(), SignatureError> {
    manifest_signed_message(manifest, key)?.verify()
}

/// Every rule of a manifest's signature but the ed25519 arithmetic ([`signed_message`]), from
/// the bytes of its JSON file: a missing or `null` `signature` member is [`SignatureError::Unsigned`].
pub fn manifest_signed_message(manifest: &[u8], key: &PublicKey) -> Result<SignedMessage, SignatureError> {
    let (message, signature) = split_signature(manifest)?;
    let signature = signature.ok_or(SignatureError::Unsigned)??;
    signed_message(message, &signature, key)
}

/// The bytes a manifest's signature covers, from the manifest's JSON text.
pub fn signed_bytes(manifest: &[u8]) -> Result<Vec<u8>, SignatureError> {
    Ok(split_signature(manifest)?.0)
}

/// A manifest's `signature` member as read: `None` when it is missing or `null`.
type SignatureMember = Option<Result<Signature, SignatureError>>;

/// The canonical bytes of a manifest without its `signature` member, and that member.
fn split_signature(manifest: &[u8]) -> Result<(Vec<u8>, SignatureMember), SignatureError> {
    let value = json::parse(manifest).map_err(SignatureError::NotJson)?;
    let Some(members) = value.as_object() else {
        return Err(SignatureError::NotJson("not a JSON object".into()));
    };
    let signature = value.get("signature").filter(|s| !s.is_null()).map(|s| {
        let member = |name: &str| {
            s.get(name)
                .and_then(json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| SignatureError::Malformed(format!("'{name}' is not a string")))
        };
        Ok(Signature {
            algorithm: member("algorithm")?,
            key_id: member("key_id")?,
            value: member("value")?,
        })
    });
    // The members in key order, as `canonical_json` writes an object.
    let mut message = Vec::new();
    json::write_members(
        members.iter().filter(|(k, _)| k != "signature").map(|(k, v)| (k, v)),
        &mut message,
    );
    Ok((message, signature))
}

/// Compact JSON with object keys sorted (whatever order the map kept them in).
#[cfg(feature = "std")]
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    canonical(value.clone())
}

/// [`canonical_json`] of a value the caller owns: serde_json's compact form once every object's
/// keys are in order. `sort_all_objects` does nothing unless serde_json's `preserve_order` is
/// on, its maps being sorted already; so the browser SDK links no sort.
#[cfg(feature = "std")]
fn canonical(mut value: serde_json::Value) -> Vec<u8> {
    value.sort_all_objects();
    serde_json::to_vec(&value).expect("a JSON value serialises")
}

/// The first 16 hex digits of the key's sha256.
fn key_id(public_key: &[u8; 32]) -> String {
    hex(&crate::sha256::digest(public_key)[..8])
}

/// Lowercase hex (without `core::fmt`, which the browser SDK would otherwise link for it).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Bytes from hex digits (either case), two per byte.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| char::from(c).to_digit(16);
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Vec::with_capacity(s.len() / 2);
    for pair in s.as_bytes().chunks_exact(2) {
        bytes.push((digit(pair[0])? << 4 | digit(pair[1])?) as u8);
    }
    Some(bytes)
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
    fn the_rules_without_the_arithmetic_give_what_verify_strict_checks() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = PublicKey::of(&key.verifying_key());
        let bytes = signed(
            r#"{"version": 3, "name": "wine", "features": [{"name": "pH", "max": 4.01, "min": 2.7}]}"#,
            &key,
        );
        let signed = manifest_signed_message(&bytes, &public).unwrap();
        // The canonical bytes: sorted keys at every level, no signature, no whitespace.
        assert_eq!(
            signed.message,
            br#"{"features":[{"max":4.01,"min":2.7,"name":"pH"}],"name":"wine","version":3}"#
        );
        assert_eq!(signed.message, signed_bytes(&bytes).unwrap());
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        value.as_object_mut().unwrap().remove("signature");
        assert_eq!(signed.message, canonical_json(&value));
        assert_eq!(signed.public_key, key.verifying_key().to_bytes());
        signed.verify().unwrap();

        // A signature member that is null is none; one without its value is malformed.
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        value["signature"] = serde_json::Value::Null;
        let null = serde_json::to_vec(&value).unwrap();
        assert_eq!(manifest_signed_message(&null, &public), Err(SignatureError::Unsigned));
        value["signature"] = serde_json::json!({"algorithm": "ed25519", "key_id": public.key_id});
        let partial = serde_json::to_vec(&value).unwrap();
        assert!(matches!(
            manifest_signed_message(&partial, &public),
            Err(SignatureError::Malformed(m)) if m.contains("'value'")
        ));
        value["signature"] = serde_json::json!({"algorithm": "rsa", "key_id": public.key_id, "value": "00"});
        let rsa = serde_json::to_vec(&value).unwrap();
        assert_eq!(
            manifest_signed_message(&rsa, &public),
            Err(SignatureError::Algorithm("rsa".into()))
        );
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
        assert_eq!(unhex("ABff"), Some(vec![0xab, 0xff]));
        // Only digits: no sign, no space (`u8::from_str_radix` would take "+f").
        assert_eq!(unhex("+f"), None);
        assert_eq!(unhex(" f"), None);
    }
}
