//! The OpenAPI 3 document of `/api/v1`, generated from the handlers' annotations (utoipa), and
//! a human-readable page that renders it with no external asset.
//!
//! The prediction routes under `/v2` follow the Open Inference Protocol (KServe v2) and are
//! described by its own specification; the document points there.

use axum::Json;
use axum::response::Html;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api, error, hooks, pipeline, registry, telemetry};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Wasmline control plane",
        description = "Datasets, runs, the model registry (versions, aliases, artifacts), pipeline runs and \
                       telemetry. Reads are public; writes need `Authorization: Bearer <admin token>` \
                       (WASMLINE_ADMIN_TOKEN), edge telemetry the edge token. Errors are \
                       `{\"error\": {\"code\", \"message\"}}`. Predictions: `/v2/...`, the Open Inference \
                       Protocol (KServe v2) REST API."
    ),
    paths(
        api::list_models,
        api::show_model,
        api::show_version,
        api::list_aliases,
        api::set_alias,
        api::rollback_alias,
        api::alias_log,
        api::list_runs,
        api::show_run,
        api::compare_runs,
        api::list_datasets,
        api::show_dataset,
        api::show_dataset_version,
        api::dataset_report,
        pipeline::trigger,
        pipeline::status,
        pipeline::cancel,
        registry::signing_key,
        registry::alias,
        registry::artifact,
        telemetry::ingest,
        telemetry::ingest_browser,
        telemetry::summary,
        hooks::alertmanager,
        hooks::retrains,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&Tokens),
)]
pub(super) struct ApiDoc;

/// The bearer tokens: admin (writes), edge (edge telemetry), alertmanager (the retrain hook).
struct Tokens;

impl Modify for Tokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["admin", "edge", "alertmanager"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// `GET /api/docs`: the document as a page (operations, parameters, answers), rendered in the
/// browser from `/api/v1/openapi.json`.
pub(super) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Wasmline API</title>
<style>
body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:60rem;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ddd}
.op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4rem;font-weight:bold}
.get{color:#0a6}.post{color:#06c}.put{color:#a60}.delete{color:#c00}
code{background:#f4f4f4;padding:0 .2rem}small{color:#666}
</style></head><body>
<h1>Wasmline API</h1><p id="about"></p><div id="ops">Loading <code>/api/v1/openapi.json</code>…</div>
<script>
fetch("/api/v1/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("about").textContent = doc.info.description;
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      (byTag[(op.tags || ["other"])[0]] ||= []).push([method, path, op]);
    }
  }
  const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
  let html = "";
  for (const [tag, ops] of Object.entries(byTag)) {
    html += `<h2>${esc(tag)}</h2>`;
    for (const [method, path, op] of ops) {
      const params = (op.parameters || []).map(p => `<code>${esc(p.name)}</code> (${esc(p.in)})`).join(", ");
      const answers = Object.entries(op.responses || {}).map(([s, r]) => `<b>${esc(s)}</b> ${esc(r.description)}`).join("; ");
      const auth = op.security ? " <small>(token: " + op.security.map(s => Object.keys(s)[0]).join(", ") + ")</small>" : "";
      html += `<div class="op"><span class="m ${method}">${method.toUpperCase()}</span><code>${esc(path)}</code>${auth}` +
        (params ? `<br><small>parameters:</small> ${params}` : "") + `<br><small>answers:</small> ${answers}</div>`;
    }
  }
  document.getElementById("ops").innerHTML = html;
});
</script></body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_with_its_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/api/v1/models",
            "/api/v1/models/{name}/aliases/{alias}",
            "/api/v1/pipeline/runs",
            "/api/v1/telemetry",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        let put = &paths["/api/v1/models/{name}/aliases/{alias}"]["put"];
        assert_eq!(put["security"][0]["admin"], serde_json::json!([]));
        assert!(put["responses"]["401"].is_object());
    }
}
