use std::convert::Infallible;

use common::stream::StreamEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let store = common::lambda::init().await?;
    common::lambda::run_stream_worker(service_fn(|event: LambdaEvent<StreamEvent>| {
        let store = &store;
        async move { Ok::<_, Infallible>(history_worker::handle_invocation(store, event).await) }
    }))
    .await
}
