//! Aliases (`production`, `staging`, ...): movable names for versions, with their history.
//!
//! Every move is a compare-and-swap: the record is read with its tag, the new one is written only
//! if the record is still what was read ([`ObjectStore::put_if_match`], or
//! [`ObjectStore::create_new`] for a new alias), and a writer that lost the race reads again and
//! decides again. So any number of processes can move one alias at once: every move that answered
//! is one transition (numbered by [`AliasRecord::transition`], each also written once to
//! `models/{name}/alias-log/{alias}/{transition}.json`), and the alias ends at the last one.

use std::collections::BTreeMap;

use anyhow::{Context, ensure};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RegistryError, alias_key, check_name, load_version, model_prefix, verify_artifacts};
use crate::store::{ETag, ErrorKind, Key, ObjectStore};

/// How many earlier targets an alias remembers.
pub(super) const ALIAS_HISTORY_LIMIT: usize = 50;

/// How long a move keeps retrying after losing races to other writers before it gives up.
const CONTENTION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// `models/{name}/aliases/{alias}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AliasRecord {
    pub version: u64,
    pub updated_at: DateTime<Utc>,
    pub by: String,
    /// Which move of the alias this is: 1 for its first target, one more for every move since
    /// (0 in records written before moves were counted).
    #[serde(default)]
    pub transition: u64,
    /// The version this transition moved the alias from (None: the alias was new).
    #[serde(default)]
    pub from: Option<u64>,
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

/// One line of an alias's log: `models/{name}/alias-log/{alias}/{transition}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AliasLogEntry {
    pub transition: u64,
    /// The version before the move (None: the alias was new).
    pub from: Option<u64>,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
    pub by: String,
}

/// An alias as read: its record (None: not set) and the tag a conditional write must name.
#[derive(Debug, Clone)]
pub(crate) struct ReadAlias {
    pub record: Option<AliasRecord>,
    tag: Option<ETag>,
}

impl ReadAlias {
    pub(crate) fn version(&self) -> Option<u64> {
        self.record.as_ref().map(|r| r.version)
    }
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
    Ok(read_alias(store, name, alias).await?.record)
}

