//! The telemetry outbox against the stand-in: what is kept, delivered, or set aside.

use std::sync::Arc;

use edge_runtime::client::ControlPlane;
use edge_runtime::metrics::EdgeMetrics;
use edge_runtime::outbox::{DeliveryError, Outbox, new_batch_id};
use model_wasm::telemetry::TelemetryBatch;

use crate::standin::{StandIn, TOKEN};
use crate::support::{public_key, signing_key};

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
