use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{json, json_text};
use crate::{ApiError, AppState};

const SERVICE: &str = "Fog Compute API";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every route of the API, as `template.yaml` declares them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/health"),
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("GET", "/api/auth/me"),
    ("POST", "/api/auth/logout"),
    ("POST", "/api/scheduler/jobs"),
    ("GET", "/api/scheduler/jobs"),
    ("GET", "/api/scheduler/jobs/{id}"),
    ("DELETE", "/api/scheduler/jobs/{id}"),
    ("POST", "/api/idle-compute/devices"),
    ("GET", "/api/idle-compute/devices"),
    ("GET", "/api/tokenomics/balance"),
    ("POST", "/api/tokenomics/transfer"),
    ("POST", "/api/tokenomics/stake"),
    ("POST", "/api/tokenomics/unstake"),
    ("POST", "/api/tokenomics/mint"),
    ("POST", "/api/tokenomics/proposals"),
    ("GET", "/api/tokenomics/proposals"),
    ("POST", "/api/tokenomics/vote"),
    ("GET", "/openapi.json"),
];

const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// `GET /health`
pub async fn health(_req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    state.store.ping().await?;
    Ok(json(
        StatusCode::OK,
        &json!({"status": "healthy", "service": SERVICE, "version": VERSION, "database": "reachable"}),
    ))
}

/// `GET /`
pub async fn root(_req: Request, _state: &AppState) -> Result<Response<Body>, ApiError> {
    let endpoints: Vec<String> = ROUTES
        .iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"name": SERVICE, "version": VERSION, "endpoints": endpoints}),
    ))
}

/// `GET /openapi.json`
pub async fn openapi(_req: Request, _state: &AppState) -> Result<Response<Body>, ApiError> {
    Ok(json_text(StatusCode::OK, OPENAPI_JSON))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_document_is_the_openapi_yaml_as_json() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["version"], VERSION);
    }
}
