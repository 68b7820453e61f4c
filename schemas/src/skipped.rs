//! [`Skipped`]: what a reader of outside data left out, counted, with examples.

use std::fmt;
use std::path::Path;

/// What a reader left out: lines, values or files it could not read, counted, with the
/// first few as examples (`file:line: what`). One bad value never fails a whole trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// How many were left out.
    pub count: usize,
    /// The first [`Skipped::EXAMPLES`] of them.
    pub examples: Vec<String>,
}

impl Skipped {
    /// Examples kept.
    pub const EXAMPLES: usize = 5;

    /// Notes one thing left out, at `path:line`.
    pub fn add(&mut self, path: &Path, line: usize, what: impl fmt::Display) {
        self.count += 1;
        if self.examples.len() < Self::EXAMPLES {
            self.examples
                .push(format!("{}:{line}: {what}", path.display()));
        }
    }

    /// Notes one thing left out, described by `what` alone.
    pub fn note(&mut self, what: impl fmt::Display) {
        self.count += 1;
        if self.examples.len() < Self::EXAMPLES {
            self.examples.push(what.to_string());
        }
    }

    /// Whether nothing was left out.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} unreadable lines, values or files left out (e.g. {})",
            self.count,
            self.examples.join("; ")
        )
    }
}
