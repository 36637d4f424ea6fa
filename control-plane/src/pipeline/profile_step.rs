//! profile: statistics and an offline HTML report of the processed data, and the drift reference
//! profile of the training features.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::transform::TransformOutput;
use super::{Pipeline, StepName, Summary};
use crate::data::Table;
use crate::digest::sha256_hex;
use crate::profile::{build_profile, reference_profile, render_html};

/// What profile produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ProfileOutput {
    pub profile_json: String,
    pub profile_html: String,
    /// The drift reference profile (`model_wasm::ReferenceProfile`) of the training features.
    pub reference: String,
    pub features: Vec<String>,
    pub warnings: usize,
}

impl Summary for ProfileOutput {
    fn summary(&self) -> String {
        format!(
            "{} features, {} warnings, report {}",
            self.features.len(),
            self.warnings,
            self.profile_html
        )
    }
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, TransformOutput)> {
    let t: TransformOutput = p.outputs_of(StepName::Transform).await?;
    let settings = serde_json::to_string(&p.config.profile)?;
    Ok((
        sha256_hex(&["profile", &t.train.md5, &t.test.md5, &settings, &t.target]),
        t,
    ))
}

pub(super) async fn run(p: &Pipeline<'_>, t: TransformOutput) -> anyhow::Result<ProfileOutput> {
    let (train, test) = t.load(p.store).await?;
    let features: Vec<String> = t
        .columns
        .iter()
        .map(|c| c.name.clone())
        .filter(|c| *c != t.target)
        .collect();
    let config = p.config.clone();
    let features_for_reference = features.clone();
    let (profile, html, reference) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let all = Table::concat(&[&train, &test]);
        let profile = build_profile(&config.dataset.name, &all, &config.profile);
        let html = render_html(&profile);
        let reference = reference_profile(&train, &features_for_reference, config.profile.reference_bins)?;
        Ok((profile, html, reference))
    })
    .await??;
    let json_key = p.artifact_key(StepName::Profile, "profile.json");
    let html_key = p.artifact_key(StepName::Profile, "profile.html");
    let reference_key = p.artifact_key(StepName::Profile, "reference.json");
    p.store
        .put(&json_key, Bytes::from(serde_json::to_vec_pretty(&profile)?))
        .await?;
    p.store.put(&html_key, Bytes::from(html)).await?;
    p.store
        .put(&reference_key, Bytes::from(serde_json::to_vec_pretty(&reference)?))
        .await?;
    Ok(ProfileOutput {
        profile_json: json_key.to_string(),
        profile_html: html_key.to_string(),
        reference: reference_key.to_string(),
        features,
        warnings: profile.warnings.len(),
    })
}
