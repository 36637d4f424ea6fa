//! The edge's HTTP application: the KServe v2 routes over its [`EdgeModels`], `GET /metrics`,
//! a JSON 404 for anything else, and a request counter labelled by the matched route.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use edge_runtime::kserve::{self, ApiError, InferLimits};

use super::models::EdgeModels;

/// The edge's router. Tests drive it with `tower::ServiceExt::oneshot`, the binary serves it.
pub fn app(models: Arc<EdgeModels>, limits: InferLimits) -> Router {
    let metrics_routes = Router::new().route("/metrics", get(metrics)).with_state(models.clone());
    kserve::router(models.clone(), limits)
        .merge(metrics_routes)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(models, count_requests))
}

async fn metrics(State(models): State<Arc<EdgeModels>>) -> Response {
    models.refresh_drift_gauges();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        models.metrics().render(),
    )
        .into_response()
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route for {} {}", request.method(), request.uri().path()))
}

async fn count_requests(State(models): State<Arc<EdgeModels>>, request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    models
        .metrics()
        .http_requests
        .with_label_values(&[kserve::method_label(&method), &path, status.as_str()])
        .inc();
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%method, path, status = status.as_u16(), "request failed");
    }
    response
}

#[cfg(test)]
mod tests;
