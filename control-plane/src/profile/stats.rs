//! The numbers behind a profile: moments, quantiles, histograms, frequencies and correlations.
//!
//! Every function here returns finite numbers or `None`, never NaN, so a profile always
//! serialises to JSON that reads back.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Most frequent values kept per categorical column; the rest are summed into `other`.
pub(super) const TOP_VALUES: usize = 20;

/// Statistics of the finite values of a numeric column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NumericStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Sample standard deviation (n - 1); `None` with fewer than two values.
    pub std: Option<f64>,
    pub quantiles: Quantiles,
    /// Adjusted Fisher-Pearson skewness (as pandas' `skew()`); `None` with fewer than three values
    /// or no spread.
    pub skewness: Option<f64>,
    /// Values equal to zero.
    pub zeros: u64,
    /// NaN and infinite values: counted as present, left out of every statistic.
    pub non_finite: u64,
    pub histogram: Histogram,
}

/// Linear-interpolated quantiles (numpy's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Quantiles {
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
}

/// Equal-width bins: `edges` has one more entry than `counts`; every bin is `[e(i), e(i+1))`
/// except the last, which includes its upper edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// The most frequent values of a column, most frequent first (ties by value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Frequencies {
    pub top: Vec<ValueCount>,
    /// Values outside `top`, summed.
    pub other: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// Statistics of a numeric column's present values, or `None` when none of them is finite.
pub(super) fn numeric_stats(values: &[f64], bins: usize) -> Option<NumericStats> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let non_finite = (values.len() - sorted.len()) as u64;
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let (mut m2, mut m3) = (0.0, 0.0);
    for v in &sorted {
        let d = v - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    let std = (sorted.len() >= 2).then(|| (m2 / (n - 1.0)).sqrt());
    // g1 = m3 / m2^1.5 on population moments, then adjusted for sample size. A spread that is only
    // rounding noise (all values equal up to the last bits) counts as none.
    let spread = m2 / n;
    let skewness = (sorted.len() >= 3 && spread > (mean.abs() * 1e-12).powi(2) && spread > 0.0).then(|| {
        let g1 = (m3 / n) / spread.powf(1.5);
        g1 * (n * (n - 1.0)).sqrt() / (n - 2.0)
    });
    let quantile = |q| quantile_sorted(&sorted, q);
    Some(NumericStats {
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        mean,
        std: std.filter(|s| s.is_finite()),
        quantiles: Quantiles {
            p5: quantile(0.05),
            p25: quantile(0.25),
            p50: quantile(0.5),
            p75: quantile(0.75),
            p95: quantile(0.95),
        },
        skewness: skewness.filter(|s| s.is_finite()),
        zeros: sorted.iter().filter(|v| **v == 0.0).count() as u64,
        non_finite,
        histogram: histogram(&sorted, bins),
    })
}

/// Linear-interpolated quantile of sorted, non-empty data.
pub(super) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// `bins` equal-width bins over the range of sorted, finite, non-empty data. A constant column
/// gets the range `[v - 0.5, v + 0.5]` (as numpy does), so there are always `bins` bins.
pub(super) fn histogram(sorted: &[f64], bins: usize) -> Histogram {
    let bins = bins.max(1);
    let (mut lo, mut hi) = (sorted[0], sorted[sorted.len() - 1]);
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let width = hi - lo;
    let mut edges: Vec<f64> = (0..bins).map(|i| lo + width * (i as f64 / bins as f64)).collect();
    edges.push(hi);
    let mut counts = vec![0u64; bins];
    for &v in sorted {
        // The arithmetic guess can be one off at an edge; the edges decide.
        let mut i = (((v - lo) / width * bins as f64) as usize).min(bins - 1);
        while i > 0 && v < edges[i] {
            i -= 1;
        }
        while i + 1 < bins && v >= edges[i + 1] {
            i += 1;
        }
        counts[i] += 1;
    }
    Histogram { edges, counts }
}

/// Distinct values among `values` (finite or not; 0 and -0 are one value).
pub(super) fn distinct_numbers(values: &[f64]) -> u64 {
    let mut bits: Vec<u64> = values
        .iter()
        .map(|v| {
            if *v == 0.0 {
                0
            } else if v.is_nan() {
                f64::NAN.to_bits()
            } else {
                v.to_bits()
            }
        })
        .collect();
    bits.sort_unstable();
    bits.dedup();
    bits.len() as u64
}

/// Counts of each value, and the `TOP_VALUES` most frequent of them.
pub(super) fn frequencies<'a>(values: impl IntoIterator<Item = &'a str>) -> (Frequencies, u64) {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let distinct = counts.len() as u64;
    let mut pairs: Vec<(&str, u64)> = counts.into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let other = pairs.iter().skip(TOP_VALUES).map(|(_, c)| c).sum();
    let top = pairs
        .into_iter()
        .take(TOP_VALUES)
        .map(|(value, count)| ValueCount {
            value: value.to_owned(),
            count,
        })
        .collect();
    (Frequencies { top, other }, distinct)
}

