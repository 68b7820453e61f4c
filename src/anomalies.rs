//! `dcpilot anomalies …`: the landscape's colouring and root-cause ranking on a trace
//! directory held in memory, for data scientists and for judging the method.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use dcpilot_info_core::anomaly::{detect, nezha, RankParams, Window};
use serde_json::json;

/// `dcpilot anomalies` subcommands.
#[derive(clap::Subcommand)]
pub enum AnomaliesCommand {
    /// The ranking of root-cause candidates for one moment, best first, with evidence.
    Rank {
        /// The moment (Unix seconds): behaviour from it on is judged against before it.
        #[arg(long)]
        at: i64,
        /// How many candidates to print (JSON prints them all).
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// AC@1, AC@3, AC@5 and Avg@5 over every labelled fault, next to naive rankers.
    Evaluate,
}

/// Runs a subcommand on the trace directory `data` (the Nezha format).
pub fn run(
    data: &Path,
    detector: &str,
    command: AnomaliesCommand,
    json_out: bool,
) -> Result<ExitCode> {
    let detector = detect::by_name(detector).map_err(anyhow::Error::msg)?;
    let trace = nezha::load(data).with_context(|| format!("reading {}", data.display()))?;
    let (window, params) = (Window::default(), RankParams::default());
    let out = match command {
        AnomaliesCommand::Rank { at, top } => {
            let colouring = nezha::rank_at(&trace, at, detector.as_ref(), &window, &params);
            if json_out {
                let mut problems = trace.problems.clone();
                problems.extend(colouring.problems.iter().cloned());
                serde_json::to_string_pretty(&json!({
                    "at": at,
                    "detector": colouring.detector,
                    "ranking": colouring.ranking,
                    "entities": colouring.entities,
                    "problems": problems,
                }))?
            } else {
                let mut text = format!(
                    "root-cause candidates at {at} ({}), best first:\n",
                    colouring.detector
                );
                for (i, c) in colouring.ranking.iter().take(top).enumerate() {
                    let metrics: Vec<String> = c
                        .evidence
                        .metrics
                        .iter()
                        .map(|m| format!("{} {:+.1}σ", m.metric, m.score.deviation))
                        .collect();
                    let _ = write!(
                        text,
                        "{:>3}. {:<32} {:<8} score {:>6.2}  {}",
                        i + 1,
                        c.entity,
                        c.kind,
                        c.score,
                        metrics.join(", ")
                    );
                    if let Some(by) = &c.evidence.explained_by {
                        let _ = write!(
                            text,
                            "  (explained by {} -{}-> {})",
                            by.from, by.relation, by.to
                        );
                    }
                    if !c.evidence.explains.is_empty() {
                        let who: Vec<&str> = c
                            .evidence
                            .explains
                            .iter()
                            .map(|l| l.from.as_str())
                            .collect();
                        let _ = write!(text, "  (explains {})", who.join(", "));
                    }
                    text.push('\n');
                }
                for p in trace.problems.iter().chain(&colouring.problems) {
                    let _ = writeln!(text, "note: {p}");
                }
                text
            }
        }
        AnomaliesCommand::Evaluate => {
            let evaluation = nezha::evaluate(&trace, detector.as_ref(), &window, &params);
            if json_out {
                serde_json::to_string_pretty(&evaluation)?
            } else {
                let mut text = format!(
                    "{} faults, {} services ranked\n{:<24} {:>5} {:>5} {:>5} {:>6}\n",
                    evaluation.faults,
                    evaluation.services,
                    "ranker",
                    "AC@1",
                    "AC@3",
                    "AC@5",
                    "Avg@5"
                );
                let name = format!("dcpilot ({})", detector.name());
                for (name, a) in
                    std::iter::once((&name, &evaluation.method)).chain(evaluation.baselines.iter())
                {
                    let _ = writeln!(
                        text,
                        "{name:<24} {:>5.2} {:>5.2} {:>5.2} {:>6.2}",
                        a.ac1, a.ac3, a.ac5, a.avg5
                    );
                }
                for p in &evaluation.problems {
                    let _ = writeln!(text, "note: {p}");
                }
                text
            }
        }
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// The trace directory argument, checked early so a typo is named.
pub fn data_dir(data: PathBuf) -> Result<PathBuf> {
    anyhow::ensure!(data.is_dir(), "--data {}: not a directory", data.display());
    Ok(data)
}
