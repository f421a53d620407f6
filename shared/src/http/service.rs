use std::convert::Infallible;
use std::time::Instant;

use lambda_http::http::HeaderValue;
use lambda_http::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, CACHE_CONTROL,
    CONTENT_SECURITY_POLICY, HeaderName, ORIGIN, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, VARY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use lambda_http::{Body, Request, RequestExt, Response, service_fn};

use time::OffsetDateTime;
use tracing::Instrument;

use crate::auth::{AuthError, Credentials, PresentedKey};
use crate::ratelimit::{self, Caller, Decision, Shown, Verdict};
use crate::routes::{Route, Serves};
use crate::store::LAST_USED_INTERVAL;
use crate::{AppState, telemetry};

use super::{
    ApiError, CORRELATION_ID_HEADER, Endpoint, api_key_header, bearer_token, client_correlation_id,
    has_authorization, problem, refuse_unknown_query_parameters, source_ip,
};

/// The whole of a function binary's `main`: logging, state built once, then the Lambda loop
/// serving `endpoint`.
pub async fn run(endpoint: &'static Endpoint) -> Result<(), lambda_http::Error> {
    crate::auth::map_hash_memory_apart();
    telemetry::init();
    let state = AppState::from_env(&endpoint.route).await.inspect_err(
        |error| tracing::error!(%error, "configuration refused; the function cannot start"),
    )?;
    let state: &'static AppState = Box::leak(Box::new(state));
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, Infallible>(dispatch(endpoint, req, state).await)
    }))
    .await
}

/// Runs one request through `endpoint` inside the request's span, so that every line it logs
/// carries its request id, correlation id and route; the answer carries the correlation id too
/// (`X-Correlation-ID`): the client's own when well-formed, the Lambda request id otherwise.
pub async fn dispatch(
    endpoint: &Endpoint,
    req: Request,
    state: &'static AppState,
) -> Response<Body> {
    let request_id = req
        .lambda_context_ref()
        .map(|context| context.request_id.clone());
    let correlation_id = client_correlation_id(&req)
        .map(str::to_owned)
        .or_else(|| request_id.clone());
    let span = telemetry::request_span(
        request_id.as_deref(),
        correlation_id.as_deref(),
        &endpoint.route,
    );
    // On the heap: the whole request's state, limiter and handler included, is too large a
    // future for a small thread's stack in a debug build.
    let mut response = Box::pin(respond(endpoint, req, state))
        .instrument(span)
        .await;
    if let Some(value) = correlation_id.and_then(|id| HeaderValue::try_from(id).ok()) {
        response.headers_mut().insert(CORRELATION_ID_HEADER, value);
    }
    response
}

