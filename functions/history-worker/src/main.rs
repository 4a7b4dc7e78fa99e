use std::convert::Infallible;

use common::stream::StreamEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let store = common::lambda::init().await?;
    run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let budget = history_worker::budget(event.context.deadline());
        let store = &store;
        async move { Ok::<_, Infallible>(history_worker::handle(store, event.payload, budget).await) }
    }))
    .await
}
