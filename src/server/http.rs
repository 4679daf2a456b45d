//! The HTTP accept loop, with what `axum::serve` does not bound: the
//! number of TCP connections, and the time a client may take to send its
//! request headers.
//!
//! - Every accepted connection holds a permit of a semaphore sized a little
//!   above `limits.max_connections` for its whole life, WebSocket included,
//!   so a full server still has room to answer `serverBusy` and no flood of
//!   half-open connections can take more (accept waits for a permit).
//! - A connection whose request headers take longer than
//!   `limits.header_timeout_secs` is closed, whether it trickles bytes
//!   (hyper's header timeout) or sends none at all (the first-byte deadline
//!   here), so a silent client cannot hold a slot and a task forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// TCP connections accepted at most for `max_connections` WebSockets: a
/// margin for page loads and for telling the next browsers `serverBusy`.
pub fn connection_cap(max_connections: usize) -> usize {
    max_connections + max_connections / 16 + 16
}

/// A TCP stream that holds its accept permit until it is dropped (after
/// an upgrade, the WebSocket owns it), and fails its first read if no byte
/// comes in time: hyper's header timeout only starts with the first byte.
struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// Until the first byte arrives.
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(deadline) = self.first_byte.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header timeout",
                )));
            }
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.first_byte = None;
        }
        read
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `stop` is cancelled, then waits up to
/// `drain` for requests in flight (upgraded WebSockets close on their own).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    header_timeout: Duration,
    stop: CancellationToken,
    drain: Duration,
) {
    let permits = Arc::new(Semaphore::new(connection_cap(max_connections)));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors and the like: wait rather than spin.
                    warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Permitted {
            stream,
            _permit: permit,
            first_byte: Some(Box::pin(tokio::time::sleep(header_timeout))),
        });
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%error, "HTTP connection ended");
            }
        });
    }
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("some HTTP requests were still running at shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_to_say_the_server_is_busy() {
        assert_eq!(connection_cap(1), 17);
        assert_eq!(connection_cap(10_000), 10_641);
    }
}
