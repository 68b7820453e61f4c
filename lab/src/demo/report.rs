//! What `dcpilot demo` found, as one typed report, and its three renderings: text for
//! people ([`DemoReport::text`]), JSON for scripts (`serde`), and an HTML page with plots
//! ([`DemoReport::html`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::html::{escape, latency_histogram, predicted_vs_actual};
use crate::error::Result;
use crate::planner::ReplayReport;
use crate::rca::Accuracy;

/// Everything the demo measured.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// Samples the replay sent.
    pub replayed_samples: u64,
    /// Samples in the `telemetry` table at the end.
    pub ingested_samples: i64,
    /// Distinct entities in it.
    pub entities: i64,
    /// Partitions moved to Parquet (still queryable).
    pub archived_parquet_files: usize,
    /// Seconds from the replay's start until every sample was stored.
    pub ingest_seconds: f64,
    /// Samples stored per second, end to end.
    pub ingest_rate_samples_per_s: f64,
    /// Malformed messages, each in the dead-letter topic with its reason.
    pub dead_letters: u64,
    /// Rows dropped as duplicates.
    pub duplicates_dropped: u64,
    /// The Bitbrains VMs with the highest mean CPU (SQL over `telemetry`).
    pub busiest_vms: Vec<BusyVm>,
    /// nginx p99 under co-located interference (NTUA run TheGame_V03).
    pub p99_by_interference: Vec<InterferenceRow>,
    /// Each built-in job's run.
    pub models: Vec<ModelLine>,
    /// The foreground, driven over HTTP as a placement engine would.
    #[serde(flatten)]
    pub foreground: ForegroundReport,
    /// The landscape coloured on the bundled Online Boutique sample.
    pub colouring: ColouringReport,
    /// The intent loop replayed against the plant built from the NTUA runs.
    pub intent_loop: ReplayReport,
    /// Where the demo's Information Core is.
    #[serde(skip)]
    pub information_core: PathBuf,
    /// Each model's (actual, predicted) on its holdout, for the HTML plots.
    #[serde(skip)]
    pub holdout_predictions: Vec<(String, Vec<(f64, f64)>)>,
}

/// A VM and its CPU use.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BusyVm {
    /// The VM.
    pub entity: String,
    /// Mean CPU %.
    pub avg_cpu_pct: f64,
    /// Highest CPU %.
    pub max_cpu_pct: f64,
}

/// nginx's p99 under one interference scenario.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct InterferenceRow {
    /// The co-runners.
    pub interference: String,
    /// Mean p99 over the scenario's tests, ms.
    pub mean_p99_ms: f64,
    /// Tests.
    pub tests: i64,
}

/// One model line of the demo report.
#[derive(Debug, Clone, Serialize)]
pub struct ModelLine {
    /// The job (and model).
    pub name: String,
    /// The version served after this run (the new one if published, else the previous
    /// champion's, if any).
    pub version: Option<u64>,
    /// Error metric.
    pub metric: String,
    /// The model's holdout error.
    pub model_error: f64,
    /// The best baseline.
    pub baseline: String,
    /// Its holdout error.
    pub baseline_error: f64,
    /// Published, or why not.
    pub outcome: String,
}

/// What the demo reports about the foreground.
#[derive(Debug, Serialize)]
pub struct ForegroundReport {
    /// Placement requests and their latency as the engine saw it (HTTP round trip).
    pub placements: PlacementStats,
    /// The first decisions with their explanations.
    pub decisions: Vec<Decision>,
    /// The rebalance plan's summary.
    pub rebalance: RebalanceSummary,
    /// What the scheduler extender answered for an nginx pod.
    pub extender: ExtenderSummary,
    /// The landscape graph: counts by layer and type, and what fails with one rack.
    pub landscape: LandscapeSummary,
}

