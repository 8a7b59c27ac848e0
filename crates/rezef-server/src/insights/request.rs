//! Report and interval-watch requests checked against the limits `insights.proto`
//! documents, every problem named by its field: reports stay cheap (a range of at most 400
//! days, rows no finer than its length needs) and exact (bounds on the boundaries of the
//! buckets they read).

use std::collections::BTreeSet;
use std::ops::Range;

use rezef_events::{TenantId, Timestamp};
use rezef_measure::{Grouping, Interval};
use rezef_proto::v1::{GetReportRequest, ReportInterval, WatchIntervalRequest};

use crate::Result;
use crate::convert::Check;

const DAY_MS: i64 = 86_400_000;
/// The longest range a report covers.
const MAX_RANGE_DAYS: i64 = 400;
/// The longest range by quarter hours (672 rows per grouping).
const MAX_QUARTER_DAYS: i64 = 7;
/// The longest range by hours, and off UTC midnights as one row.
const MAX_HOUR_DAYS: i64 = 31;
/// The most queues an interval watch names.
const MAX_WATCHED_QUEUES: usize = 100;

/// A checked report request.
#[derive(Debug)]
pub struct Report {
    pub tenant: TenantId,
    pub range: Range<Timestamp>,
    pub grouping: Grouping,
}

fn boundary_name(interval: Interval) -> &'static str {
    match interval {
        Interval::Quarter => "a 15-minute boundary",
        Interval::Hour => "an hour boundary",
        Interval::Day => "a UTC midnight",
    }
}

/// A checked interval watch.
#[derive(Debug)]
pub struct Watch {
    pub tenant: TenantId,
    pub width: Interval,
    /// Grouped by `width`.
    pub grouping: Grouping,
    /// Only these queues' rows; empty: every row.
    pub queues: BTreeSet<String>,
}

/// The width a request asks for: `None` for unspecified, and nothing for an unknown value
/// (named).
fn interval(check: &mut Check, value: i32) -> Option<Option<Interval>> {
    match ReportInterval::try_from(value) {
        Ok(ReportInterval::Unspecified) => Some(None),
        Ok(ReportInterval::QuarterHour) => Some(Some(Interval::Quarter)),
        Ok(ReportInterval::Hour) => Some(Some(Interval::Hour)),
        Ok(ReportInterval::Day) => Some(Some(Interval::Day)),
        Err(_) => {
            check.fail("interval", format!("unknown value {value}"));
            None
        }
    }
}

/// Checks an interval watch: a tenant, a known width (15 minutes when unspecified), and
/// queue ids only with `by_queue`, at most 100, none empty, none twice.
pub fn watch(request: WatchIntervalRequest) -> Result<Watch> {
    let mut check = Check::default();
    let tenant = check.tenant("tenant_id", request.tenant_id);
    let width = interval(&mut check, request.interval).map(|i| i.unwrap_or(Interval::Quarter));
    let ids = request.queue_ids;
    if !ids.is_empty() && !request.by_queue {
        check.fail("queue_ids", "needs by_queue");
    }
    if ids.len() > MAX_WATCHED_QUEUES {
        check.fail("queue_ids", format!("at most {MAX_WATCHED_QUEUES} ids"));
    }
    let mut queues = BTreeSet::new();
    for (i, id) in ids.into_iter().enumerate() {
        if id.is_empty() {
            check.fail(format!("queue_ids[{i}]"), "must not be empty");
        } else if !queues.insert(id) {
            check.fail(format!("queue_ids[{i}]"), "names a queue twice");
        }
    }
    Ok(check.finish(|| {
        let width = width?;
        Some(Watch {
            tenant: tenant?,
            width,
            grouping: Grouping {
                interval: Some(width),
                queue: request.by_queue,
                channel: request.by_channel,
                intent: request.by_intent,
            },
            queues,
        })
    })?)
}

/// Checks a report request (see the module docs).
pub fn report(request: GetReportRequest) -> Result<Report> {
    let mut check = Check::default();
    let tenant = check.tenant("tenant_id", request.tenant_id);
    let mut time = |field: &str, value: Option<prost_types::Timestamp>| {
        if value.is_none() {
            check.fail(field, "required");
        }
        check.time(field, value)
    };
    let (from, to) = (time("from", request.from), time("to", request.to));
    let interval = interval(&mut check, request.interval);
    if let (Some(from), Some(to), Some(interval)) = (from, to, interval) {
        limits(&mut check, from..to, interval);
    }
    let grouping = |interval| Grouping {
        interval,
        queue: request.by_queue,
        channel: request.by_channel,
        intent: request.by_intent,
    };
    Ok(check.finish(|| {
        Some(Report {
            tenant: tenant?,
            range: from?..to?,
            grouping: grouping(interval?),
        })
    })?)
}

