//! Leases: how a record of work in progress (a pipeline run, a drift retrain) says that a live
//! process is on it, and how another process tells that it is not.
//!
//! The process running the work writes a [`Lease`] (its owner id, the last heartbeat, the
//! expiry) into the work's record and renews it periodically; it removes the lease when the work
//! ends. A record still open whose lease has expired belongs to a process that died: any control
//! plane that finds it ([`scan`]) marks it `abandoned` with the reason. Open leases are listed
//! under `leases/` (one small object per leased record, pointing at it), so a scan reads only
//! the records in progress, never every run.
//!
//! Time is always given (`now`), so the expiry rules are tested without sleeping. Clocks of the
//! processes sharing a store must agree to well within a lease (NTP does).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::store::{ErrorKind, Key, ObjectStore};
use crate::store::{get_json, put_json};

/// Where the index of open leases lives.
pub(crate) const LEASES_PREFIX: &str = "leases/";

/// Who runs a piece of work, and until when that holds without a new heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lease {
    /// The process holding it: host, process id and a random part (see [`new_owner_id`]).
    pub owner: String,
    pub heartbeat_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// A lease taken (or renewed) at `now` for `ttl`.
    pub fn new(owner: &str, now: DateTime<Utc>, ttl: Duration) -> Lease {
        Lease {
            owner: owner.to_owned(),
            heartbeat_at: now,
            expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// Whether the holder has stopped heartbeating by `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// What an abandoned record says.
    pub fn abandon_reason(&self) -> String {
        format!(
            "lease expired at {}, owner {} stopped heartbeating (last heartbeat {})",
            self.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.owner,
            self.heartbeat_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
    }
}

/// How a process holds leases: its owner id and how long a heartbeat keeps a lease. Clones share
/// one write lock, so the heartbeat and the work itself never interleave a read-modify-write of
/// the same record in one process.
#[derive(Debug, Clone)]
pub struct LeaseHolder {
    pub owner: String,
    pub ttl: Duration,
    pub(crate) writes: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl LeaseHolder {
    pub fn new(owner: String, ttl: Duration) -> LeaseHolder {
        LeaseHolder {
            owner,
            ttl,
            writes: std::sync::Arc::default(),
        }
    }

    /// How often to renew: a third of the lease, so two heartbeats can be late before it lapses.
    pub fn heartbeat_every(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(100))
    }

    pub fn lease(&self, now: DateTime<Utc>) -> Lease {
        Lease::new(&self.owner, now, self.ttl)
    }
}

/// An id for this process as a lease owner: host name, process id and random hex (containers
/// often all run as PID 1, and hosts can share a name).
pub fn new_owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let mut noise = [0u8; 4];
    let _ = getrandom::fill(&mut noise);
    format!("{host}/{}/{}", std::process::id(), hex::encode(noise))
}

/// A record that can hold a lease.
pub(crate) trait Leased: Serialize + DeserializeOwned {
    /// The lease, while the work is still open (running); `None` once it ended.
    fn open_lease(&self) -> Option<&Lease>;
    /// Marks the work abandoned with `reason` and drops the lease.
    fn abandon(&mut self, reason: String, now: DateTime<Utc>);
}

/// `leases/{kind}/{name}.json`: an open lease, pointing at its record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LeaseEntry {
    /// The record's key.
    pub record: String,
    pub owner: String,
    pub created_at: DateTime<Utc>,
    /// The first lease's expiry: an entry whose record never appeared is dropped after it.
    pub expires_at: DateTime<Utc>,
}

/// The index key of a leased record: `leases/{kind}/{name}.json`.
pub(crate) fn entry_key(kind: &str, name: &str) -> anyhow::Result<Key> {
    Ok(Key::new(format!("{LEASES_PREFIX}{kind}/{name}.json"))?)
}

/// Lists `record` (at `entry`) as leased by `lease`; before the record is written, so an open
/// lease is always listed.
pub(crate) async fn enter(store: &dyn ObjectStore, entry: &Key, record: &Key, lease: &Lease) -> anyhow::Result<()> {
    let value = LeaseEntry {
        record: record.to_string(),
        owner: lease.owner.clone(),
        created_at: lease.heartbeat_at,
        expires_at: lease.expires_at,
    };
    put_json(store, entry, &value).await
}

