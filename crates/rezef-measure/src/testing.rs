//! The measurement as a projection runs it, in memory: each event through the real journey
//! fold (`Journey::apply_with`), then through the measurer with the journey after it, and
//! the records into buckets. What the projector computes, for tests and benchmarks to
//! compare with (feature `testing`).

use std::collections::BTreeMap;

use rezef_events::fold::{Context, customer_id_for};
use rezef_events::{CustomerId, CustomerRef, Event, Journey, Timestamp};

use crate::{Buckets, Interval, MeasureConfig, Measured, Measurer};

/// One tenant's journeys, measurer and buckets.
#[derive(Debug)]
pub struct Projection {
    pub config: MeasureConfig,
    pub journeys: BTreeMap<CustomerId, Journey>,
    pub measurer: Measurer,
    pub buckets: Buckets,
    pub records: Vec<Measured>,
    next_offset: u64,
}

/// The customer an event names: by id, or the id its identity resolves to when new.
pub fn customer_of(event: &Event) -> CustomerId {
    match &event.customer {
        Some(CustomerRef::Id(id)) => id.clone(),
        Some(CustomerRef::Identity(identity)) => customer_id_for(&event.tenant_id, identity),
        None => panic!("customer events only"),
    }
}

impl Projection {
    /// An empty projection measuring by `config`, into 15-minute buckets.
    pub fn new(config: MeasureConfig) -> Self {
        Self::at_width(config, Interval::Quarter)
    }

    /// The same, keeping its buckets `width` wide.
    pub fn at_width(config: MeasureConfig, width: Interval) -> Self {
        config.validate().expect("a valid configuration");
        Self {
            config,
            journeys: BTreeMap::new(),
            measurer: Measurer::new(),
            buckets: Buckets::new(width),
            records: Vec::new(),
            next_offset: 0,
        }
    }

    /// Folds and measures the next event of the log.
    pub fn feed(&mut self, event: &Event) {
        let offset = self.next_offset;
        self.next_offset += 1;
        let customer = customer_of(event);
        let journey = (self.journeys.entry(customer.clone()))
            .or_insert_with(|| Journey::new(event.tenant_id.clone(), customer, event.occurred_at));
        let applied = journey.apply_with(offset, event, &Context::standalone());
        let records =
            (self.measurer).observe(&self.config, offset, event, None, (journey, &applied));
        self.keep(records);
    }

    /// Moves the measurer's clock (decides first-contact resolutions whose window passed).
    pub fn advance(&mut self, now: Timestamp) {
        let records = self.measurer.advance(now);
        self.keep(records);
    }

    fn keep(&mut self, records: Vec<Measured>) {
        for record in records {
            self.buckets.add(&record);
            self.records.push(record);
        }
    }
}
