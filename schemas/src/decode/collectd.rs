//! collectd `write_kafka` with `Format JSON`: arrays of value lists. Each data source becomes
//! one sample named by collectd's identifier (`plugin[-instance]/type[-instance][/dsname]`);
//! `derive` and `counter` values become per-second rates, `absolute` values are divided by
//! the interval, `gauge` values pass through.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use super::json::for_each_record;
use super::{
    validate, DecodeContext, DecodeErrorKind, DecodeOutcome, Format, RecordError, SampleSink,
    TelemetryDecoder,
};
use crate::wire::SampleRef;

/// Counter states kept for rate computation; past this many series the state is reset (the
/// next value of each series then only primes its rate again).
const MAX_TRACKED_SERIES: usize = 1_000_000;

#[derive(Deserialize)]
struct ValueList<'a> {
    values: Vec<Option<f64>>,
    #[serde(borrow)]
    dstypes: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    dsnames: Vec<Cow<'a, str>>,
    time: f64,
    #[serde(default)]
    interval: f64,
    #[serde(borrow)]
    host: Cow<'a, str>,
    #[serde(borrow)]
    plugin: Cow<'a, str>,
    #[serde(default, borrow)]
    plugin_instance: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(default, borrow)]
    type_instance: Cow<'a, str>,
    /// collectd adds `meta` for some plugins; it is accepted and ignored.
    #[serde(default, rename = "meta")]
    _meta: Option<serde::de::IgnoredAny>,
}

/// The last raw value of a counter-like data source.
#[derive(Debug, Clone, Copy)]
struct CounterState {
    value: f64,
    time: f64,
}

/// Decodes collectd JSON; keeps counter state to turn derive/counter values into rates.
#[derive(Debug, Default)]
pub struct CollectdDecoder {
    counters: HashMap<String, CounterState>,
}

fn identifier(vl: &ValueList<'_>, dsname: &str) -> String {
    let mut id = String::with_capacity(64);
    id.push_str(&vl.plugin);
    if !vl.plugin_instance.is_empty() {
        id.push('-');
        id.push_str(&vl.plugin_instance);
    }
    id.push('/');
    id.push_str(&vl.type_);
    if !vl.type_instance.is_empty() {
        id.push('-');
        id.push_str(&vl.type_instance);
    }
    if vl.dsnames.len() > 1 || dsname != "value" {
        id.push('/');
        id.push_str(dsname);
    }
    id
}

impl CollectdDecoder {
    /// Rate of a counter-like data source since its previous value; `None` for the first
    /// value of a series or when time did not advance (a replayed message).
    fn rate(&mut self, key: &str, dstype: &str, value: f64, time: f64) -> Option<f64> {
        if self.counters.len() >= MAX_TRACKED_SERIES && !self.counters.contains_key(key) {
            self.counters.clear();
        }
        let previous = self
            .counters
            .insert(key.to_string(), CounterState { value, time });
        let previous = previous?;
        let elapsed = time - previous.time;
        if elapsed <= 0.0 {
            return None;
        }
        let mut delta = value - previous.value;
        if dstype == "counter" && delta < 0.0 {
            // A counter wrapped: at 2^32 if it was small enough to be a 32-bit one.
            let width = if previous.value <= u32::MAX as f64 {
                2f64.powi(32)
            } else {
                2f64.powi(64)
            };
            delta += width;
        }
        Some(delta / elapsed)
    }
}

impl TelemetryDecoder for CollectdDecoder {
    fn format(&self) -> Format {
        Format::Collectd
    }

    fn decode(
        &mut self,
        payload: &[u8],
        _ctx: &DecodeContext,
        sink: &mut dyn SampleSink,
    ) -> DecodeOutcome {
        let mut outcome = DecodeOutcome::default();
        let mut samples = 0;
        for_each_record(payload, &mut outcome, |index, vl: ValueList<'_>| {
            let invalid = |m: String| RecordError::new(index, DecodeErrorKind::InvalidValue, m);
            let n = vl.values.len();
            if n == 0 || vl.dstypes.len() != n || vl.dsnames.len() != n {
                return Err(invalid(format!(
                    "`values`, `dstypes` and `dsnames` must have the same non-zero length (got {}, {}, {})",
                    n,
                    vl.dstypes.len(),
                    vl.dsnames.len()
                )));
            }
            if !vl.time.is_finite() || vl.time <= 0.0 {
                return Err(invalid(format!(
                    "`time` {} is not a positive Unix time",
                    vl.time
                )));
            }
            let timestamp_ms = (vl.time * 1000.0).round() as i64;
            // Validate every data source before emitting any, so a record is all or nothing.
            let mut ready = Vec::with_capacity(n);
            for i in 0..n {
                let dstype = vl.dstypes[i].as_ref();
                if !matches!(dstype, "gauge" | "derive" | "counter" | "absolute") {
                    return Err(invalid(format!("unknown dstype `{dstype}` at index {i}")));
                }
                ready.push((identifier(&vl, &vl.dsnames[i]), dstype, vl.values[i]));
            }
            for (metric, dstype, raw) in ready {
                // collectd writes NaN (an unknown value) as null: nothing to record.
                let Some(raw) = raw else { continue };
                let value = match dstype {
                    "gauge" => Some(raw),
                    "absolute" if vl.interval > 0.0 => Some(raw / vl.interval),
                    "absolute" => None,
                    _ => {
                        let key = format!("{}\u{1f}{}", vl.host, metric);
                        self.rate(&key, dstype, raw, vl.time)
                    }
                };
                let Some(value) = value else { continue };
                let sample = SampleRef {
                    timestamp_ms,
                    entity: Cow::Borrowed(&vl.host),
                    host: Some(Cow::Borrowed(&vl.host)),
                    workload: None,
                    metric: Cow::Owned(metric),
                    value,
                    labels: vec![(Cow::Borrowed("dstype"), Cow::Borrowed(dstype))],
                };
                validate(&sample).map_err(invalid)?;
                sink.push(&sample);
                samples += 1;
            }
            Ok(())
        });
        outcome.samples = samples;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TelemetrySample;

