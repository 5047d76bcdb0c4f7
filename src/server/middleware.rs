//! Cross-cutting request handling: request id (echoed or generated), query-length limit, the
//! request span, in-flight gauge, request metrics by route template and one access-log line
//! (at debug level: the access log is the metrics; `RUST_LOG=recserve::server=debug` shows it).

use super::error::ApiError;
use super::state::AppState;
use super::{RequestId, RouteLabels};
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// The body-read edge, before any handler: a `Content-Length` above `max_body_bytes` is refused
/// with 413 before a byte of the body is read, and a body must arrive whole within
/// `body_read_timeout_ms` (else 408), so a client trickling its body cannot hold a handler. A
/// request without a body (every GET) passes untouched.
async fn read_body(req: Request, cfg: &super::config::ServerConfig) -> Result<Request, ApiError> {
    use http_body::Body as _;
    let hint = req.body().size_hint();
    if hint.exact() == Some(0) {
        return Ok(req);
    }
    if hint.lower() > cfg.max_body_bytes as u64 {
        return Err(ApiError::PayloadTooLarge);
    }
    let (parts, body) = req.into_parts();
    let limit = cfg.max_body_bytes;
    let deadline = std::time::Duration::from_millis(cfg.body_read_timeout_ms);
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Err(_) => return Err(ApiError::RequestTimeout),
        Ok(Err(e)) => {
            // Over the limit while streaming (no Content-Length), or the client went away.
            return Err(if is_length_limit(&e) {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad("invalid_body", format!("cannot read the request body: {e}"))
            });
        }
        Ok(Ok(b)) => b,
    };
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = src {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        src = err.source();
    }
    false
}

/// A random (v4) UUID for a request that brought no id of its own, from the thread's seeded
/// generator: `Uuid::new_v4` asks the kernel (a `getrandom` syscall) for every request, and a
/// trace id needs uniqueness, not secrecy (impression ids are issued elsewhere, keyed).
fn generated_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

struct InFlight<'a>(&'a prometheus::IntGauge);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub async fn observe(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let client_rid = req.headers().get("x-request-id").and_then(valid_request_id);
    let from_client = client_rid.is_some();
    let rid = client_rid.unwrap_or_else(generated_request_id);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = req.method().clone();
    req.extensions_mut()
        .insert(RequestId(rid.clone(), from_client));

    st.metrics.in_flight.inc();
    let _guard = InFlight(&st.metrics.in_flight);
    let too_long = req
        .uri()
        .query()
        .is_some_and(|q| q.len() > st.cfg.server.max_query_bytes);
    let span = tracing::info_span!("request", request_id = %rid, method = %method, route = %route);
    let mut resp = if too_long {
        ApiError::UriTooLong.into_response()
    } else {
        match read_body(req, &st.cfg.server).await {
            Ok(req) => next.run(req).instrument(span.clone()).await,
            Err(e) => e.into_response(),
        }
    };

    let status = resp.status();
    let class = match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let (variant, strategy) = resp
        .extensions()
        .get::<RouteLabels>()
        .map_or(("none".to_string(), "none"), |l| {
            (l.variant.clone(), l.strategy)
        });
    let elapsed = start.elapsed();
    let labels = [route.as_str(), class, variant.as_str(), strategy];
    st.metrics.requests.with_label_values(&labels).inc();
    st.metrics
        .request_seconds
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    span.in_scope(|| {
        tracing::debug!(status = status.as_u16(), latency_us = elapsed.as_micros() as u64, variant = %variant, strategy, "request")
    });
    resp
}
