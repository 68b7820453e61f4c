//! Record iteration shared by the JSON decoders: one object, an array of objects, or
//! newline-delimited objects, with an error per bad record and resynchronisation at the
//! next line after a bad one.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{DecodeErrorKind, DecodeOutcome, RecordError};

fn error_kind(e: &serde_json::Error) -> DecodeErrorKind {
    match e.classify() {
        serde_json::error::Category::Data => DecodeErrorKind::SchemaMismatch,
        _ => DecodeErrorKind::MalformedJson,
    }
}

/// Calls `on_record` for every JSON record of `payload`; records that do not deserialize
/// into `T`, or that `on_record` rejects, are added to `outcome` as errors.
pub(crate) fn for_each_record<'a, T, F>(
    payload: &'a [u8],
    outcome: &mut DecodeOutcome,
    mut on_record: F,
) where
    T: Deserialize<'a>,
    F: FnMut(usize, T) -> Result<(), RecordError>,
{
    let Some(start) = payload.iter().position(|b| !b.is_ascii_whitespace()) else {
        outcome.error(RecordError::new(
            0,
            DecodeErrorKind::Empty,
            "message has no records",
        ));
        return;
    };
    // Fast path, one pass: the whole message is one array of good records (what most
    // producers send). Anything else takes the record-by-record path below.
    // The message's UTF-8 is checked once, in one pass: serde_json then skips checking
    // every string on its own (`from_str` trusts its input), which cost ~5% of ingest.
    let text = std::str::from_utf8(&payload[start..]).ok();
    if let Some(text) = text.filter(|t| t.starts_with('[')) {
        if let Ok(records) = serde_json::from_str::<Vec<T>>(text) {
            if !records.is_empty() {
                for (index, record) in records.into_iter().enumerate() {
                    if let Err(e) = on_record(index, record) {
                        outcome.error(e);
                    }
                }
                return;
            }
        }
    }
    let mut index = 0;
    let mut handle = |parsed: Result<T, serde_json::Error>, outcome: &mut DecodeOutcome| {
        let result = parsed
            .map_err(|e| RecordError::new(index, error_kind(&e), e.to_string()))
            .and_then(|record| on_record(index, record));
        if let Err(e) = result {
            outcome.error(e);
        }
        index += 1;
    };

    // Top-level values follow each other (NDJSON, or several collectd arrays); an array's
    // elements are records, an object is one record.
    let mut pos = start;
    while pos < payload.len() {
        let mut stream =
            serde_json::Deserializer::from_slice(&payload[pos..]).into_iter::<&'a RawValue>();
        let next = stream.next();
        let consumed = stream.byte_offset();
        match next {
            None => break,
            Some(Ok(raw)) => {
                pos += consumed;
                let text = raw.get();
                if text.starts_with('[') {
                    match serde_json::from_str::<Vec<&'a RawValue>>(text) {
                        Ok(items) if items.is_empty() => {
                            handle(Err(serde::de::Error::custom("empty array")), outcome)
                        }
                        Ok(items) => {
                            for item in items {
                                handle(serde_json::from_str::<T>(item.get()), outcome);
                            }
                        }
                        Err(e) => handle(Err(e), outcome),
                    }
                } else {
                    handle(serde_json::from_str::<T>(text), outcome);
                }
            }
            Some(Err(e)) => {
                handle(Err(e), outcome);
                // Resume at the line after the one that failed; always make progress.
                let from = (pos + consumed).max(pos + 1).min(payload.len());
                pos = payload[from..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(payload.len(), |nl| from + nl + 1);
            }
        }
        while pos < payload.len() && payload[pos].is_ascii_whitespace() {
            pos += 1;
        }
    }
}
