//! `dcpilot replay`: a trace sent to the telemetry topic — a telemetry trace (Bitbrains,
//! NTUA, native samples) or a whole trace directory (Nezha or native: its landscape to the
//! landscape topic first, then its telemetry).

use std::path::{Path, PathBuf};

use dcpilot_background::config::KafkaConfig;
use dcpilot_background::replay::{replay, ReplayKey, ReplayOptions, ReplayStats};

use crate::datasets::{read_trace, TraceFormat};
use crate::error::{Context, LabError, Result};

/// What to replay, where to.
#[derive(Debug, Clone)]
pub struct TraceReplay {
    /// Trace file or directory.
    pub source: PathBuf,
    /// The telemetry format, or `None` for a whole trace directory.
    pub format: Option<TraceFormat>,
    /// The landscape topic (trace directories); default: the configuration's.
    pub landscape_topic: Option<String>,
    /// Bootstrap servers.
    pub brokers: String,
    /// The telemetry topic.
    pub topic: String,
    /// Event-time speed-up; 0 = unpaced.
    pub speedup: f64,
    /// Message key.
    pub key: ReplayKey,
}

/// The bootstrap servers to send to: those given, else the configuration's, else the
/// embedded broker of a `dcpilot background` running on `data_dir`.
pub fn brokers(given: Option<String>, kafka: &KafkaConfig, data_dir: &Path) -> Result<String> {
    match given.or_else(|| kafka.brokers.clone()) {
        Some(b) => Ok(b),
        None => dcpilot_background::broker::read_broker_address(data_dir).ok_or_else(|| {
            LabError::Invalid(format!(
                "no --brokers given and no embedded broker address in {}; start `dcpilot background` first",
                data_dir.display()
            ))
        }),
    }
}

/// Sends the trace; says what it does on stderr as it goes.
pub fn send(r: TraceReplay, kafka: &KafkaConfig) -> Result<ReplayStats> {
    if !(r.speedup >= 0.0 && r.speedup.is_finite()) {
        return Err(LabError::Invalid(format!(
            "--speedup must be a non-negative number, got {}",
            r.speedup
        )));
    }
    let samples = match r.format {
        Some(format) => {
            let trace = read_trace(format, &r.source)?;
            if !trace.skipped.is_empty() {
                eprintln!("{}: {}", r.source.display(), trace.skipped);
            }
            trace.samples
        }
        None => {
            let trace = crate::rca::load(&r.source)?;
            let topic = r
                .landscape_topic
                .clone()
                .unwrap_or_else(|| kafka.landscape_topic.clone());
            let events = crate::rca::send_landscape(&trace, kafka, &r.brokers, &topic)
                .context("sending the landscape")?;
            eprintln!("sent {events} landscape events to {topic}");
            crate::datasets::native::samples(&trace)
        }
    };
    eprintln!(
        "replaying {} samples from {} to {} at {}",
        samples.len(),
        r.source.display(),
        r.topic,
        r.brokers
    );
    let options = ReplayOptions {
        brokers: r.brokers,
        topic: r.topic,
        speedup: r.speedup,
        key: r.key,
    };
    let stats = replay(&samples, kafka, &options, |sent, total| {
        eprint!("\r  {sent}/{total} messages");
    })?;
    eprintln!(
        "\nsent {} samples in {} messages in {:.1}s",
        stats.samples,
        stats.messages,
        stats.elapsed.as_secs_f64()
    );
    Ok(stats)
}
