//! Modules the host refuses at load, with the reason; versions the load gate refuses, for good
//! or for now.

use std::time::Duration;

use edge_runtime::{
    HostError, LoadError, LoadFailure, LoadOptions, ModelModule, ModuleLimits, QueueLimits, Runtime, RuntimeConfig,
    ServedModel,
};

use crate::fixtures::{AbiModule, INPUT_PTR, linear, with_body};
use crate::support::{
    looping_module, model_files, other_signing_key, public_key, regressor_ir, runtime, signing_key, with_module,
};

fn load(bytes: &[u8]) -> Result<ModelModule, HostError> {
    ModelModule::load(runtime(), bytes, ModuleLimits::default())
}

/// The reason an invalid module is refused.
fn reason(bytes: &[u8]) -> String {
    match load(bytes) {
        Err(HostError::InvalidModule(message)) => message,
        Err(other) => panic!("expected InvalidModule, got {other:?}"),
        Ok(_) => panic!("the module was accepted"),
    }
}

fn good() -> AbiModule {
    linear(&[1.0, 2.0], 0.5)
}

#[test]
fn bytes_that_are_not_webassembly() {
    assert_eq!(reason(b"col_a,col_b\n1,2\n"), "not a WebAssembly module");
    assert_eq!(reason(b""), "not a WebAssembly module");
    assert_eq!(reason(br#"{"schema_version":1}"#), "not a WebAssembly module");
}

#[test]
fn truncated_bytes() {
    let bytes = good().wasm();
    for cut in [9, bytes.len() / 2, bytes.len() - 1] {
        let message = reason(&bytes[..cut]);
        assert!(message.starts_with("truncated"), "cut at {cut}: {message}");
    }
}

#[test]
fn invalid_code() {
    let mut source = good();
    source.extra = "(func (result i32))".into();
    let message = reason(&source.wasm());
    assert!(message.contains("type mismatch"), "{message}");
}

#[test]
fn a_module_with_imports() {
    let mut source = good();
    source.prelude = r#"(import "env" "foo" (func)) (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#.into();
    assert_eq!(
        reason(&source.wasm()),
        "imports are not allowed: env.foo, wasi_snapshot_preview1.fd_write"
    );
}

#[test]
fn a_missing_export() {
    for name in ["predict", "memory", "max_rows", "last_error_len"] {
        let mut source = good();
        source.skip_exports.push(name);
        assert_eq!(reason(&source.wasm()), format!("missing export {name}"));
    }
}

#[test]
fn a_mistyped_export() {
    let mut source = good();
    source.skip_exports.push("predict");
    source.extra = r#"(func (export "predict") (param i32) (result i64) (i64.const 0))"#.into();
    let message = reason(&source.wasm());
    assert!(
        message.starts_with("export predict has type") && message.contains("expected (func (param i32) (result i32))"),
        "{message}"
    );

    let mut source = good();
    source.skip_exports.push("n_features");
    source.extra = r#"(global (export "n_features") i32 (i32.const 2))"#.into();
    assert_eq!(
        reason(&source.wasm()),
        "export n_features is a global, expected a function"
    );
}

#[test]
fn another_abi_version() {
    let mut source = good();
    source.abi_version = 2;
    assert_eq!(
        reason(&source.wasm()),
        "the module speaks ABI version 2, this host speaks 1"
    );
}

#[test]
fn a_memory_too_small_for_its_buffers() {
    let mut source = good();
    source.pages = Some(1);
    source.output_ptr = Some(65536 - 8);
    let message = reason(&source.wasm());
    assert_eq!(
        message,
        "the output buffer 65528..73720 lies outside the module's 65536 bytes of memory"
    );

    let mut source = good();
    source.pages = Some(1);
    source.max_rows = 8192;
    let message = reason(&source.wasm());
    assert!(message.starts_with("memory too small for its buffers"), "{message}");
}

#[test]
fn constants_that_make_no_sense() {
    let mut source = good();
    source.n_features = 0;
    assert_eq!(reason(&source.wasm()), "n_features() returned 0, expected at least 1");

    let mut source = good();
    source.n_outputs = 3;
    source.stride = 2;
    assert!(reason(&source.wasm()).starts_with("output_stride 2 with 3 outputs fits neither"));

    let mut source = good();
    source.output_ptr = Some(INPUT_PTR + 4);
    assert!(reason(&source.wasm()).contains("not 8-byte aligned"));

    let mut source = good();
    source.output_ptr = Some(INPUT_PTR + 8);
    assert!(reason(&source.wasm()).contains("overlaps"));
}

#[test]
fn a_memory_beyond_the_limit() {
    let mut source = good();
    source.pages = Some(2000); // 125 MiB, the default limit is 64 MiB
    assert!(matches!(load(&source.wasm()), Err(HostError::Limits(_))));

    let tight = ModuleLimits {
        max_memory_bytes: 64 << 10,
        ..ModuleLimits::default()
    };
    source.pages = Some(2);
    assert!(matches!(
        ModelModule::load(runtime(), &source.wasm(), tight),
        Err(HostError::Limits(message)) if message.contains("131072")
    ));
}

#[test]
fn a_version_is_refused_for_good_only_for_what_its_bytes_are() {
    let key = signing_key();
    let options = LoadOptions {
        trusted_key: Some(public_key(&key)),
        limits: ModuleLimits {
            deadline: Duration::from_millis(20),
            ..ModuleLimits::default()
        },
        ..LoadOptions::default()
    };
    let ir = regressor_ir(1.0);
    let load = |files: &crate::support::ModelFiles| {
        ServedModel::load(runtime(), &files.manifest, &files.wasm, &options).map(drop)
    };
    let kind_of = |result: Result<(), LoadError>| {
        let error = result.unwrap_err();
        (error.kind(), error.to_string())
    };

    let mut tampered = model_files("m", 1, &ir, Some(&key));
    tampered.wasm[10] ^= 1;
    let foreign = model_files("m", 1, &ir, Some(&other_signing_key()));
    let not_wasm = with_module("m", 1, &ir, b"not a module".to_vec(), Some(&key));
    // Traps on the manifest's sample rows (1 and 5).
    let trapping = with_module("m", 1, &ir, with_body(2, "unreachable").wasm(), Some(&key));
    for (what, files, step) in [
        (
            "a module that is not the manifest's",
            &tampered,
            "does not match the manifest: sha256",
        ),
        (
            "a manifest signed by another key",
            &foreign,
            "manifest signature refused",
        ),
        (
            "bytes that are not a module",
            &not_wasm,
            "module refused: invalid model module",
        ),
        ("a smoke prediction that traps", &trapping, "smoke prediction"),
    ] {
        let (kind, message) = kind_of(load(files));
        assert_eq!(kind, LoadFailure::Permanent, "{what}: {message}");
        assert!(message.contains(step), "{what}: {message}");
    }

    // A smoke prediction past its deadline may be the machine's load: tried again later.
    let looping = with_module("m", 1, &ir, looping_module(2), Some(&key));
    let (kind, message) = kind_of(load(&looping));
    assert_eq!(kind, LoadFailure::Transient, "{message}");
    assert!(message.contains("did not finish within its deadline"), "{message}");

    // So is a pool with every instance in a call.
    let busy = Runtime::new(RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let other = ModelModule::load(&busy, &linear(&[1.0, 2.0], 0.5).wasm(), ModuleLimits::default()).unwrap();
    let block = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let held = block.block_on(other.lease(QueueLimits::default())).unwrap();
    let good = model_files("m", 1, &ir, Some(&key));
    let loaded = ServedModel::load(&busy, &good.manifest, &good.wasm, &options).map(drop);
    let (kind, message) = kind_of(loaded);
    assert_eq!(kind, LoadFailure::Transient, "{message}");
    assert!(message.contains("no instance free"), "{message}");
    drop(held);
    assert!(ServedModel::load(&busy, &good.manifest, &good.wasm, &options).is_ok());
    assert_eq!(LoadFailure::Transient.label(), "transient");
    assert_eq!(LoadFailure::Permanent.label(), "permanent");
}
