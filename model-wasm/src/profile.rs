//! Reference profiles and the population stability index.

use alloc::{
    borrow::{Cow, ToOwned},
    collections::BTreeMap,
    format,
    string::String,
    vec,
    vec::Vec,
};

use serde::{Deserialize, Serialize};

use crate::json::{Value, read};
use crate::{Error, Result};

/// A feature drifts when its PSI against the reference reaches this value (the usual rule of thumb:
/// below 0.1 stable, 0.1 to 0.2 moderate, above 0.2 significant).
pub const PSI_DRIFT_THRESHOLD: f64 = 0.2;

/// Proportions are floored at this value before the logarithm, as Evidently does, so an empty bin
/// gives a large but finite PSI.
const PSI_EPSILON: f64 = 1e-4;

/// What the training data looked like, feature by feature, for drift detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// Number of training rows the proportions were computed from.
    pub rows: u64,
    pub features: Vec<FeatureReference>,
}

impl ReferenceProfile {
    /// The profile at `at` of a parsed document (a manifest's `reference_profile`), by the
    /// rules of the derived `Deserialize`: `kind` names the variant.
    pub(crate) fn read(v: &Value, at: &str) -> read::Result<ReferenceProfile> {
        let feature = |f: &Value, at: &str| -> read::Result<FeatureReference> {
            let name = read::field(f, at, "name", &read::string)?;
            let proportions = read::field(f, at, "proportions", &read::numbers)?;
            match read::field(f, at, "kind", &read::string)?.as_str() {
                "numeric" => Ok(FeatureReference::Numeric {
                    name,
                    edges: read::field(f, at, "edges", &read::numbers)?,
                    proportions,
                }),
                "categorical" => Ok(FeatureReference::Categorical {
                    name,
                    categories: read::field(f, at, "categories", &read::strings)?,
                    proportions,
                }),
                other => Err(format!(
                    "{} is '{other}', not 'numeric' or 'categorical'",
                    read::path(at, "kind")
                )),
            }
        };
        Ok(ReferenceProfile {
            rows: read::field(v, at, "rows", &read::integer)?,
            features: read::field(v, at, "features", &|f, at| read::list(f, at, &feature))?,
        })
    }

    /// The reference of one feature, by name.
    pub fn feature(&self, name: &str) -> Option<&FeatureReference> {
        self.features.iter().find(|f| f.name() == name)
    }
}

/// The reference distribution of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureReference {
    /// `edges` are the interior cut points, ascending and distinct; with `k` edges there are `k + 1`
    /// bins: `(-inf, e0)`, `[e0, e1)`, ..., `[e(k-1), +inf)`. `proportions` has one entry per bin.
    Numeric {
        name: String,
        edges: Vec<f64>,
        proportions: Vec<f64>,
    },
    /// Category frequencies, most frequent first; values never seen in training fall in a last,
    /// implicit "other" bin whose reference proportion is zero.
    Categorical {
        name: String,
        categories: Vec<String>,
        proportions: Vec<f64>,
    },
}

impl FeatureReference {
    /// Bins a numeric feature at the quantiles of its training values, so each bin holds about the
    /// same share of the training data. Non-finite values are ignored; ties can merge bins.
    pub fn numeric_from_values(name: &str, values: &[f64], bins: usize) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidReference {
            feature: name.to_owned(),
            reason: reason.to_owned(),
        };
        if bins < 1 {
            return Err(invalid("at least one bin is needed"));
        }
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return Err(invalid("no finite values to profile"));
        }
        sorted.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
        for i in 1..bins {
            let edge = quantile_sorted(&sorted, i as f64 / bins as f64);
            // An edge equal to the minimum would leave the first bin empty by construction.
            if edge > sorted[0] && edges.last().is_none_or(|last| edge > *last) {
                edges.push(edge);
            }
        }
        let mut counts = vec![0u64; edges.len() + 1];
        for v in &sorted {
            counts[numeric_bin(&edges, *v)] += 1;
        }
        let n = sorted.len() as f64;
        Ok(FeatureReference::Numeric {
            name: name.to_owned(),
            edges,
            proportions: counts.iter().map(|c| *c as f64 / n).collect(),
        })
    }

    /// Category frequencies of a categorical feature; missing values (`None`) are ignored.
    pub fn categorical_from_values<'a>(name: &str, values: impl IntoIterator<Item = Option<&'a str>>) -> Result<Self> {
        let mut counts: BTreeMap<&str, u64> = Default::default();
        let mut n = 0u64;
        for v in values.into_iter().flatten() {
            *counts.entry(v).or_default() += 1;
            n += 1;
        }
        if n == 0 {
            return Err(Error::InvalidReference {
                feature: name.to_owned(),
                reason: "no values to profile".to_owned(),
            });
        }
        let mut pairs: Vec<(&str, u64)> = counts.into_iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Ok(FeatureReference::Categorical {
            name: name.to_owned(),
            categories: pairs.iter().map(|(c, _)| (*c).to_owned()).collect(),
            proportions: pairs.iter().map(|(_, k)| *k as f64 / n as f64).collect(),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            FeatureReference::Numeric { name, .. } | FeatureReference::Categorical { name, .. } => name,
        }
    }

    /// Number of bins a window over this feature counts into (for categorical features, one more
    /// than the categories: the "other" bin).
    pub fn bins(&self) -> usize {
        match self {
            FeatureReference::Numeric { proportions, .. } => proportions.len(),
            FeatureReference::Categorical { categories, .. } => categories.len() + 1,
        }
    }

    /// Reference proportion of each bin, in the order of [`Self::bins`].
    pub fn reference_proportions(&self) -> Vec<f64> {
        match self {
            FeatureReference::Numeric { proportions, .. } => proportions.clone(),
            FeatureReference::Categorical { proportions, .. } => {
                let mut p = proportions.clone();
                p.push(0.0);
                p
            }
        }
    }
}

