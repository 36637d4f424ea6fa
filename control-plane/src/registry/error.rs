/// The registry's own failures, for callers to branch on (the REST API maps the `Unknown*` ones to
/// 404). The registry's functions return `anyhow::Result`; these errors are inside it, found with
/// `err.downcast_ref::<RegistryError>()` through any context added on the way.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid {what} name '{name}': {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: String,
    },
    #[error("model '{name}' does not exist in {store}")]
    UnknownModel { name: String, store: String },
    #[error("model '{name}' has no version {version} (it has: {})", list(.available))]
    UnknownVersion {
        name: String,
        version: u64,
        available: Vec<u64>,
    },
    #[error("model '{name}' has no alias '{alias}' (it has: {})", list(.available))]
    UnknownAlias {
        name: String,
        alias: String,
        available: Vec<String>,
    },
    #[error("model {name}@{version} has no artifact '{file}' (it has: {})", list(.available))]
    UnknownArtifact {
        name: String,
        version: u64,
        file: String,
        available: Vec<String>,
    },
    #[error("artifact '{file}' of model {name}@{version} is corrupted: {reason}")]
    Corrupted {
        name: String,
        version: u64,
        file: String,
        reason: String,
    },
    #[error("the manifest of model {name}@{version} does not verify: {reason}")]
    BadSignature { name: String, version: u64, reason: String },
    #[error("alias '{alias}' of model '{name}' has no earlier version to roll back to")]
    NothingToRollBack { name: String, alias: String },
    #[error("alias '{alias}' of model '{name}' kept changing under other writers ({attempts} attempts): try again")]
    Contended { name: String, alias: String, attempts: u32 },
}

impl RegistryError {
    /// Whether the error names something that does not exist (a 404 for the REST API).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::UnknownModel { .. }
                | RegistryError::UnknownVersion { .. }
                | RegistryError::UnknownAlias { .. }
                | RegistryError::UnknownArtifact { .. }
        )
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}
