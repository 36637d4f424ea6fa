//! evaluate: held-out metrics of the trained model IR on the test split, and an offline HTML run
//! report (metrics, the candidates' cross-validation, a confusion matrix or residual plot, and the
//! coefficients or the trees' split counts per feature).

use std::fmt::Write as _;

use anyhow::Context;
use bytes::Bytes;
use model_wasm::{Body, ModelIr, Prediction};
use serde::{Deserialize, Serialize};

use super::train_step::TrainOutput;
use super::{Pipeline, StepName, Summary};
use crate::config::{Metric, RefitGap};
use crate::dataset::DatasetRecord;
use crate::digest::sha256_hex;
use crate::train::{Metrics, metrics};

/// What evaluate produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct EvaluateOutput {
    pub metrics: Metrics,
    pub metric: Metric,
    pub value: f64,
    pub metrics_json: String,
    pub report_html: String,
    /// The selection metric of the refitted model on its own training split.
    #[serde(default)]
    pub train_value: Option<f64>,
    /// The refit scored worse than cross-validation beyond `refit_margin` (`refit_gap = "warn"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_warning: Option<String>,
}

/// Why the refit's score on its own training split (`fit`) is not to be trusted, given the
/// winner's cross-validation mean `cv`: `None` when it is at most `margin` worse.
pub(super) fn refit_gap(metric: Metric, label: &str, fit: f64, cv: f64, margin: f64) -> Option<String> {
    let gap = metric.worsening(fit, cv);
    (gap > margin || fit.is_nan()).then(|| {
        format!(
            "{label} refitted on the whole training split scores {metric} {fit:.4} on it, {gap:.4} worse than its cross-validation mean {cv:.4} (train.refit_margin = {margin}): the refit did not fit as the fold models did (more iterations, or less regularisation per row, may be needed)"
        )
    })
}

impl Summary for EvaluateOutput {
    fn summary(&self) -> String {
        let scalars: Vec<String> = self
            .metrics
            .scalars()
            .iter()
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect();
        let warning = self
            .refit_warning
            .as_deref()
            .map(|w| format!(" (warning: {w})"))
            .unwrap_or_default();
        format!("{}; report {}{warning}", scalars.join(", "), self.report_html)
    }
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, (TrainOutput, DatasetRecord))> {
    let train: TrainOutput = p.outputs_of(StepName::Train).await?;
    let dataset: DatasetRecord = p.outputs_of(StepName::Version).await?;
    let config = super::train_step::train_config(p)?;
    let guard = serde_json::to_string(&(config.refit_margin, config.refit_gap))?;
    let digest = sha256_hex(&["evaluate", &train.ir_sha256, &dataset.content_digest, &guard]);
    Ok((digest, (train, dataset)))
}

pub(super) async fn run(
    p: &Pipeline<'_>,
    (train, dataset): (TrainOutput, DatasetRecord),
) -> anyhow::Result<EvaluateOutput> {
    let ir = train.load_ir(p.store).await?;
    let (fit_split, test) = dataset.train_data(p.store).await?;
    let config = super::train_step::train_config(p)?;
    let train_value = metrics::score(&ir, &fit_split.row_vecs(), &fit_split.targets)?
        .get(train.metric)
        .unwrap_or(f64::NAN);
    let gap = refit_gap(
        train.metric,
        &train.best.label(),
        train_value,
        train.best_cv.mean,
        config.refit_margin,
    );
    let refit_warning = match (gap, config.refit_gap) {
        (Some(why), RefitGap::Fail) => anyhow::bail!("{why}; set train.refit_gap = \"warn\" to go on"),
        (Some(why), RefitGap::Warn) => {
            tracing::warn!(%why, "refit gap");
            Some(why)
        }
        (None, _) => None,
    };
    let rows = test.row_vecs();
    let metrics = metrics::score(&ir, &rows, &test.targets)?;
    let value = metrics
        .get(train.metric)
        .with_context(|| format!("metric {} is undefined on the test split", train.metric))?;
    let predictions: Vec<Prediction> = rows.iter().map(|r| ir.predict(r)).collect::<Result<_, _>>()?;
    let html = report_html(&dataset, &train, &ir, &metrics, &test.targets, &predictions);
    let metrics_key = p.artifact_key(StepName::Evaluate, "metrics.json");
    let html_key = p.artifact_key(StepName::Evaluate, "report.html");
    p.store
        .put(&metrics_key, Bytes::from(serde_json::to_vec_pretty(&metrics)?))
        .await?;
    p.store.put(&html_key, Bytes::from(html)).await?;
    Ok(EvaluateOutput {
        metrics,
        metric: train.metric,
        value,
        metrics_json: metrics_key.to_string(),
        report_html: html_key.to_string(),
        train_value: Some(train_value),
        refit_warning,
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Per feature: the standardised coefficient (linear models; the first row for softmax) or the
/// share of splits on it (trees).
pub(super) fn feature_weights(ir: &ModelIr) -> (String, Vec<f64>) {
    let n = ir.n_features();
    match &ir.body {
        Body::Linear { weights, .. } => (
            "coefficient (on standardised features where scaled)".into(),
            weights[..n].to_vec(),
        ),
        Body::Trees { .. } | Body::Boosted { .. } => {
            let mut counts = vec![0.0; n];
            for tree in ir.trees() {
                for node in &tree.nodes {
                    if let Some(feature) = node.split_feature() {
                        counts[feature as usize] += 1.0;
                    }
                }
            }
            let total: f64 = counts.iter().sum::<f64>().max(1.0);
            ("share of splits".into(), counts.iter().map(|c| c / total).collect())
        }
    }
}

fn bars_svg(names: &[String], values: &[f64]) -> String {
    let max = values.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-12);
    let row = 22.0;
    let (label_w, bar_w) = (190.0, 320.0);
    let mid = label_w + bar_w / 2.0;
    let height = row * names.len() as f64 + 10.0;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {} {height}" width="100%" role="img">"#,
        label_w + bar_w + 90.0
    );
    for (i, (name, v)) in names.iter().zip(values).enumerate() {
        let y = 5.0 + row * i as f64;
        let w = v.abs() / max * (bar_w / 2.0);
        let x = if *v >= 0.0 { mid } else { mid - w };
        let colour = if *v >= 0.0 { "#2b6cb0" } else { "#c05621" };
        write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text><rect x="{x:.1}" y="{y}" width="{w:.1}" height="{}" fill="{colour}"><title>{}: {v:.4}</title></rect><text x="{}" y="{}" font-size="11">{v:.3}</text>"#,
            label_w - 6.0,
            y + 14.0,
            esc(name),
            row - 6.0,
            esc(name),
            label_w + bar_w + 4.0,
            y + 14.0
        )
        .expect("write to string");
    }
    write!(
        svg,
        r##"<line x1="{mid}" y1="0" x2="{mid}" y2="{height}" stroke="#888"/></svg>"##
    )
    .expect("write to string");
    svg
}

