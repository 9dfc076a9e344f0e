//! Just enough networking to probe ports and `/health`/`/ready` without an HTTP client crate.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

/// `GET http://127.0.0.1:<port><path>` and return the status code.
pub fn get_status(port: u16, path: &str, timeout: Duration) -> Result<u16> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .with_context(|| format!("nothing listens on 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: xtask\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = Vec::with_capacity(64);
    let mut byte = [0u8; 1];
    while head.len() < 256 && !head.ends_with(b"\r\n") {
        match stream.read(&mut byte)? {
            0 => break,
            _ => head.push(byte[0]),
        }
    }
    parse_status_line(&String::from_utf8_lossy(&head))
}

fn parse_status_line(line: &str) -> Result<u16> {
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code
            .parse()
            .with_context(|| format!("bad HTTP status line {line:?}")),
        _ => bail!("not an HTTP response: {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    #[test]
    fn a_listening_port_is_open_and_a_closed_one_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(port_open(port));
        drop(listener);
        assert!(!port_open(port));
    }

    #[test]
    fn reads_the_status_of_a_response() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut request = [0u8; 512];
            let n = socket.read(&mut request).expect("read");
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .expect("write");
            request
        });
        let status = get_status(port, "/ready", Duration::from_secs(2)).expect("status");
        assert_eq!(status, 503);
        let request = server.join().expect("server thread");
        assert!(request.starts_with("GET /ready HTTP/1.1\r\n"), "{request}");
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK\r\n").expect("ok"), 200);
        assert_eq!(parse_status_line("HTTP/1.0 404\r\n").expect("ok"), 404);
        assert!(parse_status_line("SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line("").is_err());
    }
}
