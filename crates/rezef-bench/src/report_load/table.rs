//! The figures of `report-load`, round by round, each beside Health/Check of the same round:
//! requests per second as a share of Health/Check's, latencies as multiples of its.

use crate::grpc_load::Loaded;
use crate::harness::{Report, Target, median, ms, ratio, thousands};

/// Issue 18's aim for a 30-day report over 100 queues.
const TARGET_P99_MS: f64 = 100.0;

/// One loaded call and what h2load measured of it, round by round.
#[derive(Debug)]
pub struct Call {
    pub name: String,
    /// The request message h2load sends (framed when loaded).
    pub body: Vec<u8>,
    /// A report's answer when it was checked before the load: (rows, encoded bytes).
    pub answer: Option<(usize, usize)>,
    pub rounds: Vec<Loaded>,
}

/// One round of a call against Health/Check's of the same round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    /// Its requests/s over Health/Check's.
    pub throughput: f64,
    /// Its p50 over Health/Check's.
    pub p50: f64,
    /// Its p99 over Health/Check's.
    pub p99: f64,
}

impl Call {
    pub fn new(name: String, body: Vec<u8>) -> Self {
        Self {
            name,
            body,
            answer: None,
            rounds: Vec::new(),
        }
    }

    /// Round by round, against `health` (the rounds it has both of).
    pub fn ratios(&self, health: &Call) -> Vec<Ratios> {
        let over = |a: f64, b: f64| a / b.max(1e-9);
        (self.rounds.iter().zip(&health.rounds))
            .map(|(call, health)| Ratios {
                throughput: over(call.per_s, health.per_s),
                p50: over(call.p50_ms, health.p50_ms),
                p99: over(call.p99_ms, health.p99_ms),
            })
            .collect()
    }
}

/// Adds a row per call per round, the medians of the rounds' ratios per report, the target
/// and the notes. `calls[0]` is Health/Check, then (a), (b), (c).
pub fn table(report: &mut Report, calls: &[Call], queues: u64) {
    let Some((health, reports)) = calls.split_first() else {
        return;
    };
    for (call, label) in calls.iter().zip(["", "(a) ", "(b) ", "(c) "]) {
        let shape = call.answer.map_or_else(String::new, |(rows, bytes)| {
            format!(
                " ({} rows, {} bytes)",
                thousands(rows as f64),
                thousands(bytes as f64)
            )
        });
        let ratios = call.ratios(health);
        for (round, (loaded, ratios)) in call.rounds.iter().zip(&ratios).enumerate() {
            // A report's throughput as a share of Health/Check's, its latencies as multiples.
            let of_health = |value: String| match call.answer {
                Some(_) => format!(" ({value} ×)"),
                None => String::new(),
            };
            report.row(
                format!("**{label}{}**{shape}, round {}", call.name, round + 1),
                format!(
                    "{} req/s{}; p50 {} ms{}; p99 {} ms{}; {} requests, {} failed",
                    rate(loaded.per_s),
                    of_health(ratio(ratios.throughput)),
                    ms(loaded.p50_ms),
                    of_health(ms(ratios.p50)),
                    ms(loaded.p99_ms),
                    of_health(ms(ratios.p99)),
                    thousands(loaded.requests as f64),
                    loaded.failed
                ),
            );
        }
    }
    let medians = |call: &Call| {
        let ratios = call.ratios(health);
        let of = |pick: fn(&Ratios) -> f64| median(&ratios.iter().map(pick).collect::<Vec<_>>());
        (of(|r| r.throughput), of(|r| r.p50), of(|r| r.p99))
    };
    for (call, label) in reports.iter().zip(["(a)", "(b)", "(c)"]) {
        let (throughput, p50, p99) = medians(call);
        report.row(
            format!("{label} ÷ Health/Check, median of rounds"),
            format!(
                "req/s **{}**; p50 **{}** ×; p99 **{}** ×",
                ratio(throughput),
                ms(p50),
                ms(p99)
            ),
        );
    }
    if let Some(month) = reports.get(1) {
        let p99s: Vec<f64> = month.rounds.iter().map(|l| l.p99_ms).collect();
        report.target(Target::at_most(
            format!(
                "{} over gRPC, {queues} queues: p99 (median of rounds)",
                month.name
            ),
            median(&p99s),
            TARGET_P99_MS,
            "ms",
        ));
        let per_s: Vec<f64> = month.rounds.iter().map(|l| l.per_s).collect();
        report.headline(
            format!(
                "{}: {} req/s ({} × Health/Check)",
                month.name,
                rate(median(&per_s)),
                ratio(medians(month).0)
            ),
            format!("p99 {} ms", ms(median(&p99s))),
        );
    }
    report.note(
        "Each round loads Health/Check, then each report, one request body sent over and over \
         (the same report each time: the buckets of its range stay in memory or in sled's \
         cache). The server runs in the bench process, h2load in its own (one thread), on the \
         same 2 cores: only ratios within a round mean something. Latency percentiles come \
         from h2load's per-request log; with several calls in flight they include the wait \
         for a core.",
    );
}

