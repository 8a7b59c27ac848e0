//! What the web chat's tests share: an agent on duty for the tenant's chats.

use rezef_adapter::{AgentSession, Client, proto};

pub const TENANT: &str = "acme";

/// One queue for chats; agents need only to speak the chat's language.
const ROUTING: &str = r#"
version = 1
default_queue = "chat"

[[queues]]
id = "chat"
steps = [{ after = "0s" }]
"#;

/// Sets the tenant's routing to one queue for chats and logs agent `dana` in (English, two
/// chats at once): her desk.
pub async fn agent_on_duty(client: &Client) -> AgentSession {
    let config = proto::SetRoutingConfigRequest {
        tenant_id: TENANT.into(),
        config: ROUTING.into(),
    };
    (client.routing().set_routing_config(config).await).expect("routing set");
    let profile = proto::AgentProfile {
        agent_id: "dana".into(),
        languages: vec!["en".into()],
        capacity: [("webchat".to_owned(), 2)].into(),
        max_load: 2,
        ..Default::default()
    };
    (AgentSession::login(client, TENANT, profile, None).await).expect("logged in")
}
