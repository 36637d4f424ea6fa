//! Server-side inference: the production version of every registered model, loaded through the
//! edge runtime's one load gate (signature against the store's key, module digest, smoke
//! prediction) and served by the same KServe v2 router the edges use.
//!
//! A background task follows the aliases: when `production` moves, the new version is loaded
//! and swapped in; in-flight requests finish on the version they started with (they hold an
//! `Arc`). A version that fails the gate is logged and skipped; the previous one keeps serving.
//! One model whose records cannot be read never stops the others' refresh: it is exported as
//! `wasmline_model_unavailable{model, reason="unreadable"|"refused"} 1`.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use edge_runtime::kserve::{ModelSet, Outcome};
use edge_runtime::{LoadOptions, Runtime, RuntimeConfig, ServedModel};

use super::metrics::Metrics;
use crate::registry::{self, PublicKey};
use crate::store::ObjectStore;

/// The alias the server predicts with.
pub(super) const SERVED_ALIAS: &str = "production";

/// Whether a model's production version was refused by the load gate.
enum Refusal {
    None,
    Refused,
}

#[derive(Debug)]
pub(super) struct RegistryModels {
    runtime: Runtime,
    options: LoadOptions,
    /// Model -> its production version, once loaded.
    loaded: RwLock<BTreeMap<String, Arc<ServedModel>>>,
    /// Models with a production alias (loaded or not yet).
    names: RwLock<Vec<String>>,
    /// (model, version) pairs that failed the gate, not retried.
    refused: RwLock<Vec<(String, u64)>>,
    metrics: Arc<Metrics>,
}

impl RegistryModels {
    pub(super) fn new(public_key: PublicKey, metrics: Arc<Metrics>) -> anyhow::Result<RegistryModels> {
        Ok(RegistryModels {
            runtime: Runtime::new(RuntimeConfig::default())?,
            options: LoadOptions {
                trusted_key: Some(public_key),
                ..LoadOptions::default()
            },
            loaded: RwLock::default(),
            names: RwLock::default(),
            refused: RwLock::default(),
            metrics,
        })
    }

    /// Loads what moved since the last call: every model's production version. A model whose
    /// alias, manifest or module cannot be read is left as it was (serving its previous version,
    /// if any), logged and exported as unavailable; the others refresh regardless.
    pub(super) async fn refresh(self: &Arc<Self>, store: &dyn ObjectStore) -> anyhow::Result<()> {
        let mut names = Vec::new();
        let mut unavailable = BTreeMap::new();
        for name in registry::list_models(store).await? {
            match self.refresh_one(store, &name).await {
                Ok(Some(Refusal::None)) => names.push(name),
                Ok(Some(Refusal::Refused)) => {
                    unavailable.insert(name.clone(), "refused");
                    names.push(name);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(model = %name, error = format!("{e:#}"), "model unavailable: cannot read its production version");
                    unavailable.insert(name.clone(), "unreadable");
                    names.push(name);
                }
            }
        }
        *self.names.write().unwrap_or_else(PoisonError::into_inner) = names;
        self.metrics.unavailable(unavailable);
        Ok(())
    }

    /// Loads `name`'s production version if it moved; None when the model has no production.
    async fn refresh_one(self: &Arc<Self>, store: &dyn ObjectStore, name: &str) -> anyhow::Result<Option<Refusal>> {
        let Some(alias) = registry::get_alias(store, name, SERVED_ALIAS).await? else {
            return Ok(None);
        };
        let current = self.current(name).map(|m| m.version());
        let refused = self
            .refused
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&(name.to_owned(), alias.version));
        if refused {
            return Ok(Some(Refusal::Refused));
        }
        if current == Some(alias.version) {
            return Ok(Some(Refusal::None));
        }
        let manifest = registry::read_published(store, name, alias.version, "manifest.json").await?;
        let wasm = registry::read_published(store, name, alias.version, "model.wasm").await?;
        let this = self.clone();
        let loaded =
            tokio::task::spawn_blocking(move || ServedModel::load(&this.runtime, &manifest, &wasm, &this.options))
                .await?;
        match loaded {
            Ok(model) => {
                tracing::info!(model = %name, version = alias.version, "serving");
                self.loaded
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.to_owned(), Arc::new(model));
                Ok(Some(Refusal::None))
            }
            Err(e) if e.kind() == edge_runtime::LoadFailure::Transient => {
                // No free instance, a deadline on a loaded machine: the next refresh tries again.
                tracing::warn!(model = %name, version = alias.version, error = %e, "version not loaded yet (transient)");
                Ok(Some(Refusal::Refused))
            }
            Err(e) => {
                tracing::warn!(model = %name, version = alias.version, error = %e, "version refused");
                self.refused
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((name.to_owned(), alias.version));
                Ok(Some(Refusal::Refused))
            }
        }
    }

    /// Refreshes every `every` until `stop` turns true.
    pub(super) async fn follow(
        self: Arc<Self>,
        store: Arc<dyn ObjectStore>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.refresh(store.as_ref()).await {
                tracing::warn!(error = format!("{e:#}"), "cannot refresh the served models");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

impl ModelSet for RegistryModels {
    fn server_name(&self) -> String {
        "wasmline-control-plane".to_owned()
    }

    fn model_names(&self) -> Vec<String> {
        self.names.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn current(&self, name: &str) -> Option<Arc<ServedModel>> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn versions(&self, name: &str) -> Vec<Arc<ServedModel>> {
        self.current(name).into_iter().collect()
    }

    fn observe(&self, model: &ServedModel, outcome: &Outcome<'_>) {
        let seconds = match outcome {
            Outcome::Ok { seconds, .. } => Some(*seconds),
            _ => None,
        };
        self.metrics
            .observe(model.name(), model.version(), outcome.label(), seconds);
    }
}
