//! What a run found, per function; the budgets of issue 7; the markdown table and JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::costs::Costs;
use crate::measure::{ColdRun, WarmRun};
use crate::stats::{median, percentile};

pub const MIB: f64 = 1024.0 * 1024.0;

/// Cold start (less argon2id's own time) within this many times the floor's.
pub const COLD_FLOOR_RATIO: f64 = 3.0;
/// Warm p50 at most this far above the function's DynamoDB (and argon2id) time.
pub const WARM_OWN_MS: f64 = 1.0;
/// Warm p99 at most this many times its p50.
pub const WARM_TAIL_RATIO: f64 = 3.0;
pub const RSS_MIB: f64 = 30.0;
/// What argon2id's 19 MiB working memory adds to the RSS budget of functions that run it.
pub const ARGON2ID_MIB: f64 = 19.0;
pub const ZIP_MIB: f64 = 5.0;
/// A connection warm-up is the only DynamoDB call allowed at init.
pub const INIT_CALLS: usize = 1;
/// The rate limiter's write and the read of the session (or previous counter) go together.
pub const FIRST_ROUND_CALLS: usize = 2;

#[derive(Clone, Debug, Serialize)]
pub struct Sizes {
    pub bootstrap_bytes: u64,
    pub zip_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FunctionResult {
    pub function: String,
    pub route: String,
    /// Where the event came from: a fixture file or the OpenAPI document.
    pub event: String,
    pub token: bool,
    pub init_ms: f64,
    pub init_runs_ms: Vec<f64>,
    pub cold_ms: f64,
    pub cold_runs_ms: Vec<f64>,
    pub cold_argon2id_ms: f64,
    /// Of the cold start, the time waiting on DynamoDB during the first request.
    pub cold_dynamodb_ms: f64,
    /// Ratios to the floor's cold start of the same round (the floor started just before), median
    /// over rounds: whole, less argon2id (what the budget limits), less argon2id and DynamoDB.
    pub cold_ratio_to_floor: f64,
    pub cold_budget_ratio_to_floor: f64,
    pub cold_own_ratio_to_floor: f64,
    pub warm_invocations: usize,
    pub warm_p50_ms: f64,
    pub warm_p99_ms: f64,
    pub warm_dynamodb_p50_ms: f64,
    pub warm_argon2id_p50_ms: f64,
    /// Per invocation, latency less DynamoDB and argon2id time: the function's own work.
    pub warm_own_p50_ms: f64,
    pub peak_rss_bytes: u64,
    pub x86_64: Sizes,
    pub arm64: Option<Sizes>,
    pub dynamodb_calls_at_init: usize,
    pub init_pattern: String,
    /// The most common request's calls, and its pattern (`‖` overlapping, `→` in sequence).
    pub dynamodb_calls_per_request: usize,
    pub request_pattern: String,
    pub calls_overlap: bool,
    /// How many requests had each other pattern.
    pub other_patterns: BTreeMap<String, usize>,
    pub cold_answers: BTreeMap<String, usize>,
    pub warm_answers: BTreeMap<String, usize>,
    pub budget_misses: Vec<String>,
}

pub struct Measured<'a> {
    pub function: &'a str,
    pub route: String,
    pub event: String,
    pub token: bool,
    pub cold: &'a [ColdRun],
    pub warm: &'a WarmRun,
    pub x86_64: Sizes,
    pub arm64: Option<Sizes>,
}

