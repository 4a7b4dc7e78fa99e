//! A router served on a free loopback port until dropped: the Runtime API,
//! the IAM proxy and the fault proxy each run as one.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// A running loopback server; it stops when dropped.
#[derive(Debug)]
pub struct LoopbackServer {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl LoopbackServer {
    /// Serves `router` on a free port of 127.0.0.1.
    pub async fn start(router: axum::Router) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { address, task })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
