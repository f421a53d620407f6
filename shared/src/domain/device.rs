use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::text::is_hidden;

pub const DEVICE_ID_CHARS: RangeInclusive<usize> = 1..=255;
pub const CPU_CORES: RangeInclusive<i64> = 1..=128;
pub const MEMORY_MB: RangeInclusive<i64> = 512..=524_288;
pub const BATTERY_PERCENT: RangeInclusive<f64> = 0.0..=100.0;
pub const DEFAULT_BATTERY_PERCENT: f64 = 100.0;

/// A device's own identifier, chosen by its owner: 1-255 characters, none of them control
/// characters (it is part of the item's key and shown back as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !DEVICE_ID_CHARS.contains(&raw.chars().count()) {
            return Err(format!(
                "must be {} to {} characters long",
                DEVICE_ID_CHARS.start(),
                DEVICE_ID_CHARS.end()
            ));
        }
        if raw.chars().any(|c| c.is_control() || is_hidden(c)) {
            return Err(
                "must not contain control, direction-override or zero-width characters".into(),
            );
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    Android,
    Ios,
    Desktop,
    Laptop,
    Edge,
}

impl DeviceType {
    /// Case-insensitive.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "android" => Ok(Self::Android),
            "ios" => Ok(Self::Ios),
            "desktop" => Ok(Self::Desktop),
            "laptop" => Ok(Self::Laptop),
            "edge" => Ok(Self::Edge),
            _ => Err("must be one of android, ios, desktop, laptop, edge".into()),
        }
    }
}

/// A device as stored. Its id belongs to the user who registered it first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: String,
    pub user_id: Uuid,
    pub device_type: DeviceType,
    pub cpu_cores: i64,
    pub memory_mb: i64,
    pub battery_percent: f64,
    pub is_charging: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_bounds() {
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse("a").is_ok());
        assert!(DeviceId::parse(&"é".repeat(255)).is_ok());
        assert!(DeviceId::parse(&"a".repeat(256)).is_err());
        assert!(DeviceId::parse("phone\n1").is_err());
    }

    #[test]
    fn device_types_are_case_insensitive() {
        assert_eq!(DeviceType::parse("iOS"), Ok(DeviceType::Ios));
        assert_eq!(DeviceType::parse("EDGE"), Ok(DeviceType::Edge));
        assert!(DeviceType::parse("toaster").is_err());
    }
}
