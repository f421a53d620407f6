//! The docs function through `http::dispatch`, as API Gateway calls it: the page, every asset it
//! names, unknown names, and the headers its answers get, which no other route can get.

use crate::support::{TestApp, TestResponse, event};
use lambda_http::{Body, Response};
use shared::handlers::{DOCS, HEALTH, ME, OPENAPI, ROOT};
use shared::http::{Endpoint, file_response, no_first_read};
use shared::routes::{ApiKeys, RateLimit, Route, Serves};

const DOCS_PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";
const JSON_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

async fn asset(app: &TestApp, file: &str) -> TestResponse {
    let request = event("GET", &format!("/docs/{file}"))
        .path_parameter("file", file)
        .build();
    app.call(&DOCS, request).await
}

fn bytes(response: &Response<Body>) -> &[u8] {
    response.body().as_ref()
}

#[tokio::test]
async fn the_page_and_every_asset_it_names_are_served_with_their_types_and_caching() {
    let app = TestApp::new().await;
    let page = app.call(&DOCS, event("GET", "/docs").build()).await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(
        page.header("content-security-policy"),
        Some(DOCS_PAGE_POLICY)
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.header("x-ratelimit-limit").is_none(), "exempt");
    let named: Vec<&str> = page
        .text()
        .split("\"docs/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert_eq!(named.len(), 5, "{named:?}");
    for file in named {
        let response = asset(&app, file).await;
        assert_eq!(response.status(), 200, "{file}");
        let content_type = match file.rsplit_once('.').unwrap().1 {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "png" => "image/png",
            other => panic!("{file}: .{other}"),
        };
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{file}"
        );
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{file}"
        );
        assert_eq!(
            response.header("content-security-policy"),
            Some(DOCS_PAGE_POLICY)
        );
        let body = String::from_utf8_lossy(bytes(&response.0));
        if file.starts_with("swagger-ui-bundle.") {
            assert!(body.contains("SwaggerUIBundle"), "{file}");
        }
        assert!(!body.is_empty(), "{file}");
    }
}

#[tokio::test]
async fn a_name_the_page_does_not_use_is_a_404_problem_never_cached() {
    let app = TestApp::new().await;
    for file in [
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.0000000000000000.js",
        "swagger-ui-standalone-preset.js",
        "..%2Fopenapi.json",
        "page.html",
    ] {
        let response = asset(&app, file).await;
        assert_eq!(response.status(), 404, "{file:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(response.json()["detail"], "The docs page has no such file");
        assert_eq!(
            response.header("cache-control"),
            Some("no-store"),
            "{file:?}"
        );
    }
}

/// Every other route keeps the policy that loads nothing and `no-store`.
#[tokio::test]
async fn other_routes_keep_the_strict_policy_and_no_caching() {
    let app = TestApp::new().await;
    for (endpoint, path) in [
        (&ROOT, "/"),
        (&HEALTH, "/health"),
        (&OPENAPI, "/openapi.json"),
        (&ME, "/api/auth/me"),
    ] {
        let response = app.call(endpoint, event("GET", path).build()).await;
        assert_eq!(
            response.header("content-security-policy"),
            Some(JSON_POLICY),
            "{path}"
        );
        assert_eq!(response.header("cache-control"), Some("no-store"), "{path}");
    }
}

/// A JSON route's handler cannot loosen its headers: caching it sets is replaced by `no-store`,
/// and its policy is the strict one whatever it answers.
#[tokio::test]
async fn a_json_route_cannot_cache_its_answers_or_loosen_its_policy() {
    const CACHING_JSON: Endpoint = Endpoint {
        route: Route {
            function: "caching-json",
            method: "GET",
            paths: &["/caching-json"],
            rate_limit: RateLimit::Exempt,
            api_keys: ApiKeys::Ignored,
            serves: Serves::Json,
            query: &[],
        },
        first_read: no_first_read,
        handler: |_, _| {
            Box::pin(async {
                Ok(file_response(
                    "text/html; charset=utf-8",
                    "public, max-age=31536000, immutable",
                    Body::Text("<script src=\"x.js\"></script>".into()),
                ))
            })
        },
    };
    let app = TestApp::new().await;
    let response = app
        .call(&CACHING_JSON, event("GET", "/caching-json").build())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(
        response.header("content-security-policy"),
        Some(JSON_POLICY)
    );
}

/// Second security review, item 7: with origins allowed, whether an answer carries CORS headers
/// depends on the request's `Origin`, so every answer says `Vary: Origin` (a shared cache would
/// otherwise serve one origin's answer to another), an answer to a refused origin or to none
/// included; without allowed origins nothing depends on it.
#[tokio::test]
async fn every_answer_varies_by_origin_when_origins_are_allowed() {
    let allowed = "https://app.example.com";
    let app = TestApp::with_settings(&[("CORS_ALLOWED_ORIGINS", allowed)]).await;
    let requests = |origin: Option<&str>| {
        let with = |builder: crate::support::EventBuilder| match origin {
            Some(origin) => builder.header("origin", origin),
            None => builder,
        };
        [
            (&DOCS, with(event("GET", "/docs")).build()),
            (&HEALTH, with(event("GET", "/health")).build()),
            (&ME, with(event("GET", "/api/auth/me")).build()),
        ]
    };
    for origin in [Some(allowed), Some("https://elsewhere.example"), None] {
        for (endpoint, request) in requests(origin) {
            let response = app.call(endpoint, request).await;
            let varies: Vec<_> = response.0.headers().get_all("vary").iter().collect();
            assert_eq!(varies, ["Origin"], "{} from {origin:?}", endpoint.route);
            assert_eq!(
                response.header("access-control-allow-origin"),
                origin.filter(|origin| *origin == allowed),
                "{} from {origin:?}",
                endpoint.route
            );
        }
    }
    let without = TestApp::with_settings(&[("CORS_ALLOWED_ORIGINS", "")]).await;
    for (endpoint, request) in requests(Some(allowed)) {
        let response = without.call(endpoint, request).await;
        assert_eq!(response.header("vary"), None, "{}", endpoint.route);
    }
}
