//! Decimal text to `f64`, as `str::parse::<f64>` reads it: JSON numbers, and category text
//! matched to numbers.
//!
//! With the `host-decimal` feature on wasm32 (the browser SDK) the grammar is checked here and
//! the digits' conversion is the host's correctly rounded one, JavaScript's `Number`, imported as
//! `wasmline.decimal_to_f64`: core's float parser (a 10 KB table of powers of five and about 7 KB
//! of code) is then not linked. Everywhere else it is `str::parse`.

/// `text.parse::<f64>().ok()`.
pub fn parse_f64(text: &str) -> Option<f64> {
    #[cfg(all(feature = "host-decimal", target_arch = "wasm32"))]
    return host::parse(text);
    #[cfg(not(all(feature = "host-decimal", target_arch = "wasm32")))]
    return text.parse().ok();
}

/// What `str::parse::<f64>` makes of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(all(feature = "host-decimal", target_arch = "wasm32")), allow(dead_code))]
enum Decimal {
    /// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`: the same text in
    /// JavaScript's `Number` gives the same `f64`.
    Number,
    Infinity {
        negative: bool,
    },
    NaN,
    Invalid,
}

/// Rust's grammar for `f64` (`core::num::dec2flt`): an optional sign, then `inf`, `infinity` or
/// `nan` in any case, or a decimal number.
#[cfg_attr(not(all(feature = "host-decimal", target_arch = "wasm32")), allow(dead_code))]
fn classify(text: &str) -> Decimal {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Decimal::Infinity { negative };
    }
    if rest.eq_ignore_ascii_case("nan") {
        return Decimal::NaN;
    }
    let bytes = rest.as_bytes();
    let digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let whole = digits(0);
    let mut at = whole;
    let mut fraction = 0;
    if bytes.get(at) == Some(&b'.') {
        fraction = digits(at + 1);
        at += 1 + fraction;
    }
    if whole + fraction == 0 {
        return Decimal::Invalid;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 {
            return Decimal::Invalid;
        }
        at += exponent;
    }
    if at == bytes.len() {
        Decimal::Number
    } else {
        Decimal::Invalid
    }
}

#[cfg(all(feature = "host-decimal", target_arch = "wasm32"))]
#[allow(unsafe_code)]
mod host {
    use super::{Decimal, classify};

    #[link(wasm_import_module = "wasmline")]
    unsafe extern "C" {
        /// JavaScript's `Number` of the UTF-8 text at `ptr` (given only text `classify` took for a
        /// number, which `Number` reads as Rust does, correctly rounded).
        safe fn decimal_to_f64(ptr: *const u8, len: usize) -> f64;
    }

    pub(super) fn parse(text: &str) -> Option<f64> {
        match classify(text) {
            Decimal::Number => Some(decimal_to_f64(text.as_ptr(), text.len())),
            Decimal::Infinity { negative: false } => Some(f64::INFINITY),
            Decimal::Infinity { negative: true } => Some(f64::NEG_INFINITY),
            Decimal::NaN => Some(f64::NAN),
            Decimal::Invalid => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `classify` takes exactly the texts `str::parse::<f64>` takes, and sorts them as it does.
    #[test]
    fn the_grammar_is_rusts() {
        let pieces = [
            "", "+", "-", "0", "7", "12", ".", "e", "E", "+5", "-3", "inf", "INF", "nan", "x", " ", "_",
        ];
        let mut texts = Vec::new();
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    texts.push(format!("{a}{b}{c}"));
                }
            }
        }
        texts.extend(
            [
                "Infinity",
                "-infinity",
                "+NaN",
                "infinit",
                "1e400",
                "-1e-400",
                "1.",
                ".5",
                "1e",
                "1e+",
                "0x10",
                "1_0",
                " 1",
            ]
            .map(String::from),
        );
        for text in &texts {
            let parsed = text.parse::<f64>();
            let expected = match parsed {
                Err(_) => Decimal::Invalid,
                Ok(v) if v.is_nan() => Decimal::NaN,
                Ok(v) if v.is_infinite() && !text.bytes().any(|b| b.is_ascii_digit()) => {
                    Decimal::Infinity { negative: v < 0.0 }
                }
                Ok(_) => Decimal::Number,
            };
            assert_eq!(classify(text), expected, "{text:?}");
        }
    }
}
