//! The SDK's ABI to its JavaScript half (`web/sdk/wasmline_sdk.js`): plain exports of numbers,
//! with bytes passing through two buffers in this module's memory.
//!
//! - In: JavaScript asks [`sdk_inbox`] for room, writes one or more UTF-8 strings (or a file)
//!   into it back to back, and passes their lengths to the call that reads them.
//! - Out: a call leaves its result in the output [`Tape`]: text at `sdk_text_ptr`/`sdk_text_len`,
//!   numbers (f64) at `sdk_numbers_ptr`/`sdk_numbers_len`.
//! - A call that can fail returns a negative status and leaves the message as the text.
//! - Models are handles: indexes into the open sessions, freed by [`sdk_free`].
//!
//! One of the workspace's three `unsafe` places (with the SDK's allocator and model-wasm's decimal
//! import): exported unmangled symbols, and the module's state in a `static` (see [`State`]).
#![allow(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use model_wasm::abi::Layout;
use model_wasm::schema::{Cell, describe_string};
use model_wasm::signature::SignatureError;

use crate::session::{self, Session, Tape};

struct Globals {
    inbox: Vec<u8>,
    out: Tape,
    sessions: Vec<Option<Session>>,
}

/// The module's state.
struct State(RefCell<Globals>);

// SAFETY: the SDK's module is instantiated without shared memory (wasm32-unknown-unknown has no
// threads without the atomics feature), so the state is only ever touched from one thread; the
// `RefCell` still refuses a re-entrant borrow.
unsafe impl Sync for State {}

static STATE: State = State(RefCell::new(Globals {
    inbox: Vec::new(),
    out: Tape {
        numbers: Vec::new(),
        text: Vec::new(),
    },
    sessions: Vec::new(),
}));

fn with<R>(f: impl FnOnce(&mut Globals) -> R) -> R {
    f(&mut STATE.0.borrow_mut())
}

/// The inbox cut into consecutive pieces of the given lengths.
fn pieces<const N: usize>(inbox: &[u8], lens: [usize; N]) -> [&[u8]; N] {
    let mut at = 0;
    lens.map(|len| {
        let piece = &inbox[at..at + len];
        at += len;
        piece
    })
}

fn text(bytes: &[u8]) -> &str {
    // JavaScript writes strings with TextEncoder: always UTF-8.
    core::str::from_utf8(bytes).unwrap_or_default()
}

/// 0, or -1 with the message as the output text.
fn status(out: &mut Tape, result: Result<(), String>) -> i32 {
    out.clear();
    match result {
        Ok(()) => 0,
        Err(message) => {
            out.text.extend_from_slice(message.as_bytes());
            -1
        }
    }
}

fn session(g: &Globals, handle: u32) -> &Session {
    g.sessions
        .get(handle as usize)
        .and_then(Option::as_ref)
        .expect("JavaScript passes the handle of an open session")
}

fn session_mut(g: &mut Globals, handle: u32) -> &mut Session {
    g.sessions
        .get_mut(handle as usize)
        .and_then(Option::as_mut)
        .expect("JavaScript passes the handle of an open session")
}

/// Room for `len` bytes from JavaScript.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_inbox(len: usize) -> *mut u8 {
    with(|g| {
        g.inbox.clear();
        g.inbox.resize(len, 0);
        g.inbox.as_mut_ptr()
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_text_ptr() -> *const u8 {
    with(|g| g.out.text.as_ptr())
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_text_len() -> usize {
    with(|g| g.out.text.len())
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_numbers_ptr() -> *const f64 {
    with(|g| g.out.numbers.as_ptr())
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_numbers_len() -> usize {
    with(|g| g.out.numbers.len())
}

/// The signing key, checked, and the manifest's signature, every rule but the arithmetic (inbox:
/// the manifest, then the key's algorithm, id and public key). Output text: the key's 32 bytes,
/// the signature's 64, the signed message; or the refusal, with -2 for the key and -1 for the
/// manifest.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_signed(manifest: usize, algorithm: usize, key_id: usize, public_key: usize) -> i32 {
    with(|g| {
        let [m, a, k, p] = pieces(&g.inbox, [manifest, algorithm, key_id, public_key]);
        let key = match session::trusted_key(text(a), text(k), text(p)) {
            Ok(key) => key,
            Err(refused) => return status(&mut g.out, Err(refused)) - 1,
        };
        match session::signed_message(m, &key) {
            Ok(s) => {
                g.out.clear();
                g.out.text.extend_from_slice(&s.public_key);
                g.out.text.extend_from_slice(&s.signature);
                g.out.text.extend_from_slice(&s.message);
                0
            }
            Err(e) => status(&mut g.out, Err(e)),
        }
    })
}

/// Opens a verified manifest (inbox: its bytes); returns the session's handle, or -1.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_open(manifest: usize) -> i32 {
    with(|g| match Session::open(&g.inbox[..manifest]) {
        Ok(s) => {
            let free = g.sessions.iter().position(Option::is_none);
            let handle = free.unwrap_or(g.sessions.len());
            if handle == g.sessions.len() {
                g.sessions.push(None);
            }
            g.sessions[handle] = Some(s);
            g.out.clear();
            handle as i32
        }
        Err(e) => status(&mut g.out, Err(e)),
    })
}

/// Checks the module's bytes (inbox) against the manifest.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_verify_module(handle: u32, len: usize) -> i32 {
    with(|g| {
        let checked = session(g, handle).verify_module(&g.inbox[..len]);
        status(&mut g.out, checked)
    })
}

/// Output text: the module export names, as JSON ([`session::abi_names`]).
#[unsafe(no_mangle)]
pub extern "C" fn sdk_abi_names() {
    with(|g| {
        g.out.clear();
        g.out.text.extend_from_slice(session::abi_names().as_bytes());
    })
}

/// The instantiated module's answers and memory size, checked ([`Session::start`]).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn sdk_start(
    handle: u32,
    abi_version: i32,
    n_features: i32,
    n_outputs: i32,
    output_stride: i32,
    max_rows: i32,
    input_ptr: i32,
    output_ptr: i32,
    memory_bytes: f64,
) -> i32 {
    let layout = Layout {
        abi_version,
        n_features,
        n_outputs,
        output_stride,
        max_rows,
        input_ptr,
        output_ptr,
        memory_bytes: memory_bytes as u64,
    };
    with(|g| {
        let started = session_mut(g, handle).start(layout);
        status(&mut g.out, started)
    })
}

/// Starts a row's cells.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_row_begin(handle: u32) {
    with(|g| session_mut(g, handle).clear_row())
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_cell_number(handle: u32, x: f64) {
    with(|g| session_mut(g, handle).push_cell(Cell::Number(x)))
}

/// A feature the named row does not have.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_cell_absent(handle: u32) {
    with(|g| session_mut(g, handle).push_cell(Cell::Missing))
}

