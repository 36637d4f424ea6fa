//! The `wasmline-edge` server's parts, private to the binary (the library is the host and the
//! KServe routes; this is what an edge node adds around them):
//!
//! - [`models`]: [`models::EdgeModels`], the edge's served and previous version of each model,
//!   swapped atomically, with their telemetry (counts, latency, drift windows); the
//!   [`edge_runtime::kserve::ModelSet`] the edge's `/v2` routes run over.
//! - [`sync`]: following an alias on the control plane, with key pinning and backoff;
//!   [`client`]: the control plane's HTTP calls, as the edge makes them.
//! - [`cache`]: the on-disk cache of the last good versions, the pinned key and telemetry.
//! - [`outbox`]: telemetry batches buffered on disk until the control plane accepts them.
//! - [`metrics`]: the edge's Prometheus registry; [`server`]: the edge's router (`/v2`,
//!   `GET /metrics`, a JSON 404).

pub mod cache;
pub mod client;
pub mod metrics;
pub mod models;
pub mod outbox;
pub mod server;
pub mod sync;
#[cfg(test)]
pub mod testing;