impl FunctionResult {
    /// `floor_cold_runs`: the floor's cold starts, round by round as `measured.cold`; `None` for
    /// the floor itself.
    pub fn new(measured: Measured<'_>, floor_cold_runs: Option<&[f64]>) -> Self {
        let Measured { cold, warm, .. } = measured;
        let of_cold = |value: fn(&ColdRun) -> f64| {
            median(&cold.iter().map(value).collect::<Vec<_>>()).unwrap_or(0.0)
        };
        let cold_ms = of_cold(|run| run.cold_ms);
        let dynamodb_ms: Vec<f64> = warm
            .requests
            .iter()
            .map(|r| r.dynamodb_us() as f64 / 1000.0)
            .collect();
        let argon2id_ms: Vec<f64> = warm
            .requests
            .iter()
            .map(|r| r.argon2id_us() as f64 / 1000.0)
            .collect();
        let own_ms: Vec<f64> = warm
            .latencies_ms
            .iter()
            .zip(&dynamodb_ms)
            .zip(&argon2id_ms)
            .map(|((latency, dynamodb), argon2id)| latency - dynamodb - argon2id)
            .collect();
        let init_costs = cold
            .first()
            .map(|run| run.init_costs.clone())
            .unwrap_or_default();
        let mut patterns: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for request in &warm.requests {
            patterns
                .entry(request.pattern())
                .or_insert((request.dynamodb_calls(), 0))
                .1 += 1;
        }
        let (request_pattern, (dynamodb_calls_per_request, _)) = patterns
            .iter()
            .max_by_key(|(_, (_, count))| *count)
            .map(|(pattern, counts)| (pattern.clone(), *counts))
            .unwrap_or_default();
        let other_patterns = patterns
            .iter()
            .filter(|(pattern, _)| **pattern != request_pattern)
            .map(|(pattern, (_, count))| (pattern.clone(), *count))
            .collect();
        let ratio_to_floor = |part: fn(&ColdRun) -> f64| {
            let ratios: Vec<f64> = cold
                .iter()
                .zip(floor_cold_runs.unwrap_or_default())
                .map(|(run, floor)| part(run) / floor)
                .collect();
            median(&ratios).unwrap_or(1.0)
        };
        let mut cold_answers = BTreeMap::new();
        for run in cold {
            *cold_answers.entry(run.answer.label()).or_insert(0) += 1;
        }
        let mut result = Self {
            function: measured.function.to_owned(),
            route: measured.route,
            event: measured.event,
            token: measured.token,
            init_ms: of_cold(|run| run.init_ms),
            init_runs_ms: cold.iter().map(|run| run.init_ms).collect(),
            cold_ms,
            cold_runs_ms: cold.iter().map(|run| run.cold_ms).collect(),
            cold_argon2id_ms: of_cold(|run| run.first_request.argon2id_us() as f64 / 1000.0),
            cold_dynamodb_ms: of_cold(|run| run.first_request.dynamodb_us() as f64 / 1000.0),
            cold_ratio_to_floor: ratio_to_floor(|run| run.cold_ms),
            cold_budget_ratio_to_floor: ratio_to_floor(|run| {
                run.cold_ms - run.first_request.argon2id_us() as f64 / 1000.0
            }),
            cold_own_ratio_to_floor: ratio_to_floor(|run| {
                run.cold_ms
                    - (run.first_request.argon2id_us() + run.first_request.dynamodb_us()) as f64
                        / 1000.0
            }),
            warm_invocations: warm.latencies_ms.len(),
            warm_p50_ms: percentile(&warm.latencies_ms, 50.0).unwrap_or(0.0),
            warm_p99_ms: percentile(&warm.latencies_ms, 99.0).unwrap_or(0.0),
            warm_dynamodb_p50_ms: percentile(&dynamodb_ms, 50.0).unwrap_or(0.0),
            warm_argon2id_p50_ms: percentile(&argon2id_ms, 50.0).unwrap_or(0.0),
            warm_own_p50_ms: percentile(&own_ms, 50.0).unwrap_or(0.0),
            peak_rss_bytes: warm.peak_rss_bytes,
            x86_64: measured.x86_64,
            arm64: measured.arm64,
            dynamodb_calls_at_init: init_costs.dynamodb_calls(),
            init_pattern: init_costs.pattern(),
            dynamodb_calls_per_request,
            request_pattern,
            calls_overlap: warm.requests.iter().any(Costs::overlap),
            other_patterns,
            cold_answers,
            warm_answers: warm.answers.clone(),
            budget_misses: Vec::new(),
        };
        if let Some(floor_runs) = floor_cold_runs {
            let floor = median(floor_runs).unwrap_or(0.0);
            let typical = warm
                .requests
                .iter()
                .find(|request| request.pattern() == result.request_pattern);
            result.budget_misses = result.misses(floor, typical);
        }
        result
    }

    fn runs_argon2id(&self) -> bool {
        self.warm_argon2id_p50_ms > 0.0 || self.cold_argon2id_ms > 0.0
    }

