//! A loaded model module: checked once against the ABI, then run sandboxed, call after call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use model_wasm::Prediction;
use wasmtime::{Instance, InstancePre, Memory, Module, Store, TypedFunc};

use crate::error::{HostError, Result, chain, from_wasmtime};
use crate::module_check::{self, ABI_VERSION, invalid};
use crate::pool::{IdleInstances, QueueLimits, Slot};
use crate::runtime::{MemoryLimiter, Runtime, StoreState};
use model_wasm::abi::{Layout, STATUS_BAD_ROW_COUNT, STATUS_NON_FINITE, STATUS_OK, export};

/// The sandbox for one module.
#[derive(Debug, Clone)]
pub struct ModuleLimits {
    /// How long one call into the module (at most `max_rows` rows) may run before it is stopped
    /// with [`HostError::Timeout`]. Counted in epoch ticks, so it is accurate to about a tick.
    pub deadline: Duration,
    /// Largest linear memory the module may have, in bytes; capped by
    /// [`RuntimeConfig::max_memory_bytes`](crate::RuntimeConfig::max_memory_bytes).
    pub max_memory_bytes: usize,
    /// Instances kept between calls for reuse, each with its own store. `0` instantiates afresh
    /// for every call (slower, see the crate docs). Concurrent calls beyond this number get a
    /// fresh instance that is dropped afterwards. Idle instances hold slots of the runtime's
    /// pool, and give them up when a call of another module needs one.
    pub idle_instances: usize,
}

impl Default for ModuleLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            max_memory_bytes: 64 << 20,
            idle_instances: std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
        }
    }
}

/// What a module predicts, from its `output_stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `output_stride == 1 + n_outputs`: a label index, then one probability per class.
    Classification,
    /// `output_stride == n_outputs == 1`: one value.
    Regression,
}

/// The constants a module reports once, checked against its memory.
#[derive(Debug, Clone, Copy)]
struct Shape {
    n_features: usize,
    n_outputs: usize,
    stride: usize,
    max_rows: usize,
    input_ptr: usize,
    output_ptr: usize,
    task: Task,
}

/// A model module compiled and checked against `docs/MODULE_ABI.md`, ready to predict from any
/// thread (`Send + Sync`; share it behind an `Arc`).
///
/// Each call runs in an instance with its own store: no imports, a memory limit, an epoch
/// deadline. Instances are reused between calls ([`ModuleLimits::idle_instances`]) except after a
/// trap, a timeout or a limit, when the instance is thrown away and the next call gets a fresh
/// one, so a module that failed once cannot carry a broken state into later calls.
///
/// Every instance holds a slot of the runtime's pool ([`RuntimeConfig::max_instances`]
/// (crate::RuntimeConfig::max_instances)). [`predict`](Self::predict) and
/// [`predict_flat`](Self::predict_flat) never wait: with every slot in a call they fail with
/// [`HostError::Busy`]. A server leases an instance first ([`lease`](Self::lease)), which waits
/// for one up to a [`QueueLimits`], then calls [`predict_flat_on`](Self::predict_flat_on).
pub struct ModelModule {
    runtime: Runtime,
    pre: InstancePre<StoreState>,
    limits: ModuleLimits,
    ticks: u64,
    layout: Layout,
    shape: Shape,
    manifest: Option<Vec<u8>>,
    compile_time: Duration,
    /// Idle instances; `None` when none are kept. Boxed: a call moves its worker out and back, 8
    /// bytes rather than the whole (measured: 81 -> 52 ns per batch-1 call of a linear model).
    /// A lock-free queue: one atomic update to take a worker and one to return it, where a
    /// mutex took two each (measured: 40 -> 30 ns per batch-1 call of a linear model).
    /// Shared (weakly) with the runtime's pool, which may drop an idle instance to free its slot.
    idle: Option<Arc<ArrayQueue<Box<Worker>>>>,
    /// Tells this module's leases from another's.
    id: u64,
}

/// Module ids, for [`Lease`]s.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl IdleInstances for ArrayQueue<Box<Worker>> {
    fn drop_one(&self) -> bool {
        self.pop().is_some()
    }
}

