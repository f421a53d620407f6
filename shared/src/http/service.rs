use std::convert::Infallible;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lambda_http::http::HeaderValue;
use lambda_http::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, CACHE_CONTROL,
    CONTENT_SECURITY_POLICY, ORIGIN, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use tracing::Instrument;

use crate::auth::{Credentials, Principal};
use crate::ratelimit::{self, Caller, Decision, Verdict};
use crate::{AppState, telemetry};

use super::{ApiError, Endpoint, bearer_token, problem, source_ip};

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
/// carries its request id and route.
pub async fn dispatch(
    endpoint: &Endpoint,
    req: Request,
    state: &'static AppState,
) -> Response<Body> {
    let span = telemetry::request_span(
        req.lambda_context_ref()
            .map(|context| context.request_id.as_str()),
        &endpoint.route,
    );
    respond(endpoint, req, state).instrument(span).await
}

/// The bearer token verified, once; the rate limiter's verdict, whose read also fetches the
/// token's session and the handler's first read; then the handler, with what the limiter read in
/// the request's extensions. Errors become problem responses, every response gets the security
/// headers, and one log line records the outcome.
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
    let mut user_id = None;
    let verdict = admit(endpoint, &req, state).await.map(|admission| {
        if let Credentials::Valid(Principal::User { user, .. }) = &admission.credentials {
            user_id = Some(user.id.to_string());
        }
        req.extensions_mut().insert(admission.credentials);
        if let Some(prefetched) = admission.prefetched {
            req.extensions_mut().insert(prefetched);
        }
        admission.verdict
    });
    let (outcome, rate_limit) = match verdict {
        Ok(Verdict::Unlimited) => ((endpoint.handler)(req, state).await, None),
        Ok(Verdict::Admitted(decision)) => ((endpoint.handler)(req, state).await, Some(decision)),
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
    add_security_headers(&mut response);
    if let Some(decision) = rate_limit {
        add_rate_limit_headers(&mut response, &decision);
    }
    if let Some(origin) = allowed_origin {
        add_cors_headers(&mut response, origin);
    }
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        user_id,
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

/// The rate limiter's admission of a request, its bearer token verified here, once.
async fn admit(
    endpoint: &Endpoint,
    req: &Request,
    state: &AppState,
) -> Result<ratelimit::Admission, ApiError> {
    let claims = bearer_token(req)
        .zip(state.jwt_keys())
        .and_then(|(token, tokens)| tokens.verify(token).ok());
    let first_read = (endpoint.first_read)(req, claims.as_ref());
    let caller = Caller {
        claims,
        ip: source_ip(req).unwrap_or("unknown"),
    };
    let limits = &state.config.rate_limits;
    let admission = ratelimit::admit(
        &state.store,
        limits,
        &endpoint.route,
        caller,
        first_read,
        now_ms(),
    )
    .await?;
    Ok(admission)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
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
            "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset",
        ),
    );
    headers.append(VARY, HeaderValue::from_static("Origin"));
}

fn add_security_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    for (name, value) in [
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (CACHE_CONTROL, "no-store"),
        (
            STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ),
        (
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
