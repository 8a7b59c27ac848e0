//! The command line every reference adapter binary shares, flattened into its own parser:
//! where its settings are and how it logs.

use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{load, telemetry};
use crate::Error;

#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// The settings file (TOML); the adapter's `REZEF_<ADAPTER>_` variables override it
    /// (docs/adapters.md, "The adapters' runtime").
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Logs as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

impl ServiceArgs {
    /// Starts the logs, then reads the settings: defaults, the file, then the variables
    /// named `env_prefix` and the setting (`REZEF_WEBCHAT_HTTP__LISTEN`).
    pub fn settings<T>(&self, env_prefix: &str) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        telemetry::init(self.log_json);
        load(self.config.as_deref(), env_prefix)
    }
}
