//! The cold-start baseline of the benchmarks: the smallest `lambda_runtime`
//! function (it answers every event with a greeting), built with the same
//! release profile as the users API functions. It needs no AWS permissions.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({ "message": "Hello, world!" }))
    }))
    .await
}
