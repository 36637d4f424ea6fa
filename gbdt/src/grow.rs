//! Growing one tree on binned features from histograms: best-first (the leaf with the largest
//! gain splits next, up to a number of leaves, as LightGBM grows), missing values sent to the side
//! that gains most, categorical features split on category sets.
//!
//! Every sum runs over rows in ascending order inside one thread, and ties go to the lowest
//! feature, bin and node, so a tree is the same bytes whatever the number of threads.

use crate::bins::Binned;
use crate::model::{Node, Tree};
use crate::rng::Rng;

/// LightGBM's categorical defaults: one-vs-rest up to this many categories, else a sorted scan
/// of at most `MAX_CAT_THRESHOLD` categories, ordered by `G / (H + CAT_SMOOTH)` and penalised by
/// an extra L2 of `CAT_L2`.
const MAX_CAT_TO_ONEHOT: usize = 4;
const MAX_CAT_THRESHOLD: usize = 32;
const CAT_SMOOTH: f64 = 10.0;
const CAT_L2: f64 = 10.0;

/// Rows per histogram block (see `Grower::histogram`).
const BLOCK: usize = 1 << 14;

/// What each row adds to a histogram bin, and how a node's sums score.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stats<'a> {
    /// Gradient boosting: slots `[G, H, n]`; score `G^2 / (H + lambda)`; leaf `-G / (H + lambda)`.
    Newton { g: &'a [f64], h: &'a [f64], lambda: f64 },
    /// A forest's classification tree: slots `[w per class.., W, n]`; score minus the weighted
    /// Gini impurity (or entropy); leaf the class shares.
    Classes {
        y: &'a [usize],
        w: &'a [f64],
        k: usize,
        entropy: bool,
    },
}

impl Stats<'_> {
    fn stride(&self) -> usize {
        match self {
            Stats::Newton { .. } => 3,
            Stats::Classes { k, .. } => k + 2,
        }
    }

    fn count(&self, e: &[f64]) -> f64 {
        e[self.stride() - 1]
    }

    fn weight(&self, e: &[f64]) -> f64 {
        e[self.stride() - 2]
    }

    /// The score of a node with sums `e` (higher is better; a split gains `L + R - parent`).
    fn score(&self, e: &[f64], extra_l2: f64) -> f64 {
        match self {
            Stats::Newton { lambda, .. } => e[0] * e[0] / (e[1] + lambda + extra_l2),
            Stats::Classes { k, entropy, .. } => {
                let w = e[*k];
                if w <= 0.0 {
                    return 0.0;
                }
                if *entropy {
                    e[..*k].iter().filter(|c| **c > 0.0).map(|c| c * (c / w).ln()).sum()
                } else {
                    e[..*k].iter().map(|c| c * c).sum::<f64>() / w
                }
            }
        }
    }

    fn leaf(&self, e: &[f64]) -> Vec<f64> {
        match self {
            Stats::Newton { lambda, .. } => vec![-e[0] / (e[1] + lambda)],
            Stats::Classes { k, .. } => e[..*k].iter().map(|c| c / e[*k]).collect(),
        }
    }

    /// What `rows` add to a histogram, gathered into contiguous arrays once per node (and in the
    /// calling thread: worker threads allocate nothing).
    fn gather(&self, rows: &[u32]) -> Gathered {
        match *self {
            Stats::Newton { g, h, .. } => Gathered::Newton(
                rows.iter().map(|r| g[*r as usize]).collect(),
                rows.iter().map(|r| h[*r as usize]).collect(),
            ),
            Stats::Classes { y, w, .. } => Gathered::Classes(
                rows.iter().map(|r| y[*r as usize]).collect(),
                rows.iter().map(|r| w[*r as usize]).collect(),
            ),
        }
    }

    /// Adds `rows` (whose statistics are `gathered[at..]`) into the histograms of `features`
    /// (`range(f)`: where feature `f`'s bins are in `hist`).
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        binned: &Binned,
        rows: &[u32],
        gathered: &Gathered,
        at: usize,
        features: &[usize],
        hist: &mut [f64],
        range: impl Fn(usize) -> std::ops::Range<usize>,
    ) {
        let span = at..at + rows.len();
        match (gathered, *self) {
            (Gathered::Newton(og, oh), _) => {
                let (og, oh) = (&og[span.clone()], &oh[span]);
                for &f in features {
                    let column = &binned.columns[f];
                    let (bins, _) = hist[range(f)].as_chunks_mut::<3>();
                    for ((r, g), h) in rows.iter().zip(og).zip(oh) {
                        let e = &mut bins[column[*r as usize] as usize];
                        e[0] += g;
                        e[1] += h;
                        e[2] += 1.0;
                    }
                }
            }
            (Gathered::Classes(oy, ow), Stats::Classes { k, .. }) => {
                let (oy, ow) = (&oy[span.clone()], &ow[span]);
                let stride = k + 2;
                for &f in features {
                    let column = &binned.columns[f];
                    let bins = &mut hist[range(f)];
                    for ((r, c), w) in rows.iter().zip(oy).zip(ow) {
                        let b = column[*r as usize] as usize * stride;
                        let e = &mut bins[b..b + stride];
                        e[*c] += w;
                        e[k] += w;
                        e[k + 1] += 1.0;
                    }
                }
            }
            (Gathered::Classes(..), Stats::Newton { .. }) => unreachable!("gathered by the same stats"),
        }
    }

    /// The sums over `rows`.
    fn total(&self, rows: &[u32]) -> Vec<f64> {
        let mut e = vec![0.0; self.stride()];
        match *self {
            Stats::Newton { g, h, .. } => {
                for &r in rows {
                    e[0] += g[r as usize];
                    e[1] += h[r as usize];
                }
            }
            Stats::Classes { y, w, k, .. } => {
                for &r in rows {
                    e[y[r as usize]] += w[r as usize];
                    e[k] += w[r as usize];
                }
            }
        }
        let n = e.len() - 1;
        e[n] = rows.len() as f64;
        e
    }
}

