//! What the operator commands do — `dcpilot models`, `jobs`, `landscape` — as functions
//! that return what to print (text for people, or JSON), so the binary only parses
//! arguments and prints.

pub mod decode;
pub mod jobs;
pub mod landscape;
pub mod models;
pub mod query;
