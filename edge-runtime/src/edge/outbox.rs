//! Telemetry batches on their way to the control plane, kept on disk until it accepts them.
//!
//! Every `--telemetry-interval` the edge takes the counts since the last batch
//! ([`EdgeModels::take_reports`]), writes them as one [`TelemetryBatch`] to
//! `{cache}/telemetry/pending/` (temporary file + rename), then posts every pending batch,
//! oldest first:
//! - 2xx: delivered (202 first time, 200 for a batch the control plane already had; it
//!   deduplicates by `batch_id`, so re-sending after a lost answer or a restart is safe): the
//!   file is deleted;
//! - 401, 408, 429, 5xx or no answer: kept; delivery stops and is retried after a backoff;
//! - any other 4xx: the control plane will never take it; moved to `telemetry/rejected/` and
//!   logged.
//!
//! Pending batches survive restarts and are delivered when the control plane comes back. At
//! most `max_pending` are kept; past that the oldest are dropped (and counted).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{fs, io};

use model_wasm::telemetry::TelemetryBatch;
use tokio::sync::watch;

use super::cache::write_atomic;
use super::client::{ClientError, ControlPlane};
use super::metrics::EdgeMetrics;
use super::models::EdgeModels;
use super::sync::backoff;

/// The pending and rejected folders.
#[derive(Debug, Clone)]
pub struct Outbox {
    pending: PathBuf,
    rejected: PathBuf,
    max_pending: usize,
    metrics: Arc<EdgeMetrics>,
}