/// Removes an index entry (the work ended); absent is fine.
pub(crate) async fn leave(store: &dyn ObjectStore, entry: &Key) -> anyhow::Result<()> {
    store.delete(entry).await?;
    Ok(())
}

/// Reads the JSON record at `key`, lets `change` edit it, and writes it back when `change`
/// returns true; `None` when there is no record.
///
/// The one read-modify-write of leased records (run and retrain records), and a
/// compare-and-swap: the record is read with its tag and written only if unchanged
/// ([`ObjectStore::put_if_match`]); when another process wrote in between (its heartbeat, a
/// scan marking it abandoned, a cancel), `change` runs again on what is there now.
pub(crate) async fn update_json<T: Serialize + DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &Key,
    mut change: impl FnMut(&mut T) -> anyhow::Result<bool>,
) -> anyhow::Result<Option<T>> {
    for attempt in 0u32.. {
        let (body, tag) = match store.get_tagged(key).await {
            Ok(read) => read,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut value: T = serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("{key} is not valid: {e}"))?;
        if !change(&mut value)? {
            return Ok(Some(value));
        }
        let body = bytes::Bytes::from(serde_json::to_vec_pretty(&value)?);
        match store.put_if_match(key, body, &tag).await {
            Ok(()) => return Ok(Some(value)),
            Err(e) if matches!(e.kind(), ErrorKind::Conflict) && attempt < 100 => {
                tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(50)) + 1)).await;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

/// What a scan did to one listed lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Still held (its owner heartbeats).
    Held,
    /// Expired: the record is now marked abandoned, with this reason.
    Abandoned { record: String, reason: String },
    /// The work had ended, or its record never appeared: the entry is removed.
    Stale,
}

