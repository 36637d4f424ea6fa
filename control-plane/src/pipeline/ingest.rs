//! ingest: fetch the source, check every row against the declared schema, store the raw bytes
//! content-addressed (DVC layout).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::{Pipeline, Summary};
use crate::config::PipelineConfig;
use crate::data::{ColumnSpec, Format};
use crate::data::{FetchedSource, ReadOptions, ScanStats, check, fetch_source, fetch_source_within};
use crate::dataset::dvc_key;
use crate::digest::sha256_hex;
use crate::progress::Progress;

/// What ingest produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct IngestOutput {
    /// The source as configured (resolved path or URL).
    pub source: String,
    pub format: Format,
    /// MD5 of the raw bytes (the DVC content address).
    pub md5: String,
    pub size: u64,
    pub rows: u64,
    /// Where the raw bytes are stored.
    pub raw_key: String,
    /// The schema the rows were checked against.
    pub columns: Vec<ColumnSpec>,
}

impl Summary for IngestOutput {
    fn summary(&self) -> String {
        format!("{} rows, {} bytes, md5 {}", self.rows, self.size, self.md5)
    }
}

/// Read options for the raw source, from the dataset config.
pub(crate) fn read_options(config: &PipelineConfig) -> ReadOptions<'_> {
    let d = &config.dataset;
    ReadOptions {
        format: config.format(),
        delimiter: d.delimiter as u8,
        missing_values: &d.missing_values,
        ignore_extra_columns: d.ignore_extra_columns,
        columns: &d.columns,
        max_line_bytes: d.max_line_bytes.unwrap_or(crate::data::DEFAULT_MAX_LINE_BYTES),
    }
}

/// The part of the config that decides how the raw data is read.
pub(crate) fn reading_config(p: &Pipeline<'_>) -> String {
    let d = &p.config.dataset;
    serde_json::json!({
        "format": p.config.format(),
        "delimiter": d.delimiter,
        "missing_values": d.missing_values,
        "ignore_extra_columns": d.ignore_extra_columns,
        "columns": d.columns,
    })
    .to_string()
}

pub(crate) fn md5_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
    }
    Ok(hex::encode(md5.finalize()))
}

/// One pass over the source: every row is checked and the MD5 computed at the same time (on two
/// threads). The digest needs the MD5, so the check runs even when the step turns out to be a
/// no-op; storing the raw bytes is what is skipped.
pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, Scanned)> {
    let source = match &p.options.sources {
        // A server's run: checked again here, just before the read (the trigger checked it too).
        Some(allowed) => fetch_source_within(&p.config.resolved_source(), allowed).await?,
        None => fetch_source(&p.config.resolved_source()).await?,
    };
    let before = fingerprint(&source.path)?;
    let (config, path, name) = (p.config.clone(), source.path.clone(), source.name.clone());
    let stats = tokio::task::spawn_blocking(move || {
        let progress = Progress::bytes("ingest");
        let stats = check(&path, &name, &read_options(&config), &progress);
        progress.finish();
        stats
    })
    .await??;
    let digest = sha256_hex(&["ingest", &stats.md5, &reading_config(p)]);
    Ok((digest, Scanned { source, stats, before }))
}

/// What prepare read: the source, its statistics, and its size and modification time then.
pub(super) struct Scanned {
    source: FetchedSource,
    stats: ScanStats,
    before: (u64, std::time::SystemTime),
}

/// Size and modification time: how DVC too tells a file changed without reading it.
fn fingerprint(path: &Path) -> anyhow::Result<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((meta.len(), meta.modified()?))
}

pub(super) async fn run(p: &Pipeline<'_>, scanned: Scanned) -> anyhow::Result<IngestOutput> {
    let Scanned { source, stats, before } = scanned;
    let key = dvc_key(&stats.md5);
    let stored = match p.store.head(&key).await {
        Ok(meta) => meta.size == stats.bytes,
        Err(e) if e.kind() == crate::store::ErrorKind::NotFound => false,
        Err(e) => return Err(e).context("cannot check the store"),
    };
    if !stored {
        p.store
            .put_file(&key, &source.path)
            .await
            .with_context(|| format!("cannot store the raw data in {}", p.store.describe()))?;
        // The object's name is the MD5 of what was scanned: if the file changed since, what was
        // copied may not match it, so it must go.
        if fingerprint(&source.path)? != before {
            p.store.delete(&key).await?;
            bail!(
                "{} changed while it was being ingested: run the pipeline again",
                source.name
            );
        }
    }
    Ok(IngestOutput {
        source: source.name.clone(),
        format: p.config.format(),
        md5: stats.md5,
        size: stats.bytes,
        rows: stats.rows,
        raw_key: key.to_string(),
        columns: p.config.dataset.columns.clone(),
    })
}
