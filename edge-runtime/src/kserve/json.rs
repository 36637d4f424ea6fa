//! The request body's JSON, with the number tokens JSON lacks: Python's `json` module and
//! tritonclient (through python-rapidjson) write a NaN or infinite `float` as a bare `NaN`,
//! `Infinity` or `-Infinity`, which serde_json (rightly, for standard JSON) refuses.
//!
//! [`quote_non_finite`] turns those tokens into the strings `"NaN"`, `"Infinity"` and
//! `"-Infinity"` where they stand in an input's `data` (`inputs[i].data`, at any depth of
//! arrays), which the tensor reader takes as those numbers. Anywhere else such a token is
//! refused with its line and column; a body without any is passed on as it is. The rewrite adds
//! two bytes to a token of three or more, so its output is at most 5/3 of the (size-limited)
//! body.

use std::borrow::Cow;

use super::error::ApiError;

/// Deeper bodies are left to serde_json, which refuses them (its recursion limit is 128).
const MAX_DEPTH: usize = 256;

/// Where the scanner is: inside an object (with the key of the member being read) or an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Object { key: Key, expect_key: bool },
    Array,
}

/// The object keys the rewrite cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Inputs,
    Data,
    Other,
}

/// The non-finite tokens and the string each becomes (`-NaN` is not written by Python, but by
/// some C writers; a NaN's sign means nothing).
const TOKENS: [(&[u8], &[u8]); 4] = [
    (b"NaN", b"\"NaN\""),
    (b"-NaN", b"\"NaN\""),
    (b"Infinity", b"\"Infinity\""),
    (b"-Infinity", b"\"-Infinity\""),
];

