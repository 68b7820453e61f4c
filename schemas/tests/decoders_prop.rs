//! Property tests: no input panics a decoder, and native encode → decode round-trips.

use std::collections::BTreeMap;

use dcpilot_schemas::decode::Decoder;
use dcpilot_schemas::{
    CollectdDecoder, DecodeContext, Format, InfluxDecoder, LandscapeDecoder, NativeDecoder,
    TelemetryBatchBuilder, TelemetryDecoder, TelemetrySample,
};
use proptest::prelude::*;

fn ctx() -> DecodeContext {
    DecodeContext {
        default_timestamp_ms: 1_700_000_000_000,
    }
}

fn every_decoder(bytes: &[u8]) {
    let mut sink: Vec<TelemetrySample> = Vec::new();
    let mut decoders: Vec<Box<dyn TelemetryDecoder>> = vec![
        Box::new(NativeDecoder),
        Box::new(CollectdDecoder::default()),
        Box::new(InfluxDecoder),
    ];
    for d in &mut decoders {
        let outcome = d.decode(bytes, &ctx(), &mut sink);
        assert!(outcome.errors.len() <= outcome.error_count);
    }
    let mut builder = TelemetryBatchBuilder::default();
    let (_, outcome) = Decoder::new(Format::Auto).decode(bytes, &ctx(), &mut builder);
    assert_eq!(builder.finish().num_rows(), outcome.samples);
    let _ = LandscapeDecoder.decode(bytes, |_| {});
}

fn text_like() -> impl Strategy<Value = String> {
    // Fragments of the three formats glued at random, to reach deep into the parsers.
    let fragment = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"timestamp_ms\":1690000000000,".to_string()),
        Just("\"entity\":\"e\",".to_string()),
        Just("\"metric\":\"m\",".to_string()),
        Just("\"value\":".to_string()),
        Just("\"labels\":{".to_string()),
        Just("\"values\":[1],\"dstypes\":[\"derive\"],\"dsnames\":[\"v\"],\"time\":".to_string()),
        Just("cpu,host=a ".to_string()),
        Just("f=1i".to_string()),
        Just("\\ ".to_string()),
        Just("\\".to_string()),
        Just("\"".to_string()),
        Just("\n".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just(" 1690000000000000000".to_string()),
        "[ -~]{0,6}".prop_map(|s| s),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|v| v.concat())
}

fn sample() -> impl Strategy<Value = TelemetrySample> {
    (
        100_000_000_000i64..4_000_000_000_000i64,
        "\\PC{1,12}",
        proptest::option::of("\\PC{0,8}"),
        proptest::option::of("[a-z\"\\\\/ ]{1,8}"),
        "\\PC{1,16}",
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        prop::collection::btree_map("\\PC{0,6}", "\\PC{0,6}", 0..4),
    )
        .prop_map(
            |(timestamp_ms, entity, host, workload, metric, value, labels)| TelemetrySample {
                timestamp_ms,
                entity,
                host,
                workload,
                metric,
                value,
                labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        every_decoder(&bytes);
    }

    #[test]
    fn format_like_text_never_panics(text in text_like()) {
        every_decoder(text.as_bytes());
    }

    #[test]
    fn native_round_trips(samples in prop::collection::vec(sample(), 1..8), ndjson in any::<bool>()) {
        let payload = if ndjson {
            samples.iter().map(|s| serde_json::to_string(s).expect("encode")).collect::<Vec<_>>().join("\n")
        } else {
            serde_json::to_string(&samples).expect("encode")
        };
        let mut decoded: Vec<TelemetrySample> = Vec::new();
        let outcome = NativeDecoder.decode(payload.as_bytes(), &ctx(), &mut decoded);
        prop_assert!(outcome.is_clean(), "{:?}", outcome.errors);
        prop_assert_eq!(decoded, samples);
    }
}
