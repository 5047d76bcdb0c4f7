//! The edge against slow and oversized clients, on the real binary with its limits pinned in the
//! test's environment: connections that trickle their headers are closed by the header-read
//! timeout while normal clients keep being answered; a body announced above the limit gets 413
//! before a byte of it is sent; a body that stalls gets 408; past the connection limit a new
//! connection is served only once a slot frees. Timings are liveness bounds (seconds around a 1 s
//! timeout), and the connection-limit check is an order of events, not a duration.
//! Cost: ~6 s (one binary start; a few 1 s timeouts).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::free_port;

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(port: u16, max_connections: usize, events: &std::path::Path) -> Server {
    let root = common::root();
    let child = Command::new(env!("CARGO_BIN_EXE_recserve"))
        .arg("serve")
        .current_dir(&root)
        .env("RECSERVE_SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("RECSERVE_SERVER__WARMUP_REQUESTS", "2")
        .env("RECSERVE_SERVER__HEADER_READ_TIMEOUT_MS", "1000")
        .env("RECSERVE_SERVER__BODY_READ_TIMEOUT_MS", "1000")
        .env(
            "RECSERVE_SERVER__MAX_CONNECTIONS",
            max_connections.to_string(),
        )
        .env("RECSERVE_SERVING__TOTAL_BUDGET_MS", "5000")
        .env("RECSERVE_FEEDBACK__LOG__DIR", events)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start recserve");
    Server(child)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// One request on a fresh connection; the status code and the body.
fn request(port: u16, head: &str) -> (u16, String) {
    let mut s = connect(port);
    s.write_all(head.as_bytes()).unwrap();
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, String) {
    let text = common::read_http_response(s).expect("a response before the connection closed");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// True once the server has closed `s` (EOF or reset), waiting at most `bound`.
fn closed_within(s: &mut TcpStream, bound: Duration) -> bool {
    s.set_read_timeout(Some(bound)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 the server may send before closing
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

fn wait_ready(port: u16) {
    for _ in 0..600 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("binary never became ready");
}

fn first_user() -> String {
    let root = common::root();
    std::fs::read_to_string(root.join("models/demo/user_ids.txt"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn slow_and_oversized_clients_are_refused_and_normal_ones_still_served() {
    let events = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = start(port, 256, events.path());
    wait_ready(port);
    let get = format!(
        "GET /recommendations?user_id={}&n=5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        first_user()
    );

    // 40 connections that sent half a request head and stopped.
    let mut stalled: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = connect(port);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
            s
        })
        .collect();
    // One that trickles its head a byte every 100 ms: 200 bytes would take 20 s.
    let trickle_port = port;
    let trickler = std::thread::spawn(move || {
        let mut s = connect(trickle_port);
        let head = format!(
            "GET /healthz HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(170)
        );
        let started = Instant::now();
        for b in head.bytes() {
            if s.write_all(&[b]).is_err() {
                return (false, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Wrote it all: the server never cut it off.
        (true, started.elapsed())
    });

    // Meanwhile a normal client is answered.
    let (status, body) = request(port, &get);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"items\""), "{body}");

    // The stalled heads are closed by the 1 s header-read timeout (bound: 10 s).
    for s in &mut stalled {
        assert!(
            closed_within(s, Duration::from_secs(10)),
            "a stalled head stayed open"
        );
    }
    let (finished, after) = trickler.join().unwrap();
    assert!(
        !finished,
        "a trickled head was never cut off (ran {after:?})"
    );

    // A body announced above the 1 MB limit: 413 with a JSON body, no byte of the body sent.
    let (status, body) = request(
        port,
        "POST /feedback HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n",
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");

    // A body that stalls after 10 of its 100 bytes: 408 with a JSON body.
    let mut s = connect(port);
    s.write_all(
        b"POST /feedback HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user_id\"",
    )
    .unwrap();
    let (status, body) = read_response(&mut s);
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("request_timeout"), "{body}");

    // And normal clients are still served after all of it.
    let (status, _) = request(port, &get);
    assert_eq!(status, 200);
}

#[test]
fn past_the_connection_limit_a_new_connection_waits_for_a_free_slot() {
    let events = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = start(port, 2, events.path());
    wait_ready(port);
    // Two connections take both slots with unfinished heads.
    let mut holders: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(port);
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // A third client connects (the kernel's backlog accepts it) and sends a whole request.
    let mut third = connect(port);
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    // It is answered only after a holder's slot frees: the holders are closed by the header
    // timeout first, then the third gets its 200.
    let (status, _) = read_response(&mut third);
    assert_eq!(status, 200);
    let closed = holders
        .iter_mut()
        .filter_map(|s| closed_within(s, Duration::from_millis(1)).then_some(()))
        .count();
    assert!(
        closed >= 1,
        "the third was served while both slots were held"
    );
}
