//! The instance slots of one [`Runtime`](crate::Runtime), as the host counts them: the pooling
//! allocator has a fixed number of slots, and every live instance (idle in a module's queue or in
//! a call) holds one [`Slot`].
//!
//! - A slot is taken without waiting by [`Pool::try_slot`]: a free one, or one freed by dropping
//!   an idle instance of any module (idle instances never keep a busy module waiting, nor a new
//!   version from loading).
//! - When every slot is in a call, [`Pool::wait`] waits, up to a [`QueueLimits`], for an instance
//!   to come back or a slot to free; past its timeout, or when too many calls wait already, it
//!   fails with [`HostError::Busy`] (a server's 503). Waiters are woken one at a time, the
//!   longest-waiting first, though a call that arrives as an instance comes back may take it
//!   before them.
//!
//! The counting keeps wasmtime from ever seeing an instantiation the pool cannot hold, so a full
//! pool is a wait or a [`HostError::Busy`], never a failed instantiation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::{HostError, Result};

/// How long a call may wait for an instance when the pool is full, and how many calls may wait
/// at once (across the runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Longest wait for an instance; past it the call fails with [`HostError::Busy`].
    pub timeout: Duration,
    /// Most calls waiting at once; one more fails at once with [`HostError::Busy`].
    pub max_waiting: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_waiting: 256,
        }
    }
}

/// Idle instances the pool may drop to free a slot (a module's queue of idle instances).
pub(crate) trait IdleInstances: Send + Sync {
    /// Drops one idle instance, if any; `true` when one was dropped (its slot is free).
    fn drop_one(&self) -> bool;
}

/// A waiter re-checks this often even without a wake-up: a safety net, so that no interleaving
/// of a return and a waiter's registration can leave a free instance and a sleeping waiter.
const RECHECK: Duration = Duration::from_millis(20);

/// The slots of one runtime.
pub(crate) struct Pool {
    size: usize,
    free: AtomicUsize,
    /// Calls in [`Pool::wait`].
    waiting: AtomicUsize,
    wake: Notify,
    /// Every module's idle queue, for [`Pool::try_slot`] to take slots back from.
    idle: Mutex<Vec<Weak<dyn IdleInstances>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("free", &self.free.load(Ordering::Relaxed))
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One slot of the pool, held by a live instance; freed (and a waiter woken) on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    pool: Arc<Pool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.free.fetch_add(1, Ordering::AcqRel);
        self.pool.returned();
    }
}

impl Pool {
    pub(crate) fn new(size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            size,
            free: AtomicUsize::new(size),
            waiting: AtomicUsize::new(0),
            wake: Notify::new(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Calls waiting for an instance now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Lets [`try_slot`](Self::try_slot) drop instances of `queue` when the pool is full.
    pub(crate) fn register(&self, queue: Weak<dyn IdleInstances>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|q| q.strong_count() > 0);
        idle.push(queue);
    }

    /// A free slot, or one freed by dropping an idle instance of any module; `None` when every
    /// slot is held by an instance in a call.
    pub(crate) fn try_slot(self: &Arc<Self>) -> Option<Slot> {
        loop {
            if let Some(slot) = self.take_free() {
                return Some(slot);
            }
            if !self.drop_an_idle_instance() {
                // One may have come free meanwhile.
                return self.take_free();
            }
        }
    }

    fn take_free(self: &Arc<Self>) -> Option<Slot> {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|_| Slot { pool: self.clone() })
    }

    fn drop_an_idle_instance(&self) -> bool {
        let queues: Vec<Arc<dyn IdleInstances>> = {
            let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.iter().filter_map(Weak::upgrade).collect()
        };
        // The instance is dropped outside the lock (dropping a store resets its memory).
        queues.iter().any(|queue| queue.drop_one())
    }

