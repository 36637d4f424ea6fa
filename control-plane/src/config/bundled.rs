//! The bundled wine-quality example, compiled in so `wasmline pipeline run` works from any
//! directory (the embedded default).

use std::path::PathBuf;

use anyhow::Context;

use super::PipelineConfig;

/// The bundled example, compiled in so `wasmline pipeline run` works from any directory.
const EXAMPLE_CONFIG: &str = include_str!("../../../examples/winequality/pipeline.toml");
const EXAMPLE_DATA: &[u8] = include_bytes!("../../../examples/winequality/winequality-red.csv");

/// Where [`bundled_example`] unpacks the example's data (its config's source).
pub(crate) fn bundled_example_source() -> PathBuf {
    std::env::temp_dir()
        .join("wasmline-example-winequality")
        .join("winequality-red.csv")
}

/// The bundled wine-quality example: its data unpacked to a stable temporary folder.
pub(crate) fn bundled_example() -> anyhow::Result<PipelineConfig> {
    let data = bundled_example_source();
    let dir = data.parent().expect("a folder").to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if std::fs::read(&data).ok().as_deref() != Some(EXAMPLE_DATA) {
        // Written beside, then renamed: two processes unpacking at once never read half a file.
        let partial = dir.join(format!("winequality-red.csv.{}", std::process::id()));
        std::fs::write(&partial, EXAMPLE_DATA).with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &data).with_context(|| format!("cannot write {}", data.display()))?;
    }
    PipelineConfig::parse(EXAMPLE_CONFIG, dir).map_err(|e| anyhow::anyhow!("bundled example: {e}"))
}
