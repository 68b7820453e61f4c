//! The demo's foreground part: serve the models the background just trained, then act as a
//! placement engine would — describe a small landscape shaped after the bundled traces
//! (the Bitbrains VMs on hosts, NTUA's interference pods next to them), send intents, ask
//! for placements, a rebalance, and kube-scheduler extender calls — all over HTTP.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::bail;
use crate::error::{Context, Result};
use dcpilot_foreground::client::Client;
use dcpilot_foreground::{Foreground, ForegroundConfig, Landscape};
use dcpilot_info_core::InfoCore;
use serde_json::{json, Value};

use super::report::{
    Decision, ExtenderSummary, ForegroundReport, HostScore, LandscapeSummary, PlacementStats,
    RebalanceSummary,
};
use crate::stats::percentile;

const HOSTS: usize = 12;
/// The Bitbrains VMs of the bundled sample (their rightsizing keys).
const VMS: [&str; 8] = [
    "vm-1", "vm-9", "vm-17", "vm-25", "vm-33", "vm-41", "vm-49", "vm-57",
];
const NGINX: &str = "default/nginx";
const PLACEMENTS: usize = 200;

fn host_name(i: usize) -> String {
    format!("node-{:02}", i + 1)
}

/// The landscape as `dcpilot.landscape` events: 12 hosts of 16 cores; interference pods
/// (1 core each, so their hosts look least loaded; their pressure in `dcpilot.io/` labels)
/// on the first three; the VMs at 4 cores on the next eight; two nginx replicas on the
/// last.
fn landscape_events() -> Vec<Value> {
    let mut events: Vec<Value> = (0..HOSTS)
        .map(|i| {
            json!({"kind": "host_up", "timestamp_ms": 0, "host": host_name(i),
                   "cores": 16.0, "memory_bytes": 64u64 << 30})
        })
        .collect();
    let mut place = |id: &str, workload: &str, host: usize, cores: f64, labels: Value| {
        events.push(
            json!({"kind": "instance_placed", "timestamp_ms": 1, "instance": id,
            "workload": workload, "host": host_name(host), "cpu_request": cores,
            "memory_request_bytes": 4u64 << 30, "labels": labels}),
        );
    };
    // Four pods of each kind, as in the heaviest NTUA scenarios.
    for (i, kind) in ["l3", "membw", "cpu"].iter().enumerate() {
        let labels = json!({ format!("dcpilot.io/pressure-{kind}"): "4" });
        place(
            &format!("ibench-{kind}-pods"),
            &format!("ibench-{kind}"),
            i,
            1.0,
            labels,
        );
    }
    for (i, vm) in VMS.iter().enumerate() {
        place(vm, vm, 3 + i, 4.0, json!({}));
    }
    for r in 0..2 {
        let labels = json!({"dcpilot.io/latency-critical": "true", "dcpilot.io/rps": "750"});
        place(&format!("nginx-{r}"), NGINX, HOSTS - 1, 2.0, labels);
    }
    events
}

/// The structure around the placement view, as generic graph events: three racks of four
/// hosts each, and a frontend service calling nginx.
fn structure_events() -> Vec<Value> {
    let mut events = Vec::new();
    for rack in 0..HOSTS.div_ceil(4) {
        events.push(json!({"kind": "node_up", "timestamp_ms": 2, "node": {
            "id": format!("rack-{rack}"), "layer": "physical", "category": "compute", "type": "rack"}}));
        for host in (rack * 4..(rack * 4 + 4)).take_while(|h| *h < HOSTS) {
            events.push(json!({"kind": "edge_up", "timestamp_ms": 2, "edge": {
                "source": format!("rack-{rack}"), "target": host_name(host), "relation": "contains"}}));
        }
    }
    events.push(json!({"kind": "node_up", "timestamp_ms": 2, "node": {
        "id": "frontend", "layer": "service", "category": "compute", "type": "service"}}));
    events.push(json!({"kind": "edge_up", "timestamp_ms": 2, "edge": {
        "source": "frontend", "target": NGINX, "relation": "calls", "weight": 1500.0}}));
    events
}