/// `body` with every bare `NaN`, `-NaN`, `Infinity` and `-Infinity` in an input's `data` quoted
/// (see the module docs); an error naming the line and column of one found elsewhere.
pub(super) fn quote_non_finite(body: &[u8]) -> Result<Cow<'_, [u8]>, ApiError> {
    // The common case: no byte that could start such a token outside a string.
    if !body.iter().any(|&b| b == b'N' || b == b'I') {
        return Ok(Cow::Borrowed(body));
    }
    let mut out: Option<Vec<u8>> = None;
    // Bytes of `body` before `copied` are in `out` (when it exists).
    let mut copied = 0;
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let end = string_end(body, i);
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut()
                    && *expect_key
                {
                    *key = match &body[i + 1..end.saturating_sub(1).max(i + 1)] {
                        b"inputs" => Key::Inputs,
                        b"data" => Key::Data,
                        _ => Key::Other,
                    };
                    *expect_key = false;
                }
                i = end;
                continue;
            }
            b'{' | b'[' if stack.len() >= MAX_DEPTH => break,
            b'{' => stack.push(Frame::Object {
                key: Key::Other,
                expect_key: true,
            }),
            b'[' => stack.push(Frame::Array),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = true;
                }
            }
            b'N' | b'I' | b'-' => {
                if let Some((token, quoted)) = TOKENS.iter().find(|(t, _)| starts_token(&body[i..], t)) {
                    if !in_data(&stack) {
                        return Err(ApiError::bad_request(format!(
                            "malformed JSON: {} at {}: NaN and Infinity are accepted only in an input's data",
                            String::from_utf8_lossy(token),
                            position(body, i)
                        )));
                    }
                    let out = out.get_or_insert_with(|| Vec::with_capacity(body.len() + body.len() / 8));
                    out.extend_from_slice(&body[copied..i]);
                    out.extend_from_slice(quoted);
                    i += token.len();
                    copied = i;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(match out {
        None => Cow::Borrowed(body),
        Some(mut out) => {
            out.extend_from_slice(&body[copied..]);
            Cow::Owned(out)
        }
    })
}

/// The index just past the string that starts at `body[start]` (a `"`), or the body's end.
fn string_end(body: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    body.len()
}

/// Whether `rest` starts with `token` and the token ends there (`NaNa` is no `NaN`).
fn starts_token(rest: &[u8], token: &[u8]) -> bool {
    rest.starts_with(token)
        && rest
            .get(token.len())
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
}

/// Whether a value at this point is an element of an input's data: the top-level object's
/// `inputs`, one of its objects' `data`, then only arrays.
fn in_data(stack: &[Frame]) -> bool {
    matches!(
        stack,
        [
            Frame::Object { key: Key::Inputs, .. },
            Frame::Array,
            Frame::Object { key: Key::Data, .. },
            rest @ ..
        ] if rest.iter().all(|f| *f == Frame::Array)
    )
}

/// `line L column C` of byte `i`, both from 1, as serde_json counts them.
fn position(body: &[u8], i: usize) -> String {
    let before = &body[..i];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = i - before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
    format!("line {line} column {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(body: &str) -> String {
        String::from_utf8(quote_non_finite(body.as_bytes()).unwrap().into_owned()).unwrap()
    }

    fn refused(body: &str) -> String {
        quote_non_finite(body.as_bytes()).unwrap_err().message
    }

    #[test]
    fn tokens_in_data_become_strings_and_nothing_else_changes() {
        let body = r#"{"id": "NaN-1", "inputs": [{"name": "INPUT", "shape": [2, 2], "datatype": "FP64",
            "data": [[NaN, -Infinity], [Infinity, -NaN]]}, {"data": NaN}]}"#;
        assert_eq!(
            quoted(body),
            r#"{"id": "NaN-1", "inputs": [{"name": "INPUT", "shape": [2, 2], "datatype": "FP64",
            "data": [["NaN", "-Infinity"], ["Infinity", "NaN"]]}, {"data": "NaN"}]}"#
        );
        // The output parses as JSON.
        let value: serde_json::Value = serde_json::from_str(&quoted(body)).unwrap();
        assert_eq!(value["inputs"][0]["data"][1][0], "Infinity");
        // Python's json.dumps of a NaN: no spaces, keys in any order, data before the name.
        assert_eq!(
            quoted(r#"{"inputs":[{"data":[1.5,NaN],"name":"x","shape":[2],"datatype":"FP64"}]}"#),
            r#"{"inputs":[{"data":[1.5,"NaN"],"name":"x","shape":[2],"datatype":"FP64"}]}"#
        );
    }

    #[test]
    fn a_body_without_tokens_is_not_copied() {
        for body in [
            r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1e-3, -2]}]}"#,
            r#"{"inputs": [{"name": "NaN", "data": ["Infinity", "NaN \" NaN"]}]}"#,
            "{\"inputs\": [",
            "",
        ] {
            assert!(
                matches!(quote_non_finite(body.as_bytes()).unwrap(), Cow::Borrowed(_)),
                "{body}"
            );
        }
    }

    #[test]
    fn tokens_elsewhere_are_refused_with_their_place() {
        assert_eq!(
            refused(r#"{"id": NaN, "inputs": []}"#),
            "malformed JSON: NaN at line 1 column 8: NaN and Infinity are accepted only in an input's data"
        );
        assert_eq!(
            refused("{\"inputs\": [{\"shape\": [1],\n  \"parameters\": {\"data\": [Infinity]}}]}"),
            "malformed JSON: Infinity at line 2 column 27: NaN and Infinity are accepted only in an input's data"
        );
        assert!(refused(r#"{"outputs": [{"data": [-Infinity]}]}"#).contains("-Infinity at line 1 column 24"));
        assert!(refused(r#"[{"inputs": [{"data": [NaN]}]}]"#).contains("NaN at line 1 column 24"));
        // A key named data in a value position is not the data member.
        assert!(refused(r#"{"inputs": [{"name": "data", "shape": NaN}]}"#).contains("NaN at"));
    }

    #[test]
    fn look_alikes_are_left_to_the_json_parser() {
        for body in [
            r#"{"inputs": [{"data": [NaNa, Inf, -Infinityx, nan]}]}"#,
            r#"{"inputs": [{"data": [N]}]}"#,
        ] {
            assert_eq!(quoted(body), body);
        }
        // Very deep nesting stops the scan; serde_json then refuses the body.
        let deep = format!("{}{}{}", "[".repeat(MAX_DEPTH + 5), "NaN", "]".repeat(MAX_DEPTH + 5));
        assert_eq!(quoted(&deep), deep);
    }
}
