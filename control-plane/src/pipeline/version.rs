//! version: the dataset record `datasets/{name}/{version}.json`, written last, pointing at the raw
//! and processed data (stored in DVC's remote layout by ingest and transform) and at the reports.
//! Versions are numbered 1, 2, ... and allocated by conditional create, so two writers never take
//! the same number; data identical to an existing version reuses that version.

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::Utc;

use super::ingest::IngestOutput;
use super::profile_step::ProfileOutput;
use super::transform::TransformOutput;
use super::validate::ValidateOutput;
use super::{Pipeline, StepName, Summary};
use crate::dataset::DataFile;
use crate::dataset::{DATASET_SCHEMA_VERSION, DatasetRecord, ProfileRef, QualityRef, SourceRef, versions};
use crate::digest::sha256_hex;
use crate::store::get_json;
use crate::store::{ErrorKind, Key};

impl Summary for DatasetRecord {
    fn summary(&self) -> String {
        format!("dataset {} version {} ({})", self.name, self.version, self.key())
    }
}

/// Everything version reads.
pub(super) struct Inputs {
    ingest: IngestOutput,
    transform: TransformOutput,
    validate: ValidateOutput,
    profile: ProfileOutput,
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, Inputs)> {
    let inputs = Inputs {
        ingest: p.outputs_of(StepName::Ingest).await?,
        transform: p.outputs_of(StepName::Transform).await?,
        validate: p.outputs_of(StepName::Validate).await?,
        profile: p.outputs_of(StepName::Profile).await?,
    };
    let digest = sha256_hex(&[
        "version",
        &p.config.dataset.name,
        &inputs.ingest.md5,
        &inputs.transform.train.md5,
        &inputs.transform.test.md5,
        &inputs.validate.report_json,
        &inputs.profile.reference,
    ]);
    Ok((digest, inputs))
}

pub(super) async fn run(p: &Pipeline<'_>, inputs: Inputs) -> anyhow::Result<DatasetRecord> {
    let Inputs {
        ingest,
        transform,
        validate,
        profile,
    } = inputs;
    let name = p.config.dataset.name.clone();
    let content_digest = sha256_hex(&[&ingest.md5, &transform.train.md5, &transform.test.md5]);
    let existing = versions(p.store, &name).await?;
    for version in existing.iter().rev() {
        if let Some(record) = get_json::<DatasetRecord>(p.store, &DatasetRecord::key_of(&name, *version)).await?
            && record.content_digest == content_digest
        {
            return Ok(record);
        }
    }
    let mut record = DatasetRecord {
        schema_version: DATASET_SCHEMA_VERSION,
        name: name.clone(),
        version: 0,
        created_at: Utc::now(),
        run_id: p.run_id.clone(),
        content_digest,
        source: SourceRef {
            uri: ingest.source.clone(),
            format: ingest.format,
            columns: ingest.columns.clone(),
        },
        raw: DataFile {
            key: ingest.raw_key.clone(),
            md5: ingest.md5.clone(),
            size: ingest.size,
            rows: ingest.rows,
        },
        features: profile.features.clone(),
        train: transform.train,
        test: transform.test,
        columns: transform.columns,
        target: transform.target,
        task: transform.task,
        classes: transform.classes,
        encodings: transform.encodings,
        quality: QualityRef {
            passed: validate.passed,
            warnings: validate.warnings,
            report_json: validate.report_json,
            report_md: validate.report_md,
        },
        profile: ProfileRef {
            json: profile.profile_json,
            html: profile.profile_html,
            reference: profile.reference,
        },
    };
    // Every object the record points at must be there before the record is.
    for key in [
        &record.raw.key,
        &record.train.key,
        &record.test.key,
        &record.quality.report_json,
        &record.profile.reference,
    ] {
        let key = Key::new(key.clone())?;
        if !p.store.exists(&key).await? {
            bail!("{key} is missing from {}: rerun the pipeline", p.store.describe());
        }
    }
    let mut next = existing.last().copied().unwrap_or(0) + 1;
    for _ in 0..100 {
        record.version = next;
        let body = Bytes::from(serde_json::to_vec_pretty(&record)?);
        match p.store.create_new(&record.key(), body).await {
            Ok(()) => return Ok(record),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(e).context("cannot write the dataset record"),
        }
    }
    bail!("could not allocate a version of dataset {name}: too many concurrent writers")
}
