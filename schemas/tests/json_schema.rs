//! The JSON Schema files producers read (`schemas/json/`) are generated from the Rust wire
//! types; this test fails when they drift. `DCPILOT_UPDATE_SCHEMAS=1` rewrites them.

use std::path::PathBuf;

use dcpilot_schemas::{LandscapeEvent, TelemetrySample};

fn check(name: &str, schema: schemars::Schema) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("json")
        .join(name);
    let generated = serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n";
    if std::env::var_os("DCPILOT_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with DCPILOT_UPDATE_SCHEMAS=1", path.display()));
    assert_eq!(
        committed,
        generated,
        "{} is out of date with the Rust types; rerun with DCPILOT_UPDATE_SCHEMAS=1",
        path.display()
    );
}

#[test]
fn telemetry_sample_schema_matches_the_rust_type() {
    check(
        "telemetry-sample.schema.json",
        schemars::schema_for!(TelemetrySample),
    );
}

#[test]
fn landscape_event_schema_matches_the_rust_type() {
    check(
        "landscape-event.schema.json",
        schemars::schema_for!(LandscapeEvent),
    );
}

#[test]
fn schema_requires_what_the_decoder_requires() {
    let schema = serde_json::to_value(schemars::schema_for!(TelemetrySample)).expect("json");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for field in ["timestamp_ms", "entity", "metric", "value"] {
        assert!(
            required.contains(&field),
            "{field} not required in {required:?}"
        );
    }
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false)
    );
}
