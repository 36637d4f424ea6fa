//! The registry against a real local store: registration, reads, aliases, and the compare gate
//! on data made by the real pipeline.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use model_wasm::{Body, IR_VERSION, Link, ModelIr, Output};

use super::manifest::tests::draft;
use super::*;
use crate::registry::alias::ALIAS_HISTORY_LIMIT;
use crate::registry::manifest::MANIFEST_SCHEMA_VERSION;
use crate::store::{LocalStore, ObjectStore};

fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    (dir, store)
}

/// A logistic IR over `features` with the given weights (all zero: a coin flip).
pub(crate) fn logistic(features: &[String], weights: Vec<f64>, intercept: f64) -> ModelIr {
    ModelIr {
        ir_version: IR_VERSION,
        features: features.to_vec(),
        preprocess: vec![],
        body: Body::Linear {
            weights,
            intercepts: vec![intercept],
            link: Link::Sigmoid,
        },
        output: Output::Classification {
            classes: vec!["0".into(), "1".into()],
        },
    }
}

fn artifacts(ir: &ModelIr) -> Vec<(String, Bytes)> {
    vec![
        (IR_ARTIFACT.to_owned(), Bytes::from(serde_json::to_vec(ir).unwrap())),
        ("model.onnx".to_owned(), Bytes::from_static(b"\x08\x07 not really onnx")),
    ]
}

/// Registers a coin-flip model over features `a` and `b`.
async fn register_one(store: &dyn ObjectStore, name: &str) -> Manifest {
    let features = ["a".to_owned(), "b".to_owned()];
    register(
        store,
        draft(name, &["a", "b"]),
        artifacts(&logistic(&features, vec![0.0; 2], 0.0)),
    )
    .await
    .unwrap()
}

fn registry_error(err: &anyhow::Error) -> &RegistryError {
    err.downcast_ref::<RegistryError>()
        .unwrap_or_else(|| panic!("not a registry error: {err:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_get_distinct_versions() {
    let (_dir, store) = store();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { register_one(store.as_ref(), "wine").await })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
    assert_eq!(list_versions(store.as_ref(), "wine").await.unwrap(), versions);
    assert_eq!(list_models(store.as_ref()).await.unwrap(), vec!["wine".to_owned()]);
    for v in versions {
        let m = load_version(store.as_ref(), "wine", v).await.unwrap();
        assert_eq!(m.version, v);
        verify_artifacts(store.as_ref(), &m).await.unwrap();
    }
    let latest = load_manifest(store.as_ref(), &"wine".parse().unwrap()).await.unwrap();
    assert_eq!(latest.version, 8);
}

#[tokio::test]
async fn registration_stores_verified_artifacts_and_a_signed_manifest() {
    let (_dir, store) = store();
    let m = register_one(&store, "wine").await;
    assert_eq!((m.version, m.schema_version), (1, MANIFEST_SCHEMA_VERSION));
    assert_eq!(
        m.artifacts.keys().collect::<Vec<_>>(),
        vec!["model.ir.json", "model.onnx"]
    );
    verify(&m, &load_public_key(&store).await.unwrap()).unwrap();
    for file in ["manifest.json", "claim.json", "model.ir.json", "model.onnx"] {
        assert!(
            store.path_of(&version_key("wine", 1, file).unwrap()).is_file(),
            "{file}"
        );
    }
    let onnx = load_artifact(&store, &m, "model.onnx").await.unwrap();
    assert_eq!(&onnx[..], b"\x08\x07 not really onnx");
    let loaded = load_manifest(&store, &"wine@1".parse().unwrap()).await.unwrap();
    assert_eq!(loaded, m);
    let err = load_artifact(&store, &m, "model.wasm").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "model wine@1 has no artifact 'model.wasm' (it has: model.ir.json, model.onnx)"
    );
    assert!(registry_error(&err).is_not_found());
}