/// The credentials checked once (a bearer token verified, or an API key's form and checksum);
/// the rate limiter's verdict, whose read also fetches the token's session or the key and its
/// owner, and the handler's first read; then the handler, with what the limiter read in the
/// request's extensions (and, once a minute per key, the key's `last_used` written beside it).
/// Errors become problem responses, every response gets the security headers, and one log line
/// records the outcome.
async fn respond(endpoint: &Endpoint, req: Request, state: &'static AppState) -> Response<Body> {
    let started = Instant::now();
    let mut req = req;
    let client_ip = source_ip(&req).map(str::to_owned);
    let allowed_origin = req
        .headers()
        .get(ORIGIN)
        .filter(|origin| {
            state
                .config
                .cors_allowed_origins
                .iter()
                .any(|allowed| allowed.as_bytes() == origin.as_bytes())
        })
        .cloned();
    let now = state.clock.now();
    let mut user_id = None;
    let mut api_key_id = None;
    let mut last_used_due = None;
    let verdict = admit(endpoint, &req, state, now).await.map(|admission| {
        if let Credentials::Valid(principal) = &admission.credentials {
            user_id = Some(principal.user().id.to_string());
            if let Some(key) = principal.api_key() {
                api_key_id = Some(key.id.to_string());
                last_used_due = key.last_used_due(now, LAST_USED_INTERVAL).then_some(key.id);
            }
        }
        req.extensions_mut().insert(admission.credentials);
        if let Some(prefetched) = admission.prefetched {
            req.extensions_mut().insert(prefetched);
        }
        admission.verdict
    });
    let (outcome, rate_limit) = match verdict {
        Ok(Verdict::Unlimited) => (handle(endpoint, req, state, last_used_due).await, None),
        Ok(Verdict::Admitted(decision)) => (
            handle(endpoint, req, state, last_used_due).await,
            Some(decision),
        ),
        Ok(Verdict::Refused(decision)) => {
            let retry_after_seconds = decision.reset_seconds.max(1);
            let detail = format!("Too many requests; retry in {retry_after_seconds} seconds");
            (
                Err(ApiError::RateLimited {
                    retry_after_seconds,
                    detail,
                }),
                Some(decision),
            )
        }
        Err(error) => (Err(error), None),
    };
    let mut response = outcome.unwrap_or_else(|error| {
        if let ApiError::Internal(reason) = &error {
            tracing::error!(%reason, "request failed");
        }
        problem(&error)
    });
    add_security_headers(&mut response, endpoint.route.serves);
    if let Some(decision) = rate_limit {
        add_rate_limit_headers(&mut response, &decision);
    }
    if !state.config.cors_allowed_origins.is_empty() {
        // Whether the CORS headers are there depends on the request's Origin, allowed or not.
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(origin) = allowed_origin {
        add_cors_headers(&mut response, origin);
    }
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        user_id,
        api_key_id,
        source_ip = client_ip,
        rate_limit = match rate_limit {
            None => "unlimited",
            Some(decision) if decision.admitted => "admitted",
            Some(_) => "refused",
        },
        "request"
    );
    response
}

/// The handler, once the query string names only parameters the route takes; and beside it
/// (concurrently: no round trip more for the caller to wait for when the handler makes a DynamoDB
/// call of its own) the write of an API key's `last_used` when it is due. Not after the response:
/// a Lambda instance is frozen once it has answered.
async fn handle(
    endpoint: &Endpoint,
    req: Request,
    state: &'static AppState,
    last_used_due: Option<uuid::Uuid>,
) -> Result<Response<Body>, ApiError> {
    refuse_unknown_query_parameters(&req, &endpoint.route)?;
    let handler = (endpoint.handler)(req, state);
    let Some(key_id) = last_used_due else {
        return handler.await;
    };
    let touch = async {
        if let Err(error) = state.store.touch_api_key(key_id, state.clock.now()).await {
            tracing::warn!(%error, "an API key's last_used was not written");
        }
    };
    tokio::join!(handler, touch).0
}

/// The rate limiter's admission of a request, its credentials checked here, once.
async fn admit(
    endpoint: &Endpoint,
    req: &Request,
    state: &AppState,
    now: OffsetDateTime,
) -> Result<ratelimit::Admission, ApiError> {
    let shown = shown(&endpoint.route, req, state)?;
    let claimed_user = match &shown {
        Shown::Nothing | Shown::Unverified(_) => None,
        Shown::Token(claims) => Some(claims.sub),
        Shown::Key(key) => Some(key.owner),
    };
    let first_read = (endpoint.first_read)(req, claimed_user);
    let caller = Caller {
        shown,
        ip: source_ip(req).unwrap_or("unknown"),
    };
    let limits = &state.config.rate_limits;
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let admission = ratelimit::admit(
        &state.store,
        limits,
        &endpoint.route,
        caller,
        first_read,
        now_ms,
    )
    .await?;
    Ok(admission)
}

