//! A small JSON reader for the two documents every runtime reads before it trusts a model: the
//! manifest, and the canonical bytes its signature covers.
//!
//! It is model-wasm's own rather than serde_json's so the browser SDK links a few KB instead of
//! a general (de)serialiser, and so edges, browsers and the control plane that signs read a
//! manifest with one parser:
//! - numbers are kept as written (validated against JSON's grammar) and parsed only when read,
//!   so [`Value::write_canonical`] gives them back byte for byte; serde_json writes the same
//!   text for every number it wrote itself (its shortest round trip), which is how the control
//!   plane writes manifests;
//! - objects keep their members sorted by key, and a key given twice is an error rather than a
//!   silent "last one wins";
//! - strings are unescaped, and written back as serde_json escapes them.
//!
//! ```
//! use model_wasm::json;
//!
//! let v = json::parse(br#"{"b": [1.50, {"d": 1, "c": "\u00e9"}], "a": null}"#).unwrap();
//! assert_eq!(v.write_canonical(), r#"{"a":null,"b":[1.50,{"c":"é","d":1}]}"#.as_bytes());
//! assert_eq!(v.get("b").and_then(|b| b.as_array()).unwrap()[0].as_f64(), Some(1.5));
//! let err = json::parse(br#"{"a": 1, "a": 2}"#).unwrap_err();
//! assert_eq!(err, "line 1 column 10: key 'a' is given twice");
//! ```

use alloc::{borrow::ToOwned, boxed::Box, format, string::String, vec::Vec};

/// Deepest nesting read (serde_json's limit too).
const MAX_DEPTH: usize = 128;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number's text, as written (valid JSON number syntax).
    Number(Box<str>),
    String(String),
    Array(Vec<Value>),
    /// Members sorted by key (byte order), each key once.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let Value::Object(members) = self else { return None };
        members
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &members[i].1)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A number as `f64`: `None` for anything else, and for a number too large for one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(text) => crate::decimal::parse_f64(text).filter(|v| v.is_finite()),
            _ => None,
        }
    }

    /// A number written as a non-negative integer that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// What the value is, for a message: `a string`, `a number`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// Compact JSON, object keys in order, numbers as written, strings escaped as serde_json
    /// escapes them.
    pub fn write_canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// [`write_canonical`](Self::write_canonical) appended to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Number(text) => out.extend_from_slice(text.as_bytes()),
            Value::String(s) => write_string(s, out),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_to(out);
                }
                out.push(b']');
            }
            Value::Object(members) => write_members(members.iter().map(|(k, v)| (k, v)), out),
        }
    }
}

/// Typed reads of a document's members, for hand-written readers: each error names the path of
/// the value (`features[2].min`) and what was found there.
pub mod read {
    use alloc::{borrow::ToOwned, format, string::String, vec::Vec};

    use super::Value;

    /// A read that failed: the path and the reason.
    pub type Result<T> = core::result::Result<T, String>;

    /// `path.key`, or `key` at the top.
    pub fn path(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    }

    /// Member `key` of the object `value` at `at`; missing (or `null`) is an error.
    pub fn member<'a>(value: &'a Value, at: &str, key: &str) -> Result<&'a Value> {
        optional(value, at, key)?.ok_or_else(|| format!("{} is missing", path(at, key)))
    }

    /// Member `key` of the object `value` at `at`, `None` when missing or `null`.
    pub fn optional<'a>(value: &'a Value, at: &str, key: &str) -> Result<Option<&'a Value>> {
        if value.as_object().is_none() {
            return Err(wrong(
                value,
                if at.is_empty() { "the document" } else { at },
                "an object",
            ));
        }
        Ok(value.get(key).filter(|v| !v.is_null()))
    }

    /// Member `key` of the object at `at`, read by `read` with its path; missing is an error.
    pub fn field<T>(value: &Value, at: &str, key: &str, read: &dyn Fn(&Value, &str) -> Result<T>) -> Result<T> {
        read(member(value, at, key)?, &path(at, key))
    }

    /// Like [`field`], `None` when the member is missing or `null`.
    pub fn optional_field<T>(
        value: &Value,
        at: &str,
        key: &str,
        read: &dyn Fn(&Value, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        optional(value, at, key)?.map(|v| read(v, &path(at, key))).transpose()
    }

    /// A list of strings.
    pub fn strings(value: &Value, at: &str) -> Result<Vec<String>> {
        list(value, at, &string)
    }

    /// A list of finite numbers.
    pub fn numbers(value: &Value, at: &str) -> Result<Vec<f64>> {
        list(value, at, &number)
    }

    pub fn string(value: &Value, at: &str) -> Result<String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| wrong(value, at, "a string"))
    }

    /// A finite number.
    pub fn number(value: &Value, at: &str) -> Result<f64> {
        value.as_f64().ok_or_else(|| wrong(value, at, "a finite number"))
    }

    /// A non-negative integer.
    pub fn integer(value: &Value, at: &str) -> Result<u64> {
        value.as_u64().ok_or_else(|| wrong(value, at, "a non-negative integer"))
    }

    pub fn boolean(value: &Value, at: &str) -> Result<bool> {
        value.as_bool().ok_or_else(|| wrong(value, at, "true or false"))
    }

    /// Each item of the array at `at`, read by `item` with its path (`at[i]`).
    pub fn list<T>(value: &Value, at: &str, item: &dyn Fn(&Value, &str) -> Result<T>) -> Result<Vec<T>> {
        let items = value.as_array().ok_or_else(|| wrong(value, at, "an array"))?;
        let mut read = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            read.push(item(v, &format!("{at}[{i}]"))?);
        }
        Ok(read)
    }

    fn wrong(value: &Value, at: &str, expected: &str) -> String {
        match value {
            Value::Number(text) => format!("{at} is the number {text}, not {expected}"),
            other => format!("{at} is {}, not {expected}", other.kind()),
        }
    }
}

