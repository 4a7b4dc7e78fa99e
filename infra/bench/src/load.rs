//! Side by side under load: an HTTP server pinned to one core, `wrk` pinned
//! to the other, on loopback; `POST /users` (a fresh address per request,
//! from a Lua script) and `GET /users/{id}` of one stored user.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
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
    /// Responses that were not 2xx/3xx, and socket errors.
    pub(crate) errors: u64,
    /// The server's peak resident memory after this run, KiB.
    pub(crate) peak_rss_kib: u64,
    /// Its resident memory before any load, KiB.
    pub(crate) idle_rss_kib: u64,
    pub(crate) load: String,
}

/// Starts `server`, loads it with both scenarios, stops it.
/// `command` runs in `dir`; `{port}` in it is replaced by the port.
pub(crate) async fn run(
    name: &str,
    command: &[String],
    dir: &Path,
    plan: &crate::Plan,
    scripts: &Path,
    log_dir: &Path,
) -> Result<Vec<LoadRun>, crate::Error> {
    let port = crate::free_port()?;
    let mut process = spawn(name, command, dir, port, log_dir)?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let id = create_first_user(&http, &base, &mut process, name).await?;
    let idle_rss_kib = process.id().map_or(0, |pid| crate::rss_kib(pid, "VmRSS"));
    let mut runs = Vec::new();
    let get_url = format!("{base}/users/{id}");
    let post_script = scripts.join("post-user.lua");
    for (scenario, url, script) in [
        ("GET /users/{id}", get_url.as_str(), None),
        (
            "POST /users",
            format!("{base}/users").as_str(),
            Some(&post_script),
        ),
    ] {
        if plan.warm_up_seconds > 0 {
            wrk(url, script, plan.connections, plan.warm_up_seconds, "warm").await?;
        }
        let output = wrk(url, script, plan.connections, plan.load_seconds, scenario).await?;
        let mut run = parse_wrk(&output).ok_or_else(|| {
            crate::Error::msg(format!("cannot read wrk's output for {}:\n{output}", name))
        })?;
        run.server = name.to_owned();
        run.scenario = scenario.to_owned();
        run.peak_rss_kib = process.id().map_or(0, |pid| crate::rss_kib(pid, "VmHWM"));
        run.idle_rss_kib = idle_rss_kib;
        run.load = crate::load_average();
        runs.push(run);
    }
    let _ = process.kill().await;
    Ok(runs)
}

fn spawn(
    name: &str,
    command: &[String],
    dir: &Path,
    port: u16,
    log_dir: &Path,
) -> Result<Child, crate::Error> {
    let log = std::fs::File::create(log_dir.join(format!("load-{name}.log")))?;
    let args = command
        .iter()
        .map(|arg| arg.replace("{port}", &port.to_string()));
    Ok(Command::new("taskset")
        .arg("-c")
        .arg(crate::FUNCTION_CORE)
        .args(args)
        .current_dir(dir)
        .env("NODE_ENV", "production")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

/// Waits for the server to answer, then creates the user the GET run reads.
async fn create_first_user(
    http: &reqwest::Client,
    base: &str,
    process: &mut Child,
    name: &str,
) -> Result<String, crate::Error> {
    for _ in 0..300 {
        if let Ok(Some(status)) = process.try_wait() {
            return Err(crate::Error::msg(format!(
                "{name} exited at start: {status}"
            )));
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
            return match (status.as_u16(), body.get("id").and_then(|v| v.as_str())) {
                (201, Some(id)) => Ok(id.to_owned()),
                _ => Err(crate::Error::msg(format!(
                    "{name}: POST /users answered {status}: {body}"
                ))),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(crate::Error::msg(format!(
        "{name} did not answer within 30 s"
    )))
}

async fn wrk(
    url: &str,
    script: Option<&PathBuf>,
    connections: u32,
    seconds: u64,
    what: &str,
) -> Result<String, crate::Error> {
    let mut command = Command::new("taskset");
    command
        .args(["-c", crate::LOAD_CORE, "wrk", "-t1", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", seconds.max(1)))
        .arg("--timeout")
        .arg("5s");
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().await?;
    if !output.status.success() {
        return Err(crate::Error::msg(format!(
            "wrk ({what}) failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Reads requests/s, the latency distribution and errors from wrk's report.
fn parse_wrk(output: &str) -> Option<LoadRun> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut errors = 0;
    for line in output.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => rps = value.parse().ok(),
            (Some("50%"), Some(value)) => p50 = duration_ms(value),
            (Some("99%"), Some(value)) => p99 = duration_ms(value),
            (Some("Non-2xx"), _) => {
                errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            (Some("Socket"), Some("errors:")) => {
                errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    Some(LoadRun {
        server: String::new(),
        scenario: String::new(),
        rps: rps?,
        p50_ms: p50?,
        p99_ms: p99?,
        errors,
        peak_rss_kib: 0,
        idle_rss_kib: 0,
        load: String::new(),
    })
}

/// wrk's `812.00us`, `1.23ms`, `2.00s` as milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number / 1000.0),
        "ms" => Some(number),
        "s" => Some(number * 1000.0),
        "m" => Some(number * 60_000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read() {
        let output = "Running 2s test @ http://127.0.0.1:1/users\n  1 threads and 32 connections\n  Latency Distribution\n     50%  412.00us\n     75%  500.00us\n     90%    1.01ms\n     99%    2.50ms\n  1000 requests in 2.00s, 1.00MB read\n  Non-2xx or 3xx responses: 7\nRequests/sec:  50000.12\nTransfer/sec:      1.00MB\n";
        let run = parse_wrk(output).expect("parsed");
        assert_eq!(run.rps, 50000.12);
        assert_eq!(run.p50_ms, 0.412);
        assert_eq!(run.p99_ms, 2.5);
        assert_eq!(run.errors, 7);
    }
}