/// The bin of `v` given ascending interior `edges`: values equal to an edge go to the bin above.
fn numeric_bin(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|e| *e <= v)
}

/// Linear-interpolated quantile (numpy's default) of sorted, non-empty data.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = libm::floor(pos) as usize;
    let hi = libm::ceil(pos) as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Population stability index of `observed` bin counts against `reference` proportions:
/// `sum((a - e) * ln(a / e))` over bins, proportions floored at 1e-4. Zero when nothing was observed.
/// The logarithm is libm's in every build, so an edge and a browser compute the same bits.
pub fn psi(reference: &[f64], observed: &[u64]) -> f64 {
    let total: u64 = observed.iter().sum();
    if total == 0 {
        return 0.0;
    }
    reference
        .iter()
        .zip(observed)
        .map(|(e, o)| {
            let e = e.max(PSI_EPSILON);
            let a = (*o as f64 / total as f64).max(PSI_EPSILON);
            (a - e) * libm::log(a / e)
        })
        .sum()
}

/// Kolmogorov-Smirnov statistic of `observed` bin counts against `reference` proportions: the
/// largest distance between the two cumulative distributions at the bin edges (the reference
/// keeps only binned proportions, so this is the KS statistic of the binned data, a lower bound of
/// the raw one). In `[0, 1]`; zero when nothing was observed.
pub fn ks_statistic(reference: &[f64], observed: &[u64]) -> f64 {
    let total: u64 = observed.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let (mut expected, mut actual, mut largest) = (0.0f64, 0.0f64, 0.0f64);
    for (e, o) in reference.iter().zip(observed) {
        expected += e;
        actual += *o as f64 / total as f64;
        largest = largest.max((actual - expected).abs());
    }
    largest.min(1.0)
}

/// Counts of recent values of one feature, binned like its reference.
#[derive(Debug, Clone)]
pub struct DriftWindow<'a> {
    reference: Cow<'a, FeatureReference>,
    counts: Vec<u64>,
    missing: u64,
}

impl<'a> DriftWindow<'a> {
    pub fn new(reference: &'a FeatureReference) -> Self {
        DriftWindow {
            counts: vec![0; reference.bins()],
            reference: Cow::Borrowed(reference),
            missing: 0,
        }
    }

