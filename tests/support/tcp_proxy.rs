//! A TCP proxy on 127.0.0.1:0 that a test controls, to cut or stall the path to a database
//! without touching the database itself.

#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Bytes flow both ways.
    Open,
    /// Every connection is closed and new ones are closed as soon as they are accepted, as when
    /// the database goes away.
    Cut,
    /// Connections are accepted and kept but no byte moves, as on a network that drops packets.
    Stalled,
}

pub struct TcpProxy {
    pub address: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Open);
        let modes = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let state = modes.subscribe();
                tokio::spawn(forward(inbound, target, state));
            }
        });
        TcpProxy {
            address,
            mode,
            task,
        }
    }

    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stalled);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Cut);
        self.task.abort();
    }
}

async fn forward(inbound: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if !wait_until_open(&mut mode).await {
        return;
    }
    let Ok(outbound) = TcpStream::connect(target).await else {
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
