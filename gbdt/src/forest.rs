//! Random forests as scikit-learn grows them: each tree on a bootstrap sample, the features tried
//! at each split sampled anew, leaves holding class shares that the forest averages (soft vote).

use crate::bins::Binned;
use crate::error::{Error, Result};
use crate::grow::{GrowParams, Stats, grow};
use crate::model::{Forest, Node};
use crate::params::{ForestValidParams, SplitQuality};
use crate::rng::Rng;
use crate::{Dataset, Target};

impl ForestValidParams {
    /// Fits a classification forest. Categorical features are read as numbers.
    pub fn fit(&self, data: &Dataset<'_>) -> Result<Forest> {
        let n = data.check()?;
        let Target::Classes { y, n_classes } = data.target else {
            return Err(Error::Targets(
                "a forest here classifies: the target must be classes".into(),
            ));
        };
        let all: Vec<usize> = (0..n).collect();
        let numeric = vec![false; data.x.ncols()];
        let binned = Binned::new(data.x, &all, &numeric, self.max_bins, self.threads)?;
        let n_features = data.x.ncols();
        let per_node = match self.feature_fraction {
            Some(f) => ((f * n_features as f64).round() as usize).max(1),
            None => ((n_features as f64).sqrt() as usize).max(1),
        };
        let params = GrowParams {
            max_leaves: usize::MAX,
            max_depth: self.max_depth.unwrap_or(usize::MAX),
            min_samples_leaf: self.min_samples_leaf,
            min_hessian: 0.0,
            node_features: Some(per_node),
            threads: 1,
        };
        let features: Vec<usize> = (0..n_features).collect();
        let scale = 1.0 / self.n_trees as f64;
        let trees = crate::parallel::map(self.n_trees, self.threads, |t| {
            let mut rng = Rng::new(self.seed ^ (t as u64).wrapping_mul(0xA24B_AED4_963E_E407));
            let mut w = vec![0.0; n];
            if self.bootstrap {
                for _ in 0..n {
                    w[rng.below(n)] += 1.0;
                }
            } else {
                w.fill(1.0);
            }
            let mut rows: Vec<u32> = (0..n as u32).filter(|r| w[*r as usize] > 0.0).collect();
            let stats = Stats::Classes {
                y,
                w: &w,
                k: n_classes,
                entropy: self.split_quality == SplitQuality::Entropy,
            };
            let mut tree = grow(&binned, stats, &mut rows, &features, &params, &mut rng).tree;
            for node in &mut tree.nodes {
                if let Node::Leaf { values } = node {
                    values.iter_mut().for_each(|v| *v = f64::from((*v * scale) as f32));
                }
            }
            tree
        });
        Ok(Forest { trees, n_classes })
    }
}
