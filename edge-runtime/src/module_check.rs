//! The module contract of `docs/MODULE_ABI.md`, as the host checks a module before and after compiling it.

pub use model_wasm::abi::{ABI_VERSION, MANIFEST_SECTION};
use model_wasm::abi::{FUNCTION_EXPORTS, MEMORY_EXPORT, export};
use wasmtime::{ExternType, Module, ValType};

use crate::error::{HostError, Result};

/// Bytes in a WebAssembly page.
pub(crate) const PAGE_SIZE: u64 = 64 << 10;

/// Refuses a compiled module that imports anything or lacks or mistypes an ABI export.
pub(crate) fn check_module(module: &Module) -> Result<()> {
    let imports: Vec<String> = module
        .imports()
        .map(|import| format!("{}.{}", import.module(), import.name()))
        .collect();
    if !imports.is_empty() {
        return Err(invalid(format!("imports are not allowed: {}", imports.join(", "))));
    }

    let memory = match module.get_export(MEMORY_EXPORT) {
        Some(ExternType::Memory(memory)) => memory,
        Some(other) => {
            return Err(invalid(format!(
                "export {MEMORY_EXPORT} is a {}, expected a memory",
                kind(&other)
            )));
        }
        None => return Err(invalid(format!("missing export {MEMORY_EXPORT}"))),
    };
    if memory.is_64() || memory.is_shared() || memory.page_size() != PAGE_SIZE {
        return Err(invalid(format!(
            "export {MEMORY_EXPORT} must be a plain 32-bit memory with 64 KiB pages"
        )));
    }

    // All `() -> i32` but `predict`, which is `(i32) -> i32`.
    for name in FUNCTION_EXPORTS {
        let params = usize::from(name == export::PREDICT);
        let function = match module.get_export(name) {
            Some(ExternType::Func(function)) => function,
            Some(other) => {
                return Err(invalid(format!(
                    "export {name} is a {}, expected a function",
                    kind(&other)
                )));
            }
            None => return Err(invalid(format!("missing export {name}"))),
        };
        if !all_i32(function.params(), params) || !all_i32(function.results(), 1) {
            let expected = if params == 0 {
                "(result i32)"
            } else {
                "(param i32) (result i32)"
            };
            return Err(invalid(format!(
                "export {name} has type {function}, expected (func {expected})"
            )));
        }
    }
    Ok(())
}

/// Whether `types` are `count` `i32`s.
fn all_i32(mut types: impl ExactSizeIterator<Item = ValType>, count: usize) -> bool {
    types.len() == count && types.all(|ty| matches!(ty, ValType::I32))
}

fn kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "function",
        ExternType::Global(_) => "global",
        ExternType::Table(_) => "table",
        ExternType::Memory(_) => "memory",
        ExternType::Tag(_) => "tag",
    }
}

/// What [`read_sections`] finds.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Sections {
    /// The bytes of the [`MANIFEST_SECTION`].
    pub(crate) manifest: Option<Vec<u8>>,
    /// Initial size of the first defined memory, in bytes.
    pub(crate) initial_memory: Option<u64>,
}

/// Reads the sections before compiling, to give the plain reasons ("not a WebAssembly module",
/// "truncated"), to check the memory against the limit before the engine sees it, and to keep
/// the manifest.
pub(crate) fn read_sections(bytes: &[u8]) -> Result<Sections> {
    use wasmparser::{Parser, Payload};

    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(invalid("not a WebAssembly module".into()));
    }
    if bytes[4..8] != [1, 0, 0, 0] {
        return Err(invalid(
            "not a core WebAssembly module (version 1); components are not supported".into(),
        ));
    }
    let mut sections = Sections::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| {
            let message = e.message();
            if message.contains("unexpected end") {
                invalid(format!("truncated: {message} at offset {}", e.offset()))
            } else {
                invalid(format!("malformed: {message} at offset {}", e.offset()))
            }
        })?;
        match payload {
            Payload::CustomSection(section) if section.name() == MANIFEST_SECTION => {
                if sections.manifest.is_some() {
                    return Err(invalid(format!("more than one {MANIFEST_SECTION} section")));
                }
                sections.manifest = Some(section.data().to_vec());
            }
            Payload::MemorySection(memories) => {
                if let Some(Ok(memory)) = memories.into_iter().next() {
                    let page = memory
                        .page_size_log2
                        .map_or(PAGE_SIZE, |log2| 1u64.checked_shl(log2).unwrap_or(u64::MAX));
                    sections.initial_memory = Some(memory.initial.saturating_mul(page));
                }
            }
            _ => {}
        }
    }
    Ok(sections)
}

pub(crate) fn invalid(message: String) -> HostError {
    HostError::InvalidModule(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_reasons_before_compiling() {
        let reason = |bytes: &[u8]| match read_sections(bytes) {
            Err(HostError::InvalidModule(message)) => message,
            other => panic!("expected InvalidModule, got {other:?}"),
        };
        assert_eq!(reason(b"hello, world"), "not a WebAssembly module");
        assert_eq!(reason(b""), "not a WebAssembly module");
        assert!(reason(b"\0asm\x0d\0\x01\0").contains("components are not supported"));
        // A type section announcing 10 bytes, holding 2.
        assert!(reason(b"\0asm\x01\0\0\0\x01\x0a\x01\x60").starts_with("truncated"));
    }

    #[test]
    fn the_manifest_section_is_kept() {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        let name = MANIFEST_SECTION.as_bytes();
        let data = br#"{"a":1}"#;
        bytes.push(0); // custom section id
        bytes.push(u8::try_from(1 + name.len() + data.len()).unwrap());
        bytes.push(u8::try_from(name.len()).unwrap());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(data);
        assert_eq!(read_sections(&bytes).unwrap().manifest.as_deref(), Some(&data[..]));
        assert_eq!(read_sections(b"\0asm\x01\0\0\0").unwrap(), Sections::default());
    }
}
