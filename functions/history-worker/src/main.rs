use std::convert::Infallible;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use storage::stream::StreamEvent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (store, runtime) = storage::lambda::init().await?;
    runtime.run_stream_worker(service_fn(|event: LambdaEvent<StreamEvent>| {
        let store = &store;
        async move { Ok::<_, Infallible>(history_worker::handle_invocation(store, event).await) }
    }))
    .await
}