/// Placement latency and budget use.
#[derive(Debug, Serialize)]
pub struct PlacementStats {
    /// Requests.
    pub count: usize,
    /// Median round trip, ms.
    pub p50_ms: f64,
    /// 99th percentile round trip, ms.
    pub p99_ms: f64,
    /// Slowest round trip, ms.
    pub max_ms: f64,
    /// Answers whose planning time exceeded their budget.
    pub budget_overruns: usize,
    /// Answers where the budget ran out before every host was scored (anytime answers).
    pub budget_exhausted: usize,
    /// Answers that fell back to rules of thumb.
    pub degraded: usize,
    /// Round-trip times, ms, in request order (for the HTML histogram).
    #[serde(skip)]
    pub latencies_ms: Vec<f64>,
}

/// One placement decision, as the API explained it.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The workload placed.
    pub workload: String,
    /// The best host.
    pub chosen: String,
    /// Why.
    pub explanation: String,
    /// The second best.
    pub runner_up: String,
    /// Why it came second.
    pub runner_up_explanation: String,
    /// The model versions the answer used.
    pub models: serde_json::Value,
    /// Why the answer fell back to rules of thumb, if it did.
    pub degraded_reasons: serde_json::Value,
}

/// A rebalance plan in brief.
#[derive(Debug, Clone, Serialize)]
pub struct RebalanceSummary {
    /// Actions planned.
    pub actions: usize,
    /// The objective before.
    pub objective_before: f64,
    /// The objective after the plan.
    pub objective_after: f64,
    /// The first action's explanation.
    pub first_action: Option<String>,
    /// Time spent, ms.
    pub used_ms: f64,
    /// The budget, ms.
    pub budget_ms: f64,
}

/// The scheduler extender's answers for one pod.
#[derive(Debug, Clone, Serialize)]
pub struct ExtenderSummary {
    /// Nodes `filter` let through.
    pub filter_passed: usize,
    /// The three best by `prioritize`.
    pub prioritize_top: Vec<HostScore>,
    /// The three worst.
    pub prioritize_bottom: Vec<HostScore>,
}

/// A node's extender score (0–10).
#[derive(Debug, Clone, Serialize)]
pub struct HostScore {
    /// The node.
    pub host: String,
    /// Its score.
    pub score: i64,
}

/// The landscape in the demo.
#[derive(Debug, Clone, Serialize)]
pub struct LandscapeSummary {
    /// `GET /v1/landscape/summary`'s answer: nodes and edges by layer and type.
    pub summary: serde_json::Value,
    /// The node whose blast radius is shown.
    pub blast_of: String,
    /// What fails with it.
    pub affected: Vec<String>,
    /// The landscape page written.
    pub page: String,
}

/// The colouring of the bundled Online Boutique sample.
#[derive(Debug, Clone, Serialize)]
pub struct ColouringReport {
    /// Each labelled fault and where its cause ranked.
    pub faults: Vec<FaultLine>,
    /// AC@k over the faults.
    pub accuracy: Accuracy,
    /// The colouring job's run after the first fault.
    pub job: ColouringJobLine,
    /// The coloured page written.
    pub page: String,
}

/// One labelled fault's ranking.
#[derive(Debug, Clone, Serialize)]
pub struct FaultLine {
    /// When (Unix s).
    pub at: i64,
    /// Its kind.
    pub kind: String,
    /// The faulty service.
    pub service: String,
    /// Where it ranked (1 is first).
    pub rank: Option<usize>,
    /// The first five services.
    pub top: Vec<String>,
}

/// The colouring job's run.
#[derive(Debug, Clone, Serialize)]
pub struct ColouringJobLine {
    /// The moment judged (Unix s).
    pub at: i64,
    /// The version published.
    pub version: Option<u64>,
    /// Entities coloured.
    pub entities: usize,
    /// Of which anomalous.
    pub anomalous: usize,
    /// The three likeliest causes.
    pub top_causes: Vec<CauseLine>,
    /// The labelled cause.
    pub labelled: Labelled,
}

/// A root-cause candidate in brief.
#[derive(Debug, Clone, Serialize)]
pub struct CauseLine {
    /// The entity.
    pub entity: String,
    /// Its score.
    pub score: f64,
    /// Its most abnormal metrics.
    pub metrics: Vec<String>,
    /// The dependents it explains.
    pub explains: Vec<String>,
}

