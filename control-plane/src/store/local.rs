use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ETag, ErrorKind, Key, ObjectMeta, ObjectStore, StoreError, StoreResult};

/// Objects as files below a root directory. Writes go to `ROOT/.tmp/` first, under a random name
/// (processes in containers all have PID 1, so a PID-based name is not unique on a shared
/// volume), are fsynced, and are renamed into place (atomic on one filesystem), then the directory
/// is fsynced: after a crash an object is there whole or not at all. Conditional creates
/// hard-link the finished temporary file, which fails if the target exists, so concurrent
/// creators cannot both win. Temporary files an hour old (a writer that died) are removed when a
/// store is opened.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    tmp: PathBuf,
    locks: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Temporary files older than this were left by a writer that died.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(3600);

impl LocalStore {
    /// Opens (creating if needed) a store rooted at `root`, and checks that it is writable.
    pub fn open(root: impl AsRef<Path>) -> StoreResult<LocalStore> {
        let root = root.as_ref();
        let not_writable = |err: std::io::Error| {
            StoreError::with_source(
                ErrorKind::InvalidInput,
                format!("store root '{}' is not a writable directory: {err}", root.display()),
                err,
            )
        };
        std::fs::create_dir_all(root).map_err(not_writable)?;
        let root = root.canonicalize().map_err(not_writable)?;
        let tmp = root.join(".tmp");
        std::fs::create_dir_all(&tmp).map_err(not_writable)?;
        let locks = root.join(".locks");
        std::fs::create_dir_all(&locks).map_err(not_writable)?;
        let store = LocalStore { root, tmp, locks };
        store.remove_stale_tmp();
        // Directories can be read-only although they exist: prove a write works.
        let probe = store.tmp_path();
        std::fs::write(&probe, b"").map_err(not_writable)?;
        let _ = std::fs::remove_file(&probe);
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`.
    pub fn path_of(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// A fresh temporary file name: 128 random bits, and this process's counter for the (never
    /// seen) case that the system has no randomness to give.
    fn tmp_path(&self) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut random = [0u8; 16];
        if getrandom::fill(&mut random).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            random = (nanos ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
        }
        self.tmp.join(format!("{:032x}-{n}", u128::from_le_bytes(random)))
    }

    /// Removes temporary files older than [`STALE_TMP`]; a file it cannot remove stays.
    fn remove_stale_tmp(&self) {
        let Ok(entries) = std::fs::read_dir(&self.tmp) else {
            return;
        };
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TMP));
            if stale && std::fs::remove_file(entry.path()).is_ok() {
                tracing::info!(file = %entry.path().display(), "removed a stale temporary file");
            }
        }
    }

    /// Writes a temporary file with `fill`, then hands its path to `publish`; the temporary file is
    /// removed whatever happens.
    async fn via_tmp<F, Fut, P>(&self, key: &Key, fill: F, publish: P) -> StoreResult<()>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = StoreResult<()>>,
        P: FnOnce(&Key, &Path, &Path) -> StoreResult<()> + Send + 'static,
    {
        let target = self.path_of(key);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| StoreError::io(parent.display(), e))?;
        }
        let tmp = self.tmp_path();
        let result = async {
            fill(tmp.clone()).await?;
            let (tmp, target, key) = (tmp.clone(), target.clone(), key.clone());
            tokio::task::spawn_blocking(move || durably(&key, &tmp, &target, publish))
                .await
                .map_err(|e| StoreError::new(ErrorKind::Other, e.to_string()))?
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        result
    }

    /// The lock file that serialises conditional replaces of `key` (across processes too: an
    /// advisory `flock`, which holds for every process on the host and over NFSv4).
    fn lock_path(&self, key: &Key) -> PathBuf {
        use sha2::{Digest, Sha256};
        self.locks
            .join(format!("{}.lock", hex::encode(Sha256::digest(key.as_str()))))
    }
}

/// On disk an object's tag is the md5 of its bytes, as S3's ETag is for a plain put.
pub(super) fn md5_tag(body: &[u8]) -> ETag {
    use md5::{Digest, Md5};
    ETag(hex::encode(Md5::digest(body)))
}

/// Flushes the temporary file to disk, publishes it, then flushes the directory that now names it.
fn durably<P>(key: &Key, tmp: &Path, target: &Path, publish: P) -> StoreResult<()>
where
    P: FnOnce(&Key, &Path, &Path) -> StoreResult<()>,
{
    let io = |e| StoreError::io(key, e);
    std::fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(io)?;
    publish(key, tmp, target)?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io)?;
    }
    Ok(())
}

fn rename(key: &Key, tmp: &Path, target: &Path) -> StoreResult<()> {
    std::fs::rename(tmp, target).map_err(|e| StoreError::io(key, e))
}

/// Renames `tmp` over `target` if `target` still holds what `expected` tagged, holding the key's
/// lock from the read to the rename.
fn rename_if_match(key: &Key, lock: &Path, tmp: &Path, target: &Path, expected: &ETag) -> StoreResult<()> {
    let io = |e| StoreError::io(key, e);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .map_err(io)?;
    lock.lock().map_err(io)?;
    let current = std::fs::read(target).map_err(|e| map_read_err(key, e))?;
    let found = md5_tag(&current);
    if &found != expected {
        return Err(StoreError::new(
            ErrorKind::Conflict,
            format!("object '{key}' changed since it was read (tag {found}, expected {expected})"),
        ));
    }
    std::fs::rename(tmp, target).map_err(io)
    // The lock is released when `lock` is dropped, after the rename.
}

fn not_found(key: &Key) -> StoreError {
    StoreError::new(ErrorKind::NotFound, format!("object '{key}' not found"))
}

fn map_read_err(key: &Key, err: std::io::Error) -> StoreError {
    if err.kind() == std::io::ErrorKind::NotFound {
        not_found(key)
    } else {
        StoreError::io(key, err)
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn put(&self, key: &Key, body: Bytes) -> StoreResult<()> {
        self.via_tmp(
            key,
            |tmp| async move { tokio::fs::write(&tmp, &body).await.map_err(|e| StoreError::io(key, e)) },
            rename,
        )
        .await
    }

    async fn put_file(&self, key: &Key, path: &Path) -> StoreResult<()> {
        self.via_tmp(
            key,
            |tmp| async move {
                tokio::fs::copy(path, &tmp)
                    .await
                    .map(|_| ())
                    .map_err(|e| StoreError::io(path.display(), e))
            },
            rename,
        )
        .await
    }

    async fn create_new(&self, key: &Key, body: Bytes) -> StoreResult<()> {
        self.via_tmp(
            key,
            |tmp| async move { tokio::fs::write(&tmp, &body).await.map_err(|e| StoreError::io(key, e)) },
            |key, tmp, target| std::fs::hard_link(tmp, target).map_err(|e| StoreError::io(key, e)),
        )
        .await
        .map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                StoreError::new(ErrorKind::AlreadyExists, format!("object '{key}' already exists"))
            } else {
                e
            }
        })
    }

    async fn get(&self, key: &Key) -> StoreResult<Bytes> {
        tokio::fs::read(self.path_of(key))
            .await
            .map(Bytes::from)
            .map_err(|e| map_read_err(key, e))
    }

    async fn get_tagged(&self, key: &Key) -> StoreResult<(Bytes, ETag)> {
        let body = self.get(key).await?;
        let tag = md5_tag(&body);
        Ok((body, tag))
    }

    async fn put_if_match(&self, key: &Key, body: Bytes, expected: &ETag) -> StoreResult<()> {
        let (lock, expected) = (self.lock_path(key), expected.clone());
        self.via_tmp(
            key,
            |tmp| async move { tokio::fs::write(&tmp, &body).await.map_err(|e| StoreError::io(key, e)) },
            move |key, tmp, target| rename_if_match(key, &lock, tmp, target, &expected),
        )
        .await
    }

    async fn get_to_file(&self, key: &Key, path: &Path) -> StoreResult<u64> {
        tokio::fs::copy(self.path_of(key), path)
            .await
            .map_err(|e| map_read_err(key, e))
    }

    async fn head(&self, key: &Key) -> StoreResult<ObjectMeta> {
        let meta = tokio::fs::metadata(self.path_of(key))
            .await
            .map_err(|e| map_read_err(key, e))?;
        if !meta.is_file() {
            return Err(not_found(key));
        }
        Ok(ObjectMeta {
            key: key.clone(),
            size: meta.len(),
        })
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            // Only descend into the directory the prefix names, not the whole store.
            let start = match prefix.rfind('/') {
                Some(i) => root.join(&prefix[..i]),
                None => root.clone(),
            };
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(StoreError::io(dir.display(), e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| StoreError::io(dir.display(), e))?;
                    let path = entry.path();
                    let rel = path.strip_prefix(&root).expect("below root");
                    let Some(rel) = rel.to_str() else { continue };
                    if rel == ".tmp" || rel == ".locks" {
                        continue;
                    }
                    let ty = entry.file_type().map_err(|e| StoreError::io(path.display(), e))?;
                    if ty.is_dir() {
                        if prefix.starts_with(rel) || rel.starts_with(&prefix) {
                            stack.push(path);
                        }
                    } else if ty.is_file()
                        && rel.starts_with(&prefix)
                        && let Ok(key) = Key::new(rel)
                    {
                        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                        out.push(ObjectMeta { key, size });
                    }
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::new(ErrorKind::Other, e.to_string()))?
    }

    async fn delete(&self, key: &Key) -> StoreResult<()> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(key, e)),
        }
    }
}
