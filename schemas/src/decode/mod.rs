//! Telemetry and landscape decoders.
//!
//! A decoder turns one Kafka message payload into samples pushed to a [`SampleSink`]. It never
//! fails as a whole: every record (line, array element, value list) that cannot be decoded is
//! reported as a [`RecordError`] and the rest of the message still decodes.

mod collectd;
mod influx;
mod json;
mod native;

use std::fmt;
use std::str::FromStr;

pub use collectd::{CollectdDecoder, CounterForm};
pub use influx::InfluxDecoder;
pub use native::{LandscapeDecoder, NativeDecoder};

use crate::wire::{SampleRef, TelemetrySample};

/// Errors kept per message; further errors are counted but their text is dropped so a
/// gigantic garbage message cannot make us allocate without bound.
pub const MAX_ERRORS_KEPT: usize = 32;

/// A wire format of `dcpilot.telemetry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// dcpilot's native JSON: one object, an array, or newline-delimited objects.
    Native,
    /// collectd `write_kafka` with `Format JSON`.
    Collectd,
    /// Influx line protocol (Telegraf's Kafka output default).
    Influx,
    /// Detected per message (see [`detect_format`]).
    Auto,
}

impl Format {
    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Collectd => "collectd",
            Self::Influx => "influx",
            Self::Auto => "auto",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = crate::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(Self::Native),
            "collectd" => Ok(Self::Collectd),
            "influx" => Ok(Self::Influx),
            "auto" => Ok(Self::Auto),
            other => Err(crate::Invalid(format!(
                "unknown format `{other}`: expected one of native, collectd, influx, auto"
            ))),
        }
    }
}

/// Guesses the format of one payload from its first bytes: JSON arrays whose objects carry
/// `dstypes` are collectd, other JSON is native, anything else is Influx line protocol.
pub fn detect_format(payload: &[u8]) -> Format {
    let Some(first) = payload.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Format::Native;
    };
    match payload[first] {
        b'[' => {
            let head = &payload[first..payload.len().min(first + 1024)];
            if memchr::memmem::find(head, b"\"dstypes\"").is_some() {
                Format::Collectd
            } else {
                Format::Native
            }
        }
        b'{' => Format::Native,
        _ => Format::Influx,
    }
}

/// What is wrong with a record. The `as_str` names are the `kind` label of the decode-error
/// metric and the `dcpilot.error.kind` header of dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// The message has no records at all.
    Empty,
    /// Bytes that are not UTF-8 where text is required.
    InvalidUtf8,
    /// Not well-formed JSON.
    MalformedJson,
    /// Well-formed JSON of the wrong shape: missing, unknown or mistyped field.
    SchemaMismatch,
    /// A field has a value outside its domain (empty name, negative time, ...).
    InvalidValue,
    /// Not well-formed Influx line protocol.
    InfluxSyntax,
}

impl DecodeErrorKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::Empty,
        Self::InvalidUtf8,
        Self::MalformedJson,
        Self::SchemaMismatch,
        Self::InvalidValue,
        Self::InfluxSyntax,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::MalformedJson => "malformed_json",
            Self::SchemaMismatch => "schema_mismatch",
            Self::InvalidValue => "invalid_value",
            Self::InfluxSyntax => "influx_syntax",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record that could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// Index of the record in the message (line or array element), from 0.
    pub record: usize,
    /// What is wrong, as a category.
    pub kind: DecodeErrorKind,
    /// What is wrong, for a human.
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}: {}: {}", self.record, self.kind, self.message)
    }
}

impl RecordError {
    pub(crate) fn new(record: usize, kind: DecodeErrorKind, message: impl Into<String>) -> Self {
        Self {
            record,
            kind,
            message: message.into(),
        }
    }
}

/// The result of decoding one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeOutcome {
    /// Samples pushed to the sink.
    pub samples: usize,
    /// Records that could not be decoded (at most [`MAX_ERRORS_KEPT`] kept).
    pub errors: Vec<RecordError>,
    /// All bad records, including those whose text was dropped.
    pub error_count: usize,
}

impl DecodeOutcome {
    /// Records a record that decoded but was refused later (the landscape graph's checks),
    /// so it goes to the dead-letter topic like a bad one.
    pub fn reject(&mut self, error: RecordError) {
        self.error(error);
    }

    pub(crate) fn error(&mut self, error: RecordError) {
        self.error_count += 1;
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(error);
        }
    }

    /// True when every record decoded.
    pub fn is_clean(&self) -> bool {
        self.error_count == 0
    }

    /// The kind of the first error, if any.
    pub fn first_error_kind(&self) -> Option<DecodeErrorKind> {
        self.errors.first().map(|e| e.kind)
    }
}