/// A node's rows' statistics in row order (see `Stats::gather`).
#[derive(Debug)]
enum Gathered {
    Newton(Vec<f64>, Vec<f64>),
    Classes(Vec<usize>, Vec<f64>),
}

/// How a tree grows.
#[derive(Debug, Clone)]
pub(crate) struct GrowParams {
    pub max_leaves: usize,
    pub max_depth: usize,
    pub min_samples_leaf: usize,
    /// Newton only: a child's hessian sum must reach this (LightGBM's `min_sum_hessian_in_leaf`).
    pub min_hessian: f64,
    /// Features tried at each node (sampled per node, as scikit-learn's `max_features`); `None`
    /// tries every feature of the tree, and a child's histogram is its parent's minus its
    /// sibling's.
    pub node_features: Option<usize>,
    pub threads: usize,
}

/// Which bins go left at a split.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// Bins `0..=b`.
    UpTo(usize),
    /// These category bins.
    Set(Vec<usize>),
}

#[derive(Debug, Clone)]
struct Candidate {
    feature: usize,
    gain: f64,
    rule: Rule,
    missing_left: bool,
    left: Vec<f64>,
}

/// A grown tree, and where the rows it was grown on ended.
#[derive(Debug)]
pub(crate) struct Grown {
    pub tree: Tree,
    /// Per node: the split's feature and its left bins (a 256-bit set), for routing binned rows.
    routes: Vec<Option<(usize, [u64; 4])>>,
    /// `(leaf node, start, end)`: `rows[start..end]` reached that leaf.
    pub leaf_rows: Vec<(usize, usize, usize)>,
}

impl Grown {
    /// The leaf node a binned row reaches.
    pub(crate) fn leaf_of(&self, binned: &Binned, row: usize) -> usize {
        let mut i = 0;
        while let Some((feature, left)) = &self.routes[i] {
            let b = binned.columns[*feature][row] as usize;
            let goes_left = left[b / 64] >> (b % 64) & 1 == 1;
            i = match &self.tree.nodes[i] {
                Node::Numeric { left: l, right: r, .. } | Node::Categorical { left: l, right: r, .. } => {
                    if goes_left {
                        *l
                    } else {
                        *r
                    }
                }
                Node::Leaf { .. } => unreachable!("routes only splits"),
            };
        }
        i
    }
}

struct Open {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    total: Vec<f64>,
    hist: Option<Vec<f64>>,
    best: Option<Candidate>,
}

