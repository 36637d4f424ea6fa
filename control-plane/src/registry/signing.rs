//! ed25519 signatures over manifests, with the key pair kept in the store.
//!
//! The key pair is created on first use: the private half at [`SIGNING_KEY_KEY`] by conditional
//! create (two first starts agree: the loser reads the winner's key), the public half at
//! [`PUBLIC_KEY_KEY`], which is all a verifier (edge, browser) needs.

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use super::{Manifest, RegistryError, Signature};
use crate::store::{ErrorKind, Key, ObjectStore};

/// The private key (store key).
pub(super) const SIGNING_KEY_KEY: &str = "keys/manifest-signing.json";
/// The public key (store key): `keys/manifest-signing.pub.json`.
pub(super) const PUBLIC_KEY_KEY: &str = "keys/manifest-signing.pub.json";

pub(crate) use model_wasm::signature::{PublicKey, SIGNATURE_ALGORITHM};

/// `keys/manifest-signing.json`. Never printed: its `Debug` leaves the secret out.
#[derive(Clone, Serialize, Deserialize)]
struct PrivateKeyFile {
    algorithm: String,
    key_id: String,
    public_key: String,
    /// The 32-byte ed25519 seed, lowercase hex.
    private_key: String,
    created_at: DateTime<Utc>,
}

/// Signs manifests with the store's key.
pub(crate) struct ManifestSigner {
    key: SigningKey,
    public: PublicKey,
}

impl std::fmt::Debug for ManifestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestSigner")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl ManifestSigner {
    /// The store's signing key, created (with its public half) if the store has none yet.
    pub(crate) async fn load_or_create(store: &dyn ObjectStore) -> anyhow::Result<ManifestSigner> {
        let private_key = Key::new(SIGNING_KEY_KEY)?;
        let file = match read_private(store, &private_key).await? {
            Some(file) => file,
            None => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a signing key: {e}"))?;
                let public = PublicKey::of(&SigningKey::from_bytes(&seed).verifying_key());
                let file = PrivateKeyFile {
                    algorithm: SIGNATURE_ALGORITHM.to_owned(),
                    key_id: public.key_id,
                    public_key: public.public_key,
                    private_key: hex::encode(seed),
                    created_at: Utc::now(),
                };
                let body = Bytes::from(serde_json::to_vec_pretty(&file)?);
                match store.create_new(&private_key, body).await {
                    Ok(()) => {
                        tracing::info!(key_id = %file.key_id, "created the manifest signing key");
                        file
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => read_private(store, &private_key)
                        .await?
                        .with_context(|| format!("{private_key} vanished right after it was created"))?,
                    Err(e) => return Err(e).with_context(|| format!("cannot create {private_key}")),
                }
            }
        };
        let seed: [u8; 32] = hex::decode(&file.private_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{private_key} does not hold a 32-byte hex key"))?;
        let key = SigningKey::from_bytes(&seed);
        let public = PublicKey::of(&key.verifying_key());
        if public.public_key != file.public_key || public.key_id != file.key_id {
            bail!("{private_key} is inconsistent: its public key does not match its private key");
        }
        publish_public_key(store, &public).await?;
        Ok(ManifestSigner { key, public })
    }

    pub(crate) fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Sets the manifest's signature (over its canonical bytes, which leave the signature out).
    pub(crate) fn sign(&self, manifest: &mut Manifest) {
        let signature = self.key.sign(&manifest.canonical_bytes());
        manifest.signature = Some(Signature {
            algorithm: SIGNATURE_ALGORITHM.to_owned(),
            key_id: self.public.key_id.clone(),
            value: hex::encode(signature.to_bytes()),
        });
    }
}

