//! The contract of a generated model module (docs/MODULE_ABI.md), as a host checks it before the
//! first call: the export names ([`export`]), the ABI version, and a buffer layout that fits the manifest and
//! the module's memory. Hosts read the numbers through their own runtime (wasmtime, the browser's
//! `WebAssembly`) and hand them to [`Layout::check`].

use alloc::{format, string::String};

use crate::{Error, Result};

/// The ABI version this host code drives.
pub const ABI_VERSION: i32 = 1;

/// The names a module exports, one constant each (docs/MODULE_ABI.md): the generator writes
/// them, the hosts (the edge, the browser SDK) look them up.
pub mod export {
    /// The module's one memory.
    pub const MEMORY: &str = "memory";
    /// `() -> i32`: the ABI version ([`super::ABI_VERSION`]).
    pub const ABI_VERSION: &str = "wasmline_abi_version";
    /// `() -> i32`: features per input row.
    pub const N_FEATURES: &str = "n_features";
    /// `() -> i32`: classes (1 for a regressor).
    pub const N_OUTPUTS: &str = "n_outputs";
    /// `() -> i32`: `f64` slots per output row.
    pub const OUTPUT_STRIDE: &str = "output_stride";
    /// `() -> i32`: the rows one `predict` call takes at most.
    pub const MAX_ROWS: &str = "max_rows";
    /// `() -> i32`: the address of the input buffer.
    pub const INPUT_PTR: &str = "input_ptr";
    /// `() -> i32`: the address of the output buffer.
    pub const OUTPUT_PTR: &str = "output_ptr";
    /// `(n_rows: i32) -> status`.
    pub const PREDICT: &str = "predict";
    /// `() -> i32`: the row of the value behind status 2.
    pub const ERROR_ROW: &str = "error_row";
    /// `() -> i32`: the feature of the value behind status 2.
    pub const ERROR_FEATURE: &str = "error_feature";
    /// `() -> i32`: the address of the message for the last non-zero status.
    pub const LAST_ERROR_PTR: &str = "last_error_ptr";
    /// `() -> i32`: the length of that message in bytes.
    pub const LAST_ERROR_LEN: &str = "last_error_len";
}

/// The memory the module exports.
pub const MEMORY_EXPORT: &str = export::MEMORY;

/// How many of [`FUNCTION_EXPORTS`] a [`Layout`] is read from.
pub const LAYOUT_QUERIES: usize = 7;

/// The functions every module exports (all `() -> i32` but `predict`, which is `(i32) -> i32`):
/// first the [`LAYOUT_QUERIES`] queries a [`Layout`] holds, in its fields' order, then `predict`
/// and the queries of its errors.
pub const FUNCTION_EXPORTS: [&str; 12] = [
    export::ABI_VERSION,
    export::N_FEATURES,
    export::N_OUTPUTS,
    export::OUTPUT_STRIDE,
    export::MAX_ROWS,
    export::INPUT_PTR,
    export::OUTPUT_PTR,
    export::PREDICT,
    export::ERROR_ROW,
    export::ERROR_FEATURE,
    export::LAST_ERROR_PTR,
    export::LAST_ERROR_LEN,
];

/// The custom section holding the manifest JSON the module was compiled with.
pub const MANIFEST_SECTION: &str = "wasmline.manifest";

/// `predict` status: every row predicted.
pub const STATUS_OK: i32 = 0;
/// `predict` status: `n_rows` outside `0..=max_rows`.
pub const STATUS_BAD_ROW_COUNT: i32 = 1;
/// `predict` status: a feature value is NaN or infinite (see `error_row`, `error_feature`).
pub const STATUS_NON_FINITE: i32 = 2;

/// What a module's no-argument exports answered, and the size of its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub abi_version: i32,
    pub n_features: i32,
    pub n_outputs: i32,
    pub output_stride: i32,
    pub max_rows: i32,
    pub input_ptr: i32,
    pub output_ptr: i32,
    /// `memory.buffer.byteLength`.
    pub memory_bytes: u64,
}

