use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::Metric;
use crate::registry::{self, ModelSelector, Pick, Verdict};

/// `wasmline compare`: the promotion gate, for CI.
#[derive(Debug, Args)]
pub struct CompareCommand {
    /// The model to judge: NAME@VERSION (or NAME for the latest, NAME@ALIAS).
    #[arg(long)]
    pub candidate: ModelSelector,
    /// What it must not be worse than, e.g. NAME@production.
    #[arg(long)]
    pub baseline: ModelSelector,
    /// The gating metric (default: the candidate's selection metric).
    #[arg(long, value_enum)]
    pub metric: Option<Metric>,
    /// How much worse the gating metric may get, in its own units.
    #[arg(long, default_value_t = 0.005)]
    pub tolerance: f64,
    /// Also write the Markdown report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// How a comparison ended; `main` makes it the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOutcome {
    /// Not worse beyond the tolerance: exit 0.
    Passed,
    /// There is no baseline yet (its alias does not exist): the first model passes, exit 0.
    NoBaseline,
    /// Worse beyond the tolerance: exit 1.
    Worse,
}

impl CompareOutcome {
    pub fn exit_code(self) -> u8 {
        match self {
            CompareOutcome::Passed | CompareOutcome::NoBaseline => 0,
            CompareOutcome::Worse => 1,
        }
    }
}

/// The exit code of a comparison that could not be made (`1` means "worse").
pub(crate) const COMPARE_ERROR_EXIT_CODE: u8 = 2;

impl CompareCommand {
    pub async fn execute(self, store: &str) -> anyhow::Result<CompareOutcome> {
        let store = super::open_store(store).await?;
        let store = store.as_ref();
        let candidate = registry::load_manifest(store, &self.candidate)
            .await
            .with_context(|| format!("cannot load the candidate {}", self.candidate))?;
        if let Pick::Alias(alias) = &self.baseline.pick
            && registry::get_alias(store, &self.baseline.name, alias).await?.is_none()
        {
            let text = format!(
                "## ✅ Model comparison: no baseline yet\n\n\
                 Model '{}' has no alias '{alias}' yet: {} is the first model and may be promoted.\n",
                self.baseline.name,
                candidate.id()
            );
            self.emit(&text)?;
            return Ok(CompareOutcome::NoBaseline);
        }
        let baseline = registry::load_manifest(store, &self.baseline)
            .await
            .with_context(|| format!("cannot load the baseline {}", self.baseline))?;
        let metric = self.metric.unwrap_or(candidate.selection_metric);
        let comparison = registry::compare(store, &candidate, &baseline, metric, self.tolerance).await?;
        self.emit(&registry::markdown_report(&comparison))?;
        Ok(match comparison.verdict {
            Verdict::Better | Verdict::NotWorse => CompareOutcome::Passed,
            Verdict::Worse => CompareOutcome::Worse,
        })
    }

