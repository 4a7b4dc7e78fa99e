//! Runs functions as Lambda does, with the local API's launcher: each
//! process started with `AWS_LAMBDA_RUNTIME_API` pointing at a Runtime API
//! of its own, pinned to one core, its init timed from spawn to its first
//! `next` request; then fed events, interleaved across the functions
//! compared.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use local_api::lambda::instance::{Instance, Launch};
use local_api::lambda::runtime_api::Outcome;
use serde::Serialize;

use crate::proxy::{Call, DynamoProxy};
use crate::stats::Summary;

/// How long a function may take to initialise before the harness gives up.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a function may take per invocation before the harness gives up.
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Lambda's variables that do not depend on the function, and fake credentials.
#[rustfmt::skip]
const LAMBDA_ENV: &[(&str, &str)] = &[
    ("LANG", "C.UTF-8"), ("TZ", ":UTC"), ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"), ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
    ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"), ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "local"),
    ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_SESSION_TOKEN", "local"),
];

/// Everything measured for one function; durations in ms.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct FunctionRun {
    pub(crate) name: String,
    /// Each cold start's init, first invocation, and their sum.
    init: Vec<f64>,
    first: Vec<f64>,
    cold: Vec<f64>,
    /// The warm invocations.
    warm: Vec<f64>,
    /// Each warm invocation's own time: its duration minus the time it
    /// waited on DynamoDB.
    own: Vec<f64>,
    /// Each cold start's wait on DynamoDB during init.
    init_wait: Vec<f64>,
    /// The CPU time the process ran per measured warm invocation, by the
    /// kernel's count (all its threads), in ms.
    cpu_per_invocation: Option<f64>,
    /// Peak RSS of the process that served the warm invocations, in KiB.
    pub(crate) peak_rss_kib: u64,
    /// Invocations whose answer was not the expected one, and one of them.
    pub(crate) unexpected: usize,
    unexpected_sample: Option<String>,
    /// DynamoDB requests made during init.
    init_requests: usize,
    /// The load average when its warm run ended.
    pub(crate) load: String,
    #[serde(skip)]
    sent: usize,
}

impl FunctionRun {
    pub(crate) fn init_ms(&self) -> Summary {
        Summary::of(&self.init)
    }

    pub(crate) fn first_ms(&self) -> Summary {
        Summary::of(&self.first)
    }

    pub(crate) fn cold_ms(&self) -> Summary {
        Summary::of(&self.cold)
    }

    pub(crate) fn warm_ms(&self) -> Summary {
        Summary::of(&self.warm)
    }

    pub(crate) fn own_ms(&self) -> Summary {
        Summary::of(&self.own)
    }

    /// Init minus its wait on DynamoDB, per cold start.
    pub(crate) fn init_without_dynamo_ms(&self) -> Summary {
        let own: Vec<f64> = self
            .init
            .iter()
            .zip(&self.init_wait)
            .map(|(init, wait)| init - wait)
            .collect();
        Summary::of(&own)
    }

    pub(crate) fn init_wait_ms(&self) -> Summary {
        Summary::of(&self.init_wait)
    }

    /// The mean CPU time per warm invocation, in ms, when the kernel
    /// counted it.
    pub(crate) fn cpu_ms(&self) -> Option<f64> {
        self.cpu_per_invocation
    }

    /// Sends `subject`'s next event to `instance`; its duration and its
    /// own time (the duration minus the wait on DynamoDB).
    async fn invoke(
        &mut self,
        subject: &Subject<'_>,
        instance: &mut Instance,
        proxy: &DynamoProxy,
    ) -> anyhow::Result<(f64, f64)> {
        let (outcome, calls) = invoke(instance, (subject.event)(self.sent), proxy).await?;
        self.sent += 1;
        if !subject.expect.holds(&outcome) {
            self.unexpected += 1;
            let body = String::from_utf8_lossy(&outcome.body);
            self.unexpected_sample
                .get_or_insert(body.chars().take(400).collect());
        }
        let duration = ms(outcome.duration);
        Ok((duration, duration - waited(&calls)))
    }
}

