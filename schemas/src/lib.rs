//! Wire types of every dcpilot topic, their Arrow schemas, and the telemetry decoders.
//!
//! Producers write [`TelemetrySample`]s (native JSON), collectd `write_kafka` JSON or Influx
//! line protocol to `dcpilot.telemetry`, and [`LandscapeEvent`]s to `dcpilot.landscape`.
//! Decoders turn payloads into rows of the `telemetry` / `landscape` Arrow schemas; every
//! record that cannot be decoded becomes a [`RecordError`] naming what is wrong. Names that
//! cross crates and processes (topics, models, the data directory's layout) are in [`names`].

pub mod arrow_schema;
pub mod config_env;
pub mod decode;
pub mod graph;
pub mod invalid;
pub mod names;
pub mod skipped;
pub mod wire;

pub use arrow_schema::{
    landscape_schema, telemetry_schema, LandscapeBatchBuilder, TelemetryBatchBuilder,
};
pub use decode::{
    decoders, detect_format, CollectdDecoder, CounterForm, DecodeContext, DecodeErrorKind,
    DecodeOutcome, Decoder, DecoderOptions, Format, InfluxDecoder, LandscapeDecoder, NativeDecoder,
    RecordError, SampleSink, TelemetryDecoder,
};
pub use graph::{Category, EdgeSpec, Layer, NodeSpec, Relation};
pub use invalid::Invalid;
pub use skipped::Skipped;
pub use wire::{LandscapeEvent, PlatformFeatures, SampleRef, TelemetrySample};
