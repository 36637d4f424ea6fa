//! Where data comes from: a local path, an http(s) URL or an s3:// URL. Remote sources are
//! streamed to a temporary file first, so the reader always works on a local file with bounded memory.

use std::path::{Path, PathBuf};

use super::{AllowedSources, DataError};
use crate::store::{Key, ObjectStore, S3Config, S3Store};

/// Most redirects an HTTP source may take.
const MAX_REDIRECTS: u32 = 10;

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
    fetch(source, None).await
}

/// Like [`fetch_source`], for a run that may read only `allowed`: the source is checked first
/// (relative paths from the working directory), and an HTTP redirect is followed only to an
/// allowed URL.
pub(crate) async fn fetch_source_within(source: &str, allowed: &AllowedSources) -> Result<FetchedSource, DataError> {
    allowed.check(source, Path::new(""))?;
    fetch(source, Some(allowed.clone())).await
}

async fn fetch(source: &str, allowed: Option<AllowedSources>) -> Result<FetchedSource, DataError> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let tmp = tempfile::tempdir().map_err(|e| DataError::io(Path::new("temporary directory"), e))?;
        let path = tmp.path().join("download");
        let (url, target) = (source.to_owned(), path.clone());
        tokio::task::spawn_blocking(move || download(&url, &target, allowed.as_ref()))
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

/// Downloads `url` to `target`. With `allowed`, redirects are followed here, each checked
/// before it is requested; without, by the client.
fn download(url: &str, target: &Path, allowed: Option<&AllowedSources>) -> Result<(), DataError> {
    let fetch_err = |message: String| DataError::Fetch {
        url: url.to_owned(),
        message,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .timeout_recv_body(Some(std::time::Duration::from_secs(300)))
        .http_status_as_error(false)
        .max_redirects(if allowed.is_some() { 0 } else { MAX_REDIRECTS })
        .build()
        .into();
    let mut current = url.to_owned();
    let mut redirects = 0;
    let response = loop {
        let response = agent.get(&current).call().map_err(|e| fetch_err(e.to_string()))?;
        let Some(allowed) = allowed.filter(|_| response.status().is_redirection()) else {
            break response;
        };
        redirects += 1;
        if redirects > MAX_REDIRECTS {
            return Err(fetch_err(format!("more than {MAX_REDIRECTS} redirects")));
        }
        let location = response
            .headers()
            .get(ureq::http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| fetch_err(format!("HTTP {} without a Location", response.status())))?;
        let next = join_url(&current, location);
        allowed.check(&next, Path::new("")).map_err(|mut e| {
            e.why = format!("{current} redirects to it, and {}", e.why);
            DataError::NotAllowed(e)
        })?;
        current = next;
    };
    let status = response.status();
    if !status.is_success() {
        return Err(fetch_err(format!("the server answered HTTP {status}")));
    }
    let mut reader = response.into_body().into_with_config().reader();
    let mut file = std::fs::File::create(target).map_err(|e| DataError::io(target, e))?;
    std::io::copy(&mut reader, &mut file).map_err(|e| fetch_err(format!("download interrupted: {e}")))?;
    Ok(())
}

/// Where a `Location` header leads from `base`: an absolute URL, `//host/...`, `/path`, or a
/// path relative to the base's folder.
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(host_and_path) = location.strip_prefix("//") {
        return format!("{scheme}://{host_and_path}");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let folder = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let folder = if folder.is_empty() { "/" } else { folder };
    format!("{scheme}://{authority}{folder}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_resolve_against_the_url_they_came_from() {
        let base = "https://a.example/data/sets/wine.csv?x=1";
        assert_eq!(join_url(base, "https://b.example/x"), "https://b.example/x");
        assert_eq!(join_url(base, "//c.example/y"), "https://c.example/y");
        assert_eq!(join_url(base, "/top.csv"), "https://a.example/top.csv");
        assert_eq!(join_url(base, "red.csv"), "https://a.example/data/sets/red.csv");
        assert_eq!(join_url("http://a.example", "z.csv"), "http://a.example/z.csv");
    }
}
