use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use local_api::{LocalApi, StoreChoice};

/// Serves the users API locally, with the routes of template.yaml.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Use the DynamoDB at this URL (DynamoDB Local) instead of memory.
    #[arg(long, env = "DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: Option<String>,
    /// Table to use with --dynamodb-endpoint; created if missing.
    #[arg(long, env = "TABLE_NAME", default_value = "users-local")]
    table: String,
    /// The SAM template to read routes and the table definition from.
    #[arg(long, env = "TEMPLATE", default_value_os_t = local_api::default_template_path())]
    template: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::telemetry::init();
    let args = Args::parse();
    let store = match args.dynamodb_endpoint {
        Some(endpoint) => StoreChoice::DynamoDb {
            endpoint,
            table: args.table,
        },
        None => StoreChoice::Memory,
    };
    let api = LocalApi::bind(
        SocketAddr::new(args.bind, args.port),
        &args.template,
        &store,
    )
    .await?;
    let address = api.local_addr()?;
    tracing::info!(url = %format!("http://{address}"), store = ?store, "local API listening");
    api.serve(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