/// An instance of one [`ModelModule`], taken by [`ModelModule::lease`] for a call by
/// [`ModelModule::predict_flat_on`]; `Send`, so the call can run on another thread. Dropped
/// unused, the instance is thrown away and its slot comes free.
pub struct Lease {
    worker: Box<Worker>,
    module: u64,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ModelModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelModule")
            .field("layout", &self.layout)
            .field("task", &self.shape.task)
            .field("limits", &self.limits)
            .field("compile_time", &self.compile_time)
            .finish_non_exhaustive()
    }
}

impl ModelModule {
    /// Compiles and checks a module: no imports, every ABI export with its type, ABI version 1,
    /// sane constants, buffers inside its memory, memory within the limit. Instantiates it once
    /// (under the deadline) to read the constants; that instance is kept for the first call.
    pub fn load(runtime: &Runtime, bytes: &[u8], limits: ModuleLimits) -> Result<Self> {
        let limits = ModuleLimits {
            max_memory_bytes: limits.max_memory_bytes.min(runtime.config().max_memory_bytes),
            ..limits
        };
        let sections = module_check::read_sections(bytes)?;
        if let Some(initial) = sections.initial_memory
            && initial > limits.max_memory_bytes as u64
        {
            return Err(HostError::Limits(format!(
                "the module's memory starts at {initial} bytes, the limit is {}",
                limits.max_memory_bytes
            )));
        }

        let start = Instant::now();
        let module = Module::new(runtime.engine(), bytes).map_err(|e| invalid(chain(&e)))?;
        let compile_time = start.elapsed();
        module_check::check_module(&module)?;
        let pre = runtime
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| invalid(chain(&e)))?;

