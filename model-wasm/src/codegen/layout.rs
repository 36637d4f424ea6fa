//! Where the module keeps things in its one memory.
//!
//! ```text
//! 0               the data segment: error messages, then (summing trees) the leaves' class
//!                 weights, n_outputs f32 per leaf, then (categorical splits of more than 32
//!                 categories) their category bitsets, u32 words
//! feature_keys    (trees) max_rows * keys_row_bytes: per row, one key slot per feature and
//!                 per other way a split reads a feature ([`KeyKind`]): the rows, scaled, as
//!                 the trees compare them (the keys of their f32 values, i32, or of their f64
//!                 values, i64: see `trees::keys::order_key`), and category indices (i32)
//! input           max_rows * n_features f64 (the caller writes rows here)
//! output          max_rows * output_stride f64 (predict writes here)
//! ```
//! Invariants: every region is 8-byte aligned, no two overlap, and the memory (whose size is
//! fixed: minimum = maximum) holds all of them, so no access the code makes can trap.

use super::MAX_ROWS;
use crate::ir::{Body, Cast, Missing, ModelIr, Node, Output, Tree};
use crate::{Error, Result};

/// The message for status 1.
const BAD_ROWS: &str = "n_rows is outside 0..=max_rows";
/// The message for status 2.
const NOT_FINITE: &str = "a feature value is NaN or infinite (see error_row and error_feature)";

/// The largest memory a module may ask for: 2 GiB, which every engine grants.
const MAX_MEMORY_BYTES: u64 = 1 << 31;
const PAGE_BYTES: u64 = 1 << 16;

/// A UTF-8 message in the data segment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Message {
    pub ptr: u32,
    pub len: u32,
}

#[derive(Debug)]
pub(super) struct Layout {
    pub n_features: u32,
    /// f64 slots per output row.
    pub output_stride: u32,
    /// The data segment's bytes, placed at address 0.
    pub data: Vec<u8>,
    pub bad_rows: Message,
    pub not_finite: Message,
    /// Address of the leaves' class weights (summing trees): row `r` holds `n_outputs` f32.
    pub weights: u32,
    pub feature_keys: u32,
    /// What each key slot of a row holds: slot `i < n_features` is feature `i`'s plain key,
    /// the others follow in order.
    pub key_slots: Vec<(u32, KeyKind)>,
    /// Bytes of one key: 4 (`f32` comparisons, `i32` keys) or 8 (`f64`, `i64` keys).
    pub key_bytes: u32,
    /// Bytes of one row of keys: at least `key_bytes` per slot, rounded to the input row's
    /// size times a power of two (so a row's keys offset is its input offset shifted).
    keys_row_bytes: u32,
    /// Per tree, the address of each categorical split's bitset (0 for the splits whose set
    /// fits one constant, and for the other nodes).
    pub category_sets: Vec<Vec<u32>>,
    pub input: u32,
    pub output: u32,
    /// Memory size in 64 KiB pages.
    pub pages: u64,
}

