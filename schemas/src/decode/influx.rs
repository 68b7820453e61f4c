//! Influx line protocol, as Telegraf's Kafka output writes it by default:
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp_ns]`.
//! One sample per numeric or boolean field, named `measurement_field`; the `entity` tag (or
//! else `host`) names the entity, `workload` the workload, other tags become labels. String
//! fields carry no number and are skipped.

use std::borrow::Cow;

use super::{
    validate, DecodeContext, DecodeErrorKind, DecodeOutcome, Format, RecordError, SampleSink,
    TelemetryDecoder,
};
use crate::wire::SampleRef;

/// Decodes Influx line protocol with nanosecond timestamps.
#[derive(Debug, Default, Clone, Copy)]
pub struct InfluxDecoder;

enum FieldValue {
    Number(f64),
    Text,
}

struct Line<'a> {
    measurement: Cow<'a, str>,
    tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    fields: Vec<(Cow<'a, str>, FieldValue)>,
    timestamp_ns: Option<i64>,
}

/// A cursor over one line.
struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Reads up to (not including) the first unescaped byte of `stops`, removing the
    /// backslashes of escaped ones.
    fn token(&mut self, stops: &[u8]) -> Cow<'a, str> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let mut escaped = false;
        while let Some(&b) = bytes.get(self.pos) {
            if b == b'\\'
                && bytes
                    .get(self.pos + 1)
                    .is_some_and(|n| stops.contains(n) || *n == b'\\' || *n == b'=')
            {
                escaped = true;
                self.pos += 2;
                continue;
            }
            if stops.contains(&b) {
                break;
            }
            self.pos += 1;
        }
        let raw = &self.s[start..self.pos];
        if !escaped {
            return Cow::Borrowed(raw);
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(&n) = chars.peek() {
                    if n.is_ascii() && (stops.contains(&(n as u8)) || n == '\\' || n == '=') {
                        out.push(n);
                        chars.next();
                        continue;
                    }
                }
            }
            out.push(c);
        }
        Cow::Owned(out)
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {what} at column {}", self.pos + 1))
        }
    }

    /// A double-quoted string field; its content is not used.
    fn skip_string(&mut self) -> Result<(), String> {
        let bytes = self.s.as_bytes();
        self.pos += 1;
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
        Err("unterminated string field".into())
    }
}

fn parse_number(raw: &str) -> Result<f64, String> {
    let bad = || format!("field value `{raw}` is not a number, integer, unsigned or boolean");
    match raw {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(0.0),
        _ => {}
    }
    if let Some(int) = raw.strip_suffix('i') {
        return int.parse::<i64>().map(|v| v as f64).map_err(|_| bad());
    }
    if let Some(uint) = raw.strip_suffix('u') {
        return uint.parse::<u64>().map(|v| v as f64).map_err(|_| bad());
    }
    // `f64::from_str` accepts "inf" and "NaN"; line protocol does not.
    if !raw
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return Err(bad());
    }
    raw.parse::<f64>().map_err(|_| bad())
}

fn parse_line(line: &str) -> Result<Line<'_>, String> {
    let mut sc = Scanner { s: line, pos: 0 };
    let measurement = sc.token(b", ");
    if measurement.is_empty() {
        return Err("missing measurement".into());
    }
    let mut tags = Vec::new();
    while sc.peek() == Some(b',') {
        sc.pos += 1;
        let key = sc.token(b"=, ");
        sc.expect(b'=', "`=` after tag key")?;
        let value = sc.token(b", ");
        if key.is_empty() || value.is_empty() {
            return Err(format!("empty tag key or value near column {}", sc.pos));
        }
        tags.push((key, value));
    }
    sc.expect(b' ', "a space before the fields")?;
    let mut fields = Vec::new();
    loop {
        let key = sc.token(b"=, ");
        if key.is_empty() {
            return Err(format!("empty field key at column {}", sc.pos + 1));
        }
        sc.expect(b'=', "`=` after field key")?;
        let value = if sc.peek() == Some(b'"') {
            sc.skip_string()?;
            FieldValue::Text
        } else {
            let raw = sc.token(b", ");
            FieldValue::Number(parse_number(&raw)?)
        };
        fields.push((key, value));
        if sc.peek() == Some(b',') {
            sc.pos += 1;
        } else {
            break;
        }
    }
    let timestamp_ns =
        match sc.peek() {
            None => None,
            Some(b' ') => {
                let raw = line[sc.pos..].trim();
                if raw.is_empty() {
                    None
                } else {
                    Some(raw.parse::<i64>().map_err(|_| {
                        format!("timestamp `{raw}` is not an integer of nanoseconds")
                    })?)
                }
            }
            Some(_) => return Err(format!("unexpected character at column {}", sc.pos + 1)),
        };
    Ok(Line {
        measurement,
        tags,
        fields,
        timestamp_ns,
    })
}

impl TelemetryDecoder for InfluxDecoder {
    fn format(&self) -> Format {
        Format::Influx
    }

    fn decode(
        &mut self,
        payload: &[u8],
        ctx: &DecodeContext,
        sink: &mut dyn SampleSink,
    ) -> DecodeOutcome {
        let mut outcome = DecodeOutcome::default();
        let mut records = 0;
        for (index, raw) in payload.split(|&b| b == b'\n').enumerate() {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) || raw.first() == Some(&b'#') {
                continue;
            }
            records += 1;
            let Ok(line) = std::str::from_utf8(raw) else {
                outcome.error(RecordError::new(
                    index,
                    DecodeErrorKind::InvalidUtf8,
                    "line is not UTF-8",
                ));
                continue;
            };
            if let Err(e) = emit_line(line, index, ctx, sink, &mut outcome.samples) {
                outcome.error(e);
            }
        }
        if records == 0 {
            outcome.error(RecordError::new(
                0,
                DecodeErrorKind::Empty,
                "message has no lines",
            ));
        }
        outcome
    }
}

fn emit_line(
    line: &str,
    index: usize,
    ctx: &DecodeContext,
    sink: &mut dyn SampleSink,
    samples: &mut usize,
) -> Result<(), RecordError> {
    let parsed =
        parse_line(line).map_err(|m| RecordError::new(index, DecodeErrorKind::InfluxSyntax, m))?;
    let invalid = |m: String| RecordError::new(index, DecodeErrorKind::InvalidValue, m);
    let tag = |name: &str| {
        parsed
            .tags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let host = tag("host");
    let entity = tag("entity")
        .or_else(|| host.clone())
        .ok_or_else(|| invalid("line has neither an `entity` nor a `host` tag".into()))?;
    let workload = tag("workload");
    let labels: Vec<_> = parsed
        .tags
        .iter()
        .filter(|(k, _)| !matches!(k.as_ref(), "entity" | "host" | "workload"))
        .cloned()
        .collect();
    let timestamp_ms = match parsed.timestamp_ns {
        Some(ns) => ns.div_euclid(1_000_000),
        None => ctx.default_timestamp_ms,
    };
    let mut sample = SampleRef {
        timestamp_ms,
        entity,
        host,
        workload,
        metric: Cow::Borrowed(""),
        value: 0.0,
        labels,
    };
    // Validate all fields before emitting any, so a line is all or nothing.
    let mut numeric = Vec::with_capacity(parsed.fields.len());
    for (field, value) in &parsed.fields {
        if let FieldValue::Number(v) = value {
            numeric.push((format!("{}_{}", parsed.measurement, field), *v));
        }
    }
    for (metric, value) in &numeric {
        sample.metric = Cow::Borrowed(metric);
        sample.value = *value;
        validate(&sample).map_err(invalid)?;
    }
    for (metric, value) in &numeric {
        sample.metric = Cow::Borrowed(metric);
        sample.value = *value;
        sink.push(&sample);
        *samples += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TelemetrySample;

    fn decode(payload: &str) -> (Vec<TelemetrySample>, DecodeOutcome) {
        let mut out = Vec::new();
        let ctx = DecodeContext {
            default_timestamp_ms: 1_700_000_000_000,
        };
        let o = InfluxDecoder.decode(payload.as_bytes(), &ctx, &mut out);
        (out, o)
    }

    #[test]
    fn telegraf_lines() {
        let (s, o) = decode(
            "cpu,cpu=cpu-total,host=node1 usage_idle=97.5,usage_user=1.25 1690000000123456789\n\
             mem,host=node1,workload=web used=1024i,free=7u,ok=true,note=\"a b, c\" 1690000000000000000\n",
        );
        assert!(o.is_clean(), "{o:?}");
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].metric, "cpu_usage_idle");
        assert_eq!(s[0].timestamp_ms, 1_690_000_000_123);
        assert_eq!(
            s[0].labels.get("cpu").map(String::as_str),
            Some("cpu-total")
        );
        assert_eq!(s[0].entity, "node1");
        assert_eq!(s[2].value, 1024.0);
        assert_eq!(s[3].value, 7.0);
        assert_eq!(s[4].value, 1.0);
        assert_eq!(s[4].workload.as_deref(), Some("web"));
    }

    #[test]
    fn escapes_and_missing_timestamp() {
        let (s, o) = decode(r"disk\ io,host=n\,1,path=/a\ b value=1");
        assert!(o.is_clean(), "{o:?}");
        assert_eq!(s[0].metric, "disk io_value");
        assert_eq!(s[0].entity, "n,1");
        assert_eq!(s[0].labels.get("path").map(String::as_str), Some("/a b"));
        assert_eq!(s[0].timestamp_ms, 1_700_000_000_000);
    }

    #[test]
    fn bad_lines_are_named_and_others_kept() {
        let (s, o) = decode("cpu,host=a v=1 1690000000000000000\ncpu,host=a v=abc\ncpu v=1\ncpu,host=a\ncpu,host=a v=inf");
        assert_eq!(s.len(), 1);
        assert_eq!(o.error_count, 4);
        assert_eq!(o.errors[0].record, 1);
        assert!(o.errors[0].message.contains("abc"));
        assert!(o.errors[1].message.contains("host"));
        assert_eq!(o.errors[2].kind, DecodeErrorKind::InfluxSyntax);
        assert!(o.errors[3].message.contains("inf"));
        let (_, o) = decode("\n# only a comment\n");
        assert_eq!(o.errors[0].kind, DecodeErrorKind::Empty);
    }
}
