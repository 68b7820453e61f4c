//! `dcpilot demo --html FILE`: the demo's report as one self-contained HTML page with SVG
//! plots (plotters): each model's predictions against the truth on its holdout, and the
//! placement latency histogram.

use crate::error::{LabError, Result};
use plotters::prelude::*;

/// A scatter of (actual, predicted) with the diagonal.
pub fn predicted_vs_actual(title: &str, points: &[(f64, f64)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let hi = points
            .iter()
            .flat_map(|(a, p)| [*a, *p])
            .fold(f64::NEG_INFINITY, f64::max)
            .max(1e-9);
        let lo = points
            .iter()
            .flat_map(|(a, p)| [*a, *p])
            .fold(f64::INFINITY, f64::min)
            .min(hi - 1e-9);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("actual")
            .y_desc("predicted")
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], &BLACK.mix(0.4)))
            .map_err(plot_error)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(a, p)| Circle::new((a, p), 2, BLUE.mix(0.5).filled())),
            )
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// A histogram of latencies, ms, in 30 bins.
pub fn latency_histogram(title: &str, latencies_ms: &[f64]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let hi = latencies_ms.iter().copied().fold(0.0, f64::max).max(1e-3);
        let bins = 30usize;
        let width = hi / bins as f64;
        let mut counts = vec![0u32; bins];
        for &l in latencies_ms {
            counts[((l / width) as usize).min(bins - 1)] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..hi, 0u32..top + 1)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("round trip, ms")
            .y_desc("requests")
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = i as f64 * width;
                Rectangle::new([(x0, 0), (x0 + width, c)], BLUE.mix(0.6).filled())
            }))
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A drawing error of plotters, as the lab's error.
fn plot_error(e: impl std::fmt::Display) -> LabError {
    LabError::Failed(format!("drawing a plot: {e}"))
}
