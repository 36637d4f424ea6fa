//! Modules that loop, trap or grab memory fail their call, not the process; instances don't leak.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_runtime::{HostError, ModelModule, ModuleLimits, Prediction, QueueLimits, Runtime, RuntimeConfig};

use crate::fixtures::{AbiModule, with_body};
use crate::support::runtime;

/// A one-feature regressor that runs `misbehave` when the first value of the batch is negative
/// and otherwise predicts the feature itself.
fn misbehaving_when_negative(misbehave: &str) -> AbiModule {
    with_body(
        1,
        &format!(
            r#"(if (f64.lt (call $in (i32.const 0) (i32.const 0)) (f64.const 0))
      (then {misbehave}))
    (local.set $r (i32.const 0))
    (block $done (loop $rows
      (br_if $done (i32.ge_s (local.get $r) (local.get $n)))
      (call $out (local.get $r) (i32.const 0) (call $in (local.get $r) (i32.const 0)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows)))"#
        ),
    )
}

const LOOP_FOREVER: &str = "(loop $forever (br $forever))";

fn limits(deadline_ms: u64) -> ModuleLimits {
    ModuleLimits {
        deadline: Duration::from_millis(deadline_ms),
        ..ModuleLimits::default()
    }
}

#[test]
fn an_endless_loop_is_stopped_by_the_deadline() {
    let source = misbehaving_when_negative(LOOP_FOREVER);
    let module = ModelModule::load(runtime(), &source.wasm(), limits(50)).unwrap();

    let start = Instant::now();
    let error = module.predict(&[[-1.0]]).unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(error, HostError::Timeout(Duration::from_millis(50)));
    // Loose: the machine may be busy. The deadline itself is ~50 ms.
    assert!(elapsed < Duration::from_secs(5), "stopped after {elapsed:?}");
    eprintln!("endless loop stopped after {elapsed:?} (deadline 50 ms)");

    // The module keeps serving.
    assert_eq!(module.predict(&[[2.5]]).unwrap(), [Prediction::Value(2.5)]);
}

