//! Placeholder: this crate is laid out by ARCHITECTURE.md; its capability lands with its own issue.
