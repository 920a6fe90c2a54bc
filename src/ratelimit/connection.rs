//! One shared Redis connection that replaces itself after a failure.
//!
//! A fresh connection is attempted by the first call that needs one (concurrent callers share
//! that attempt), so the first request after Redis comes back succeeds, and a down Redis costs
//! each request at most one bounded attempt. A connection the server has closed while idle is
//! noticed before anything is sent on it (by peeking at the socket), so a restart of Redis does
//! not fail the next request, and no command is ever sent twice: a script that may have run is
//! never retried, which keeps counts exact.

use std::io::ErrorKind as IoErrorKind;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::outbound::with_causes;

type Attempt = Shared<BoxFuture<'static, Result<Connected, String>>>;

/// An established connection and, for TCP, a second handle on its socket used only to peek.
#[derive(Clone)]
struct Connected {
    conn: MultiplexedConnection,
    probe: Option<Arc<std::net::TcpStream>>,
}

impl Connected {
    /// The peer closed or reset the socket. Peeking consumes nothing: pending replies stay for
    /// the connection's own reader.
    fn peer_gone(&self) -> bool {
        let Some(probe) = &self.probe else {
            return false;
        };
        match probe.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != IoErrorKind::WouldBlock,
        }
    }
}

pub(crate) struct Reconnecting {
    client: Client,
    /// How `rediss://` connections are secured (the shared outbound setup's configuration);
    /// `None` for other URLs.
    tls: Option<Arc<rustls::ClientConfig>>,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    /// The current connection or attempt, with its generation so a failure reported late cannot
    /// discard a newer connection.
    current: Mutex<(u64, Option<Attempt>)>,
}

impl Reconnecting {
    pub fn new(
        client: Client,
        tls: Option<Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout));
        Self {
            client,
            tls,
            config,
            connect_timeout,
            current: Mutex::new((0, None)),
        }
    }

    /// A usable connection and its generation (to pass to [`Self::discard`] if it fails).
    pub async fn get(&self) -> Result<(u64, MultiplexedConnection), String> {
        // A second round only follows a connection found closed before use; nothing was sent.
        for _ in 0..2 {
            let (generation, attempt) = self.current_attempt();
            match attempt.await {
                Ok(connected) if connected.peer_gone() => self.discard(generation),
                Ok(connected) => return Ok((generation, connected.conn)),
                Err(e) => {
                    self.discard(generation);
                    return Err(e);
                }
            }
        }
        Err("connection closed by the server".to_owned())
    }

    /// Forget connection `generation` after it failed, so the next caller connects afresh.
    pub fn discard(&self, generation: u64) {
        let mut current = self.current.lock();
        if current.0 == generation {
            current.1 = None;
        }
    }

    fn current_attempt(&self) -> (u64, Attempt) {
        let mut current = self.current.lock();
        if let Some(attempt) = &current.1 {
            return (current.0, attempt.clone());
        }
        let attempt = connect(
            self.client.clone(),
            self.tls.clone(),
            self.config.clone(),
            self.connect_timeout,
        )
        .boxed()
        .shared();
        current.0 += 1;
        current.1 = Some(attempt.clone());
        (current.0, attempt)
    }
}

async fn connect(
    client: Client,
    tls: Option<Arc<rustls::ClientConfig>>,
    config: AsyncConnectionConfig,
    timeout: Duration,
) -> Result<Connected, String> {
    let info = client.get_connection_info();
    let (host, port, tls) = match info.addr() {
        ConnectionAddr::Tcp(host, port) => (host, port, None),
        ConnectionAddr::TcpTls { host, port, .. } => {
            let tls = tls.ok_or("no TLS configuration for a rediss:// URL")?;
            (host, port, Some(tls))
        }
        _ => return connect_through_client(&client, &config, timeout).await,
    };
    let settings = info.redis_settings().clone();
    let (host, port) = (host.clone(), *port);
    // The whole connection, TLS and handshake (AUTH, SELECT) included, fits in one timeout.
    let establish = async move {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect failed: {e}"))?;
        let (stream, probe) = with_probe(stream).map_err(|e| format!("socket setup: {e}"))?;
        let conn = match tls {
            None => start(&settings, stream, config).await?,
            Some(tls) => {
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| format!("`{host}` is not a host name for TLS: {e}"))?;
                let stream = TlsConnector::from(tls)
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS handshake failed: {}", with_causes(&e)))?;
                start(&settings, stream, config).await?
            }
        };
        Ok(Connected {
            conn,
            probe: Some(Arc::new(probe)),
        })
    };
    tokio::time::timeout(timeout, establish)
        .await
        .map_err(|_| "connect timed out".to_owned())?
}

/// The Redis handshake on an open stream, and the connection's driver spawned.
async fn start<S>(
    settings: &redis::RedisConnectionInfo,
    stream: S,
    config: AsyncConnectionConfig,
) -> Result<MultiplexedConnection, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (conn, driver) = MultiplexedConnection::new_with_config(settings, stream, config)
        .await
        .map_err(|e| format!("handshake failed: {e}"))?;
    tokio::spawn(driver);
    Ok(conn)
}

/// Other transports (Unix sockets) go through the client, without the idle-close probe.
async fn connect_through_client(
    client: &Client,
    config: &AsyncConnectionConfig,
    timeout: Duration,
) -> Result<Connected, String> {
    {
        let conn = tokio::time::timeout(
            timeout,
            client.get_multiplexed_async_connection_with_config(config),
        )
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect failed: {e}"))?;
        Ok(Connected { conn, probe: None })
    }
}

/// Split a socket into the stream the connection owns and a duplicate handle to peek with.
fn with_probe(
    stream: tokio::net::TcpStream,
) -> std::io::Result<(tokio::net::TcpStream, std::net::TcpStream)> {
    stream.set_nodelay(true)?;
    // The std socket stays non-blocking (tokio sets it), and the duplicate shares that mode,
    // so a peek never blocks.
    let std_stream = stream.into_std()?;
    let probe = std_stream.try_clone()?;
    Ok((tokio::net::TcpStream::from_std(std_stream)?, probe))
}
