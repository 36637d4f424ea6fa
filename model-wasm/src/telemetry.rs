//! What a runtime that cannot be scraped (a browser) keeps about its predictions until it posts
//! them: call counts by outcome, a latency histogram, and a drift window per feature against the
//! manifest's reference profile.
//!
//! The report serialises to the JSON the control plane ingests (snake_case, like every Wasmline
//! document). The latency buckets are [`LATENCY_BUCKETS_SECONDS`], the bounds of the
//! `wasmline_inference_duration_seconds` histogram, so bucket counts add up across runtimes.
//!
//! ```
//! use model_wasm::manifest::ManifestView;
//! use model_wasm::telemetry::Telemetry;
//!
//! let manifest = ManifestView::from_json(br#"{
//!   "schema_version": 1, "name": "wine", "version": 1,
//!   "features": [{"name": "alcohol", "min": 8, "max": 15}],
//!   "output": {"target": "quality"},
//!   "reference_profile": {"rows": 100, "features": [
//!     {"kind": "numeric", "name": "alcohol", "edges": [10, 12], "proportions": [0.3, 0.4, 0.3]}]}
//! }"#).unwrap();
//! let mut telemetry = Telemetry::new(&manifest, "browser");
//! telemetry.record_ok(&[13.0, 14.0, 13.5], 0.000_2);
//! let report = telemetry.report();
//! assert_eq!((report.predictions.ok, report.predictions.rows), (1, 3));
//! assert_eq!(report.drift.features[0].counts, [0, 0, 3]);
//! assert!(report.drift.features[0].drifted, "all rows in the top bin");
//! ```

use alloc::{borrow::ToOwned, format, string::String, vec, vec::Vec};

use serde::{Deserialize, Serialize};

use crate::manifest::ManifestView;
use crate::{DriftWindow, FeatureReference, PSI_DRIFT_THRESHOLD};