    fn vl(time: f64, values: &str, dstypes: &str, dsnames: &str) -> String {
        format!(
            r#"{{"values":{values},"dstypes":{dstypes},"dsnames":{dsnames},"time":{time},"interval":10.000,"host":"node1","plugin":"interface","plugin_instance":"eth0","type":"if_octets","type_instance":""}}"#
        )
    }

    fn decode(d: &mut CollectdDecoder, payload: &str) -> (Vec<TelemetrySample>, DecodeOutcome) {
        let mut out = Vec::new();
        let o = d.decode(payload.as_bytes(), &DecodeContext::default(), &mut out);
        (out, o)
    }

    #[test]
    fn gauges_pass_through_with_collectd_identifiers() {
        let mut d = CollectdDecoder::default();
        let p = r#"[{"values":[0.5,0.7,0.9],"dstypes":["gauge","gauge","gauge"],"dsnames":["shortterm","midterm","longterm"],"time":1690000000.123,"interval":10,"host":"node1","plugin":"load","plugin_instance":"","type":"load","type_instance":""},
                    {"values":[42],"dstypes":["gauge"],"dsnames":["value"],"time":1690000000,"interval":10,"host":"node1","plugin":"cpu","plugin_instance":"0","type":"percent","type_instance":"idle"}]"#;
        let (s, o) = decode(&mut d, p);
        assert!(o.is_clean(), "{o:?}");
        let metrics: Vec<_> = s.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(
            metrics,
            [
                "load/load/shortterm",
                "load/load/midterm",
                "load/load/longterm",
                "cpu-0/percent-idle"
            ]
        );
        assert_eq!(s[0].timestamp_ms, 1_690_000_000_123);
        assert_eq!(s[3].value, 42.0);
        assert_eq!(s[3].entity, "node1");
    }

    #[test]
    fn derive_and_counter_become_rates() {
        let mut d = CollectdDecoder::default();
        let (s, o) = decode(
            &mut d,
            &format!(
                "[{}]",
                vl(
                    1690000000.0,
                    "[1000,50]",
                    r#"["derive","derive"]"#,
                    r#"["rx","tx"]"#
                )
            ),
        );
        assert!(o.is_clean());
        assert!(s.is_empty(), "the first value only primes the rate");
        let (s, _) = decode(
            &mut d,
            &format!(
                "[{}]",
                vl(
                    1690000010.0,
                    "[2000,150]",
                    r#"["derive","derive"]"#,
                    r#"["rx","tx"]"#
                )
            ),
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].metric, "interface-eth0/if_octets/rx");
        assert_eq!(s[0].value, 100.0);
        assert_eq!(s[1].value, 10.0);
        // A replay of the same time yields nothing rather than an infinite rate.
        let (s, _) = decode(
            &mut d,
            &format!(
                "[{}]",
                vl(
                    1690000010.0,
                    "[2000,150]",
                    r#"["derive","derive"]"#,
                    r#"["rx","tx"]"#
                )
            ),
        );
        assert!(s.is_empty());
        // 32-bit counter wrap.
        let mut d = CollectdDecoder::default();
        decode(
            &mut d,
            &format!(
                "[{}]",
                vl(
                    100000000.0,
                    "[4294967290]",
                    r#"["counter"]"#,
                    r#"["value"]"#
                )
            ),
        );
        let (s, _) = decode(
            &mut d,
            &format!(
                "[{}]",
                vl(100000010.0, "[4]", r#"["counter"]"#, r#"["value"]"#)
            ),
        );
        assert_eq!(s[0].value, 1.0);
    }

    #[test]
    fn bad_value_lists_are_named() {
        let mut d = CollectdDecoder::default();
        let (_, o) = decode(
            &mut d,
            &format!(
                "[{}]",
                vl(1690000000.0, "[1,2]", r#"["gauge"]"#, r#"["a","b"]"#)
            ),
        );
        assert_eq!(o.errors[0].kind, DecodeErrorKind::InvalidValue);
        assert!(o.errors[0].message.contains("same non-zero length"));
        let (_, o) = decode(
            &mut d,
            &format!(
                "[{}]",
                vl(1690000000.0, "[1]", r#"["histogram"]"#, r#"["a"]"#)
            ),
        );
        assert!(o.errors[0].message.contains("histogram"));
        let (_, o) = decode(&mut d, r#"[{"values":[1]}]"#);
        assert_eq!(o.errors[0].kind, DecodeErrorKind::SchemaMismatch);
    }
}
