//! collectd `write_kafka` with `Format JSON`: arrays of value lists. Each data source becomes
//! one sample named by collectd's identifier (`plugin[-instance]/type[-instance][/dsname]`).
//!
//! `derive` and `counter` values come in one of two forms. collectd 5.12's `write_kafka`
//! sends them already as per-second rates (`StoreRates true`, its real default whatever the
//! manual says): decimals, and `null` for a series' first interval. With `StoreRates false`
//! they are raw counters, printed as integers, and dcpilot turns them into rates itself.
//! [`CounterForm::Auto`] tells them apart per series; `absolute` values are divided by the
//! interval, `gauge` values pass through.

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

/// How `derive` and `counter` values arrive (`ingest.collectd_counters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterForm {
    /// Per series: a decimal or a `null` in a value list marks its series as sending rates
    /// (for good); a series that has only ever sent integers is taken as raw counters.
    #[default]
    Auto,
    /// Always per-second rates already (`StoreRates true`): passed through.
    Rates,
    /// Always raw counters (`StoreRates false`): turned into rates here.
    Raw,
}

#[derive(Deserialize)]
struct ValueList<'a> {
    /// Numbers kept as parsed: whether collectd printed an integer or a decimal tells a raw
    /// counter from a rate.
    values: Vec<Option<serde_json::Number>>,
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

/// What is known of a counter-like data source.
#[derive(Debug, Clone, Copy)]
enum CounterState {
    /// It has sent a rate (a decimal or `null`): its values pass through from now on.
    SendsRates,
    /// Its last raw value.
    Raw { value: f64, time: f64 },
}

/// Decodes collectd JSON; keeps counter state to turn raw derive/counter values into rates.
#[derive(Debug, Default)]
pub struct CollectdDecoder {
    form: CounterForm,
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
    /// A decoder taking `derive`/`counter` values in the given form.
    pub fn new(form: CounterForm) -> Self {
        Self {
            form,
            counters: HashMap::new(),
        }
    }

    /// The per-second rate a counter-like value stands for. `raw` is `None` for collectd's
    /// `null` ("no rate yet"); the answer is `None` when there is nothing to record: that
    /// `null`, the first raw value of a series (it only primes the rate), or a raw value whose
    /// time did not advance (a replayed message).
    fn rate(
        &mut self,
        key: &str,
        dstype: &str,
        raw: Option<&serde_json::Number>,
        time: f64,
        list_in_rate_form: bool,
    ) -> Option<f64> {
        let sends_rate = match self.form {
            CounterForm::Rates => return raw.and_then(serde_json::Number::as_f64),
            CounterForm::Raw => false,
            CounterForm::Auto => list_in_rate_form,
        };
        if self.counters.len() >= MAX_TRACKED_SERIES && !self.counters.contains_key(key) {
            self.counters.clear();
        }
        let known = self.counters.get(key).copied();
        if sends_rate || matches!(known, Some(CounterState::SendsRates)) {
            if !matches!(known, Some(CounterState::SendsRates)) {
                self.counters
                    .insert(key.to_string(), CounterState::SendsRates);
            }
            return raw.and_then(serde_json::Number::as_f64);
        }
        let value = raw?.as_f64()?;
        self.counters
            .insert(key.to_string(), CounterState::Raw { value, time });
        let Some(CounterState::Raw {
            value: previous,
            time: previous_time,
        }) = known
        else {
            // A new series' first integer: a raw counter only primes its rate, except at 0,
            // where both readings agree (nothing counted yet; a rate of 0, which collectd
            // prints as `0`), so it is recorded rather than lost.
            return (self.form == CounterForm::Auto && value == 0.0).then_some(0.0);
        };
        let elapsed = time - previous_time;
        if elapsed <= 0.0 {
            return None;
        }
        let mut delta = value - previous;
        if dstype == "counter" && delta < 0.0 {
            // A counter wrapped: at 2^32 if it was small enough to be a 32-bit one.
            let width = if previous <= u32::MAX as f64 {
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
                ready.push((
                    identifier(&vl, &vl.dsnames[i]),
                    dstype,
                    vl.values[i].as_ref(),
                ));
            }
            // collectd formats every value of one list alike: one decimal or `null` among
            // them puts the whole list in rate form (a rate of 0 prints as `0`).
            let in_rate_form = vl
                .values
                .iter()
                .any(|v| v.as_ref().is_none_or(serde_json::Number::is_f64));
            for (metric, dstype, raw) in ready {
                // collectd writes NaN (an unknown value, or no rate yet) as null: nothing to
                // record, though for a counter it says the series sends rates.
                let value = match dstype {
                    "gauge" => raw.and_then(|n| n.as_f64()),
                    "absolute" if vl.interval > 0.0 => {
                        raw.and_then(|n| n.as_f64()).map(|v| v / vl.interval)
                    }
                    "absolute" => None,
                    _ => {
                        let key = format!("{}\u{1f}{}", vl.host, metric);
                        self.rate(&key, dstype, raw, vl.time, in_rate_form)
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

    fn derive(time: f64, value: &str) -> String {
        format!(
            "[{}]",
            vl(time, &format!("[{value}]"), r#"["derive"]"#, r#"["value"]"#)
        )
    }

    #[test]
    fn rates_as_collectd_5_12_sends_them_pass_through() {
        let mut d = CollectdDecoder::default();
        let (s, o) = decode(&mut d, &derive(1690000000.0, "null"));
        assert!(o.is_clean(), "a null rate is not an error: {o:?}");
        assert!(s.is_empty());
        let (s, _) = decode(&mut d, &derive(1690000002.0, "99.0049751243781"));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, 99.0049751243781);
        // A rate of exactly 0 prints as an integer; the series is known to send rates.
        let (s, _) = decode(&mut d, &derive(1690000004.0, "0"));
        assert_eq!(s[0].value, 0.0);
        let (s, _) = decode(&mut d, &derive(1690000006.0, "3"));
        assert_eq!(s[0].value, 3.0);
    }

    #[test]
    fn the_counter_form_can_be_forced() {
        let mut rates = CollectdDecoder::new(CounterForm::Rates);
        let (s, _) = decode(&mut rates, &derive(1690000000.0, "120"));
        assert_eq!(s[0].value, 120.0, "integers are rates too when told so");
        let mut raw = CollectdDecoder::new(CounterForm::Raw);
        let (s, _) = decode(&mut raw, &derive(1690000000.0, "100.5"));
        assert!(s.is_empty(), "a raw counter's first value primes");
        let (s, _) = decode(&mut raw, &derive(1690000010.0, "200.5"));
        assert_eq!(s[0].value, 10.0);
        let (s, o) = decode(&mut raw, &derive(1690000020.0, "null"));
        assert!(s.is_empty() && o.is_clean());
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
