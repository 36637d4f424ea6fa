//! JSON records in the store: read (absent is `None`) and written, with the key in every error.

use anyhow::Context;
use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use super::{ErrorKind, Key, ObjectStore};

pub(crate) async fn get_json<T: DeserializeOwned>(store: &dyn ObjectStore, key: &Key) -> anyhow::Result<Option<T>> {
    match store.get(key).await {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("{key} in the store is not valid"))?,
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {key}")),
    }
}

pub(crate) async fn put_json<T: Serialize>(store: &dyn ObjectStore, key: &Key, value: &T) -> anyhow::Result<()> {
    let body = serde_json::to_vec_pretty(value).expect("records serialise");
    store
        .put(key, Bytes::from(body))
        .await
        .with_context(|| format!("cannot write {key} to {}", store.describe()))
}