#[tokio::test]
async fn a_flipped_byte_is_detected_and_never_returned() {
    let (_dir, store) = store();
    let m = register_one(&store, "wine").await;
    let path = store.path_of(&version_key("wine", 1, "model.onnx").unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = load_artifact(&store, &m, "model.onnx").await.unwrap_err();
    assert!(matches!(registry_error(&err), RegistryError::Corrupted { file, .. } if file == "model.onnx"));
    assert!(
        err.to_string()
            .starts_with("artifact 'model.onnx' of model wine@1 is corrupted: sha256 "),
        "{err}"
    );
    // The alias will not move to a corrupted version.
    let err = set_alias(&store, "wine", "production", 1, "test").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("artifact 'model.onnx' of model wine@1 is corrupted"),
        "{err:#}"
    );
    assert!(get_alias(&store, "wine", "production").await.unwrap().is_none());
    // A truncated or missing file too.
    std::fs::write(&path, &bytes[..4]).unwrap();
    let err = load_artifact(&store, &m, "model.onnx").await.unwrap_err();
    assert!(
        err.to_string().ends_with("is corrupted: 4 bytes, the manifest says 18"),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    let err = load_artifact(&store, &m, "model.onnx").await.unwrap_err();
    assert!(err.to_string().contains("model.onnx is missing from"), "{err}");
}

#[tokio::test]
async fn a_manifest_changed_in_the_store_does_not_load() {
    let (_dir, store) = store();
    register_one(&store, "wine").await;
    let path = store.path_of(&version_key("wine", 1, "manifest.json").unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"f1\": 0.7512345678901234", "\"f1\": 0.9")).unwrap();
    let err = load_version(&store, "wine", 1).await.unwrap_err();
    assert!(
        matches!(registry_error(&err), RegistryError::BadSignature { .. }),
        "{err:#}"
    );
    assert!(err.to_string().contains("does not match its content"), "{err}");
}

#[tokio::test]
async fn aliases_keep_their_history_and_roll_back() {
    let (_dir, store) = store();
    for _ in 0..3 {
        register_one(&store, "wine").await;
    }
    let r = set_alias(&store, "wine", "production", 1, "alice").await.unwrap();
    assert_eq!((r.version, r.by.as_str(), r.history.len()), (1, "alice", 0));
    set_alias(&store, "wine", "production", 2, "bob").await.unwrap();
    let r = set_alias(&store, "wine", "production", 3, "carol").await.unwrap();
    let history: Vec<(u64, &str)> = r.history.iter().map(|e| (e.version, e.by.as_str())).collect();
    assert_eq!(history, vec![(2, "bob"), (1, "alice")]);
    // Promoting the current version again changes nothing.
    assert_eq!(set_alias(&store, "wine", "production", 3, "dave").await.unwrap(), r);
    assert_eq!(get_alias(&store, "wine", "production").await.unwrap(), Some(r));
    let m = load_manifest(&store, &"wine@production".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(m.version, 3);

    let r = rollback(&store, "wine", "production", "erin").await.unwrap();
    assert_eq!((r.version, r.by.as_str()), (2, "erin"));
    assert_eq!(r.history.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1]);
    // A second rollback goes further back, not to the version just left.
    let r = rollback(&store, "wine", "production", "erin").await.unwrap();
    assert_eq!((r.version, r.history.len()), (1, 0));
    let err = rollback(&store, "wine", "production", "erin").await.unwrap_err();
    assert!(matches!(registry_error(&err), RegistryError::NothingToRollBack { .. }));
    assert_eq!(
        err.to_string(),
        "alias 'production' of model 'wine' has no earlier version to roll back to"
    );
    let err = rollback(&store, "wine", "staging", "erin").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "model 'wine' has no alias 'staging' (it has: production)"
    );

    // The history is capped, newest first.
    for i in 0..60 {
        set_alias(&store, "wine", "staging", 1 + i % 2, "ci").await.unwrap();
    }
    let r = get_alias(&store, "wine", "staging").await.unwrap().unwrap();
    assert_eq!((r.version, r.history.len()), (2, ALIAS_HISTORY_LIMIT));
    assert_eq!(r.history[0].version, 1);
    let aliases = list_aliases(&store, "wine").await.unwrap();
    assert_eq!(aliases.keys().collect::<Vec<_>>(), vec!["production", "staging"]);

    // Every move is one numbered transition in the log, also past the history's cap.
    let log = alias_log(&store, "wine", "production").await.unwrap();
    let moves: Vec<(u64, Option<u64>, u64, &str)> = log
        .iter()
        .map(|e| (e.transition, e.from, e.version, e.by.as_str()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (1, None, 1, "alice"),
            (2, Some(1), 2, "bob"),
            (3, Some(2), 3, "carol"),
            (4, Some(3), 2, "erin"),
            (5, Some(2), 1, "erin"),
        ]
    );
    assert_eq!(alias_log(&store, "wine", "staging").await.unwrap().len(), 60);
    assert_eq!(r.transition, 60);
}

