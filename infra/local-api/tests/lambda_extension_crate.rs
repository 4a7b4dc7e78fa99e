//! The `lambda-extension` crate's internal extension, in the shape of the
//! runtime repository's `extension-internal-flush` example, under the
//! twin's Runtime API: the twin accepts what the crate sends (its register
//! request with `Lambda-Extension-Accept-Feature`, its `event/next` loop)
//! and gives it what it parses, and the crate's flush after the response
//! is part of the invocation.
//!
//! This binary is its own function: started with `AWS_LAMBDA_RUNTIME_API`
//! set, it runs `lambda_runtime` and the extension; started by
//! `cargo test`, it launches itself under the twin and checks.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is a failed test"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lambda_extension::{Extension, NextEvent};
use local_api::lambda::instance::Launch;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};

/// How long the extension's flush takes.
const FLUSH: Duration = Duration::from_millis(300);

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        if let Err(error) = runtime.block_on(function()) {
            eprintln!("{error}");
            std::process::exit(1);
        }
    } else {
        runtime.block_on(check());
        println!("lambda_extension_crate: ok");
    }
}

/// The function: a handler that signals the extension after each event,
/// and an extension that then "flushes" (waits, and writes `flushed-N` in
/// `$MARKERS`) before asking for its next event.
async fn function() -> Result<(), lambda_runtime::Error> {
    let markers = PathBuf::from(std::env::var("MARKERS")?);
    let (done, requests) = mpsc::unbounded_channel::<()>();
    let requests = Arc::new(Mutex::new(requests));
    let flushed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let extension = Extension::new()
        .with_events(&["INVOKE"])
        .with_events_processor(lambda_extension::service_fn(
            move |event: lambda_extension::LambdaEvent| {
                let (requests, flushed, markers) =
                    (Arc::clone(&requests), Arc::clone(&flushed), markers.clone());
                async move {
                    let NextEvent::Invoke(invoke) = event.next else {
                        return Err(lambda_extension::Error::from("not an INVOKE event"));
                    };
                    requests.lock().await.recv().await.ok_or("closed")?;
                    tokio::time::sleep(FLUSH).await;
                    let n = flushed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    std::fs::write(markers.join(format!("flushed-{n}")), invoke.request_id)?;
                    Ok::<(), lambda_extension::Error>(())
                }
            },
        ))
        .with_extension_name("internal-flush")
        .register()
        .await?;
    if extension.account_id.as_deref() != Some("000000000000") {
        return Err(format!("register answered account {:?}", extension.account_id).into());
    }
    let handler = lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
        let done = done.clone();
        async move {
            done.send(()).map_err(|e| e.to_string())?;
            Ok::<Value, lambda_runtime::Error>(serde_json::json!({"id": event.context.request_id}))
        }
    });
    tokio::try_join!(lambda_runtime::run(handler), extension.run())?;
    Ok(())
}

async fn check() {
    let markers = std::env::temp_dir().join(format!("extension-crate-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&markers).expect("markers folder");
    let exe = std::env::current_exe().expect("this binary");
    let env = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("AWS_LAMBDA_FUNCTION_NAME", "flush-test".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/flush-test".to_owned(),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("MARKERS", markers.display().to_string()),
    ];
    let launch = Launch {
        name: "flush-test".to_owned(),
        arn: "arn:aws:lambda:us-east-1:000000000000:function:flush-test".to_owned(),
        command: vec![exe.display().to_string()],
        dir: markers.clone(),
        env: env.map(|(k, v)| (k.to_owned(), v)).to_vec(),
        init_timeout: Duration::from_secs(10),
        output: None,
        kept_lines: None,
        cpu: None,
    };
    let mut instance = launch.start().await.expect("init with the extension");
    assert_eq!(instance.extensions(), ["internal-flush"]);
    for n in 1..=2 {
        let outcome = instance
            .invoke("{}".into(), Duration::from_secs(10))
            .await
            .expect("the runtime's response");
        assert!(!outcome.failed, "{:?}", outcome.body);
        let marker = markers.join(format!("flushed-{n}"));
        assert!(
            !marker.exists(),
            "invocation {n}: the response came before the flush"
        );
        let after = instance.settle().await.expect("the extension's next");
        assert!(
            after >= FLUSH,
            "invocation {n}: the extensions ran {after:?} after the response, less than the flush"
        );
        let id: Value = serde_json::from_slice(&outcome.body).expect("JSON");
        assert_eq!(
            std::fs::read_to_string(&marker).expect("flushed"),
            id["id"].as_str().expect("request id"),
            "the extension's INVOKE event named the runtime's request"
        );
    }
    instance.stop().await;
    let _ = std::fs::remove_dir_all(markers);
}