        let ticks = runtime.ticks(limits.deadline);
        let pool = &runtime.inner.pool;
        let slot = pool.try_slot().ok_or_else(|| pool.full())?;
        let mut first = Box::new(Worker::new(runtime, &pre, &limits, ticks, slot)?);
        let (layout, shape) = first.read_shape()?;
        let idle = (limits.idle_instances > 0).then(|| {
            let idle = Arc::new(ArrayQueue::new(limits.idle_instances));
            // Cannot fail: the queue holds at least one.
            let _ = idle.push(first);
            let weak: Weak<dyn IdleInstances> = Arc::downgrade(&idle) as Weak<dyn IdleInstances>;
            pool.register(weak);
            idle
        });
        Ok(Self {
            runtime: runtime.clone(),
            pre,
            limits,
            ticks,
            layout,
            shape,
            manifest: sections.manifest,
            compile_time,
            idle,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The `wasmline.manifest` custom section: the JSON the code generator was given.
    pub fn metadata(&self) -> Option<&[u8]> {
        self.manifest.as_deref()
    }

    pub fn n_features(&self) -> usize {
        self.shape.n_features
    }

    /// Classes (classification) or 1 (regression).
    pub fn n_outputs(&self) -> usize {
        self.shape.n_outputs
    }

    /// `f64` slots per row in [`predict_flat`](Self::predict_flat)'s output.
    pub fn output_stride(&self) -> usize {
        self.shape.stride
    }

    /// Rows per call into the module; longer batches are split.
    pub fn max_rows(&self) -> usize {
        self.shape.max_rows
    }

    /// The constants the module reported, for checking against a manifest
    /// (`layout().check(manifest features, classes)`).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn task(&self) -> Task {
        self.shape.task
    }

    pub fn limits(&self) -> &ModuleLimits {
        &self.limits
    }

    /// How long Cranelift took to compile the module.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Predicts every row (each `n_features` long, in feature order).
    ///
    /// Errors: [`HostError::Input`] for a row of the wrong width or a value the module refuses,
    /// an infinity or a NaN where the model routes no missing value (with the row's index in
    /// `rows` and the feature index); [`HostError::Timeout`],
    /// [`HostError::Trap`], [`HostError::Limits`] when the module misbehaves. No rows are
    /// returned when any row fails.
    pub fn predict<R: AsRef<[f64]>>(&self, rows: &[R]) -> Result<Vec<Prediction>> {
        let n_features = self.shape.n_features;
        if let Some((row, width)) = rows
            .iter()
            .map(|row| row.as_ref().len())
            .enumerate()
            .find(|&(_, width)| width != n_features)
        {
            return Err(HostError::Input {
                row,
                feature: None,
                message: format!("expected {n_features} features, got {width}"),
            });
        }
        let mut predictions = Vec::with_capacity(rows.len());
        self.with_worker(|worker| {
            for (chunk_index, chunk) in rows.chunks(self.shape.max_rows).enumerate() {
                let first_row = chunk_index * self.shape.max_rows;
                let output = worker.call(self, first_row, chunk.len(), |input| {
                    let row_bytes = input.chunks_exact_mut(n_features * 8);
                    for (row, bytes) in chunk.iter().zip(row_bytes) {
                        write_f64s(row.as_ref(), bytes);
                    }
                })?;
                self.decode(output, first_row, &mut predictions)?;
            }
            Ok(())
        })?;
        Ok(predictions)
    }

    /// The batch fast path: `features` holds rows back to back (row-major, as a KServe tensor
    /// does); `outputs` is cleared and receives `output_stride` values per row, as the module
    /// wrote them (classification: label index, then probabilities; regression: the value).
    /// No per-row allocation.
    pub fn predict_flat(&self, features: &[f64], outputs: &mut Vec<f64>) -> Result<()> {
        outputs.clear();
        self.check_flat(features)?;
        let result = self.with_worker(|worker| self.run_flat(worker, features, outputs));
        if result.is_err() {
            outputs.clear();
        }
        result
    }

    /// An idle instance of this module, or a fresh one in a free slot of the runtime's pool
    /// (taken from another module's idle instances if need be). While every slot is in a call,
    /// waits for an instance up to `queue`'s timeout, among at most `queue.max_waiting` waiting
    /// calls.
    ///
    /// Errors: [`HostError::Busy`] past the timeout or when the queue is full; what
    /// instantiating may fail with otherwise (a start function past its deadline, a trap).
    pub async fn lease(&self, queue: QueueLimits) -> Result<Lease> {
        let worker = self.runtime.inner.pool.wait(queue, || self.take_now()).await?;
        Ok(Lease {
            worker,
            module: self.id,
        })
    }

    /// [`predict_flat`](Self::predict_flat) on a leased instance, which then goes back to the
    /// idle instances (or is thrown away after a trap, a timeout or a limit).
    ///
    /// # Panics
    ///
    /// If `lease` is an instance of another module.
    pub fn predict_flat_on(&self, lease: Lease, features: &[f64], outputs: &mut Vec<f64>) -> Result<()> {
        assert_eq!(
            lease.module, self.id,
            "a lease is used with the module it was taken from"
        );
        let mut worker = lease.worker;
        outputs.clear();
        let result = self
            .check_flat(features)
            .and_then(|()| self.run_flat(&mut worker, features, outputs));
        self.give_back(worker, &result);
        if result.is_err() {
            outputs.clear();
        }
        result
    }

    /// Refuses values that are not whole rows.
    fn check_flat(&self, features: &[f64]) -> Result<()> {
        let n_features = self.shape.n_features;
        if features.len().is_multiple_of(n_features) {
            Ok(())
        } else {
            Err(HostError::Input {
                row: features.len() / n_features,
                feature: None,
                message: format!("{} values are not whole rows of {n_features} features", features.len()),
            })
        }
    }

    /// The rows of `features` (whole rows), `max_rows` per call, into `outputs`.
    fn run_flat(&self, worker: &mut Worker, features: &[f64], outputs: &mut Vec<f64>) -> Result<()> {
        let n_features = self.shape.n_features;
        outputs.reserve(features.len() / n_features * self.shape.stride);
        let chunk_values = self.shape.max_rows * n_features;
        for (chunk_index, chunk) in features.chunks(chunk_values).enumerate() {
            let first_row = chunk_index * self.shape.max_rows;
            let output = worker.call(self, first_row, chunk.len() / n_features, |input| {
                write_f64s(chunk, input)
            })?;
            outputs.extend(read_f64s(output));
        }
        Ok(())
    }

    /// Output rows to predictions, checking the labels.
    fn decode(&self, output: &[u8], first_row: usize, into: &mut Vec<Prediction>) -> Result<()> {
        for (i, row) in output.chunks_exact(self.shape.stride * 8).enumerate() {
            let mut values = read_f64s(row);
            let first = values.next().unwrap_or(f64::NAN);
            into.push(match self.shape.task {
                Task::Regression => Prediction::Value(first),
                Task::Classification => {
                    if !(first >= 0.0 && first < self.shape.n_outputs as f64 && first.fract() == 0.0) {
                        return Err(invalid(format!(
                            "the module wrote label {first} for row {}, not a class index below {}",
                            first_row + i,
                            self.shape.n_outputs
                        )));
                    }
                    Prediction::Class {
                        label: first as usize,
                        probabilities: values.collect(),
                    }
                }
            });
        }
        Ok(())
    }

    /// Runs `f` with an idle instance, or a fresh one, without waiting (see
    /// [`take_now`](Self::take_now)); puts the instance back unless the call failed in a way
    /// that may have left it broken.
    fn with_worker(&self, f: impl FnOnce(&mut Worker) -> Result<()>) -> Result<()> {
        let mut worker = self.take_now()?.ok_or_else(|| self.runtime.inner.pool.full())?;
        let result = f(&mut worker);
        self.give_back(worker, &result);
        result
    }

    /// An idle instance, or a fresh one in a slot of the pool; `None` when every slot is in a
    /// call.
    fn take_now(&self) -> Result<Option<Box<Worker>>> {
        if let Some(worker) = self.idle.as_deref().and_then(ArrayQueue::pop) {
            return Ok(Some(worker));
        }
        match self.runtime.inner.pool.try_slot() {
            Some(slot) => Ok(Some(Box::new(Worker::new(
                &self.runtime,
                &self.pre,
                &self.limits,
                self.ticks,
                slot,
            )?))),
            None => Ok(None),
        }
    }

    /// Puts `worker` back in the idle queue after a call that ended with `result`, unless the
    /// call may have left it broken or the queue is full; otherwise it is dropped, and its slot
    /// comes free. Either way a waiting call is woken.
    fn give_back(&self, worker: Box<Worker>, result: &Result<()>) {
        if matches!(result, Ok(()) | Err(HostError::Input { .. }))
            && let Some(idle) = &self.idle
            && idle.push(worker).is_ok()
        {
            self.runtime.inner.pool.returned();
        }
    }
}

/// Writes `values` as little-endian `f64`s at the start of `bytes`.
fn write_f64s(values: &[f64], bytes: &mut [u8]) {
    for (value, slot) in values.iter().zip(bytes.chunks_exact_mut(8)) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

/// The little-endian `f64`s in `bytes`.
fn read_f64s(bytes: &[u8]) -> impl Iterator<Item = f64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8 bytes")))
}

/// One instance in its own store, with its exports looked up once.
struct Worker {
    store: Store<StoreState>,
    instance: Instance,
    memory: Memory,
    predict: TypedFunc<i32, i32>,
    error_row: TypedFunc<(), i32>,
    error_feature: TypedFunc<(), i32>,
    last_error_ptr: TypedFunc<(), i32>,
    last_error_len: TypedFunc<(), i32>,
    deadline: Duration,
    ticks: u64,
    /// The instance's slot in the runtime's pool; freed after the store (declared last, so
    /// dropped last).
    _slot: Slot,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

/// Longest `last_error` message read from a module.
const MAX_MESSAGE: usize = 1024;

impl Worker {
    fn new(
        runtime: &Runtime,
        pre: &InstancePre<StoreState>,
        limits: &ModuleLimits,
        ticks: u64,
        slot: Slot,
    ) -> Result<Self> {
        let state = StoreState {
            limiter: MemoryLimiter {
                max_memory_bytes: limits.max_memory_bytes,
                max_table_elements: 10_000,
            },
        };
        let mut store = Store::new(runtime.engine(), state);
        store.limiter(|state| &mut state.limiter);
        // A start function runs during instantiation: it gets the same deadline as a call.
        store.set_epoch_deadline(ticks);
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| from_wasmtime(&e, limits.deadline))?;
        let memory = instance
            .get_memory(&mut store, export::MEMORY)
            .ok_or_else(|| invalid(format!("missing export {}", export::MEMORY)))?;
        let mut func = |name: &str| {
            instance
                .get_typed_func::<(), i32>(&mut store, name)
                .map_err(|e| invalid(format!("export {name}: {}", chain(&e))))
        };
        let error_row = func(export::ERROR_ROW)?;
        let error_feature = func(export::ERROR_FEATURE)?;
        let last_error_ptr = func(export::LAST_ERROR_PTR)?;
        let last_error_len = func(export::LAST_ERROR_LEN)?;
        let predict = instance
            .get_typed_func::<i32, i32>(&mut store, export::PREDICT)
            .map_err(|e| invalid(format!("export {}: {}", export::PREDICT, chain(&e))))?;
        Ok(Self {
            store,
            instance,
            memory,
            predict,
            error_row,
            error_feature,
            last_error_ptr,
            last_error_len,
            deadline: limits.deadline,
            ticks,
            _slot: slot,
        })
    }

