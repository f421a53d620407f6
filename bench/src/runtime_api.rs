//! The AWS Lambda Runtime API (2018-06-01) on loopback, for one function process: it hands the
//! process an event when asked and reports when the process polled, answered or failed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio::task::{JoinHandle, JoinSet};

/// What a request to the Runtime API asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Next,
    Response { request_id: String },
    Error { request_id: String },
    InitError,
    Unknown,
}

impl Route {
    pub fn of(method: &Method, path: &str) -> Self {
        let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
            return Self::Unknown;
        };
        match (method, rest) {
            (&Method::GET, "invocation/next") => Self::Next,
            (&Method::POST, "init/error") => Self::InitError,
            (&Method::POST, rest) => {
                let Some((request_id, action)) = rest
                    .strip_prefix("invocation/")
                    .and_then(|rest| rest.split_once('/'))
                else {
                    return Self::Unknown;
                };
                let request_id = request_id.to_owned();
                match action {
                    _ if request_id.is_empty() => Self::Unknown,
                    "response" => Self::Response { request_id },
                    "error" => Self::Error { request_id },
                    _ => Self::Unknown,
                }
            }
            _ => Self::Unknown,
        }
    }
}

/// One event for the function.
#[derive(Debug)]
pub struct Invocation {
    pub request_id: String,
    pub event: Bytes,
    pub deadline_epoch_ms: u64,
    pub function_arn: String,
}

/// What the function process did, as the Runtime API saw it, in order.
#[derive(Debug)]
pub enum Report {
    /// It asked for its next event (it is idle).
    Polled {
        at: Instant,
    },
    Responded {
        request_id: String,
        body: Bytes,
        at: Instant,
    },
    Failed {
        request_id: String,
        body: Bytes,
        at: Instant,
    },
    InitFailed {
        body: Bytes,
        at: Instant,
    },
}

struct Shared {
    invocations: Mutex<mpsc::Receiver<Invocation>>,
    reports: mpsc::UnboundedSender<Report>,
}

/// A Runtime API endpoint serving one function process.
pub struct RuntimeApi {
    pub address: SocketAddr,
    invocations: mpsc::Sender<Invocation>,
    reports: mpsc::UnboundedReceiver<Report>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (invocations, invocations_rx) = mpsc::channel(1);
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            invocations: Mutex::new(invocations_rx),
            reports: reports_tx,
        });
        Ok(Self {
            address,
            invocations,
            reports,
            server: tokio::spawn(serve(listener, shared)),
        })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for the process.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// Queues the event that the process's next poll receives.
    pub async fn invoke(&self, invocation: Invocation) {
        // The receiver lives as long as the server, which lives as long as `self`.
        let _ = self.invocations.send(invocation).await;
    }

    /// The next thing the process did; `None` once the server has stopped.
    pub async fn report(&mut self) -> Option<Report> {
        self.reports.recv().await
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    // Dropped with this task when the server stops, which ends every connection.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(request, shared.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let route = Route::of(request.method(), request.uri().path());
    if route == Route::Next {
        let _ = shared.reports.send(Report::Polled { at: arrived });
        let Some(invocation) = shared.invocations.lock().await.recv().await else {
            return Ok(plain(StatusCode::GONE, "the benchmark is over"));
        };
        return Ok(next_event(invocation));
    }
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    let at = Instant::now();
    let report = match route {
        Route::Response { request_id } => Report::Responded {
            request_id,
            body,
            at,
        },
        Route::Error { request_id } => Report::Failed {
            request_id,
            body,
            at,
        },
        Route::InitError => Report::InitFailed { body, at },
        Route::Next | Route::Unknown => return Ok(plain(StatusCode::NOT_FOUND, "no such route")),
    };
    let _ = shared.reports.send(report);
    Ok(plain(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
}

fn next_event(invocation: Invocation) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &invocation.request_id)
        .header(
            "lambda-runtime-deadline-ms",
            invocation.deadline_epoch_ms.to_string(),
        )
        .header(
            "lambda-runtime-invoked-function-arn",
            &invocation.function_arn,
        )
        .header(
            "lambda-runtime-trace-id",
            format!("Root=1-00000000-{}", invocation.request_id.replace('-', "")),
        )
        .body(Full::new(invocation.event))
        .expect("the headers are valid")
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_runtime_api_paths() {
        assert_eq!(
            Route::of(&Method::GET, "/2018-06-01/runtime/invocation/next"),
            Route::Next
        );
        assert_eq!(
            Route::of(
                &Method::POST,
                "/2018-06-01/runtime/invocation/abc-1/response"
            ),
            Route::Response {
                request_id: "abc-1".into()
            }
        );
        assert_eq!(
            Route::of(&Method::POST, "/2018-06-01/runtime/invocation/abc-1/error"),
            Route::Error {
                request_id: "abc-1".into()
            }
        );
        assert_eq!(
            Route::of(&Method::POST, "/2018-06-01/runtime/init/error"),
            Route::InitError
        );
    }

    #[test]
    fn refuses_what_the_runtime_api_does_not_have() {
        for (method, path) in [
            (Method::POST, "/2018-06-01/runtime/invocation/next"),
            (Method::GET, "/2018-06-01/runtime/invocation/abc/response"),
            (Method::POST, "/2018-06-01/runtime/invocation//response"),
            (Method::POST, "/2018-06-01/runtime/invocation/abc/other"),
            (Method::POST, "/2018-06-01/runtime/invocation/abc"),
            (Method::GET, "/2020-01-01/runtime/invocation/next"),
            (Method::POST, "/2018-06-01/runtime/restore/error"),
        ] {
            assert_eq!(Route::of(&method, path), Route::Unknown, "{method} {path}");
        }
    }
}
