//! Where the module keeps things in its one memory.
//!
//! ```text
//! 0               the data segment: error messages, then (summing trees) the leaves' class
//!                 weights, n_outputs f32 per leaf
//! feature_keys    (trees) max_rows * n_features i32: the rows, scaled, as the trees compare
//!                 them (the keys of their f32 values: see `trees::keys::order_key`)
//! input           max_rows * n_features f64 (the caller writes rows here)
//! output          max_rows * output_stride f64 (predict writes here)
//! ```
//! Invariants: every region is 8-byte aligned, no two overlap, and the memory (whose size is
//! fixed: minimum = maximum) holds all of them, so no access the code makes can trap.

use super::MAX_ROWS;
use crate::ir::{Body, ModelIr, Node, Output, Tree};
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
            Body::Linear { .. } => Vec::new(),
        };
        let weights_at = if weights.is_empty() {
            messages.len() as u32
        } else {
            messages.resize(messages.len().next_multiple_of(8), 0);
            let at = messages.len() as u32;
            messages.extend(weights.iter().flat_map(|w| w.to_le_bytes()));
            at
        };

        let mut end = 0u64;
        let mut region = |bytes: u64| {
            let start = end.next_multiple_of(8);
            end = start + bytes;
            start
        };
        region(messages.len() as u64);
        // Only trees compare keys; a linear model's region is empty.
        let keys_per_row = match &ir.body {
            Body::Trees { .. } => n_features,
            Body::Linear { .. } => 0,
        };
        let feature_keys = region(4 * MAX_ROWS as u64 * keys_per_row);
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
        4 * self.n_features
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
                    Node::Leaf { .. } | Node::Split { .. } => 0,
                })
                .collect()
        })
        .collect();
    (rows, table)
}