/// Moves of one alias from many tasks at once, through two stores on one directory (as two
/// processes would): none is lost, each answer is one transition, and the alias ends at the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_moves_of_an_alias_lose_nothing() {
    let (dir, store) = store();
    const SETS: u64 = 24;
    for _ in 0..=SETS {
        register_one(&store, "wine").await;
    }
    set_alias(&store, "wine", "production", 1, "seed").await.unwrap();
    let stores: [Arc<dyn ObjectStore>; 2] = [
        Arc::new(LocalStore::open(dir.path()).unwrap()),
        Arc::new(LocalStore::open(dir.path()).unwrap()),
    ];
    // Each set names a version nobody else sets (2..=25), so each is a move; rollbacks too.
    let mut tasks = Vec::new();
    for i in 0..SETS + 8 {
        let store = stores[i as usize % 2].clone();
        tasks.push(tokio::spawn(async move {
            let by = format!("writer {i}");
            if i < SETS {
                set_alias(store.as_ref(), "wine", "production", 2 + i, &by).await
            } else {
                rollback(store.as_ref(), "wine", "production", &by).await
            }
        }));
    }
    let mut answered = std::collections::BTreeMap::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(record) => assert!(
                answered.insert(record.transition, record).is_none(),
                "two answers name one transition"
            ),
            Err(e) => assert!(
                matches!(registry_error(&e), RegistryError::NothingToRollBack { .. }),
                "{e:#}"
            ),
        }
    }
    let last = get_alias(&store, "wine", "production").await.unwrap().unwrap();
    assert_eq!(last.transition, 1 + answered.len() as u64, "every answer is one move");
    let log = alias_log(&store, "wine", "production").await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.transition).collect::<Vec<_>>(),
        (1..=last.transition).collect::<Vec<_>>(),
        "one log entry per transition, none missing"
    );
    for entry in &log[1..] {
        let answer = &answered[&entry.transition];
        assert_eq!((answer.version, &answer.by), (entry.version, &entry.by));
    }
    for pair in log.windows(2) {
        assert_eq!(
            pair[1].from,
            Some(pair[0].version),
            "each move starts where the last ended"
        );
    }
    assert_eq!(log.last().unwrap().version, last.version);
    let sets = log
        .iter()
        .filter(|e| e.by.starts_with("writer") && e.transition > 1)
        .count();
    assert!(sets >= SETS as usize, "every set moved the alias: {sets}");
}

/// The store goes away at every write of a registration in turn: no version is ever half
/// visible, and once it is back, registering again publishes a complete version.
#[tokio::test]
async fn a_store_failing_mid_publish_leaves_no_half_version_and_the_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::FaultyStore::new(LocalStore::open(dir.path()).unwrap());
    register_one(&store, "wine").await;
    let features = ["a".to_owned(), "b".to_owned()];
    let files = artifacts(&logistic(&features, vec![0.5; 2], 0.0));
    // A claim, the artifacts, the manifest: every write a registration makes.
    for n in 0..files.len() + 2 {
        store.fail_writes_after(Some(n));
        let err = register(&store, draft("wine", &["a", "b"]), files.clone())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("injected"), "{err:#}");
        assert_eq!(
            list_versions(&store, "wine").await.unwrap(),
            vec![1],
            "after failing write {n}"
        );
        store.fail_writes_after(None);
    }
    let manifest = register(&store, draft("wine", &["a", "b"]), files).await.unwrap();
    assert_eq!(list_versions(&store, "wine").await.unwrap(), vec![1, manifest.version]);
    verify_artifacts(&store, &manifest).await.unwrap();
}

