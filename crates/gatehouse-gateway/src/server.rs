//! The listener: connection handling, client timeouts, graceful shutdown, and the rule that
//! gatehouse never listens beyond loopback without a master key.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use gatehouse_config::GatehouseSettings;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;

use crate::Gateway;
use crate::routes;

/// Refusal to listen on a non-loopback address without a master key.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to listen on {addr} without a master key: anyone who can reach this address could \
     spend your provider keys. Set general_settings.master_key (or LITELLM_MASTER_KEY), or listen \
     on loopback only with --host 127.0.0.1"
)]
pub struct ExposureError {
    /// The address that was asked for.
    pub addr: SocketAddr,
}

/// Security invariant 8: without a master key, only loopback addresses are allowed.
pub fn check_exposure(addr: SocketAddr, gw: &Gateway) -> Result<(), ExposureError> {
    if gw.accounts.keys.enabled() || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ExposureError { addr })
    }
}

/// Serves `gw` on `listener` until `shutdown` resolves, then stops accepting, lets in-flight
/// requests and streams finish (at most `settings.shutdown_timeout`), and returns.
pub async fn serve(
    listener: TcpListener,
    gw: Arc<Gateway>,
    settings: &GatehouseSettings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = routes::router(gw.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.client_header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let graceful = GracefulShutdown::new();
    // Connection tasks, so that those still open at the drain deadline can be stopped and
    // waited for: their requests then settle (spend recorded, reservations released)
    // before the spend writer is shut down.
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let first_byte_timeout = settings.client_header_timeout;
                conns.spawn(async move {
                    // A client must start its request within the header timeout; hyper's own
                    // header timer only starts once the protocol has been sniffed.
                    let mut probe = [0u8; 1];
                    match tokio::time::timeout(first_byte_timeout, stream.peek(&mut probe)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                    let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        let mut router = router.clone();
                        async move { router.call(req.map(axum::body::Body::new)).await }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }

    drop(listener);
    gw.start_draining();
    tracing::info!("shutting down: draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(settings.shutdown_timeout) => {
            tracing::warn!(
                timeout_secs = settings.shutdown_timeout.as_secs(),
                connections = conns.len(),
                "shutdown timeout reached; closing remaining connections"
            );
            conns.abort_all();
        }
    }
    // Dropping a connection's task drops its requests, which settle as they go.
    let joined = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if joined.is_err() {
        tracing::warn!("some connections did not stop within 5 s of being closed");
    }
    Ok(())
}
