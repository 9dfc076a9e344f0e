//! The trivial upstream of the gateway scenario: `lomash-bench __upstream --port N` answers every
//! request with 200 and a small JSON body over HTTP/1.1 keep-alive, on 127.0.0.1 only. It runs as
//! its own process (a re-exec of this binary), so it is measured like any service would be.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The hidden subcommand.
pub const SUBCOMMAND: &str = "__upstream";

/// What every request gets (a catalogue-like page of one item).
pub const BODY: &[u8] = br#"{"items":[{"id":"0190bench","name":"Trivial upstream","priceMinor":12900}],"nextCursor":null}"#;

/// `__upstream --port N`: serves until SIGTERM/SIGINT.
pub fn main(args: &[String]) -> ExitCode {
    let port = match args {
        [flag, port] if flag == "--port" => port.parse::<u16>().ok(),
        _ => None,
    };
    let Some(port) = port else {
        eprintln!("usage: lomash-bench {SUBCOMMAND} --port N");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("upstream: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        tokio::select! {
            served = serve(port) => served,
            () = crate::termination() => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("upstream: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    eprintln!("upstream: listening on {addr}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("upstream: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Full::new(Bytes::from_static(BODY)))
                        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(BODY)))),
                )
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