/// Upper bounds (seconds) of the latency histogram's buckets; a last bucket takes the rest.
/// From 25 us (a small batch in a browser) to 2.5 s, with 0.5 s (the alert's p95) a bound.
pub const LATENCY_BUCKETS_SECONDS: [f64; 16] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Latencies counted into [`LATENCY_BUCKETS_SECONDS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// The buckets' upper bounds, in seconds.
    pub le: Vec<f64>,
    /// Observations per bucket (not cumulative): `counts[i]` took `le[i-1] < v <= le[i]`; one
    /// more entry than `le`, for the values above the last bound.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            le: LATENCY_BUCKETS_SECONDS.to_vec(),
            counts: vec![0; LATENCY_BUCKETS_SECONDS.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }
}

impl LatencyHistogram {
    pub fn observe(&mut self, seconds: f64) {
        let seconds = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        let bucket = self.le.partition_point(|le| *le < seconds);
        self.counts[bucket] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// The drift windows of a model's features: one [`DriftWindow`] per feature that the reference
/// profile describes, fed whole rows in feature order.
#[derive(Debug, Clone)]
pub struct DriftMonitor {
    /// `(position in the row, how its numbers map to the window's bins, window)`.
    windows: Vec<(usize, Coding, DriftWindow<'static>)>,
    /// The PSI at which a feature counts as drifted.
    threshold: f64,
}

/// How a feature's input numbers are counted against category frequencies: each known number
/// with the position of its category in the reference (other numbers fall in the "other" bin).
/// For an ordinal-encoded feature the numbers are the codes (`k` is the manifest's
/// `categories[k]`); otherwise the numbers the reference's categories read as (`"3"` for 3).
/// Empty for a numeric reference, which bins the number itself.
type Coding = Vec<(f64, Option<usize>)>;

fn coding(reference: &FeatureReference, categories: Option<&[String]>) -> Coding {
    let FeatureReference::Categorical { categories: seen, .. } = reference else {
        return Vec::new();
    };
    match categories {
        Some(codes) => codes
            .iter()
            .enumerate()
            .map(|(k, c)| (k as f64, seen.iter().position(|s| s == c)))
            .collect(),
        None => seen
            .iter()
            .enumerate()
            .filter_map(|(k, c)| Some((crate::decimal::parse_f64(c.trim())?, Some(k))))
            .collect(),
    }
}

impl DriftMonitor {
    /// A monitor with the default threshold, [`PSI_DRIFT_THRESHOLD`].
    pub fn new(manifest: &ManifestView) -> DriftMonitor {
        DriftMonitor::with_threshold(manifest, PSI_DRIFT_THRESHOLD)
    }

    /// A monitor where a feature drifts when its PSI is `threshold` or more (a non-finite or
    /// negative threshold falls back to [`PSI_DRIFT_THRESHOLD`]).
    pub fn with_threshold(manifest: &ManifestView, threshold: f64) -> DriftMonitor {
        let threshold = if threshold.is_finite() && threshold >= 0.0 {
            threshold
        } else {
            PSI_DRIFT_THRESHOLD
        };
        let mut windows = Vec::new();
        for (i, f) in manifest.features.iter().enumerate() {
            if let Some(reference) = manifest.reference_profile.feature(&f.name) {
                let coding = coding(reference, f.categories.as_deref());
                windows.push((i, coding, DriftWindow::owned(reference.clone())));
            }
        }
        DriftMonitor { windows, threshold }
    }

    /// Counts every value of `rows`, which are concatenated rows in feature order. A missing
    /// value (NaN, which a model that routes missing values is given) is counted apart, never
    /// binned, so it moves neither the PSI nor the KS statistic.
    pub fn observe_rows(&mut self, rows: &[f64], n_features: usize) {
        for row in rows.chunks_exact(n_features.max(1)) {
            for (i, coding, window) in &mut self.windows {
                let v = row[*i];
                if v.is_nan() {
                    window.observe_missing();
                } else if let FeatureReference::Categorical { .. } = window.reference() {
                    let position = coding.iter().find(|(x, _)| *x == v).and_then(|(_, k)| *k);
                    window.observe_category_at(position);
                } else {
                    window.observe_number(v);
                }
            }
        }
    }

    pub fn snapshot(&self) -> DriftSnapshot {
        let features: Vec<FeatureDrift> = self
            .windows
            .iter()
            .map(|(_, _, w)| {
                let psi = w.psi();
                FeatureDrift {
                    name: w.reference().name().to_owned(),
                    counts: w.counts().to_vec(),
                    missing: w.missing(),
                    observed: w.counts().iter().sum(),
                    psi,
                    ks: w.ks(),
                    drifted: psi >= self.threshold,
                }
            })
            .collect();
        let drifted = features.iter().filter(|f| f.drifted).count();
        DriftSnapshot {
            threshold: self.threshold,
            drifted_ratio: if features.is_empty() {
                0.0
            } else {
                drifted as f64 / features.len() as f64
            },
            features,
        }
    }

    pub fn clear(&mut self) {
        self.windows.iter_mut().for_each(|(_, _, w)| w.clear());
    }
}

/// The drift of every monitored feature over the current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftSnapshot {
    /// The PSI at which a feature counts as drifted.
    pub threshold: f64,
    /// Share of the monitored features that drifted (`wasmline_data_drift_ratio`).
    pub drifted_ratio: f64,
    pub features: Vec<FeatureDrift>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub name: String,
    /// Values per bin of the reference (the last bin of a categorical feature is "other").
    pub counts: Vec<u64>,
    /// Values that could not be binned: missing (NaN) or not finite.
    pub missing: u64,
    /// Values binned (the sum of `counts`).
    pub observed: u64,
    /// PSI of the window against the reference (0 before any value).
    pub psi: f64,
    /// Kolmogorov-Smirnov statistic against the reference's bins, for numeric features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    /// `psi >= threshold`.
    pub drifted: bool,
}

impl FeatureDrift {
    /// The share of the window's values that were missing (0 before any value).
    pub fn missing_share(&self) -> f64 {
        let total = self.missing.saturating_add(self.observed);
        if total == 0 {
            0.0
        } else {
            self.missing as f64 / total as f64
        }
    }
}

/// Everything a runtime keeps about one model's predictions since the last [`Telemetry::reset`].
#[derive(Debug, Clone)]
pub struct Telemetry {
    model: String,
    version: u64,
    runtime: String,
    n_features: usize,
    predictions: PredictionCounts,
    latency: LatencyHistogram,
    drift: DriftMonitor,
}

/// Predict calls by outcome, and the rows of the successful ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionCounts {
    pub ok: u64,
    pub error: u64,
    pub rows: u64,
}

/// [`Telemetry`] as posted to the control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryReport {
    pub model: String,
    pub version: u64,
    /// `browser`, `edge`, ...: the `runtime` label of the exported metrics.
    pub runtime: String,
    pub predictions: PredictionCounts,
    /// Durations of the successful predict calls, in seconds.
    pub latency_seconds: LatencyHistogram,
    pub drift: DriftSnapshot,
}

