//! A byte-counting TCP proxy on 127.0.0.1: what the client sends ("up")
//! and what the server sends back ("down"), as TCP payload (HTTP/2 frames,
//! gRPC framing and protobuf included; TCP/IP headers not).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[derive(Default)]
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    connections: AtomicU64,
}

/// Bytes seen by the proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Client to server.
    pub up: u64,
    /// Server to client.
    pub down: u64,
    /// TCP connections proxied.
    pub connections: u64,
}

/// A running proxy; stops accepting when dropped.
pub struct Proxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (free port) and forwards every connection to
    /// `upstream`.
    pub fn start(upstream: SocketAddr) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the proxy")?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (counters, pipes, stop) = (counters.clone(), pipes.clone(), stop.clone());
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(upstream) else {
                        continue; // The client sees the connection drop.
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    counters.connections.fetch_add(1, Ordering::SeqCst);
                    let mut handles = pipes.lock().expect("proxy lock");
                    for (from, to, up) in [
                        (client.try_clone(), server.try_clone(), true),
                        (server.try_clone(), client.try_clone(), false),
                    ] {
                        let (Ok(from), Ok(to)) = (from, to) else {
                            continue;
                        };
                        let counters = counters.clone();
                        handles.push(thread::spawn(move || pipe(from, to, &counters, up)));
                    }
                }
            })
        };
        Ok(Proxy {
            addr,
            counters,
            pipes,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits (at most `timeout`) until every proxied connection is closed
    /// in both directions, then returns the totals so far.
    pub fn settle(&self, timeout: Duration) -> Result<Traffic> {
        let deadline = Instant::now() + timeout;
        loop {
            let done = {
                let mut pipes = self.pipes.lock().expect("proxy lock");
                pipes.retain(|h| !h.is_finished());
                pipes.is_empty()
            };
            if done {
                break;
            }
            if Instant::now() > deadline {
                bail!("proxied connections still open after {timeout:?}");
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(self.traffic())
    }

    /// The totals so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            up: self.counters.up.load(Ordering::SeqCst),
            down: self.counters.down.load(Ordering::SeqCst),
            connections: self.counters.connections.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn pipe(mut from: TcpStream, to: TcpStream, counters: &Counters, up: bool) {
    let counter = if up { &counters.up } else { &counters.down };
    let mut to_writer = &to;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                counter.fetch_add(n as u64, Ordering::SeqCst);
                if to_writer.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    // Pass the end of stream on; the other direction ends when its peer
    // closes in turn.
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_both_directions() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = server.local_addr().unwrap();
        let echo = thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(&got).unwrap();
            s.write_all(b"!").unwrap();
        });
        let proxy = Proxy::start(upstream).unwrap();
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(b"hello").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        drop(c);
        assert_eq!(back, b"hello!");
        echo.join().unwrap();
        let t = proxy.settle(Duration::from_secs(5)).unwrap();
        assert_eq!(
            t,
            Traffic {
                up: 5,
                down: 6,
                connections: 1
            }
        );
    }
}
