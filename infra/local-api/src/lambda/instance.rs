//! One function process, started as Lambda starts one: its environment
//! cleared and set as Lambda sets it, `AWS_LAMBDA_RUNTIME_API` pointing at
//! a Runtime API of its own, its output forwarded line by line under its
//! name. Init lasts from spawn to the first `next` request of the runtime
//! and of every extension it registered; an invocation lasts until its
//! extensions are done with it, after its response (see
//! [`Instance::settle`]).

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::log_level::{self, Level};
use super::runtime_api::{FunctionInfo, InvokeError, Outcome, RuntimeApi};
use crate::json_lines::JsonLines;

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
    /// The one CPU it runs on, if not any (the benchmarks pin a function to
    /// a core of its own).
    pub cpu: Option<usize>,
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
    /// It (the runtime, or an extension after the response) did not finish
    /// before its timeout.
    #[error("task timed out after {:.2} seconds", .0.as_secs_f64())]
    TimedOut(Duration),
    /// An extension reported an error through the Extensions API.
    #[error("{0}")]
    Extension(String),
    /// Every instance stayed busy for as long as API Gateway waits.
    #[error("no instance was free within {0:?}")]
    Busy(Duration),
}

/// Runs `spawn` with the calling thread pinned to `cpu`. A child inherits
/// the CPU mask of the thread that starts it, so it runs on that CPU from
/// its first instruction, with no wrapper such as `taskset` in front: a
/// wrapper's own exec and dynamic loading would count as the function's
/// init (about 1.3 ms).
fn on_cpu<T>(cpu: Option<usize>, spawn: impl FnOnce() -> T) -> std::io::Result<T> {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let Some(cpu) = cpu else {
        return Ok(spawn());
    };
    let before = sched_getaffinity(None)?;
    let mut only = CpuSet::new();
    only.set(cpu);
    sched_setaffinity(None, &only)?;
    let spawned = spawn();
    sched_setaffinity(None, &before)?;
    Ok(spawned)
}

/// A started function process, waiting for invocations.
#[derive(Debug)]
pub struct Instance {
    api: RuntimeApi,
    process: Child,
    /// Spawn to the end of init (the runtime's and every extension's
    /// first `next` request).
    pub init: Duration,
    /// The deadline and timeout of an invocation answered but not yet
    /// finished by its extensions.
    unsettled: Option<(tokio::time::Instant, Duration)>,
}

impl Launch {
    /// Starts the process and waits for the end of its init.
    pub async fn start(&self) -> Result<Instance, Failure> {
        let init = |what: String| Failure::Init(what);
        let api = RuntimeApi::start(FunctionInfo::new(&self.arn, &self.env))
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
        let started = on_cpu(self.cpu, || (Instant::now(), command.spawn()));
        let (spawned, process) = started.map_err(|e| init(format!("pinning to a CPU: {e}")))?;
        let mut process = process.map_err(|e| init(format!("cannot start {program}: {e}")))?;
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
            if let Some(at) = api.init_done() {
                return Ok(Instance {
                    api,
                    process,
                    init: at.saturating_duration_since(spawned),
                    unsettled: None,
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
    /// `timeout`, whichever comes first. The answer comes as soon as the
    /// runtime posts it; the invocation goes on until its extensions are
    /// done ([`Instance::settle`], which the next invocation waits for).
    pub async fn invoke(&mut self, event: Bytes, timeout: Duration) -> Result<Outcome, Failure> {
        self.settle().await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let outcome = tokio::select! {
            outcome = self.api.invoke(event, timeout) => match outcome {
                Ok(outcome) => Ok(outcome),
                Err(InvokeError::Timeout(limit)) => Err(Failure::TimedOut(limit)),
                Err(InvokeError::Extension(error)) => Err(Failure::Extension(error)),
                Err(InvokeError::Gone) => Err(Failure::Crashed(self.process.wait().await.unwrap_or_default())),
            },
            status = self.process.wait() => Err(Failure::Crashed(status.unwrap_or_default())),
        }?;
        self.unsettled = Some((deadline, timeout));
        Ok(outcome)
    }

    /// Waits for the end of the last invocation: "The `Invoke` phase ends
    /// after the runtime and all extensions signal that they are done by
    /// sending a `Next` API request", within the same timeout ("the
    /// function and all extensions need to complete within" it). Answers
    /// how long the extensions ran after the response (zero without any).
    pub async fn settle(&mut self) -> Result<Duration, Failure> {
        let Some((deadline, timeout)) = self.unsettled.take() else {
            return Ok(Duration::ZERO);
        };
        tokio::select! {
            settled = self.api.settle(deadline) => match settled {
                Ok(after) => Ok(after),
                Err(InvokeError::Extension(error)) => Err(Failure::Extension(error)),
                Err(InvokeError::Timeout(_)) => Err(Failure::TimedOut(timeout)),
                Err(InvokeError::Gone) => Err(Failure::Crashed(self.process.wait().await.unwrap_or_default())),
            },
            status = self.process.wait() => Err(Failure::Crashed(status.unwrap_or_default())),
        }
    }

    /// Whether an invocation it answered still waits for its extensions.
    pub fn is_settled(&self) -> bool {
        self.unsettled.is_none() || self.api.is_settled()
    }

    /// The names of the extensions it registered.
    pub fn extensions(&self) -> Vec<String> {
        self.api.extensions()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel says a process may run on (`Cpus_allowed_list` in
    /// `/proc/<pid>/status`), for a child started inside `on_cpu`.
    fn allowed(cpu: Option<usize>) -> String {
        let output = on_cpu(cpu, || {
            std::process::Command::new("grep")
                .args(["Cpus_allowed_list", "/proc/self/status"])
                .output()
        });
        let output = output.unwrap().unwrap();
        let line = String::from_utf8(output.stdout).unwrap();
        line.split_whitespace().last().unwrap().to_owned()
    }

    #[test]
    fn a_child_started_on_a_cpu_runs_only_there_and_the_thread_gets_its_mask_back() {
        let before = rustix::thread::sched_getaffinity(None).unwrap();
        let cpu = (0..rustix::thread::CpuSet::MAX_CPU)
            .find(|&cpu| before.is_set(cpu))
            .unwrap();
        assert_eq!(allowed(Some(cpu)), cpu.to_string());
        assert_eq!(rustix::thread::sched_getaffinity(None).unwrap(), before);
        if before.count() > 1 {
            assert_ne!(allowed(None), cpu.to_string());
        }
    }
}
