//! The adapter's settings and mapping, one TOML file (`deploy/rezef-webhook.toml`), layered
//! by the runtime: defaults → `--config` file → `REZEF_WEBHOOK_` variables. Beside the
//! runtime's `[rezef]`, `[spool]` and `[http]`: `[webhook]` (the events' source, the body
//! limit) and `[[routes]]` (`mapping/config.rs`), compiled by [`Settings::compile`].

use std::collections::HashMap;

use rezef_adapter::service::{HttpSettings, RezefSettings, SpoolSettings};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::mapping::config::RouteConfig;
use crate::mapping::{ConfigError, Mapping};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub rezef: RezefSettings,
    pub spool: SpoolSettings,
    pub http: HttpSettings,
    pub webhook: WebhookSettings,
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// The `source` of the events, unless a route's envelope names one.
    pub source: String,
    /// Bodies over this are refused with 413.
    pub max_body_bytes: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            source: "webhook".into(),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// A route ready to serve: how its requests prove themselves, what their bodies become.
#[derive(Debug)]
pub struct Route {
    pub auth: Auth,
    pub mapping: Mapping,
}

impl Settings {
    /// Every route checked and compiled, by name; the first mistake named.
    pub fn compile(&self) -> Result<HashMap<String, Route>, ConfigError> {
        if self.routes.is_empty() {
            return Err(ConfigError {
                at: "routes".into(),
                reason: "at least one [[routes]] is needed".into(),
            });
        }
        let mut routes = HashMap::new();
        for config in &self.routes {
            let mapping = Mapping::compile(config, &self.webhook.source)?;
            let auth = Auth::compile(&config.name, &config.auth)?;
            if routes
                .insert(config.name.clone(), Route { auth, mapping })
                .is_some()
            {
                return Err(ConfigError {
                    at: format!("routes[{}]", config.name),
                    reason: "two routes have this name".into(),
                });
            }
        }
        Ok(routes)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_deployed_example_loads_and_compiles() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rezef-webhook.toml");
        let settings: Settings =
            rezef_adapter::service::load(Some(&file), "REZEF_WEBHOOK_TEST_").expect("loads");
        let routes = settings.compile().expect("compiles");
        assert!(routes.contains_key("helpdesk"));
    }

    #[test]
    fn settings_without_a_route_are_refused() {
        let error = Settings::default().compile().expect_err("refused");
        assert_eq!(error.at, "routes");
    }
}
