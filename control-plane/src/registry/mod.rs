//! The model registry: signed manifests, artifacts and aliases, all in the object store.
//!
//! Layout (every name goes through [`Key::segment`], so `../x` is refused):
//! ```text
//! keys/manifest-signing.json                   ed25519 signing key (created on first use)
//! keys/manifest-signing.pub.json               {algorithm, key_id, public_key}: what verifiers need
//! models/{name}/{version}/claim.json           taken by conditional create: allocates the number
//! models/{name}/{version}/model.ir.json        artifacts (model.onnx, model.wasm, reports, ...)
//! models/{name}/{version}/manifest.json        signed, written LAST
//! models/{name}/aliases/{alias}.json           {version, updated_at, by, transition, history}: moved by
//!                                              compare-and-swap only
//! models/{name}/alias-log/{alias}/{n}.json     transition n of the alias (created once, never changed)
//! ```
//!
//! Architecture invariants:
//! - A version exists for readers once its `manifest.json` exists, and the manifest is written
//!   only after every artifact was stored, read back and checked against its sha256: a reader that
//!   finds a manifest finds every artifact.
//! - Two writers never take the same version: numbers are claimed with
//!   [`ObjectStore::create_new`](crate::store::ObjectStore::create_new).
//! - An alias only ever points at a version whose manifest verifies and whose artifacts match
//!   their digests at the time it moves.
//! - Artifact bytes whose size or sha256 differ from the manifest are never handed out.
//!
//! ```no_run
//! # async fn demo(store: &dyn wasmline::ObjectStore) -> anyhow::Result<()> {
//! use wasmline::{load_artifact, load_manifest};
//!
//! let manifest = load_manifest(store, &"winequality-red@production".parse()?).await?;
//! let wasm = load_artifact(store, &manifest, "model.wasm").await?;
//! println!("{}@{}: {} bytes", manifest.name, manifest.version, wasm.len());
//! # Ok(()) }
//! ```

mod alias;
mod error;
mod gate;
mod manifest;
mod publish;
mod read;
mod report;
mod select;
mod signing;

#[cfg(test)]
pub(crate) mod tests;

pub(crate) use alias::{
    AliasLogEntry, AliasRecord, alias_log, get_alias, list_aliases, move_if_unchanged, read_alias, rollback, set_alias,
};
pub(crate) use error::RegistryError;
pub(crate) use gate::{Comparison, Verdict, compare};
pub use manifest::{ArtifactInfo, DatasetRef, Lineage, Manifest, ManifestDraft, ReferenceData, Signature, SourceModel};
pub(crate) use manifest::{FeatureSchema, FeatureType, OutputSchema, SAMPLE_ROWS};
pub(crate) use publish::register;
pub use read::{
    IR_ARTIFACT, PUBLISHED_FILES, list_models, list_versions, load_artifact, load_version, read_published,
    verify_artifacts, version_exists,
};
pub(crate) use report::markdown_report;
pub use select::{ModelSelector, Pick, load_manifest};
pub(crate) use signing::{ManifestSigner, PublicKey, load_public_key, verify};

use crate::store::Key;

/// Checks a model or alias name (one key segment).
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), RegistryError> {
    Key::segment(name).map(|_| ()).map_err(|e| {
        // The store's message names the input too: keep only why it is refused.
        let message = e.to_string();
        let reason = message
            .split_once(&format!("'{name}': "))
            .map_or(message.as_str(), |(_, why)| why);
        RegistryError::InvalidName {
            what,
            name: name.to_owned(),
            reason: reason.to_owned(),
        }
    })
}

/// `models/{name}/`.
fn model_prefix(name: &str) -> String {
    format!("models/{name}/")
}

/// `models/{name}/{version}/{file}`.
fn version_key(name: &str, version: u64, file: &str) -> anyhow::Result<Key> {
    Ok(Key::new(format!("models/{name}/{version}/{file}"))?)
}

/// `models/{name}/aliases/{alias}.json`.
fn alias_key(name: &str, alias: &str) -> anyhow::Result<Key> {
    Ok(Key::new(format!("models/{name}/aliases/{alias}.json"))?)
}

/// Lowercase hex sha256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