    /// Prints the report, and writes it to `--report` if given.
    fn emit(&self, text: &str) -> anyhow::Result<()> {
        print!("{text}");
        if let Some(path) = &self.report {
            std::fs::write(path, text).with_context(|| format!("cannot write the report to {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::commands::Cli;
    use crate::registry::tests::wine_models;
    use crate::store::LocalStore;

    /// Runs the command line as `main` would: the exit code, or the error and the exit code.
    async fn run(store: &std::path::Path, args: &[&str]) -> Result<u8, (String, u8)> {
        let store = store.to_str().unwrap();
        let cli = match Cli::try_parse_from([&["wasmline", "--store", store], args].concat()) {
            Ok(cli) => cli,
            // clap exits with 2 on usage errors.
            Err(e) => return Err((e.to_string(), 2)),
        };
        let error_code = cli.error_exit_code();
        cli.execute().await.map_err(|e| (format!("{e:#}"), error_code))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_gate_exits_0_when_not_worse_1_when_worse_2_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = LocalStore::open(&root).unwrap();
        wine_models(&store).await; // version 1 learned, version 2 a coin flip
        let report = dir.path().join("report.md");
        let report_arg = report.to_str().unwrap();
        let compare = |candidate: &'static str| {
            [
                "compare",
                "--candidate",
                candidate,
                "--baseline",
                "winequality-red@production",
                "--report",
                report_arg,
            ]
        };

        // No production model yet: the first one passes.
        assert_eq!(run(&root, &compare("winequality-red@2")).await, Ok(0));
        let text = std::fs::read_to_string(&report).unwrap();
        assert!(text.contains("has no alias 'production' yet"), "{text}");

        assert_eq!(
            run(&root, &["models", "promote", "winequality-red", "1", "--by", "ci"]).await,
            Ok(0)
        );
        assert_eq!(run(&root, &compare("winequality-red@2")).await, Ok(1));
        assert!(std::fs::read_to_string(&report).unwrap().starts_with("## ❌"));
        assert_eq!(run(&root, &compare("winequality-red@1")).await, Ok(0));
        assert!(std::fs::read_to_string(&report).unwrap().starts_with("## ✅"));
        // A tolerance of 1 lets anything through; an inapplicable metric is an error.
        let lenient = [&compare("winequality-red@2")[..], &["--tolerance", "1"]].concat();
        assert_eq!(run(&root, &lenient).await, Ok(0));
        let (err, code) = run(
            &root,
            &[&compare("winequality-red@1")[..], &["--metric", "rmse"]].concat(),
        )
        .await
        .unwrap_err();
        assert_eq!(code, 2);
        assert!(
            err.contains("the metric rmse does not apply to classification"),
            "{err}"
        );

        let (err, code) = run(&root, &compare("nope@3")).await.unwrap_err();
        assert_eq!(code, 2);
        assert!(err.contains("model 'nope' does not exist"), "{err}");
        let (err, code) = run(&root, &compare("winequality-red@9")).await.unwrap_err();
        assert_eq!(code, 2);
        assert!(
            err.contains("model 'winequality-red' has no version 9 (it has: 1, 2)"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn models_commands_promote_roll_back_and_download() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = LocalStore::open(&root).unwrap();
        let (_, good, _) = wine_models(&store).await;

        assert_eq!(run(&root, &["models", "list"]).await, Ok(0));
        assert_eq!(run(&root, &["models", "show", "winequality-red@1"]).await, Ok(0));
        let (err, code) = run(&root, &["models", "promote", "winequality-red", "3"])
            .await
            .unwrap_err();
        assert_eq!(code, 1);
        assert!(err.contains("no version 3 (it has: 1, 2)"), "{err}");
        assert_eq!(run(&root, &["models", "promote", "winequality-red", "1"]).await, Ok(0));
        let (err, _) = run(&root, &["models", "rollback", "winequality-red"])
            .await
            .unwrap_err();
        assert!(err.contains("no earlier version to roll back to"), "{err}");
        assert_eq!(run(&root, &["models", "promote", "winequality-red", "2"]).await, Ok(0));
        assert_eq!(run(&root, &["models", "rollback", "winequality-red"]).await, Ok(0));
        let production = crate::registry::get_alias(&store, "winequality-red", "production")
            .await
            .unwrap();
        assert_eq!(production.unwrap().version, 1);

        let out = dir.path().join("download");
        let out_arg = out.to_str().unwrap();
        assert_eq!(
            run(
                &root,
                &["models", "download", "winequality-red@production", "--out", out_arg]
            )
            .await,
            Ok(0)
        );
        for (file, info) in &good.artifacts {
            let bytes = std::fs::read(out.join(file)).unwrap();
            assert_eq!(crate::registry::ArtifactInfo::of(&bytes), *info, "{file}");
        }
        let manifest: crate::registry::Manifest =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest, good);
        let (err, _) = run(&root, &["models", "show", "winequality-red@../x"])
            .await
            .unwrap_err();
        assert!(err.contains("invalid alias name '../x'"), "{err}");
    }
}