/// Conditional creates that land but whose answers are lost (a proxy dropping the response):
/// the registration succeeds once, with one version, not a failure nor two.
#[tokio::test]
async fn a_lost_answer_to_a_conditional_create_makes_no_duplicate_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::FaultyStore::new(LocalStore::open(dir.path()).unwrap());
    register_one(&store, "wine").await;
    store
        .lose_create_answers
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let features = ["a".to_owned(), "b".to_owned()];
    let manifest = register(
        &store,
        draft("wine", &["a", "b"]),
        artifacts(&logistic(&features, vec![0.5; 2], 0.0)),
    )
    .await
    .unwrap();
    assert_eq!(manifest.version, 2);
    assert_eq!(list_versions(&store, "wine").await.unwrap(), vec![1, 2]);
    verify_artifacts(&store, &manifest).await.unwrap();
}

/// The gate's move: only from the version it compared against.
#[tokio::test]
async fn a_gate_move_fails_when_the_alias_moved_since_it_was_read() {
    let (_dir, store) = store();
    for _ in 0..3 {
        register_one(&store, "wine").await;
    }
    set_alias(&store, "wine", "production", 1, "seed").await.unwrap();
    let read = read_alias(&store, "wine", "production").await.unwrap();
    set_alias(&store, "wine", "production", 2, "someone else")
        .await
        .unwrap();
    let moved = move_if_unchanged(&store, "wine", "production", &read, 3, "gate")
        .await
        .unwrap();
    assert!(moved.is_none());
    assert_eq!(
        get_alias(&store, "wine", "production").await.unwrap().unwrap().version,
        2
    );
    let read = read_alias(&store, "wine", "production").await.unwrap();
    let moved = move_if_unchanged(&store, "wine", "production", &read, 3, "gate")
        .await
        .unwrap();
    assert_eq!(moved.map(|r| (r.version, r.from, r.transition)), Some((3, Some(2), 3)));
    // A new alias: the gate creates it only if nobody did in between.
    let fresh = read_alias(&store, "wine", "staging").await.unwrap();
    set_alias(&store, "wine", "staging", 1, "someone else").await.unwrap();
    assert!(
        move_if_unchanged(&store, "wine", "staging", &fresh, 3, "gate")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn unknown_and_invalid_names_are_refused_by_name() {
    let (_dir, store) = store();
    register_one(&store, "wine").await;
    set_alias(&store, "wine", "production", 1, "t").await.unwrap();

    let err = set_alias(&store, "wine", "production", 7, "t").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("model 'wine' has no version 7 (it has: 1)"),
        "{err:#}"
    );
    assert!(registry_error(&err).is_not_found());
    assert_eq!(
        get_alias(&store, "wine", "production").await.unwrap().unwrap().version,
        1
    );

    for (selector, expected) in [
        ("nope", "model 'nope' does not exist in "),
        ("nope@production", "model 'nope' does not exist in "),
        ("wine@9", "model 'wine' has no version 9 (it has: 1)"),
        (
            "wine@staging",
            "model 'wine' has no alias 'staging' (it has: production)",
        ),
    ] {
        let err = load_manifest(&store, &selector.parse().unwrap()).await.unwrap_err();
        assert!(err.to_string().starts_with(expected), "{selector}: {err}");
        assert!(registry_error(&err).is_not_found());
    }

    let err = set_alias(&store, "wine", "../x", 1, "t").await.unwrap_err();
    assert!(err.to_string().starts_with("invalid alias name '../x'"), "{err}");
    let err = set_alias(&store, "wine", "2", 1, "t").await.unwrap_err();
    assert!(err.to_string().contains("a number would read as a version"), "{err}");
    let err = get_alias(&store, "../x", "production").await.unwrap_err();
    assert!(err.to_string().starts_with("invalid model name '../x'"), "{err}");
    let err = register(&store, draft("../x", &["a"]), vec![]).await.unwrap_err();
    assert!(err.to_string().starts_with("invalid model name '../x'"), "{err}");
    assert!(!store.root().parent().unwrap().join("x").exists());
}

#[tokio::test]
async fn registration_refuses_inconsistent_artifacts() {
    let (_dir, store) = store();
    let ab = ["a".to_owned(), "b".to_owned()];
    let good = artifacts(&logistic(&ab, vec![0.0; 2], 0.0));
    let cases: Vec<(Vec<(String, Bytes)>, &str)> = vec![
        (good[1..].to_vec(), "the artifacts must include model.ir.json"),
        (
            artifacts(&logistic(&["b".to_owned(), "a".to_owned()], vec![0.0; 2], 0.0)),
            "the IR's features [\"b\", \"a\"] differ from the manifest's [\"a\", \"b\"]",
        ),
        (
            artifacts(&logistic(&ab, vec![0.0; 3], 0.0)),
            "model.ir.json is not a valid model IR",
        ),
        (
            [good.clone(), vec![("manifest.json".to_owned(), Bytes::new())]].concat(),
            "'manifest.json' is the registry's own file",
        ),
        (
            [good.clone(), vec![("../model.wasm".to_owned(), Bytes::new())]].concat(),
            "artifact name: invalid name '../model.wasm'",
        ),
        (
            [good.clone(), good[..1].to_vec()].concat(),
            "artifact 'model.ir.json' is given twice",
        ),
    ];
    for (artifacts, expected) in cases {
        let err = register(&store, draft("wine", &["a", "b"]), artifacts)
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with(expected), "{expected}: {err:#}");
    }
    // Refused before a version was taken.
    assert!(store.list("models/").await.unwrap().is_empty());
}

