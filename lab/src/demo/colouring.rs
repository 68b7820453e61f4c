//! The demo's colouring: the bundled Online Boutique sample (real metrics with labelled
//! faults, Nezha) judged fault by fault, then coloured by the built-in `landscape-colouring`
//! job as it would run a few minutes after the first fault — published into the demo's
//! Information Core (the foreground serves it) and drawn as a page.

use std::path::Path;

use crate::error::{Context, LabError, Result};
use dcpilot_background::TelemetryStore;
use dcpilot_info_core::InfoCore;
use dcpilot_pipelines::colouring::{detect, RankParams, Window};
use serde_json::json;

use super::report::{CauseLine, ColouringJobLine, ColouringReport, FaultLine, Labelled};
use crate::datasets::{native, nezha};

/// The bundled sample's files (tests/data/nezha/online-boutique/sample; see
/// tests/data/README.md for its source and licence).
const SAMPLE: &[(&str, &str)] = &[
    (
        "fault_list.json",
        include_str!("../../../tests/data/nezha/online-boutique/sample/fault_list.json"),
    ),
    (
        "metric/dependency.csv",
        include_str!("../../../tests/data/nezha/online-boutique/sample/metric/dependency.csv"),
    ),
    (
        "metric/source_50.csv",
        include_str!("../../../tests/data/nezha/online-boutique/sample/metric/source_50.csv"),
    ),
    (
        "metric/destination_50.csv",
        include_str!("../../../tests/data/nezha/online-boutique/sample/metric/destination_50.csv"),
    ),
    (
        "metric/front_service.csv",
        include_str!("../../../tests/data/nezha/online-boutique/sample/metric/front_service.csv"),
    ),
    (
        "metric/adservice-5f6585d649-fnmft_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/adservice-5f6585d649-fnmft_metric.csv"
        ),
    ),
    (
        "metric/cartservice-579f59597d-wc2lz_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/cartservice-579f59597d-wc2lz_metric.csv"
        ),
    ),
    (
        "metric/checkoutservice-578fcf4766-9csqn_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/checkoutservice-578fcf4766-9csqn_metric.csv"
        ),
    ),
    (
        "metric/currencyservice-cf787dd48-vpjrd_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/currencyservice-cf787dd48-vpjrd_metric.csv"
        ),
    ),
    (
        "metric/emailservice-55fdc5b988-f6xth_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/emailservice-55fdc5b988-f6xth_metric.csv"
        ),
    ),
    (
        "metric/frontend-579b9bff58-t2dbm_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/frontend-579b9bff58-t2dbm_metric.csv"
        ),
    ),
    (
        "metric/paymentservice-9cdb6588f-554sm_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/paymentservice-9cdb6588f-554sm_metric.csv"
        ),
    ),
    (
        "metric/productcatalogservice-668d5f85fb-wckp8_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/productcatalogservice-668d5f85fb-wckp8_metric.csv"
        ),
    ),
    (
        "metric/recommendationservice-6cfdd55578-gfj6q_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/recommendationservice-6cfdd55578-gfj6q_metric.csv"
        ),
    ),
    (
        "metric/shippingservice-7b598fc7d-lmggd_metric.csv",
        include_str!(
            "../../../tests/data/nezha/online-boutique/sample/metric/shippingservice-7b598fc7d-lmggd_metric.csv"
        ),
    ),
];

/// The colouring job as the background runs it.
const JOB: &str = dcpilot_schemas::names::models::COLOURING;

/// Judges every labelled fault of the bundled sample, colours the first one with the
/// colouring job (publishing into `core`), and writes the coloured page into `dir`.
pub async fn run(dir: &Path, core: &InfoCore) -> Result<ColouringReport> {
    let sample_dir = dir.join("nezha-sample");
    for (name, text) in SAMPLE {
        let path = sample_dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let trace = nezha::load(&sample_dir).context("reading the bundled Nezha sample")?;
    let detector = detect::by_name(detect::DEFAULT).map_err(|e| LabError::Failed(e.to_string()))?;
    let (window, params) = (Window::default(), RankParams::default());
    let evaluation = crate::rca::evaluate(&trace, detector.as_ref(), &window, &params);
    let first = trace
        .faults
        .first()
        .context("the bundled sample has no labelled fault")?
        .clone();

    // The job, as it runs `observe_secs` after the fault: the telemetry up to then, the
    // landscape as the topic would have built it.
    let until_ms = (first.at + window.observe_secs) * 1000;
    let samples: Vec<_> = native::samples(&trace)
        .into_iter()
        .filter(|s| s.timestamp_ms < until_ms)
        .collect();
    let store = TelemetryStore::from_samples(&samples)?;
    let refused = store
        .graph
        .apply_each(&dcpilot_landscape::formats::live_events(&trace.graph, 0));
    crate::ensure!(refused.is_empty(), "landscape events refused: {refused:?}");
    let job = dcpilot_pipelines::Registry::builtin()?
        .get(JOB)
        .context("the built-in colouring job")?;
    let report = dcpilot_pipelines::run_once(job, store.context(), core)
        .await
        .context("the colouring job")?;
    let snapshot = core.snapshot();
    let served = snapshot.get(JOB).context("the published colouring")?;
    let colouring = served
        .prepared
        .colouring()
        .context("the published colouring")?;
    let c = &colouring.colouring;

    let graph = json!(trace.graph.at(i64::MAX, &Default::default()));
    let anomalies =
        dcpilot_foreground::server::anomalies_document(JOB, served, colouring, 20, false);
    let page = dir.join("anomalies.html");
    std::fs::write(
        &page,
        dcpilot_foreground::server::standalone_view(
            &graph,
            &json!({"hosts": []}),
            Some(&anomalies),
        ),
    )
    .with_context(|| format!("writing {}", page.display()))?;
    let summary = dcpilot_pipelines::ColouringSummary::of(c);
    Ok(ColouringReport {
        faults: evaluation
            .per_fault
            .iter()
            .map(|f| FaultLine {
                at: f.fault.at,
                kind: f.fault.kind.clone(),
                service: f.fault.service.clone(),
                rank: f.rank,
                top: f.top.clone(),
            })
            .collect(),
        accuracy: evaluation.method,
        job: ColouringJobLine {
            at: c.at,
            version: report.published_version,
            entities: summary.entities,
            anomalous: summary.anomalous,
            top_causes: c
                .ranking
                .iter()
                .take(3)
                .map(|r| CauseLine {
                    entity: r.entity.clone(),
                    score: r.score,
                    metrics: r
                        .evidence
                        .metrics
                        .iter()
                        .map(|m| m.metric.clone())
                        .collect(),
                    explains: r.evidence.explains.iter().map(|l| l.from.clone()).collect(),
                })
                .collect(),
            labelled: Labelled {
                service: first.service,
                kind: first.kind,
            },
        },
        page: page.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::SAMPLE;

    #[test]
    fn the_embedded_sample_is_the_whole_bundled_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/nezha/online-boutique/sample");
        let mut on_disk: Vec<String> = ["", "metric"]
            .iter()
            .flat_map(|sub| {
                std::fs::read_dir(dir.join(sub))
                    .expect("sample directory")
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(move |e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        if sub.is_empty() {
                            name
                        } else {
                            format!("{sub}/{name}")
                        }
                    })
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = SAMPLE.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