/// Requests per second: a decimal below 100 (a report answers a few a second).
fn rate(per_s: f64) -> String {
    if per_s < 100.0 {
        format!("{per_s:.1}")
    } else {
        thousands(per_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(per_s: f64, p50_ms: f64, p99_ms: f64) -> Loaded {
        Loaded {
            per_s,
            requests: 10,
            failed: 0,
            p50_ms,
            p99_ms,
            tls: None,
        }
    }

    fn call(name: &str, answer: Option<(usize, usize)>, rounds: Vec<Loaded>) -> Call {
        Call {
            answer,
            rounds,
            ..Call::new(name.into(), Vec::new())
        }
    }

    #[test]
    fn each_round_is_compared_with_health_of_the_same_round() {
        let health = call(
            "Health",
            None,
            vec![loaded(1000.0, 1.0, 2.0), loaded(500.0, 2.0, 4.0)],
        );
        let report = call(
            "month",
            Some((3000, 1_000_000)),
            vec![loaded(10.0, 100.0, 300.0), loaded(10.0, 100.0, 300.0)],
        );
        assert_eq!(
            report.ratios(&health),
            vec![
                Ratios {
                    throughput: 0.01,
                    p50: 100.0,
                    p99: 150.0
                },
                Ratios {
                    throughput: 0.02,
                    p50: 50.0,
                    p99: 75.0
                },
            ]
        );
    }

    #[test]
    fn the_table_has_a_row_per_round_the_medians_and_the_month_as_the_target() {
        let rounds = |per_s: f64, p99: f64| (0..3).map(|_| loaded(per_s, 1.0, p99)).collect();
        let calls = [
            call("Health/Check", None, rounds(1000.0, 2.0)),
            call("today", Some((2000, 500_000)), rounds(50.0, 40.0)),
            call(
                "30 days by day by queue",
                Some((3000, 9)),
                rounds(5.0, 150.0),
            ),
            call("30 days as one row", Some((1, 9)), rounds(20.0, 60.0)),
        ];
        let mut report = Report::default();
        table(&mut report, &calls, 100);
        assert_eq!(report.rows.len(), 4 * 3 + 3);
        let (metric, value) = &report.rows[3];
        assert_eq!(metric, "**(a) today** (2,000 rows, 500,000 bytes), round 1");
        assert!(
            value.starts_with("50.0 req/s (0.050 ×); p50 1.00 ms (1.00 ×); p99 40.0 ms (20.0 ×)"),
            "{value}"
        );
        let (metric, value) = &report.rows[13];
        assert_eq!(metric, "(b) ÷ Health/Check, median of rounds");
        assert_eq!(value, "req/s **0.0050**; p50 **1.00** ×; p99 **75.0** ×");
        assert_eq!(report.targets.len(), 1);
        assert_eq!(report.targets[0].measured, 150.0);
        assert!(!report.targets[0].passed());
    }
}
