//! One function process under the bench's Runtime API: spawned with a Lambda-like environment,
//! invoked, measured, killed.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::runtime_api::{Invocation, Report, RuntimeApi};

/// How long a process may take to poll or to answer before the bench gives up on it.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long the output of a killed process may take to drain.
const LAST_OUTPUT: Duration = Duration::from_secs(2);
/// Lines of a failed process's stderr worth showing.
const STDERR_TAIL_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("could not start {binary}: {reason}")]
    Spawn { binary: String, reason: String },
    #[error("{0} exited before it was done; its stderr ends:\n{1}")]
    Exited(String, String),
    #[error("{0} failed its init: {1}")]
    InitFailed(String, String),
    #[error("{0} did not poll or answer within {PATIENCE:?}")]
    Timeout(String),
    #[error("{0}'s Runtime API stopped")]
    ApiStopped(String),
}

/// A response, or the error the function reported instead.
#[derive(Debug)]
pub struct Invoked {
    pub delivered: Instant,
    pub delivered_wall: SystemTime,
    pub finished: Instant,
    pub finished_wall: SystemTime,
    pub outcome: Result<Bytes, Bytes>,
}

impl Invoked {
    pub fn latency(&self) -> Duration {
        self.finished - self.delivered
    }
}

pub struct FunctionProcess {
    name: String,
    child: Child,
    api: RuntimeApi,
    pub spawned: Instant,
    pub spawned_wall: SystemTime,
    /// When it last polled and has not been given an event since.
    polled: Option<(Instant, SystemTime)>,
    function_arn: String,
    stdout: JoinHandle<Vec<String>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl FunctionProcess {
    /// Starts `binary` with only `env` (and what Lambda itself sets) in its environment.
    pub async fn spawn(
        name: &str,
        binary: &Path,
        env: &[(String, String)],
        memory_mb: u64,
    ) -> Result<Self, ProcessError> {
        let spawn_error = |reason: String| ProcessError::Spawn {
            binary: binary.display().to_string(),
            reason,
        };
        let binary = std::path::absolute(binary).map_err(|error| spawn_error(error.to_string()))?;
        let api = RuntimeApi::start()
            .await
            .map_err(|error| spawn_error(error.to_string()))?;
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .envs(lambda_environment(name, &api.host(), memory_mb))
            .envs(env.iter().map(|(key, value)| (key, value)))
            // Lambda runs the bootstrap in its own directory (LAMBDA_TASK_ROOT).
            .current_dir(binary.parent().unwrap_or(Path::new("/")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_wall = SystemTime::now();
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|error| spawn_error(error.to_string()))?;
        let stdout = tokio::spawn(read_lines(child.stdout.take().expect("piped")));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_lines = stderr.clone();
        let stderr_pipe = child.stderr.take().expect("piped");
        tokio::spawn(async move {
            let lines = read_lines(stderr_pipe).await;
            stderr_lines.lock().expect("not poisoned").extend(lines);
        });
        Ok(Self {
            name: name.to_owned(),
            child,
            api,
            spawned,
            spawned_wall,
            polled: None,
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
            stdout,
            stderr,
        })
    }

    /// Waits until the process asks for an event; returns when it did.
    pub async fn polled(&mut self) -> Result<(Instant, SystemTime), ProcessError> {
        if let Some(polled) = self.polled {
            return Ok(polled);
        }
        loop {
            match self.report().await? {
                Report::Polled { at } => {
                    let wall = SystemTime::now() - at.elapsed();
                    self.polled = Some((at, wall));
                    return Ok((at, wall));
                }
                Report::InitFailed { body, .. } => {
                    return Err(ProcessError::InitFailed(
                        self.name.clone(),
                        String::from_utf8_lossy(&body).into_owned(),
                    ));
                }
                Report::Responded { .. } | Report::Failed { .. } => {}
            }
        }
    }

    /// Hands the process one event once it polls, and waits for its answer.
    pub async fn invoke(&mut self, event: Bytes) -> Result<Invoked, ProcessError> {
        self.polled().await?;
        let request_id = Uuid::new_v4().to_string();
        let delivered_wall = SystemTime::now();
        let delivered = Instant::now();
        self.polled = None;
        self.api
            .invoke(Invocation {
                request_id: request_id.clone(),
                event,
                deadline_epoch_ms: epoch_ms(delivered_wall + PATIENCE),
                function_arn: self.function_arn.clone(),
            })
            .await;
        loop {
            let (outcome, at) = match self.report().await? {
                Report::Responded {
                    request_id: id,
                    body,
                    at,
                } if id == request_id => (Ok(body), at),
                Report::Failed {
                    request_id: id,
                    body,
                    at,
                } if id == request_id => (Err(body), at),
                Report::Polled { at } => {
                    return Err(ProcessError::Exited(
                        self.name.clone(),
                        format!("polled again at {at:?} without answering"),
                    ));
                }
                _ => continue,
            };
            return Ok(Invoked {
                delivered,
                delivered_wall,
                finished: at,
                finished_wall: SystemTime::now() - at.elapsed(),
                outcome,
            });
        }
    }

    /// The process's peak resident set so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
    }

    /// Kills the process and returns everything it wrote to stdout.
    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        // A process it started itself could keep the pipe open: do not wait for that.
        match tokio::time::timeout(LAST_OUTPUT, &mut self.stdout).await {
            Ok(Ok(lines)) => lines,
            _ => Vec::new(),
        }
    }

    async fn report(&mut self) -> Result<Report, ProcessError> {
        tokio::select! {
            report = self.api.report() => report.ok_or_else(|| ProcessError::ApiStopped(self.name.clone())),
            _ = self.child.wait() => {
                // Let the stderr reader take the last lines.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let stderr = self.stderr.lock().expect("not poisoned");
                let tail = stderr[stderr.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
                Err(ProcessError::Exited(self.name.clone(), tail))
            }
            _ = tokio::time::sleep(PATIENCE) => Err(ProcessError::Timeout(self.name.clone())),
        }
    }
}

/// What Lambda sets for a provided.al2023 function, as far as a function reads it.
fn lambda_environment(name: &str, runtime_api: &str, memory_mb: u64) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

async fn read_lines(pipe: impl AsyncRead + Unpin) -> Vec<String> {
    let mut lines = BufReader::new(pipe).lines();
    let mut all = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        all.push(line);
    }
    all
}

pub fn epoch_us(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64)
}

fn epoch_ms(at: SystemTime) -> u64 {
    epoch_us(at) / 1000
}
