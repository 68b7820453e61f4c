//! Placement latency over HTTP on loopback: `POST /v1/placements` to the axum server in
//! this process, one keep-alive HTTP/1.1 connection (hyper's client), 5,000 hosts with
//! model scoring of every host. Criterion reports the median; p50/p99 over 2,000
//! requests are printed.

mod common;

use std::sync::Arc;

use common::{core_with_slowdown, landscape};
use criterion::{criterion_group, criterion_main, Criterion};
use dcpilot_foreground::{Foreground, ForegroundConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

fn http(c: &mut Criterion) {
    let core = core_with_slowdown();
    let fg = Foreground::new(
        ForegroundConfig::default(),
        Arc::new(core),
        landscape(5_000),
        false,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let body = Bytes::from(
        r#"{"workload":"nginx","cores":2,"memory_bytes":1073741824,"rps":2000,"replicas":2,"quiet_p99_ms":5,"p99_objective_ms":20,"budget_ms":1000}"#,
    );
    let mut sender = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = fg.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        sender
    });
    let once = |sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>| {
        runtime.block_on(async {
            let request = hyper::Request::post("/v1/placements")
                .header("host", "bench")
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .expect("request");
            sender.ready().await.expect("connection ready");
            let response = sender.send_request(request).await.expect("response");
            assert_eq!(response.status(), 200);
            response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes()
        })
    };
    let mut samples: Vec<f64> = (0..2_000)
        .map(|_| {
            let started = std::time::Instant::now();
            std::hint::black_box(once(&mut sender));
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    eprintln!(
        "HTTP placement, 5000 hosts: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} requests",
        at(0.5),
        at(0.99),
        at(1.0),
        samples.len()
    );
    c.bench_function("http_placement_5000_hosts", |b| {
        b.iter(|| once(&mut sender))
    });
}

criterion_group!(benches, http);
criterion_main!(benches);
