//! The one rule every parity check applies (linfa, tract, onnxruntime, wasmtime, the browser):
//! labels identical, numbers within [`TOLERANCE`] by [`scaled_difference`].

/// Largest accepted [`scaled_difference`] between two numbers: 1e-5 relative.
pub const TOLERANCE: f64 = 1e-5;

/// Magnitudes below this count as this in [`scaled_difference`], so near zero the tolerance
/// becomes absolute: `TOLERANCE * SCALE_FLOOR` = 1e-6.
pub const SCALE_FLOOR: f64 = 0.1;

/// `|a - b| / max(|a|, |b|, SCALE_FLOOR)`: the relative difference, with an absolute floor of
/// 1e-6 (at [`TOLERANCE`]) for numbers near zero, where an `f32` result cannot be held to a
/// relative bound. NaN when either number is NaN (and NaN is never within the tolerance).
pub fn scaled_difference(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(SCALE_FLOOR)
}

/// Whether two numbers agree under the rule (never for NaN).
pub fn agree(a: f64, b: f64) -> bool {
    scaled_difference(a, b) <= TOLERANCE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_above_the_floor_absolute_below() {
        assert!(scaled_difference(100.0, 100.0009) <= TOLERANCE);
        assert!(scaled_difference(100.0, 100.002) > TOLERANCE);
        assert!(scaled_difference(1e-9, 5e-7) <= TOLERANCE);
        assert!(scaled_difference(0.0, 2e-6) > TOLERANCE);
        assert!(scaled_difference(f64::NAN, 1.0).is_nan());
        assert!(!agree(f64::NAN, f64::NAN));
    }
}
