//! Error metrics, all "lower is better" so that models and baselines compare one way.

use serde::{Deserialize, Serialize};

/// How a model's holdout predictions are judged. Read from its name (`"mae"`, ...), an
/// unknown name saying which ones there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum ErrorMetric {
    /// Mean absolute error.
    Mae,
    /// Mean absolute percentage error, in percent (rows with an actual of 0 are skipped).
    Mape,
    /// Root mean squared error.
    Rmse,
    /// 1 − R² (so lower is better, 0 is perfect).
    R2,
}

impl std::str::FromStr for ErrorMetric {
    type Err = dcpilot_schemas::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mae" => Ok(Self::Mae),
            "mape" => Ok(Self::Mape),
            "rmse" => Ok(Self::Rmse),
            "r2" => Ok(Self::R2),
            other => Err(dcpilot_schemas::Invalid(format!(
                "unknown metric {other:?} (expected mae, mape, rmse or r2)"
            ))),
        }
    }
}

impl TryFrom<String> for ErrorMetric {
    type Error = dcpilot_schemas::Invalid;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl ErrorMetric {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mae => "mae",
            Self::Mape => "mape",
            Self::Rmse => "rmse",
            Self::R2 => "r2",
        }
    }

    /// The error of `predicted` against `actual` (same length); NaN when undefined (no
    /// rows, or for MAPE no non-zero actual, or for R² a constant actual).
    pub fn error(self, actual: &[f64], predicted: &[f64]) -> f64 {
        let n = actual.len().min(predicted.len());
        if n == 0 {
            return f64::NAN;
        }
        let pairs = actual.iter().zip(predicted).take(n);
        match self {
            Self::Mae => pairs.map(|(a, p)| (a - p).abs()).sum::<f64>() / n as f64,
            Self::Rmse => (pairs.map(|(a, p)| (a - p).powi(2)).sum::<f64>() / n as f64).sqrt(),
            Self::Mape => {
                let (sum, count) = pairs
                    .filter(|(a, _)| **a != 0.0)
                    .fold((0.0, 0usize), |(s, c), (a, p)| {
                        (s + ((a - p) / a).abs(), c + 1)
                    });
                if count == 0 {
                    f64::NAN
                } else {
                    100.0 * sum / count as f64
                }
            }
            Self::R2 => {
                let mean = actual[..n].iter().sum::<f64>() / n as f64;
                let total: f64 = actual[..n].iter().map(|a| (a - mean).powi(2)).sum();
                if total == 0.0 {
                    return f64::NAN;
                }
                let residual: f64 = pairs.map(|(a, p)| (a - p).powi(2)).sum();
                residual / total
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let actual = [1.0, 2.0, 3.0, 4.0];
        let predicted = [1.0, 3.0, 3.0, 2.0];
        assert_eq!(ErrorMetric::Mae.error(&actual, &predicted), 0.75);
        assert!(
            (ErrorMetric::Rmse.error(&actual, &predicted) - (5.0f64 / 4.0).sqrt()).abs() < 1e-12
        );
        assert!(
            (ErrorMetric::Mape.error(&actual, &predicted) - 100.0 * (0.5 + 0.5) / 4.0).abs()
                < 1e-12
        );
        // Σ residual² = 5, Σ (a − mean)² = 5: 1 − R² = 1.
        assert_eq!(ErrorMetric::R2.error(&actual, &predicted), 1.0);
        assert_eq!(ErrorMetric::R2.error(&actual, &actual), 0.0);
        assert!(ErrorMetric::Mae.error(&[], &[]).is_nan());
        assert!(ErrorMetric::Mape.error(&[0.0], &[1.0]).is_nan());
    }

    #[test]
    fn names_round_trip() {
        for m in [
            ErrorMetric::Mae,
            ErrorMetric::Mape,
            ErrorMetric::Rmse,
            ErrorMetric::R2,
        ] {
            assert_eq!(m.as_str().parse::<ErrorMetric>(), Ok(m));
        }
        assert!("accuracy".parse::<ErrorMetric>().is_err());
    }
}
