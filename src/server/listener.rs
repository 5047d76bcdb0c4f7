//! The accept loop at the edge: HTTP/1.1 connections under a connection limit, each with a
//! header-read timeout, drained gracefully on shutdown.
//!
//! Why not `axum::serve`: it exposes neither hyper's header-read timeout nor a connection limit,
//! so a client that sends its headers one byte a second holds a connection (and a task) forever,
//! and ten thousand of them exhaust file descriptors. Here a connection beyond
//! `server.max_connections` waits in the kernel's accept backlog until one closes, and a
//! connection whose request head is not complete within `server.header_read_timeout_ms` is closed.
//! Body-read deadlines and early 413s are the middleware's (`middleware::observe`).

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Edge limits of the accept loop (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets every
/// open connection finish its in-flight request (idle keep-alive connections close at once).
/// Resolves when the last connection has closed; the caller bounds that wait.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: EdgeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Each connection task holds a clone; the loop waits for all of them to drop at the end.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut stop = stop_rx.clone();
    loop {
        // A free connection slot first: past the limit, new connections wait in the backlog.
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let (tcp, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = app
            .clone()
            .map_request(|req: hyper::Request<Incoming>| req.map(axum::body::Body::new));
        let mut stop_conn = stop_rx.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _alive = alive;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let conn =
                builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = stopped(&mut stop_conn) => {}
            }
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error while draining");
            }
        });
    }
    drop(listener);
    drop(alive_tx);
    // Every connection task holds a sender; `recv` returns `None` once the last one is gone.
    let _ = alive_rx.recv().await;
}

/// Resolves once the stop flag is set (the watch guard is released inside, so the caller's
/// future stays `Send`).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
