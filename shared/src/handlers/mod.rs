//! One async function per endpoint, and the route table: each endpoint's route (its function,
//! method, path (two for the docs page: `"/docs" | "/docs/{file}"`), rate-limit category, which
//! API keys it takes, and what it serves when not JSON), what its handler reads first, and how
//! the handler is called: `public`, or `user` (with the request's principal; 401 without
//! one, 403 for a key the route refuses or without its scope). Each function binary is
//! `shared::http::run(&shared::handlers::<ENDPOINT>)`; tests run the same endpoints through
//! `http::dispatch`.
//!
//! `keys(...)` says what an `X-API-Key` may do on the route: `ignored` (a public route does not
//! read it), `refused` (admin and account routes: 403), `any` (any valid key), or the scope a key
//! needs (`jobs:read`, ...). `query(...)` names the query parameters the route takes (none
//! without it): `http::dispatch` refuses any other with 422 before the handler runs.

mod admin;
mod api_keys;
mod audit;
mod auth;
mod devices;
mod docs;
mod governance;
mod jobs;
mod ledger;
mod meta;
mod mfa;
mod recovery;
mod sessions;

use lambda_http::Request;

use crate::http::{Endpoint, authenticated, no_first_read};
use crate::routes::{ApiKeys, DEFAULT_ROUTE, RateLimit, Route, Scope, Serves};
use crate::store::FirstRead;

macro_rules! endpoints {
    ($($name:ident: $function:literal, $method:literal $($path:literal)|+, $rate_limit:ident,
        keys($($keys:tt)+), $access:ident $handler:path $(, query($($query:literal),+))?
        $(, first read $first_read:path)? $(, serves $serves:ident)?;)*) => {
        $(pub const $name: Endpoint = Endpoint {
            route: Route {
                function: $function,
                method: $method,
                paths: &[$($path),+],
                rate_limit: RateLimit::$rate_limit,
                api_keys: endpoints!(@keys $($keys)+),
                serves: endpoints!(@serves $($serves)?),
                query: &[$($($query),+)?],
            },
            first_read: endpoints!(@first_read $($first_read)?),
            handler: |req, state| Box::pin(endpoints!(@call $access $handler, req, state,
                endpoints!(@keys $($keys)+))),
        };)*

        /// Every endpoint's route, as `template.yaml` declares them. The routes alone, not the
        /// endpoints: a function that lists them (`GET /`) then links no other handler, nor the
        /// docs page's assets.
        pub const ROUTES: &[Route] = &[$($name.route),*];

        #[cfg(test)]
        const ENDPOINTS: &[&Endpoint] = &[$(&$name),*];
    };
    (@serves) => { Serves::Json };
    (@serves $serves:ident) => { Serves::$serves };
    (@keys ignored) => { ApiKeys::Ignored };
    (@keys refused) => { ApiKeys::Refused };
    (@keys any) => { ApiKeys::AnyScope };
    (@keys jobs:read) => { ApiKeys::Scope(Scope::JobsRead) };
    (@keys jobs:write) => { ApiKeys::Scope(Scope::JobsWrite) };
    (@keys devices:read) => { ApiKeys::Scope(Scope::DevicesRead) };
    (@keys devices:write) => { ApiKeys::Scope(Scope::DevicesWrite) };
    (@keys tokens:read) => { ApiKeys::Scope(Scope::TokensRead) };
    (@keys tokens:write) => { ApiKeys::Scope(Scope::TokensWrite) };
    (@keys governance:write) => { ApiKeys::Scope(Scope::GovernanceWrite) };
    (@first_read) => { no_first_read };
    (@first_read $first_read:path) => {
        |req, user| $first_read(req, user).map(|read| read.keys()).unwrap_or_default()
    };
    (@call public $handler:path, $req:ident, $state:ident, $keys:expr) => { $handler($req, $state) };
    (@call user $handler:path, $req:ident, $state:ident, $keys:expr) => {
        authenticated($req, $state, $keys, $handler)
    };
}

