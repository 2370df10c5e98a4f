//! `Simulator::spawn` from a plain synchronous test, with a hand-written HTTP client.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use crate::config;
use invhost_sim_salesforce::Simulator;

/// Sends one `GET` and returns the raw response.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    response
}

#[test]
fn spawn_serves_sync_callers_and_stops() {
    let sim = Simulator::spawn(config()).expect("spawns");
    let addr = sim.addr();
    assert!(addr.ip().is_loopback());
    assert_eq!(sim.base_url(), format!("http://127.0.0.1:{}", addr.port()));

    let versions = get(addr, "/services/data/");
    assert!(versions.starts_with("HTTP/1.1 200"), "{versions}");
    assert!(
        versions.contains(r#""url":"/services/data/v62.0""#),
        "{versions}"
    );

    let stats = get(addr, "/__sim/stats");
    assert!(
        stats
            .contains(r#"{"requests":1,"api_calls":0,"queries":0,"gzip_answers":0,"bulk_jobs":0}"#),
        "{stats}"
    );
    let control = sim.control();
    assert_eq!(control.requests(), 1);

    sim.shutdown();
    assert!(
        TcpStream::connect(addr).is_err(),
        "the port is closed after shutdown"
    );
}