#[test]
fn the_default_deadline_is_100_ms() {
    let module = ModelModule::load(
        runtime(),
        &misbehaving_when_negative(LOOP_FOREVER).wasm(),
        ModuleLimits::default(),
    )
    .unwrap();
    assert_eq!(module.limits().deadline, Duration::from_millis(100));
    let start = Instant::now();
    assert_eq!(
        module.predict(&[[-1.0]]),
        Err(HostError::Timeout(Duration::from_millis(100)))
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_endless_start_function_fails_the_load() {
    let mut source = misbehaving_when_negative("");
    source.extra = format!("(func $spin {LOOP_FOREVER}) (start $spin)");
    let start = Instant::now();
    let error = ModelModule::load(runtime(), &source.wasm(), limits(20)).unwrap_err();
    assert_eq!(error, HostError::Timeout(Duration::from_millis(20)));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn growing_memory_past_the_limit_fails_the_call() {
    // 2000 pages = 125 MiB, past the 64 MiB default.
    let source = misbehaving_when_negative("(drop (memory.grow (i32.const 2000)))");
    let module = ModelModule::load(runtime(), &source.wasm(), ModuleLimits::default()).unwrap();
    match module.predict(&[[-1.0]]) {
        Err(HostError::Limits(message)) => assert!(message.contains("memory"), "{message}"),
        other => panic!("expected Limits, got {other:?}"),
    }
    assert_eq!(module.predict(&[[1.0]]).unwrap(), [Prediction::Value(1.0)]);

    // Within the limit, growing is allowed (the ABI says modules do not, but it is harmless).
    let source = misbehaving_when_negative("(drop (memory.grow (i32.const 1)))");
    let module = ModelModule::load(runtime(), &source.wasm(), ModuleLimits::default()).unwrap();
    assert_eq!(module.predict(&[[-1.0]]).unwrap(), [Prediction::Value(-1.0)]);
}

#[test]
fn traps_are_errors() {
    for (misbehave, expected) in [
        ("unreachable", "unreachable"),
        (
            "(drop (i32.div_s (i32.const 1) (i32.sub (local.get $n) (local.get $n))))",
            "divide by zero",
        ),
        ("(drop (i32.load (i32.const -4)))", "out of bounds memory access"),
        ("(call $recurse)", "call stack exhausted"),
    ] {
        let mut source = misbehaving_when_negative(misbehave);
        source.extra = "(func $recurse (call $recurse))".into();
        let module = ModelModule::load(runtime(), &source.wasm(), ModuleLimits::default()).unwrap();
        match module.predict(&[[-1.0]]) {
            Err(HostError::Trap(message)) => {
                assert!(message.contains(expected), "{misbehave}: {message}")
            }
            other => panic!("{misbehave}: expected Trap, got {other:?}"),
        }
        assert_eq!(module.predict(&[[1.0]]).unwrap(), [Prediction::Value(1.0)]);
    }
}

/// A runtime of its own, so the instance count is this test's.
fn small_runtime(max_instances: u32) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_instances,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

#[test]
fn many_calls_do_not_leak_instances() {
    for idle_instances in [0, 2] {
        let runtime = small_runtime(4);
        let source = misbehaving_when_negative("unreachable");
        let limits = ModuleLimits {
            idle_instances,
            ..ModuleLimits::default()
        };
        let module = ModelModule::load(&runtime, &source.wasm(), limits).unwrap();
        for i in 0..600 {
            match i % 3 {
                0 => assert_eq!(module.predict(&[[1.0]]).unwrap(), [Prediction::Value(1.0)]),
                1 => assert!(matches!(module.predict(&[[-1.0]]), Err(HostError::Trap(_)))),
                _ => assert!(matches!(
                    module.predict(&[[f64::NAN]]),
                    Err(HostError::Input {
                        row: 0,
                        feature: Some(0),
                        ..
                    })
                )),
            }
        }
        assert!(
            runtime.live_instances() <= idle_instances as u64,
            "{} instances alive, {idle_instances} kept idle",
            runtime.live_instances()
        );
        drop(module);
        assert_eq!(runtime.live_instances(), 0);
    }
}

#[test]
fn concurrent_calls_beyond_the_idle_instances_are_served_and_released() {
    let runtime = small_runtime(8);
    let limits = ModuleLimits {
        idle_instances: 1,
        ..ModuleLimits::default()
    };
    let module = Arc::new(ModelModule::load(&runtime, &misbehaving_when_negative("").wasm(), limits).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let module = module.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let x = (t * 1000 + i) as f64;
                    assert_eq!(module.predict(&[[x]]).unwrap(), [Prediction::Value(x)]);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(runtime.live_instances() <= 1);
}

#[test]
fn a_full_pool_takes_idle_instances_back_and_is_busy_only_with_every_instance_in_a_call() {
    let runtime = small_runtime(2);
    let source = misbehaving_when_negative("").wasm();
    let limits = ModuleLimits {
        idle_instances: 1,
        ..ModuleLimits::default()
    };
    let first = ModelModule::load(&runtime, &source, limits.clone()).unwrap();
    let second = ModelModule::load(&runtime, &source, limits.clone()).unwrap();
    // Both slots hold idle instances: a third module, and a call of a module whose idle
    // instance was taken back, get one of them.
    let third = ModelModule::load(&runtime, &source, limits.clone()).unwrap();
    assert_eq!(runtime.live_instances(), 2);
    for module in [&first, &second, &third] {
        assert_eq!(module.predict(&[[1.5]]).unwrap(), [Prediction::Value(1.5)]);
    }
    assert_eq!(runtime.live_instances(), 2);

    // Both instances in calls: a load and a call that may not wait are busy.
    let block = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let a = block.block_on(first.lease(QueueLimits::default())).unwrap();
    let b = block.block_on(second.lease(QueueLimits::default())).unwrap();
    let busy = "every one of the 2 instances of the pool is in a call";
    assert_eq!(
        ModelModule::load(&runtime, &source, limits.clone()).unwrap_err(),
        HostError::Busy(busy.into())
    );
    assert_eq!(third.predict(&[[1.0]]), Err(HostError::Busy(busy.into())));
    assert!(HostError::Busy(busy.into()).is_transient());

    // A call ends: its instance goes back to its module, and another module takes its slot.
    let mut outputs = Vec::new();
    first.predict_flat_on(a, &[2.0], &mut outputs).unwrap();
    assert_eq!(outputs, [2.0]);
    assert_eq!(third.predict(&[[3.0]]).unwrap(), [Prediction::Value(3.0)]);
    drop(b);
    assert_eq!(runtime.waiting_calls(), 0);
    drop((first, second, third));
    assert_eq!(runtime.live_instances(), 0);
}

#[test]
fn a_call_waits_for_an_instance_another_call_gives_back() {
    let runtime = small_runtime(1);
    let module = Arc::new(ModelModule::load(&runtime, &misbehaving_when_negative("").wasm(), limits(100)).unwrap());
    let block = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let held = block.block_on(module.lease(QueueLimits::default())).unwrap();
    let waiter = {
        let module = module.clone();
        block.spawn(async move {
            let lease = module.lease(QueueLimits::default()).await?;
            let mut outputs = Vec::new();
            module.predict_flat_on(lease, &[4.0], &mut outputs).map(|()| outputs)
        })
    };
    let give_up = Instant::now() + Duration::from_secs(60);
    while runtime.waiting_calls() == 0 {
        assert!(Instant::now() < give_up, "the second call never waited");
        std::thread::yield_now();
    }
    let mut outputs = Vec::new();
    module.predict_flat_on(held, &[5.0], &mut outputs).unwrap();
    assert_eq!(outputs, [5.0]);
    assert_eq!(block.block_on(waiter).unwrap().unwrap(), [4.0]);
    assert_eq!(runtime.live_instances(), 1, "one instance served both calls");
}