/// Pearson correlation of `x` and `y` over the rows where both are present and finite; `None`
/// with fewer than two such rows or when either has no spread over them.
pub(super) fn pearson(x: &[Option<f64>], y: &[Option<f64>]) -> Option<f64> {
    let pairs = || {
        x.iter().zip(y).filter_map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some((*a, *b)),
            _ => None,
        })
    };
    let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
    for (a, b) in pairs() {
        n += 1;
        sx += a;
        sy += b;
    }
    if n < 2 {
        return None;
    }
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in pairs() {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    // A spread that is rounding noise around the mean is no spread.
    let flat = |ss: f64, m: f64| ss <= (m.abs() * 1e-12).powi(2) * n as f64;
    if flat(sxx, mx) || flat(syy, my) {
        return None;
    }
    let r = sxy / (sxx.sqrt() * syy.sqrt());
    r.is_finite().then(|| r.clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn moments_and_quantiles_match_hand_computed_values() {
        let s = numeric_stats(&[10.0, 2.0, 1.0, 3.0, 2.0], 3).unwrap();
        assert_eq!((s.min, s.max), (1.0, 10.0));
        assert!(close(s.mean, 3.6));
        // Squared deviations sum to 53.2; sample variance 53.2 / 4.
        assert!(close(s.std.unwrap(), 13.3f64.sqrt()), "{:?}", s.std);
        // Cubed deviations sum to 236.16: g1 = (236.16 / 5) / (53.2 / 5)^1.5, G1 = g1 * sqrt(20) / 3.
        let g1 = (236.16 / 5.0) / (53.2f64 / 5.0).powf(1.5);
        assert!(close(s.skewness.unwrap(), g1 * 20f64.sqrt() / 3.0), "{:?}", s.skewness);
        // Sorted 1 2 2 3 10: p5 at position 0.2, p95 at 3.8.
        let q = &s.quantiles;
        assert!(close(q.p5, 1.2) && close(q.p95, 8.6), "{q:?}");
        assert_eq!((q.p25, q.p50, q.p75), (2.0, 2.0, 3.0));
        assert_eq!(s.histogram.edges, vec![1.0, 4.0, 7.0, 10.0]);
        assert_eq!(s.histogram.counts, vec![4, 0, 1]);
        assert_eq!((s.zeros, s.non_finite), (0, 0));
    }

    #[test]
    fn small_samples_leave_undefined_statistics_out() {
        let one = numeric_stats(&[4.0], 5).unwrap();
        assert_eq!((one.std, one.skewness), (None, None));
        assert_eq!(one.histogram.counts.len(), 5);
        assert_eq!(one.histogram.counts.iter().sum::<u64>(), 1);
        let flat = numeric_stats(&[0.1; 10], 4).unwrap();
        assert_eq!(flat.skewness, None);
        assert_eq!(flat.histogram.edges.first(), Some(&(0.1 - 0.5)));
        assert!(numeric_stats(&[f64::NAN, f64::INFINITY], 4).is_none());
    }

    #[test]
    fn non_finite_values_are_counted_apart() {
        let s = numeric_stats(&[0.0, 1.0, f64::NAN, f64::NEG_INFINITY, 0.0], 2).unwrap();
        assert_eq!((s.zeros, s.non_finite), (2, 2));
        assert_eq!(s.histogram.counts, vec![2, 1]);
        assert_eq!(distinct_numbers(&[0.0, -0.0, f64::NAN, f64::NAN, 1.0]), 3);
    }

    #[test]
    fn histogram_puts_edge_values_in_the_bin_above_and_the_maximum_in_the_last() {
        let sorted: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
        let h = histogram(&sorted, 10);
        assert_eq!(h.counts, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    }

    #[test]
    fn frequencies_keep_the_top_values_and_sum_the_rest() {
        let values: Vec<String> = (0..30).flat_map(|i| vec![format!("v{i:02}"); 30 - i]).collect();
        let (f, distinct) = frequencies(values.iter().map(String::as_str));
        assert_eq!(distinct, 30);
        assert_eq!(f.top.len(), TOP_VALUES);
        assert_eq!((f.top[0].value.as_str(), f.top[0].count), ("v00", 30));
        // v20..v29 occur 10, 9, ..., 1 times.
        assert_eq!(f.other, 55);
    }

    #[test]
    fn correlation_of_perfect_pairs_is_one_and_minus_one() {
        let x: Vec<Option<f64>> = (0..20).map(|i| Some(i as f64)).collect();
        let up: Vec<Option<f64>> = x.iter().map(|v| v.map(|v| 3.0 * v + 1.0)).collect();
        let down: Vec<Option<f64>> = x.iter().map(|v| v.map(|v| 5.0 - 0.5 * v)).collect();
        assert!(close(pearson(&x, &up).unwrap(), 1.0));
        assert!(close(pearson(&x, &down).unwrap(), -1.0));
    }

    #[test]
    fn correlation_uses_pairwise_complete_rows_and_is_none_when_undefined() {
        let x = [Some(1.0), Some(2.0), None, Some(3.0), Some(f64::NAN)];
        let y = [Some(2.0), Some(4.0), Some(100.0), Some(6.0), Some(-7.0)];
        assert!(close(pearson(&x, &y).unwrap(), 1.0));
        assert_eq!(pearson(&x, &[Some(1.0); 5]), None);
        assert_eq!(pearson(&[Some(1.0), None], &[Some(1.0), Some(2.0)]), None);
    }
}
