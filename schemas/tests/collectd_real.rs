//! What a real collectd 5.12 (`write_kafka`, `Format JSON`, defaults) sends, decoded: rates
//! pass through as rates (the bug was differentiating them a second time).

use std::collections::BTreeMap;

use dcpilot_schemas::{
    CounterForm, DecodeContext, Decoder, DecoderOptions, Format, TelemetrySample,
};

const CAPTURE: &str = include_str!("../../tests/data/collectd/write_kafka-json-5.12.ndjson");

fn decode_capture(form: CounterForm) -> Vec<TelemetrySample> {
    let options = DecoderOptions {
        collectd_counters: form,
    };
    let mut decoder = Decoder::with_options(Format::Auto, &options);
    let mut samples = Vec::new();
    let ctx = DecodeContext::default();
    let mut messages = 0;
    for line in CAPTURE.lines().filter(|l| !l.trim().is_empty()) {
        let (format, outcome) = decoder.decode(line.as_bytes(), &ctx, &mut samples);
        assert_eq!(format, Format::Collectd);
        assert!(outcome.is_clean(), "{line}: {:?}", outcome.errors);
        messages += 1;
    }
    assert_eq!(messages, 392);
    samples
}

/// Per CPU and per collectd interval: the sum of every `cpu-N/cpu-*` state.
fn cpu_totals(samples: &[TelemetrySample]) -> BTreeMap<(String, i64), (f64, usize)> {
    let mut totals = BTreeMap::new();
    for s in samples {
        let Some(rest) = s.metric.strip_prefix("cpu-") else {
            continue;
        };
        let Some((cpu, _state)) = rest.split_once("/cpu-") else {
            continue;
        };
        // The states of one reading are stamped within a few ms of each other.
        let interval = (s.timestamp_ms + 1_000).div_euclid(2_000);
        let e = totals
            .entry((cpu.to_string(), interval))
            .or_insert((0.0, 0));
        e.0 += s.value;
        e.1 += 1;
    }
    totals
}

#[test]
fn every_cpu_spends_about_100_jiffies_a_second() {
    let samples = decode_capture(CounterForm::Auto);
    let totals = cpu_totals(&samples);
    let complete: Vec<_> = totals.iter().filter(|(_, (_, n))| *n == 8).collect();
    assert!(
        complete.len() >= 8,
        "expected complete readings of both CPUs, got {totals:?}"
    );
    for ((cpu, interval), (sum, _)) in complete {
        assert!(
            (90.0..=110.0).contains(sum),
            "cpu {cpu} at interval {interval}: states sum to {sum} jiffies/s, not ≈ 100"
        );
    }
    let idle: Vec<f64> = samples
        .iter()
        .filter(|s| s.metric == "cpu-0/cpu-idle")
        .map(|s| s.value)
        .collect();
    assert!(!idle.is_empty());
    assert!(idle.iter().all(|v| (0.0..=101.0).contains(v)), "{idle:?}");
}

#[test]
fn no_derive_rate_is_negative_and_gauges_are_kept() {
    let samples = decode_capture(CounterForm::Auto);
    let derive: Vec<_> = samples
        .iter()
        .filter(|s| s.labels.get("dstype").map(String::as_str) == Some("derive"))
        .collect();
    assert!(derive.len() > 100, "only {} derive samples", derive.len());
    for s in &derive {
        assert!(s.value >= 0.0, "negative rate: {s:?}");
    }
    let free_memory = samples
        .iter()
        .find(|s| s.metric == "memory/memory-free")
        .map(|s| s.value);
    assert!(free_memory.is_some_and(|v| v > 1e6), "{free_memory:?}");
}

#[test]
fn forcing_raw_counters_on_rates_is_visibly_wrong() {
    // The old behaviour, kept as `collectd_counters = "raw"`: differentiating rates again
    // gives values near 0 and negative ones, as the bug report saw.
    let samples = decode_capture(CounterForm::Raw);
    assert!(samples
        .iter()
        .any(|s| s.metric.starts_with("cpu-") && s.value < 0.0));
    // `auto` reads this capture as rates: whatever it emits is what forcing rates gives.
    // (It may emit a little less: a series of integer zeros is taken as raw counters
    // until its first decimal, and a raw reading older than the last one yields nothing.)
    let rates = decode_capture(CounterForm::Rates);
    let auto = decode_capture(CounterForm::Auto);
    let by_key: BTreeMap<(String, i64), f64> = rates
        .iter()
        .map(|s| ((s.metric.clone(), s.timestamp_ms), s.value))
        .collect();
    for s in &auto {
        assert_eq!(
            by_key.get(&(s.metric.clone(), s.timestamp_ms)),
            Some(&s.value),
            "{s:?}"
        );
    }
    assert!(
        auto.len() * 100 >= rates.len() * 99,
        "{} of {}",
        auto.len(),
        rates.len()
    );
}
