//! The widget in a real browser (issue 20, item 2): `rezef serve` with routing, the adapter
//! in this process, an agent desktop on `Routing/AgentSession`, and
//! `tests/browser/webchat.mjs` (playwright-core driving Debian's chromium): the visitor
//! opens the demo page, types to the bot and reads its answer, asks for an agent; the agent
//! here is offered the chat, accepts and replies, and the page shows the reply and that an
//! agent has the chat; the widget stays usable by keyboard and on a phone. Screenshots are
//! kept under `target/browser-screenshots/webchat-*.png`.
//!
//! Needs node, `npm ci --prefix tests/browser` and chromium, and `BROWSER_TESTS=1`; without
//! that variable the test says it is skipped and passes (`rezef_scenarios::browser`).

mod common;

use std::time::Duration;

use common::TENANT;
use rezef_adapter::EventFactory;
use rezef_adapter::proto::{self, agent_session_event::Event as Received, event::Payload};
use rezef_scenarios::RezefServer;
use rezef_scenarios::browser::browser;
use rezef_webchat::Settings;
use rezef_webchat::bot::Answer;

/// How long the browser may take for each step.
const STEP: Duration = Duration::from_secs(60);
const REPLY: &str = "Hi, I am Dana from Acme. How can I help?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_talks_to_the_bot_asks_for_an_agent_and_reads_the_agents_reply() {
    let Some(browser) = browser("webchat.mjs") else {
        return;
    };
    // Given Rezef with routing and an agent logged in,
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RezefServer::start(&dir.path().join("data")).await;
    let client = server.client().await;
    let mut desk = common::agent_on_duty(&client).await;
    // and the adapter serving its demo page,
    let mut settings = Settings::default();
    settings.rezef.address = server.url();
    settings.spool.dir = dir.path().join("spool");
    settings.webchat.tenant = TENANT.into();
    settings.bot.answers = vec![Answer {
        keywords: vec!["opening hours".into()],
        reply: "We are open Sunday to Thursday, 8:00 to 20:00.".into(),
        intent: "info.hours".into(),
    }];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let adapter = tokio::spawn(rezef_webchat::run(settings, listener, async move {
        let _ = stopped.await;
    }));

    // when a visitor opens the page, talks to the bot and asks for an agent,
    let url = format!("http://{addr}/");
    let mut page = browser.drive(&[("CHAT_URL", &url)], STEP);
    assert_eq!(
        page.next().as_deref(),
        Ok("waiting"),
        "the page waits for an agent"
    );

    // then the agent is offered the chat, accepts and replies,
    let offer = loop {
        let event = tokio::time::timeout(STEP, desk.next())
            .await
            .expect("in time");
        if let Received::Offer(offer) = event.expect("ok").expect("open") {
            break offer;
        }
    };
    desk.accept(offer.offer_id).await.expect("accepted");
    let context = offer.context.expect("context");
    let mut reply = EventFactory::new(TENANT, "agent-desktop")
        .customer(context.customer_id)
        .on(proto::Channel::Webchat, offer.interaction_id)
        .message(proto::Participant::Agent, REPLY);
    if let Some(Payload::MessageSent(message)) = &mut reply.payload {
        message.sender_id = "dana".into();
    }
    let mut publisher = client.clone();
    publisher.publish(vec![reply]).await.expect("published");
    page.tell(&format!("replied {REPLY}"));

    // and the page shows the reply, and stays usable by keyboard and on a phone.
    assert_eq!(
        page.next().as_deref(),
        Ok("done"),
        "the page showed the reply"
    );
    page.finish();
    let _ = stop.send(());
    let stopped = tokio::time::timeout(Duration::from_secs(20), adapter).await;
    stopped
        .expect("stops in time")
        .expect("no panic")
        .expect("a clean stop");
}
