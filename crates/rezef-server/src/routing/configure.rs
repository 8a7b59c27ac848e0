//! `SetRoutingConfig`: a tenant's routing configuration replaced, every mistake in it
//! reported, the new one logged before it applies.

use rezef_events::Payload;
use rezef_proto::v1::{SetRoutingConfigRequest, SetRoutingConfigResponse};
use rezef_routing::RoutingConfig;
use tracing::info;

use super::Local;
use crate::convert::Check;
use crate::own_event::OwnEvent;
use crate::{Error, Result};

impl Local {
    pub(super) async fn set_config(
        &self,
        request: SetRoutingConfigRequest,
    ) -> Result<SetRoutingConfigResponse> {
        let mut check = Check::default();
        let tenant = check.tenant("tenant_id", request.tenant_id);
        if request.config.is_empty() {
            check.fail("config", "is required");
        }
        let Ok(tenant) = check.finish(|| tenant) else {
            return Err(Error::invalid("config", "is required (and tenant_id)"));
        };
        let routing = RoutingConfig::from_toml(&request.config).map_err(|errors| {
            Error::InvalidArgument(
                errors
                    .into_iter()
                    .map(|e| rezef_events::Violation::new(format!("config.{}", e.path), e.message))
                    .collect(),
            )
        })?;
        let version = routing.version;
        let payload = Payload::RoutingConfigChanged {
            version,
            config: request.config,
        };
        let event = OwnEvent::new(&tenant, "rezef.routing", payload).build();
        let offset = self.backbone().append(&[event]).await?;
        self.desk.configure(&tenant, routing);
        info!(%tenant, version, offset, "routing configuration replaced");
        Ok(SetRoutingConfigResponse { version, offset })
    }
}
