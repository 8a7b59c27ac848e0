//! What an intake adapter and an auditor meet over real gRPC on loopback: events dated in
//! the future, continuation tokens that do not verify, errors that always reach the client,
//! configuration mistakes all reported, sensitive values masked in replays and transcripts.

mod common;

use rezef_adapter::proto;
use tonic::Code;

use common::{Running, fields};

const TENANT: &str = "acme";

/// A routing configuration with a 21,400-character line missing its closing quote: the
/// parser quotes the line, and the client still gets INVALID_ARGUMENT naming the file.
#[tokio::test]
async fn an_error_quoting_a_huge_line_still_reaches_the_client() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    let config = format!(
        "version = 1\ndefault_queue = \"general\"\nname = \"{}\n",
        "x".repeat(21_400)
    );
    let status = client
        .routing()
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config,
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert_eq!(fields(&status), ["config.(file)"]);
    assert!(status.message().len() <= 1024, "{}", status.message().len());
    server.stop().await;
}

/// A bad duration does not hide a bad rule: SetRoutingConfig names both, with their paths.
#[tokio::test]
async fn every_configuration_mistake_is_reported_with_its_path() {
    let server = Running::start(Default::default()).await;
    let client = server.client().await;
    let config = r#"
        version = 1
        default_queue = "general"

        [offers]
        timeout = "2 parsecs"

        [[queues]]
        id = "general"
        steps = [{ after = "0s" }]

        [[rules]]
        name = "billing"
        when = "intent == 'billing'"
        queue = "general"

        [[rules]]
        name = "vip"
        when = "tire == 'vip'"
        queue = "general"
    "#;
    let status = client
        .routing()
        .set_routing_config(proto::SetRoutingConfigRequest {
            tenant_id: TENANT.into(),
            config: config.into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert_eq!(
        fields(&status),
        ["config.offers.timeout", "config.rules[1].when"]
    );
    server.stop().await;
}
