//! The process-wide wasmtime engine: configuration for untrusted modules and the epoch ticker.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Linker, OptLevel, PoolingAllocationConfig, ResourceLimiter, Strategy,
};

use crate::error::{HostError, LimitExceeded, Result};
use crate::pool::Pool;

/// The `runtime` label of the predictions this host makes, in metrics and telemetry (the edge's
/// and the control plane's): `wasmtime`.
pub const RUNTIME_LABEL: &str = "wasmtime";

/// How the engine is sized. The defaults suit an edge node serving a handful of models.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Instances alive at once across every loaded module (the pooling allocator's slots): idle
    /// instances kept for reuse plus calls in flight. When every slot is in a call, a call waits
    /// for one ([`ModelModule::lease`](crate::ModelModule::lease)) or fails with
    /// [`HostError::Busy`]; idle instances give their slot up to a call that needs one.
    pub max_instances: u32,
    /// Largest linear memory any instance may have; a module's own limit
    /// ([`crate::ModuleLimits::max_memory_bytes`]) can only be lower.
    pub max_memory_bytes: usize,
    /// How often the epoch advances; deadlines are counted in these ticks.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_instances: 64,
            max_memory_bytes: 64 << 20,
            epoch_tick: Duration::from_millis(1),
        }
    }
}

/// One per process: the wasmtime [`Engine`] (Cranelift, epoch interruption, pooling allocator),
/// an empty [`Linker`] (modules get no imports: no WASI, no host functions) and a background
/// thread that advances the epoch every [`RuntimeConfig::epoch_tick`].
///
/// Cheap to clone (an `Arc`). The ticker stops when the last clone, and the last
/// [`ModelModule`](crate::ModelModule) loaded with it, is dropped.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreState>,
    pub(crate) config: RuntimeConfig,
    /// The slots of the pooling allocator, as the host counts them.
    pub(crate) pool: Arc<Pool>,
    ticker: Option<Ticker>,
}

impl std::fmt::Debug for RuntimeInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeInner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker. Fails (as [`HostError::Limits`]) when the
    /// pooling allocator cannot reserve its address space.
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        if config.epoch_tick.is_zero() {
            return Err(HostError::Limits("the epoch tick must be positive".into()));
        }
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(config.max_memory_bytes)
            // Reset a returned slot with memset up to this size instead of madvise: cheaper
            // for the small memories generated modules have.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10);

        let mut wasm = Config::new();
        wasm.strategy(Strategy::Cranelift)
            .cranelift_opt_level(OptLevel::Speed)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

        let engine =
            Engine::new(&wasm).map_err(|e| HostError::Limits(format!("cannot create the wasmtime engine: {e:#}")))?;
        let ticker = Ticker::start(engine.clone(), config.epoch_tick);
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                linker: Linker::new(&engine),
                engine,
                pool: Pool::new(config.max_instances as usize),
                config,
                ticker: Some(ticker),
            }),
        })
    }

    /// The engine, for callers that want to precompile or inspect.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Instances currently holding a pool slot (idle ones kept for reuse and calls in flight).
    pub fn live_instances(&self) -> u64 {
        self.inner
            .engine
            .pooling_allocator_metrics()
            .map_or(0, |metrics| metrics.core_instances())
    }

    /// Calls waiting for an instance now (every slot of the pool is in a call).
    pub fn waiting_calls(&self) -> usize {
        self.inner.pool.waiting()
    }

    /// Epoch ticks that cover `deadline` (at least one).
    pub(crate) fn ticks(&self, deadline: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.as_nanos();
        u64::try_from(deadline.as_nanos().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// The thread that advances the engine's epoch. Stopped by dropping the sender, so it wakes at
/// once instead of finishing its sleep.
struct Ticker {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wasmline-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { stop, thread }
    }

    fn stop(self) {
        drop(self.stop);
        // The thread only loops and increments a counter; it cannot panic.
        let _ = self.thread.join();
    }
}

/// What each store carries: its resource limits.
#[derive(Debug)]
pub(crate) struct StoreState {
    pub(crate) limiter: MemoryLimiter,
}

/// Refuses growth past the module's limits with an error (a trap naming the limit), so a
/// module that asks for too much fails its call with [`HostError::Limits`].
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub(crate) max_memory_bytes: usize,
    pub(crate) max_table_elements: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            return Err(LimitExceeded {
                what: "memory",
                unit: "bytes",
                desired,
                limit: self.max_memory_bytes,
            }
            .into());
        }
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            return Err(LimitExceeded {
                what: "table",
                unit: "elements",
                desired,
                limit: self.max_table_elements,
            }
            .into());
        }
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: 2,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert_eq!(runtime.ticks(Duration::from_millis(100)), 100);
        assert_eq!(runtime.ticks(Duration::from_micros(1500)), 2);
        assert_eq!(runtime.ticks(Duration::ZERO), 1);
        assert_eq!(runtime.ticks(Duration::MAX), u64::MAX);
    }

    #[test]
    fn the_ticker_stops_on_drop() {
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: 2,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let engine = runtime.engine().clone();
        let start = std::time::Instant::now();
        drop(runtime);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "dropping the runtime joins the ticker promptly"
        );
        // The engine outlives the runtime here; nothing advances it any more.
        drop(engine);
    }

    #[test]
    fn a_zero_tick_is_refused() {
        let error = Runtime::new(RuntimeConfig {
            epoch_tick: Duration::ZERO,
            ..RuntimeConfig::default()
        })
        .unwrap_err();
        assert!(matches!(error, HostError::Limits(_)));
    }
}
