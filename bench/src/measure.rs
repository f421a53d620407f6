//! The measurements of one function: fresh processes for cold starts, one long-lived process for
//! warm latency, memory and the per-request DynamoDB round trips.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::chain::Chain;
use crate::costs::{Cost, Costs, started_within};
use crate::events::{TokenMint, invocation_event};
use crate::process::{FunctionProcess, Invoked, ProcessError, epoch_us};

/// A function as the bench runs it.
pub struct Subject {
    pub name: String,
    pub binary: PathBuf,
    pub memory_mb: u64,
    pub env: Vec<(String, String)>,
    pub event: Value,
    /// Signs a fresh token for every invocation of a route that takes one.
    pub tokens: Option<Arc<TokenMint>>,
    /// For a route whose next request follows from the last answer (refresh, change-password).
    pub chain: Option<Arc<Chain>>,
}

impl Subject {
    fn next_event(&self) -> Bytes {
        let token = self.tokens.as_ref().map(|mint| mint.fresh());
        let event = match &self.chain {
            Some(chain) => chain.event(&self.event),
            None => self.event.clone(),
        };
        Bytes::from(invocation_event(&event, token.as_deref()).to_string())
    }

    /// What an invocation answered, after the chain (if any) has taken it in.
    fn answered(&self, invoked: &Invoked) -> Answer {
        let answer = Answer::of(invoked);
        if let Some(chain) = &self.chain {
            chain.observe(&answer);
        }
        answer
    }

    async fn spawn(&self) -> Result<FunctionProcess, ProcessError> {
        FunctionProcess::spawn(&self.name, &self.binary, &self.env, self.memory_mb).await
    }

    /// One invocation in a process of its own: what it answered.
    pub async fn invoke_once(&self) -> Result<Answer, ProcessError> {
        let mut process = self.spawn().await?;
        let invoked = process.invoke(self.next_event()).await;
        process.stop().await;
        Ok(self.answered(&invoked?))
    }
}

/// What an invocation answered: the HTTP status and body, or the function's error.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Http { status: u16, body: String },
    FunctionError(String),
}

impl Answer {
    fn of(invoked: &Invoked) -> Self {
        match &invoked.outcome {
            Ok(response) => {
                let response: Value = serde_json::from_slice(response).unwrap_or(Value::Null);
                Self::Http {
                    status: response["statusCode"].as_u64().unwrap_or(0) as u16,
                    body: response["body"].as_str().unwrap_or_default().to_owned(),
                }
            }
            Err(error) => Self::FunctionError(String::from_utf8_lossy(error).into_owned()),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Http { status, .. } => status.to_string(),
            Self::FunctionError(_) => "function error".into(),
        }
    }
}

/// A cold start: spawn to first poll (init), spawn to first answer (cold).
#[derive(Clone, Debug)]
pub struct ColdRun {
    pub init_ms: f64,
    pub cold_ms: f64,
    pub init_costs: Costs,
    pub first_request: Costs,
    pub answer: Answer,
}

pub async fn cold_start(subject: &Subject) -> Result<ColdRun, ProcessError> {
    let mut process = subject.spawn().await?;
    let (spawned, spawned_wall) = (process.spawned, process.spawned_wall);
    let (polled, polled_wall) = process.polled().await?;
    let invoked = process.invoke(subject.next_event()).await?;
    let costs = parse_costs(&process.stop().await);
    Ok(ColdRun {
        init_ms: ms(polled - spawned),
        cold_ms: ms(invoked.finished - spawned),
        init_costs: Costs(started_within(
            &costs,
            epoch_us(spawned_wall),
            epoch_us(polled_wall),
        )),
        first_request: request_costs(&costs, &invoked),
        answer: subject.answered(&invoked),
    })
}

/// Many invocations of one process after its first.
#[derive(Clone, Debug)]
pub struct WarmRun {
    pub latencies_ms: Vec<f64>,
    pub requests: Vec<Costs>,
    pub answers: BTreeMap<String, usize>,
    pub peak_rss_bytes: u64,
}

pub async fn warm(subject: &Subject, invocations: usize) -> Result<WarmRun, ProcessError> {
    let mut process = subject.spawn().await?;
    let first = process.invoke(subject.next_event()).await?;
    subject.answered(&first);
    let mut invoked = Vec::with_capacity(invocations);
    for _ in 0..invocations {
        let next = process.invoke(subject.next_event()).await?;
        subject.answered(&next);
        invoked.push(next);
    }
    // Ask once more so that the last answer's work is over before reading the peak.
    process.polled().await?;
    let peak_rss_bytes = process.peak_rss_bytes().unwrap_or(0);
    let costs = parse_costs(&process.stop().await);
    let mut answers = BTreeMap::new();
    for invocation in &invoked {
        *answers.entry(Answer::of(invocation).label()).or_insert(0) += 1;
    }
    Ok(WarmRun {
        latencies_ms: invoked.iter().map(|i| ms(i.latency())).collect(),
        requests: invoked.iter().map(|i| request_costs(&costs, i)).collect(),
        answers,
        peak_rss_bytes,
    })
}

fn request_costs(costs: &[Cost], invoked: &Invoked) -> Costs {
    Costs(started_within(
        costs,
        epoch_us(invoked.delivered_wall),
        epoch_us(invoked.finished_wall),
    ))
}

fn parse_costs(lines: &[String]) -> Vec<Cost> {
    lines.iter().filter_map(|line| Cost::parse(line)).collect()
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
