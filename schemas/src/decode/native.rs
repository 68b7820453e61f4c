//! dcpilot's native JSON: [`crate::TelemetrySample`] and [`crate::LandscapeEvent`] objects.

use super::json::for_each_record;
use super::{
    validate, DecodeContext, DecodeErrorKind, DecodeOutcome, Format, RecordError, SampleSink,
    TelemetryDecoder,
};
use crate::wire::{LandscapeEvent, SampleRef};

/// Decodes native telemetry JSON (one object, an array, or NDJSON).
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeDecoder;

impl TelemetryDecoder for NativeDecoder {
    fn format(&self) -> Format {
        Format::Native
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _ctx: &DecodeContext,
        sink: &mut dyn SampleSink,
    ) -> DecodeOutcome {
        let mut outcome = DecodeOutcome::default();
        let mut samples = 0;
        for_each_record(payload, &mut outcome, |index, sample: SampleRef<'_>| {
            validate(&sample)
                .map_err(|m| RecordError::new(index, DecodeErrorKind::InvalidValue, m))?;
            sink.push(&sample);
            samples += 1;
            Ok(())
        });
        outcome.samples = samples;
        outcome
    }
}

/// Decodes landscape events (native JSON only).
#[derive(Debug, Default, Clone, Copy)]
pub struct LandscapeDecoder;

impl LandscapeDecoder {
    /// Decodes one payload, passing each valid event to `on_event`.
    pub fn decode(
        &self,
        payload: &[u8],
        mut on_event: impl FnMut(LandscapeEvent),
    ) -> DecodeOutcome {
        let mut outcome = DecodeOutcome::default();
        let mut events = 0;
        for_each_record(payload, &mut outcome, |index, event: LandscapeEvent| {
            validate_event(&event)
                .map_err(|m| RecordError::new(index, DecodeErrorKind::InvalidValue, m))?;
            on_event(event);
            events += 1;
            Ok(())
        });
        outcome.samples = events;
        outcome
    }
}

fn validate_event(event: &LandscapeEvent) -> Result<(), String> {
    if event.timestamp_ms() < 0 {
        return Err("`timestamp_ms` is negative".into());
    }
    match event {
        LandscapeEvent::HostUp { host, cores, .. } => {
            if host.is_empty() {
                return Err("`host` is empty".into());
            }
            if !cores.is_finite() || *cores <= 0.0 {
                return Err(format!("`cores` must be positive, got {cores}"));
            }
        }
        LandscapeEvent::HostDown { host, .. } if host.is_empty() => {
            return Err("`host` is empty".into())
        }
        LandscapeEvent::InstancePlaced {
            instance,
            workload,
            host,
            cpu_request,
            ..
        } => {
            if instance.is_empty() || workload.is_empty() || host.is_empty() {
                return Err("`instance`, `workload` and `host` must not be empty".into());
            }
            if !cpu_request.is_finite() || *cpu_request < 0.0 {
                return Err(format!("`cpu_request` must be >= 0, got {cpu_request}"));
            }
        }
        LandscapeEvent::InstanceRemoved { instance, .. } if instance.is_empty() => {
            return Err("`instance` is empty".into())
        }
        LandscapeEvent::NodeUp { node, .. } => node.check().map_err(|e| e.0)?,
        LandscapeEvent::NodeDown { id, .. } if id.trim().is_empty() => {
            return Err("`id` is empty".into())
        }
        LandscapeEvent::EdgeUp { edge, .. } => edge.check().map_err(|e| e.0)?,
        LandscapeEvent::EdgeDown { source, target, .. }
            if source.trim().is_empty() || target.trim().is_empty() =>
        {
            return Err("`source` and `target` must not be empty".into())
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TelemetrySample;

    fn decode(payload: &str) -> (Vec<TelemetrySample>, DecodeOutcome) {
        let mut out = Vec::new();
        let outcome = NativeDecoder.decode(payload.as_bytes(), &DecodeContext::default(), &mut out);
        (out, outcome)
    }

    const GOOD: &str = r#"{"timestamp_ms":1690000000000,"entity":"vm-1","host":"h1","metric":"cpu","value":1.5,"labels":{"a":"b"}}"#;

    #[test]
    fn object_array_and_ndjson() {
        let (s, o) = decode(GOOD);
        assert_eq!((s.len(), o.error_count), (1, 0));
        assert_eq!(s[0].labels.get("a").map(String::as_str), Some("b"));
        let (s, o) = decode(&format!("[{GOOD},{GOOD}]"));
        assert_eq!((s.len(), o.error_count), (2, 0));
        let (s, o) = decode(&format!("{GOOD}\n{GOOD}\n\n{GOOD}\n"));
        assert_eq!((s.len(), o.error_count), (3, 0));
    }

    #[test]
    fn bad_line_in_ndjson_keeps_the_others() {
        let (s, o) = decode(&format!("{GOOD}\n{{\"entity\": oops\n{GOOD}\n"));
        assert_eq!(s.len(), 2);
        assert_eq!(o.error_count, 1);
        assert_eq!(o.errors[0].record, 1);
        assert_eq!(o.errors[0].kind, DecodeErrorKind::MalformedJson);
    }

    #[test]
    fn names_the_problem() {
        let (_, o) = decode(r#"{"timestamp_ms":1690000000000,"entity":"vm","metric":"m"}"#);
        assert_eq!(o.errors[0].kind, DecodeErrorKind::SchemaMismatch);
        assert!(
            o.errors[0].message.contains("value"),
            "{}",
            o.errors[0].message
        );
        let (_, o) = decode(r#"{"timestamp_ms":1690000000,"entity":"vm","metric":"m","value":1}"#);
        assert_eq!(o.errors[0].kind, DecodeErrorKind::InvalidValue);
        assert!(o.errors[0].message.contains("seconds"));
        let (_, o) = decode(r#"{"timestamp_ms":1690000000000,"entity":"","metric":"m","value":1}"#);
        assert!(o.errors[0].message.contains("entity"));
        let (_, o) = decode("   ");
        assert_eq!(o.errors[0].kind, DecodeErrorKind::Empty);
        let (_, o) = decode(
            r#"{"timestamp_ms":1690000000000,"entity":"v","metric":"m","value":1,"colour":"red"}"#,
        );
        assert!(o.errors[0].message.contains("colour"));
    }

    #[test]
    fn landscape_events() {
        let payload = r#"[{"kind":"host_up","timestamp_ms":1,"host":"h1","cores":8,"memory_bytes":1024,"features":{"sriov":true,"numa_nodes":2}},
            {"kind":"instance_placed","timestamp_ms":2,"instance":"i1","workload":"web","host":"h1","cpu_request":0.5,"memory_request_bytes":10},
            {"kind":"host_up","timestamp_ms":1,"host":"h2","cores":0,"memory_bytes":1},
            {"kind":"teleported","timestamp_ms":1}]"#;
        let mut events = Vec::new();
        let o = LandscapeDecoder.decode(payload.as_bytes(), |e| events.push(e));
        assert_eq!(events.len(), 2);
        assert_eq!(o.error_count, 2);
        assert_eq!(o.errors[0].kind, DecodeErrorKind::InvalidValue);
        assert_eq!(o.errors[1].kind, DecodeErrorKind::SchemaMismatch);
    }
}
