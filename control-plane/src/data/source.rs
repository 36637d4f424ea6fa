//! Where data comes from: a local path, an http(s) URL or an s3:// URL. Remote sources are
//! streamed to a temporary file first, so the reader always works on a local file with bounded memory.

use std::path::{Path, PathBuf};

use super::DataError;
use crate::store::{Key, ObjectStore, S3Config, S3Store};

/// A source ready to read.
#[derive(Debug)]
pub(crate) struct FetchedSource {
    /// The local file to read.
    pub path: PathBuf,
    /// How messages name the source (the path or the URL).
    pub name: String,
    _tmp: Option<tempfile::TempDir>,
}

/// Makes `source` available as a local file.
pub(crate) async fn fetch_source(source: &str) -> Result<FetchedSource, DataError> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let tmp = tempfile::tempdir().map_err(|e| DataError::io(Path::new("temporary directory"), e))?;
        let path = tmp.path().join("download");
        let (url, target) = (source.to_owned(), path.clone());
        tokio::task::spawn_blocking(move || download(&url, &target))
            .await
            .map_err(|e| DataError::Fetch {
                url: source.to_owned(),
                message: e.to_string(),
            })??;
        Ok(FetchedSource {
            path,
            name: source.to_owned(),
            _tmp: Some(tmp),
        })
    } else if let Some(rest) = source.strip_prefix("s3://") {
        let fetch_err = |message: String| DataError::Fetch {
            url: source.to_owned(),
            message,
        };
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| fetch_err("expected s3://bucket/key".to_owned()))?;
        let store = S3Store::connect(S3Config::from_env(bucket).map_err(|e| fetch_err(e.to_string()))?)
            .await
            .map_err(|e| fetch_err(e.to_string()))?;
        let key = Key::new(key).map_err(|e| fetch_err(e.to_string()))?;
        let tmp = tempfile::tempdir().map_err(|e| DataError::io(Path::new("temporary directory"), e))?;
        let path = tmp.path().join("download");
        store
            .get_to_file(&key, &path)
            .await
            .map_err(|e| fetch_err(e.to_string()))?;
        Ok(FetchedSource {
            path,
            name: source.to_owned(),
            _tmp: Some(tmp),
        })
    } else if source.contains("://") {
        Err(DataError::Fetch {
            url: source.to_owned(),
            message: "unsupported scheme: use a path, http(s):// or s3://".to_owned(),
        })
    } else {
        let path = PathBuf::from(source);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(FetchedSource {
                path,
                name: source.to_owned(),
                _tmp: None,
            }),
            Ok(_) => Err(DataError::file(source, "is not a file")),
            Err(e) => Err(DataError::io(&path, e)),
        }
    }
}

fn download(url: &str, target: &Path) -> Result<(), DataError> {
    let fetch_err = |message: String| DataError::Fetch {
        url: url.to_owned(),
        message,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .timeout_recv_body(Some(std::time::Duration::from_secs(300)))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| fetch_err(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fetch_err(format!("the server answered HTTP {status}")));
    }
    let mut reader = response.into_body().into_with_config().reader();
    let mut file = std::fs::File::create(target).map_err(|e| DataError::io(target, e))?;
    std::io::copy(&mut reader, &mut file).map_err(|e| fetch_err(format!("download interrupted: {e}")))?;
    Ok(())
}
