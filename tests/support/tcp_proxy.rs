//! A TCP proxy on 127.0.0.1:0 in front of a real service (Redis, PostgreSQL) that a test can cut,
//! stall and restore, to simulate an outage without touching the shared service. Shared by
//! several test crates.

#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Bytes flow both ways.
    Open,
    /// Every connection is closed and new ones are closed as soon as they are accepted, like a
    /// server that is gone.
    Cut,
    /// Connections are accepted and kept but no byte moves, like a network that drops packets.
    Stalled,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Open);
        let modes = mode.clone();
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(forward(inbound, upstream.clone(), modes.subscribe()));
            }
        });
        Self {
            addr,
            mode,
            acceptor,
        }
    }

    /// Refuse new connections and close the open ones.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Keep every connection open but move no bytes until restored.
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stalled);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}

async fn forward(inbound: TcpStream, upstream: String, mut mode: watch::Receiver<Mode>) {
    if !wait_until_open(&mut mode).await {
        return;
    }
    let Ok(outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = inbound.into_split();
    let (server_read, server_write) = outbound.into_split();
    tokio::join!(
        pump(client_read, server_write, mode.clone()),
        pump(server_read, client_write, mode),
    );
}

/// Copies one direction until either side closes or the proxy is cut; holds bytes while stalled.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if !wait_until_open(&mut mode).await {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = mode.changed() => continue,
        };
        let count = match read {
            Ok(0) | Err(_) => return,
            Ok(count) => count,
        };
        if !wait_until_open(&mut mode).await || to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

/// Waits out a stall; `false` when the proxy is cut (or gone).
async fn wait_until_open(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            Mode::Open => return true,
            Mode::Cut => return false,
            Mode::Stalled => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}
