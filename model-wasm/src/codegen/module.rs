//! The module's skeleton: types, functions, the fixed memory, the error globals, exports, the
//! messages' data segment and the manifest's custom section.

use wasm_encoder::{
    CodeSection, ConstExpr, CustomSection, DataSection, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, MemorySection, MemoryType, Module, TypeSection, ValType,
};

use super::MANIFEST_SECTION;
use super::layout::Layout;
use crate::abi::MEMORY_EXPORT;
use crate::{Error, Result};

/// The mutable `i32` globals behind the error exports; all start at 0.
pub(super) const ERROR_ROW: u32 = 0;
pub(super) const ERROR_FEATURE: u32 = 1;
pub(super) const LAST_ERROR_PTR: u32 = 2;
pub(super) const LAST_ERROR_LEN: u32 = 3;
const N_GLOBALS: u32 = 4;

/// The largest function body engines take (V8's limit, the lowest of the engines we target).
const MAX_FUNCTION_BYTES: usize = 7_654_321;

/// Functions with their signatures, in index order. Indices can be declared before the body is
/// written (a tree's function calls pieces of it written later).
#[derive(Debug, Default)]
pub(super) struct ModuleBuilder {
    types: Vec<(Vec<ValType>, Vec<ValType>)>,
    functions: Vec<(u32, Option<Function>)>,
}

impl ModuleBuilder {
    /// Reserves the next function index for a function of this signature.
    pub(super) fn declare(&mut self, params: &[ValType], results: &[ValType]) -> u32 {
        let signature = (params.to_vec(), results.to_vec());
        let ty = match self.types.iter().position(|t| *t == signature) {
            Some(i) => i,
            None => {
                self.types.push(signature);
                self.types.len() - 1
            }
        } as u32;
        self.functions.push((ty, None));
        self.functions.len() as u32 - 1
    }

    /// Gives the declared function `index` its body.
    pub(super) fn define(&mut self, index: u32, body: Function) {
        let slot = &mut self.functions[index as usize].1;
        debug_assert!(slot.is_none(), "function {index} is defined twice");
        *slot = Some(body);
    }

    /// Declares and defines a function; its index.
    pub(super) fn add(&mut self, params: &[ValType], results: &[ValType], body: Function) -> u32 {
        let index = self.declare(params, results);
        self.define(index, body);
        index
    }

    /// The module's bytes. Every declared function must have been defined.
    pub(super) fn finish(self, layout: &Layout, exports: &[(&str, u32)], metadata: &[u8]) -> Result<Vec<u8>> {
        let mut types = TypeSection::new();
        for (params, results) in &self.types {
            types.ty().function(params.iter().copied(), results.iter().copied());
        }
        let mut functions = FunctionSection::new();
        let mut code = CodeSection::new();
        for (index, (ty, body)) in self.functions.iter().enumerate() {
            let body = body
                .as_ref()
                .unwrap_or_else(|| panic!("function {index} was declared but never defined"));
            if body.byte_len() > MAX_FUNCTION_BYTES {
                return Err(Error::InvalidModel(format!(
                    "the model needs a function of {} bytes, over the {MAX_FUNCTION_BYTES} engines take",
                    body.byte_len()
                )));
            }
            functions.function(*ty);
            code.function(body);
        }
        let mut memory = MemorySection::new();
        memory.memory(MemoryType {
            minimum: layout.pages,
            maximum: Some(layout.pages),
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut globals = GlobalSection::new();
        for _ in 0..N_GLOBALS {
            let ty = GlobalType {
                val_type: ValType::I32,
                mutable: true,
                shared: false,
            };
            globals.global(ty, &ConstExpr::i32_const(0));
        }
        let mut export = ExportSection::new();
        export.export(MEMORY_EXPORT, ExportKind::Memory, 0);
        for (name, index) in exports {
            export.export(name, ExportKind::Func, *index);
        }
        let mut data = DataSection::new();
        data.active(0, &ConstExpr::i32_const(0), layout.data.iter().copied());
        let manifest = CustomSection {
            name: MANIFEST_SECTION.into(),
            data: metadata.into(),
        };

        let mut module = Module::new();
        module
            .section(&types)
            .section(&functions)
            .section(&memory)
            .section(&globals)
            .section(&export)
            .section(&code)
            .section(&data)
            .section(&manifest);
        Ok(module.finish())
    }
}