    /// Each budget of issue 7 this function misses, and by how much.
    fn misses(&self, floor_cold_ms: f64, request: Option<&Costs>) -> Vec<String> {
        let mut misses = Vec::new();
        if self.cold_budget_ratio_to_floor > COLD_FLOOR_RATIO {
            misses.push(format!(
                "cold {:.1} ms{} is {:.1}x the floor's {floor_cold_ms:.1} ms (budget \
                 {COLD_FLOOR_RATIO}x); {:.1} ms of it waiting on DynamoDB, the rest {:.1}x the floor",
                self.cold_ms - self.cold_argon2id_ms,
                if self.runs_argon2id() {
                    " without argon2id"
                } else {
                    ""
                },
                self.cold_budget_ratio_to_floor,
                self.cold_dynamodb_ms,
                self.cold_own_ratio_to_floor,
            ));
        }
        if self.warm_own_p50_ms > WARM_OWN_MS {
            misses.push(format!(
                "warm p50 {:.2} ms is {:.2} ms above its DynamoDB{} time (budget {WARM_OWN_MS} ms)",
                self.warm_p50_ms,
                self.warm_own_p50_ms,
                if self.runs_argon2id() {
                    " and argon2id"
                } else {
                    ""
                }
            ));
        }
        if self.warm_p99_ms > WARM_TAIL_RATIO * self.warm_p50_ms {
            misses.push(format!(
                "warm p99 {:.2} ms > {WARM_TAIL_RATIO}x its p50 {:.2} ms",
                self.warm_p99_ms, self.warm_p50_ms
            ));
        }
        let rss_budget = RSS_MIB
            + if self.runs_argon2id() {
                ARGON2ID_MIB
            } else {
                0.0
            };
        let rss = self.peak_rss_bytes as f64 / MIB;
        if rss > rss_budget {
            misses.push(format!("peak RSS {rss:.1} MiB > {rss_budget} MiB"));
        }
        for (arch, sizes) in [
            ("x86_64", Some(&self.x86_64)),
            ("arm64", self.arm64.as_ref()),
        ] {
            if let Some(sizes) = sizes.filter(|sizes| sizes.zip_bytes as f64 / MIB > ZIP_MIB) {
                misses.push(format!(
                    "{arch} zip {:.2} MiB > {ZIP_MIB} MiB",
                    sizes.zip_bytes as f64 / MIB
                ));
            }
        }
        if self.dynamodb_calls_at_init > INIT_CALLS {
            misses.push(format!(
                "{} DynamoDB calls at init ({}) > {INIT_CALLS}",
                self.dynamodb_calls_at_init, self.init_pattern
            ));
        }
        if let Some(first_round) = request.and_then(|request| request.rounds().into_iter().next()) {
            let writes = first_round.iter().filter(|call| call.is_write()).count();
            if first_round.len() > FIRST_ROUND_CALLS || writes > 1 {
                misses.push(format!(
                    "the first round of a request ({}) is more than one write and one read",
                    self.request_pattern
                ));
            }
        }
        misses
    }
}

