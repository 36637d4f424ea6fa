//! Features as bins: each numeric feature's values are cut at `f32` edges, each categorical
//! feature's categories are their own bins, and a missing value has a bin of its own.
//!
//! A numeric value `x` is in bin `#{edges e : e <= x as f32}`, so "bins `0..=b` go left" is
//! exactly the IR's test `(x as f32) < edges[b]`: training and every runtime route alike.

use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// LightGBM's `min_data_in_bin`: no numeric bin is cut with fewer training rows.
const MIN_DATA_IN_BIN: usize = 3;

/// Categories are codes below this (two more bins are needed: unseen and missing).
pub const MAX_CATEGORIES: u32 = 254;

/// How one feature is binned.
#[derive(Debug, Clone)]
pub(crate) struct FeatureBins {
    pub categorical: bool,
    /// Numeric: the bin edges, ascending.
    pub edges: Vec<f32>,
    /// Bins that hold values: `edges.len() + 1` (numeric) or the categories (categorical).
    pub value_bins: usize,
    /// Categorical: a category not seen in training (it goes right at every split).
    pub unseen_bin: usize,
    pub missing_bin: usize,
    /// All bins, the missing one included.
    pub total_bins: usize,
}

/// Every row's bin of every feature, column by column.
#[derive(Debug)]
pub(crate) struct Binned {
    pub features: Vec<FeatureBins>,
    pub columns: Vec<Vec<u8>>,
    /// Where each feature's bins start in a histogram (in bins).
    pub offsets: Vec<usize>,
    pub total_bins: usize,
}

impl Binned {
    /// Bins every row of `x`; the edges come from the rows `fit_rows`.
    pub(crate) fn new(
        x: ArrayView2<'_, f64>,
        fit_rows: &[usize],
        categorical: &[bool],
        max_bins: usize,
        threads: usize,
    ) -> Result<Binned> {
        let n_features = x.ncols();
        let work = |f: usize| -> Result<(FeatureBins, Vec<u8>)> {
            let column = x.column(f);
            let is_cat = categorical.get(f).copied().unwrap_or(false);
            let bins = if is_cat {
                categorical_bins(f, fit_rows.iter().map(|&i| (i, column[i])), max_bins)?
            } else {
                numeric_bins(f, fit_rows.iter().map(|&i| (i, column[i])), max_bins)?
            };
            let codes = column.iter().map(|v| bins.bin(*v) as u8).collect();
            Ok((bins, codes))
        };
        let results = crate::parallel::map(n_features, threads, work);
        let mut features = Vec::with_capacity(n_features);
        let mut columns = Vec::with_capacity(n_features);
        let mut offsets = Vec::with_capacity(n_features + 1);
        let mut total = 0;
        for r in results {
            let (bins, codes) = r?;
            offsets.push(total);
            total += bins.total_bins;
            features.push(bins);
            columns.push(codes);
        }
        offsets.push(total);
        Ok(Binned {
            features,
            columns,
            offsets,
            total_bins: total,
        })
    }
}

impl FeatureBins {
    /// The bin of a value.
    pub(crate) fn bin(&self, v: f64) -> usize {
        if v.is_nan() {
            return self.missing_bin;
        }
        if self.categorical {
            return match crate::model::category(v) {
                Some(c) if (c as usize) < self.value_bins => c as usize,
                _ => self.unseen_bin,
            };
        }
        let v = v as f32;
        self.edges.partition_point(|e| *e <= v)
    }
}

