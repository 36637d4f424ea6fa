//! Which sources a run started over HTTP may read: `wasmline serve --allow-source PREFIX`.
//!
//! A local path is allowed when, resolved (symlinks, `.` and `..` followed for every part that
//! exists), it lies under a resolved allowed folder or is an allowed file; so neither `..` nor a
//! symlink leads out. A URL is allowed when its scheme and host (and port) are an allowed
//! prefix's and its path is under the prefix's path, segment by segment. URLs with what servers
//! and parsers read differently (credentials, backslashes, `.`/`..` segments, encoded `.`, `/`
//! or `\`) are refused outright. The check reads no file: it looks at names only.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A source a run may not read, with what it may.
#[derive(Debug, Clone, thiserror::Error)]
#[error("source '{requested}' is not allowed: {why}; a run started over HTTP may read only {allowed}")]
pub struct SourceRefused {
    /// The source as the config gives it.
    pub requested: String,
    pub why: String,
    /// The allowed prefixes, described.
    pub allowed: String,
}

/// Allowed places: resolved folders or files, and URL prefixes.
#[derive(Debug, Clone, Default)]
pub struct AllowedSources {
    prefixes: Vec<(Prefix, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prefix {
    Path(PathBuf),
    Url(UrlParts),
}

/// The parts of a URL compared: lower-case scheme and host (with a port other than the
/// scheme's default), and the path (at least `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlParts {
    scheme: String,
    host: String,
    path: String,
}

impl AllowedSources {
    pub fn new() -> AllowedSources {
        AllowedSources::default()
    }

    /// Adds a prefix: a URL (`http(s)://host/path`, `s3://bucket/prefix`) or a path, relative
    /// paths taken from `base`. `label` says where it comes from in messages (e.g. `--allow-source`).
    pub fn add(&mut self, prefix: &str, base: &Path, label: &str) -> Result<(), String> {
        let parsed = if is_url(prefix) {
            Prefix::Url(parse_url(prefix).map_err(|e| format!("allowed source '{prefix}': {e}"))?)
        } else {
            let resolved = resolve(&base.join(prefix))
                .ok_or_else(|| format!("allowed source '{prefix}': a '..' after a missing folder"))?;
            Prefix::Path(resolved)
        };
        if !self.prefixes.iter().any(|(p, _)| *p == parsed) {
            self.prefixes.push((parsed, format!("{prefix} ({label})")));
        }
        Ok(())
    }

    /// Whether `source` (a path, relative ones taken from `base`, or a URL) may be read.
    pub fn check(&self, source: &str, base: &Path) -> Result<(), SourceRefused> {
        let refuse = |why: String| SourceRefused {
            requested: source.to_owned(),
            why,
            allowed: self.to_string(),
        };
        if is_url(source) {
            let url = parse_url(source).map_err(refuse)?;
            let inside = self.prefixes.iter().any(|(p, _)| match p {
                Prefix::Url(prefix) => url_under(&url, prefix),
                Prefix::Path(_) => false,
            });
            return if inside {
                Ok(())
            } else {
                Err(refuse("no allowed prefix holds it".into()))
            };
        }
        if source.contains("://") {
            return Err(refuse("only paths, http(s):// and s3:// URLs are read".into()));
        }
        let resolved =
            resolve(&base.join(source)).ok_or_else(|| refuse("a '..' follows a folder that does not exist".into()))?;
        let inside = self.prefixes.iter().any(|(p, _)| match p {
            Prefix::Path(prefix) => resolved.starts_with(prefix),
            Prefix::Url(_) => false,
        });
        if inside {
            Ok(())
        } else {
            Err(refuse(format!(
                "it resolves to {}, under no allowed folder",
                resolved.display()
            )))
        }
    }
}

impl fmt::Display for AllowedSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefixes.is_empty() {
            return f.write_str("nothing (no source is allowed)");
        }
        let names: Vec<&str> = self.prefixes.iter().map(|(_, label)| label.as_str()).collect();
        f.write_str(&names.join(", "))
    }
}

fn is_url(s: &str) -> bool {
    ["http://", "https://", "s3://"]
        .iter()
        .any(|scheme| s.get(..scheme.len()).is_some_and(|p| p.eq_ignore_ascii_case(scheme)))
}

/// Splits a URL into the compared parts, refusing what parsers could read two ways.
fn parse_url(s: &str) -> Result<UrlParts, String> {
    let (scheme, rest) = s.split_once("://").ok_or("not a URL")?;
    let scheme = scheme.to_ascii_lowercase();
    if s.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return Err("a URL with spaces, control characters or backslashes".into());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    if authority.contains('@') {
        return Err("a URL with credentials".into());
    }
    if authority.is_empty() {
        return Err("a URL without a host".into());
    }
    let mut host = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    if let Some(port) = default_port
        && let Some(bare) = host.strip_suffix(port)
    {
        host = bare.to_owned();
    }
    let path = after.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e)) {
        return Err("an encoded '.', '/' or '\\' in the path".into());
    }
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return Err("a '.' or '..' segment in the path".into());
    }
    Ok(UrlParts {
        scheme,
        host,
        path: if path.is_empty() { "/".into() } else { path.to_owned() },
    })
}

