//! The comparison as Markdown, in the style of a CML report: fit for a pull request comment.

use std::fmt::Write;

use super::{Comparison, Verdict};
use crate::config::Metric;
use crate::train::Metrics;

/// The metrics in the order the report lists them (after the gating one).
const ORDER: [Metric; 9] = Metric::ALL;
/// A title with the verdict, a metrics table (the gating metric first and in bold, deltas with
/// ▲/▼), the rule applied, and for classifiers both confusion matrices.
pub(crate) fn markdown_report(c: &Comparison) -> String {
    let mut out = String::new();
    let icon = match c.verdict {
        Verdict::Better | Verdict::NotWorse => "✅",
        Verdict::Worse => "❌",
    };
    let _ = writeln!(
        out,
        "## {icon} Model comparison: {} is {} than {}",
        c.candidate,
        c.verdict.as_str(),
        c.baseline
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "Candidate **{}** against baseline **{}**, both scored on the {} test rows of dataset **{}**.",
        c.candidate, c.baseline, c.test_rows, c.dataset
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "| metric | baseline {} | candidate {} | delta |",
        c.baseline, c.candidate
    );
    out.push_str("| --- | ---: | ---: | ---: |\n");
    let metrics = std::iter::once(c.metric).chain(ORDER.into_iter().filter(|m| *m != c.metric));
    for metric in metrics {
        let (b, n) = (c.baseline_metrics.get(metric), c.candidate_metrics.get(metric));
        if b.is_none() && n.is_none() {
            continue;
        }
        let delta = match (b, n) {
            (Some(b), Some(n)) => delta(n - b),
            _ => "n/a".to_owned(),
        };
        let cells = [metric.name().to_owned(), number(b), number(n), delta];
        let cells: Vec<String> = if metric == c.metric {
            cells.iter().map(|s| format!("**{s}**")).collect()
        } else {
            cells.to_vec()
        };
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
    let direction = if c.metric.higher_is_better() { "drop" } else { "rise" };
    let _ = writeln!(
        out,
        "**Rule:** {} may {direction} by at most {} ({} is better).  ",
        c.metric,
        c.tolerance,
        if c.metric.higher_is_better() { "higher" } else { "lower" }
    );
    let _ = writeln!(out, "**Result:** {}.", c.reason);
    if let (Metrics::Classification(b), Metrics::Classification(n)) = (&c.baseline_metrics, &c.candidate_metrics) {
        out.push_str("\n### Confusion matrices\n\nRows are true classes, columns predicted classes.\n");
        for (who, model, m) in [("Baseline", &c.baseline, b), ("Candidate", &c.candidate, n)] {
            let _ = writeln!(out, "\n**{who} {model}**\n");
            let header: Vec<String> = m.classes.iter().map(|k| cell(k)).collect();
            let _ = writeln!(out, "| true \\ predicted | {} |", header.join(" | "));
            let _ = writeln!(out, "| --- |{}", " ---: |".repeat(m.classes.len()));
            for (class, row) in m.classes.iter().zip(&m.confusion) {
                let counts: Vec<String> = row.iter().map(u64::to_string).collect();
                let _ = writeln!(out, "| **{}** | {} |", cell(class), counts.join(" | "));
            }
        }
    }
    out
}

fn number(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"))
}

fn delta(d: f64) -> String {
    if d > 1e-12 {
        format!("▲ +{d:.4}")
    } else if d < -1e-12 {
        format!("▼ {d:.4}")
    } else {
        "= 0".to_owned()
    }
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::registry::DatasetRef;
    use crate::registry::gate::ModelVersionRef;
    use crate::train::metrics::{classification, regression};

    fn comparison(verdict: Verdict, baseline: Metrics, candidate: Metrics, metric: Metric) -> Comparison {
        Comparison {
            candidate: ModelVersionRef {
                name: "wine".into(),
                version: 2,
            },
            baseline: ModelVersionRef {
                name: "wine".into(),
                version: 1,
            },
            dataset: DatasetRef {
                name: "winequality-red".into(),
                version: 1,
            },
            test_rows: 4,
            metric,
            tolerance: 0.005,
            candidate_metrics: candidate,
            baseline_metrics: baseline,
            deltas: BTreeMap::new(),
            verdict,
            reason: "f1 rose by 0.5000 (0.3333 -> 0.8333)".into(),
        }
    }

    #[test]
    fn classification_reports_have_the_table_the_rule_and_both_matrices() {
        let classes = vec!["bad|wine".to_owned(), "good".to_owned()];
        let probs = |p: &[f64]| p.iter().map(|p| vec![1.0 - p, *p]).collect::<Vec<_>>();
        let baseline = classification(&[0, 0, 1, 1], &[1, 1, 1, 1], &probs(&[0.6, 0.6, 0.6, 0.6]), &classes);
        let candidate = classification(&[0, 0, 1, 1], &[0, 1, 1, 1], &probs(&[0.2, 0.6, 0.7, 0.9]), &classes);
        let report = markdown_report(&comparison(
            Verdict::Better,
            Metrics::Classification(baseline),
            Metrics::Classification(candidate),
            Metric::F1,
        ));
        assert!(
            report.starts_with("## ✅ Model comparison: wine@2 is better than wine@1\n"),
            "{report}"
        );
        assert!(
            report.contains("| metric | baseline wine@1 | candidate wine@2 | delta |"),
            "{report}"
        );
        // The gating metric comes first, in bold; arrows show the direction.
        let first_row = report.lines().find(|l| l.starts_with("| **")).unwrap();
        assert!(
            first_row.starts_with("| **f1** | **0.3333** | **0.7333** | **▲ +0.4000** |"),
            "{report}"
        );
        assert!(
            report.contains("| accuracy | 0.5000 | 0.7500 | ▲ +0.2500 |"),
            "{report}"
        );
        assert!(
            report.contains("| log_loss | 0.7136 | 0.4004 | ▼ -0.3132 |"),
            "{report}"
        );
        assert!(
            report.contains("**Rule:** f1 may drop by at most 0.005 (higher is better)."),
            "{report}"
        );
        assert!(report.contains("**Baseline wine@1**"), "{report}");
        assert!(report.contains("| true \\ predicted | bad\\|wine | good |"), "{report}");
        assert!(report.contains("| **bad\\|wine** | 0 | 2 |"), "{report}");
        assert!(report.contains("| **bad\\|wine** | 1 | 1 |"), "{report}");
        assert!(!report.contains("rmse"), "{report}");
    }

    #[test]
    fn regression_reports_have_no_matrices_and_say_lower_is_better() {
        let report = markdown_report(&comparison(
            Verdict::Worse,
            Metrics::Regression(regression(&[1.0, 2.0], &[1.0, 2.0])),
            Metrics::Regression(regression(&[1.0, 2.0], &[1.0, 3.0])),
            Metric::Rmse,
        ));
        assert!(
            report.starts_with("## ❌ Model comparison: wine@2 is worse than wine@1"),
            "{report}"
        );
        assert!(
            report.contains("| **rmse** | **0.0000** | **0.7071** | **▲ +0.7071** |"),
            "{report}"
        );
        assert!(
            report.contains("rmse may rise by at most 0.005 (lower is better)"),
            "{report}"
        );
        assert!(report.contains("| r2 |"), "{report}");
        assert!(!report.contains("Confusion"), "{report}");
    }
}