fn numeric_bins(feature: usize, values: impl Iterator<Item = (usize, f64)>, max_bins: usize) -> Result<FeatureBins> {
    let mut sorted: Vec<f32> = Vec::new();
    for (row, v) in values {
        if v.is_nan() {
            continue;
        }
        if v.is_infinite() {
            return Err(Error::Infinite { feature, row, value: v });
        }
        sorted.push(v as f32);
    }
    if sorted.is_empty() {
        return Err(Error::AllMissing { feature });
    }
    sorted.sort_by(f32::total_cmp);
    // Distinct values and their counts (-0.0 and 0.0 are one value).
    let mut distinct: Vec<(f32, usize)> = Vec::new();
    for v in sorted {
        match distinct.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => distinct.push((v, 1)),
        }
    }
    let mut edges = Vec::new();
    if distinct.len() <= max_bins {
        // A bin holds MIN_DATA_IN_BIN rows at least (LightGBM's rule): rare values join the next.
        let mut in_bin = 0;
        for (i, w) in distinct.windows(2).enumerate() {
            in_bin += distinct[i].1;
            if in_bin >= MIN_DATA_IN_BIN {
                edges.push(midpoint(w[0].0, w[1].0));
                in_bin = 0;
            }
        }
    } else {
        // Greedy equal-count cuts: each bin takes values until it holds its share of the rows
        // left, so a heavy value gets a bin of its own.
        let mut left: usize = distinct.iter().map(|d| d.1).sum();
        let mut bins_left = max_bins;
        let mut in_bin = 0;
        for (i, (v, n)) in distinct.iter().enumerate() {
            in_bin += n;
            left -= n;
            let share = (in_bin + left) as f64 / bins_left as f64;
            if i + 1 < distinct.len() && bins_left > 1 && in_bin >= MIN_DATA_IN_BIN && in_bin as f64 >= share {
                edges.push(midpoint(*v, distinct[i + 1].0));
                bins_left -= 1;
                in_bin = 0;
            }
        }
    }
    let value_bins = edges.len() + 1;
    Ok(FeatureBins {
        categorical: false,
        edges,
        value_bins,
        unseen_bin: value_bins,
        missing_bin: value_bins,
        total_bins: value_bins + 1,
    })
}

/// An `f32` strictly above `a` and at most `b` (`a < b`), near their midpoint.
fn midpoint(a: f32, b: f32) -> f32 {
    let t = ((f64::from(a) + f64::from(b)) / 2.0) as f32;
    if t <= a { a.next_up() } else { t.min(b) }
}

fn categorical_bins(
    feature: usize,
    values: impl Iterator<Item = (usize, f64)>,
    max_bins: usize,
) -> Result<FeatureBins> {
    let max = (max_bins as u32).min(MAX_CATEGORIES) - 1;
    let mut seen = false;
    let mut top = 0u32;
    for (row, v) in values {
        if v.is_nan() {
            continue;
        }
        match crate::model::category(v) {
            Some(c) if c <= max => top = top.max(c),
            _ => {
                return Err(Error::NotACategory {
                    feature,
                    row,
                    value: v,
                    max,
                });
            }
        }
        seen = true;
    }
    if !seen {
        return Err(Error::AllMissing { feature });
    }
    let value_bins = top as usize + 1;
    Ok(FeatureBins {
        categorical: true,
        edges: Vec::new(),
        value_bins,
        unseen_bin: value_bins,
        missing_bin: value_bins + 1,
        total_bins: value_bins + 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bin_is_the_ir_test() {
        let values = [0.1, 0.2, 0.2, 0.3, 1e-8, 5.0, 0.1, 7.0, 0.3, 5.0, 5.0, 6.0, f64::NAN];
        let bins = numeric_bins(0, values.iter().copied().enumerate(), 255).unwrap();
        // 1e-8 0.1 0.1 | 0.2 0.2 0.3 | 0.3 5 5 | 5 6 7: three rows a bin at least.
        assert_eq!(bins.value_bins, 4);
        for v in values.iter().filter(|v| !v.is_nan()) {
            let b = bins.bin(*v);
            for (e, edge) in bins.edges.iter().enumerate() {
                // bins 0..=e go left exactly when (v as f32) < edges[e].
                assert_eq!(b <= e, (*v as f32) < *edge, "{v} bin {b} edge {edge}");
            }
        }
        assert_eq!(bins.bin(f64::NAN), bins.missing_bin);
    }

    #[test]
    fn many_values_make_at_most_max_bins() {
        let values: Vec<f64> = (0..10_000).map(|i| f64::from(i % 997) * 0.37).collect();
        let bins = numeric_bins(0, values.iter().copied().enumerate(), 16).unwrap();
        assert!(bins.value_bins <= 16 && bins.value_bins > 8, "{}", bins.value_bins);
    }

    #[test]
    fn categories_must_be_codes() {
        let err = categorical_bins(3, [(0, 1.0), (7, 2.5)].into_iter(), 255).unwrap_err();
        assert_eq!(
            err.to_string(),
            "categorical feature 3: 2.5 in row 7 is not a category (a whole number from 0 to 253)"
        );
        let all_missing = numeric_bins(2, [(0, f64::NAN)].into_iter(), 255).unwrap_err();
        assert_eq!(all_missing, Error::AllMissing { feature: 2 });
    }
}
