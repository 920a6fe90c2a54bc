//! Request counts and latencies of the API, by method, matched route template and status.
//!
//! Recording sits on the hot path (tens of thousands of requests per second on two cores), so
//! it costs a clock read, a read-locked map lookup and three atomic additions; nothing is
//! allocated except the first time a (method, route, status) combination is seen. Labels stay
//! bounded: the route is axum's `MatchedPath` template, never the raw path, and anything that
//! matched no route is `unmatched`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response};
use parking_lot::RwLock;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::text::TextWriter;

/// The `path` label of a request that matched no route (404s of unknown paths): one series for
/// all of them, so a scanner cannot create a series per probed path.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the latency buckets, in seconds. Served requests take tens of microseconds to
/// a few milliseconds, so the usual Prometheus defaults (starting at 5 ms) would put nearly every
/// request in the first bucket; the top bounds cover conversations processed by a model.
pub const LATENCY_BOUNDS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

const REQUESTS: &str = "omi_http_requests_total";
const DURATION: &str = "omi_http_request_duration_seconds";

/// Every series seen so far, grouped by route template so that a lookup hashes the `&str` the
/// request carries without building an owned key.
#[derive(Default)]
pub struct HttpMetrics {
    by_path: RwLock<HashMap<Box<str>, Vec<Arc<Series>>>>,
}

struct Series {
    method: &'static str,
    status: u16,
    latency: Histogram,
}

impl HttpMetrics {
    pub fn record(&self, method: &'static str, path: &str, status: u16, latency: Duration) {
        // Fast path: the series exists (every request after the first of its kind).
        if let Some(series) = self
            .by_path
            .read()
            .get(path)
            .and_then(|list| find(list, method, status))
        {
            series.latency.observe(latency);
            return;
        }
        let mut by_path = self.by_path.write();
        let list = by_path.entry(path.into()).or_default();
        // Another request may have added it between the two locks.
        if let Some(series) = find(list, method, status) {
            series.latency.observe(latency);
            return;
        }
        let series = Series {
            method,
            status,
            latency: Histogram::default(),
        };
        series.latency.observe(latency);
        list.push(Arc::new(series));
    }

    /// Writes the request counter and the latency histogram, series sorted for stable output.
    pub fn render(&self, text: &mut TextWriter) {
        // Held for the whole rendering (microseconds, no await): it only keeps a request that
        // brings a new combination waiting, never one that records into an existing series.
        let by_path = self.by_path.read();
        let mut rows: Vec<(&str, &Series, HistogramSnapshot)> = by_path
            .iter()
            .flat_map(|(path, list)| list.iter().map(move |s| (&**path, &**s)))
            .map(|(path, series)| (path, series, series.latency.snapshot()))
            .collect();
        rows.sort_by(|a, b| (a.0, a.1.method, a.1.status).cmp(&(b.0, b.1.method, b.1.status)));

        text.family(
            REQUESTS,
            "counter",
            "HTTP requests answered, by method, matched route template and status.",
        );
        for (path, series, latency) in &rows {
            let status = series.status.to_string();
            text.sample(REQUESTS, &labels(path, series, &status), latency.count());
        }
        text.family(
            DURATION,
            "histogram",
            "Time from receiving a request to its response head, in seconds.",
        );
        for (path, series, latency) in &rows {
            let status = series.status.to_string();
            text.histogram(
                DURATION,
                &labels(path, series, &status),
                &LATENCY_BOUNDS,
                &latency.counts,
                latency.sum_seconds(),
            );
        }
    }
}

/// The labels of one request series; `status` is its status code as text.
fn labels<'a>(path: &'a str, series: &'a Series, status: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("method", series.method),
        ("path", path),
        ("status", status),
    ]
}

fn find<'a>(list: &'a [Arc<Series>], method: &str, status: u16) -> Option<&'a Arc<Series>> {
    list.iter()
        .find(|s| s.status == status && s.method == method)
}

/// Observations per bucket (not cumulative: one atomic addition per observation) and their sum
/// in nanoseconds. The count is the total of the buckets, so `_count` always equals the `+Inf`
/// bucket.
struct Histogram {
    counts: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        // A bucket counts observations up to and including its bound (`le`).
        let bucket = LATENCY_BOUNDS.partition_point(|bound| *bound < seconds);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_nanos: self.sum_nanos.load(Ordering::Relaxed),
        }
    }
}