impl Layout {
    /// Checks the module speaks this ABI, was compiled for a model with `n_features` inputs and
    /// `classes` classes (0 for a regressor), and that both buffers are 8-byte aligned, inside
    /// memory, and apart.
    pub fn check(&self, n_features: usize, classes: usize) -> Result<()> {
        let invalid = |m: String| Err(Error::InvalidModule(m));
        if self.abi_version != ABI_VERSION {
            return invalid(format!(
                "ABI version {} is not supported (this SDK drives version {ABI_VERSION})",
                self.abi_version
            ));
        }
        if self.n_features < 0 || self.n_features as usize != n_features {
            return invalid(format!(
                "the module takes {} features, the manifest lists {n_features}",
                self.n_features
            ));
        }
        let (outputs, stride) = if classes == 0 { (1, 1) } else { (classes, 1 + classes) };
        if self.n_outputs < 0 || self.n_outputs as usize != outputs {
            return invalid(format!(
                "the module has {} outputs, the manifest implies {outputs}",
                self.n_outputs
            ));
        }
        if self.output_stride < 0 || self.output_stride as usize != stride {
            return invalid(format!(
                "output stride is {}, expected {stride} for {outputs} outputs",
                self.output_stride
            ));
        }
        if self.max_rows < 1 {
            return invalid(format!("max_rows is {}", self.max_rows));
        }
        let input = self.buffer("input", self.input_ptr, self.input_len())?;
        let output = self.buffer("output", self.output_ptr, self.output_len())?;
        if input.start < output.end && output.start < input.end {
            return invalid(format!(
                "the input buffer {}..{} overlaps the output buffer {}..{}",
                input.start, input.end, output.start, output.end
            ));
        }
        Ok(())
    }

    /// `f64` slots of the input buffer (computed in u64: the constants come from an untrusted
    /// module, and `usize` is 32 bits on wasm32).
    pub fn input_len(&self) -> u64 {
        self.max_rows.max(0) as u64 * self.n_features.max(0) as u64
    }

    /// `f64` slots of the output buffer.
    pub fn output_len(&self) -> u64 {
        self.max_rows.max(0) as u64 * self.output_stride.max(0) as u64
    }

    /// The byte range of a buffer of `slots` f64 values at `ptr`, checked.
    fn buffer(&self, what: &str, ptr: i32, slots: u64) -> Result<core::ops::Range<u64>> {
        if ptr < 0 || ptr % 8 != 0 {
            return Err(Error::InvalidModule(format!(
                "the {what} buffer at {ptr} is not 8-byte aligned"
            )));
        }
        let start = ptr as u64;
        // At most 2^31 * 2^31 slots: 8 times that still fits in u64, but stay explicit.
        let end = slots
            .checked_mul(8)
            .and_then(|bytes| bytes.checked_add(start))
            .unwrap_or(u64::MAX);
        if end > self.memory_bytes {
            return Err(Error::InvalidModule(format!(
                "the {what} buffer {start}..{end} lies outside the module's {} bytes of memory",
                self.memory_bytes
            )));
        }
        Ok(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            abi_version: 1,
            n_features: 11,
            n_outputs: 2,
            output_stride: 3,
            max_rows: 1024,
            input_ptr: 1024,
            output_ptr: 1024 + 8 * 11 * 1024,
            memory_bytes: 4 * 65536,
        }
    }

    fn error(edit: impl FnOnce(&mut Layout)) -> String {
        let mut l = layout();
        edit(&mut l);
        l.check(11, 2).unwrap_err().to_string()
    }

    #[test]
    fn a_fitting_layout_passes() {
        layout().check(11, 2).unwrap();
        let regressor = Layout {
            n_outputs: 1,
            output_stride: 1,
            ..layout()
        };
        regressor.check(11, 0).unwrap();
        assert_eq!(layout().input_len(), 11 * 1024);
        let huge = Layout {
            max_rows: i32::MAX,
            ..layout()
        };
        assert!(
            huge.check(11, 2).is_err(),
            "buffers of 2^31 rows lie outside any module memory"
        );
        assert_eq!(layout().output_len(), 3 * 1024);
    }

    #[test]
    fn each_misfit_is_named() {
        assert!(error(|l| l.abi_version = 2).contains("ABI version 2 is not supported"));
        assert!(error(|l| l.n_features = 10).contains("takes 10 features, the manifest lists 11"));
        assert!(error(|l| l.n_outputs = 3).contains("3 outputs, the manifest implies 2"));
        assert!(error(|l| l.output_stride = 2).contains("output stride is 2, expected 3"));
        assert!(error(|l| l.max_rows = 0).contains("max_rows is 0"));
        assert!(error(|l| l.input_ptr = 1028).contains("input buffer at 1028 is not 8-byte aligned"));
        assert!(error(|l| l.memory_bytes = 65536).contains("outside the module's 65536 bytes"));
        assert!(error(|l| l.output_ptr = 2048).contains("overlaps"));
        assert!(error(|l| l.input_ptr = -8).contains("not 8-byte aligned"));
    }
}