/// Scans the open leases under `leases/{kind}/` and marks each record of type `T` whose lease
/// expired by `now` as abandoned. Returns what was found per entry (for logs and tests).
pub(crate) async fn scan<T: Leased>(
    store: &dyn ObjectStore,
    kind: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(String, Found)>> {
    let prefix = format!("{LEASES_PREFIX}{kind}/");
    let mut found = Vec::new();
    for meta in store.list(&prefix).await? {
        let entry_key = meta.key;
        let entry = match get_json::<LeaseEntry>(store, &entry_key).await {
            Ok(Some(entry)) => entry,
            Ok(None) => continue, // removed since the listing
            Err(e) => {
                // An unreadable entry (not ours, or half a write from a foreign tool) is
                // reported, not fatal to the scan.
                tracing::warn!(key = %entry_key, error = format!("{e:#}"), "unreadable lease entry");
                continue;
            }
        };
        let record_key = Key::new(entry.record.clone())?;
        let mut outcome = Found::Stale;
        let record = update_json::<T>(store, &record_key, |record| {
            outcome = match record.open_lease() {
                None => Found::Stale,
                Some(lease) if !lease.expired(now) => Found::Held,
                Some(lease) => {
                    let reason = lease.abandon_reason();
                    record.abandon(reason.clone(), now);
                    Found::Abandoned {
                        record: entry.record.clone(),
                        reason,
                    }
                }
            };
            Ok(matches!(outcome, Found::Abandoned { .. }))
        })
        .await?;
        if record.is_none() {
            // Listed, but its record was never written: the owner died in between, or is
            // between the two writes right now (then its first lease has not expired).
            outcome = if now >= entry.expires_at {
                Found::Stale
            } else {
                Found::Held
            };
        }
        if outcome != Found::Held {
            match store.delete(&entry_key).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        found.push((entry_key.to_string(), outcome));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_lease_expires_when_its_ttl_passes_without_a_heartbeat() {
        let holder = LeaseHolder::new("host/7/abcd".into(), Duration::from_secs(30));
        let lease = holder.lease(at(0));
        assert!(!lease.expired(at(0)));
        assert!(!lease.expired(at(29)));
        assert!(lease.expired(at(30)), "expiry is inclusive");
        assert!(lease.expired(at(3600)));
        // A heartbeat at 20 s holds it to 50 s.
        let renewed = holder.lease(at(20));
        assert!(!renewed.expired(at(49)));
        assert!(renewed.expired(at(50)));
        assert_eq!(holder.heartbeat_every(), Duration::from_secs(10));
        let reason = lease.abandon_reason();
        assert!(
            reason.starts_with("lease expired at 2025-06-15T15:07:10.000Z, owner host/7/abcd stopped heartbeating"),
            "{reason}"
        );
    }

    #[test]
    fn owner_ids_differ_between_holders_of_one_process() {
        let (a, b) = (new_owner_id(), new_owner_id());
        assert_ne!(a, b);
        assert!(a.contains(&format!("/{}/", std::process::id())), "{a}");
    }

    /// A record for the scan: open while `running`.
    #[derive(Debug, Serialize, Deserialize)]
    struct Work {
        running: bool,
        lease: Option<Lease>,
        note: Option<String>,
    }

    impl Leased for Work {
        fn open_lease(&self) -> Option<&Lease> {
            self.lease.as_ref().filter(|_| self.running)
        }
        fn abandon(&mut self, reason: String, _now: DateTime<Utc>) {
            self.running = false;
            self.lease = None;
            self.note = Some(reason);
        }
    }

    async fn leased(store: &dyn ObjectStore, name: &str, work: &Work, lease: &Lease) {
        let record = Key::new(format!("work/{name}.json")).unwrap();
        enter(store, &entry_key("work", name).unwrap(), &record, lease)
            .await
            .unwrap();
        put_json(store, &record, work).await.unwrap();
    }

    #[tokio::test]
    async fn a_scan_abandons_expired_leases_only_and_tidies_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let holder = LeaseHolder::new("dead/1/0000".into(), Duration::from_secs(10));
        let old = holder.lease(at(0));
        let fresh = holder.lease(at(55));
        let work = |running, lease: &Lease| Work {
            running,
            lease: Some(lease.clone()),
            note: None,
        };
        leased(&store, "expired", &work(true, &old), &old).await;
        leased(&store, "alive", &work(true, &fresh), &fresh).await;
        leased(&store, "ended", &work(false, &old), &old).await;
        // Listed, its record never written: dropped once its first lease is over.
        enter(
            &store,
            &entry_key("work", "orphan").unwrap(),
            &Key::new("work/orphan.json").unwrap(),
            &fresh,
        )
        .await
        .unwrap();

        let found = scan::<Work>(&store, "work", at(60)).await.unwrap();
        let outcome = |name: &str| {
            found
                .iter()
                .find(|(k, _)| k == &format!("leases/work/{name}.json"))
                .map(|(_, f)| f.clone())
                .unwrap()
        };
        assert_eq!(
            outcome("expired"),
            Found::Abandoned {
                record: "work/expired.json".into(),
                reason: old.abandon_reason()
            }
        );
        assert_eq!(outcome("alive"), Found::Held);
        assert_eq!(outcome("ended"), Found::Stale);
        assert_eq!(outcome("orphan"), Found::Held, "its first lease runs to 65 s");

        let expired: Work = get_json(&store, &Key::new("work/expired.json").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!expired.running && expired.lease.is_none());
        assert!(expired.note.unwrap().contains("owner dead/1/0000 stopped heartbeating"));
        let alive: Work = get_json(&store, &Key::new("work/alive.json").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(alive.running, "a live lease is left alone");
        let listed: Vec<String> = store
            .list(LEASES_PREFIX)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key.to_string())
            .collect();
        assert_eq!(listed, ["leases/work/alive.json", "leases/work/orphan.json"]);

        // Later, the orphan's first lease is over too, and the live one expires.
        let found = scan::<Work>(&store, "work", at(70)).await.unwrap();
        assert_eq!(found.len(), 2);
        assert!(matches!(found[0].1, Found::Abandoned { .. }), "{found:?}");
        assert_eq!(found[1].1, Found::Stale);
        assert!(store.list(LEASES_PREFIX).await.unwrap().is_empty());
        assert!(scan::<Work>(&store, "work", at(80)).await.unwrap().is_empty());
    }
}
