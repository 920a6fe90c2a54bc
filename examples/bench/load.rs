//! A lean HTTP/1.1 load generator: one task per keep-alive connection (hyper 1.x client
//! connections), each sending its requests back to back. Bounded either by time (a warm-up whose
//! requests are not counted, then a measured window) or by a number of requests (seeding).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Builds the body of the `n`th request of a load (`n` counts across all connections).
pub type BodyFn = Arc<dyn Fn(u64) -> Bytes + Send + Sync>;

#[derive(Clone)]
pub struct Target {
    pub method: Method,
    pub path: String,
    /// `Bearer <key>`, or none for unauthenticated routes.
    pub authorization: Option<String>,
    /// A JSON body per request; none for reads.
    pub body: Option<BodyFn>,
    /// Sends a fresh `Idempotency-Key` with every request (what a careful client does).
    pub idempotency_keys: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// Requests completing during `warmup` are not counted; the load stops after `measure`.
    Timed { warmup: Duration, measure: Duration },
    /// Exactly this many requests, then stop (seeding).
    Count(u64),
}

/// What one load produced. Only 2xx answers count towards throughput and latency.
#[derive(Debug, Default)]
pub struct Outcome {
    pub succeeded: u64,
    /// Non-2xx answers by status.
    pub failed: BTreeMap<u16, u64>,
    /// Connection-level errors (refused, reset, malformed answer).
    pub transport_errors: u64,
    /// One example body of a non-2xx answer, to say why.
    pub failure_example: Option<String>,
    /// Latencies of the counted 2xx answers, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    pub measured: Duration,
}

impl Outcome {
    pub fn failures(&self) -> u64 {
        self.failed.values().sum::<u64>() + self.transport_errors
    }

    pub fn requests_per_second(&self) -> f64 {
        self.succeeded as f64 / self.measured.as_secs_f64()
    }

    /// The `p`-quantile latency in milliseconds (`p` in 0..=1), or NaN without samples.
    pub fn latency_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }

    fn merge(&mut self, other: Outcome) {
        self.succeeded += other.succeeded;
        for (status, count) in other.failed {
            *self.failed.entry(status).or_default() += count;
        }
        self.transport_errors += other.transport_errors;
        if self.failure_example.is_none() {
            self.failure_example = other.failure_example;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

/// Runs `connections` concurrent keep-alive connections within `budget`, spread round-robin over
/// `addresses` (several replicas behind what a load balancer would do).
pub async fn run(
    addresses: &[SocketAddr],
    target: &Target,
    connections: usize,
    budget: Budget,
) -> Outcome {
    let started = Instant::now();
    let (count_from, stop_at) = match budget {
        Budget::Timed { warmup, measure } => (started + warmup, Some(started + warmup + measure)),
        Budget::Count(_) => (started, None),
    };
    let limit = match budget {
        Budget::Count(n) => n,
        Budget::Timed { .. } => u64::MAX,
    };
    let sequence = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let connection = Connection {
                address: addresses[i % addresses.len()],
                target: target.clone(),
                sequence: sequence.clone(),
                limit,
                count_from,
                stop_at,
            };
            tokio::spawn(connection.drive())
        })
        .collect();
    let mut outcome = Outcome::default();
    for task in tasks {
        outcome.merge(task.await.expect("a load task panicked"));
    }
    outcome.measured = match budget {
        Budget::Timed { measure, .. } => measure,
        Budget::Count(_) => started.elapsed(),
    };
    outcome.latencies_us.sort_unstable();
    outcome
}

struct Connection {
    address: SocketAddr,
    target: Target,
    sequence: Arc<AtomicU64>,
    limit: u64,
    count_from: Instant,
    stop_at: Option<Instant>,
}

type Sender = http1::SendRequest<Full<Bytes>>;

impl Connection {
    async fn drive(self) -> Outcome {
        let mut outcome = Outcome::default();
        let mut sender: Option<Sender> = None;
        loop {
            if self.stop_at.is_some_and(|stop| Instant::now() >= stop) {
                break;
            }
            let n = self.sequence.fetch_add(1, Ordering::Relaxed);
            if n >= self.limit {
                break;
            }
            if sender.is_none() {
                match connect(self.address).await {
                    Ok(connected) => sender = Some(connected),
                    Err(_) => {
                        outcome.transport_errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
            }
            let request = self.request(n);
            let started = Instant::now();
            let answer = send(sender.as_mut().expect("connected above"), request).await;
            let finished = Instant::now();
            if finished < self.count_from || self.stop_at.is_some_and(|stop| finished > stop) {
                // Warm-up, or past the window: neither counted nor reported.
                if answer.is_err() {
                    sender = None;
                }
                continue;
            }
            match answer {
                Ok((status, _)) if (200..300).contains(&status) => {
                    outcome.succeeded += 1;
                    let micros = (finished - started).as_micros().min(u32::MAX as u128) as u32;
                    outcome.latencies_us.push(micros);
                }
                Ok((status, body)) => {
                    *outcome.failed.entry(status).or_default() += 1;
                    outcome.failure_example.get_or_insert_with(|| {
                        format!("{status} {}", String::from_utf8_lossy(&body))
                    });
                }
                Err(error) => {
                    outcome.transport_errors += 1;
                    outcome
                        .failure_example
                        .get_or_insert_with(|| error.to_string());
                    sender = None;
                }
            }
        }
        outcome
    }

    fn request(&self, n: u64) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.target.method.clone())
            .uri(&self.target.path)
            .header(HOST, self.address.to_string());
        if let Some(authorization) = &self.target.authorization {
            builder = builder.header(AUTHORIZATION, authorization);
        }
        let body = match &self.target.body {
            Some(make) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                make(n)
            }
            None => Bytes::new(),
        };
        if self.target.idempotency_keys {
            // One counter for the whole process: keys never repeat across runs against one database.
            static NEXT_KEY: AtomicU64 = AtomicU64::new(0);
            let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
            builder = builder.header("idempotency-key", format!("bench-{key}"));
        }
        builder.body(Full::new(body)).expect("a valid request")
    }
}

async fn connect(address: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(sender: &mut Sender, request: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One request on a fresh connection, for set-up steps (the API document, a probe).
pub async fn once(address: SocketAddr, target: &Target) -> anyhow::Result<(u16, Bytes)> {
    let connection = Connection {
        address,
        target: target.clone(),
        sequence: Arc::new(AtomicU64::new(0)),
        limit: 1,
        count_from: Instant::now(),
        stop_at: None,
    };
    let mut sender = connect(address).await?;
    send(&mut sender, connection.request(0)).await
}
