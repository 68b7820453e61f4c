//! A keep-alive HTTP/1.1 JSON client (hyper) for driving the foreground as a placement
//! engine would: one connection, requests in sequence, each timed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// One connection to the API.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

/// A response: status, body as JSON (`Null` if not JSON), and the round trip.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub elapsed: Duration,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(conn);
        Ok(Self { sender })
    }

    /// Sends `method path` with a body (`""` for none).
    pub async fn call(&mut self, method: &str, path: &str, body: &str) -> Result<Answer> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "dcpilot")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .context("building a request")?;
        let started = Instant::now();
        self.sender.ready().await.context("connection")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        let elapsed = started.elapsed();
        Ok(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            elapsed,
        })
    }
}