/// The time `calls` waited on DynamoDB, in ms.
fn waited(calls: &[Call]) -> f64 {
    calls.iter().map(|call| call.wait_ms).sum()
}

/// How to start `command` as Lambda would, pinned to the function core,
/// with Lambda's variables, fake credentials and `env`; its output goes to
/// `logs/<name>.log`.
pub(crate) fn launch(
    name: &str,
    command: &[String],
    dir: PathBuf,
    env: &[(String, String)],
    logs: &Path,
) -> Launch {
    let own = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
    ];
    let fixed = LAMBDA_ENV.iter().map(|&(k, v)| (k, v.to_owned()));
    let lambda = own.into_iter().chain(fixed).map(|(k, v)| (k.to_owned(), v));
    Launch {
        name: name.to_owned(),
        arn: "arn:aws:lambda:us-east-1:000000000000:function:bench".to_owned(),
        command: command.to_vec(),
        dir,
        env: lambda.chain(env.iter().cloned()).collect(),
        init_timeout: INIT_TIMEOUT,
        output: Some(logs.join(format!("{name}.log"))),
        kept_lines: None,
        cpu: Some(crate::FUNCTION_CORE),
    }
}

/// Starts `launch`; with the DynamoDB requests its init made.
pub(crate) async fn start(
    launch: &Launch,
    proxy: &DynamoProxy,
) -> anyhow::Result<(Instance, Vec<Call>)> {
    proxy.take();
    let instance = launch.start().await.with_context(|| launch.name.clone())?;
    Ok((instance, proxy.take()))
}

/// Sends one event; with the DynamoDB requests it made.
pub(crate) async fn invoke(
    instance: &mut Instance,
    event: Vec<u8>,
    proxy: &DynamoProxy,
) -> anyhow::Result<(Outcome, Vec<Call>)> {
    let outcome = instance.invoke(event.into(), INVOCATION_TIMEOUT).await?;
    Ok((outcome, proxy.take()))
}

/// The answer an invocation should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Any answer that is not an error.
    Answer,
    /// An API Gateway proxy response with this status.
    Status(u16),
    /// A stream batch answer without item failures.
    NoBatchFailures,
}

impl Expect {
    pub(crate) fn holds(self, outcome: &Outcome) -> bool {
        let json = || serde_json::from_slice::<serde_json::Value>(&outcome.body).ok();
        !outcome.failed
            && match self {
                Self::Answer => true,
                Self::Status(status) => status_of(&outcome.body) == Some(status),
                Self::NoBatchFailures => json()
                    .is_some_and(|v| v["batchItemFailures"].as_array().is_some_and(Vec::is_empty)),
            }
    }
}

/// The HTTP status of a `lambda_http` answer (`{"statusCode": 201, ...}`).
pub(crate) fn status_of(body: &[u8]) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    u16::try_from(value.get("statusCode")?.as_u64()?).ok()
}

/// One function to measure: how it starts, the event of invocation `n`
/// (counted across its runs, so no run reuses another's events), and the
/// answer it should get.
pub(crate) struct Subject<'a> {
    pub(crate) launch: Launch,
    pub(crate) event: Box<dyn Fn(usize) -> Vec<u8> + 'a>,
    pub(crate) expect: Expect,
}

impl<'a> Subject<'a> {
    pub(crate) fn new(
        launch: Launch,
        expect: Expect,
        event: impl Fn(usize) -> Vec<u8> + 'a,
    ) -> Self {
        Self {
            launch,
            event: Box::new(event),
            expect,
        }
    }
}