endpoints! {
    ROOT: "root", "GET" "/", Read, keys(ignored), public meta::root;
    HEALTH: "health", "GET" "/health", Exempt, keys(ignored), public meta::health;
    REGISTER: "register", "POST" "/api/auth/register", Auth, keys(ignored), public auth::register;
    LOGIN: "login", "POST" "/api/auth/login", Auth, keys(ignored), public auth::login,
        first read auth::login_first_read;
    ME: "me", "GET" "/api/auth/me", Auth, keys(any), user auth::me;
    LOGOUT: "logout", "POST" "/api/auth/logout", Auth, keys(refused), public auth::logout,
        query("all");
    REFRESH: "refresh", "POST" "/api/auth/refresh", Auth, keys(ignored), public sessions::refresh,
        first read sessions::refresh_first_read;
    REVOKE: "revoke", "POST" "/api/auth/revoke", Auth, keys(ignored), public sessions::revoke,
        first read sessions::refresh_first_read;
    LIST_SESSIONS: "list-sessions", "GET" "/api/auth/sessions", Auth, keys(refused),
        user sessions::list_sessions;
    DELETE_SESSION: "delete-session", "DELETE" "/api/auth/sessions/{id}", Auth, keys(refused),
        user sessions::delete_session;
    CHANGE_PASSWORD: "change-password", "POST" "/api/auth/change-password", Auth, keys(refused),
        user sessions::change_password;
    REAUTHENTICATE: "reauthenticate", "POST" "/api/auth/reauthenticate", Auth, keys(refused),
        user sessions::reauthenticate, first read sessions::reauthenticate_first_read;
    LOGIN_MFA: "login-mfa", "POST" "/api/auth/login/mfa", Auth, keys(ignored), public mfa::login_mfa,
        first read mfa::login_mfa_first_read;
    MFA_STATUS: "mfa-status", "GET" "/api/auth/mfa/status", Auth, keys(refused),
        user mfa::status, first read mfa::second_factor_first_read;
    MFA_SETUP: "mfa-setup", "POST" "/api/auth/mfa/setup", Auth, keys(refused),
        user mfa::setup, first read mfa::second_factor_first_read;
    MFA_VERIFY: "mfa-verify", "POST" "/api/auth/mfa/verify", Auth, keys(refused),
        user mfa::verify, first read mfa::second_factor_first_read;
    MFA_VALIDATE: "mfa-validate", "POST" "/api/auth/mfa/validate", Auth, keys(refused),
        user mfa::validate, first read mfa::second_factor_first_read;
    MFA_DISABLE: "mfa-disable", "POST" "/api/auth/mfa/disable", Auth, keys(refused),
        user mfa::disable, first read mfa::second_factor_first_read;
    MFA_REGENERATE_BACKUP_CODES: "mfa-regenerate-backup-codes", "POST" "/api/auth/mfa/regenerate-backup-codes", Auth, keys(refused),
        user mfa::regenerate_backup_codes, first read mfa::second_factor_first_read;
    PASSWORD_RESET_REQUEST: "password-reset-request", "POST" "/api/auth/password-reset/request", Auth,
        keys(ignored), public recovery::request_password_reset;
    PASSWORD_RESET_CONFIRM: "password-reset-confirm", "POST" "/api/auth/password-reset/confirm", Auth,
        keys(ignored), public recovery::confirm_password_reset;
    VERIFY_EMAIL: "verify-email", "POST" "/api/auth/verify-email", Auth, keys(ignored),
        public recovery::verify_email;
    VERIFY_EMAIL_RESEND: "verify-email-resend", "POST" "/api/auth/verify-email/resend", Auth,
        keys(refused), user recovery::resend_verification;
    SUBMIT_JOB: "submit-job", "POST" "/api/scheduler/jobs", Write, keys(jobs:write),
        user jobs::submit_job;
    LIST_JOBS: "list-jobs", "GET" "/api/scheduler/jobs", Read, keys(jobs:read),
        user jobs::list_jobs, query("status", "limit", "cursor");
    GET_JOB: "get-job", "GET" "/api/scheduler/jobs/{id}", Read, keys(jobs:read),
        user jobs::get_job, first read jobs::get_job_first_read;
    CANCEL_JOB: "cancel-job", "DELETE" "/api/scheduler/jobs/{id}", Write, keys(jobs:write),
        user jobs::cancel_job;
    REGISTER_DEVICE: "register-device", "POST" "/api/idle-compute/devices", Write,
        keys(devices:write), user devices::register_device;
    LIST_DEVICES: "list-devices", "GET" "/api/idle-compute/devices", Read, keys(devices:read),
        user devices::list_devices;
    BALANCE: "balance", "GET" "/api/tokenomics/balance", Read, keys(tokens:read),
        user ledger::balance, query("address");
    TRANSFER: "transfer", "POST" "/api/tokenomics/transfer", Write, keys(tokens:write),
        user ledger::transfer;
    STAKE: "stake", "POST" "/api/tokenomics/stake", Write, keys(tokens:write),
        user ledger::stake;
    UNSTAKE: "unstake", "POST" "/api/tokenomics/unstake", Write, keys(tokens:write),
        user ledger::unstake, first read ledger::unstake_first_read;
    MINT: "mint", "POST" "/api/tokenomics/mint", Write, keys(refused), user ledger::mint;
    CREATE_PROPOSAL: "create-proposal", "POST" "/api/tokenomics/proposals", Write,
        keys(governance:write), user governance::create_proposal;
    LIST_PROPOSALS: "list-proposals", "GET" "/api/tokenomics/proposals", Read, keys(any),
        user governance::list_proposals, query("limit", "cursor");
    VOTE: "vote", "POST" "/api/tokenomics/vote", Write, keys(governance:write),
        user governance::vote, first read governance::vote_first_read;
    CREATE_API_KEY: "create-api-key", "POST" "/api/keys", Write, keys(refused),
        user api_keys::create_api_key;
    LIST_API_KEYS: "list-api-keys", "GET" "/api/keys", Read, keys(refused),
        user api_keys::list_api_keys, query("include_inactive");
    GET_API_KEY: "get-api-key", "GET" "/api/keys/{id}", Read, keys(refused),
        user api_keys::get_api_key, first read api_keys::get_api_key_first_read;
    REVOKE_API_KEY: "revoke-api-key", "DELETE" "/api/keys/{id}", Write, keys(refused),
        user api_keys::revoke_api_key;
    OPENAPI: "openapi", "GET" "/openapi.json", Read, keys(ignored), public meta::openapi;
    ADMIN_LIST_USERS: "admin-list-users", "GET" "/api/admin/users", Read, keys(refused),
        user admin::list_users, query("q", "limit", "cursor");
    ADMIN_USER_ACTION: "admin-user-action", "POST" "/api/admin/users/{id}/{action}", Write,
        keys(refused), user admin::user_action, first read admin::user_action_first_read;
    ADMIN_AUDIT: "admin-audit", "GET" "/api/admin/audit", Read, keys(refused),
        user audit::audit, query("type", "subject", "since", "until", "limit", "cursor");
    DOCS: "docs", "GET" "/docs" | "/docs/{file}", Exempt, keys(ignored), public docs::docs,
        serves DocsPage;
}