async fn read_private(store: &dyn ObjectStore, key: &Key) -> anyhow::Result<Option<PrivateKeyFile>> {
    match store.get(key).await {
        Ok(body) => Ok(Some(
            serde_json::from_slice(&body).with_context(|| format!("{key} is not a signing key file"))?,
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {key}")),
    }
}

/// Writes the public key file if it is missing; an existing one must match.
async fn publish_public_key(store: &dyn ObjectStore, public: &PublicKey) -> anyhow::Result<()> {
    let key = Key::new(PUBLIC_KEY_KEY)?;
    let body = Bytes::from(serde_json::to_vec_pretty(public)?);
    match store.create_new(&key, body).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let existing = load_public_key(store).await?;
            if existing != *public {
                bail!(
                    "{key} holds key {} but the signing key is {}: the key files were changed by hand",
                    existing.key_id,
                    public.key_id
                );
            }
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot write {key}")),
    }
}

/// The store's public key (what verifies its manifests).
pub(crate) async fn load_public_key(store: &dyn ObjectStore) -> anyhow::Result<PublicKey> {
    let key = Key::new(PUBLIC_KEY_KEY)?;
    let body = match store.get(&key).await {
        Ok(body) => body,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "{} has no {key}: no model was registered there, so no manifest can be verified",
            store.describe()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {key}")),
    };
    serde_json::from_slice(&body).with_context(|| format!("{key} is not a public key file"))
}

/// Checks the manifest's signature against `key`.
pub(crate) fn verify(manifest: &Manifest, key: &PublicKey) -> Result<(), RegistryError> {
    let fail = |reason: String| RegistryError::BadSignature {
        name: manifest.name.clone(),
        version: manifest.version,
        reason,
    };
    let signature = manifest
        .signature
        .as_ref()
        .ok_or_else(|| fail("it is not signed".into()))?;
    model_wasm::signature::verify(&manifest.canonical_bytes(), signature, key).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::registry::manifest::tests::draft;
    use crate::registry::{ArtifactInfo, DatasetRef};
    use crate::store::LocalStore;

    #[tokio::test]
    async fn signatures_verify_and_fail_after_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let signer = ManifestSigner::load_or_create(&store).await.unwrap();
        let public = load_public_key(&store).await.unwrap();
        assert_eq!(&public, signer.public_key());
        assert_eq!(public.key_id.len(), 16);

        let mut m = draft("wine", &["alcohol", "pH"]).into_manifest(1, Utc::now(), BTreeMap::new());
        m.artifacts.insert("model.ir.json".into(), ArtifactInfo::of(b"{}"));
        assert!(verify(&m, &public).unwrap_err().to_string().contains("not signed"));
        signer.sign(&mut m);
        verify(&m, &public).unwrap();

        // Survives the trip through the stored text.
        let back: Manifest = serde_json::from_slice(&serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        verify(&back, &public).unwrap();

        type Change = Box<dyn Fn(&mut Manifest)>;
        let changes: Vec<(&str, Change)> = vec![
            ("name", Box::new(|m| m.name = "wine2".into())),
            ("version", Box::new(|m| m.version += 1)),
            (
                "created_at",
                Box::new(|m| m.created_at += chrono::Duration::nanoseconds(1)),
            ),
            ("feature", Box::new(|m| m.features[1].name = "ph".into())),
            (
                "feature range",
                Box::new(|m| m.features[0].max = f64::from_bits(m.features[0].max.to_bits() + 1)),
            ),
            (
                "classes",
                Box::new(|m| m.output.classes = Some(vec!["1".into(), "0".into()])),
            ),
            ("family", Box::new(|m| m.family = "decision_tree".into())),
            (
                "params",
                Box::new(|m| {
                    m.params.insert("alpha".into(), serde_json::json!(0.2));
                }),
            ),
            (
                "metric",
                Box::new(|m| {
                    m.metrics.insert("f1".into(), 0.99);
                }),
            ),
            (
                "selection metric",
                Box::new(|m| m.selection_metric = crate::config::Metric::Accuracy),
            ),
            (
                "dataset",
                Box::new(|m| {
                    m.dataset = DatasetRef {
                        name: "wine".into(),
                        version: 2,
                    }
                }),
            ),
            ("run", Box::new(|m| m.run_id = "run-2".into())),
            (
                "artifact digest",
                Box::new(|m| {
                    m.artifacts
                        .get_mut("model.ir.json")
                        .unwrap()
                        .sha256
                        .replace_range(0..1, "f")
                }),
            ),
            (
                "artifact added",
                Box::new(|m| {
                    m.artifacts.insert("x".into(), ArtifactInfo::of(b""));
                }),
            ),
            ("reference profile", Box::new(|m| m.reference_profile.rows = 4)),
            ("sample rows", Box::new(|m| m.sample_rows[0][0] = 0.2)),
            ("schema version", Box::new(|m| m.schema_version = 2)),
        ];
        for (what, change) in changes {
            let mut changed = m.clone();
            change(&mut changed);
            assert_ne!(changed, m, "{what} changed nothing");
            let err = verify(&changed, &public).unwrap_err().to_string();
            assert!(err.contains("does not match its content"), "{what}: {err}");
        }

        // Another store's key does not verify this store's manifests.
        let other_dir = tempfile::tempdir().unwrap();
        let other = LocalStore::open(other_dir.path()).unwrap();
        let other_key = ManifestSigner::load_or_create(&other)
            .await
            .unwrap()
            .public_key()
            .clone();
        assert_ne!(other_key.key_id, public.key_id);
        assert!(
            verify(&m, &other_key)
                .unwrap_err()
                .to_string()
                .contains("not by the trusted key")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(LocalStore::open(dir.path()).unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    ManifestSigner::load_or_create(store.as_ref())
                        .await
                        .unwrap()
                        .public_key()
                        .clone()
                })
            })
            .collect();
        let mut keys = Vec::new();
        for t in tasks {
            keys.push(t.await.unwrap());
        }
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
        assert_eq!(load_public_key(store.as_ref()).await.unwrap(), keys[0]);
    }

    #[test]
    fn the_signer_never_prints_its_secret() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let signer = ManifestSigner {
            public: PublicKey::of(&key.verifying_key()),
            key,
        };
        let printed = format!("{signer:?}");
        assert!(!printed.contains(&hex::encode([7u8; 32])), "{printed}");
    }
}
