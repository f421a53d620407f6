use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::MAX_STORED_NUMBER;

pub const JOB_NAME_CHARS: RangeInclusive<usize> = 1..=200;
pub const CPU_REQUIRED: RangeInclusive<f64> = 0.0..=64.0;
/// Gigabytes.
pub const MEMORY_REQUIRED: RangeInclusive<f64> = 0.0..=512.0;
pub const GPU_REQUIRED: RangeInclusive<f64> = 0.0..=8.0;
/// Minutes (`duration_estimate`) and megabytes (`data_size_mb`): from zero to the most DynamoDB
/// stores.
pub const NON_NEGATIVE: RangeInclusive<f64> = 0.0..=MAX_STORED_NUMBER;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlaTier {
    Bronze,
    Silver,
    Gold,
    Platinum,
}

impl SlaTier {
    /// Case-insensitive.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "bronze" => Ok(Self::Bronze),
            "silver" => Ok(Self::Silver),
            "gold" => Ok(Self::Gold),
            "platinum" => Ok(Self::Platinum),
            _ => Err("must be one of bronze, silver, gold, platinum".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const CANCELLABLE: [Self; 2] = [Self::Pending, Self::Running];

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "pending" => Ok(Self::Pending),
            "running" => Ok(Self::Running),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err("must be one of pending, running, completed, failed, cancelled".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A compute job as stored. `name` is already trimmed and HTML-escaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub sla_tier: SlaTier,
    pub cpu_required: f64,
    pub memory_required: f64,
    pub gpu_required: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_estimate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_size_mb: Option<f64>,
    pub status: JobStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sla_tiers_are_case_insensitive() {
        assert_eq!(SlaTier::parse("GoLd"), Ok(SlaTier::Gold));
        assert_eq!(SlaTier::parse("platinum"), Ok(SlaTier::Platinum));
        assert!(SlaTier::parse("diamond").is_err());
        assert!(SlaTier::parse(" gold").is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for status in [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ] {
            assert_eq!(JobStatus::parse(status.as_str()), Ok(status));
        }
        assert!(JobStatus::parse("done").is_err());
    }
}