/// The credentials a request shows, checked as far as the request alone allows (no DynamoDB
/// call): a bearer token's signature and claims, only on a route that reads tokens; an API key's
/// form and checksum, only on a route that reads keys. A key on a route that refuses keys is 403, a key beside a bearer token 400,
/// and a key that cannot be one this API issued 401: none of them is counted or read.
fn shown(route: &Route, req: &Request, state: &AppState) -> Result<Shown, ApiError> {
    let key = match route.api_keys {
        crate::routes::ApiKeys::Ignored => None,
        _ => api_key_header(req),
    };
    if let Some(raw) = key {
        if !route.api_keys.accepted() {
            return Err(AuthError::KeysRefused.into());
        }
        if has_authorization(req) {
            return Err(AuthError::BothCredentials.into());
        }
        return raw
            .to_str()
            .ok()
            .and_then(|raw| PresentedKey::parse(raw).ok())
            .map(Shown::Key)
            .ok_or_else(|| {
                tracing::info!("API key refused: not one this API issued (form or checksum)");
                AuthError::InvalidKey.into()
            });
    }
    let token = bearer_token(req).filter(|_| route.reads_tokens());
    let Some((token, tokens)) = token.zip(state.jwt_keys()) else {
        return Ok(Shown::Nothing);
    };
    Ok(match tokens.verify(token) {
        Ok(claims) => Shown::Token(claims),
        Err(error) => Shown::Unverified(error.fault()),
    })
}

fn add_rate_limit_headers(response: &mut Response<Body>, decision: &Decision) {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", decision.limit.into());
    headers.insert("x-ratelimit-remaining", decision.remaining.into());
    headers.insert("x-ratelimit-reset", decision.reset_seconds.into());
}

/// Only for an origin the configuration allows: an arbitrary `Origin` is never echoed.
fn add_cors_headers(response: &mut Response<Body>, origin: HeaderValue) {
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, \
             X-Correlation-ID",
        ),
    );
}

const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");

/// The Content-Security-Policy of every JSON answer: it loads nothing and may be framed by no page.
const JSON_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The docs page's (`Serves::DocsPage`): its own scripts, styles and images (Swagger UI's
/// stylesheet has `data:` images), requests to this API alone (the OpenAPI document, "Try it
/// out"), and no inline script, framing, `<base>` or form submission. The narrowest with which
/// Chromium reports no violation (tests/test_docs_browser.py).
const DOCS_PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// The browser features every answer turns off (`Permissions-Policy`): all an API has no use
/// for, which is every one. Only features Chromium knows, as an unknown one is a console error.
const JSON_PERMISSIONS: &str = "accelerometer=(), autoplay=(), camera=(), clipboard-read=(), \
    clipboard-write=(), display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), \
    gyroscope=(), hid=(), idle-detection=(), magnetometer=(), microphone=(), midi=(), payment=(), \
    picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), serial=(), \
    sync-xhr=(), usb=(), web-share=(), xr-spatial-tracking=()";

/// The docs page's: the same, but Swagger UI's copy buttons may write to the clipboard.
const DOCS_PAGE_PERMISSIONS: &str = "accelerometer=(), autoplay=(), camera=(), \
    clipboard-read=(), clipboard-write=(self), display-capture=(), encrypted-media=(), \
    fullscreen=(), geolocation=(), gyroscope=(), hid=(), idle-detection=(), magnetometer=(), \
    microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), \
    screen-wake-lock=(), serial=(), sync-xhr=(), usb=(), web-share=(), xr-spatial-tracking=()";

/// The same on every answer, but the Content-Security-Policy, the Permissions-Policy and caching,
/// which follow what the route serves: a JSON route's answers are never cached, whatever its
/// handler set, while the docs page's handler says how long each of its answers may be kept
/// (`no-store` unless it says).
fn add_security_headers(response: &mut Response<Body>, serves: Serves) {
    let headers = response.headers_mut();
    for (name, value) in [
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ),
        (REFERRER_POLICY, "no-referrer"),
        (X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let no_store = HeaderValue::from_static("no-store");
    let (content_policy, permissions) = match serves {
        Serves::Json => {
            headers.insert(CACHE_CONTROL, no_store);
            (JSON_POLICY, JSON_PERMISSIONS)
        }
        Serves::DocsPage => {
            headers.entry(CACHE_CONTROL).or_insert(no_store);
            (DOCS_PAGE_POLICY, DOCS_PAGE_PERMISSIONS)
        }
    };
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(content_policy),
    );
    headers.insert(PERMISSIONS_POLICY, HeaderValue::from_static(permissions));
}