/// What answers every request no route matches: API Gateway's `$default` route, and the local
/// stack's router alike. 404, or 405 with `Allow` for a known path. Not one of `ROUTES`, which
/// lists what is served; counted against the source IP (its function reads no token).
pub const UNMATCHED: Endpoint = Endpoint {
    route: Route {
        function: "not-found",
        method: "ANY",
        paths: &[DEFAULT_ROUTE],
        rate_limit: RateLimit::Read,
        api_keys: ApiKeys::Ignored,
        serves: Serves::Json,
        query: &[],
    },
    first_read: no_first_read,
    handler: |req, state| Box::pin(meta::unmatched(req, state)),
};

/// The string `field` of a JSON request body, if the body has one; for first reads, which look
/// ahead of the handler's own validation.
fn body_string(req: &Request, field: &str) -> Option<String> {
    let body = crate::http::json_body(req).ok()?;
    serde_json::from_str(body.get(field)?.get()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy docs/rate-limiting.md states: `/health` and the docs page exempt, every
    /// `/api/auth/` route `auth`, other reads `read` and other writes `write`.
    #[test]
    fn every_route_is_limited_as_documented() {
        for route in ROUTES {
            for path in route.paths {
                let documented =
                    if *path == "/health" || *path == "/docs" || path.starts_with("/docs/") {
                        RateLimit::Exempt
                    } else if path.starts_with("/api/auth/") {
                        RateLimit::Auth
                    } else if route.method == "GET" {
                        RateLimit::Read
                    } else {
                        RateLimit::Write
                    };
                assert_eq!(route.rate_limit, documented, "{route:?}");
            }
        }
    }

    /// Only the docs function answers anything but JSON, and so gets the docs page's
    /// Content-Security-Policy and caching; it serves the page and its assets, nothing else.
    #[test]
    fn only_the_docs_page_serves_other_than_json() {
        for route in ROUTES {
            let expected = if route.function == "docs" {
                Serves::DocsPage
            } else {
                Serves::Json
            };
            assert_eq!(route.serves, expected, "{route:?}");
        }
        assert_eq!(DOCS.route.paths, ["/docs", "/docs/{file}"]);
        assert!(
            ROUTES
                .iter()
                .all(|route| route.paths.len() == 1 || route.function == "docs")
        );
    }

    /// The issue's scope families: which key may do what. A route not named here reads no key
    /// (a public route) or refuses keys; `list-proposals` takes any valid key (proposals are
    /// every user's to read, and no scope of the issue's list reads governance).
    #[test]
    fn every_route_takes_the_keys_its_family_allows() {
        use Scope::*;
        let expected = |route: &Route, path: &str| match (route.method, path) {
            ("GET", "/api/scheduler/jobs" | "/api/scheduler/jobs/{id}") => ApiKeys::Scope(JobsRead),
            ("POST", "/api/scheduler/jobs") | ("DELETE", "/api/scheduler/jobs/{id}") => {
                ApiKeys::Scope(JobsWrite)
            }
            ("GET", "/api/idle-compute/devices") => ApiKeys::Scope(DevicesRead),
            ("POST", "/api/idle-compute/devices") => ApiKeys::Scope(DevicesWrite),
            ("GET", "/api/tokenomics/balance") => ApiKeys::Scope(TokensRead),
            (
                "POST",
                "/api/tokenomics/transfer" | "/api/tokenomics/stake" | "/api/tokenomics/unstake",
            ) => ApiKeys::Scope(TokensWrite),
            ("POST", "/api/tokenomics/proposals" | "/api/tokenomics/vote") => {
                ApiKeys::Scope(GovernanceWrite)
            }
            ("GET", "/api/tokenomics/proposals") | ("GET", "/api/auth/me") => ApiKeys::AnyScope,
            // Admin routes (mint, the admin API) and account routes (logout, sessions, the
            // password, the keys themselves).
            (
                "POST",
                "/api/tokenomics/mint"
                | "/api/auth/logout"
                | "/api/auth/change-password"
                | "/api/auth/reauthenticate"
                | "/api/auth/verify-email/resend",
            ) => ApiKeys::Refused,
            (_, path) if path.starts_with("/api/auth/mfa/") => ApiKeys::Refused,
            (_, path) if path.starts_with("/api/admin/") => ApiKeys::Refused,
            (_, path) if path.starts_with("/api/auth/sessions") => ApiKeys::Refused,
            (_, path) if path.starts_with("/api/keys") => ApiKeys::Refused,
            _ => ApiKeys::Ignored,
        };
        for route in ROUTES {
            for path in route.paths {
                assert_eq!(route.api_keys, expected(route, path), "{route:?}");
            }
        }
        // Every scope opens at least one route, and every route that reads credentials for a
        // user (`user`, or logout) says what a key may do there.
        for scope in Scope::ALL {
            assert!(
                ROUTES
                    .iter()
                    .any(|route| route.api_keys == ApiKeys::Scope(scope)),
                "{scope} opens nothing"
            );
        }
        let public = [
            "root",
            "health",
            "register",
            "login",
            "login-mfa",
            "refresh",
            "revoke",
            "openapi",
            "docs",
            "password-reset-request",
            "password-reset-confirm",
            "verify-email",
        ];
        for route in ROUTES {
            assert_eq!(
                route.api_keys == ApiKeys::Ignored,
                public.contains(&route.function),
                "{route:?}"
            );
        }
    }

    /// The OpenAPI document says the same as the table: an operation lists the `ApiKey` scheme
    /// with the route's scope (none for any key) exactly when the route takes keys.
    #[test]
    fn the_openapi_document_states_each_routes_keys() {
        let document: serde_json::Value = serde_json::from_str(meta::OPENAPI_JSON).unwrap();
        for (route, path) in ROUTES
            .iter()
            .flat_map(|route| route.paths.iter().map(move |path| (route, *path)))
        {
            let operation = &document["paths"][path][route.method.to_lowercase()];
            assert!(operation.is_object(), "{route:?} is not documented");
            let key_scopes: Vec<&serde_json::Value> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|requirement| requirement.get("ApiKey"))
                .collect();
            let documented = match key_scopes.as_slice() {
                [] => None,
                [scopes] => Some(scopes.as_array().unwrap().clone()),
                _ => panic!("{route:?}: ApiKey listed twice"),
            };
            let expected = match route.api_keys {
                ApiKeys::Ignored | ApiKeys::Refused => None,
                ApiKeys::AnyScope => Some(vec![]),
                ApiKeys::Scope(scope) => Some(vec![serde_json::json!(scope.as_str())]),
            };
            assert_eq!(documented, expected, "{route:?}");
            let security = operation["security"].as_array();
            assert_eq!(
                security.is_some(),
                route.api_keys != ApiKeys::Ignored,
                "{route:?}: documented credentials"
            );
        }
    }

    /// DynamoDB refuses a batch that names a key twice, and refresh and revoke answered 500 beside
    /// the caller's own bearer token (second security review, item 2): whatever a request to any
    /// route carries, the limiter's batch names each key once. The requests name the very user,
    /// session and key their credentials do.
    #[test]
    fn no_batch_of_the_limiter_names_a_key_twice() {
        use crate::auth::{Claims, PresentedKey, issue_key};
        use crate::domain::RefreshToken;
        use crate::ratelimit::{Shown, batch_reads};
        use uuid::Uuid;

        let (user, session, key_id) = (Uuid::new_v4(), Uuid::now_v7(), Uuid::now_v7());
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "sub": user, "username": "alice", "iat": 0, "exp": 0, "jti": Uuid::new_v4(),
            "sid": session, "iss": "", "aud": "", "adm": true,
        }))
        .unwrap();
        let key = PresentedKey::parse(issue_key(user, key_id, 100).secret.expose()).unwrap();
        let refresh = RefreshToken::generate(user, session);
        let body = serde_json::json!({
            "username": "alice", "refresh_token": refresh.expose(), "address": "0xabc",
            "voter": "0xabc", "proposal_id": Uuid::new_v4(),
        });
        for endpoint in ENDPOINTS {
            for path_id in [user, session, key_id] {
                let event = serde_json::json!({
                    "version": "2.0",
                    "routeKey": format!("{} {}", endpoint.route.method, endpoint.route.paths[0]),
                    "rawPath": endpoint.route.paths[0],
                    "rawQueryString": "",
                    "headers": {"content-type": "application/json"},
                    "pathParameters": {"id": path_id, "action": "promote", "file": "x"},
                    "requestContext": {"http": {"method": endpoint.route.method,
                        "path": endpoint.route.paths[0], "sourceIp": "203.0.113.1"}},
                    "body": body.to_string(),
                    "isBase64Encoded": false,
                });
                let request = lambda_http::request::from_str(&event.to_string()).unwrap();
                for shown in [
                    Shown::Nothing,
                    Shown::Token(claims.clone()),
                    Shown::Key(key.clone()),
                ] {
                    let claimed_user = (!matches!(shown, Shown::Nothing)).then_some(user);
                    let first_read = (endpoint.first_read)(&request, claimed_user);
                    let batch = batch_reads(&first_read, &shown);
                    for (index, key) in batch.iter().enumerate() {
                        assert!(
                            !batch[index + 1..].contains(key),
                            "{}: {key:?} twice with {shown:?}",
                            endpoint.route
                        );
                    }
                    assert!(first_read.iter().all(|key| batch.contains(key)));
                }
            }
        }
    }

    /// The one list of query parameters: each route's are exactly its OpenAPI operation's.
    #[test]
    fn each_route_takes_the_query_parameters_its_openapi_operation_lists() {
        let document: serde_json::Value = serde_json::from_str(meta::OPENAPI_JSON).unwrap();
        let resolve = |parameter: &serde_json::Value| match parameter["$ref"].as_str() {
            Some(reference) => document
                .pointer(reference.trim_start_matches('#'))
                .unwrap()
                .clone(),
            None => parameter.clone(),
        };
        for (route, path) in ROUTES
            .iter()
            .flat_map(|route| route.paths.iter().map(move |path| (route, *path)))
        {
            let item = &document["paths"][path];
            let operation = &item[route.method.to_lowercase()];
            let mut documented: Vec<String> = [&item["parameters"], &operation["parameters"]]
                .into_iter()
                .filter_map(serde_json::Value::as_array)
                .flatten()
                .map(resolve)
                .filter(|parameter| parameter["in"] == "query")
                .map(|parameter| parameter["name"].as_str().unwrap().to_owned())
                .collect();
            documented.sort_unstable();
            let mut taken: Vec<&str> = route.query.to_vec();
            taken.sort_unstable();
            assert_eq!(documented, taken, "{route}");
        }
    }

    /// The default route serves no path of its own, reads no token (every request counts
    /// against its IP) and takes no key; its function is none of the table's.
    #[test]
    fn the_default_route_is_apart_from_the_table() {
        let route = &UNMATCHED.route;
        assert!(route.is_default() && !route.reads_tokens());
        assert_eq!(route.to_string(), "ANY $default");
        assert_eq!(route.api_keys, ApiKeys::Ignored);
        assert!(ROUTES.iter().all(|listed| !listed.is_default()));
        assert!(
            ROUTES
                .iter()
                .all(|listed| listed.function != route.function)
        );
        let reads_no_token = ["health", "docs"];
        for listed in ROUTES {
            assert_eq!(
                listed.reads_tokens(),
                !reads_no_token.contains(&listed.function),
                "{listed}"
            );
        }
    }

    /// The functions that start with the MFA key are routes of the table: each MFA route that
    /// takes a code, login's second step and reauthentication; not the status, which reads no
    /// secret.
    #[test]
    fn the_second_factor_functions_are_routes() {
        for function in crate::routes::SECOND_FACTOR_FUNCTIONS {
            assert!(
                ROUTES.iter().any(|route| route.function == *function),
                "{function}"
            );
        }
        assert!(!MFA_STATUS.route.checks_second_factor());
        assert!(LOGIN_MFA.route.checks_second_factor() && !LOGIN.route.checks_second_factor());
    }

    #[test]
    fn functions_are_unique() {
        let mut functions: Vec<_> = ROUTES.iter().map(|route| route.function).collect();
        functions.sort_unstable();
        functions.dedup();
        assert_eq!(functions.len(), ROUTES.len());
    }
}