fn confusion_svg(classes: &[String], confusion: &[Vec<u64>]) -> String {
    let k = classes.len();
    let cell = 56.0;
    let pad = 110.0;
    let size = pad + cell * k as f64;
    let max = confusion.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {} {}" width="{}" role="img">"#,
        size + 10.0,
        size + 10.0,
        size.min(480.0)
    );
    for (t, row) in confusion.iter().enumerate() {
        for (p, count) in row.iter().enumerate() {
            let shade = (*count as f64 / max * 0.85 + 0.05).min(1.0);
            let (x, y) = (pad + cell * p as f64, pad + cell * t as f64);
            let text = if shade > 0.5 { "#fff" } else { "#111" };
            write!(
                svg,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgba(43,108,176,{shade:.2})" stroke="#fff"><title>true {} predicted {}: {count}</title></rect><text x="{}" y="{}" text-anchor="middle" font-size="14" fill="{text}">{count}</text>"##,
                esc(&classes[t]),
                esc(&classes[p]),
                x + cell / 2.0,
                y + cell / 2.0 + 5.0
            )
            .expect("write to string");
        }
    }
    for (i, c) in classes.iter().enumerate() {
        let centre = pad + cell * i as f64 + cell / 2.0;
        write!(
            svg,
            r#"<text x="{centre}" y="{}" text-anchor="middle" font-size="12">{}</text><text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>"#,
            pad - 8.0,
            esc(c),
            pad - 8.0,
            centre + 4.0,
            esc(c)
        )
        .expect("write to string");
    }
    write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">predicted</text><text x="{}" y="{}" font-size="12" transform="rotate(-90 {} {})" text-anchor="middle">true</text></svg>"#,
        pad + cell * k as f64 / 2.0,
        pad - 30.0,
        pad - 60.0,
        pad + cell * k as f64 / 2.0,
        pad - 60.0,
        pad + cell * k as f64 / 2.0
    )
    .expect("write to string");
    svg
}

fn residual_svg(truth: &[f64], predicted: &[f64]) -> String {
    let (w, h, pad) = (520.0, 300.0, 40.0);
    let lo = predicted.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = predicted.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let residuals: Vec<f64> = truth.iter().zip(predicted).map(|(t, p)| t - p).collect();
    let r = residuals.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-12);
    let sx = |v: f64| pad + (v - lo) / (hi - lo).max(1e-12) * (w - 2.0 * pad);
    let sy = |v: f64| h / 2.0 - v / r * (h / 2.0 - pad / 2.0);
    let mut svg = format!(
        r##"<svg viewBox="0 0 {w} {h}" width="100%" role="img"><line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="#888"/>"##,
        h / 2.0,
        w - pad,
        h / 2.0
    );
    for (p, res) in predicted.iter().zip(&residuals) {
        write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#2b6cb0" fill-opacity="0.6"/>"##,
            sx(*p),
            sy(*res)
        )
        .expect("write to string");
    }
    write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">predicted ({lo:.1} to {hi:.1})</text><text x="4" y="14" font-size="12">residual (±{r:.1})</text></svg>"#,
        w / 2.0,
        h - 6.0
    )
    .expect("write to string");
    svg
}