/// The whole run, as written to JSON.
#[derive(Serialize)]
pub struct Report {
    pub cold_runs: usize,
    pub warm_invocations: usize,
    pub floor: FunctionResult,
    pub functions: Vec<FunctionResult>,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let arm64 = self.functions.iter().any(|f| f.arm64.is_some());
        let _ = writeln!(
            out,
            "| function | init ms | cold ms | x floor | warm p50 / p99 ms | peak RSS MiB | bootstrap MiB | zip MiB | DynamoDB calls init / request |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|---|");
        for result in std::iter::once(&self.floor).chain(&self.functions) {
            let sizes = |pick: fn(&Sizes) -> u64| {
                let x86_64 = format!("{:.2}", pick(&result.x86_64) as f64 / MIB);
                match (&result.arm64, arm64) {
                    (Some(sizes), _) => format!("{x86_64} (arm64 {:.2})", pick(sizes) as f64 / MIB),
                    (None, true) => format!("{x86_64} (arm64 -)"),
                    (None, false) => x86_64,
                }
            };
            let cold = if result.cold_argon2id_ms > 0.0 {
                format!(
                    "{:.1} ({:.1} argon2id)",
                    result.cold_ms, result.cold_argon2id_ms
                )
            } else {
                format!("{:.1}", result.cold_ms)
            };
            let calls = if std::ptr::eq(result, &self.floor) {
                "-".to_owned()
            } else {
                format!(
                    "{} / {}{}",
                    result.dynamodb_calls_at_init,
                    result.dynamodb_calls_per_request,
                    if result.request_pattern.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", result.request_pattern)
                    }
                )
            };
            let _ = writeln!(
                out,
                "| {}{} | {:.1} | {cold} | {:.2} | {:.2} / {:.2} | {:.1} | {} | {} | {calls} |",
                result.function,
                if result.budget_misses.is_empty() {
                    ""
                } else {
                    " ⚠"
                },
                result.init_ms,
                result.cold_ratio_to_floor,
                result.warm_p50_ms,
                result.warm_p99_ms,
                result.peak_rss_bytes as f64 / MIB,
                sizes(|s| s.bootstrap_bytes),
                sizes(|s| s.zip_bytes),
            );
        }
        let _ = writeln!(
            out,
            "\nCold: median of {} fresh processes, spawn to first answer (init: to the first poll). Warm: {} invocations of one process. ‖: calls in flight together; →: one after another.\n",
            self.cold_runs, self.warm_invocations
        );
        let _ = writeln!(
            out,
            "| function | route | event | answers (warm) | cold: DynamoDB ms, rest x floor | warm DynamoDB p50 ms | argon2id p50 ms | own p50 ms |"
        );
        let _ = writeln!(out, "|---|---|---|---|--:|--:|--:|--:|");
        for result in &self.functions {
            let answers = result
                .warm_answers
                .iter()
                .map(|(answer, count)| format!("{answer} x{count}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "| {} | {}{} | {} | {answers} | {:.1}, {:.2} | {:.2} | {:.2} | {:.2} |",
                result.function,
                result.route,
                if result.token { " (token)" } else { "" },
                result.event,
                result.cold_dynamodb_ms,
                result.cold_own_ratio_to_floor,
                result.warm_dynamodb_p50_ms,
                result.warm_argon2id_p50_ms,
                result.warm_own_p50_ms,
            );
        }
        let misses: Vec<String> = self
            .functions
            .iter()
            .flat_map(|result| {
                result
                    .budget_misses
                    .iter()
                    .map(move |miss| format!("- OVER BUDGET {}: {miss}", result.function))
            })
            .collect();
        if misses.is_empty() {
            let _ = writeln!(out, "\nEvery function is within budget.");
        } else {
            let _ = writeln!(out, "\n{}", misses.join("\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::{Cost, DYNAMODB};
    use crate::measure::Answer;

    fn call(operation: &str, started_us: u64, finished_us: u64) -> Cost {
        Cost {
            kind: DYNAMODB.into(),
            operation: operation.into(),
            started_us,
            finished_us,
        }
    }

    fn cold(cold_ms: f64) -> ColdRun {
        ColdRun {
            init_ms: cold_ms / 2.0,
            cold_ms,
            init_costs: Costs::default(),
            first_request: Costs::default(),
            answer: Answer::Http {
                status: 200,
                body: String::new(),
            },
        }
    }

    /// 200 requests of 2 ms, 1.5 ms of them in DynamoDB.
    fn warm(request: Costs) -> WarmRun {
        WarmRun {
            latencies_ms: vec![2.0; 200],
            requests: vec![request; 200],
            answers: BTreeMap::from([("200".to_owned(), 200)]),
            peak_rss_bytes: 8 * 1024 * 1024,
        }
    }

    fn result(cold_runs: &[ColdRun], warm: &WarmRun, floor_cold_ms: f64) -> FunctionResult {
        let floor_runs = vec![floor_cold_ms; cold_runs.len()];
        FunctionResult::new(
            Measured {
                function: "me",
                route: "GET /api/auth/me".into(),
                event: "built".into(),
                token: true,
                cold: cold_runs,
                warm,
                x86_64: Sizes {
                    bootstrap_bytes: 8 << 20,
                    zip_bytes: 3 << 20,
                },
                arm64: None,
            },
            Some(&floor_runs),
        )
    }

    fn limiter_round() -> Costs {
        Costs(vec![
            call("UpdateItem", 0, 1500),
            call("BatchGetItem", 100, 1400),
        ])
    }

    #[test]
    fn a_function_within_every_budget_has_no_misses() {
        let runs = [cold(5.0), cold(6.0), cold(40.0)];
        let result = result(&runs, &warm(limiter_round()), 2.0);
        assert_eq!(result.cold_ms, 6.0, "the median, not the mean");
        assert_eq!(result.cold_ratio_to_floor, 3.0);
        assert_eq!(result.request_pattern, "UpdateItem ‖ BatchGetItem");
        assert_eq!(result.dynamodb_calls_per_request, 2);
        assert!((result.warm_own_p50_ms - 0.5).abs() < 1e-9);
        assert!(
            result.budget_misses.is_empty(),
            "{:?}",
            result.budget_misses
        );
    }

    #[test]
    fn names_each_budget_missed() {
        let runs = [cold(7.0)];
        let sequential = Costs(vec![
            call("UpdateItem", 0, 200),
            call("BatchGetItem", 300, 500),
        ]);
        let mut slow = warm(sequential);
        for latency in &mut slow.latencies_ms[197..] {
            *latency = 9.0;
        }
        slow.peak_rss_bytes = 31 * 1024 * 1024;
        let misses = result(&runs, &slow, 2.0).budget_misses;
        assert_eq!(misses.len(), 4, "{misses:?}");
        assert!(
            misses[0].starts_with("cold 7.0 ms is 3.5x the floor's 2.0 ms"),
            "{}",
            misses[0]
        );
        assert!(misses[1].contains("above its DynamoDB time"));
        assert!(misses[2].starts_with("warm p99 9.00 ms"));
        assert!(misses[3].starts_with("peak RSS 31.0 MiB"));
    }

    #[test]
    fn a_first_round_of_more_than_one_write_and_one_read_is_a_miss() {
        let two_writes = Costs(vec![
            call("UpdateItem", 0, 1500),
            call("PutItem", 100, 1400),
        ]);
        let misses = result(&[cold(2.0)], &warm(two_writes), 2.0).budget_misses;
        assert_eq!(misses.len(), 1, "{misses:?}");
        assert!(misses[0].contains("more than one write and one read"));
    }
}