struct HistogramSnapshot {
    counts: Vec<u64>,
    sum_nanos: u64,
}

impl HistogramSnapshot {
    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }
}

/// The method label: the standard methods by name, anything else as `other` (a client may send
/// any token as a method).
pub fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "PUT" => "PUT",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// Records every request that goes through it. Added outside the standard layers, so the status
/// is the one the client gets (a panic already turned into 500) and the latency covers them.
#[derive(Clone)]
pub struct RecordLayer {
    metrics: Arc<HttpMetrics>,
}

impl RecordLayer {
    pub fn new(metrics: Arc<HttpMetrics>) -> Self {
        RecordLayer { metrics }
    }
}

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Record {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Record<S> {
    inner: S,
    metrics: Arc<HttpMetrics>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Record<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RecordFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The template is an `Arc<str>` inside axum's extension: cloning it allocates nothing.
        let path = request.extensions().get::<MatchedPath>().cloned();
        RecordFuture {
            method: method_label(request.method()),
            path,
            metrics: self.metrics.clone(),
            started: Instant::now(),
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// Records when the response head is ready. A request whose client goes away before that is
    /// dropped unrecorded: it got no status.
    pub struct RecordFuture<F> {
        #[pin]
        inner: F,
        method: &'static str,
        path: Option<MatchedPath>,
        metrics: Arc<HttpMetrics>,
        started: Instant,
    }
}

impl<F, ResBody, E> Future for RecordFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.inner.poll(cx));
        if let Ok(response) = &outcome {
            let path = this.path.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
            this.metrics.record(
                this.method,
                path,
                response.status().as_u16(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(metrics: &HttpMetrics) -> String {
        let mut text = TextWriter::default();
        metrics.render(&mut text);
        text.finish()
    }

    #[test]
    fn requests_are_counted_per_method_path_and_status() {
        let metrics = HttpMetrics::default();
        let path = "/v1/dev/user/memories/{memory_id}";
        metrics.record("GET", path, 200, Duration::from_micros(80));
        metrics.record("GET", path, 200, Duration::from_micros(90));
        metrics.record("GET", path, 404, Duration::from_micros(70));
        metrics.record("DELETE", path, 204, Duration::from_millis(3));
        let text = rendered(&metrics);
        for line in [
            "omi_http_requests_total{method=\"GET\",path=\"/v1/dev/user/memories/{memory_id}\",status=\"200\"} 2",
            "omi_http_requests_total{method=\"GET\",path=\"/v1/dev/user/memories/{memory_id}\",status=\"404\"} 1",
            "omi_http_requests_total{method=\"DELETE\",path=\"/v1/dev/user/memories/{memory_id}\",status=\"204\"} 1",
            "omi_http_request_duration_seconds_bucket{method=\"GET\",path=\"/v1/dev/user/memories/{memory_id}\",status=\"200\",le=\"0.0001\"} 2",
            "omi_http_request_duration_seconds_bucket{method=\"DELETE\",path=\"/v1/dev/user/memories/{memory_id}\",status=\"204\",le=\"0.0025\"} 0",
            "omi_http_request_duration_seconds_bucket{method=\"DELETE\",path=\"/v1/dev/user/memories/{memory_id}\",status=\"204\",le=\"0.005\"} 1",
            "omi_http_request_duration_seconds_count{method=\"GET\",path=\"/v1/dev/user/memories/{memory_id}\",status=\"200\"} 2",
            "omi_http_request_duration_seconds_sum{method=\"GET\",path=\"/v1/dev/user/memories/{memory_id}\",status=\"200\"} 0.00017",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn a_latency_on_a_bound_falls_in_that_bucket() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.counts[3], 1, "le=0.001 holds exactly 1 ms");
        assert_eq!(snapshot.counts[LATENCY_BOUNDS.len()], 1, "above 30 s: +Inf");
        assert_eq!(snapshot.count(), 2);
    }

    #[test]
    fn nonstandard_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