/// What a runtime posts to the control plane's telemetry endpoint (`POST /api/v1/telemetry`):
/// the reports of one or more models. `batch_id` makes delivery idempotent: a batch posted twice
/// (a retry after a lost answer, a buffer replayed after a restart) is counted once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryBatch {
    /// 1 to 128 characters of `A-Z a-z 0-9 . _ -`, unique per sender.
    pub batch_id: String,
    /// The sender: an edge's node id, or a browser's client id (same characters, 1 to 64).
    pub node: String,
    pub reports: Vec<TelemetryReport>,
}

/// Most reports one [`TelemetryBatch`] may hold.
pub const MAX_BATCH_REPORTS: usize = 256;

impl TelemetryBatch {
    /// Checks what the JSON shape cannot: identifiers, counts and histogram lengths, finite sums.
    pub fn validate(&self) -> Result<(), String> {
        fn id(what: &str, s: &str, max: usize) -> Result<(), String> {
            let ok = (1..=max).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if ok {
                Ok(())
            } else {
                Err(format!("{what} must be 1 to {max} characters of A-Z a-z 0-9 . _ -"))
            }
        }
        id("batch_id", &self.batch_id, 128)?;
        id("node", &self.node, 64)?;
        if self.reports.len() > MAX_BATCH_REPORTS {
            return Err(format!(
                "{} reports in one batch; at most {MAX_BATCH_REPORTS}",
                self.reports.len()
            ));
        }
        for (i, r) in self.reports.iter().enumerate() {
            let fail = |reason: String| Err(format!("reports[{i}]: {reason}"));
            if let Err(e) = id("model", &r.model, 128).and(id("runtime", &r.runtime, 32)) {
                return fail(e);
            }
            let h = &r.latency_seconds;
            if h.le != LATENCY_BUCKETS_SECONDS {
                return fail("latency_seconds.le must be the standard buckets (LATENCY_BUCKETS_SECONDS)".into());
            }
            if h.counts.len() != h.le.len() + 1 {
                return fail(format!("latency_seconds.counts must have {} entries", h.le.len() + 1));
            }
            if h.counts.iter().try_fold(0u64, |a, &c| a.checked_add(c)) != Some(h.count) {
                return fail("latency_seconds.count is not the sum of its bucket counts".into());
            }
            if !h.sum.is_finite() || h.sum < 0.0 {
                return fail("latency_seconds.sum must be a finite number >= 0".into());
            }
            if h.count > r.predictions.ok {
                return fail("more latencies than successful predictions".into());
            }
            let d = &r.drift;
            if !(0.0..=1.0).contains(&d.drifted_ratio) || !d.threshold.is_finite() {
                return fail("drift.drifted_ratio must be in [0, 1] and drift.threshold finite".into());
            }
            for f in &d.features {
                if f.counts.iter().try_fold(0u64, |a, &c| a.checked_add(c)) != Some(f.observed) {
                    return fail(format!(
                        "drift feature '{}': observed is not the sum of its counts",
                        f.name
                    ));
                }
                if !f.psi.is_finite() || f.psi < 0.0 {
                    return fail(format!("drift feature '{}': psi must be a finite number >= 0", f.name));
                }
                if f.ks.is_some_and(|ks| !(0.0..=1.0).contains(&ks)) {
                    return fail(format!("drift feature '{}': ks must be in [0, 1]", f.name));
                }
            }
        }
        Ok(())
    }
}

impl Telemetry {
    pub fn new(manifest: &ManifestView, runtime: &str) -> Telemetry {
        Telemetry {
            model: manifest.name.clone(),
            version: manifest.version,
            runtime: runtime.to_owned(),
            n_features: manifest.features.len(),
            predictions: PredictionCounts::default(),
            latency: LatencyHistogram::default(),
            drift: DriftMonitor::new(manifest),
        }
    }

    /// A successful call that predicted `rows` (concatenated, in feature order) in `seconds`.
    pub fn record_ok(&mut self, rows: &[f64], seconds: f64) {
        self.predictions.ok += 1;
        self.predictions.rows += (rows.len() / self.n_features.max(1)) as u64;
        self.latency.observe(seconds);
        self.drift.observe_rows(rows, self.n_features);
    }

    /// A call that was refused (bad rows) or failed.
    pub fn record_error(&mut self) {
        self.predictions.error += 1;
    }

    pub fn drift(&self) -> DriftSnapshot {
        self.drift.snapshot()
    }

