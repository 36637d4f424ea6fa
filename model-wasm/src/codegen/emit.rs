//! Small helpers over `wasm-encoder`: a function body that allocates its own locals, and the
//! memory operands the generated code uses.

use wasm_encoder::{BlockType, Function, InstructionSink, MemArg, MemArgTarget, ValType};

/// A function body under construction: parameters, locals allocated on demand, and the code.
///
/// Invariant: local indices handed out by [`FunctionBody::local`] follow the parameters, in the
/// order they were asked for, so the code written with them stays valid in [`FunctionBody::finish`].
#[derive(Debug)]
pub(super) struct FunctionBody {
    n_params: u32,
    locals: Vec<ValType>,
    code: Vec<u8>,
}

impl FunctionBody {
    /// A body for a function with `n_params` parameters (locals `0..n_params`).
    pub(super) fn new(n_params: u32) -> Self {
        FunctionBody {
            n_params,
            locals: Vec::new(),
            code: Vec::new(),
        }
    }

    /// A new local of type `ty`; its index.
    pub(super) fn local(&mut self, ty: ValType) -> u32 {
        self.locals.push(ty);
        self.n_params + self.locals.len() as u32 - 1
    }

    /// Where instructions go.
    pub(super) fn code(&mut self) -> InstructionSink<'_> {
        InstructionSink::new(&mut self.code)
    }

    /// The finished function: `prologue` (raw instructions that run first), the code, `end`.
    pub(super) fn finish_with_prologue(self, prologue: &[u8]) -> Function {
        let mut function = Function::new_with_locals_types(self.locals);
        function.raw(prologue.iter().copied());
        function.raw(self.code);
        function.instructions().end();
        function
    }

    /// The finished function: the code, then `end`.
    pub(super) fn finish(self) -> Function {
        self.finish_with_prologue(&[])
    }
}

/// An aligned `f64` access at `offset` bytes past the address operand.
pub(super) fn f64_at(offset: u32) -> MemArg {
    mem(offset, 3)
}

/// An aligned `f32` access at `offset` bytes past the address operand.
pub(super) fn f32_at(offset: u32) -> MemArg {
    mem(offset, 2)
}

/// Opens a loop that runs while `at < end` (unsigned): `block`, `loop`, and the exit test.
/// Close it with [`end_loop`].
pub(super) fn start_loop(code: &mut InstructionSink, at: u32, end: u32) {
    code.block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(at)
        .local_get(end)
        .i32_ge_u()
        .br_if(1);
}

/// Closes a loop opened by [`start_loop`]: adds each step to its local, then back to the test.
pub(super) fn end_loop(code: &mut InstructionSink, steps: &[(u32, u32)]) {
    for &(local, step) in steps {
        code.local_get(local).i32_const(step as i32).i32_add().local_set(local);
    }
    code.br(0).end().end();
}

/// Division of the `f64` on the stack by a count.
pub(super) trait DivideByCount {
    /// `x / n`. By a power of two it is written as `x * (1 / n)`: exactly the same result (the
    /// reciprocal is exact, and both operations round the same real number), and cheaper.
    fn f64_div_by_count(&mut self, n: usize) -> &mut Self;
}

impl DivideByCount for InstructionSink<'_> {
    fn f64_div_by_count(&mut self, n: usize) -> &mut Self {
        if n == 1 {
            self
        } else if n.is_power_of_two() {
            self.f64_const((1.0 / n as f64).into()).f64_mul()
        } else {
            self.f64_const((n as f64).into()).f64_div()
        }
    }
}

/// An aligned `i64` access at `offset` bytes past the address operand.
pub(super) fn i64_at(offset: u32) -> MemArg {
    mem(offset, 3)
}

/// An aligned `i32` access at `offset` bytes past the address operand.
pub(super) fn i32_at(offset: u32) -> MemArg {
    mem(offset, 2)
}

fn mem(offset: u32, align: u32) -> MemArg {
    MemArg {
        offset: u64::from(offset),
        align,
        target: MemArgTarget::Memory(0),
        ordering: None,
    }
}
