//! Registration: claim a version, store and verify the artifacts, sign and write the manifest.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use chrono::Utc;
use model_wasm::ModelIr;
use serde::{Deserialize, Serialize};

use super::read::{IR_ARTIFACT, claimed_versions};
use super::{ArtifactInfo, Manifest, ManifestDraft, ManifestSigner, RegistryError, version_key};
use crate::config::TaskKind;
use crate::store::{ErrorKind, Key, ObjectStore};

/// File names that are the registry's own, not artifacts.
const RESERVED: [&str; 2] = ["manifest.json", "claim.json"];

/// `models/{name}/{version}/claim.json`: who took the number.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    run_id: String,
    claimed_at: chrono::DateTime<Utc>,
}

/// Registers a new version of `draft.name` with its artifacts (file name, bytes), which must
/// include [`IR_ARTIFACT`] agreeing with the draft's features and output.
///
/// The version number is claimed by a conditional create, so concurrent registrations get
/// distinct versions. Every artifact is written, read back and checked against its sha256 before
/// the signed manifest is written, last: a version whose manifest exists is complete. A failure
/// part-way leaves a claimed number without a manifest, which readers ignore.
pub(crate) async fn register(
    store: &dyn ObjectStore,
    draft: ManifestDraft,
    artifacts: Vec<(String, Bytes)>,
) -> anyhow::Result<Manifest> {
    draft.check()?;
    check_artifacts(&draft, &artifacts)?;
    // Before claiming a number, so that a store we cannot sign for does not burn versions.
    let signer = ManifestSigner::load_or_create(store).await?;
    let version = claim_version(store, &draft.name, &draft.run_id).await?;
    let name = draft.name.clone();
    for (file, body) in &artifacts {
        let key = version_key(&name, version, file)?;
        store
            .put(&key, body.clone())
            .await
            .with_context(|| format!("cannot write {key} to {}", store.describe()))?;
    }
    let mut infos = BTreeMap::new();
    for (file, body) in &artifacts {
        let key = version_key(&name, version, file)?;
        let stored = store
            .get(&key)
            .await
            .with_context(|| format!("cannot read back {key} from {}", store.describe()))?;
        let (expected, found) = (ArtifactInfo::of(body), ArtifactInfo::of(&stored));
        if found != expected {
            return Err(RegistryError::Corrupted {
                name: name.clone(),
                version,
                file: file.clone(),
                reason: format!(
                    "read back {} bytes with sha256 {} after writing {} bytes with sha256 {}",
                    found.size, found.sha256, expected.size, expected.sha256
                ),
            }
            .into());
        }
        infos.insert(file.clone(), expected);
    }
    let mut manifest = draft.into_manifest(version, Utc::now(), infos);
    signer.sign(&mut manifest);
    let key = manifest.key()?;
    create_or_confirm(store, &key, Bytes::from(serde_json::to_vec_pretty(&manifest)?))
        .await
        .with_context(|| format!("cannot write {key} to {}", store.describe()))?;
    tracing::info!(model = %name, version, artifacts = manifest.artifacts.len(), "registered");
    Ok(manifest)
}

/// Artifact names are single key segments, unique, not the registry's own; the IR is there and
/// matches the draft.
fn check_artifacts(draft: &ManifestDraft, artifacts: &[(String, Bytes)]) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    for (file, _) in artifacts {
        Key::segment(file).map_err(|e| anyhow::anyhow!("artifact name: {e}"))?;
        ensure!(
            !RESERVED.contains(&file.as_str()),
            "'{file}' is the registry's own file, not an artifact name"
        );
        ensure!(seen.insert(file.as_str()), "artifact '{file}' is given twice");
    }
    let Some((_, ir)) = artifacts.iter().find(|(f, _)| f == IR_ARTIFACT) else {
        bail!("the artifacts must include {IR_ARTIFACT} (the model IR)");
    };
    let ir: ModelIr = serde_json::from_slice(ir).with_context(|| format!("{IR_ARTIFACT} is not a model IR"))?;
    ir.validate()
        .with_context(|| format!("{IR_ARTIFACT} is not a valid model IR"))?;
    let names: Vec<String> = draft.features.iter().map(|f| f.name.clone()).collect();
    ensure!(
        ir.features == names,
        "the IR's features {:?} differ from the manifest's {names:?}",
        ir.features
    );
    match (&ir.output, draft.task, &draft.output.classes) {
        (model_wasm::Output::Classification { classes }, TaskKind::Classification, Some(ours)) => ensure!(
            classes == ours,
            "the IR's classes {classes:?} differ from the manifest's {ours:?}"
        ),
        (model_wasm::Output::Regression { .. }, TaskKind::Regression, _) => {}
        _ => bail!(
            "the IR is a {} model but the manifest says {}",
            if ir.classes().is_empty() {
                "regression"
            } else {
                "classification"
            },
            super::manifest::task_name(draft.task)
        ),
    }
    Ok(())
}

/// A conditional create that survives a lost answer: when the create fails (an error, or
/// "already exists" from a retry of a create that had landed), the object is read back, and if
/// it holds exactly `body` the create was ours. So a dropped response neither fails a
/// registration that happened nor makes a rerun register the same model again.
async fn create_or_confirm(store: &dyn ObjectStore, key: &Key, body: Bytes) -> crate::store::StoreResult<()> {
    let Err(e) = store.create_new(key, body.clone()).await else {
        return Ok(());
    };
    match store.get(key).await {
        Ok(found) if found == body => {
            tracing::info!(key = %key, error = %e, "a conditional create answered an error but had written: it is ours");
            Ok(())
        }
        _ => Err(e),
    }
}

/// Takes the next free version number of `name` by conditional create of its claim.
async fn claim_version(store: &dyn ObjectStore, name: &str, run_id: &str) -> anyhow::Result<u64> {
    let mut next = claimed_versions(store, name).await?.last().copied().unwrap_or(0) + 1;
    let claim = Bytes::from(serde_json::to_vec_pretty(&Claim {
        run_id: run_id.to_owned(),
        claimed_at: Utc::now(),
    })?);
    for _ in 0..1000 {
        let key = version_key(name, next, "claim.json")?;
        match create_or_confirm(store, &key, claim.clone()).await {
            Ok(()) => return Ok(next),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(e).with_context(|| format!("cannot claim {key} in {}", store.describe())),
        }
    }
    bail!("could not allocate a version of model '{name}': too many concurrent registrations")
}
