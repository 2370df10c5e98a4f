//! Test support shared by the Salesforce plugin's tests and the end-to-end tests.
//!
//! [`Tinyproxy`]: a real forward proxy (Debian's tinyproxy) on a free loopback port, with Basic
//! authentication, killed on drop. `cargo xtask test` and `.ci/run` install tinyproxy.
#![allow(clippy::expect_used)] // test support: a failed set-up is a failed test

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The proxy user name [`Tinyproxy::start`] accepts.
pub const PROXY_USER: &str = "proxyuser";
/// The proxy password [`Tinyproxy::start`] accepts.
pub const PROXY_PASSWORD: &str = "proxy-pass-7f3a";

/// A tinyproxy process with Basic authentication; killed on drop.
#[derive(Debug)]
pub struct Tinyproxy {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
}

impl Tinyproxy {
    /// Starts tinyproxy on a free loopback port, accepting [`PROXY_USER`] / [`PROXY_PASSWORD`].
    pub fn start() -> Tinyproxy {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("invhost-tinyproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("tinyproxy.conf");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n\
                 BasicAuth {PROXY_USER} {PROXY_PASSWORD}\nMaxClients 20\nLogLevel Warning\n"
            ),
        )
        .expect("config written");
        let child = match Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_dir_all(&dir);
                panic!(
                    "tinyproxy is not installed: run the tests with `cargo xtask test`, or `apt-get install tinyproxy`"
                );
            }
            Err(error) => panic!("tinyproxy did not start: {error}"),
        };
        let proxy = Tinyproxy { child, port, dir };
        proxy.wait_until_listening();
        proxy
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_until_listening(&self) {
        let started = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "tinyproxy listens within 5 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
