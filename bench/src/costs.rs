//! The cost lines a function logs with `FOG_LOG_COSTS=1` (one per DynamoDB round trip and per
//! argon2id run, with wall-clock start and end), and what they add up to.

use serde::{Deserialize, Serialize};

pub const DYNAMODB: &str = "dynamodb";
pub const ARGON2ID: &str = "argon2id";

/// DynamoDB operations that write.
const WRITES: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cost {
    pub kind: String,
    pub operation: String,
    pub started_us: u64,
    pub finished_us: u64,
}

#[derive(Deserialize)]
struct LogLine {
    fields: Fields,
}

#[derive(Deserialize)]
struct Fields {
    message: String,
    cost: Option<String>,
    operation: Option<String>,
    started_us: Option<u64>,
    finished_us: Option<u64>,
}

impl Cost {
    /// The cost a log line records, if it is a cost line.
    pub fn parse(line: &str) -> Option<Self> {
        let fields = serde_json::from_str::<LogLine>(line).ok()?.fields;
        if fields.message != "cost" {
            return None;
        }
        Some(Self {
            kind: fields.cost?,
            operation: fields.operation?,
            started_us: fields.started_us?,
            finished_us: fields.finished_us?,
        })
    }

    pub fn is_dynamodb(&self) -> bool {
        self.kind == DYNAMODB
    }

    pub fn is_write(&self) -> bool {
        WRITES.contains(&self.operation.as_str())
    }
}

/// The costs that started within `[from_us, to_us]`.
pub fn started_within(costs: &[Cost], from_us: u64, to_us: u64) -> Vec<Cost> {
    costs
        .iter()
        .filter(|cost| (from_us..=to_us).contains(&cost.started_us))
        .cloned()
        .collect()
}

/// The costs of one piece of work (an init, a request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Costs(pub Vec<Cost>);

impl Costs {
    pub fn dynamodb_calls(&self) -> usize {
        self.0.iter().filter(|cost| cost.is_dynamodb()).count()
    }

    /// DynamoDB calls grouped into rounds: a call joins the round in flight when it starts
    /// before that round's last call finished, i.e. the calls of a round overlap.
    pub fn rounds(&self) -> Vec<Vec<&Cost>> {
        let mut calls: Vec<&Cost> = self.0.iter().filter(|cost| cost.is_dynamodb()).collect();
        calls.sort_by_key(|cost| (cost.started_us, cost.finished_us));
        let mut rounds: Vec<Vec<&Cost>> = Vec::new();
        let mut round_end = 0;
        for call in calls {
            match rounds.last_mut() {
                Some(round) if call.started_us < round_end => {
                    round.push(call);
                    round_end = round_end.max(call.finished_us);
                }
                _ => {
                    rounds.push(vec![call]);
                    round_end = call.finished_us;
                }
            }
        }
        rounds
    }

    /// e.g. `UpdateItem ‖ BatchGetItem → PutItem`: `‖` joins overlapping calls, `→` rounds.
    pub fn pattern(&self) -> String {
        self.rounds()
            .iter()
            .map(|round| {
                round
                    .iter()
                    .map(|call| call.operation.as_str())
                    .collect::<Vec<_>>()
                    .join(" ‖ ")
            })
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// Whether any two DynamoDB calls were in flight at once.
    pub fn overlap(&self) -> bool {
        self.rounds().iter().any(|round| round.len() > 1)
    }

    /// Wall-clock time during which at least one DynamoDB call was in flight.
    pub fn dynamodb_us(&self) -> u64 {
        self.rounds()
            .iter()
            .map(|round| {
                let start = round.iter().map(|call| call.started_us).min().unwrap_or(0);
                let end = round.iter().map(|call| call.finished_us).max().unwrap_or(0);
                end.saturating_sub(start)
            })
            .sum()
    }

    /// Time spent in argon2id.
    pub fn argon2id_us(&self) -> u64 {
        self.0
            .iter()
            .filter(|cost| cost.kind == ARGON2ID)
            .map(|cost| cost.finished_us.saturating_sub(cost.started_us))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(operation: &str, started_us: u64, finished_us: u64) -> Cost {
        Cost {
            kind: DYNAMODB.into(),
            operation: operation.into(),
            started_us,
            finished_us,
        }
    }

    #[test]
    fn parses_cost_lines_and_ignores_others() {
        let line = r#"{"timestamp":"2026-11-30T07:35:02.249385Z","level":"INFO","fields":{"message":"cost","cost":"dynamodb","operation":"UpdateItem","started_us":1796024102222245,"finished_us":1796024102249376},"span":{"request_id":"923e9888-d65f-47ed-9e7d-768d012abffb","route":"GET /","name":"request"}}"#;
        assert_eq!(
            Cost::parse(line),
            Some(call("UpdateItem", 1796024102222245, 1796024102249376))
        );
        let request = r#"{"timestamp":"2026-11-30T07:35:02.257580Z","level":"INFO","fields":{"message":"request","status":200,"latency_ms":36.672673,"source_ip":"127.0.0.1","rate_limit":"admitted"},"span":{"request_id":"923e9888-d65f-47ed-9e7d-768d012abffb","route":"GET /","name":"request"}}"#;
        assert_eq!(Cost::parse(request), None);
        assert_eq!(Cost::parse("not json"), None);
    }

    #[test]
    fn overlapping_calls_share_a_round_and_sequential_ones_do_not() {
        let costs = Costs(vec![
            call("PutItem", 50, 60),
            call("UpdateItem", 0, 20),
            call("BatchGetItem", 5, 30),
        ]);
        assert_eq!(costs.dynamodb_calls(), 3);
        assert_eq!(costs.rounds().len(), 2);
        assert_eq!(costs.pattern(), "UpdateItem ‖ BatchGetItem → PutItem");
        assert!(costs.overlap());
        assert_eq!(costs.dynamodb_us(), 30 + 10);
    }

    #[test]
    fn a_call_starting_as_another_ends_is_sequential() {
        let costs = Costs(vec![call("GetItem", 0, 10), call("GetItem", 10, 20)]);
        assert!(!costs.overlap());
        assert_eq!(costs.pattern(), "GetItem → GetItem");
    }

    #[test]
    fn argon2id_time_is_apart_from_dynamodb_time() {
        let costs = Costs(vec![
            Cost {
                kind: ARGON2ID.into(),
                operation: "verify".into(),
                started_us: 100,
                finished_us: 400,
            },
            call("BatchGetItem", 0, 50),
        ]);
        assert_eq!(costs.argon2id_us(), 300);
        assert_eq!(costs.dynamodb_us(), 50);
        assert_eq!(costs.dynamodb_calls(), 1);
    }

    #[test]
    fn selects_costs_by_start() {
        let costs = vec![call("A", 5, 9), call("B", 10, 30), call("C", 31, 40)];
        let selected = started_within(&costs, 10, 30);
        assert_eq!(selected, vec![call("B", 10, 30)]);
    }
}