    /// An instance went back to an idle queue or a slot came free: wakes a waiter, if any.
    pub(crate) fn returned(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.wake.notify_one();
        }
    }

    /// The error of a call that found no instance and may not wait.
    pub(crate) fn full(&self) -> HostError {
        HostError::Busy(format!(
            "every one of the {} instances of the pool is in a call",
            self.size
        ))
    }

    /// Runs `take` (an idle instance of the caller's module, or a fresh one in a free slot)
    /// until it gives one, waiting for returns in between, up to `limits`.
    pub(crate) async fn wait<T>(&self, limits: QueueLimits, mut take: impl FnMut() -> Result<Option<T>>) -> Result<T> {
        if let Some(taken) = take()? {
            return Ok(taken);
        }
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut waiter = Waiter {
            pool: self,
            done: false,
        };
        if ahead >= limits.max_waiting {
            return Err(HostError::Busy(format!(
                "every one of the {} instances of the pool is in a call, and the queue for one is full \
                 ({ahead} waiting)",
                self.size
            )));
        }
        let deadline = tokio::time::Instant::now() + limits.timeout;
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(taken) = take()? {
                waiter.done = true;
                return Ok(taken);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(HostError::Busy(format!(
                    "no instance came free within {:?}: every one of the {} instances of the pool is in a call",
                    limits.timeout, self.size
                )));
            }
            let _ = tokio::time::timeout_at(deadline.min(now + RECHECK), notified).await;
        }
    }
}

/// A call in [`Pool::wait`]: leaves the count on drop (also when the call is cancelled), and
/// passes a wake-up it may have taken on to the next waiter when it leaves without an instance.
struct Waiter<'a> {
    pool: &'a Pool,
    done: bool,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.pool.waiting.fetch_sub(1, Ordering::SeqCst);
        if !self.done {
            self.pool.returned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Queue(Mutex<Vec<Slot>>);

    impl IdleInstances for Queue {
        fn drop_one(&self) -> bool {
            self.0.lock().unwrap().pop().is_some()
        }
    }

    #[test]
    fn slots_are_counted_and_idle_ones_taken_back() {
        let pool = Pool::new(2);
        let a = pool.try_slot().unwrap();
        let b = pool.try_slot().unwrap();
        assert!(pool.try_slot().is_none(), "both in use");
        drop(a);
        let a = pool.try_slot().unwrap();

        // An idle instance holding a slot gives it up to a caller that needs one.
        let queue: Arc<Queue> = Arc::new(Queue(Mutex::new(vec![b])));
        let weak: Weak<dyn IdleInstances> = Arc::downgrade(&queue) as Weak<dyn IdleInstances>;
        pool.register(weak);
        let c = pool.try_slot().expect("the idle one is dropped");
        assert!(queue.0.lock().unwrap().is_empty());
        assert!(pool.try_slot().is_none());
        drop((a, c));
        assert_eq!(pool.free.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_waiter_gets_a_freed_slot_and_the_queue_is_bounded() {
        let pool = Pool::new(1);
        let held = pool.try_slot().unwrap();
        let limits = QueueLimits {
            timeout: Duration::from_secs(3600),
            max_waiting: 1,
        };
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.wait(limits, || Ok(pool.try_slot())).await.map(drop) })
        };
        while pool.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // One waits: the next is refused at once.
        let refused = pool.wait(limits, || Ok(pool.try_slot())).await.unwrap_err();
        assert!(
            matches!(&refused, HostError::Busy(m) if m.ends_with("the queue for one is full (1 waiting)")),
            "{refused}"
        );
        drop(held);
        waiter.await.unwrap().unwrap();
        assert_eq!(pool.waiting(), 0);
    }

    #[tokio::test]
    async fn a_wait_past_its_timeout_is_busy() {
        let pool = Pool::new(1);
        let _held = pool.try_slot().unwrap();
        let limits = QueueLimits {
            timeout: Duration::from_millis(1),
            max_waiting: 8,
        };
        let error = pool.wait(limits, || Ok(pool.try_slot())).await.unwrap_err();
        assert!(
            matches!(&error, HostError::Busy(m) if m.starts_with("no instance came free within 1ms")),
            "{error}"
        );
        assert_eq!(pool.waiting(), 0);
    }
}
