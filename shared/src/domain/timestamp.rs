use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `at` as RFC 3339 text, the form every stored and answered time takes.
pub fn rfc3339(at: OffsetDateTime) -> Result<String, time::error::Format> {
    at.format(&Rfc3339)
}
