// SPDX-License-Identifier: MPL-2.0
//! Time in the core: one unit, nanoseconds in a `u64`, counted from an origin the
//! caller picks (the elements: a monotonic clock started with them; the simulator: its
//! virtual time). Every `now`, deadline and duration of the engines is such a number:
//! plain integers keep their arithmetic exact and cheap and the engines free of any
//! clock type; these names keep the literals readable.

/// One millisecond, in ns.
pub const MS: u64 = 1_000_000;
/// One second, in ns.
pub const SEC: u64 = 1_000_000_000;

/// A media timestamp or duration in ns, `None` when unknown (GStreamer's
/// GST_CLOCK_TIME_NONE on the element side).
pub type Timestamp = Option<u64>;

/// Bytes per second of `bytes` moved in `span` ns (`span` > 0).
pub fn per_second(bytes: f64, span: u64) -> f64 {
    bytes * SEC as f64 / span as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_rates() {
        assert_eq!(SEC, 1000 * MS);
        assert_eq!(per_second(500.0, 250 * MS), 2000.0);
    }
}