fn limits(check: &mut Check, range: Range<Timestamp>, interval: Option<Interval>) {
    let length = range.end.unix_millis() - range.start.unix_millis();
    if length <= 0 {
        return check.fail("to", "must be after from");
    }
    if length > MAX_RANGE_DAYS * DAY_MS {
        return check.fail("to", format!("the range is at most {MAX_RANGE_DAYS} days"));
    }
    let longest = match interval {
        Some(Interval::Quarter) => Some(MAX_QUARTER_DAYS),
        Some(Interval::Hour) => Some(MAX_HOUR_DAYS),
        _ => None,
    };
    if let Some(days) = longest.filter(|days| length > days * DAY_MS) {
        let message = format!("covers at most {days} days: ask by a longer interval");
        return check.fail("interval", message);
    }
    // The bounds of the buckets read: days for a day interval or a long range as one row.
    let long = interval.is_none() && length > MAX_HOUR_DAYS * DAY_MS;
    let bound = match interval {
        Some(interval) => interval,
        None if long => Interval::Day,
        None => Interval::Quarter,
    };
    for (field, at) in [("from", range.start), ("to", range.end)] {
        if bound.floor(at) != at {
            check.fail(field, format!("must be on {}", boundary_name(bound)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT_MS: i64 = 1_796_601_600_000;

    fn asked(from_ms: i64, to_ms: i64, interval: ReportInterval) -> GetReportRequest {
        let at = |ms: i64| prost_types::Timestamp {
            seconds: ms / 1000,
            nanos: 0,
        };
        GetReportRequest {
            tenant_id: "acme".into(),
            from: Some(at(from_ms)),
            to: Some(at(to_ms)),
            interval: interval as i32,
            ..Default::default()
        }
    }

    fn refused(request: GetReportRequest) -> String {
        report(request)
            .map(|_| ())
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn given_a_day_by_quarter_hours_then_accepted() {
        let day = asked(
            MIDNIGHT_MS,
            MIDNIGHT_MS + DAY_MS,
            ReportInterval::QuarterHour,
        );
        let grouping = report(day).expect("accepted").grouping;
        assert_eq!(grouping.interval, Some(Interval::Quarter));
    }

    #[test]
    fn given_bad_ranges_and_intervals_then_the_field_is_named() {
        let backwards = refused(asked(MIDNIGHT_MS, MIDNIGHT_MS, ReportInterval::Hour));
        assert!(backwards.contains("to: must be after from"), "{backwards}");
        let long = refused(asked(
            MIDNIGHT_MS,
            MIDNIGHT_MS + 401 * DAY_MS,
            ReportInterval::Day,
        ));
        assert!(long.contains("to: the range is at most 400 days"), "{long}");
        let week = MIDNIGHT_MS + 8 * DAY_MS;
        let fine = refused(asked(MIDNIGHT_MS, week, ReportInterval::QuarterHour));
        assert!(fine.contains("interval: covers at most 7 days"), "{fine}");
        let off = refused(asked(
            MIDNIGHT_MS + 60_000,
            MIDNIGHT_MS + DAY_MS,
            ReportInterval::Day,
        ));
        assert!(off.contains("from: must be on a UTC midnight"), "{off}");
        let mut unknown = asked(MIDNIGHT_MS, MIDNIGHT_MS + DAY_MS, ReportInterval::Day);
        (unknown.interval, unknown.from) = (9, None);
        let said = refused(unknown);
        assert!(said.contains("interval: unknown value 9"), "{said}");
        assert!(said.contains("from: required"), "{said}");
    }

    #[test]
    fn given_a_watch_with_no_width_then_it_watches_quarter_hours() {
        let asked = WatchIntervalRequest {
            tenant_id: "acme".into(),
            by_queue: true,
            queue_ids: vec!["billing".into()],
            ..Default::default()
        };
        let watch = watch(asked).expect("accepted");
        assert_eq!(watch.grouping.interval, Some(Interval::Quarter));
        assert!(watch.grouping.queue);
        assert_eq!(watch.queues, BTreeSet::from(["billing".to_owned()]));
    }

    #[test]
    fn given_bad_watches_then_the_field_is_named() {
        let refused = |asked: WatchIntervalRequest| {
            watch(asked).map(|_| ()).expect_err("refused").to_string()
        };
        let unqueued = WatchIntervalRequest {
            tenant_id: "acme".into(),
            queue_ids: vec!["billing".into()],
            interval: 9,
            ..Default::default()
        };
        let said = refused(unqueued);
        assert!(said.contains("queue_ids: needs by_queue"), "{said}");
        assert!(said.contains("interval: unknown value 9"), "{said}");
        let twice = WatchIntervalRequest {
            tenant_id: "acme".into(),
            by_queue: true,
            queue_ids: vec!["billing".into(), String::new(), "billing".into()],
            ..Default::default()
        };
        let said = refused(twice);
        assert!(said.contains("queue_ids[1]: must not be empty"), "{said}");
        assert!(said.contains("queue_ids[2]: names a queue twice"), "{said}");
        let many = WatchIntervalRequest {
            tenant_id: "acme".into(),
            by_queue: true,
            queue_ids: (0..101).map(|q| format!("q-{q}")).collect(),
            ..Default::default()
        };
        assert!(refused(many).contains("queue_ids: at most 100 ids"));
    }
}
