//! Admission control for the business routes: ONE in-flight limit shared by all of them (a
//! `Router::layer` concurrency limit would be one limit per route), shed at once with 503 and
//! `Retry-After` when full. The permit travels with the request ([`Admission`]) so the
//! recommendation handler can move it into its pipeline task and hold it until the CPU work ends.
//! Operations and admin routes sit outside, so an overloaded server can still be seen and fixed.

use super::error::ApiError;
use super::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// The request's admission permit; a handler may [`take`](Admission::take) it to outlive the
/// response (it is released with the request otherwise).
#[derive(Clone)]
pub struct Admission(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl Admission {
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.lock().take()
    }
}

pub async fn admit(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let Ok(permit) = Arc::clone(&st.admission).try_acquire_owned() else {
        st.metrics.shed.inc();
        return ApiError::Overloaded.into_response();
    };
    let admission = Admission(Arc::new(Mutex::new(Some(permit))));
    req.extensions_mut().insert(admission.clone());
    let resp = next.run(req).await;
    drop(admission); // the permit goes now, unless a handler took it
    resp
}
