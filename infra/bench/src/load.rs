//! Side by side under load: an HTTP server pinned to one core, `wrk` pinned
//! to the other, on loopback; `POST /users` (a fresh address per request)
//! and `GET /users/{id}` of one stored user. `wrk.lua` makes the requests
//! and reports the figures.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

/// One load run's figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadRun {
    pub(crate) server: String,
    /// `GET /users/{id}` or `POST /users`.
    pub(crate) scenario: String,
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Responses with a status of 400 or more, and socket errors.
    pub(crate) errors: u64,
    /// The server's peak resident memory after this run, KiB.
    pub(crate) peak_rss_kib: u64,
    /// Its resident memory before any load, KiB.
    pub(crate) idle_rss_kib: u64,
    pub(crate) load: String,
}

/// What `wrk.lua` prints at the end of a run.
#[derive(Debug, Deserialize)]
struct WrkSummary {
    requests: u64,
    seconds: f64,
    errors: u64,
    p50_us: f64,
    p99_us: f64,
}

/// Starts `server`, loads it with both scenarios, stops it.
/// `command` runs in `dir`; `{port}` in it is replaced by the port.
pub(crate) async fn run(
    name: &str,
    command: &[String],
    dir: &Path,
    plan: &crate::Plan,
    script: &Path,
    log_dir: &Path,
) -> anyhow::Result<Vec<LoadRun>> {
    let port = crate::free_port()?;
    let log = std::fs::File::create(log_dir.join(format!("load-{name}.log")))?;
    let args = command
        .iter()
        .map(|arg| arg.replace("{port}", &port.to_string()));
    let mut process = Command::new("taskset")
        .args(["-c", &crate::FUNCTION_CORE.to_string()])
        .args(args)
        .current_dir(dir)
        .env("NODE_ENV", "production")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let id = create_first_user(&base, &mut process)
        .await
        .with_context(|| name.to_owned())?;
    let idle_rss_kib = process.id().map_or(0, |pid| crate::rss_kib(pid, false));
    let mut runs = Vec::new();
    for (scenario, path, post) in [
        ("GET /users/{id}", format!("/users/{id}"), false),
        ("POST /users", "/users".to_owned(), true),
    ] {
        let url = format!("{base}{path}");
        if plan.warm_up_seconds > 0 {
            wrk(&url, script, post, plan.connections, plan.warm_up_seconds).await?;
        }
        let wrk = wrk(&url, script, post, plan.connections, plan.load_seconds).await;
        let wrk = wrk.with_context(|| format!("{name}, {scenario}"))?;
        runs.push(LoadRun {
            server: name.to_owned(),
            scenario: scenario.to_owned(),
            rps: wrk.requests as f64 / wrk.seconds,
            p50_ms: wrk.p50_us / 1000.0,
            p99_ms: wrk.p99_us / 1000.0,
            errors: wrk.errors,
            peak_rss_kib: process.id().map_or(0, |pid| crate::rss_kib(pid, true)),
            idle_rss_kib,
            load: crate::load_average(),
        });
    }
    let _ = process.kill().await;
    Ok(runs)
}

/// Waits for the server to answer, then creates the user the GET run reads.
async fn create_first_user(base: &str, process: &mut Child) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Some(status) = process.try_wait()? {
            anyhow::bail!("exited at start: {status}");
        }
        let response = http
            .post(format!("{base}/users"))
            .header("content-type", "application/json")
            .body(r#"{"email":"first@example.com","name":"First User"}"#)
            .send()
            .await;
        if let Ok(response) = response {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            return match (status.as_u16(), body["id"].as_str()) {
                (201, Some(id)) => Ok(id.to_owned()),
                _ => anyhow::bail!("POST /users answered {status}: {body}"),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("did not answer within 30 s")
}

/// Runs wrk (one thread) against `url` for `seconds`.
async fn wrk(
    url: &str,
    script: &Path,
    post: bool,
    connections: u32,
    seconds: u64,
) -> anyhow::Result<WrkSummary> {
    let output = Command::new("taskset")
        .args(["-c", &crate::LOAD_CORE.to_string()])
        .args(["wrk", "-t1", "--timeout", "5s"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", seconds.max(1)))
        .arg("-s")
        .arg(script)
        .arg(url)
        .env("WRK_POST", if post { "1" } else { "0" })
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout.lines().rfind(|line| line.starts_with('{'));
    let summary = summary.with_context(|| format!("no summary in wrk's output:\n{stdout}"))?;
    Ok(serde_json::from_str(summary)?)
}