/// Runs the real data steps of the bundled wine example into `store`.
pub(crate) async fn wine_dataset(store: &dyn ObjectStore) -> crate::dataset::DatasetRecord {
    use crate::config::PipelineConfig;
    use crate::pipeline::{Pipeline, RunOptions, StepName, new_run_id};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/winequality/pipeline.toml");
    let pipeline = Pipeline::new(
        store,
        PipelineConfig::load(&path).unwrap(),
        new_run_id(),
        RunOptions::default(),
    )
    .unwrap();
    for step in [
        StepName::Ingest,
        StepName::Transform,
        StepName::Validate,
        StepName::Profile,
        StepName::Version,
    ] {
        pipeline.run_step(step).await.unwrap();
    }
    crate::dataset::load_dataset(store, "winequality-red", None)
        .await
        .unwrap()
}

/// Registers `ir` as a version of `winequality-red` with the dataset's facts.
pub(crate) async fn register_wine(
    store: &dyn ObjectStore,
    record: &crate::dataset::DatasetRecord,
    ir: &ModelIr,
    family: &str,
) -> Manifest {
    let (train, test) = record.train_data(store).await.unwrap();
    let mut draft = ManifestDraft::from_dataset(store, "winequality-red", record, &train, &test)
        .await
        .unwrap();
    draft.family = family.to_owned();
    draft.metrics = crate::train::metrics::score(ir, &test.row_vecs(), &test.targets)
        .unwrap()
        .scalars();
    let mut files = artifacts(ir);
    let wasm = model_wasm::codegen::compile(ir, b"{}").unwrap();
    files.push(("model.wasm".to_owned(), Bytes::from(wasm)));
    register(store, draft, files).await.unwrap()
}

