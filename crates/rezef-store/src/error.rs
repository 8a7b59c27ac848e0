//! Errors of the store and the projector.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the journey store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("the disk holding the journey store at {path} is full: {source}")]
    NoSpace {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("journey store failure: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in the journey store under {key}: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: rezef_events::Error,
    },
    #[error(
        "the journey store has state format {found}, this build writes {expected}: run `rezef rebuild`"
    )]
    FormatMismatch { found: u32, expected: u32 },
    #[error(
        "the journey store has measurement format {found} (0: written before measurement), this build writes {expected}: run `rezef rebuild`"
    )]
    MeasureFormatMismatch { found: u32, expected: u32 },
    #[error("cannot encode the {what} for the journey store: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: postcard::Error,
    },
    #[error("cannot use the checkpoint journal {path}: {source}")]
    Journal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the checkpoint journal {path} is damaged, so the store's last checkpoint cannot be finished: run `rezef rebuild`"
    )]
    JournalDamaged { path: PathBuf },
    #[error("customer {customer} of tenant {tenant} is merged in a loop or too deep")]
    MergeCycle {
        tenant: rezef_events::TenantId,
        customer: rezef_events::CustomerId,
    },
    #[error(
        "the journey store has projected up to offset {stored} but the log ends at {end}: the log lost records the store had folded (a restored backup, a deleted segment); run `rezef rebuild` to fold the log again"
    )]
    AheadOfLog { stored: u64, end: u64 },
    #[error("the journey store at {path} failed and could not be reopened yet")]
    Reopening { path: PathBuf },
    #[error(
        "measurement is off on this node ([measure] enabled = false): it keeps no figures to report"
    )]
    MeasurementOff,
    #[error("counting the measurement failed: {0}")]
    Counting(#[source] std::sync::Arc<Error>),
    #[error("the measurement's counter is not running: {0}")]
    CounterStopped(&'static str),
    #[error("measurement report refused: {0}")]
    Report(#[from] rezef_measure::Error),
    #[error(
        "the history asked for reaches offset {offset}, below the log's first record {start}: retention removed it"
    )]
    HistoryGone { offset: u64, start: u64 },
    #[error("log failure: {0}")]
    Log(#[from] rezef_log::Error),
    #[error("key store failure: {0}")]
    Keys(#[from] rezef_keys::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
