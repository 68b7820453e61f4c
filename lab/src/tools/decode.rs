//! `dcpilot decode`: telemetry (or landscape events) in any producer format decoded as the
//! background would, printed as NDJSON with every bad record as an error line.

use std::io::Write;

use dcpilot_schemas::decode::Decoder;
use dcpilot_schemas::{DecodeContext, Format, LandscapeDecoder, TelemetrySample};
use serde::Serialize;

use crate::error::Result;

/// One bad record, as its error line prints it.
#[derive(Serialize)]
struct ErrorLine<'a> {
    error: RecordLine<'a>,
}

#[derive(Serialize)]
struct RecordLine<'a> {
    record: usize,
    kind: &'a str,
    reason: &'a str,
}

/// What a decode found: NDJSON to print, and a summary for stderr.
pub struct Decoded {
    /// One JSON object per line: each sample or event, then each bad record's error.
    pub ndjson: Vec<u8>,
    /// The detected format, bad records left out of the list, counts.
    pub summary: String,
    /// Whether every record decoded.
    pub clean: bool,
}

/// Decodes `input` (telemetry in `format`, or landscape events).
pub fn decode(input: &[u8], format: Format, landscape: bool) -> Result<Decoded> {
    let mut out = Vec::new();
    let mut summary = String::new();
    let outcome = if landscape {
        let mut events = Vec::new();
        let outcome = LandscapeDecoder.decode(input, |e| events.push(e));
        for e in &events {
            serde_json::to_writer(&mut out, e)?;
            writeln!(out)?;
        }
        outcome
    } else {
        let mut samples: Vec<TelemetrySample> = Vec::new();
        let ctx = DecodeContext {
            default_timestamp_ms: dcpilot_info_core::now_ms(),
        };
        let (detected, outcome) = Decoder::new(format).decode(input, &ctx, &mut samples);
        if format == Format::Auto {
            summary.push_str(&format!("detected format: {detected}\n"));
        }
        for s in &samples {
            serde_json::to_writer(&mut out, s)?;
            writeln!(out)?;
        }
        outcome
    };
    for e in &outcome.errors {
        let line = ErrorLine {
            error: RecordLine {
                record: e.record,
                kind: e.kind.as_str(),
                reason: &e.message,
            },
        };
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
    }
    let dropped = outcome.error_count - outcome.errors.len();
    if dropped > 0 {
        summary.push_str(&format!("... and {dropped} more bad records\n"));
    }
    summary.push_str(&format!(
        "{} decoded, {} bad",
        outcome.samples, outcome.error_count
    ));
    Ok(Decoded {
        ndjson: out,
        summary,
        clean: outcome.is_clean(),
    })
}
