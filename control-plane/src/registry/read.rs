//! Reading the registry: selectors, verified manifests, checked artifacts, listings.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use anyhow::Context;
use bytes::Bytes;

use super::{ArtifactInfo, Manifest, RegistryError, check_name, get_alias, list_aliases, model_prefix, version_key};
use crate::store::{ErrorKind, ObjectStore};

/// Which version of a model: `NAME` (the latest), `NAME@VERSION` or `NAME@ALIAS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSelector {
    pub name: String,
    pub pick: Pick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    Latest,
    Version(u64),
    Alias(String),
}

impl ModelSelector {
    pub fn version(name: &str, version: u64) -> ModelSelector {
        ModelSelector {
            name: name.to_owned(),
            pick: Pick::Version(version),
        }
    }
}

impl FromStr for ModelSelector {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, pick) = match s.split_once('@') {
            None => (s, Pick::Latest),
            Some((name, rest)) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
                let version = rest.parse().map_err(|_| RegistryError::InvalidName {
                    what: "version",
                    name: rest.to_owned(),
                    reason: "too large".into(),
                })?;
                (name, Pick::Version(version))
            }
            Some((name, alias)) => {
                check_name("alias", alias)?;
                (name, Pick::Alias(alias.to_owned()))
            }
        };
        check_name("model", name)?;
        Ok(ModelSelector {
            name: name.to_owned(),
            pick,
        })
    }
}

impl fmt::Display for ModelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pick {
            Pick::Latest => write!(f, "{}", self.name),
            Pick::Version(v) => write!(f, "{}@{v}", self.name),
            Pick::Alias(a) => write!(f, "{}@{a}", self.name),
        }
    }
}

/// The version a selector names; an unknown model or alias is a [`RegistryError`] naming it.
pub async fn resolve_version(store: &dyn ObjectStore, selector: &ModelSelector) -> anyhow::Result<u64> {
    let name = &selector.name;
    check_name("model", name)?;
    match &selector.pick {
        Pick::Version(v) => Ok(*v),
        Pick::Latest => Ok(*list_versions(store, name)
            .await?
            .last()
            .ok_or_else(|| unknown_model(store, name))?),
        Pick::Alias(alias) => match get_alias(store, name, alias).await? {
            Some(record) => Ok(record.version),
            None if list_versions(store, name).await?.is_empty() => Err(unknown_model(store, name).into()),
            None => Err(RegistryError::UnknownAlias {
                name: name.clone(),
                alias: alias.clone(),
                available: list_aliases(store, name).await?.into_keys().collect(),
            }
            .into()),
        },
    }
}

fn unknown_model(store: &dyn ObjectStore, name: &str) -> RegistryError {
    RegistryError::UnknownModel {
        name: name.to_owned(),
        store: store.describe(),
    }
}

/// The manifest a selector names, its signature verified against the store's public key.
pub async fn load_manifest(store: &dyn ObjectStore, selector: &ModelSelector) -> anyhow::Result<Manifest> {
    let version = resolve_version(store, selector).await?;
    load_version(store, &selector.name, version).await
}

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
pub const PUBLISHED_FILES: [&str; 4] = ["manifest.json", "model.onnx", "model.wasm", super::IR_ARTIFACT];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() {
        let s: ModelSelector = "wine".parse().unwrap();
        assert_eq!(s.pick, Pick::Latest);
        let s: ModelSelector = "wine@12".parse().unwrap();
        assert_eq!((s.name.as_str(), s.pick), ("wine", Pick::Version(12)));
        let s: ModelSelector = "wine@production".parse().unwrap();
        assert_eq!(s.pick, Pick::Alias("production".into()));
        assert_eq!(s.to_string(), "wine@production");
        for bad in ["../x", "../x@1", "wine@../x", "wine@", "@1", "a/b@2"] {
            let err = bad.parse::<ModelSelector>().unwrap_err().to_string();
            assert!(err.starts_with("invalid "), "{bad}: {err}");
        }
        let err = "wine@../x".parse::<ModelSelector>().unwrap_err().to_string();
        assert!(err.contains("invalid alias name '../x'"), "{err}");
    }
}
