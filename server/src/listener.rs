//! The accept loop: what a connection may cost the server before it has sent anything
//! useful. Phones reach the server over the internet, so a slow or idle connection is
//! closed in bounded time and the number held open at once is capped.
//!
//! - **Header read timeout** (`HEADER_READ_TIMEOUT_SECS`): a connection must deliver a
//!   request's headers within this time of opening, or of its previous answer. Hyper
//!   runs one timer for both, so it bounds a slowloris (a header byte a second) and an
//!   idle kept-alive connection alike.
//! - **Request timeout** (`REQUEST_TIMEOUT_SECS`, in [`crate::app`]): from headers to
//!   answer, body upload included; past it, 408.
//! - **Connection cap** (`MAX_CONNECTIONS`): at the cap the loop stops accepting until
//!   one closes; new connections wait in the kernel's backlog instead of taking file
//!   handles.
//!
//! HTTP/1.1 only: phones and reverse proxies speak it, and TLS (with any HTTP/2) ends at
//! the proxy. Each request carries the peer's address as `ConnectInfo`, for the
//! per-address login throttle. On shutdown the loop stops accepting and waits for the
//! requests in flight; idle connections close at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Limits on connections, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time allowed for a request's headers, counted from the connection's start or its
    /// previous answer.
    pub header_read_timeout: Duration,
    /// Connections held open at once.
    pub max_connections: usize,
}

/// Accepts connections on `listener` and serves `app` on each until `shutdown`
/// resolves; then drains the requests in flight.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // At the cap, stop accepting: a slot frees when a connection closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file handles and the like: the failure is the kernel's, so
                    // pause instead of spinning, and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req
        });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Timeouts and clients that hang up are routine; never an error line.
                tracing::debug!(error = %e, "connection closed");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