/// `undefined` (1) or `null` (0).
#[unsafe(no_mangle)]
pub extern "C" fn sdk_cell_null(handle: u32, undefined: i32) {
    let word = if undefined != 0 { "undefined" } else { "null" };
    with(|g| session_mut(g, handle).push_cell(Cell::Null(word)))
}

/// Output text: a string value (inbox) as row errors describe it, `a string ("3.2")`.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_describe_string(len: usize) {
    with(|g| {
        let described = describe_string(text(&g.inbox[..len]));
        status(&mut g.out, Err(described));
    })
}

/// Output text: the refusal of a signature WebCrypto did not verify: the key it would not import
/// (`bad_key`, inbox: WebCrypto's reason) or a signature that does not match.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_signature_refused(bad_key: i32, len: usize) {
    with(|g| {
        let why = if bad_key != 0 {
            SignatureError::BadKey(String::from(text(&g.inbox[..len])))
        } else {
            SignatureError::Mismatch
        };
        status(&mut g.out, Err(session::signature_refused(why)));
    })
}

/// Any other value, described (inbox): `a boolean (true)`, `an array`, ...
#[unsafe(no_mangle)]
pub extern "C" fn sdk_cell_other(handle: u32, len: usize) {
    with(|g| {
        let what = String::from(text(&g.inbox[..len]));
        session_mut(g, handle).push_cell(Cell::Other(what));
    })
}

/// One key of a named row (inbox).
#[unsafe(no_mangle)]
pub extern "C" fn sdk_row_key(handle: u32, len: usize) {
    with(|g| {
        let key = String::from(text(&g.inbox[..len]));
        session_mut(g, handle).push_key(&key);
    })
}

/// Checks row `row` from its cells; output numbers: its feature vector.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_row_check(handle: u32, row: usize, named: i32) -> i32 {
    with(|g| match session(g, handle).check_row(row, named != 0) {
        Ok(x) => {
            g.out.clear();
            g.out.numbers = x;
            0
        }
        Err(e) => status(&mut g.out, Err(e)),
    })
}

/// Output text: `rows[row]: {reason}` (inbox: the reason), naming feature `feature` when it is
/// not negative.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_row_error(handle: u32, row: usize, feature: i32, reason: usize) {
    with(|g| {
        let reason = String::from(text(&g.inbox[..reason]));
        let name = usize::try_from(feature)
            .ok()
            .and_then(|j| session(g, handle).schema().names().get(j).cloned());
        let message = session::row_error(row, name, &reason);
        status(&mut g.out, Err(message));
    })
}

/// Output text: the message naming a module that breaks the ABI (inbox: what it did).
#[unsafe(no_mangle)]
pub extern "C" fn sdk_module_error(len: usize) {
    with(|g| {
        let message = session::module_error(text(&g.inbox[..len]));
        status(&mut g.out, Err(message));
    })
}

/// Room for a `predict`'s `n_rows` feature vectors, which telemetry then records.
#[unsafe(no_mangle)]
pub extern "C" fn sdk_rows(handle: u32, n_rows: usize) -> *mut f64 {
    with(|g| session_mut(g, handle).rows_buffer(n_rows).as_mut_ptr())
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_record_ok(handle: u32, seconds: f64) {
    with(|g| session_mut(g, handle).record_ok(seconds))
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_record_error(handle: u32) {
    with(|g| session_mut(g, handle).record_error())
}

/// Output: the drift snapshot on the tape ([`Tape::drift`]).
#[unsafe(no_mangle)]
pub extern "C" fn sdk_drift(handle: u32) {
    with(|g| {
        let drift = session(g, handle).drift();
        g.out.clear();
        g.out.drift(&drift);
    })
}

/// Output: the telemetry report on the tape ([`Tape::report`]).
#[unsafe(no_mangle)]
pub extern "C" fn sdk_report(handle: u32) {
    with(|g| {
        let report = session(g, handle).report();
        g.out.clear();
        g.out.report(&report);
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_reset(handle: u32) {
    with(|g| session_mut(g, handle).reset())
}

#[unsafe(no_mangle)]
pub extern "C" fn sdk_free(handle: u32) {
    with(|g| {
        if let Some(slot) = g.sessions.get_mut(handle as usize) {
            *slot = None;
        }
    })
}
