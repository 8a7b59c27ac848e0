//! What a measurement records, shared by the in-engine and gRPC runs and the report: one
//! timed operation (`Ops`), repeated until its `Limits`, and how a rate is written.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::harness::{Latency, ms, thousands};

#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) budget: Duration,
    pub(super) max_ops: u64,
}

/// One timed operation, repeated until its limits.
#[derive(Debug, Clone)]
pub(super) struct Ops {
    pub(super) latency: Latency,
    /// Time inside the timed operations.
    busy: Duration,
    /// Operations after which nothing was offered to the agent (agent available runs).
    pub(super) no_offer: u64,
    /// Routed contacts that were offered at once rather than queued.
    pub(super) offered: u64,
    /// Waiting contacts before and after.
    pub(super) waiting: (usize, usize),
    /// Wall time of the whole measurement, untimed work between operations included.
    wall: Duration,
    started: Instant,
    limits: Limits,
}

impl Ops {
    pub(super) fn new(limits: Limits) -> Result<Self> {
        Ok(Self {
            latency: Latency::new()?,
            busy: Duration::ZERO,
            no_offer: 0,
            offered: 0,
            waiting: (0, 0),
            wall: Duration::ZERO,
            started: Instant::now(),
            limits,
        })
    }

    pub(super) fn more(&self) -> bool {
        self.latency.count() < self.limits.max_ops && self.started.elapsed() < self.limits.budget
    }

    pub(super) fn record(&mut self, elapsed: Duration) {
        self.latency.record(elapsed);
        self.busy += elapsed;
        self.wall = self.started.elapsed();
    }

    pub(super) fn count(&self) -> u64 {
        self.latency.count()
    }

    /// Operations per second of time spent in them (one thread: 1 / mean latency).
    pub(super) fn per_s(&self) -> f64 {
        self.count() as f64 / self.busy.as_secs_f64().max(1e-9)
    }

    pub(super) fn describe(&self, unit: &str) -> String {
        let mut out = format!(
            "{} × in {:.1} s: {}; mean {} ms → **{} {unit}**",
            thousands(self.count() as f64),
            self.wall.as_secs_f64(),
            self.latency.summary(),
            ms(self.latency.mean_ms()),
            per_s(self.per_s())
        );
        if self.no_offer > 0 {
            let _ = write!(out, "; {} without an offer", self.no_offer);
        }
        if self.offered > 0 {
            let _ = write!(out, "; {} offered at once", self.offered);
        }
        let _ = write!(
            out,
            "; waiting {} → {}",
            thousands(self.waiting.0 as f64),
            thousands(self.waiting.1 as f64)
        );
        out
    }
}

/// A rate: thousands separators, or two decimals below 10 (a slow engine does 0.28/s).
pub(super) fn per_s(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else {
        thousands(value)
    }
}
