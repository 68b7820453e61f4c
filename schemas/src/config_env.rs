//! The environment overlay every dcpilot configuration shares: `DCPILOT__SECTION__KEY=value`
//! sets `section.key` over the file (numbers, booleans and arrays parse as TOML, anything
//! else is a string). The foreground's keys are `DCPILOT__FOREGROUND__...`, in
//! `dcpilot foreground` and in `dcpilot run` alike.

/// Prefix of every configuration variable.
pub const ENV_PREFIX: &str = "DCPILOT__";

/// The section the foreground's variables live under.
pub const FOREGROUND_SECTION: &str = "foreground";

/// Overlays onto `doc` every variable of `env` named `DCPILOT__{scope}__...` (no scope:
/// `DCPILOT__...`, skipping the sections in `skip`); returns the names applied, for the
/// error messages' "with environment ..." note.
pub fn overlay_env(
    doc: &mut toml::Table,
    env: &[(String, String)],
    scope: Option<&str>,
    skip: &[&str],
) -> Vec<String> {
    let mut applied = Vec::new();
    for (name, value) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let mut keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        match scope {
            Some(scope) => {
                if keys.first().map(String::as_str) != Some(scope) || keys.len() < 2 {
                    continue;
                }
                keys.remove(0);
            }
            None => {
                if keys.first().is_some_and(|k| skip.contains(&k.as_str())) {
                    continue;
                }
            }
        }
        applied.push(name.clone());
        set_path(doc, &keys, parse_env_value(value));
    }
    applied
}

/// `"with environment A, B"` text for a source label, or the label alone.
pub fn describe_source(label: &str, applied: &[String]) -> String {
    if applied.is_empty() {
        label.to_string()
    } else {
        format!("{label} (with environment {})", applied.join(", "))
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    // `...=100` is a number, `...=true` a bool, `...=["a"]` an array, else a string.
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn scoped_and_unscoped_variables() {
        let vars = env(&[
            ("DCPILOT__KAFKA__BROKERS", "k1:9092"),
            ("DCPILOT__INGEST__MAX_BATCH_SAMPLES", "20"),
            ("DCPILOT__FOREGROUND__PLANNER__BUDGET_MS", "5.5"),
            ("HOME", "/root"),
        ]);
        let mut bg = toml::Table::new();
        let applied = overlay_env(&mut bg, &vars, None, &[FOREGROUND_SECTION]);
        assert_eq!(applied.len(), 2);
        assert_eq!(bg["kafka"]["brokers"].as_str(), Some("k1:9092"));
        assert_eq!(bg["ingest"]["max_batch_samples"].as_integer(), Some(20));
        assert!(!bg.contains_key("foreground"));
        let mut fg = toml::Table::new();
        let applied = overlay_env(&mut fg, &vars, Some(FOREGROUND_SECTION), &[]);
        assert_eq!(applied, ["DCPILOT__FOREGROUND__PLANNER__BUDGET_MS"]);
        assert_eq!(fg["planner"]["budget_ms"].as_float(), Some(5.5));
    }
}
