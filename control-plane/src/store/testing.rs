//! A local store with faults on demand, for tests: it counts alias reads, fails the n-th write
//! from now (as a server going away mid-publish), and can lose the answers of conditional
//! creates that did write (as a proxy dropping a response).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ETag, ErrorKind, Key, LocalStore, ObjectMeta, ObjectStore, StoreError, StoreResult};

#[derive(Debug)]
pub(crate) struct FaultyStore {
    inner: LocalStore,
    /// Reads of `.../aliases/...` keys.
    pub alias_reads: AtomicUsize,
    /// Writes left before one fails (None: none fails); every write after the failed one fails too.
    writes_left: Mutex<Option<usize>>,
    /// Conditional creates write, then answer `Unavailable`.
    pub lose_create_answers: AtomicBool,
}

impl FaultyStore {
    pub(crate) fn new(inner: LocalStore) -> FaultyStore {
        FaultyStore {
            inner,
            alias_reads: AtomicUsize::new(0),
            writes_left: Mutex::new(None),
            lose_create_answers: AtomicBool::new(false),
        }
    }

    /// The `n`-th write from now (0: the next) and every one after it fail.
    pub(crate) fn fail_writes_after(&self, n: Option<usize>) {
        *self.writes_left.lock().unwrap() = n;
    }

    fn count_read(&self, key: &Key) {
        if key.as_str().contains("/aliases/") {
            self.alias_reads.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn write(&self, key: &Key) -> StoreResult<()> {
        let mut left = self.writes_left.lock().unwrap();
        match left.as_mut() {
            Some(0) => Err(StoreError::new(
                ErrorKind::Unavailable,
                format!("writing '{key}': the server went away (injected)"),
            )),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put(&self, key: &Key, body: Bytes) -> StoreResult<()> {
        self.write(key)?;
        self.inner.put(key, body).await
    }
    async fn put_file(&self, key: &Key, path: &Path) -> StoreResult<()> {
        self.write(key)?;
        self.inner.put_file(key, path).await
    }
    async fn create_new(&self, key: &Key, body: Bytes) -> StoreResult<()> {
        self.write(key)?;
        self.inner.create_new(key, body).await?;
        if self.lose_create_answers.load(Ordering::Relaxed) {
            return Err(StoreError::new(
                ErrorKind::Unavailable,
                format!("creating '{key}': the answer was lost (injected)"),
            ));
        }
        Ok(())
    }
    async fn get(&self, key: &Key) -> StoreResult<Bytes> {
        self.count_read(key);
        self.inner.get(key).await
    }
    async fn get_tagged(&self, key: &Key) -> StoreResult<(Bytes, ETag)> {
        self.count_read(key);
        self.inner.get_tagged(key).await
    }
    async fn put_if_match(&self, key: &Key, body: Bytes, expected: &ETag) -> StoreResult<()> {
        self.write(key)?;
        self.inner.put_if_match(key, body, expected).await
    }
    async fn get_to_file(&self, key: &Key, path: &Path) -> StoreResult<u64> {
        self.inner.get_to_file(key, path).await
    }
    async fn head(&self, key: &Key) -> StoreResult<ObjectMeta> {
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &Key) -> StoreResult<()> {
        self.inner.delete(key).await
    }
}