    pub fn report(&self) -> TelemetryReport {
        TelemetryReport {
            model: self.model.clone(),
            version: self.version,
            runtime: self.runtime.clone(),
            predictions: self.predictions,
            latency_seconds: self.latency.clone(),
            drift: self.drift.snapshot(),
        }
    }

    /// Starts a new window (after the report was delivered).
    pub fn reset(&mut self) {
        self.predictions = PredictionCounts::default();
        self.latency = LatencyHistogram::default();
        self.drift.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::manifest;

    #[test]
    fn batches_are_checked_before_anything_counts_them() {
        let mut telemetry = Telemetry::new(&manifest(&["a", "b"], None, b""), "wasmtime");
        telemetry.record_ok(&[13.0, 14.0], 0.000_2);
        let good = TelemetryBatch {
            batch_id: "edge-1.000042".into(),
            node: "edge-1".into(),
            reports: vec![telemetry.report()],
        };
        good.validate().unwrap();
        let refused = |change: &dyn Fn(&mut TelemetryBatch), expected: &str| {
            let mut batch = good.clone();
            change(&mut batch);
            let e = batch.validate().unwrap_err();
            assert!(e.contains(expected), "{e}");
        };
        refused(&|b| b.batch_id = "a/../b".into(), "batch_id");
        refused(&|b| b.node = String::new(), "node");
        refused(&|b| b.reports[0].latency_seconds.count += 1, "not the sum");
        refused(
            &|b| b.reports[0].latency_seconds.counts.pop().map(drop).unwrap(),
            "entries",
        );
        refused(&|b| b.reports[0].latency_seconds.sum = f64::NAN, "finite");
        refused(&|b| b.reports[0].drift.features[0].observed += 1, "observed");
        refused(&|b| b.reports[0].drift.drifted_ratio = 2.0, "drifted_ratio");
        refused(&|b| b.reports[0].drift.features[0].ks = Some(f64::NAN), "ks");
        refused(
            &|b| b.reports = vec![b.reports[0].clone(); MAX_BATCH_REPORTS + 1],
            "at most",
        );
    }

    #[test]
    fn latencies_land_in_their_buckets() {
        let mut h = LatencyHistogram::default();
        h.observe(0.000_025); // on a bound: that bucket
        h.observe(0.000_03);
        h.observe(0.7);
        h.observe(100.0);
        h.observe(f64::NAN);
        assert_eq!(h.counts[0], 2, "{:?}", h.counts);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[14], 1, "0.5 < 0.7 <= 1");
        assert_eq!(h.counts[16], 1, "above the last bound");
        assert_eq!(h.count, 5);
        assert_eq!(h.counts.iter().sum::<u64>(), 5);
        assert!((h.sum - 100.700_055).abs() < 1e-9);
    }

