//! What a route is: the function that serves it, how it is rate limited, which API keys it
//! accepts, and what it serves. The route table itself is in `handlers` (an `Endpoint` per
//! function, and `handlers::ROUTES`, their routes); each function binary runs one endpoint, so a
//! request's category and bucket follow the function it reached, never the path it came by (a
//! custom domain's base path, say).

use std::fmt;

/// How a route is rate limited (see docs/rate-limiting.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// Never counted, and reads no token: the health check.
    Exempt,
    /// Credentials and sessions: always counted against the source IP, failing closed.
    Auth,
    Read,
    Write,
}

/// What an API key may do: each route that accepts keys names the one it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    JobsRead,
    JobsWrite,
    DevicesRead,
    DevicesWrite,
    TokensRead,
    TokensWrite,
    GovernanceWrite,
}

impl Scope {
    /// Every scope, in the order the API lists them; a key gets all of them unless it names some.
    pub const ALL: [Self; 7] = [
        Self::JobsRead,
        Self::JobsWrite,
        Self::DevicesRead,
        Self::DevicesWrite,
        Self::TokensRead,
        Self::TokensWrite,
        Self::GovernanceWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobsRead => "jobs:read",
            Self::JobsWrite => "jobs:write",
            Self::DevicesRead => "devices:read",
            Self::DevicesWrite => "devices:write",
            Self::TokensRead => "tokens:read",
            Self::TokensWrite => "tokens:write",
            Self::GovernanceWrite => "governance:write",
        }
    }

    /// Exactly as `as_str` writes it.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == raw)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("unknown scope {raw:?}")))
    }
}

/// Whether a route accepts an `X-API-Key` instead of a bearer token, and with which scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeys {
    /// A public route: the header is not read (the request counts as any anonymous one).
    Ignored,
    /// Admin and account routes (mint, logout, the key routes themselves): a request carrying
    /// a key is refused with 403, whatever the key and its owner.
    Refused,
    /// Any valid key, whatever its scopes (`/api/auth/me`, reading proposals).
    AnyScope,
    /// A valid key with this scope; without it, 403 naming the scope.
    Scope(Scope),
}

impl ApiKeys {
    pub fn accepted(self) -> bool {
        matches!(self, Self::AnyScope | Self::Scope(_))
    }

    /// Whether the route writes to the fog platform (jobs, devices, tokens, governance): those
    /// that `REQUIRE_VERIFIED_EMAIL` closes to unverified users.
    pub fn writes_platform(self) -> bool {
        use Scope::*;
        matches!(
            self,
            Self::Scope(JobsWrite | DevicesWrite | TokensWrite | GovernanceWrite)
        )
    }
}

/// What a route answers, which decides the security headers `http::dispatch` gives its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serves {
    /// JSON (problem+json for errors): a Content-Security-Policy that loads nothing, and never
    /// cached, whatever the handler says.
    Json,
    /// The interactive docs page and its assets (`/docs`): a policy that lets the page load its
    /// own scripts, styles and images and call this API, and the caching its handler sets.
    DocsPage,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// The function binary (template.yaml's `BuildProperties.Binary`); also names the route's
    /// rate-limit bucket.
    pub function: &'static str,
    pub method: &'static str,
    /// The paths the function serves (each an `HttpApi` event of the template): one, but for the
    /// docs page, which also serves its assets.
    pub paths: &'static [&'static str],
    pub rate_limit: RateLimit,
    pub api_keys: ApiKeys,
    pub serves: Serves,
    /// The query parameters the route takes (openapi.yaml's, which a test keeps equal); a request
    /// naming any other is refused with 422 before its handler runs.
    pub query: &'static [&'static str],
}

/// The functions that check second factors (`Route::checks_second_factor`); template.yaml gives
/// exactly these the MFA key.
pub const SECOND_FACTOR_FUNCTIONS: &[&str] = &[
    "mfa-setup",
    "mfa-verify",
    "mfa-validate",
    "mfa-disable",
    "mfa-regenerate-backup-codes",
    "login-mfa",
    "reauthenticate",
];

/// API Gateway's route key for requests no other route matches: the path of the route that
/// answers them (`handlers::UNMATCHED`).
pub const DEFAULT_ROUTE: &str = "$default";

impl Route {
    /// Whether this is the route of requests no other route matches.
    pub fn is_default(&self) -> bool {
        self.paths == [DEFAULT_ROUTE]
    }

    /// Whether the route's function reads bearer tokens, and so starts with the JWT secret: all
    /// but the exempt routes and the default route (which counts every request against its
    /// source IP).
    pub fn reads_tokens(&self) -> bool {
        self.rate_limit != RateLimit::Exempt && !self.is_default()
    }

    /// Whether the route's function checks second factors, and so starts with the MFA key (and
    /// no other function does): the MFA routes that take a code, the login's second step, and
    /// reauthentication (a user with a second factor confirms with a code too).
    pub fn checks_second_factor(&self) -> bool {
        SECOND_FACTOR_FUNCTIONS.contains(&self.function)
    }

    /// The route's path that `path` (a request's, as sent) is, as API Gateway matches them: each
    /// segment equal, or any non-empty one for a `{parameter}`.
    pub fn path_matching(&self, path: &str) -> Option<&'static str> {
        self.paths.iter().copied().find(|template| {
            let (mut template, mut path) = (template.split('/'), path.split('/'));
            loop {
                match (template.next(), path.next()) {
                    (None, None) => return true,
                    (Some(expected), Some(segment)) => {
                        let parameter = expected.starts_with('{') && expected.ends_with('}');
                        if !(segment == expected || (parameter && !segment.is_empty())) {
                            return false;
                        }
                    }
                    _ => return false,
                }
            }
        })
    }
}

impl fmt::Display for Route {
    /// `GET /api/auth/me`; `GET /docs | /docs/{file}` for a route of two paths.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.paths.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_served_segment_by_segment() {
        let route = Route {
            function: "f",
            method: "GET",
            paths: &["/api/keys/{id}", "/docs"],
            rate_limit: RateLimit::Read,
            api_keys: ApiKeys::Ignored,
            serves: Serves::Json,
            query: &[],
        };
        for (served, template) in [
            ("/api/keys/1", "/api/keys/{id}"),
            ("/api/keys/a%2Fb", "/api/keys/{id}"),
            ("/docs", "/docs"),
        ] {
            assert_eq!(route.path_matching(served), Some(template), "{served}");
        }
        for other in [
            "/api/keys",
            "/api/keys/",
            "/api/keys/1/",
            "/api/keys/1/x",
            "/docs/",
            "/Docs",
            "/api/key/1",
            "",
            "/",
        ] {
            assert_eq!(route.path_matching(other), None, "{other}");
        }
    }

    #[test]
    fn scopes_round_trip_and_nothing_else_parses() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(scope.to_string(), scope.as_str());
        }
        for bad in [
            "",
            "jobs",
            "JOBS:READ",
            "jobs:read ",
            "admin",
            "governance:read",
        ] {
            assert_eq!(Scope::parse(bad), None, "{bad:?}");
        }
    }
}