impl Layout {
    pub(super) fn new(ir: &ModelIr) -> Result<Self> {
        let n_features = ir.n_features() as u64;
        let output_stride = match ir.output {
            Output::Classification { .. } => 1 + ir.n_outputs() as u64,
            Output::Regression { .. } => 1,
        };
        let mut messages = Vec::new();
        let mut message = |text: &str| {
            let ptr = messages.len() as u32;
            messages.extend_from_slice(text.as_bytes());
            Message {
                ptr,
                len: text.len() as u32,
            }
        };
        let bad_rows = message(BAD_ROWS);
        let not_finite = message(NOT_FINITE);
        let weights = match &ir.body {
            Body::Trees { trees, .. } => weight_table(trees).1,
            Body::Linear { .. } | Body::Boosted { .. } => Vec::new(),
        };
        let weights_at = if weights.is_empty() {
            messages.len() as u32
        } else {
            messages.resize(messages.len().next_multiple_of(8), 0);
            let at = messages.len() as u32;
            messages.extend(weights.iter().flat_map(|w| w.to_le_bytes()));
            at
        };
        let trees = ir.trees();
        messages.resize(messages.len().next_multiple_of(8), 0);
        let sets_at = messages.len() as u32;
        let (category_sets, words) = category_table(trees);
        messages.extend(words.iter().flat_map(|w| w.to_le_bytes()));
        let category_sets = category_sets
            .into_iter()
            .map(|tree| tree.into_iter().map(|a| a.map_or(0, |a| sets_at + a)).collect())
            .collect();
        let key_slots = key_slots(n_features as u32, trees);
        let key_bytes = if trees
            .iter()
            .flat_map(|t| &t.nodes)
            .any(|n| matches!(n, Node::SplitLe { .. }))
        {
            8
        } else {
            4
        };
        // Input rows are 8 bytes a feature; key rows `input * 2^j` for the least `j` (maybe
        // negative) that holds every slot.
        let needed = u64::from(key_bytes) * key_slots.len() as u64;
        let mut keys_row_bytes = 8 * n_features;
        while keys_row_bytes / 2 >= needed {
            keys_row_bytes /= 2;
        }
        while keys_row_bytes < needed {
            keys_row_bytes *= 2;
        }

        let mut end = 0u64;
        let mut region = |bytes: u64| {
            let start = end.next_multiple_of(8);
            end = start + bytes;
            start
        };
        region(messages.len() as u64);
        // Only trees compare keys; a linear model's region is empty.
        let keys_row_bytes = match &ir.body {
            Body::Trees { .. } | Body::Boosted { .. } => keys_row_bytes,
            Body::Linear { .. } => 0,
        };
        let feature_keys = region(MAX_ROWS as u64 * keys_row_bytes);
        let input = region(8 * MAX_ROWS as u64 * n_features);
        let output = region(8 * MAX_ROWS as u64 * output_stride);
        if end > MAX_MEMORY_BYTES {
            return Err(Error::InvalidModel(format!(
                "{n_features} features need {end} bytes of buffers for {MAX_ROWS} rows, over the \
                 {MAX_MEMORY_BYTES} a module may use"
            )));
        }
        Ok(Layout {
            n_features: n_features as u32,
            output_stride: output_stride as u32,
            data: messages,
            bad_rows,
            not_finite,
            weights: weights_at,
            feature_keys: feature_keys as u32,
            key_slots,
            key_bytes,
            keys_row_bytes: keys_row_bytes as u32,
            category_sets,
            input: input as u32,
            output: output as u32,
            pages: end.div_ceil(PAGE_BYTES),
        })
    }

    /// Bytes of one input row.
    pub(super) fn input_row_bytes(&self) -> u32 {
        8 * self.n_features
    }

    /// Bytes of one row of keys (trees).
    pub(super) fn keys_row_bytes(&self) -> u32 {
        self.keys_row_bytes
    }

    /// The key slot holding `feature` read as `kind`.
    pub(super) fn key_slot(&self, feature: u32, kind: KeyKind) -> u32 {
        if kind == KeyKind::Plain {
            return feature;
        }
        let at = self.key_slots[self.n_features as usize..]
            .binary_search(&(feature, kind))
            .expect("every split's slot is in the layout");
        self.n_features + at as u32
    }

    /// The address of the key in `slot`, from a row's keys offset.
    pub(super) fn key_address(&self, slot: u32) -> u32 {
        self.feature_keys + self.key_bytes * slot
    }

    /// Bytes of one output row.
    pub(super) fn output_row_bytes(&self) -> u32 {
        8 * self.output_stride
    }
}

/// The class weights of every [`Node::Weights`] leaf, as one table: trees in order, nodes in
/// index order, one row of `n_classes` weights per leaf. Returns each node's row (0 for the
/// nodes that are not such leaves) per tree, and the table (placed in the data segment).
pub(super) fn weight_table(trees: &[Tree]) -> (Vec<Vec<u32>>, Vec<f32>) {
    let mut table = Vec::new();
    let mut next = 0u32;
    let rows = trees
        .iter()
        .map(|tree| {
            tree.nodes
                .iter()
                .map(|node| match node {
                    Node::Weights { weights } => {
                        table.extend_from_slice(weights);
                        next += 1;
                        next - 1
                    }
                    _ => 0,
                })
                .collect()
        })
        .collect();
    (rows, table)
}

