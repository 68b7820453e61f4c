//! A client of the foreground's API over keep-alive HTTP/1.1 (hyper), as a placement
//! engine drives it: [`Client`] sends requests in sequence on one connection, each timed;
//! [`load`] drives many connections at once and reports what came back at the client.

pub mod load;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Why a request got no answer. Every variant is a transport problem: retrying on a new
/// connection can help.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be made.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// HTTP failed on an open connection (handshake, send, or reading the answer).
    #[error("{what}: {source}")]
    Http {
        /// What was being done.
        what: String,
        /// Why.
        source: hyper::Error,
    },
    /// The request could not be built (a header value that is not ASCII, say).
    #[error("building {what}: {source}")]
    Request {
        /// Which request.
        what: String,
        /// Why.
        source: hyper::http::Error,
    },
}

/// One connection to the API.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

/// A response: status, `Retry-After` (s), body as bytes, and the round trip.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, when it is a number of seconds.
    pub retry_after_secs: Option<u64>,
    /// The body.
    pub bytes: Bytes,
    /// From sending the request to the whole body read.
    pub elapsed: Duration,
}

impl Answer {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or(serde_json::Value::Null)
    }
}

/// A response with its body read as JSON.
pub struct JsonAnswer {
    /// HTTP status.
    pub status: u16,
    /// The body (`Null` if it is not JSON).
    pub body: serde_json::Value,
    /// From sending the request to the whole body read.
    pub elapsed: Duration,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream
            .set_nodelay(true)
            .map_err(|source| ClientError::Connect { addr, source })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ClientError::Http {
                what: "HTTP handshake".into(),
                source,
            })?;
        tokio::spawn(conn);
        Ok(Self { sender })
    }

    /// Sends `method path` with a JSON body (`""` for none); reads the answer as JSON.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<JsonAnswer, ClientError> {
        let answer = self
            .send(method, path, &[], Bytes::from(body.to_string()))
            .await?;
        Ok(JsonAnswer {
            status: answer.status,
            body: answer.json(),
            elapsed: answer.elapsed,
        })
    }

    /// Sends `method path` with extra `headers` and a JSON `body`.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        let what = || format!("{method} {path}");
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "dcpilot")
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|source| ClientError::Request {
                what: what(),
                source,
            })?;
        let started = Instant::now();
        let http = |source| ClientError::Http {
            what: what(),
            source,
        };
        self.sender.ready().await.map_err(http)?;
        let response = self.sender.send_request(request).await.map_err(http)?;
        let status = response.status().as_u16();
        let retry_after_secs = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(http)?
            .to_bytes();
        Ok(Answer {
            status,
            retry_after_secs,
            bytes,
            elapsed: started.elapsed(),
        })
    }
}
