//! The edge's cache directory: the last good versions of each model, the pinned signing key,
//! and telemetry waiting for delivery. Every file is written to a temporary name in the same
//! folder, synced, then renamed, so a crash leaves either the old file or the new one, never half
//! of one.
//!
//! ```text
//! {cache}/trusted-key.json                       the control plane's key, pinned on first use
//! {cache}/models/{name}/{version}/model.wasm     written first
//! {cache}/models/{name}/{version}/manifest.json  written second
//! {cache}/models/{name}/served.json              {"current": 3, "previous": 2}, written last
//! {cache}/telemetry/pending/{millis}-{rand}.json batches not yet accepted (see outbox)
//! {cache}/telemetry/rejected/...                 batches the control plane refused for good
//! ```
//!
//! Only the versions `served.json` names are kept; others are removed when it changes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use edge_runtime::{MANIFEST_FILE, MODULE_FILE};

/// Which versions of a model the edge served last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub current: u64,
    #[serde(default)]
    pub previous: Option<u64>,
}

/// A cache directory (see the module docs for its layout).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (creating) the cache at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Cache> {
        let root = root.into();
        fs::create_dir_all(root.join("models"))?;
        Ok(Cache { root })
    }

    /// Where the pinned signing key lives.
    pub fn trusted_key_path(&self) -> PathBuf {
        self.root.join("trusted-key.json")
    }

    /// The telemetry folder.
    pub fn telemetry_dir(&self) -> PathBuf {
        self.root.join("telemetry")
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join("models").join(name)
    }

    fn version_dir(&self, name: &str, version: u64) -> PathBuf {
        self.model_dir(name).join(version.to_string())
    }

    /// Stores one version's files (module first, manifest second).
    pub fn store_version(&self, name: &str, version: u64, manifest: &[u8], wasm: &[u8]) -> io::Result<()> {
        let dir = self.version_dir(name, version);
        fs::create_dir_all(&dir)?;
        write_atomic(&dir.join(MODULE_FILE), wasm)?;
        write_atomic(&dir.join(MANIFEST_FILE), manifest)
    }

    /// The stored files of one version: `(manifest, module)`.
    pub fn read_version(&self, name: &str, version: u64) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let dir = self.version_dir(name, version);
        Ok((fs::read(dir.join(MANIFEST_FILE))?, fs::read(dir.join(MODULE_FILE))?))
    }

    /// Records which versions are served, then removes the other stored versions.
    pub fn set_served(&self, name: &str, served: Served) -> io::Result<()> {
        let dir = self.model_dir(name);
        fs::create_dir_all(&dir)?;
        let json = serde_json::to_vec_pretty(&served).map_err(io::Error::other)?;
        write_atomic(&dir.join("served.json"), &json)?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let keep = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
                .is_none_or(|v| v == served.current || Some(v) == served.previous);
            if !keep && entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    /// What `served.json` says, if anything.
    pub fn served(&self, name: &str) -> Option<Served> {
        let bytes = fs::read(self.model_dir(name).join("served.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // Makes the rename durable; not every platform can open a folder, which is fine.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert_eq!(cache.served("wine"), None);
        for v in 1..=3 {
            cache.store_version("wine", v, b"{}", &[v as u8]).unwrap();
        }
        cache
            .set_served(
                "wine",
                Served {
                    current: 3,
                    previous: Some(2),
                },
            )
            .unwrap();
        assert_eq!(cache.read_version("wine", 3).unwrap(), (b"{}".to_vec(), vec![3]));
        assert!(cache.read_version("wine", 2).is_ok());
        assert!(cache.read_version("wine", 1).is_err(), "pruned");
        assert_eq!(
            cache.served("wine"),
            Some(Served {
                current: 3,
                previous: Some(2)
            })
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("models/wine/3"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");
    }
}