/// How a split reads its feature's value from a row's keys: one slot per feature and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum KeyKind {
    /// The order key (the input check refuses a missing value).
    Plain,
    /// The order key; a missing value is the least key, so every `key < t` sends it left.
    MissingLow,
    /// The order key; a missing value is the greatest key, so it goes right.
    MissingHigh,
    /// The order key; a missing value is the key of 0.0.
    MissingZero,
    /// The order key; a missing value and `|x| <= ZERO_THRESHOLD` are the least key.
    ZeroLow,
    /// The order key; a missing value and `|x| <= ZERO_THRESHOLD` are the greatest key.
    ZeroHigh,
    /// A category index (`i32`): the category as `cast` reads it, negative for none (-1), and a
    /// missing value as `missing` says: -2 ([`Missing::Left`], tested apart), category 0
    /// ([`Missing::AsZero`]) or -1 (right).
    Category { cast: Cast, missing: Missing },
}

impl KeyKind {
    /// The feature a split tests and how it reads it; `None` for leaves.
    pub(super) fn of(node: &Node) -> Option<(u32, KeyKind)> {
        let numeric = |missing: Missing| match missing {
            Missing::Refuse => KeyKind::Plain,
            Missing::Left => KeyKind::MissingLow,
            Missing::Right => KeyKind::MissingHigh,
            Missing::AsZero => KeyKind::MissingZero,
            Missing::ZeroLeft => KeyKind::ZeroLow,
            Missing::ZeroRight => KeyKind::ZeroHigh,
        };
        match node {
            Node::Split { feature, missing, .. } | Node::SplitLe { feature, missing, .. } => {
                Some((*feature, numeric(*missing)))
            }
            Node::SplitIn {
                feature, cast, missing, ..
            } => {
                let missing = match missing {
                    Missing::Left => Missing::Left,
                    Missing::AsZero => Missing::AsZero,
                    // Refused values never come; the others have no category: right.
                    _ => Missing::Right,
                };
                Some((*feature, KeyKind::Category { cast: *cast, missing }))
            }
            Node::Leaf { .. } | Node::Weights { .. } => None,
        }
    }
}

/// The key slots: every feature's plain key, then every other (feature, kind) a split uses.
fn key_slots(n_features: u32, trees: &[Tree]) -> Vec<(u32, KeyKind)> {
    let mut others: Vec<(u32, KeyKind)> = trees
        .iter()
        .flat_map(|t| &t.nodes)
        .filter_map(KeyKind::of)
        .filter(|(_, kind)| *kind != KeyKind::Plain)
        .collect();
    others.sort();
    others.dedup();
    (0..n_features).map(|f| (f, KeyKind::Plain)).chain(others).collect()
}

/// The number of `u32` words of a category set's bitset: one bit per category up to its largest.
pub(super) fn set_words(categories: &[u32]) -> u32 {
    categories.last().map_or(0, |last| last / 32 + 1)
}

/// The bitsets of the categorical splits whose sets do not fit one `u32` constant (a category
/// of 32 or more), as one table: per tree, each node's offset in it (`None` for the others),
/// and the words.
fn category_table(trees: &[Tree]) -> (Vec<Vec<Option<u32>>>, Vec<u32>) {
    let mut words = Vec::new();
    let offsets = trees
        .iter()
        .map(|tree| {
            tree.nodes
                .iter()
                .map(|node| match node {
                    Node::SplitIn { categories, .. } if set_words(categories) > 1 => {
                        let at = 4 * words.len() as u32;
                        let start = words.len();
                        words.resize(start + set_words(categories) as usize, 0u32);
                        for c in categories {
                            words[start + (c / 32) as usize] |= 1 << (c % 32);
                        }
                        Some(at)
                    }
                    _ => None,
                })
                .collect()
        })
        .collect();
    (offsets, words)
}

/// Which slots of [`key_slots`] the splits use.
pub(super) fn used_slots(layout: &Layout, trees: &[Tree]) -> Vec<bool> {
    let mut used = vec![false; layout.key_slots.len()];
    for (feature, kind) in trees.iter().flat_map(|t| &t.nodes).filter_map(KeyKind::of) {
        used[layout.key_slot(feature, kind) as usize] = true;
    }
    used
}
