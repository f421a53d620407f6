//! What a route is: the function that serves it and how it is rate limited. The route table
//! itself is `handlers::ENDPOINTS`; each function binary runs one of them, so a request's
//! category and bucket follow the function it reached, never the path it came by (a custom
//! domain's base path, say).

/// How a route is rate limited (see the README's Rate limiting section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// Never counted, and reads no token: the health check.
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
    /// Whether the handler acts for the caller (a `user` route): only then must the session of
    /// the caller's token be read when the rate limiter cannot read it in its own round trip.
    pub needs_principal: bool,
}
