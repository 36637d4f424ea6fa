//! Reading the registry: selectors, verified manifests, checked artifacts, listings.

use std::collections::BTreeSet;

use anyhow::Context;
use bytes::Bytes;

use super::{ArtifactInfo, Manifest, RegistryError, check_name, model_prefix, version_key};
use crate::store::{ErrorKind, ObjectStore};

pub(super) fn unknown_model(store: &dyn ObjectStore, name: &str) -> RegistryError {
    RegistryError::UnknownModel {
        name: name.to_owned(),
        store: store.describe(),
    }
}

/// The artifact every version has: the model IR as JSON (`model_wasm::ModelIr`), the source of
/// the ONNX file and the wasm module, and what [`compare`](super::compare) scores.
pub const IR_ARTIFACT: &str = "model.ir.json";

/// Whether `name@version` is registered (its manifest is in the store); an invalid name is not.
pub async fn version_exists(store: &dyn ObjectStore, name: &str, version: u64) -> anyhow::Result<bool> {
    if check_name("model", name).is_err() {
        return Ok(false);
    }
    Ok(store.exists(&version_key(name, version, "manifest.json")?).await?)
}

/// The manifest of `name@version`, its signature verified against the store's public key.
pub async fn load_version(store: &dyn ObjectStore, name: &str, version: u64) -> anyhow::Result<Manifest> {
    check_name("model", name)?;
    let key = version_key(name, version, "manifest.json")?;
    let body = match store.get(&key).await {
        Ok(body) => body,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(missing_version(store, name, version).await?.into()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {key}")),
    };
    let manifest: Manifest = serde_json::from_slice(&body).with_context(|| format!("{key} is not a valid manifest"))?;
    if manifest.name != name || manifest.version != version {
        return Err(RegistryError::BadSignature {
            name: name.to_owned(),
            version,
            reason: format!("{key} holds the manifest of {}", manifest.id()),
        }
        .into());
    }
    let public_key = super::load_public_key(store).await?;
    super::verify(&manifest, &public_key)?;
    Ok(manifest)
}

/// An artifact's bytes, only if their size and sha256 match the manifest: otherwise a
/// [`RegistryError::Corrupted`] naming the file.
pub async fn load_artifact(store: &dyn ObjectStore, manifest: &Manifest, file: &str) -> anyhow::Result<Bytes> {
    let Some(expected) = manifest.artifacts.get(file) else {
        return Err(RegistryError::UnknownArtifact {
            name: manifest.name.clone(),
            version: manifest.version,
            file: file.to_owned(),
            available: manifest.artifacts.keys().cloned().collect(),
        }
        .into());
    };
    let corrupted = |reason: String| RegistryError::Corrupted {
        name: manifest.name.clone(),
        version: manifest.version,
        file: file.to_owned(),
        reason,
    };
    let key = version_key(&manifest.name, manifest.version, file)?;
    let body = match store.get(&key).await {
        Ok(body) => body,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(corrupted(format!("{key} is missing from {}", store.describe())).into());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {key}")),
    };
    let found = ArtifactInfo::of(&body);
    if found.size != expected.size {
        return Err(corrupted(format!("{} bytes, the manifest says {}", found.size, expected.size)).into());
    }
    if found.sha256 != expected.sha256 {
        return Err(corrupted(format!(
            "sha256 {}, the manifest says {}",
            found.sha256, expected.sha256
        ))
        .into());
    }
    Ok(body)
}

/// The files of a version that are published as they are stored (the manifest, whose signature
/// its readers verify, and the artifacts it lists with their digests).
pub const PUBLISHED_FILES: [&str; 4] = ["manifest.json", "model.onnx", "model.wasm", IR_ARTIFACT];

/// The stored bytes of one of a version's [`PUBLISHED_FILES`], unchanged: readers (edges,
/// browsers) verify the manifest's signature and the artifact's digest themselves.
pub async fn read_published(store: &dyn ObjectStore, name: &str, version: u64, file: &str) -> anyhow::Result<Bytes> {
    check_name("model", name)?;
    let manifest_key = version_key(name, version, "manifest.json")?;
    let key = version_key(name, version, file)?;
    if PUBLISHED_FILES.contains(&file) {
        match store.get(&key).await {
            Ok(body) => return Ok(body),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {key}")),
        }
    }
    if file != "manifest.json" && store.exists(&manifest_key).await? {
        let present = published_files(store, name, version).await?;
        return Err(RegistryError::UnknownArtifact {
            name: name.to_owned(),
            version,
            file: file.to_owned(),
            available: present,
        }
        .into());
    }
    Err(missing_version(store, name, version).await?.into())
}

/// Why `name@version` has no manifest: the model does not exist, or it has other versions.
async fn missing_version(store: &dyn ObjectStore, name: &str, version: u64) -> anyhow::Result<RegistryError> {
    let available = list_versions(store, name).await?;
    Ok(if available.is_empty() {
        unknown_model(store, name)
    } else {
        RegistryError::UnknownVersion {
            name: name.to_owned(),
            version,
            available,
        }
    })
}

/// Which of the [`PUBLISHED_FILES`] a version has.
async fn published_files(store: &dyn ObjectStore, name: &str, version: u64) -> anyhow::Result<Vec<String>> {
    let mut present = Vec::new();
    for file in PUBLISHED_FILES {
        if store.exists(&version_key(name, version, file)?).await? {
            present.push(file.to_owned());
        }
    }
    Ok(present)
}

/// Checks every artifact of a version against its manifest.
pub async fn verify_artifacts(store: &dyn ObjectStore, manifest: &Manifest) -> anyhow::Result<()> {
    for file in manifest.artifacts.keys() {
        load_artifact(store, manifest, file).await?;
    }
    Ok(())
}

/// Registered models (those with at least one manifest), sorted.
pub async fn list_models(store: &dyn ObjectStore) -> anyhow::Result<Vec<String>> {
    let names: BTreeSet<String> = store
        .list("models/")
        .await
        .with_context(|| format!("cannot list the models in {}", store.describe()))?
        .iter()
        .filter_map(|m| match m.key.as_str().split('/').collect::<Vec<_>>()[..] {
            ["models", name, version, "manifest.json"] if version.parse::<u64>().is_ok() => Some(name.to_owned()),
            _ => None,
        })
        .collect();
    Ok(names.into_iter().collect())
}

/// The published versions of a model (those with a manifest), ascending; empty for an unknown
/// model.
pub async fn list_versions(store: &dyn ObjectStore, name: &str) -> anyhow::Result<Vec<u64>> {
    versions_with(store, name, Some("manifest.json")).await
}

/// Every version number taken, published or not (a claim without a manifest is a registration
/// in progress or one that failed).
pub(super) async fn claimed_versions(store: &dyn ObjectStore, name: &str) -> anyhow::Result<Vec<u64>> {
    versions_with(store, name, None).await
}

async fn versions_with(store: &dyn ObjectStore, name: &str, file: Option<&str>) -> anyhow::Result<Vec<u64>> {
    check_name("model", name)?;
    let prefix = model_prefix(name);
    let versions: BTreeSet<u64> = store
        .list(&prefix)
        .await
        .with_context(|| format!("cannot list {prefix} in {}", store.describe()))?
        .iter()
        .filter_map(|m| {
            let (version, rest) = m.key.as_str().strip_prefix(&prefix)?.split_once('/')?;
            let version: u64 = version.parse().ok()?;
            file.is_none_or(|f| rest == f).then_some(version)
        })
        .collect();
    Ok(versions.into_iter().collect())
}
