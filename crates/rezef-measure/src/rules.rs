//! Every tenant's measurement rules: one default and whole sections by tenant, as the
//! continuity rules are configured (`[measure.default]`, `[measure.tenants.<tenant>]`). A
//! projection measures each event under its tenant's rules, unless measurement is off
//! (`[measure] enabled = false`: a node that only folds journeys, or the baseline of the
//! measurement's cost in `rezef-bench measure-cost`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use rezef_events::TenantId;

use crate::config::MeasureConfig;

/// The rules of every tenant (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeasureRules {
    /// Whether the projection measures at all (default true). Off, it records nothing and
    /// reports are refused; figures of events folded while off are missing until `rezef
    /// rebuild` measures the log again.
    pub enabled: bool,
    /// The rules of tenants without a section of their own.
    pub default: MeasureConfig,
    /// A tenant's section replaces the whole default for that tenant (fields it leaves out
    /// take the built-in defaults).
    pub tenants: BTreeMap<String, MeasureConfig>,
}

impl Default for MeasureRules {
    fn default() -> Self {
        Self {
            enabled: true,
            default: MeasureConfig::default(),
            tenants: BTreeMap::new(),
        }
    }
}

impl MeasureRules {
    pub fn for_tenant(&self, tenant: &TenantId) -> &MeasureConfig {
        self.tenants.get(tenant.as_str()).unwrap_or(&self.default)
    }

    /// The first section whose rules cannot be used, as `measure.<section>: reason`.
    pub fn problem(&self) -> Option<String> {
        let default = std::iter::once(("default".to_owned(), &self.default));
        let tenants = (self.tenants.iter()).map(|(t, config)| (format!("tenants.{t}"), config));
        default.chain(tenants).find_map(|(section, config)| {
            (config.validate().err()).map(|error| format!("measure.{section}: {error}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_tenant_section_then_it_replaces_the_default_and_a_bad_one_is_named() {
        let mut rules = MeasureRules::default();
        assert_eq!(rules.problem(), None);
        let bank = MeasureConfig {
            fcr_window_days: 0,
            ..MeasureConfig::default()
        };
        rules.tenants.insert("bank".into(), bank);
        let tenant = TenantId::new("bank").expect("tenant");
        assert_eq!(rules.for_tenant(&tenant).fcr_window_days, 0);
        let other = TenantId::new("shop").expect("tenant");
        assert_eq!(rules.for_tenant(&other).fcr_window_days, 7);
        assert_eq!(
            rules.problem().as_deref(),
            Some("measure.tenants.bank: fcr_window_days must be between 1 and 90, got 0")
        );
    }
}