/// Grows a tree on `rows` (permuted in place: each leaf's rows end up contiguous) using the
/// features `features` (ascending).
pub(crate) fn grow(
    binned: &Binned,
    stats: Stats<'_>,
    rows: &mut [u32],
    features: &[usize],
    params: &GrowParams,
    rng: &mut Rng,
) -> Grown {
    let mut grower = Grower {
        binned,
        stats,
        features,
        params,
        stride: stats.stride(),
        scratch: Vec::with_capacity(rows.len()),
    };
    let mut nodes: Vec<Node> = vec![Node::Leaf { values: Vec::new() }];
    let mut routes: Vec<Option<(usize, [u64; 4])>> = vec![None];
    let root_total = stats.total(rows);
    let mut open = vec![grower.open(0, 0, rows.len(), 0, root_total, None, rows, rng)];
    let mut leaves = 1;
    while leaves < params.max_leaves {
        let Some(pick) = open
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.best.as_ref().map(|b| (i, b.gain, o.node)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)))
            .map(|(i, _, _)| i)
        else {
            break;
        };
        let parent = open.swap_remove(pick);
        let best = parent.best.as_ref().expect("picked a leaf with a split");
        let fb = &binned.features[best.feature];
        let mut left_bins = [0u64; 4];
        let mut set = |b: usize| left_bins[b / 64] |= 1 << (b % 64);
        match &best.rule {
            Rule::UpTo(b) => (0..=*b).for_each(&mut set),
            Rule::Set(bins) => bins.iter().copied().for_each(&mut set),
        }
        if best.missing_left {
            set(fb.missing_bin);
        }
        // Stable partition: left rows first, each side in its old order.
        let column = &binned.columns[best.feature];
        let span = &mut rows[parent.start..parent.end];
        grower.scratch.clear();
        let mut n_left = 0;
        for i in 0..span.len() {
            let r = span[i];
            let b = column[r as usize] as usize;
            if left_bins[b / 64] >> (b % 64) & 1 == 1 {
                span[n_left] = r;
                n_left += 1;
            } else {
                grower.scratch.push(r);
            }
        }
        span[n_left..].copy_from_slice(&grower.scratch);
        let mid = parent.start + n_left;

        let (l, r) = (nodes.len(), nodes.len() + 1);
        nodes[parent.node] = match &best.rule {
            Rule::UpTo(b) => Node::Numeric {
                feature: best.feature,
                threshold: fb.edges[*b],
                missing_left: best.missing_left,
                left: l,
                right: r,
            },
            Rule::Set(bins) => Node::Categorical {
                feature: best.feature,
                categories: bins.iter().map(|b| *b as u32).collect(),
                missing_left: best.missing_left,
                left: l,
                right: r,
            },
        };
        routes[parent.node] = Some((best.feature, left_bins));
        nodes.push(Node::Leaf { values: Vec::new() });
        nodes.push(Node::Leaf { values: Vec::new() });
        routes.extend([None, None]);
        leaves += 1;

        let left_total = best.left.clone();
        let right_total: Vec<f64> = parent.total.iter().zip(&left_total).map(|(t, a)| t - a).collect();
        let depth = parent.depth + 1;
        let children = [(l, parent.start, mid, left_total), (r, mid, parent.end, right_total)];
        match (&parent.hist, params.node_features) {
            (Some(parent_hist), None) => {
                // The smaller child is counted; the larger is its parent minus the smaller.
                let small = usize::from(mid - parent.start > parent.end - mid);
                let [a, b] = children;
                let (small_child, large_child) = if small == 0 { (a, b) } else { (b, a) };
                let small_hist = grower.histogram(&rows[small_child.1..small_child.2], features);
                let mut large_hist = parent_hist.clone();
                for &f in features {
                    let range = grower.range(f);
                    for (x, s) in large_hist[range.clone()].iter_mut().zip(&small_hist[range]) {
                        *x -= s;
                    }
                }
                for ((node, start, end, total), hist) in [(small_child, small_hist), (large_child, large_hist)] {
                    let o = grower.open(node, start, end, depth, total, Some(hist), rows, rng);
                    open.push(o);
                }
            }
            _ => {
                for (node, start, end, total) in children {
                    let o = grower.open(node, start, end, depth, total, None, rows, rng);
                    open.push(o);
                }
            }
        }
    }
    let mut leaf_rows = Vec::with_capacity(open.len());
    for o in open {
        nodes[o.node] = Node::Leaf {
            values: stats.leaf(&o.total),
        };
        leaf_rows.push((o.node, o.start, o.end));
    }
    leaf_rows.sort_unstable();
    Grown {
        tree: Tree { nodes },
        routes,
        leaf_rows,
    }
}

struct Grower<'a> {
    binned: &'a Binned,
    stats: Stats<'a>,
    features: &'a [usize],
    params: &'a GrowParams,
    stride: usize,
    scratch: Vec<u32>,
}