/// The run report: one offline HTML page.
pub(super) fn report_html(
    dataset: &DatasetRecord,
    train: &TrainOutput,
    ir: &ModelIr,
    metrics: &Metrics,
    truth: &metrics::Targets,
    predictions: &[Prediction],
) -> String {
    let mut body = String::new();
    write!(
        body,
        "<h1>{} <small>run {}</small></h1><p>Dataset <b>{}@{}</b> ({} test rows). Best of {} candidates: <b>{}</b>, chosen by cross-validated <b>{}</b> ({:.4} ± {:.4}).</p>",
        esc(&train.model_name),
        esc(&train.best_run_id),
        esc(&dataset.name),
        dataset.version,
        predictions.len(),
        train.candidates.len(),
        esc(&train.best.label()),
        train.metric,
        train.best_cv.mean,
        train.best_cv.std
    )
    .expect("write to string");
    body.push_str("<h2>Held-out metrics</h2><table><tr><th>metric</th><th>value</th></tr>");
    for (name, value) in metrics.scalars() {
        let bold = if name == train.metric.name() {
            " class=\"key\""
        } else {
            ""
        };
        write!(body, "<tr{bold}><td>{name}</td><td>{value:.4}</td></tr>").expect("write to string");
    }
    body.push_str("</table>");
    match (metrics, truth) {
        (Metrics::Classification(m), _) => {
            body.push_str("<h2>Confusion matrix</h2>");
            body.push_str(&confusion_svg(&m.classes, &m.confusion));
            body.push_str("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
            for c in &m.per_class {
                write!(
                    body,
                    "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
                    esc(&c.class),
                    c.precision,
                    c.recall,
                    c.f1,
                    c.support
                )
                .expect("write to string");
            }
            body.push_str("</table>");
        }
        (Metrics::Regression(_), metrics::Targets::Values(y)) => {
            let predicted: Vec<f64> = predictions
                .iter()
                .map(|p| match p {
                    Prediction::Value(v) => *v,
                    Prediction::Class { .. } => f64::NAN,
                })
                .collect();
            body.push_str("<h2>Residuals</h2>");
            body.push_str(&residual_svg(y, &predicted));
        }
        _ => {}
    }
    let (what, weights) = feature_weights(ir);
    write!(body, "<h2>Features: {}</h2>", esc(&what)).expect("write to string");
    body.push_str(&bars_svg(&ir.features, &weights));
    body.push_str("<h2>Candidates (cross-validation)</h2><table><tr><th>run</th><th>candidate</th><th>mean</th><th>std</th><th>seconds</th></tr>");
    for c in &train.candidates {
        let bold = if c.run_id == train.best_run_id {
            " class=\"key\""
        } else {
            ""
        };
        write!(
            body,
            "<tr{bold}><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.2}</td></tr>",
            esc(&c.run_id),
            esc(&c.label),
            c.cv_mean,
            c.cv_std,
            c.seconds
        )
        .expect("write to string");
    }
    body.push_str("</table>");
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{} run report</title><style>body{{font-family:system-ui,sans-serif;max-width:900px;margin:auto;padding:1em;color:#1a202c}}table{{border-collapse:collapse;margin:.5em 0}}td,th{{border-bottom:1px solid #e2e8f0;padding:.25em .75em;text-align:left}}tr.key{{font-weight:bold;background:#ebf4ff}}small{{color:#718096;font-weight:normal}}svg{{max-width:100%;height:auto}}</style></head><body>{body}</body></html>"#,
        esc(&train.model_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refit_worse_than_its_cross_validation_is_named_with_both_numbers() {
        // Higher is better: 0.913 on its own rows against 0.964 in cross-validation.
        let why = refit_gap(Metric::F1, "logistic_regression(alpha=1.0)", 0.913, 0.964, 0.02).unwrap();
        assert!(
            why.starts_with("logistic_regression(alpha=1.0) refitted on the whole training split scores f1 0.9130 on it, 0.0510 worse than its cross-validation mean 0.9640 (train.refit_margin = 0.02)"),
            "{why}"
        );
        // A refit that fits its own rows better than the folds did (the usual case) passes, and
        // so does one within the margin.
        assert_eq!(refit_gap(Metric::F1, "m", 0.99, 0.96, 0.02), None);
        assert_eq!(refit_gap(Metric::F1, "m", 0.95, 0.96, 0.02), None);
        // Lower is better.
        assert!(refit_gap(Metric::Rmse, "m", 60.0, 52.0, 5.0).is_some());
        assert_eq!(refit_gap(Metric::Rmse, "m", 40.0, 52.0, 5.0), None);
        // No score is no pass.
        assert!(refit_gap(Metric::RocAuc, "m", f64::NAN, 0.9, 0.02).is_some());
    }
}