/// The wine dataset and two models of it: version 1 a fitted logistic regression, version 2 a
/// coin flip (all-zero weights).
pub(crate) async fn wine_models(store: &dyn ObjectStore) -> (crate::dataset::DatasetRecord, Manifest, Manifest) {
    use crate::config::{Family, ModelSpec};
    use crate::train::{candidates, fit};

    let record = wine_dataset(store).await;
    let (train, _) = record.train_data(store).await.unwrap();
    let spec = ModelSpec {
        family: Family::LogisticRegression,
        grid: toml::from_str("alpha = [1.0]").unwrap(),
    };
    let fitted = fit(&candidates(&spec).unwrap()[0], &train, 1).unwrap();
    let good = register_wine(store, &record, &fitted.ir, "logistic_regression").await;
    let coin = logistic(&record.features, vec![0.0; record.features.len()], 0.0);
    let bad = register_wine(store, &record, &coin, "constant").await;
    (record, good, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_gate_scores_both_models_on_the_candidates_test_split() {
    use crate::config::Metric;

    let (_dir, store) = store();
    let (record, good, bad) = wine_models(&store).await;
    assert_eq!(record.features.len(), 11);

    // The draft took its facts from the dataset.
    assert_eq!(good.feature_names(), record.features);
    let alcohol = good.features.iter().find(|f| f.name == "alcohol").unwrap();
    assert!(
        alcohol.min >= 8.0 && alcohol.max <= 15.0 && alcohol.min < alcohol.max,
        "{alcohol:?}"
    );
    assert_eq!(
        good.output.classes.as_deref(),
        Some(&["0".to_owned(), "1".to_owned()][..])
    );
    assert_eq!(good.reference_profile.features.len(), 11);
    assert_eq!((good.sample_rows.len(), good.sample_rows[0].len()), (5, 11));
    assert_eq!(
        good.dataset,
        DatasetRef {
            name: record.name.clone(),
            version: record.version
        }
    );

    let worse = compare(&store, &bad, &good, Metric::F1, 0.005).await.unwrap();
    assert_eq!(worse.verdict, Verdict::Worse, "{}", worse.reason);
    assert_eq!(worse.test_rows as u64, record.test.rows);
    let (c, b) = worse.gating_values();
    assert!(b > 0.6 && c < 0.5, "good {b}, coin {c}");
    assert_eq!(
        worse.candidate_metrics.scalars(),
        bad.metrics,
        "scored on the same rows as at registration"
    );
    assert!((worse.deltas["f1"] - (c - b)).abs() < 1e-12);
    let report = markdown_report(&worse);
    assert!(
        report.starts_with("## ❌ Model comparison: winequality-red@2 is worse than winequality-red@1"),
        "{report}"
    );
    assert!(report.contains("f1 may drop by at most 0.005"), "{report}");
    assert_eq!(report.matches("| true \\ predicted | 0 | 1 |").count(), 2, "{report}");

    let better = compare(&store, &good, &bad, Metric::F1, 0.005).await.unwrap();
    assert_eq!(better.verdict, Verdict::Better, "{}", better.reason);
    assert!(better.verdict.passes());
    let same = compare(&store, &good, &good, Metric::LogLoss, 0.0).await.unwrap();
    assert_eq!(same.verdict, Verdict::NotWorse);
    assert_eq!(
        same.reason,
        format!("log_loss is unchanged ({:.4})", good.metrics["log_loss"])
    );
    // A huge tolerance lets even the coin flip through.
    assert_eq!(
        compare(&store, &bad, &good, Metric::F1, 1.0).await.unwrap().verdict,
        Verdict::NotWorse
    );

    let err = compare(&store, &good, &bad, Metric::Rmse, 0.005).await.unwrap_err();
    assert_eq!(err.to_string(), "the metric rmse does not apply to classification");
    let mut other = bad.clone();
    other.features[0].name = "colour".into();
    let err = compare(&store, &good, &other, Metric::F1, 0.005).await.unwrap_err();
    assert!(err.to_string().contains("do not take the same features"), "{err}");
    let err = compare(&store, &good, &bad, Metric::F1, -1.0).await.unwrap_err();
    assert!(err.to_string().contains("tolerance"), "{err}");
}
