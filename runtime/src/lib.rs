//! What every dcpilot process shares, in one small place:
//!
//! - [`kafka`]: the user's librdkafka properties (security, compression, timeouts) applied
//!   to every client through one constructor, consumer-group names of followers, and a
//!   client context that logs a failing broker once per kind and interval;
//! - [`prometheus`]: the process's Prometheus recorder, with its histogram buckets.

pub mod kafka;
pub mod prometheus;