    /// Calls a `() -> i32` export by name, under the deadline.
    fn constant(&mut self, name: &str) -> Result<i32> {
        let func = self
            .instance
            .get_typed_func::<(), i32>(&mut self.store, name)
            .map_err(|e| invalid(format!("export {name}: {}", chain(&e))))?;
        self.store.set_epoch_deadline(self.ticks);
        func.call(&mut self.store, ())
            .map_err(|e| from_wasmtime(&e, self.deadline))
    }

    /// Reads the module's constants and holds them to the ABI's layout rules
    /// ([`Layout::check`], the same the browser SDK applies): version, counts, buffers aligned,
    /// inside memory and apart.
    fn read_shape(&mut self) -> Result<(Layout, Shape)> {
        let version = self.constant(export::ABI_VERSION)?;
        if version != ABI_VERSION {
            return Err(invalid(format!(
                "the module speaks ABI version {version}, this host speaks {ABI_VERSION}"
            )));
        }
        let layout = Layout {
            abi_version: version,
            n_features: self.constant(export::N_FEATURES)?,
            n_outputs: self.constant(export::N_OUTPUTS)?,
            output_stride: self.constant(export::OUTPUT_STRIDE)?,
            max_rows: self.constant(export::MAX_ROWS)?,
            input_ptr: self.constant(export::INPUT_PTR)?,
            output_ptr: self.constant(export::OUTPUT_PTR)?,
            memory_bytes: self.memory.data_size(&self.store) as u64,
        };
        let count = |name: &str, value: i32| match usize::try_from(value) {
            Ok(value @ 1..) => Ok(value),
            _ => Err(invalid(format!("{name}() returned {value}, expected at least 1"))),
        };
        let n_features = count(export::N_FEATURES, layout.n_features)?;
        let n_outputs = count(export::N_OUTPUTS, layout.n_outputs)?;
        let stride = count(export::OUTPUT_STRIDE, layout.output_stride)?;
        let max_rows = count(export::MAX_ROWS, layout.max_rows)?;
        let (task, classes) = if stride == 1 && n_outputs == 1 {
            (Task::Regression, 0)
        } else if stride == n_outputs + 1 && n_outputs >= 2 {
            (Task::Classification, n_outputs)
        } else {
            return Err(invalid(format!(
                "output_stride {stride} with {n_outputs} outputs fits neither a regressor (1 and \
                 1) nor a classifier (n classes, n + 1)"
            )));
        };
        // Sizes that fit in memory cannot overflow the layout's arithmetic.
        let largest = max_rows as u128 * n_features.max(stride) as u128 * 8;
        if largest > u128::from(layout.memory_bytes) {
            return Err(invalid(format!(
                "memory too small for its buffers: {max_rows} rows of {} f64s, the module has {} \
                 bytes of memory",
                n_features.max(stride),
                layout.memory_bytes
            )));
        }
        layout.check(n_features, classes).map_err(|e| match e {
            model_wasm::Error::InvalidModule(message) => invalid(message),
            other => invalid(other.to_string()),
        })?;
        let shape = Shape {
            n_features,
            n_outputs,
            stride,
            max_rows,
            // Checked non-negative by `Layout::check`.
            input_ptr: layout.input_ptr as usize,
            output_ptr: layout.output_ptr as usize,
            task,
        };
        Ok((layout, shape))
    }

