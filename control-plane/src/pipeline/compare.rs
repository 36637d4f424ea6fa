//! compare: the new version against the one behind the alias (production), on the same held-out
//! data; the alias moves only when the gating metric is not worse beyond the tolerance (the first
//! model always moves it). A worse candidate is not an error: production stays, the report says why.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::train_step::train_config;
use super::{Pipeline, StepName, Summary};
use crate::digest::sha256_hex;
use crate::mlflow::Tracker;
use crate::registry::{self, Verdict};

use super::register::RegisterOutput;

/// How many times the gate compares again because the alias moved under it before giving up.
const MAX_RACES: u32 = 20;

/// What compare produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CompareOutput {
    pub name: String,
    pub version: u64,
    pub alias: String,
    /// The version behind the alias before (None: this was the first model).
    pub baseline_version: Option<u64>,
    /// None without a baseline.
    pub verdict: Option<Verdict>,
    pub promoted: bool,
    pub reason: String,
    pub report_md: String,
}

impl Summary for CompareOutput {
    fn summary(&self) -> String {
        let moved = if self.promoted {
            format!("{} -> version {}", self.alias, self.version)
        } else {
            format!(
                "{} stays at version {}",
                self.alias,
                self.baseline_version.unwrap_or_default()
            )
        };
        format!("{moved}: {}; report {}", self.reason, self.report_md)
    }
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, RegisterOutput)> {
    let registered: RegisterOutput = p.outputs_of(StepName::Register).await?;
    let config = train_config(p)?;
    // Where the alias points now is deliberately not an input: rerunning a finished pipeline must
    // not decide again (and, after a manual rollback, must not promote this version again).
    let digest = sha256_hex(&[
        "compare",
        &registered.name,
        &registered.version.to_string(),
        &config.alias,
        &config.tolerance.to_string(),
    ]);
    Ok((digest, registered))
}

pub(super) async fn run(p: &Pipeline<'_>, registered: RegisterOutput) -> anyhow::Result<CompareOutput> {
    let config = train_config(p)?.clone();
    let (name, version, alias) = (registered.name.clone(), registered.version, config.alias.clone());
    let candidate = registry::load_version(p.store, &name, version).await?;
    let by = format!("pipeline run {}", p.run_id);
    // The decision is made against the version the alias held when it was read, and the alias
    // moves only if it still holds it: when another writer moved it in between, read and compare
    // again.
    let mut races = 0;
    let (verdict, baseline_version, report, reason, promoted) = loop {
        let read = registry::read_alias(p.store, &name, &alias).await?;
        let (verdict, report, reason) = match &read.record {
            None => {
                let reason = format!("no model behind '{alias}' yet: the first model is promoted");
                (None, format!("# {name} version {version}\n\n{reason}.\n"), reason)
            }
            Some(a) if a.version == version => {
                let reason = format!("version {version} is already '{alias}'");
                (
                    Some(Verdict::NotWorse),
                    format!("# {name} version {version}\n\n{reason}.\n"),
                    reason,
                )
            }
            Some(a) => {
                let baseline = registry::load_version(p.store, &name, a.version).await?;
                let metric = candidate.selection_metric;
                let comparison = registry::compare(p.store, &candidate, &baseline, metric, config.tolerance).await?;
                (
                    Some(comparison.verdict),
                    registry::markdown_report(&comparison),
                    comparison.reason.clone(),
                )
            }
        };
        let promote = verdict != Some(Verdict::Worse) && read.version() != Some(version);
        if !promote
            || registry::move_if_unchanged(p.store, &name, &alias, &read, version, &by)
                .await?
                .is_some()
        {
            break (verdict, read.version(), report, reason, promote);
        }
        races += 1;
        anyhow::ensure!(
            races < MAX_RACES,
            "'{alias}' of {name} moved {races} times while the gate compared version {version} with it: run compare again"
        );
        tracing::info!(model = %name, alias = %alias, "the alias moved while the gate compared: comparing again");
    };
    let report_key = p.artifact_key(StepName::Compare, "report.md");
    p.store.put(&report_key, Bytes::from(report)).await?;
    if promoted && let Some(mlflow_version) = &registered.mlflow_version {
        let tracker = Tracker::from_env();
        let result = match tracker.client() {
            Some(client) => {
                let (client, name, alias, v) = (client.clone(), name.clone(), alias.clone(), mlflow_version.clone());
                tokio::task::spawn_blocking(move || client.set_registered_model_alias(&name, &alias, &v)).await?
            }
            None => Ok(()),
        };
        if let Err(e) = result {
            eprintln!("warning: MLflow alias not moved: {e}");
        }
    }
    Ok(CompareOutput {
        name,
        version,
        alias,
        baseline_version,
        verdict,
        promoted,
        reason,
        report_md: report_key.to_string(),
    })
}