/// Why delivery stopped before the last pending batch.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the control plane answered {status}, will retry: {body}")]
    Retry { status: u16, body: String },
    #[error("cannot read the pending batches: {0}")]
    Io(#[from] io::Error),
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A batch id unique per sender across restarts: `{node}-{unix millis}-{sequence}-{random}`.
pub fn new_batch_id(node: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!(
        "{node}-{millis:013}-{:06}-{:08x}",
        SEQUENCE.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    )
}

impl Outbox {
    /// Opens (creating) `{dir}/pending` and `{dir}/rejected`.
    pub fn open(dir: &Path, max_pending: usize, metrics: Arc<EdgeMetrics>) -> io::Result<Outbox> {
        let outbox = Outbox {
            pending: dir.join("pending"),
            rejected: dir.join("rejected"),
            max_pending: max_pending.max(1),
            metrics,
        };
        fs::create_dir_all(&outbox.pending)?;
        fs::create_dir_all(&outbox.rejected)?;
        outbox.update_gauge();
        Ok(outbox)
    }

    /// Stores a batch for delivery. The file name sorts by time of writing.
    pub fn write(&self, batch: &TelemetryBatch) -> io::Result<PathBuf> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let path = self.pending.join(format!(
            "{millis:013}-{:06}-{:08x}.json",
            SEQUENCE.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        ));
        let json = serde_json::to_vec(batch).map_err(io::Error::other)?;
        write_atomic(&path, &json)?;
        let pending = self.pending()?;
        if pending.len() > self.max_pending {
            for old in &pending[..pending.len() - self.max_pending] {
                tracing::warn!(batch = %old.display(), "too many pending telemetry batches; dropping the oldest");
                fs::remove_file(old)?;
                self.metrics.telemetry_dropped.inc();
            }
        }
        self.update_gauge();
        Ok(path)
    }

    /// The pending batch files, oldest first.
    pub fn pending(&self) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = fs::read_dir(&self.pending)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    fn update_gauge(&self) {
        let count = self.pending().map_or(0, |p| p.len());
        self.metrics
            .telemetry_pending
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Posts every pending batch, oldest first (blocking). Returns how many were delivered, or
    /// why delivery stopped.
    pub fn deliver(&self, client: &ControlPlane) -> Result<usize, DeliveryError> {
        let mut delivered = 0;
        let result = (|| {
            for path in self.pending()? {
                let bytes = match fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                if serde_json::from_slice::<TelemetryBatch>(&bytes).is_err() {
                    self.reject(&path, "the file is not a telemetry batch");
                    continue;
                }
                let (status, body) = client.post_telemetry(&bytes)?;
                match status {
                    200..=299 => {
                        fs::remove_file(&path)?;
                        self.metrics.telemetry_delivered.inc();
                        delivered += 1;
                    }
                    401 | 408 | 429 | 500.. => return Err(DeliveryError::Retry { status, body }),
                    _ => {
                        self.reject(&path, &format!("the control plane answered {status}: {body}"));
                    }
                }
            }
            Ok(delivered)
        })();
        self.update_gauge();
        result
    }

    fn reject(&self, path: &Path, reason: &str) {
        let target = self.rejected.join(path.file_name().unwrap_or_default());
        tracing::error!(batch = %path.display(), moved_to = %target.display(), reason, "telemetry batch refused for good");
        if let Err(error) = fs::rename(path, &target) {
            tracing::error!(batch = %path.display(), %error, "cannot move the refused batch; deleting it");
            let _ = fs::remove_file(path);
        }
        self.metrics.telemetry_rejected.inc();
    }
}

/// Takes the counts since the last batch and writes them as a pending batch (nothing when no
/// request came in).
pub fn write_batch(models: &EdgeModels, outbox: &Outbox, node: &str) {
    let reports = models.take_reports();
    if reports.is_empty() {
        return;
    }
    let batch = TelemetryBatch {
        batch_id: new_batch_id(node),
        node: node.to_owned(),
        reports,
    };
    if let Err(error) = batch.validate() {
        tracing::error!(%error, "built an invalid telemetry batch; dropped");
        return;
    }
    if let Err(error) = outbox.write(&batch) {
        tracing::error!(%error, "cannot write the telemetry batch; keeping the counts for the next one");
        models.restore_reports(batch.reports);
    }
}

/// Every `interval`, writes a batch and delivers what is pending; after a failed delivery,
/// retries with backoff (capped at `max_backoff`). On `stop`, writes a last batch to disk.
pub async fn run(
    models: Arc<EdgeModels>,
    outbox: Outbox,
    client: ControlPlane,
    node: String,
    interval: Duration,
    max_backoff: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let interval = interval.max(Duration::from_millis(100));
    let mut next_batch = Instant::now() + interval;
    // Batches left by an earlier run go out at once.
    let mut next_delivery = Some(Instant::now());
    let mut failures: u32 = 0;
    loop {
        let wake = next_delivery.map_or(next_batch, |d| d.min(next_batch));
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => {}
            _ = stop.changed() => {
                write_batch(&models, &outbox, &node);
                return;
            }
        }
        let now = Instant::now();
        if now >= next_batch {
            write_batch(&models, &outbox, &node);
            next_batch = now + interval;
            if failures == 0 {
                next_delivery = Some(now);
            }
        }
        if next_delivery.is_some_and(|d| now >= d) {
            let (outbox2, client2) = (outbox.clone(), client.clone());
            let result = tokio::task::spawn_blocking(move || outbox2.deliver(&client2))
                .await
                .unwrap_or_else(|e| Err(DeliveryError::Io(io::Error::other(e.to_string()))));
            match result {
                Ok(delivered) => {
                    if delivered > 0 {
                        tracing::info!(delivered, "telemetry delivered");
                    }
                    failures = 0;
                    next_delivery = None;
                }
                Err(error) => {
                    failures += 1;
                    let pause = backoff(failures, max_backoff);
                    tracing::warn!(%error, failures, retry_in = ?pause, "telemetry not delivered; kept on disk");
                    next_delivery = Some(Instant::now() + pause);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The telemetry outbox against the stand-in: what is kept, delivered, or set aside.

    use std::sync::Arc;

    use model_wasm::telemetry::TelemetryBatch;

    use super::{DeliveryError, Outbox, new_batch_id};
    use crate::edge::client::ControlPlane;
    use crate::edge::metrics::EdgeMetrics;
    use crate::edge::testing::standin::{StandIn, TOKEN};
    use crate::edge::testing::support::{public_key, signing_key};

    fn batch(id: &str) -> TelemetryBatch {
        TelemetryBatch {
            batch_id: id.to_owned(),
            node: "edge-o".into(),
            reports: vec![],
        }
    }

    #[test]
    fn batches_are_kept_until_accepted_and_set_aside_when_refused_for_good() {
        let stand_in = StandIn::start(public_key(&signing_key()));
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(EdgeMetrics::new("edge-o"));
        let outbox = Outbox::open(dir.path(), 100, metrics.clone()).unwrap();
        let first = new_batch_id("edge-o");
        outbox.write(&batch(&first)).unwrap();
        outbox.write(&batch("not/a valid id")).unwrap();
        let last = new_batch_id("edge-o");
        outbox.write(&batch(&last)).unwrap();
        assert_eq!(metrics.telemetry_pending.get(), 3);

        // A wrong token (401) keeps everything for later.
        let wrong = ControlPlane::new(&stand_in.url(), Some("wrong".into()));
        let error = outbox.deliver(&wrong).unwrap_err();
        assert!(matches!(error, DeliveryError::Retry { status: 401, .. }), "{error}");
        assert_eq!(outbox.pending().unwrap().len(), 3);

        // The right token: the good ones are delivered in order, the invalid one set aside.
        let client = ControlPlane::new(&stand_in.url(), Some(TOKEN.into()));
        assert_eq!(outbox.deliver(&client).unwrap(), 2);
        assert!(outbox.pending().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path().join("rejected")).unwrap().count(), 1);
        assert_eq!(stand_in.registry().posted_ids, [first, last]);
        assert_eq!(
            (metrics.telemetry_delivered.get(), metrics.telemetry_rejected.get()),
            (2, 1)
        );
        assert_eq!(metrics.telemetry_pending.get(), 0);
    }

    #[test]
    fn past_the_cap_the_oldest_batches_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(EdgeMetrics::new("edge-o"));
        let outbox = Outbox::open(dir.path(), 2, metrics.clone()).unwrap();
        for _ in 0..3 {
            outbox.write(&batch(&new_batch_id("edge-o"))).unwrap();
        }
        assert_eq!(outbox.pending().unwrap().len(), 2);
        assert_eq!(metrics.telemetry_dropped.get(), 1);
    }
}
