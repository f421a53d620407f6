//! Every route of the API: the function that serves it and how it is rate limited. Each function
//! binary names its route (`http::run(&routes::LOGIN, handlers::login)`), so a request's category
//! and bucket follow the function it reached, never the path it came by (a custom domain's base
//! path, say).

/// How a route is rate limited (see the README's Rate limiting section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// Never counted: the health check.
    Exempt,
    /// Credentials and sessions: always counted against the source IP, failing closed.
    Auth,
    Read,
    Write,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// The function binary (template.yaml's `BuildProperties.Binary`); also names the route's
    /// rate-limit bucket.
    pub function: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub rate_limit: RateLimit,
}

macro_rules! routes {
    ($($name:ident: $function:literal, $method:literal $path:literal, $rate_limit:ident;)*) => {
        $(pub const $name: Route = Route {
            function: $function,
            method: $method,
            path: $path,
            rate_limit: RateLimit::$rate_limit,
        };)*
        /// Every route, as `template.yaml` declares them.
        pub const ROUTES: &[Route] = &[$($name),*];
    };
}

routes! {
    ROOT: "root", "GET" "/", Read;
    HEALTH: "health", "GET" "/health", Exempt;
    REGISTER: "register", "POST" "/api/auth/register", Auth;
    LOGIN: "login", "POST" "/api/auth/login", Auth;
    ME: "me", "GET" "/api/auth/me", Auth;
    LOGOUT: "logout", "POST" "/api/auth/logout", Auth;
    SUBMIT_JOB: "submit-job", "POST" "/api/scheduler/jobs", Write;
    LIST_JOBS: "list-jobs", "GET" "/api/scheduler/jobs", Read;
    GET_JOB: "get-job", "GET" "/api/scheduler/jobs/{id}", Read;
    CANCEL_JOB: "cancel-job", "DELETE" "/api/scheduler/jobs/{id}", Write;
    REGISTER_DEVICE: "register-device", "POST" "/api/idle-compute/devices", Write;
    LIST_DEVICES: "list-devices", "GET" "/api/idle-compute/devices", Read;
    BALANCE: "balance", "GET" "/api/tokenomics/balance", Read;
    TRANSFER: "transfer", "POST" "/api/tokenomics/transfer", Write;
    STAKE: "stake", "POST" "/api/tokenomics/stake", Write;
    UNSTAKE: "unstake", "POST" "/api/tokenomics/unstake", Write;
    MINT: "mint", "POST" "/api/tokenomics/mint", Write;
    CREATE_PROPOSAL: "create-proposal", "POST" "/api/tokenomics/proposals", Write;
    LIST_PROPOSALS: "list-proposals", "GET" "/api/tokenomics/proposals", Read;
    VOTE: "vote", "POST" "/api/tokenomics/vote", Write;
    OPENAPI: "openapi", "GET" "/openapi.json", Read;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy the README states: `/health` exempt, every `/api/auth/` route `auth`, other
    /// reads `read` and other writes `write`.
    #[test]
    fn every_route_is_limited_as_the_readme_says() {
        for route in ROUTES {
            let documented = if route.path == "/health" {
                RateLimit::Exempt
            } else if route.path.starts_with("/api/auth/") {
                RateLimit::Auth
            } else if route.method == "GET" {
                RateLimit::Read
            } else {
                RateLimit::Write
            };
            assert_eq!(route.rate_limit, documented, "{route:?}");
        }
    }

    #[test]
    fn functions_are_unique() {
        let mut functions: Vec<_> = ROUTES.iter().map(|route| route.function).collect();
        functions.sort_unstable();
        functions.dedup();
        assert_eq!(functions.len(), ROUTES.len());
    }
}
