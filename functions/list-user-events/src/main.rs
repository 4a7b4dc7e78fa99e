use std::convert::Infallible;

use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (store, runtime) = storage::lambda::init().await?;
    runtime
        .run_http(service_fn(|request| async {
            Ok::<_, Infallible>(list_user_events::handle(&store, request).await)
        }))
        .await
}
