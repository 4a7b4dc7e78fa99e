//! Side by side under load: an HTTP server pinned to one core, `wrk` pinned
//! to the other, on loopback; `POST /users` (a fresh address per request,
//! from a Lua script) and `GET /users/{id}` of one stored user.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::process::{Child, Command};
/// A server to load.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    /// What the report calls it.
    pub(crate) name: String,
    /// The program and its arguments; `{port}` is replaced by the port.
    pub(crate) command: Vec<String>,
    /// Its working directory.
    pub(crate) dir: PathBuf,
    /// Extra environment.
    pub(crate) env: Vec<(String, String)>,
}

/// One load run's figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadRun {
    /// The server.
    pub(crate) server: String,
    /// `GET /users/{id}` or `POST /users`.
    pub(crate) scenario: String,
    /// Requests per second over the run.
    pub(crate) rps: f64,
    /// Median latency, ms.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, ms.
    pub(crate) p99_ms: f64,
    /// Responses that were not 2xx/3xx, and socket errors.
    pub(crate) errors: u64,
    /// The server's peak resident memory after this run, KiB.
    pub(crate) peak_rss_kib: u64,
    /// Its resident memory before any load, KiB.
    pub(crate) idle_rss_kib: u64,
    /// The load average when the run ended.
    pub(crate) load: String,
}

/// The settings of every load run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Open connections.
    pub(crate) connections: u32,
    /// Measured duration.
    pub(crate) duration: Duration,
    /// Unmeasured run before it (JIT warm-up for Node.js and Python).
    pub(crate) warm_up: Duration,
}

/// Starts `server`, loads it with both scenarios, stops it.
pub(crate) async fn run(
    server: &Server,
    settings: Settings,
    scripts: &Path,
    log_dir: &Path,
) -> Result<Vec<LoadRun>, crate::Error> {
    let port = crate::free_port()?;
    let mut process = spawn(server, port, log_dir)?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let id = create_first_user(&http, &base, &mut process, &server.name).await?;
    let idle_rss_kib = process.id().map_or(0, crate::current_rss_kib);
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
        if !settings.warm_up.is_zero() {
            wrk(url, script, settings.connections, settings.warm_up, "warm").await?;
        }
        let output = wrk(
            url,
            script,
            settings.connections,
            settings.duration,
            scenario,
        )
        .await?;
        let mut run = parse_wrk(&output).ok_or_else(|| {
            crate::Error::msg(format!(
                "cannot read wrk's output for {}:\n{output}",
                server.name
            ))
        })?;
        run.server = server.name.clone();
        run.scenario = scenario.to_owned();
        run.peak_rss_kib = process.id().map_or(0, crate::peak_rss_kib);
        run.idle_rss_kib = idle_rss_kib;
        run.load = crate::load_average();
        runs.push(run);
    }
    let _ = process.kill().await;
    Ok(runs)
}

fn spawn(server: &Server, port: u16, log_dir: &Path) -> Result<Child, crate::Error> {
    let log = std::fs::File::create(log_dir.join(format!("load-{}.log", server.name)))?;
    let args: Vec<String> = server
        .command
        .iter()
        .map(|arg| arg.replace("{port}", &port.to_string()))
        .collect();
    Ok(Command::new("taskset")
        .arg("-c")
        .arg(crate::FUNCTION_CORE)
        .args(&args)
        .current_dir(&server.dir)
        .envs(server.env.iter().map(|(k, v)| (k, v)))
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
    duration: Duration,
    what: &str,
) -> Result<String, crate::Error> {
    let mut command = Command::new("taskset");
    command
        .args(["-c", crate::LOAD_CORE, "wrk", "-t1", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
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
