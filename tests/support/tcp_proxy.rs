//! A cuttable TCP proxy for outage tests, shared by several test crates.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy on 127.0.0.1 in front of a real service (Redis, PostgreSQL) that a test can cut
/// and restore, to simulate an outage without stopping the shared service.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    pipes: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let pipes = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let acceptor = tokio::spawn({
            let (up, pipes) = (up.clone(), pipes.clone());
            async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        // Cut: close at once, like a server that is gone.
                        drop(inbound);
                        continue;
                    }
                    let upstream = upstream.clone();
                    pipes.lock().push(tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    }));
                }
            }
        });
        Self {
            addr,
            up,
            pipes,
            acceptor,
        }
    }

    /// Refuse new connections and close the open ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for pipe in self.pipes.lock().drain(..) {
            pipe.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}
