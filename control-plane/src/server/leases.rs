//! The server's watch over leases: at start and then every half lease, the runs and retrains
//! whose lease expired (their process died) are marked `abandoned`, with the reason.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::{AppState, hooks};
use crate::pipeline::LeaseFound;

/// Scans now, then every half lease (at least every half second, at most every minute), until
/// `stopped` turns true.
pub(super) async fn watch(state: AppState, mut stopped: watch::Receiver<bool>) {
    let every = (state.inner.runs.holder.ttl / 2).clamp(Duration::from_millis(500), Duration::from_secs(60));
    loop {
        scan(&state).await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = stopped.changed() => if changed.is_err() || *stopped.borrow() { return },
        }
    }
}

/// One scan of the runs' and the retrains' leases; what it finds is logged.
pub(super) async fn scan(state: &AppState) {
    let now = Utc::now();
    let runs = crate::pipeline::scan_run_leases(state.store(), now).await;
    let retrains = hooks::scan_leases(state, now).await;
    for (what, found) in [("runs", runs), ("retrains", retrains)] {
        match found {
            Ok(found) => {
                for (_, found) in found {
                    if let LeaseFound::Abandoned { record, reason } = found {
                        tracing::warn!(%record, %reason, "marked abandoned");
                    }
                }
            }
            Err(e) => tracing::warn!(what, error = format!("{e:#}"), "cannot scan the leases"),
        }
    }
}
