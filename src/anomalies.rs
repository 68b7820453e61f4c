//! `dcpilot anomalies …`: arguments; the work is `dcpilot_lab::rca`.

use std::path::PathBuf;

use dcpilot_lab::datasets::TraceFormat;

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
    /// Writes the trace as a native trace directory (telemetry.ndjson, landscape.ndjson,
    /// faults.json), e.g. to replay it or to edit its labels.
    Export {
        /// The directory to write (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// What `dcpilot replay --format` reads: a telemetry trace, or a whole trace directory.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReplayFormat {
    /// Bitbrains GWA-T-12 VM files.
    Bitbrains,
    /// NTUA nginx interference runs.
    Ntua,
    /// Native NDJSON samples.
    Native,
    /// A trace directory (Nezha or native): its landscape, then its telemetry.
    Nezha,
}

impl ReplayFormat {
    /// The telemetry trace format, or `None` for a whole trace directory.
    pub fn samples(self) -> Option<TraceFormat> {
        match self {
            Self::Bitbrains => Some(TraceFormat::Bitbrains),
            Self::Ntua => Some(TraceFormat::Ntua),
            Self::Native => Some(TraceFormat::Native),
            Self::Nezha => None,
        }
    }
}

/// Runs one `anomalies` subcommand on the trace directory `data`; returns what to print.
pub fn run(
    data: &std::path::Path,
    method: &dcpilot_lab::rca::Method,
    command: AnomaliesCommand,
    json: bool,
) -> anyhow::Result<String> {
    use dcpilot_lab::rca;
    let trace = rca::load(data)?;
    Ok(match command {
        AnomaliesCommand::Rank { at, top } => {
            let report = rca::rank(&trace, method, at);
            if json {
                serde_json::to_string_pretty(&report)?
            } else {
                report.text(top)
            }
        }
        AnomaliesCommand::Export { out } => rca::export(&trace, &out)?,
        AnomaliesCommand::Evaluate => {
            let evaluation = rca::evaluate(
                &trace,
                method.detector.as_ref(),
                &method.window,
                &method.params,
            );
            if json {
                serde_json::to_string_pretty(&evaluation)?
            } else {
                evaluation.text(method.detector.name())
            }
        }
    })
}