/// Intents as an IDO user writes them, plus dcpilot's workload profile for nginx (its
/// quiet p99 and load, from the NTUA baseline runs at 1,500 rps).
const INTENTS: &str = r#"apiVersion: ido.intel.com/v1alpha1
kind: Intent
metadata:
  name: nginx-latency
  namespace: default
spec:
  targetRef:
    kind: Deployment
    name: default/nginx
  priority: 1.0
  objectives:
    - name: nginx-p99
      value: 0.3
      measuredBy: default/p99latency
---
kind: WorkloadIntent
workload: default/nginx
quiet_p99_ms: 0.15
rps: 1500
"#;

/// Serves `models_dir` on a free loopback port and drives it; returns the report.
/// Host measurements: the hosts with interference pods report the counters measured
/// next to four such pods, the others those of a quiet machine (`counters`: `(kind,
/// metric, value)` with kind `l3`, `membw`, `cpu` or `quiet`).
fn measurements(counters: &[(String, String, f64)]) -> String {
    let kind_of = |host: usize| match host {
        0 => "l3",
        1 => "membw",
        2 => "cpu",
        _ => "quiet",
    };
    (0..HOSTS)
        .flat_map(|h| {
            counters
                .iter()
                .filter(move |(kind, _, _)| kind == kind_of(h))
                .map(move |(_, metric, value)| {
                    json!({"host": host_name(h), "metric": metric, "value": value}).to_string()
                })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn run(
    models_dir: &Path,
    counters: &[(String, String, f64)],
) -> Result<ForegroundReport> {
    let models = Arc::new(InfoCore::open_dir(models_dir)?);
    let fg = Foreground::new(
        ForegroundConfig::default(),
        models,
        Landscape::default(),
        false,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = fg.router();
    let server = tokio::spawn(async move {
        axum::serve(dcpilot_foreground::server::without_nagle(listener), router).await
    });
    let mut client = Client::connect(addr).await?;

    let all = landscape_events().into_iter().chain(structure_events());
    let events: Vec<String> = all.map(|e| e.to_string()).collect();
    let answer = client
        .call("POST", "/v1/landscape/events", &events.join("\n"))
        .await?;
    if answer.status != 200 {
        bail!("landscape events refused: {}", answer.body);
    }
    let answer = client
        .call(
            "POST",
            "/v1/landscape/measurements",
            &measurements(counters),
        )
        .await?;
    if answer.status != 200 {
        bail!("host measurements refused: {}", answer.body);
    }
    let answer = client.call("PUT", "/v1/intents", INTENTS).await?;
    if answer.status != 200 {
        bail!("intents refused: {}", answer.body);
    }

    let mut latencies = Vec::with_capacity(PLACEMENTS);
    let (mut overruns, mut exhausted, mut degraded) = (0, 0, 0);
    let mut decisions = Vec::new();
    for i in 0..PLACEMENTS {
        // Alternate a latency-critical nginx replica and a Bitbrains VM (sized by the
        // rightsizing table when it knows the VM).
        let body = if i % 2 == 0 {
            json!({"workload": NGINX, "cores": 1.0, "memory_bytes": 1u64 << 30, "replicas": 3})
        } else {
            json!({"workload": VMS[(i / 2) % VMS.len()], "cores": 1.0, "memory_bytes": 2u64 << 30})
        };
        let answer = client
            .call("POST", "/v1/placements", &body.to_string())
            .await?;
        if answer.status != 200 {
            bail!("placement refused: {}", answer.body);
        }
        let a = &answer.body;
        latencies.push(answer.elapsed.as_secs_f64() * 1000.0);
        let (used, budget) = (a["used_ms"].as_f64(), a["budget_ms"].as_f64());
        overruns += usize::from(matches!((used, budget), (Some(u), Some(b)) if u > b));
        exhausted += usize::from(a["budget_exhausted"] == true);
        degraded += usize::from(a["degraded"] == true);
        if i < 2 {
            let text = |v: &Value| v.as_str().unwrap_or("?").to_string();
            decisions.push(Decision {
                workload: text(&body["workload"]),
                chosen: text(&a["choices"][0]["host"]),
                explanation: text(&a["choices"][0]["explanation"]),
                runner_up: text(&a["choices"][1]["host"]),
                runner_up_explanation: text(&a["choices"][1]["explanation"]),
                models: a["models"].clone(),
                degraded_reasons: a["degraded_reasons"].clone(),
            });
        }
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);

    let plan = client
        .call("POST", "/v1/rebalance", r#"{"budget_ms": 20}"#)
        .await?;
    let p = &plan.body;
    if plan.status != 200 {
        bail!("rebalance refused: {}", plan.body);
    }
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let rebalance = RebalanceSummary {
        actions: p["actions"].as_array().map_or(0, Vec::len),
        objective_before: number(&p["objective_before"]),
        objective_after: number(&p["objective_after"]),
        first_action: p["actions"][0]["explanation"].as_str().map(str::to_string),
        used_ms: number(&p["used_ms"]),
        budget_ms: number(&p["budget_ms"]),
    };

    let pod = json!({
        "metadata": {"name": "nginx-7d9c-abcde", "namespace": "default",
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "nginx-7d9c"}]},
        "spec": {"containers": [{"name": "nginx", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}
    });
    let names: Vec<String> = (0..HOSTS).map(host_name).collect();
    let args = json!({"pod": pod, "nodenames": names}).to_string();
    let filtered = client.call("POST", "/scheduler/filter", &args).await?;
    let prioritized = client.call("POST", "/scheduler/prioritize", &args).await?;
    let mut priorities: Vec<(String, i64)> = prioritized
        .body
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|p| Some((p["host"].as_str()?.to_string(), p["score"].as_i64()?)))
                .collect()
        })
        .unwrap_or_default();
    priorities.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let scores = |p: &mut dyn Iterator<Item = &(String, i64)>| -> Vec<HostScore> {
        p.take(3)
            .map(|(host, score)| HostScore {
                host: host.clone(),
                score: *score,
            })
            .collect()
    };
    let extender = ExtenderSummary {
        filter_passed: filtered.body["nodenames"].as_array().map_or(0, Vec::len),
        prioritize_top: scores(&mut priorities.iter()),
        prioritize_bottom: scores(&mut priorities.iter().rev()),
    };

    let summary = client.call("GET", "/v1/landscape/summary", "").await?;
    let rack = format!("rack-{}", (HOSTS - 1) / 4);
    let blast = client
        .call("GET", &format!("/v1/landscape/blast?id={rack}"), "")
        .await?;
    if summary.status != 200 || blast.status != 200 {
        bail!(
            "landscape queries failed: {} / {}",
            summary.body,
            blast.body
        );
    }
    let affected: Vec<String> = blast.body["affected"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["node"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // The landscape view as one file a browser opens without the server.
    let graph = client.call("GET", "/v1/landscape/graph", "").await?;
    let placement = client.call("GET", "/v1/landscape", "").await?;
    if graph.status != 200 || placement.status != 200 {
        bail!("landscape view data: {} / {}", graph.body, placement.body);
    }
    let page_path = models_dir
        .parent()
        .unwrap_or(models_dir)
        .join("landscape.html");
    std::fs::write(
        &page_path,
        dcpilot_foreground::server::standalone_view(&graph.body, &placement.body, None),
    )
    .with_context(|| format!("writing {}", page_path.display()))?;
    let landscape = LandscapeSummary {
        summary: summary.body,
        blast_of: rack,
        affected,
        page: page_path.display().to_string(),
    };

    server.abort();
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    Ok(ForegroundReport {
        placements: PlacementStats {
            count: latencies.len(),
            p50_ms: percentile(&sorted, 0.5),
            p99_ms: percentile(&sorted, 0.99),
            max_ms: sorted.last().copied().unwrap_or(f64::NAN),
            budget_overruns: overruns,
            budget_exhausted: exhausted,
            degraded,
            latencies_ms: latencies,
        },
        decisions,
        rebalance,
        extender,
        landscape,
    })
}