/// Whether `url` is under `prefix`: same scheme and host, and the path is the prefix's, or
/// below it (`/data` holds `/data/x` but not `/database`).
fn url_under(url: &UrlParts, prefix: &UrlParts) -> bool {
    url.scheme == prefix.scheme
        && url.host == prefix.host
        && (url.path == prefix.path
            || prefix.path.ends_with('/') && url.path.starts_with(&prefix.path)
            || url
                .path
                .strip_prefix(&prefix.path)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// `path` made absolute with every part that exists resolved by the file system (symlinks,
/// `.`, `..`), and the parts after the last one that exists appended as written; `None` when
/// one of those is `..` (no file system would resolve it, and a later folder could change it).
fn resolve(path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut missing: Vec<&std::ffi::OsStr> = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            let mut out = resolved;
            for part in missing.iter().rev() {
                out.push(part);
            }
            return Some(out);
        }
        match existing.components().next_back() {
            Some(Component::Normal(name)) => missing.push(name),
            Some(Component::CurDir) => {}
            Some(Component::ParentDir) => return None,
            _ => return None, // the root does not resolve: nothing will
        }
        existing = existing.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(prefixes: &[&str], base: &Path) -> AllowedSources {
        let mut allowed = AllowedSources::new();
        for p in prefixes {
            allowed.add(p, base, "test").unwrap();
        }
        allowed
    }

    #[test]
    fn paths_are_compared_resolved_so_dot_dot_and_symlinks_cannot_leave() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("a.csv"), "x\n1\n").unwrap();
        std::fs::write(dir.path().join("secret.csv"), "x\n1\n").unwrap();
        std::fs::create_dir_all(dir.path().join("database")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.csv"), data.join("link.csv")).unwrap();
        std::os::unix::fs::symlink(dir.path(), data.join("up")).unwrap();
        let a = allowed(&["data"], dir.path());

        for ok in [
            "data/a.csv",
            "data/sub/../a.csv",
            "data/./a.csv",
            "data/new.csv",
            "data/sub/new/deeper.csv",
        ] {
            a.check(ok, dir.path()).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let absolute = data.join("a.csv");
        a.check(absolute.to_str().unwrap(), Path::new("/elsewhere")).unwrap();
        for bad in [
            "secret.csv",
            "data/../secret.csv",
            "data/link.csv",
            "data/up/secret.csv",
            "database/x.csv",
            "data/missing/../../secret.csv",
            "/etc/passwd",
        ] {
            let e = a.check(bad, dir.path()).unwrap_err();
            assert_eq!(e.requested, bad);
            assert!(e.to_string().contains("data (test)"), "{e}");
        }
        let e = a.check("ftp://host/x.csv", dir.path()).unwrap_err();
        assert!(e.why.contains("http(s)://"), "{e}");
        // A file as the prefix allows that file only.
        let one = allowed(&["data/a.csv"], dir.path());
        one.check("data/a.csv", dir.path()).unwrap();
        one.check("data/sub/../a.csv", dir.path()).unwrap();
        one.check("data/b.csv", dir.path()).unwrap_err();
        assert!(AllowedSources::new().check("data/a.csv", dir.path()).is_err());
        assert!(AllowedSources::new().to_string().contains("nothing"));
    }

    #[test]
    fn urls_match_on_scheme_host_and_path_segments() {
        let base = Path::new("/");
        let a = allowed(
            &[
                "https://data.example.com/sets/",
                "http://Mirror.example.com:8080/wine",
                "s3://bucket/raw",
            ],
            base,
        );
        for ok in [
            "https://data.example.com/sets/wine.csv",
            "HTTPS://DATA.example.com:443/sets/a/b.csv?x=1",
            "http://mirror.example.com:8080/wine",
            "http://mirror.example.com:8080/wine/red.csv",
            "s3://bucket/raw/wine.csv",
        ] {
            a.check(ok, base).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "https://data.example.com/other.csv",
            "http://data.example.com/sets/wine.csv",
            "https://data.example.com.evil.net/sets/x.csv",
            "https://data.example.com@evil.net/sets/x.csv",
            "https://evil.net\\@data.example.com/sets/x.csv",
            "https://data.example.com/sets/../private.csv",
            "https://data.example.com/sets/%2e%2e/private.csv",
            "https://data.example.com/sets/..%2Fprivate.csv",
            "http://mirror.example.com:8080/wines.csv",
            "http://mirror.example.com/wine/red.csv",
            "s3://bucket/rawer/x.csv",
            "s3://other/raw/x.csv",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let e = a.check(bad, base).unwrap_err();
            assert!(e.to_string().contains("https://data.example.com/sets/ (test)"), "{e}");
        }
        let mut bad = AllowedSources::new();
        assert!(bad.add("https://user:pw@host/", base, "x").is_err());
        assert!(bad.add("https:///path", base, "x").is_err());
    }
}