    /// One call into the module: `write` fills the input of `n_rows` rows, then `predict` runs
    /// under the deadline. Returns the output bytes (`n_rows * output_stride` f64s).
    fn call(
        &mut self,
        module: &ModelModule,
        first_row: usize,
        n_rows: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<&[u8]> {
        let shape = &module.shape;
        let input_len = n_rows * shape.n_features * 8;
        let input = self
            .memory
            .data_mut(&mut self.store)
            .get_mut(shape.input_ptr..shape.input_ptr + input_len)
            .ok_or_else(|| invalid("the input buffer left the memory".into()))?;
        write(input);

        self.store.set_epoch_deadline(self.ticks);
        // n_rows <= max_rows, which came from an i32.
        let status = self
            .predict
            .call(&mut self.store, n_rows as i32)
            .map_err(|e| from_wasmtime(&e, self.deadline))?;
        match status {
            STATUS_OK => {
                let output_len = n_rows * shape.stride * 8;
                self.memory
                    .data(&self.store)
                    .get(shape.output_ptr..shape.output_ptr + output_len)
                    .ok_or_else(|| invalid("the output buffer left the memory".into()))
            }
            STATUS_NON_FINITE => {
                let row = self.error_row.call(&mut self.store, ());
                let feature = self.error_feature.call(&mut self.store, ());
                let (row, feature) = match (row, feature) {
                    (Ok(row), Ok(feature)) => (row, feature),
                    (Err(e), _) | (_, Err(e)) => return Err(from_wasmtime(&e, self.deadline)),
                };
                let (Ok(row), Ok(feature)) = (usize::try_from(row), usize::try_from(feature)) else {
                    return Err(invalid(format!(
                        "status 2 at row {row}, feature {feature}: not indices"
                    )));
                };
                if row >= n_rows || feature >= shape.n_features {
                    return Err(invalid(format!(
                        "status 2 at row {row}, feature {feature}, outside {n_rows} rows of {} \
                         features",
                        shape.n_features
                    )));
                }
                let message = self.last_error()?;
                Err(HostError::Input {
                    row: first_row + row,
                    feature: Some(feature),
                    message: if message.is_empty() {
                        "not a finite number".into()
                    } else {
                        message
                    },
                })
            }
            STATUS_BAD_ROW_COUNT => Err(invalid(format!(
                "predict({n_rows}) returned status 1 (row count out of range) although max_rows \
                 is {}: {}",
                shape.max_rows,
                self.last_error()?
            ))),
            other => Err(invalid(format!("predict returned unknown status {other}"))),
        }
    }

    /// The module's `last_error` message, at most [`MAX_MESSAGE`] bytes, lossily decoded.
    fn last_error(&mut self) -> Result<String> {
        let ptr = self.last_error_ptr.call(&mut self.store, ());
        let len = self.last_error_len.call(&mut self.store, ());
        let (ptr, len) = match (ptr, len) {
            (Ok(ptr), Ok(len)) => (ptr, len),
            (Err(e), _) | (_, Err(e)) => return Err(from_wasmtime(&e, self.deadline)),
        };
        let (Ok(ptr), Ok(len)) = (usize::try_from(ptr), usize::try_from(len)) else {
            return Ok(String::new());
        };
        let data = self.memory.data(&self.store);
        let bytes = data
            .get(ptr..ptr.saturating_add(len.min(MAX_MESSAGE)))
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}
