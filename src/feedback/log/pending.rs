//! Futures for queued appends. Submitting fixes a record's place in the log immediately;
//! these `'static` handles then resolve once the writer has made it durable, so a caller
//! can enqueue in order now and await somewhere else (e.g. in a spawned task).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::LogError;
use super::writer::Reply;

/// Resolves to the sequence number of one submitted record once it is durable. Dropping
/// it does not cancel the write.
#[derive(Debug)]
pub struct PendingAppend {
    rx: oneshot::Receiver<Reply>,
}

impl PendingAppend {
    pub(super) fn new(rx: oneshot::Receiver<Reply>) -> Self {
        Self { rx }
    }
}

impl Future for PendingAppend {
    type Output = Result<u64, LogError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(first_seq)
    }
}

/// Resolves to the consecutive sequence numbers of a submitted batch once all of it is
/// durable. Dropping it does not cancel the write.
#[derive(Debug)]
pub struct PendingBatch {
    rx: oneshot::Receiver<Reply>,
    count: u64,
}

impl PendingBatch {
    pub(super) fn new(rx: oneshot::Receiver<Reply>, count: u64) -> Self {
        Self { rx, count }
    }
}

impl Future for PendingBatch {
    type Output = Result<Vec<u64>, LogError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let count = self.count;
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|reply| first_seq(reply).map(|first| (first..first + count).collect()))
    }
}

fn first_seq(reply: Result<Reply, oneshot::error::RecvError>) -> Result<u64, LogError> {
    reply.map_err(|_| LogError::Closed)?.map_err(LogError::from)
}
