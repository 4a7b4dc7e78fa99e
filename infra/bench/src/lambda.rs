//! Runs one function as Lambda does: its process started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at our Runtime API, pinned to one core,
//! its init timed from spawn to its first `next` request, then fed events.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::process::{Child, Command};

use crate::proxy::{Call, DynamoProxy};
use crate::stats::Summary;
use local_api::runtime_api::{Outcome, RuntimeApi};

/// How long a function may take to initialise before the harness gives up.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a function may take per invocation before the harness gives up.
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a function's process.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// What the report calls it.
    pub(crate) name: String,
    /// The program and its arguments.
    pub(crate) command: Vec<String>,
    /// Its working directory.
    pub(crate) dir: PathBuf,
    /// Environment beyond Lambda's own variables.
    pub(crate) env: Vec<(String, String)>,
}

/// One started function process.
#[derive(Debug)]
pub(crate) struct Instance {
    api: RuntimeApi,
    process: Child,
    /// Spawn to first `next` request.
    pub(crate) init: Duration,
    /// The DynamoDB requests made during init.
    pub(crate) init_calls: Vec<Call>,
}

/// One invocation's result, with the DynamoDB requests it made.
#[derive(Debug)]
pub(crate) struct Invocation {
    /// Lambda's duration and the answer.
    pub(crate) outcome: Outcome,
    /// The requests it made to DynamoDB.
    pub(crate) calls: Vec<Call>,
}

/// Everything measured for one function.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FunctionRun {
    /// The function.
    pub(crate) name: String,
    /// Init durations of each cold start, in ms.
    pub(crate) init_ms: Summary,
    /// First-invocation durations of each cold start, in ms.
    pub(crate) first_ms: Summary,
    /// Warm invocation durations, in ms.
    pub(crate) warm_ms: Summary,
    /// Peak resident memory of the process that served the warm
    /// invocations, in KiB.
    pub(crate) peak_rss_kib: u64,
    /// Invocations whose answer was not the expected one.
    pub(crate) unexpected: usize,
    /// One such answer, for the log.
    pub(crate) unexpected_sample: Option<String>,
    /// DynamoDB requests made during init.
    pub(crate) init_requests: usize,
    /// The load average when the run ended.
    pub(crate) load: String,
}

impl Launch {
    /// Starts the process and waits for its first `next` request.
    pub(crate) async fn start(
        &self,
        proxy: Option<&DynamoProxy>,
        log_dir: &Path,
    ) -> Result<Instance, crate::Error> {
        let api = RuntimeApi::start("arn:aws:lambda:us-east-1:000000000000:function:bench").await?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("{}.log", self.name)))?;
        let mut command = Command::new("taskset");
        command
            .arg("-c")
            .arg(crate::FUNCTION_CORE)
            .args(&self.command)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_SESSION_TOKEN", "local")
            .env("TZ", ":UTC")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(proxy) = proxy {
            proxy.take();
        }
        let spawned = Instant::now();
        let mut process = command.spawn()?;
        let deadline = spawned + INIT_TIMEOUT;
        let first_next = loop {
            if let Some(at) = api.first_next() {
                break at;
            }
            if let Some(error) = api.init_error() {
                return Err(crate::Error::msg(format!(
                    "{}: init error: {error}",
                    self.name
                )));
            }
            if let Ok(Some(status)) = process.try_wait() {
                return Err(crate::Error::msg(format!(
                    "{}: exited during init ({status}); see its log in {}",
                    self.name,
                    log_dir.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(crate::Error::msg(format!("{}: init timed out", self.name)));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        Ok(Instance {
            api,
            process,
            init: first_next.saturating_duration_since(spawned),
            init_calls: proxy.map(DynamoProxy::take).unwrap_or_default(),
        })
    }
}

impl Instance {
    /// Sends one event.
    pub(crate) async fn invoke(
        &self,
        event: impl Into<Bytes>,
        proxy: Option<&DynamoProxy>,
    ) -> Result<Invocation, crate::Error> {
        let outcome = self.api.invoke(event, INVOCATION_TIMEOUT).await?;
        let calls = proxy.map(DynamoProxy::take).unwrap_or_default();
        Ok(Invocation { outcome, calls })
    }

    /// The process's peak resident memory so far, in KiB.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        self.process.id().map_or(0, crate::peak_rss_kib)
    }

    /// Kills the process.
    pub(crate) async fn stop(mut self) {
        let _ = self.process.kill().await;
    }
}

/// What a function is benchmarked with.
pub(crate) struct Workload<'a> {
    /// The event of invocation `n`, counted across every run of this
    /// workload (so a warm-up run does not reuse the events of the next).
    pub(crate) event: Box<dyn FnMut(usize) -> Vec<u8> + 'a>,
    /// Whether an answer is the expected one.
    pub(crate) expect: Box<dyn Fn(&Outcome) -> bool + 'a>,
    /// Invocations sent so far.
    pub(crate) sent: usize,
}

impl<'a> Workload<'a> {
    fn next_event(&mut self) -> Vec<u8> {
        self.sent += 1;
        (self.event)(self.sent - 1)
    }
}

impl std::fmt::Debug for Workload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload").finish_non_exhaustive()
    }
}

/// Cold-starts `launch` `cold_starts` times (one invocation each), then
/// sends `warm` more invocations to the last instance.
pub(crate) async fn measure(
    launch: &Launch,
    workload: &mut Workload<'_>,
    cold_starts: usize,
    warm: usize,
    proxy: Option<&DynamoProxy>,
    log_dir: &Path,
) -> Result<FunctionRun, crate::Error> {
    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    let mut warms = Vec::new();
    let mut unexpected = 0;
    let mut unexpected_sample = None;
    let mut init_requests = 0;
    let mut check = |outcome: &Outcome, expect: &dyn Fn(&Outcome) -> bool| {
        if !expect(outcome) {
            unexpected += 1;
            unexpected_sample.get_or_insert_with(|| {
                String::from_utf8_lossy(&outcome.body)
                    .chars()
                    .take(400)
                    .collect()
            });
        }
    };
    let mut peak = 0;
    for round in 0..cold_starts.max(1) {
        let instance = launch.start(proxy, log_dir).await?;
        inits.push(ms(instance.init));
        init_requests = instance.init_calls.len();
        let first = instance.invoke(workload.next_event(), proxy).await?;
        firsts.push(ms(first.outcome.duration));
        check(&first.outcome, &*workload.expect);
        if round + 1 == cold_starts.max(1) {
            for _ in 0..warm {
                let next = instance.invoke(workload.next_event(), proxy).await?;
                warms.push(ms(next.outcome.duration));
                check(&next.outcome, &*workload.expect);
            }
            peak = instance.peak_rss_kib();
        }
        instance.stop().await;
    }
    Ok(FunctionRun {
        name: launch.name.clone(),
        init_ms: Summary::of(&inits),
        first_ms: Summary::of(&firsts),
        warm_ms: Summary::of(&warms),
        peak_rss_kib: peak,
        unexpected,
        unexpected_sample,
        init_requests,
        load: String::new(),
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