/// The alias's record with the tag a conditional move names ([`move_if_unchanged`]).
pub(crate) async fn read_alias(store: &dyn ObjectStore, name: &str, alias: &str) -> anyhow::Result<ReadAlias> {
    check_name("model", name)?;
    check_alias(alias)?;
    let key = alias_key(name, alias)?;
    match store.get_tagged(&key).await {
        Ok((body, tag)) => Ok(ReadAlias {
            record: Some(serde_json::from_slice(&body).with_context(|| format!("{key} is not a valid alias record"))?),
            tag: Some(tag),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(ReadAlias {
            record: None,
            tag: None,
        }),
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

/// The transitions of an alias that its log holds, oldest first.
pub(crate) async fn alias_log(store: &dyn ObjectStore, name: &str, alias: &str) -> anyhow::Result<Vec<AliasLogEntry>> {
    check_name("model", name)?;
    check_alias(alias)?;
    let prefix = format!("{}alias-log/{alias}/", model_prefix(name));
    let mut entries = Vec::new();
    for meta in store
        .list(&prefix)
        .await
        .with_context(|| format!("cannot list {prefix}"))?
    {
        let body = store
            .get(&meta.key)
            .await
            .with_context(|| format!("cannot read {}", meta.key))?;
        entries.push(
            serde_json::from_slice::<AliasLogEntry>(&body)
                .with_context(|| format!("{} is not a valid alias log entry", meta.key))?,
        );
    }
    entries.sort_by_key(|e| e.transition);
    Ok(entries)
}

/// Points `alias` at `version`, after checking that the version's manifest verifies and that
/// every artifact matches its digest. The previous target goes to the front of the history.
/// Pointing an alias at the version it already has changes nothing (and is no transition).
pub(crate) async fn set_alias(
    store: &dyn ObjectStore,
    name: &str,
    alias: &str,
    version: u64,
    by: &str,
) -> anyhow::Result<AliasRecord> {
    check_alias(alias)?;
    check_target(store, name, version, || {
        format!("cannot point {name}@{alias} at version {version}")
    })
    .await?;
    let mut contention = Contention::new(name, alias);
    loop {
        let read = read_alias(store, name, alias).await?;
        if let Some(current) = &read.record
            && current.version == version
        {
            return Ok(current.clone());
        }
        if let Some(record) = swap(store, name, alias, &read, version, by).await? {
            tracing::info!(model = %name, alias = %alias, version, by = %by, transition = record.transition, "alias moved");
            return Ok(record);
        }
        contention.lost().await?;
    }
}

/// Points `alias` at `version` only if it still holds what `read` saw: the gate's move, which
/// decided against that version. None when another writer moved the alias since (read again and
/// decide again). The caller checked the version's manifest and artifacts.
pub(crate) async fn move_if_unchanged(
    store: &dyn ObjectStore,
    name: &str,
    alias: &str,
    read: &ReadAlias,
    version: u64,
    by: &str,
) -> anyhow::Result<Option<AliasRecord>> {
    check_target(store, name, version, || {
        format!("cannot point {name}@{alias} at version {version}")
    })
    .await?;
    let moved = swap(store, name, alias, read, version, by).await?;
    if let Some(record) = &moved {
        tracing::info!(model = %name, alias = %alias, version, by = %by, transition = record.transition, "alias moved by the gate");
    }
    Ok(moved)
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
    let mut verified = None;
    let mut contention = Contention::new(name, alias);
    loop {
        let read = read_alias(store, name, alias).await?;
        let Some(current) = &read.record else {
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
        if verified != Some(version) {
            check_target(store, name, version, || {
                format!("cannot roll {name}@{alias} back to version {version}")
            })
            .await?;
            verified = Some(version);
        }
        let record = AliasRecord {
            version,
            updated_at: Utc::now(),
            by: by.to_owned(),
            transition: current.transition + 1,
            from: Some(current.version),
            history: current.history[i + 1..].to_vec(),
        };
        if write(store, name, alias, &read, &record).await? {
            tracing::info!(model = %name, alias = %alias, from = current.version, to = version, by = %by, transition = record.transition, "alias rolled back");
            return Ok(record);
        }
        contention.lost().await?;
    }
}

/// Checks that `version` may be an alias's target: its manifest verifies and every artifact
/// matches its digest. `context` says what was being done.
async fn check_target(
    store: &dyn ObjectStore,
    name: &str,
    version: u64,
    context: impl Fn() -> String,
) -> anyhow::Result<()> {
    let manifest = load_version(store, name, version).await.with_context(&context)?;
    verify_artifacts(store, &manifest).await.with_context(&context)?;
    Ok(())
}

/// The record that moves what `read` saw to `version`, written if nobody moved it since.
async fn swap(
    store: &dyn ObjectStore,
    name: &str,
    alias: &str,
    read: &ReadAlias,
    version: u64,
    by: &str,
) -> anyhow::Result<Option<AliasRecord>> {
    let (history, transition) = match &read.record {
        Some(current) => {
            let mut history = Vec::with_capacity(ALIAS_HISTORY_LIMIT);
            history.push(current.entry());
            history.extend(current.history.iter().cloned());
            history.truncate(ALIAS_HISTORY_LIMIT);
            (history, current.transition + 1)
        }
        None => (Vec::new(), 1),
    };
    let record = AliasRecord {
        version,
        updated_at: Utc::now(),
        by: by.to_owned(),
        transition,
        from: read.version(),
        history,
    };
    Ok(write(store, name, alias, read, &record).await?.then_some(record))
}

/// Writes `record` if the alias still holds what `read` saw; false when another writer was first.
/// Then logs the transition. The log entry of the transition read is written first when missing
/// (its writer died between its swap and its log), so only the newest can ever be missing.
async fn write(
    store: &dyn ObjectStore,
    name: &str,
    alias: &str,
    read: &ReadAlias,
    record: &AliasRecord,
) -> anyhow::Result<bool> {
    ensure!(record.history.len() <= ALIAS_HISTORY_LIMIT);
    let key = alias_key(name, alias)?;
    if let Some(current) = &read.record
        && current.transition > 0
    {
        log(store, name, alias, current).await?;
    }
    let body = Bytes::from(serde_json::to_vec_pretty(record)?);
    let written = match &read.tag {
        Some(tag) => store.put_if_match(&key, body, tag).await,
        None => store.create_new(&key, body).await,
    };
    match written {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::Conflict | ErrorKind::AlreadyExists | ErrorKind::NotFound
            ) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot write {key} to {}", store.describe())),
    }
    log(store, name, alias, record).await?;
    Ok(true)
}

/// Creates the log entry of the transition `record` made; an entry already there is left as it is.
async fn log(store: &dyn ObjectStore, name: &str, alias: &str, record: &AliasRecord) -> anyhow::Result<()> {
    let key = Key::new(format!(
        "{}alias-log/{alias}/{:012}.json",
        model_prefix(name),
        record.transition
    ))?;
    let line = AliasLogEntry {
        transition: record.transition,
        from: record.from,
        version: record.version,
        updated_at: record.updated_at,
        by: record.by.clone(),
    };
    match store
        .create_new(&key, Bytes::from(serde_json::to_vec_pretty(&line)?))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot write {key} to {}", store.describe())),
    }
}

/// Backs off between attempts of a writer that lost a race: a random wait that doubles up to
/// 100 ms, for at most [`CONTENTION_DEADLINE`].
struct Contention<'a> {
    name: &'a str,
    alias: &'a str,
    attempts: u32,
    started: std::time::Instant,
}

impl<'a> Contention<'a> {
    fn new(name: &'a str, alias: &'a str) -> Self {
        Contention {
            name,
            alias,
            attempts: 0,
            started: std::time::Instant::now(),
        }
    }

    async fn lost(&mut self) -> anyhow::Result<()> {
        self.attempts += 1;
        if self.started.elapsed() > CONTENTION_DEADLINE {
            return Err(RegistryError::Contended {
                name: self.name.to_owned(),
                alias: self.alias.to_owned(),
                attempts: self.attempts,
            }
            .into());
        }
        let cap_ms = (1u64 << self.attempts.min(7)).min(100);
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        let wait = u64::from_le_bytes(random) % (cap_ms * 1000) + 1;
        tokio::time::sleep(std::time::Duration::from_micros(wait)).await;
        Ok(())
    }
}