    /// A window that owns its reference, for a monitor that lives as long as its model.
    pub fn owned(reference: FeatureReference) -> DriftWindow<'static> {
        DriftWindow {
            counts: vec![0; reference.bins()],
            reference: Cow::Owned(reference),
            missing: 0,
        }
    }

    pub fn reference(&self) -> &FeatureReference {
        &self.reference
    }

    /// Forgets every value counted so far (a new window starts).
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.missing = 0;
    }

    /// Counts a missing value: apart from the bins, so it moves neither PSI nor KS.
    pub fn observe_missing(&mut self) {
        self.missing += 1;
    }

    /// Counts a numeric value; non-finite values count as missing. A categorical feature counts it
    /// in its "other" bin.
    pub fn observe_number(&mut self, v: f64) {
        if !v.is_finite() {
            self.missing += 1;
            return;
        }
        let bin = match self.reference.as_ref() {
            FeatureReference::Numeric { edges, .. } => numeric_bin(edges, v),
            FeatureReference::Categorical { categories, .. } => categories.len(),
        };
        self.counts[bin] += 1;
    }

    /// Counts a categorical value; unseen categories go to the "other" bin. A numeric feature
    /// counts a parseable value as a number and anything else as missing.
    pub fn observe_category(&mut self, v: &str) {
        match self.reference.as_ref() {
            FeatureReference::Categorical { categories, .. } => {
                let position = categories.iter().position(|c| c == v);
                self.observe_category_at(position);
            }
            FeatureReference::Numeric { .. } => match crate::decimal::parse_f64(v.trim()) {
                Some(x) => self.observe_number(x),
                None => self.missing += 1,
            },
        }
    }

    /// Counts a categorical value by its category's position in the reference; `None` (or a
    /// position past the categories) is the "other" bin. A numeric feature counts it as missing.
    pub fn observe_category_at(&mut self, position: Option<usize>) {
        match self.reference.as_ref() {
            FeatureReference::Categorical { categories, .. } => {
                let bin = position.filter(|k| *k < categories.len()).unwrap_or(categories.len());
                self.counts[bin] += 1;
            }
            FeatureReference::Numeric { .. } => self.missing += 1,
        }
    }

    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// PSI of the window against the reference.
    pub fn psi(&self) -> f64 {
        psi(&self.reference.reference_proportions(), &self.counts)
    }

    /// KS statistic of the window against the reference, for a numeric feature (categories have
    /// no order: None).
    pub fn ks(&self) -> Option<f64> {
        match self.reference.as_ref() {
            FeatureReference::Numeric { proportions, .. } => Some(ks_statistic(proportions, &self.counts)),
            FeatureReference::Categorical { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|i| lo + (hi - lo) * (i as f64 + 0.5) / n as f64).collect()
    }

    #[test]
    fn quantile_bins_hold_equal_shares() {
        let f = FeatureReference::numeric_from_values("x", &uniform(1000, 0.0, 1.0), 10).unwrap();
        let FeatureReference::Numeric { edges, proportions, .. } = &f else {
            panic!()
        };
        assert_eq!(edges.len(), 9);
        for p in proportions {
            assert!((p - 0.1).abs() < 0.002, "{proportions:?}");
        }
        assert!((proportions.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn constant_feature_has_one_bin() {
        let f = FeatureReference::numeric_from_values("c", &[3.0; 50], 10).unwrap();
        assert_eq!(f.bins(), 1);
        assert_eq!(f.reference_proportions(), vec![1.0]);
    }

    #[test]
    fn no_finite_values_is_an_error() {
        let err = FeatureReference::numeric_from_values("x", &[f64::NAN], 10).unwrap_err();
        assert!(err.to_string().contains("'x'"), "{err}");
    }

    #[test]
    fn same_distribution_is_stable_and_a_shift_drifts() {
        let f = FeatureReference::numeric_from_values("x", &uniform(5000, 0.0, 1.0), 10).unwrap();
        let mut same = DriftWindow::new(&f);
        uniform(700, 0.0, 1.0).into_iter().for_each(|v| same.observe_number(v));
        assert!(same.psi() < 0.01, "psi {}", same.psi());

        let mut shifted = DriftWindow::new(&f);
        uniform(700, 0.5, 1.5)
            .into_iter()
            .for_each(|v| shifted.observe_number(v));
        assert!(shifted.psi() > PSI_DRIFT_THRESHOLD, "psi {}", shifted.psi());
    }

    #[test]
    fn psi_matches_a_hand_computed_value() {
        // reference 50/50, observed 80/20: (0.8-0.5)ln(1.6) + (0.2-0.5)ln(0.4)
        let expected = 0.3 * 1.6f64.ln() + (-0.3) * 0.4f64.ln();
        assert!((psi(&[0.5, 0.5], &[80, 20]) - expected).abs() < 1e-12);
        assert_eq!(psi(&[0.5, 0.5], &[0, 0]), 0.0);
    }

    #[test]
    fn ks_is_the_largest_gap_between_cumulative_shares() {
        // reference 25/25/25/25, observed 0/0/50/50: cumulative gaps 0.25, 0.5, 0.25, 0.
        assert!((ks_statistic(&[0.25; 4], &[0, 0, 5, 5]) - 0.5).abs() < 1e-12);
        assert_eq!(ks_statistic(&[0.25; 4], &[1, 1, 1, 1]), 0.0);
        assert_eq!(ks_statistic(&[0.25; 4], &[0; 4]), 0.0);
        // Everything in the top bin of ten: 0.9.
        let f = FeatureReference::numeric_from_values("x", &uniform(1000, 0.0, 1.0), 10).unwrap();
        let mut w = DriftWindow::new(&f);
        (0..50).for_each(|_| w.observe_number(5.0));
        assert!((w.ks().unwrap() - 0.9).abs() < 0.01, "{:?}", w.ks());
        let c = FeatureReference::categorical_from_values("c", ["a", "b"].map(Some)).unwrap();
        assert_eq!(DriftWindow::new(&c).ks(), None);
    }

    #[test]
    fn categories_count_unseen_values_as_other() {
        let f = FeatureReference::categorical_from_values(
            "colour",
            ["red", "red", "white", "red"].map(Some).into_iter().chain([None]),
        )
        .unwrap();
        let FeatureReference::Categorical {
            categories,
            proportions,
            ..
        } = &f
        else {
            panic!()
        };
        assert_eq!(categories, &["red", "white"]);
        assert_eq!(proportions, &[0.75, 0.25]);
        let mut w = DriftWindow::new(&f);
        w.observe_category("rosé");
        w.observe_category("red");
        assert_eq!(w.counts(), &[1, 0, 1]);
    }

    #[test]
    fn profile_round_trips_through_json() {
        let p = ReferenceProfile {
            rows: 4,
            features: vec![FeatureReference::numeric_from_values("x", &[1.0, 2.0, 3.0, 4.0], 2).unwrap()],
        };
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"kind\":\"numeric\""), "{json}");
        assert_eq!(serde_json::from_str::<ReferenceProfile>(&json).unwrap(), p);
    }
}