/// The fault's label.
#[derive(Debug, Clone, Serialize)]
pub struct Labelled {
    /// The service.
    pub service: String,
    /// The kind.
    pub kind: String,
}

/// A table of rows, each cell already formatted, columns padded to their widths.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}", padded.join("  ")).trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}

impl DemoReport {
    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let o = &mut out;
        let _ = writeln!(
            o,
            "\ndcpilot demo — both loops on the bundled real-trace sample\n"
        );
        let _ = writeln!(o, "  samples replayed       {}", self.replayed_samples);
        let _ = writeln!(
            o,
            "  samples in `telemetry` {} ({} entities; {} partitions spilled to Parquet, still queryable)",
            self.ingested_samples, self.entities, self.archived_parquet_files
        );
        let _ = writeln!(
            o,
            "  ingest                 {:.1}s, {:.0} samples/s end to end",
            self.ingest_seconds, self.ingest_rate_samples_per_s
        );
        let _ = writeln!(
            o,
            "  dead letters           {} (malformed messages sent on purpose, each with its reason)",
            self.dead_letters
        );
        let _ = writeln!(
            o,
            "\nBitbrains VMs with the highest mean CPU (SQL over `telemetry`):"
        );
        let vms: Vec<Vec<String>> = self
            .busiest_vms
            .iter()
            .map(|v| {
                vec![
                    v.entity.clone(),
                    format!("{:.2}", v.avg_cpu_pct),
                    format!("{:.2}", v.max_cpu_pct),
                ]
            })
            .collect();
        table(o, &["entity", "avg_cpu_pct", "max_cpu_pct"], &vms);
        let _ = writeln!(
            o,
            "\nnginx p99 latency under co-located interference (NTUA, run TheGame_V03):"
        );
        let rows: Vec<Vec<String>> = self
            .p99_by_interference
            .iter()
            .map(|r| {
                vec![
                    r.interference.clone(),
                    format!("{:.2}", r.mean_p99_ms),
                    r.tests.to_string(),
                ]
            })
            .collect();
        table(o, &["interference", "mean_p99_ms", "tests"], &rows);
        self.models_text(o);
        self.foreground_text(o);
        self.colouring_text(o);
        self.intent_loop_text(o);
        out
    }

    fn models_text(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\nEffect models (holdout = newest 20% by time; published only if better than the best baseline):"
        );
        let _ = writeln!(
            o,
            "  {:<22} {:>7} {:<6} {:>11} {:>14}  best baseline / outcome",
            "model", "version", "metric", "model error", "baseline error"
        );
        for m in &self.models {
            let _ = writeln!(
                o,
                "  {:<22} {:>7} {:<6} {:>11.3} {:>14.3}  {} / {}",
                m.name,
                m.version.map_or("-".to_string(), |v| v.to_string()),
                m.metric,
                m.model_error,
                m.baseline_error,
                m.baseline,
                m.outcome
            );
        }
        for m in self
            .models
            .iter()
            .filter(|m| m.outcome.starts_with("not published"))
        {
            let _ = writeln!(
                o,
                "  note: {} is not served from this run. On this sample's holdout it lost to {} ({:.3} vs {:.3}),\n        and a model that loses to a naive baseline is never published; the foreground then uses\n        rules of thumb and says so (`degraded`). The bundled sample is small (8 VMs, 7 days): the\n        verdict on the full traces is in docs/data-scientists.md (\"Models in the demo\").",
                m.name, m.baseline, m.model_error, m.baseline_error
            );
        }
        let _ = writeln!(o, "  Information Core: {}", self.information_core.display());
    }

    fn foreground_text(&self, o: &mut String) {
        let fg = &self.foreground;
        let p = &fg.placements;
        let _ = writeln!(o, "\nForeground (HTTP on loopback, default 10 ms budget):");
        let _ = writeln!(
            o,
            "  placements             {} requests: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms round trip",
            p.count, p.p50_ms, p.p99_ms, p.max_ms
        );
        let _ = writeln!(
            o,
            "  budget overruns        {} (anytime answers: {}, degraded: {})",
            p.budget_overruns, p.budget_exhausted, p.degraded
        );
        for d in &fg.decisions {
            let _ = writeln!(o, "  {} -> {}: {}", d.workload, d.chosen, d.explanation);
            let _ = writeln!(o, "      not {}: {}", d.runner_up, d.runner_up_explanation);
        }
        let r = &fg.rebalance;
        let _ = writeln!(
            o,
            "  rebalance              {} actions, objective {} -> {} in {} ms; first: {}",
            r.actions,
            r.objective_before,
            r.objective_after,
            r.used_ms,
            r.first_action.as_deref().unwrap_or("-")
        );
        let scores = |s: &[HostScore]| -> String {
            let parts: Vec<String> = s
                .iter()
                .map(|h| format!("{} {}", h.host, h.score))
                .collect();
            parts.join(", ")
        };
        let _ = writeln!(
            o,
            "  scheduler extender     filter passed {} nodes; prioritize best {} / worst {}",
            fg.extender.filter_passed,
            scores(&fg.extender.prioritize_top),
            scores(&fg.extender.prioritize_bottom)
        );
        let l = &fg.landscape;
        let count = |layer: &str| -> String {
            l.summary["nodes"][layer]
                .as_object()
                .map_or("-".into(), |types| {
                    let parts: Vec<String> =
                        types.iter().map(|(t, n)| format!("{n} {t}")).collect();
                    parts.join(", ")
                })
        };
        let _ = writeln!(
            o,
            "  landscape graph        physical: {}; virtual: {}; service: {}",
            count("physical"),
            count("virtual"),
            count("service")
        );
        let _ = writeln!(
            o,
            "  blast radius           {} takes down {} nodes: {}",
            l.blast_of,
            l.affected.len(),
            l.affected.join(", ")
        );
        let _ = writeln!(
            o,
            "  landscape view         {} (open it in a browser: layers, utilisation as colour, details on click)",
            l.page
        );
    }

    fn colouring_text(&self, o: &mut String) {
        let c = &self.colouring;
        let _ = writeln!(
            o,
            "\nLandscape colouring (bundled Online Boutique sample, real metrics, labelled faults):"
        );
        for f in &c.faults {
            let top: Vec<&str> = f.top.iter().take(3).map(String::as_str).collect();
            let _ = writeln!(
                o,
                "  fault at {} {:<22} on {:<22} ranked {:<4} (top 3: {})",
                f.at,
                f.kind,
                f.service,
                f.rank.map_or("-".into(), |r| r.to_string()),
                top.join(", ")
            );
        }
        let job = &c.job;
        let _ = writeln!(
            o,
            "  colouring job          v{} at {}: {} entities, {} anomalous; labelled cause {} ({})",
            job.version.map_or("-".into(), |v| v.to_string()),
            job.at,
            job.entities,
            job.anomalous,
            job.labelled.service,
            job.labelled.kind
        );
        for (i, cause) in job.top_causes.iter().enumerate() {
            let _ = writeln!(
                o,
                "    {}. {:<24} score {:>5.2}  metrics {:?}  explains {:?}",
                i + 1,
                cause.entity,
                cause.score,
                cause.metrics,
                cause.explains
            );
        }
        let _ = writeln!(
            o,
            "  coloured view          {} (green normal to red anomalous, the likeliest cause outlined)",
            c.page
        );
    }

    /// The intent-loop section: each controller on the replayed days, and the autopilot's
    /// first plan that answered a broken objective.
    fn intent_loop_text(&self, o: &mut String) {
        let r = &self.intent_loop;
        let _ = writeln!(
            o,
            "\nIntent loop (`dcpilot planner replay`: {} days, nginx p99 <= {} ms, plant from the co-runner mixes of the NTUA runs matching {:?}, model and rule from the basic scenarios; mean [95 % interval] per day):",
            r.traces.len(),
            r.config.slo_p99_ms,
            r.plant_runs
        );
        for s in &r.summary {
            let _ = writeln!(
                o,
                "  {:<14} {:>6.1} [{:>5.1}, {:>5.1}] violation minutes  {:>7.1} replica-minutes  {:>5.1} actions",
                s.controller,
                s.violation_minutes.mean,
                s.violation_minutes.low,
                s.violation_minutes.high,
                s.replica_minutes.mean,
                s.actions.mean
            );
        }
        let v = &r.verdict;
        let _ = writeln!(
            o,
            "  autopilot: {:.2}x the violation minutes of the best baseline ({}) at {:.2}x its replica-minutes; goal <= 0.7x at <= 1x {}",
            v.violation_ratio,
            v.best_baseline,
            v.replica_ratio,
            if v.goal_met { "met" } else { "not met" }
        );
        // An example of the loop at work: its first change that answered a broken
        // objective (one that mended it, if any did).
        let slo = r.config.slo_p99_ms;
        let changes: Vec<_> = r
            .traces
            .iter()
            .filter_map(|t| t.outcomes.iter().find(|o| o.controller == "autopilot"))
            .flat_map(|o| &o.changes)
            .filter(|c| c.p99_before_ms.is_some_and(|p| p > slo))
            .collect();
        let example = changes
            .iter()
            .find(|c| c.p99_after_ms.is_some_and(|p| p <= slo))
            .or(changes.first());
        if let Some(c) = example {
            let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} ms"));
            let _ = writeln!(
                o,
                "  e.g. minute {}: {} on {}, {:.0} req/s, p99 {} (violated) -> the autopilot sets replicas on node-a/node-b from {}/{} to {}/{}; once its replicas served p99 {}",
                c.minute,
                c.scenario,
                c.noisy_node,
                c.rps,
                ms(c.p99_before_ms),
                c.from[0],
                c.from[1],
                c.to[0],
                c.to[1],
                ms(c.p99_after_ms)
            );
        }
    }

    /// The report as one HTML page with inline SVG plots: each model's predictions against
    /// the truth on its holdout, and the placement latency histogram.
    pub fn html(&self) -> Result<String> {
        let mut plots = String::new();
        for (job, points) in self
            .holdout_predictions
            .iter()
            .filter(|(_, p)| !p.is_empty())
        {
            let title = format!(
                "{job}: predicted vs actual on its holdout ({} rows)",
                points.len()
            );
            plots.push_str(&predicted_vs_actual(&title, points)?);
        }
        let p = &self.foreground.placements;
        plots.push_str(&latency_histogram(
            &format!("placement round trips over HTTP ({} requests)", p.count),
            &p.latencies_ms,
        )?);
        let mut rows = String::new();
        for m in &self.models {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3} ({})</td><td>{}</td></tr>",
                escape(&m.name),
                m.version.map_or("-".to_string(), |v| v.to_string()),
                escape(&m.metric),
                m.model_error,
                m.baseline_error,
                escape(&m.baseline),
                escape(&m.outcome)
            );
        }
        let decisions: String = self
            .foreground
            .decisions
            .iter()
            .map(|d| {
                format!(
                    "<li><b>{}</b> → {}: {}</li>",
                    escape(&d.workload),
                    escape(&d.chosen),
                    escape(&d.explanation)
                )
            })
            .collect();
        Ok(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>dcpilot demo</title>\
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}svg{{margin:8px}}</style></head><body>\
<h1>dcpilot demo</h1><p>{} real-trace samples ingested (Bitbrains + NTUA).</p>\
<h2>Effect models</h2><table><tr><th>model</th><th>version</th><th>metric</th><th>model error</th><th>best baseline error</th><th>outcome</th></tr>{rows}</table>\
<h2>Placements</h2><p>{} requests over HTTP: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; budget overruns {}.</p><ul>{decisions}</ul>\
<h2>Plots</h2><div>{plots}</div></body></html>\n",
            self.ingested_samples, p.count, p.p50_ms, p.p99_ms, p.max_ms, p.budget_overruns
        ))
    }
}