impl Grower<'_> {
    fn range(&self, f: usize) -> std::ops::Range<usize> {
        self.binned.offsets[f] * self.stride..self.binned.offsets[f + 1] * self.stride
    }

    /// Histograms of `features` over `rows` (other features' bins stay zero): the sum, in block
    /// order, of the histograms of blocks of [`BLOCK`] rows, which threads count in any order, so
    /// the result is the same on any number of threads.
    fn histogram(&self, rows: &[u32], features: &[usize]) -> Vec<f64> {
        let len = self.binned.total_bins * self.stride;
        let gathered = self.stats.gather(rows);
        let blocks = rows.len().div_ceil(BLOCK).max(1);
        if blocks == 1 {
            let mut hist = vec![0.0; len];
            self.fill_by_features(rows, &gathered, features, &mut hist);
            return hist;
        }
        let mut parts: Vec<Vec<f64>> = (0..blocks).map(|_| vec![0.0; len]).collect();
        let work: Vec<(usize, &mut Vec<f64>)> = parts.iter_mut().enumerate().collect();
        crate::parallel::for_each(work, self.params.threads, |(b, part)| {
            let at = b * BLOCK;
            let block = &rows[at..(at + BLOCK).min(rows.len())];
            self.stats
                .fill(self.binned, block, &gathered, at, features, part, |f| self.range(f));
        });
        let mut parts = parts.into_iter();
        let mut hist = parts.next().expect("two blocks or more");
        for part in parts {
            for &f in features {
                let range = self.range(f);
                for (a, b) in hist[range.clone()].iter_mut().zip(&part[range]) {
                    *a += b;
                }
            }
        }
        hist
    }

    /// One block's histograms, its features split over the threads (each feature is counted by
    /// one thread, in row order).
    fn fill_by_features(&self, rows: &[u32], gathered: &Gathered, features: &[usize], hist: &mut [f64]) {
        let threads = self.params.threads.min(features.len());
        if threads <= 1 || rows.len() * features.len() < 1 << 15 {
            self.stats
                .fill(self.binned, rows, gathered, 0, features, hist, |f| self.range(f));
            return;
        }
        // Contiguous groups of features, each with the part of `hist` its features' bins are in.
        let per = features.len().div_ceil(threads);
        let mut groups: Vec<(&[usize], usize, &mut [f64])> = Vec::with_capacity(threads);
        let mut rest: &mut [f64] = hist;
        let mut at = 0;
        for group in features.chunks(per) {
            let start = self.range(group[0]).start;
            let end = self.range(group[group.len() - 1]).end;
            let (_, tail) = rest.split_at_mut(start - at);
            let (mine, tail) = tail.split_at_mut(end - start);
            groups.push((group, start, mine));
            rest = tail;
            at = end;
        }
        crate::parallel::for_each(groups, threads, |(group, base, slice)| {
            self.stats.fill(self.binned, rows, gathered, 0, group, slice, |f| {
                let r = self.range(f);
                r.start - base..r.end - base
            })
        });
    }

    /// A new leaf over `rows[start..end]`, with its best split when it may split.
    #[allow(clippy::too_many_arguments)]
    fn open(
        &self,
        node: usize,
        start: usize,
        end: usize,
        depth: usize,
        total: Vec<f64>,
        hist: Option<Vec<f64>>,
        rows: &[u32],
        rng: &mut Rng,
    ) -> Open {
        let n = end - start;
        let splittable = depth < self.params.max_depth && n >= 2 * self.params.min_samples_leaf.max(1);
        if !splittable {
            return Open {
                node,
                start,
                end,
                depth,
                total,
                hist: None,
                best: None,
            };
        }
        let node_rows = &rows[start..end];
        let (hist, best) = match self.params.node_features {
            None => {
                let hist = hist.unwrap_or_else(|| self.histogram(node_rows, self.features));
                let best = self.best_split(&hist, &total, self.features);
                (Some(hist), best)
            }
            Some(k) => {
                // Sampled features first; past them, one more at a time until a split is found
                // (scikit-learn's rule).
                let mut order = self.features.to_vec();
                rng.shuffle(&mut order);
                let (first, rest) = order.split_at(k.min(order.len()));
                let mut first = first.to_vec();
                first.sort_unstable();
                let hist = self.histogram(node_rows, &first);
                let mut best = self.best_split(&hist, &total, &first);
                for &f in rest {
                    if best.is_some() {
                        break;
                    }
                    let hist = self.histogram(node_rows, &[f]);
                    best = self.best_split(&hist, &total, &[f]);
                }
                (None, best)
            }
        };
        Open {
            node,
            start,
            end,
            depth,
            total,
            hist: if best.is_some() { hist } else { None },
            best,
        }
    }

    fn best_split(&self, hist: &[f64], total: &[f64], features: &[usize]) -> Option<Candidate> {
        let parent = self.stats.score(total, 0.0);
        let mut best: Option<Candidate> = None;
        for &f in features {
            let h = &hist[self.range(f)];
            let fb = &self.binned.features[f];
            let found = if fb.categorical {
                self.categorical_split(f, h, total)
            } else {
                self.numeric_split(f, h, total, parent)
            };
            if let Some(c) = found
                && best.as_ref().is_none_or(|b| c.gain > b.gain)
            {
                best = Some(c);
            }
        }
        best
    }

    /// The gain of sending `left` left (the rest of `total` right), if both sides may be leaves.
    fn gain(&self, left: &[f64], total: &[f64], parent: f64, extra_l2: f64, right: &mut [f64]) -> Option<f64> {
        for ((r, t), l) in right.iter_mut().zip(total).zip(left) {
            *r = t - l;
        }
        let min = self.params.min_samples_leaf.max(1) as f64;
        if self.stats.count(left) < min || self.stats.count(right) < min {
            return None;
        }
        if let Stats::Newton { .. } = self.stats
            && (self.stats.weight(left) < self.params.min_hessian || self.stats.weight(right) < self.params.min_hessian)
        {
            return None;
        }
        let gain = self.stats.score(left, extra_l2) + self.stats.score(right, extra_l2) - parent;
        // Rounding can leave a useless split a gain of a few ulps.
        (gain > 1e-10 * parent.abs().max(1e-10)).then_some(gain)
    }

    fn numeric_split(&self, f: usize, h: &[f64], total: &[f64], parent: f64) -> Option<Candidate> {
        if let Stats::Newton { lambda, .. } = self.stats {
            return self.numeric_newton(f, h, total, parent, lambda);
        }
        let s = self.stride;
        let fb = &self.binned.features[f];
        let missing = &h[fb.missing_bin * s..(fb.missing_bin + 1) * s];
        let has_missing = self.stats.count(missing) > 0.0;
        let mut cum = vec![0.0; s];
        let mut with_missing = vec![0.0; s];
        let mut right = vec![0.0; s];
        let mut best: Option<Candidate> = None;
        for b in 0..fb.value_bins.saturating_sub(1) {
            for (c, v) in cum.iter_mut().zip(&h[b * s..(b + 1) * s]) {
                *c += v;
            }
            if self.stats.count(&cum) == 0.0 {
                continue;
            }
            if let Some(gain) = self.gain(&cum, total, parent, 0.0, &mut right)
                && best.as_ref().is_none_or(|c| gain > c.gain)
            {
                // Without missing values here, a missing value follows the larger side.
                let missing_left = !has_missing && self.stats.count(&cum) >= self.stats.count(&right);
                best = Some(Candidate {
                    feature: f,
                    gain,
                    rule: Rule::UpTo(b),
                    missing_left,
                    left: cum.clone(),
                });
            }
            if has_missing {
                for ((w, c), m) in with_missing.iter_mut().zip(&cum).zip(missing) {
                    *w = c + m;
                }
                if let Some(gain) = self.gain(&with_missing, total, parent, 0.0, &mut right)
                    && best.as_ref().is_none_or(|c| gain > c.gain)
                {
                    best = Some(Candidate {
                        feature: f,
                        gain,
                        rule: Rule::UpTo(b),
                        missing_left: true,
                        left: with_missing.clone(),
                    });
                }
            }
        }
        best
    }

    /// [`Grower::numeric_split`] for boosting, in scalars: the same gains, the same order, the
    /// same ties as the general loop.
    fn numeric_newton(&self, f: usize, h: &[f64], total: &[f64], parent: f64, lambda: f64) -> Option<Candidate> {
        let fb = &self.binned.features[f];
        let (bins, _) = h.as_chunks::<3>();
        let [mg, mh, mn] = bins[fb.missing_bin];
        let has_missing = mn > 0.0;
        let (tg, th, tn) = (total[0], total[1], total[2]);
        let min_n = self.params.min_samples_leaf.max(1) as f64;
        let min_h = self.params.min_hessian;
        let floor = 1e-10 * parent.abs().max(1e-10);
        let gain = |lg: f64, lh: f64, ln: f64| -> Option<f64> {
            let (rg, rh, rn) = (tg - lg, th - lh, tn - ln);
            if ln < min_n || rn < min_n || lh < min_h || rh < min_h {
                return None;
            }
            let gain = lg * lg / (lh + lambda) + rg * rg / (rh + lambda) - parent;
            (gain > floor).then_some(gain)
        };
        let (mut cg, mut ch, mut cn) = (0.0, 0.0, 0.0);
        let mut best: Option<(f64, usize, bool, [f64; 3])> = None;
        for (b, [g, hh, n]) in bins.iter().enumerate().take(fb.value_bins.saturating_sub(1)) {
            cg += g;
            ch += hh;
            cn += n;
            if cn == 0.0 {
                continue;
            }
            if let Some(gain) = gain(cg, ch, cn)
                && best.is_none_or(|c| gain > c.0)
            {
                let missing_left = !has_missing && cn >= tn - cn;
                best = Some((gain, b, missing_left, [cg, ch, cn]));
            }
            if has_missing
                && let Some(gain) = gain(cg + mg, ch + mh, cn + mn)
                && best.is_none_or(|c| gain > c.0)
            {
                best = Some((gain, b, true, [cg + mg, ch + mh, cn + mn]));
            }
        }
        best.map(|(gain, b, missing_left, left)| Candidate {
            feature: f,
            gain,
            rule: Rule::UpTo(b),
            missing_left,
            left: left.to_vec(),
        })
    }

    fn categorical_split(&self, f: usize, h: &[f64], total: &[f64]) -> Option<Candidate> {
        let Stats::Newton { .. } = self.stats else {
            // Forests read categorical codes as numbers.
            return None;
        };
        let s = self.stride;
        let fb = &self.binned.features[f];
        let bin = |b: usize| &h[b * s..(b + 1) * s];
        let missing = bin(fb.missing_bin);
        let has_missing = self.stats.count(missing) > 0.0;
        let used: Vec<usize> = (0..fb.value_bins).filter(|b| self.stats.count(bin(*b)) > 0.0).collect();
        if used.len() + usize::from(has_missing) < 2 {
            return None;
        }
        // The sets to try, each as its bins in order.
        let mut sets: Vec<Vec<usize>> = Vec::new();
        let extra_l2;
        if used.len() <= MAX_CAT_TO_ONEHOT {
            extra_l2 = 0.0;
            sets.extend(used.iter().map(|b| vec![*b]));
        } else {
            extra_l2 = CAT_L2;
            let min = self.params.min_samples_leaf.max(1) as f64;
            let mut sorted: Vec<usize> = used
                .iter()
                .copied()
                .filter(|b| self.stats.count(bin(*b)) >= min)
                .collect();
            let ratio = |b: usize| {
                let e = bin(b);
                e[0] / (e[1] + CAT_SMOOTH)
            };
            sorted.sort_by(|a, b| ratio(*a).total_cmp(&ratio(*b)).then(a.cmp(b)));
            let most = MAX_CAT_THRESHOLD.min(sorted.len().saturating_sub(1).max(1));
            for i in 1..=most.min(sorted.len()) {
                sets.push(sorted[..i].to_vec());
                sets.push(sorted[sorted.len() - i..].to_vec());
            }
        }
        let parent = self.stats.score(total, extra_l2);
        let mut right = vec![0.0; s];
        let mut best: Option<Candidate> = None;
        for set in sets {
            let mut left = vec![0.0; s];
            for b in &set {
                for (l, v) in left.iter_mut().zip(bin(*b)) {
                    *l += v;
                }
            }
            let mut options = vec![(left.clone(), false)];
            if has_missing {
                let with: Vec<f64> = left.iter().zip(missing).map(|(l, m)| l + m).collect();
                options.push((with, true));
            }
            for (left, missing_left) in options {
                if let Some(gain) = self.gain(&left, total, parent, extra_l2, &mut right)
                    && best.as_ref().is_none_or(|c| gain > c.gain)
                {
                    let missing_left =
                        missing_left || (!has_missing && self.stats.count(&left) >= self.stats.count(&right));
                    let mut bins = set.clone();
                    bins.sort_unstable();
                    best = Some(Candidate {
                        feature: f,
                        gain,
                        rule: Rule::Set(bins),
                        missing_left,
                        left,
                    });
                }
            }
        }
        best
    }
}
