use time::{Duration, OffsetDateTime};

/// What time it is for the handlers: the system's clock, moved by a fixed offset that is zero in
/// production, so that tests can see how the API behaves later without waiting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    offset: Duration,
}

impl Clock {
    /// A clock `offset` ahead of the system's (behind when negative).
    pub fn offset(offset: Duration) -> Self {
        Self { offset }
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset
    }
}
