use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::ROUTES;
use crate::AppState;
use crate::http::{ApiError, json_response, json_text_response};

const SERVICE: &str = "Fog Compute API";
const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(super) const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// `GET /health`
pub async fn health(_req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    state.store.ping().await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"status": "healthy", "service": SERVICE, "version": VERSION, "database": "reachable"}),
    ))
}

/// `GET /`
pub async fn root(_req: Request, _state: &AppState) -> Result<Response<Body>, ApiError> {
    let endpoints: Vec<String> = ROUTES
        .iter()
        .flat_map(|route| {
            (route.paths.iter()).map(move |path| format!("{} {}", route.method, path))
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"name": SERVICE, "version": VERSION, "endpoints": endpoints}),
    ))
}

/// Every request no route matches (API Gateway's `$default` route, and the local stack's router
/// alike): 405 with `Allow` when its path is a route's, with another method; 404 otherwise.
pub async fn unmatched(req: Request, _state: &AppState) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path();
    let mut known = None;
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(template) = route.path_matching(path) {
            known = Some(template);
            allowed.push(route.method);
        }
    }
    let Some(path) = known else {
        return Err(ApiError::NotFound(
            "No route matches this path; GET / lists every route".into(),
        ));
    };
    allowed.sort_unstable();
    Err(ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        path,
        allowed,
    })
}

/// `GET /openapi.json`
pub async fn openapi(_req: Request, _state: &AppState) -> Result<Response<Body>, ApiError> {
    Ok(json_text_response(StatusCode::OK, OPENAPI_JSON))
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

    /// The docs page shows paths, tags and security schemes in the document's order, so the
    /// served JSON keeps openapi.yaml's rather than sorting each object's keys.
    #[test]
    fn the_served_document_keeps_the_yaml_order() {
        let yaml = include_str!("../../../openapi.yaml");
        // The keys one level below a section's header line, up to the next line indented no
        // deeper than the header.
        let keys_under = |header: &str| -> Vec<String> {
            let depth = header.len() - header.trim_start().len();
            (yaml.lines())
                .skip_while(|line| *line != header)
                .skip(1)
                .take_while(|line| line.is_empty() || line.len() - line.trim_start().len() > depth)
                .filter(|line| line.len() - line.trim_start().len() == depth + 2)
                .filter_map(|line| line.trim().strip_suffix(':'))
                .map(|key| format!("\"{key}\":"))
                .collect()
        };
        let position = |text: &str| {
            OPENAPI_JSON
                .find(text)
                .unwrap_or_else(|| panic!("{text} is not in openapi.json"))
        };
        for ordered in [keys_under("paths:"), keys_under("  securitySchemes:")] {
            assert!(ordered.len() > 1, "{ordered:?}");
            let positions: Vec<usize> = ordered.iter().map(|key| position(key)).collect();
            assert!(positions.is_sorted(), "openapi.json reorders {ordered:?}");
        }
        let tags: Vec<String> = (yaml.lines())
            .filter_map(|line| line.strip_prefix("  - name: "))
            .map(|name| format!("{{\"name\":\"{name}\""))
            .collect();
        assert!(tags.len() > 1, "{tags:?}");
        let positions: Vec<usize> = tags.iter().map(|tag| position(tag)).collect();
        assert!(positions.is_sorted(), "openapi.json reorders the tags");
    }
}