    #[test]
    fn drift_follows_the_reference_and_resets() {
        // References of a and b: uniform over 0..10 in 5 bins.
        let m = manifest(&["a", "b"], None, b"");
        let mut t = Telemetry::new(&m, "browser");
        let rows: Vec<f64> = (0..100).flat_map(|i| [(i % 10) as f64, 9.0]).collect();
        t.record_ok(&rows, 0.001);
        t.record_error();
        let r = t.report();
        assert_eq!(
            r.predictions,
            PredictionCounts {
                ok: 1,
                error: 1,
                rows: 100
            }
        );
        assert_eq!(r.latency_seconds.count, 1);
        let [a, b] = &r.drift.features[..] else { panic!() };
        assert_eq!((a.name.as_str(), a.observed), ("a", 100));
        assert!(a.psi < 0.01 && !a.drifted, "{a:?}");
        assert_eq!(b.counts, [0, 0, 0, 0, 100]);
        assert!(b.drifted, "{b:?}");
        assert_eq!(r.drift.drifted_ratio, 0.5);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["runtime"], "browser");
        assert_eq!(json["drift"]["features"][1]["drifted"], true);
        t.reset();
        let r = t.report();
        assert_eq!(r.predictions, PredictionCounts::default());
        assert_eq!(r.drift.features[1].observed, 0);
        assert_eq!(r.drift.drifted_ratio, 0.0);
    }

    #[test]
    fn the_threshold_is_configurable_and_numeric_features_get_a_ks() {
        let m = manifest(&["a", "b"], None, b"");
        // a: uniform over the reference; b: a mild shift (half the values one bin up).
        let rows: Vec<f64> = (0..100)
            .flat_map(|i| [(i % 10) as f64, ((i % 10) + (i % 2)) as f64])
            .collect();
        let psi_b = {
            let mut d = DriftMonitor::new(&m);
            d.observe_rows(&rows, 2);
            d.snapshot().features[1].psi
        };
        for (threshold, ratio) in [(psi_b + 0.01, 0.0), (psi_b - 0.01, 0.5)] {
            let mut d = DriftMonitor::with_threshold(&m, threshold);
            d.observe_rows(&rows, 2);
            let s = d.snapshot();
            assert_eq!((s.threshold, s.drifted_ratio), (threshold, ratio), "{s:?}");
            assert!(
                s.features
                    .iter()
                    .all(|f| f.ks.is_some_and(|ks| (0.0..=1.0).contains(&ks)))
            );
        }
        assert_eq!(
            DriftMonitor::with_threshold(&m, f64::NAN).snapshot().threshold,
            PSI_DRIFT_THRESHOLD
        );
    }

    #[test]
    fn ordinal_codes_count_as_their_category() {
        let mut m = manifest(&["colour", "x"], Some(&["no", "yes"][..]), b"");
        m.features[0].categories = Some(vec!["red".into(), "white".into()]);
        m.reference_profile.features[0] =
            FeatureReference::categorical_from_values("colour", ["red", "white", "white"].map(Some)).unwrap();
        // Features the profile does not describe are not monitored.
        m.reference_profile.features.truncate(1);
        let mut d = DriftMonitor::new(&m);
        d.observe_rows(&[0.0, 5.0, 1.0, 5.0, 1.0, 5.0, 7.0, 5.0, 0.5, 5.0], 2);
        let s = d.snapshot();
        assert_eq!(s.features.len(), 1);
        // Categories most frequent first: white, red, then "other" (codes 7 and 0.5).
        assert_eq!(s.features[0].counts, [2, 1, 2]);

        // Without codes, a number counts as the category that reads as it.
        m.features[0].categories = None;
        m.reference_profile.features[0] =
            FeatureReference::categorical_from_values("colour", ["3", "3", "1.5", "x"].map(Some)).unwrap();
        let mut d = DriftMonitor::new(&m);
        d.observe_rows(&[3.0, 5.0, 1.5, 5.0, 3.0, 5.0, 2.0, 5.0], 2);
        assert_eq!(d.snapshot().features[0].counts, [2, 1, 0, 1]);
    }

    #[test]
    fn missing_values_are_counted_apart_from_the_bins() {
        let mut m = manifest(&["colour", "x"], Some(&["no", "yes"][..]), b"");
        m.features[0].categories = Some(vec!["red".into(), "white".into()]);
        m.reference_profile.features[0] =
            FeatureReference::categorical_from_values("colour", ["red", "white"].map(Some)).unwrap();
        let mut d = DriftMonitor::new(&m);
        // Rows 0..90 have a colour, 0..100 an x, spread as their references; the rest are NaN.
        let rows: Vec<f64> = (0..120)
            .flat_map(|i| {
                let colour = if i >= 90 { f64::NAN } else { f64::from(i % 2) };
                let x = if i >= 100 { f64::NAN } else { f64::from(i % 10) };
                [colour, x]
            })
            .collect();
        d.observe_rows(&rows, 2);
        let s = d.snapshot();
        let [colour, x] = &s.features[..] else { panic!("{s:?}") };
        // 30 NaN colours, none in the "other" bin; 20 NaN x, none binned.
        assert_eq!((colour.missing, colour.observed), (30, 90));
        assert_eq!(colour.counts.last(), Some(&0), "{colour:?}");
        assert_eq!((x.missing, x.observed), (20, 100));
        assert_eq!(colour.missing_share(), 0.25);
        assert!((x.missing_share() - 1.0 / 6.0).abs() < 1e-15);
        // The binned values follow their references: no drift from the missing ones.
        assert!(colour.psi.is_finite() && !colour.drifted, "{colour:?}");
        assert!(x.psi.is_finite() && x.psi < 0.01, "{x:?}");
        assert!(x.ks.is_some_and(f64::is_finite));
        let empty = DriftMonitor::new(&m).snapshot();
        assert_eq!(empty.features[0].missing_share(), 0.0);
        // A report with missing values still passes the control plane's checks.
        let mut t = Telemetry::new(&m, "edge");
        t.record_ok(&rows, 0.001);
        let batch = TelemetryBatch {
            batch_id: "b-1".into(),
            node: "n".into(),
            reports: vec![t.report()],
        };
        batch.validate().unwrap();
    }
}
