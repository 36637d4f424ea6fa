//! Model selectors: `NAME` (the latest version), `NAME@VERSION` or `NAME@ALIAS`, resolved to a
//! version and its manifest. Above both `read` and `alias`: a selector may name either.

use std::fmt;
use std::str::FromStr;

use super::read::unknown_model;
use super::{Manifest, RegistryError, check_name, get_alias, list_aliases, list_versions, load_version};
use crate::store::ObjectStore;

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
pub(super) async fn resolve_version(store: &dyn ObjectStore, selector: &ModelSelector) -> anyhow::Result<u64> {
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

/// The manifest a selector names, its signature verified against the store's public key.
pub async fn load_manifest(store: &dyn ObjectStore, selector: &ModelSelector) -> anyhow::Result<Manifest> {
    let version = resolve_version(store, selector).await?;
    load_version(store, &selector.name, version).await
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
