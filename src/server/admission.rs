//! Admission control for the business routes: ONE in-flight limit shared by all of them (a
//! `Router::layer` concurrency limit would be one limit per route), sized to the CPU work, in
//! front of it a short bounded FIFO queue with a queue-time deadline. A request that finds the
//! queue full, or gets no slot within `server.admission_queue_timeout_ms`, is answered at once
//! with 503 and `Retry-After` (`requests_shed_total{reason}`): under overload the excess is
//! refused cheaply instead of queueing where its budget burns, and (`server.close_on_shed`) its
//! connection is closed so a client that re-sends at once must reconnect first. The permit
//! travels with the request ([`Admission`]) so the recommendation handler can move it into its
//! pipeline task and hold it until the CPU work ends. Operations and admin routes sit outside, so
//! an overloaded server can still be seen and fixed.
//!
//! Order: the slots come from a fair (FIFO) semaphore, so queued requests are admitted in arrival
//! order, and a newcomer never takes a slot from the queue: a released permit goes to the oldest
//! waiter first.

use super::error::ApiError;
use super::metrics::Metrics;
use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use prometheus::{Histogram, IntCounter, IntGauge};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request was refused (the bounded `reason` label of `requests_shed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Every slot busy and the queue at its length.
    QueueFull,
    /// Queued, but no slot freed within the queue timeout.
    QueueTimeout,
}

impl Shed {
    pub fn as_str(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::QueueTimeout => "queue_timeout",
        }
    }
}

/// The in-flight slots and the queue in front of them.
pub struct AdmissionControl {
    slots: Arc<Semaphore>,
    limit: usize,
    queue_len: usize,
    queue_timeout: Duration,
    waiting: AtomicUsize,
    depth: IntGauge,
    wait: Histogram,
    shed_full: IntCounter,
    shed_timeout: IntCounter,
}

/// One place in the queue; leaving it (admitted, timed out, or the client gone and the request
/// dropped) always gives the place back.
struct Place<'a>(&'a AdmissionControl);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let n = self.0.waiting.fetch_sub(1, Ordering::AcqRel) - 1;
        self.0.depth.set(n as i64);
    }
}

impl AdmissionControl {
    /// `limit` requests in flight, up to `queue_len` more waiting at most `queue_timeout` each.
    pub fn new(limit: usize, queue_len: usize, queue_timeout: Duration, m: &Metrics) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            queue_len,
            queue_timeout,
            waiting: AtomicUsize::new(0),
            depth: m.admission_queue_depth.clone(),
            wait: m.admission_wait.clone(),
            shed_full: m.shed.with_label_values(&[Shed::QueueFull.as_str()]),
            shed_timeout: m.shed.with_label_values(&[Shed::QueueTimeout.as_str()]),
        }
    }

    /// The in-flight limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// The slots themselves (tests hold some to fill the limit).
    pub fn slots(&self) -> &Arc<Semaphore> {
        &self.slots
    }

    /// A slot now if one is free, else a place in the queue until one frees or the queue timeout
    /// passes; the permit and how long it waited. Refused at once when the queue is full.
    pub async fn acquire(&self) -> Result<(OwnedSemaphorePermit, Duration), Shed> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            self.wait.observe(0.0);
            return Ok((permit, Duration::ZERO));
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let place = Place(self);
        if before >= self.queue_len {
            drop(place);
            self.shed_full.inc();
            return Err(Shed::QueueFull);
        }
        self.depth.set(before as i64 + 1);
        let start = Instant::now();
        let got =
            tokio::time::timeout(self.queue_timeout, Arc::clone(&self.slots).acquire_owned()).await;
        drop(place);
        match got {
            Ok(Ok(permit)) => {
                let waited = start.elapsed();
                self.wait.observe(waited.as_secs_f64());
                Ok((permit, waited))
            }
            // The semaphore is never closed; treat it like a timeout should it be.
            Ok(Err(_)) | Err(_) => {
                self.shed_timeout.inc();
                Err(Shed::QueueTimeout)
            }
        }
    }
}

/// The request's admission: its permit, which a handler may [`take`](Admission::take) to outlive
/// the response (it is released with the request otherwise), and how long it queued.
#[derive(Clone)]
pub struct Admission {
    permit: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    waited: Duration,
}

impl Admission {
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.permit.lock().take()
    }

    /// Time spent in the admission queue (it counts against the request's budget).
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

pub async fn admit(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let (permit, waited) = match st.admission.acquire().await {
        Ok(got) => got,
        Err(_) => {
            let mut resp = ApiError::Overloaded.into_response();
            if st.cfg.server.close_on_shed {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return resp;
        }
    };
    let admission = Admission {
        permit: Arc::new(Mutex::new(Some(permit))),
        waited,
    };
    req.extensions_mut().insert(admission.clone());
    let resp = next.run(req).await;
    drop(admission); // the permit goes now, unless a handler took it
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(limit: usize, queue: usize, timeout_ms: u64) -> (Arc<AdmissionControl>, Metrics) {
        let m = Metrics::new().unwrap();
        let c = AdmissionControl::new(limit, queue, Duration::from_millis(timeout_ms), &m);
        (Arc::new(c), m)
    }

    /// Spawns an `acquire` and returns once it is waiting in the queue.
    async fn queue_one(
        c: &Arc<AdmissionControl>,
    ) -> tokio::task::JoinHandle<Result<Duration, Shed>> {
        let before = c.queued();
        let c2 = Arc::clone(c);
        let task = tokio::spawn(async move { c2.acquire().await.map(|(_, w)| w) });
        while c.queued() == before {
            tokio::task::yield_now().await;
        }
        task
    }

    #[tokio::test]
    async fn queue_full_is_refused_at_once_and_a_queued_request_times_out() {
        // Cost: the 50 ms queue timeout.
        let (c, m) = control(1, 1, 50);
        let (held, waited) = c.acquire().await.unwrap();
        assert_eq!(waited, Duration::ZERO);
        let queued = queue_one(&c).await;
        // The one place is taken: refused while the queued request still waits (no timer).
        assert_eq!(c.acquire().await.unwrap_err(), Shed::QueueFull);
        assert_eq!(c.queued(), 1, "the refusal did not wait for the queue");
        // The queued one gives up at the queue deadline and leaves the queue.
        assert_eq!(queued.await.unwrap().unwrap_err(), Shed::QueueTimeout);
        assert_eq!((c.queued(), m.admission_queue_depth.get()), (0, 0));
        assert_eq!(m.shed.with_label_values(&["queue_full"]).get(), 1);
        assert_eq!(m.shed.with_label_values(&["queue_timeout"]).get(), 1);
        drop(held);
        assert!(c.acquire().await.is_ok(), "a freed slot admits again");
    }

    #[tokio::test]
    async fn queued_requests_are_admitted_in_arrival_order_and_newcomers_do_not_jump_it() {
        let (c, m) = control(1, 8, 60_000);
        let (held, _) = c.acquire().await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5usize {
            let (c2, order) = (Arc::clone(&c), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let (permit, _) = c2.acquire().await.unwrap();
                order.lock().push(i);
                tokio::task::yield_now().await;
                drop(permit);
            }));
            // Each one is in the queue before the next arrives.
            while c.queued() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(m.admission_queue_depth.get(), 5);
        drop(held);
        // A newcomer while the queue drains waits behind it.
        let (late, _) = c.acquire().await.unwrap();
        order.lock().push(99);
        drop(late);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4, 99]);
        assert_eq!(m.admission_wait.get_sample_count(), 7);
    }

    #[tokio::test]
    async fn a_queued_request_whose_client_left_gives_its_place_back() {
        let (c, m) = control(1, 1, 60_000);
        let (_held, _) = c.acquire().await.unwrap();
        let queued = queue_one(&c).await;
        assert_eq!(m.admission_queue_depth.get(), 1);
        queued.abort(); // the request future is dropped (client disconnected)
        assert!(queued.await.unwrap_err().is_cancelled());
        assert_eq!((c.queued(), m.admission_queue_depth.get()), (0, 0));
    }
}