/// Context a decoder may need beyond the payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeContext {
    /// Time to use for records without their own timestamp (Influx lines may omit it):
    /// the Kafka message timestamp, in Unix milliseconds.
    pub default_timestamp_ms: i64,
}

/// Where decoded samples go: an Arrow batch builder on the ingest path, a `Vec` elsewhere.
pub trait SampleSink {
    /// Takes one decoded, validated sample.
    fn push(&mut self, sample: &SampleRef<'_>);
}

impl SampleSink for Vec<TelemetrySample> {
    fn push(&mut self, sample: &SampleRef<'_>) {
        Vec::push(self, sample.to_owned_sample());
    }
}

/// A telemetry decoder for one format. Decoders may keep state across messages (collectd
/// counters become rates), so each ingest worker owns its own.
pub trait TelemetryDecoder: Send {
    /// The format this decoder reads.
    fn format(&self) -> Format;
    /// Decodes one payload, pushing good samples and reporting bad records.
    fn decode(
        &mut self,
        payload: &[u8],
        ctx: &DecodeContext,
        sink: &mut dyn SampleSink,
    ) -> DecodeOutcome;
}

/// Settings of the decoders (`[ingest]` keys of the background config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderOptions {
    /// How collectd's `derive`/`counter` values arrive.
    pub collectd_counters: CounterForm,
}

/// Every telemetry decoder, one per wire format: the one place a new format is added (with
/// its [`Format`] variant and, for `auto`, a rule in [`detect_format`]).
pub fn decoders(options: &DecoderOptions) -> Vec<Box<dyn TelemetryDecoder>> {
    vec![
        Box::new(NativeDecoder),
        Box::new(CollectdDecoder::new(options.collectd_counters)),
        Box::new(InfluxDecoder),
    ]
}

/// The decoder configured for a topic: a fixed format, or per-message detection, over the
/// registry of [`decoders`].
pub struct Decoder {
    format: Option<Format>,
    decoders: Vec<Box<dyn TelemetryDecoder>>,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder for `format` (`Format::Auto` detects per message) with default options.
    pub fn new(format: Format) -> Self {
        Self::with_options(format, &DecoderOptions::default())
    }

    /// A decoder for `format` with the given options.
    pub fn with_options(format: Format, options: &DecoderOptions) -> Self {
        Self {
            format: (format != Format::Auto).then_some(format),
            decoders: decoders(options),
        }
    }

    /// Decodes one payload in the configured or detected format; returns that format too.
    pub fn decode(
        &mut self,
        payload: &[u8],
        ctx: &DecodeContext,
        sink: &mut dyn SampleSink,
    ) -> (Format, DecodeOutcome) {
        let format = match self.format.unwrap_or_else(|| detect_format(payload)) {
            Format::Auto => Format::Native,
            known => known,
        };
        let outcome = match self.decoders.iter_mut().find(|d| d.format() == format) {
            Some(decoder) => decoder.decode(payload, ctx, sink),
            None => {
                // Unreachable with the built-in registry, which covers every format.
                let mut outcome = DecodeOutcome::default();
                outcome.error(RecordError::new(
                    0,
                    DecodeErrorKind::SchemaMismatch,
                    format!("no decoder registered for format {format}"),
                ));
                outcome
            }
        };
        (format, outcome)
    }
}

/// Checks the fields every sample must satisfy, whatever its wire format.
pub(crate) fn validate(sample: &SampleRef<'_>) -> Result<(), String> {
    // Unix milliseconds before 1973 are almost surely seconds sent by mistake.
    const MIN_PLAUSIBLE_MS: i64 = 100_000_000_000;
    if sample.entity.is_empty() {
        return Err("`entity` is empty".into());
    }
    if sample.metric.is_empty() {
        return Err("`metric` is empty".into());
    }
    if !sample.value.is_finite() {
        return Err(format!("`value` {} is not finite", sample.value));
    }
    if sample.timestamp_ms < MIN_PLAUSIBLE_MS {
        return Err(format!(
            "`timestamp_ms` {} is before 1973: send Unix milliseconds, not seconds",
            sample.timestamp_ms
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        assert_eq!(detect_format(b"  {\"a\":1}"), Format::Native);
        assert_eq!(detect_format(b"[{\"entity\":\"x\"}]"), Format::Native);
        assert_eq!(
            detect_format(b"[{\"values\":[1],\"dstypes\":[\"gauge\"]}]"),
            Format::Collectd
        );
        assert_eq!(detect_format(b"cpu,host=a usage=1 1"), Format::Influx);
        assert_eq!(detect_format(b""), Format::Native);
    }

    #[test]
    fn parses_format_names() {
        for f in [
            Format::Native,
            Format::Collectd,
            Format::Influx,
            Format::Auto,
        ] {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
        assert!("protobuf".parse::<Format>().is_err());
    }
}