/// An object's members, in the order given, as [`Value::write_canonical`] writes them.
pub fn write_members<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        value.write_to(out);
    }
    out.push(b'}');
}

/// `s` in double quotes, escaped as [`Value::write_canonical`] writes a string.
pub fn quoted(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(s, &mut out);
    // Only ASCII escapes were added to valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// A string as serde_json writes it: `"` and `\` escaped, control characters as `\n`-style
/// escapes or `\u00XX`, everything else as it is.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..0x20 => {
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]])
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Parses one JSON document (surrounding whitespace allowed). The error names the line and
/// column (1-based) where reading stopped.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut p = Parser { bytes, pos: 0 };
    let value = p.value(0).and_then(|v| {
        p.skip_space();
        match p.pos < bytes.len() {
            true => Err(p.error("trailing characters after the value")),
            false => Ok(v),
        }
    });
    value.map_err(|(pos, message)| {
        let before = &bytes[..pos.min(bytes.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        format!("line {line} column {column}: {message}")
    })
}

/// A parse error: the byte offset and the message.
type ParseError = (usize, String);

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> ParseError {
        (self.pos, message.to_owned())
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, literal: &[u8]) -> bool {
        let found = self.bytes[self.pos..].starts_with(literal);
        if found {
            self.pos += literal.len();
        }
        found
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_space();
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_space();
                if !self.eat(b"]") {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.skip_space();
                        if self.eat(b"]") {
                            break;
                        }
                        if !self.eat(b",") {
                            return Err(self.error("expected ',' or ']'"));
                        }
                    }
                }
                Ok(Value::Array(items))
            }
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ if self.eat(b"null") => Ok(Value::Null),
            _ if self.eat(b"true") => Ok(Value::Bool(true)),
            _ if self.eat(b"false") => Ok(Value::Bool(false)),
            _ => Err(self.error("expected a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_space();
        if self.eat(b"}") {
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key (a string)"));
            }
            let at = self.pos;
            let key = self.string()?;
            self.skip_space();
            if !self.eat(b":") {
                return Err(self.error("expected ':'"));
            }
            let value = self.value(depth + 1)?;
            match members.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
                Ok(_) => return Err((at, format!("key '{key}' is given twice"))),
                Err(i) => members.insert(i, (key, value)),
            }
            self.skip_space();
            if self.eat(b"}") {
                return Ok(Value::Object(members));
            }
            if !self.eat(b",") {
                return Err(self.error("expected ',' or '}'"));
            }
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos > from
        };
        self.eat(b"-");
        if !self.eat(b"0") && !digits(self) {
            return Err(self.error("expected a digit"));
        }
        if self.eat(b".") && !digits(self) {
            return Err(self.error("expected a digit after '.'"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b"+") {
                self.eat(b"-");
            }
            if !digits(self) {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        // ASCII by construction.
        let text = core::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        Ok(Value::Number(text.into()))
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let start = self.pos;
            while self.peek().is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            out.extend_from_slice(&self.bytes[start..self.pos]);
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return String::from_utf8(out).map_err(|_| (start, "a string is not valid UTF-8".to_owned()));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.error("invalid escape")),
                    };
                    self.pos += 1;
                    out.extend_from_slice(escaped.encode_utf8(&mut [0; 4]).as_bytes());
                }
                Some(_) => return Err(self.error("a control character in a string (escape it)")),
            }
        }
    }

    /// The character of `\uXXXX` (a surrogate pair takes two), with `pos` at the `u`; leaves
    /// `pos` on the last hex digit.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let hex4 = |p: &mut Self| -> Result<u32, ParseError> {
            let digits = p
                .bytes
                .get(p.pos + 1..p.pos + 5)
                .ok_or_else(|| p.error("invalid \\u escape"))?;
            let code = core::str::from_utf8(digits)
                .ok()
                .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|d| u32::from_str_radix(d, 16).ok())
                .ok_or_else(|| p.error("invalid \\u escape"))?;
            p.pos += 4;
            Ok(code)
        };
        let high = hex4(self)?;
        let code = if (0xd800..0xdc00).contains(&high) {
            self.pos += 1;
            if !self.eat(b"\\") || self.peek() != Some(b'u') {
                return Err(self.error("a lone surrogate in a \\u escape"));
            }
            let low = hex4(self)?;
            if !(0xdc00..0xe000).contains(&low) {
                return Err(self.error("a lone surrogate in a \\u escape"));
            }
            0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("a lone surrogate in a \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's canonical form (sorted keys, compact): what `write_canonical` must give for
    /// any document serde_json wrote.
    fn serde_canonical(text: &str) -> Vec<u8> {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn documents_serde_json_wrote_come_back_byte_for_byte() {
        let value = serde_json::json!({
            "z": [0.1, 1e-7, 12345.678, -0.0, 1.0, 3, -17, u64::MAX, 1e300, 2.5e-300, f64::MAX, f64::MIN_POSITIVE],
            "text": "tab\t quote\" back\\ nl\n cr\r bell\u{7} del\u{7f} é 🦀 /",
            "a": {"nested": [true, false, null, {}, []], "b": 0},
            "": "empty key",
        });
        for text in [
            serde_json::to_string(&value).unwrap(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            let parsed = parse(text.as_bytes()).unwrap();
            assert_eq!(parsed.write_canonical(), serde_canonical(&text), "{text}");
        }
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let v = parse(br#"{"n": 1e-7, "i": 18446744073709551615, "s": "a\u00e9\ud83e\udd80", "t": true}"#).unwrap();
        assert_eq!(v.get("n").unwrap().as_f64(), Some(1e-7));
        assert_eq!(v.get("i").unwrap().as_u64(), Some(u64::MAX));
        assert_eq!(v.get("n").unwrap().as_u64(), None);
        assert_eq!(v.get("s").unwrap().as_str(), Some("aé🦀"));
        assert_eq!(v.get("t").unwrap().as_bool(), Some(true));
        assert_eq!(v.get("missing"), None);
        assert_eq!(parse(b"1e400").unwrap().as_f64(), None, "too large for an f64");
        assert_eq!(parse(b"[]").unwrap().get("x"), None);
    }

    #[test]
    fn malformed_documents_are_refused_with_their_position() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "line 1 column 1: unexpected end of input"),
            (b"{\"a\": 1,\n \"b\" 2}", "line 2 column 6: expected ':'"),
            (b"[1, 2", "line 1 column 6: expected ',' or ']'"),
            (b"{\"a\": 1} x", "line 1 column 10: trailing characters after the value"),
            (b"01", "line 1 column 2: trailing characters after the value"),
            (b"1.", "line 1 column 3: expected a digit after '.'"),
            (b"-", "line 1 column 2: expected a digit"),
            (b"1e+", "line 1 column 4: expected a digit in the exponent"),
            (b"\"abc", "line 1 column 5: unterminated string"),
            (
                b"\"a\x01\"",
                "line 1 column 3: a control character in a string (escape it)",
            ),
            (b"\"\\x\"", "line 1 column 3: invalid escape"),
            (b"\"\\u12g4\"", "line 1 column 3: invalid \\u escape"),
            (b"\"\\ud800\"", "line 1 column 8: a lone surrogate in a \\u escape"),
            (b"\"\\udc00\"", "line 1 column 7: a lone surrogate in a \\u escape"),
            (b"\"\xff\"", "line 1 column 2: a string is not valid UTF-8"),
            (b"{1: 2}", "line 1 column 2: expected a key (a string)"),
            (b"nul", "line 1 column 1: expected a value"),
            (b"{\"a\": {}, \"a\": []}", "line 1 column 11: key 'a' is given twice"),
        ];
        for (text, message) in cases {
            assert_eq!(parse(text).unwrap_err(), *message, "{}", String::from_utf8_lossy(text));
            assert!(serde_json::from_slice::<serde_json::Value>(text).is_err() || text.starts_with(b"{\"a\": {}"));
        }
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert!(parse(deep.as_bytes()).unwrap_err().ends_with("nested too deeply"));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
    }
}
