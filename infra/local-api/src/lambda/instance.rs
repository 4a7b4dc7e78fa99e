//! One function process, started as Lambda starts one: its environment
//! cleared and set as Lambda sets it, `AWS_LAMBDA_RUNTIME_API` pointing at
//! a Runtime API of its own, its output forwarded line by line under its
//! name. Init lasts from spawn to its first `next` request.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::log_level::{self, Level};
use crate::json_lines::JsonLines;
use crate::runtime_api::{InvokeError, Outcome, RuntimeApi};

/// How to start a function's process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The function's name, for logs.
    pub name: String,
    /// Its ARN, for the Runtime API.
    pub arn: String,
    /// The program and its arguments (the binary, or an emulator and the binary).
    pub command: Vec<String>,
    /// Its working directory (Lambda's `LAMBDA_TASK_ROOT`).
    pub dir: PathBuf,
    /// Its whole environment but `AWS_LAMBDA_RUNTIME_API`.
    pub env: Vec<(String, String)>,
    /// How long init may take (Lambda's limit is 10 s).
    pub init_timeout: Duration,
    /// Where its output goes: appended to this file as it is, or else
    /// forwarded to the log line by line, filtered by level as Lambda does.
    pub output: Option<PathBuf>,
    /// When output is forwarded, each line Lambda keeps is also appended
    /// here (what CloudWatch Logs would hold).
    pub kept_lines: Option<Arc<JsonLines>>,
}

/// Why a process could not serve.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// It could not be started, reported an init error, exited during init
    /// or took too long to init.
    #[error("init failed: {0}")]
    Init(String),
    /// It exited while handling an invocation.
    #[error("process exited while handling the invocation ({0})")]
    Crashed(ExitStatus),
    /// It did not answer before its timeout.
    #[error("task timed out after {:.2} seconds", .0.as_secs_f64())]
    TimedOut(Duration),
    /// Every instance stayed busy for as long as API Gateway waits.
    #[error("no instance was free within {0:?}")]
    Busy(Duration),
}

/// A started function process, waiting for invocations.
#[derive(Debug)]
pub struct Instance {
    api: RuntimeApi,
    process: Child,
    /// Spawn to first `next` request.
    pub init: Duration,
}

impl Launch {
    /// Starts the process and waits for the end of its init.
    pub async fn start(&self) -> Result<Instance, Failure> {
        let init = |what: String| Failure::Init(what);
        let api = RuntimeApi::start(&self.arn)
            .await
            .map_err(|e| init(format!("runtime API: {e}")))?;
        let Some((program, arguments)) = self.command.split_first() else {
            return Err(init("no command".to_owned()));
        };
        let (stdout, stderr) = match &self.output {
            None => (Stdio::piped(), Stdio::piped()),
            Some(path) => {
                let file = std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(path);
                let file = file.map_err(|e| init(format!("{}: {e}", path.display())))?;
                let copy = file.try_clone().map_err(|e| init(e.to_string()))?;
                (copy.into(), file.into())
            }
        };
        let mut command = Command::new(program);
        command
            .args(arguments)
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut process = command
            .spawn()
            .map_err(|e| init(format!("cannot start {program}: {e}")))?;
        let threshold = log_level::threshold(&self.env);
        if let Some(out) = process.stdout.take() {
            tokio::spawn(forward(
                self.name.clone(),
                out,
                threshold,
                self.kept_lines.clone(),
            ));
        }
        if let Some(err) = process.stderr.take() {
            tokio::spawn(forward(
                self.name.clone(),
                err,
                threshold,
                self.kept_lines.clone(),
            ));
        }
        let deadline = spawned + self.init_timeout;
        loop {
            if let Some(at) = api.first_next() {
                return Ok(Instance {
                    api,
                    process,
                    init: at.saturating_duration_since(spawned),
                });
            }
            if let Some(error) = api.init_error() {
                return Err(init(error));
            }
            if let Ok(Some(status)) = process.try_wait() {
                return Err(init(format!("exited during init ({status})")));
            }
            if Instant::now() > deadline {
                return Err(init(format!(
                    "no first request within {:?}",
                    self.init_timeout
                )));
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
}

impl Instance {
    /// Hands `event` to the process and waits for its answer, its exit or
    /// `timeout`, whichever comes first.
    pub async fn invoke(&mut self, event: Bytes, timeout: Duration) -> Result<Outcome, Failure> {
        tokio::select! {
            outcome = self.api.invoke(event, timeout) => match outcome {
                Ok(outcome) => Ok(outcome),
                Err(InvokeError::Timeout(limit)) => Err(Failure::TimedOut(limit)),
                Err(InvokeError::Gone) => Err(Failure::Crashed(self.process.wait().await.unwrap_or_default())),
            },
            status = self.process.wait() => Err(Failure::Crashed(status.unwrap_or_default())),
        }
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.process.id()
    }

    /// Kills the process.
    pub async fn stop(mut self) {
        let _ = self.process.kill().await;
    }
}

/// Forwards a process's output to the log, one line at a time, under the
/// function's name (lines are the function's own JSON log lines), less
/// those Lambda's log-level filtering drops.
async fn forward(
    name: String,
    stream: impl AsyncRead + Unpin,
    threshold: Option<Level>,
    kept_lines: Option<Arc<JsonLines>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if log_level::kept(&line, threshold) {
            eprintln!("[{name}] {line}");
            if let Some(record) = &kept_lines {
                record.append(
                    &serde_json::from_str::<serde_json::Value>(&line).unwrap_or(line.into()),
                );
            }
        }
    }
}
