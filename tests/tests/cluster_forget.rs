//! Forgetting on a two-node Kafka cluster (docs/audit.md, "Forgetting a customer"), against
//! the broker `scripts/kafka-broker` starts (skipped without `KAFKA_BROKERS`): every node
//! seals under the cluster's key topic, so a customer forgotten through one node reads erased
//! through the other, and every other customer stays whole.

use futures::StreamExt;
use rezef_adapter::{Client, proto};
use rezef_scenarios::kafka::KafkaTopic;
use rezef_scenarios::two_nodes::{CUSTOMERS, TENANT, TwoNodes, call, publish};

/// The customer's messages, as a replay through `client` shows them: (text, erased).
async fn messages(client: &Client, customer: usize) -> Vec<(String, bool)> {
    let request = proto::ReplayHistoryRequest {
        tenant_id: TENANT.into(),
        customer: Some(call(TENANT, customer).customer_ref()),
        ..Default::default()
    };
    let stream = client
        .audit()
        .replay_history(request)
        .await
        .expect("replays");
    let replayed: Vec<_> = stream.into_inner().collect().await;
    (replayed.into_iter())
        .filter_map(|r| r.expect("replayed").event)
        .filter_map(|event| match event.payload {
            Some(proto::event::Payload::MessageSent(m)) => Some((m.text, event.erased)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_forgotten_through_one_node_reads_erased_through_the_other() {
    let Some(topic) = KafkaTopic::fresh("forget") else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let cluster = TwoNodes::start(&topic).await;
    let mut first = cluster.nodes[0].client().await;
    for customer in 0..CUSTOMERS {
        let said = call(TENANT, customer).message(proto::Participant::Customer, "my pin is 4580");
        publish(&mut first, vec![said]).await;
    }
    let second = cluster.nodes[1].client().await;
    for customer in 0..CUSTOMERS {
        assert_eq!(
            messages(&second, customer).await,
            [("my pin is 4580".into(), false)]
        );
    }

    let forget = |customer: usize| proto::ForgetCustomerRequest {
        tenant_id: TENANT.into(),
        customer_id: format!("c-{customer}"),
        reason: "DSR-7".into(),
    };
    for customer in [0, CUSTOMERS - 1] {
        let forgotten = first.identities().forget_customer(forget(customer)).await;
        assert_eq!(forgotten.expect("forgotten").into_inner().keys_destroyed, 1);
    }
    for customer in 0..CUSTOMERS {
        let expected = match customer {
            0 | 11 => (String::new(), true),
            _ => ("my pin is 4580".into(), false),
        };
        assert_eq!(
            messages(&second, customer).await,
            [expected],
            "c-{customer}"
        );
    }
}