/// Measures `subjects` side by side. First the warm runs: one instance
/// of each subject, all started, then invoked in turn (A, B, C, A, B, C,
/// ...), a fifth of `warm` rounds unmeasured and then `warm` measured, and
/// each instance's peak RSS; so DynamoDB Local's state (its JIT, the size
/// of its tables) and a burst of load on the machine reach every subject
/// alike. Then `cold_starts` rounds of one cold start (and one invocation)
/// per subject, interleaved the same way.
pub(crate) async fn measure(
    subjects: &[Subject<'_>],
    cold_starts: usize,
    warm: usize,
    proxy: &DynamoProxy,
) -> anyhow::Result<Vec<FunctionRun>> {
    let name = |s: &Subject<'_>| FunctionRun {
        name: s.launch.name.clone(),
        ..Default::default()
    };
    let mut runs: Vec<FunctionRun> = subjects.iter().map(name).collect();
    let mut instances = Vec::with_capacity(subjects.len());
    for subject in subjects {
        instances.push(start(&subject.launch, proxy).await?.0);
    }
    let mut cpu_before = Vec::new();
    for n in 0..warm / 5 + warm {
        if n == warm / 5 {
            cpu_before = instances.iter().map(cpu_ns).collect();
        }
        for ((subject, run), instance) in subjects.iter().zip(&mut runs).zip(&mut instances) {
            let (duration, own) = run.invoke(subject, instance, proxy).await?;
            if n >= warm / 5 {
                run.warm.push(duration);
                run.own.push(own);
            }
        }
    }
    for ((run, instance), before) in runs.iter_mut().zip(instances).zip(cpu_before) {
        let ran = cpu_ns(&instance)
            .zip(before)
            .map(|(after, before)| after.saturating_sub(before));
        run.cpu_per_invocation = ran.map(|ns| ns as f64 / 1e6 / warm as f64);
        run.peak_rss_kib = instance.id().map_or(0, |pid| crate::rss_kib(pid, true));
        run.load = crate::load_average();
        instance.stop().await;
    }
    crate::settle().await;
    for _ in 0..cold_starts {
        for (subject, run) in subjects.iter().zip(&mut runs) {
            let (mut instance, init_calls) = start(&subject.launch, proxy).await?;
            run.init_requests = init_calls.len();
            let init = ms(instance.init);
            let (first, _) = run.invoke(subject, &mut instance, proxy).await?;
            run.init.push(init);
            run.init_wait.push(waited(&init_calls));
            run.first.push(first);
            run.cold.push(init + first);
            instance.stop().await;
        }
    }
    Ok(runs)
}

/// The CPU time all of `instance`'s threads have run, in ns.
fn cpu_ns(instance: &Instance) -> Option<u64> {
    process_cpu_ns(instance.id()?)
}

/// The CPU time all of process `pid`'s threads have run, in ns, from
/// `/proc/<pid>/task/*/schedstat`: the kernel's count, which no timer of
/// the harness's shares. `None` when the kernel does not keep it.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let pid = i32::try_from(pid).ok()?;
    let tasks = procfs::process::Process::new(pid).ok()?.tasks().ok()?;
    let ran: u64 = tasks
        .flatten()
        .filter_map(|task| task.schedstat().ok())
        .map(|stat| stat.sum_exec_runtime)
        .sum();
    (ran > 0).then_some(ran)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against the kernel's other count of the same time: the
    /// user and system ticks of `/proc/<pid>/stat` (whole ticks, so the
    /// two agree to within a few of them).
    #[test]
    fn cpu_time_agrees_with_the_kernels_tick_count() -> anyhow::Result<()> {
        use procfs::ticks_per_second;
        let busy = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 30";
        let mut child = std::process::Command::new("sh")
            .args(["-c", busy])
            .spawn()?;
        let pid = child.id();
        let process = procfs::process::Process::new(i32::try_from(pid)?)?;
        // Until the loop is done and the shell sleeps.
        while process.stat()?.state != 'S' {
            std::thread::sleep(Duration::from_millis(20));
        }
        let ran = process_cpu_ns(pid);
        let stat = process.stat()?;
        child.kill()?;
        child.wait()?;
        let ran = ran.context("no schedstat")? as f64 / 1e9;
        let ticks = (stat.utime + stat.stime) as f64 / ticks_per_second() as f64;
        assert!(ran > 0.05, "the loop ran {ran} s");
        assert!(
            (ran - ticks).abs() < 0.05,
            "schedstat {ran} s, stat {ticks} s"
        );
        Ok(())
    }
}
