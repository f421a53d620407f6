use std::ops::RangeInclusive;

pub const IDEMPOTENCY_KEY_CHARS: RangeInclusive<usize> = 1..=255;

/// A client's `Idempotency-Key`: 1-255 visible ASCII characters. Keys are per user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = IDEMPOTENCY_KEY_CHARS.contains(&raw.len())
            && raw.bytes().all(|byte| byte.is_ascii_graphic());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "must be {} to {} visible ASCII characters",
                IDEMPOTENCY_KEY_CHARS.start(),
                IDEMPOTENCY_KEY_CHARS.end()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("k").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("clé").is_err());
        assert!(IdempotencyKey::parse("0f9c-4b#1").is_ok());
    }
}
