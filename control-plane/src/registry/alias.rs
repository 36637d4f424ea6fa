//! Aliases (`production`, `staging`, ...): movable names for versions, with their history.

use std::collections::BTreeMap;

use anyhow::{Context, ensure};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RegistryError, alias_key, check_name, load_version, model_prefix, verify_artifacts};
use crate::store::{ErrorKind, ObjectStore};

/// How many earlier targets an alias remembers.
pub(super) const ALIAS_HISTORY_LIMIT: usize = 50;

/// `models/{name}/aliases/{alias}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AliasRecord {
    pub version: u64,
    pub updated_at: DateTime<Utc>,
    pub by: String,
    /// Earlier targets, newest first, at most [`ALIAS_HISTORY_LIMIT`]: the stack a rollback pops.
    #[serde(default)]
    pub history: Vec<AliasEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AliasEntry {
    pub version: u64,
    pub updated_at: DateTime<Utc>,
    pub by: String,
}

impl AliasRecord {
    fn entry(&self) -> AliasEntry {
        AliasEntry {
            version: self.version,
            updated_at: self.updated_at,
            by: self.by.clone(),
        }
    }
}

/// An alias name: a key segment that is not a number (`NAME@3` means version 3).
fn check_alias(alias: &str) -> anyhow::Result<()> {
    check_name("alias", alias)?;
    if alias.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RegistryError::InvalidName {
            what: "alias",
            name: alias.to_owned(),
            reason: "a number would read as a version (NAME@VERSION)".into(),
        }
        .into());
    }
    Ok(())
}

/// The alias's record, or None when the model has no such alias.
pub(crate) async fn get_alias(store: &dyn ObjectStore, name: &str, alias: &str) -> anyhow::Result<Option<AliasRecord>> {
    check_name("model", name)?;
    check_alias(alias)?;
    let key = alias_key(name, alias)?;
    match store.get(&key).await {
        Ok(body) => Ok(Some(
            serde_json::from_slice(&body).with_context(|| format!("{key} is not a valid alias record"))?,
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {key}")),
    }
}

/// Every alias of a model, by name.
pub(crate) async fn list_aliases(store: &dyn ObjectStore, name: &str) -> anyhow::Result<BTreeMap<String, AliasRecord>> {
    check_name("model", name)?;
    let prefix = format!("{}aliases/", model_prefix(name));
    let mut aliases = BTreeMap::new();
    for meta in store
        .list(&prefix)
        .await
        .with_context(|| format!("cannot list {prefix}"))?
    {
        let Some(alias) = meta
            .key
            .as_str()
            .strip_prefix(&prefix)
            .and_then(|a| a.strip_suffix(".json"))
        else {
            continue;
        };
        if let Some(record) = get_alias(store, name, alias).await? {
            aliases.insert(alias.to_owned(), record);
        }
    }
    Ok(aliases)
}

/// Points `alias` at `version`, after checking that the version's manifest verifies and that
/// every artifact matches its digest. The previous target goes to the front of the history.
/// Pointing an alias at the version it already has changes nothing.
///
/// Two concurrent moves of the same alias both succeed and the last write wins (the store has no
/// compare-and-swap on replace); the history may then miss the loser's entry.
pub(crate) async fn set_alias(
    store: &dyn ObjectStore,
    name: &str,
    alias: &str,
    version: u64,
    by: &str,
) -> anyhow::Result<AliasRecord> {
    check_alias(alias)?;
    let manifest = load_version(store, name, version)
        .await
        .with_context(|| format!("cannot point {name}@{alias} at version {version}"))?;
    verify_artifacts(store, &manifest)
        .await
        .with_context(|| format!("cannot point {name}@{alias} at version {version}"))?;
    let current = get_alias(store, name, alias).await?;
    if let Some(current) = &current
        && current.version == version
    {
        return Ok(current.clone());
    }
    let history = match current {
        Some(current) => {
            let mut history = Vec::with_capacity(ALIAS_HISTORY_LIMIT);
            history.push(current.entry());
            history.extend(current.history);
            history.truncate(ALIAS_HISTORY_LIMIT);
            history
        }
        None => Vec::new(),
    };
    let record = AliasRecord {
        version,
        updated_at: Utc::now(),
        by: by.to_owned(),
        history,
    };
    write(store, name, alias, &record).await?;
    tracing::info!(model = %name, alias = %alias, version, by = %by, "alias moved");
    Ok(record)
}

/// Moves `alias` back to the previous distinct version in its history, after the same checks as
/// [`set_alias`]. The history is a stack: the entries up to the new target are consumed, so a
/// second rollback goes one version further back, never to the version just rolled back from.
pub(crate) async fn rollback(
    store: &dyn ObjectStore,
    name: &str,
    alias: &str,
    by: &str,
) -> anyhow::Result<AliasRecord> {
    let Some(current) = get_alias(store, name, alias).await? else {
        return Err(RegistryError::UnknownAlias {
            name: name.to_owned(),
            alias: alias.to_owned(),
            available: list_aliases(store, name).await?.into_keys().collect(),
        }
        .into());
    };
    let Some(i) = current.history.iter().position(|e| e.version != current.version) else {
        return Err(RegistryError::NothingToRollBack {
            name: name.to_owned(),
            alias: alias.to_owned(),
        }
        .into());
    };
    let version = current.history[i].version;
    let manifest = load_version(store, name, version)
        .await
        .with_context(|| format!("cannot roll {name}@{alias} back to version {version}"))?;
    verify_artifacts(store, &manifest)
        .await
        .with_context(|| format!("cannot roll {name}@{alias} back to version {version}"))?;
    let record = AliasRecord {
        version,
        updated_at: Utc::now(),
        by: by.to_owned(),
        history: current.history[i + 1..].to_vec(),
    };
    write(store, name, alias, &record).await?;
    tracing::info!(model = %name, alias = %alias, from = current.version, to = version, by = %by, "alias rolled back");
    Ok(record)
}

async fn write(store: &dyn ObjectStore, name: &str, alias: &str, record: &AliasRecord) -> anyhow::Result<()> {
    ensure!(record.history.len() <= ALIAS_HISTORY_LIMIT);
    let key = alias_key(name, alias)?;
    store
        .put(&key, Bytes::from(serde_json::to_vec_pretty(record)?))
        .await
        .with_context(|| format!("cannot write {key} to {}", store.describe()))
}
