//! One visitor's connection: `hello` opens the chat (continuing it after a reconnect, or a
//! new one in the visitor's conversation), then the visitor's messages are recorded and
//! acknowledged, answered by the bot while it has the chat, and handed off; the watch of
//! the journey brings agent replies and the chat's status. The visitor's `end`, or the
//! connection closing, ends the interaction; the adapter stopping does not (the widget
//! reconnects and carries on).
//!
//! Logs name the chat id only: never the visitor id nor what anyone wrote.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use rezef_adapter::proto::{self, event::Payload};
use rezef_adapter::{identity_ref, new_event_id};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span, warn};

use crate::App;
use crate::bot::Turn;
use crate::error::ChatError;
use crate::events::ChatEvents;
use crate::handoff::{self, Request};
use crate::protocol::{Entry, Inbound, Outbound, Status};
use crate::transcript::Forwarder;
use crate::watch::{self, Update};

/// How long a connection may stay silent before its `hello`.
const HELLO_WAIT: Duration = Duration::from_secs(30);

/// What `hello` says.
#[derive(Debug)]
struct Hello {
    visitor: String,
    chat: Option<String>,
    language: Option<String>,
    page: Option<String>,
}

/// Serves one connection, in a span that names its chat once it has one.
pub async fn run(socket: WebSocket, app: App) {
    let span = info_span!("chat", chat = tracing::field::Empty);
    connection(socket, app).instrument(span).await;
}

async fn connection(mut socket: WebSocket, app: App) {
    let hello = match first_hello(&mut socket, &app).await {
        Ok(Some(hello)) => hello,
        Ok(None) => return,
        Err(error) => return refuse(&mut socket, &error).await,
    };
    match Chat::open(&app, hello).await {
        Ok((chat, welcome)) => {
            tracing::Span::current().record("chat", chat.events.chat());
            chat.serve(socket, welcome).await;
        }
        Err(error) => refuse(&mut socket, &error).await,
    }
}

/// The first frame, which must be a `hello`; `None` if the visitor went away first.
async fn first_hello(socket: &mut WebSocket, app: &App) -> Result<Option<Hello>, ChatError> {
    let Ok(frame) = tokio::time::timeout(HELLO_WAIT, socket.recv()).await else {
        return Err(ChatError::HelloFirst);
    };
    let text = match frame {
        Some(Ok(Message::Text(text))) => text,
        Some(Ok(Message::Binary(_))) => return Err(ChatError::HelloFirst),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Err(ChatError::HelloFirst),
        Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(None),
    };
    check_size(app, text.len())?;
    match Inbound::parse(text.as_str()) {
        Ok(Inbound::Hello {
            visitor,
            chat,
            language,
            page,
        }) => Ok(Some(Hello {
            visitor,
            chat,
            language,
            page,
        })),
        Ok(_) | Err(_) => Err(ChatError::HelloFirst),
    }
}

fn check_size(app: &App, len: usize) -> Result<(), ChatError> {
    let limit = app.settings.webchat.max_message_bytes;
    if len > limit {
        return Err(ChatError::TooLarge { limit });
    }
    Ok(())
}

/// Sends the error frame for `error`, then closes if it closes the chat.
async fn refuse(socket: &mut WebSocket, error: &ChatError) {
    let frame = Outbound::Error {
        reason: error.reason().to_owned(),
        detail: error.to_string(),
    };
    let _ = socket.send(Message::Text(frame.to_json().into())).await;
    if error.closes() {
        let code = match error {
            ChatError::TooLarge { .. } => close_code::SIZE,
            _ => close_code::POLICY,
        };
        close(socket, code, error.reason()).await;
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// An open chat.
#[derive(Debug)]
struct Chat {
    app: App,
    events: ChatEvents,
    language: Option<String>,
    status: Status,
    /// Bot turns not understood in a row.
    failures: u32,
    /// The intent the bot last recognised.
    intent: Option<String>,
    /// The widget's ids of the messages recorded in this connection.
    recorded: HashSet<String>,
    ended: bool,
    updates: mpsc::Receiver<Update>,
    watcher: JoinHandle<()>,
}

impl Drop for Chat {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Chat {
    /// Opens the chat `hello` asks for; what the widget is told first.
    async fn open(app: &App, hello: Hello) -> Result<(Self, Vec<Outbound>), ChatError> {
        let settings = &app.settings;
        let customer = identity_ref(proto::IdentityKind::ChatVisitor, &hello.visitor);
        let conversation = resume(app, customer.clone()).await;
        // A chat carries on after a reconnect when it is in the visitor's own conversation
        // and not over: a chat id alone, someone else's or unknown to Rezef, opens nothing.
        let carried = (hello.chat.as_deref())
            .and_then(|id| {
                (conversation.iter())
                    .flat_map(|c| &c.interactions)
                    .find(|i| i.interaction_id == id)
            })
            .and_then(|i| proto::Stage::try_from(i.stage).ok())
            .filter(|stage| Status::of_stage(*stage) != Status::Ended);
        let chat_id = match (&hello.chat, carried) {
            (Some(id), Some(_)) => {
                app.away.back(id);
                id.clone()
            }
            _ => format!("c-{}", new_event_id()),
        };
        let events = ChatEvents::new(
            &settings.webchat.tenant,
            &settings.webchat.source,
            &hello.visitor,
            &chat_id,
        );
        let started = events.started(hello.language.as_deref(), hello.page.as_deref());
        app.publisher.publish(started).await?;
        let shown = conversation.map(|c| c.transcript);
        let mut welcome = vec![Outbound::Welcome {
            chat: chat_id.clone(),
            resumed: shown.is_some(),
            transcript: (shown.iter().flatten())
                .map(Entry::from_transcript)
                .collect(),
        }];
        if carried.is_none() {
            let bot = &settings.bot;
            let greeting = events.bot_message("greeting", &bot.id, &bot.greeting);
            app.publisher.publish(greeting).await?;
            welcome.push(bot_entry(app, &bot.greeting));
        }
        let status = carried.map_or(Status::Bot, Status::of_stage);
        welcome.push(Outbound::Status { status });
        let (updates_tx, updates) = mpsc::channel(16);
        let watcher = watch::spawn(
            app.client.clone(),
            settings.webchat.tenant.clone(),
            customer,
            chat_id,
            Forwarder::new(shown.as_deref().unwrap_or_default()),
            updates_tx,
        );
        let chat = Self {
            app: app.clone(),
            events,
            language: hello.language,
            status,
            failures: 0,
            intent: None,
            recorded: HashSet::new(),
            ended: false,
            updates,
            watcher,
        };
        Ok((chat, welcome))
    }

    async fn serve(mut self, mut socket: WebSocket, welcome: Vec<Outbound>) {
        info!(carried_on = self.status != Status::Bot, "chat open");
        if send(&mut socket, welcome).await.is_err() {
            return self.left().await;
        }
        let mut stopping = self.app.stopping.clone();
        loop {
            tokio::select! {
                frame = socket.recv() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(bytes))) => {
                            let error = check_size(&self.app, bytes.len())
                                .err()
                                .unwrap_or(ChatError::Binary);
                            if self.refused(&mut socket, error).await {
                                return;
                            }
                            continue;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return self.left().await,
                    };
                    match self.on_text(text.as_str()).await {
                        Ok(out) => {
                            if send(&mut socket, out).await.is_err() {
                                return self.left().await;
                            }
                        }
                        Err(error) => {
                            if self.refused(&mut socket, error).await {
                                return;
                            }
                        }
                    }
                }
                Some(update) = self.updates.recv() => {
                    let out = self.on_update(&update);
                    if send(&mut socket, out).await.is_err() {
                        return self.left().await;
                    }
                }
                _ = stopping.changed() => {
                    return close(&mut socket, close_code::RESTART, "the adapter is stopping").await;
                }
            }
            if self.ended {
                info!("chat ended");
                return close(&mut socket, close_code::NORMAL, "ended").await;
            }
        }
    }

    /// Tells the widget `error`; whether the chat is over.
    async fn refused(&mut self, socket: &mut WebSocket, error: ChatError) -> bool {
        if let ChatError::Publish(cause) = &error {
            warn!(error = %cause, "a message was not recorded");
        }
        refuse(socket, &error).await;
        if error.closes() {
            self.left().await;
        }
        error.closes()
    }

    async fn on_text(&mut self, text: &str) -> Result<Vec<Outbound>, ChatError> {
        check_size(&self.app, text.len())?;
        match Inbound::parse(text)? {
            Inbound::Hello { .. } => Err(ChatError::HelloAgain),
            Inbound::Message { id, text } => self.on_message(id, &text).await,
            Inbound::End => {
                let ended = self.events.ended(proto::EndReason::Completed);
                self.app.publisher.publish(ended).await?;
                self.ended = true;
                Ok(vec![Outbound::Status {
                    status: Status::Ended,
                }])
            }
        }
    }

    /// Records the visitor's message `id` (once; sent again, it is only acknowledged
    /// again), and has the bot answer it while the bot has the chat.
    async fn on_message(&mut self, id: String, text: &str) -> Result<Vec<Outbound>, ChatError> {
        let ack = Outbound::Ack { id: id.clone() };
        if self.recorded.contains(&id) {
            return Ok(vec![ack]);
        }
        let message = self.events.visitor_message(&id, text);
        self.app.publisher.publish(message).await?;
        self.recorded.insert(id.clone());
        let mut out = vec![ack];
        if self.status == Status::Bot {
            out.extend(self.bot_turn(&id, text).await?);
        }
        Ok(out)
    }

    async fn bot_turn(&mut self, id: &str, text: &str) -> Result<Vec<Outbound>, ChatError> {
        let settings = self.app.settings.clone();
        let bot = &settings.bot;
        let reply = format!("bot:{id}");
        match bot.decide(text, self.failures) {
            Turn::Answer(answer) => {
                self.failures = 0;
                self.intent = Some(answer.intent.clone());
                let intent = proto::IntentDetected {
                    intent: answer.intent.clone(),
                    confidence: 1.0,
                    detected_by: bot.id.clone(),
                };
                let events = vec![
                    self.events.bot_message(&reply, &bot.id, &answer.reply),
                    (self.events).event(&format!("intent:{id}"), Payload::IntentDetected(intent)),
                ];
                self.app.publisher.publish_all(events).await?;
                Ok(vec![bot_entry(&self.app, &answer.reply)])
            }
            Turn::NotUnderstood => {
                self.failures += 1;
                let event = self
                    .events
                    .bot_message(&reply, &bot.id, &bot.not_understood);
                self.app.publisher.publish(event).await?;
                Ok(vec![bot_entry(&self.app, &bot.not_understood)])
            }
            Turn::Handoff(reason) => {
                let request = Request {
                    message_id: id,
                    reason,
                    failures: self.failures,
                    intent: self.intent.as_deref(),
                    language: self.language.as_deref(),
                };
                handoff::hand_off(&self.app, &self.events, &request).await?;
                self.status = Status::Waiting;
                Ok(vec![
                    bot_entry(&self.app, &bot.handoff),
                    Outbound::Status {
                        status: Status::Waiting,
                    },
                ])
            }
        }
    }

    /// Agent messages to show, and the status if it changed.
    fn on_update(&mut self, update: &Update) -> Vec<Outbound> {
        let mut out: Vec<Outbound> = (update.messages.iter())
            .map(|m| Outbound::Message(Entry::from_transcript(m)))
            .collect();
        if let Some(stage) = update.stage {
            let status = self.status.advance(Status::of_stage(stage));
            if status != self.status {
                info!(status = ?status, "chat status");
                self.status = status;
                self.ended = status == Status::Ended;
                out.push(Outbound::Status { status });
            }
        }
        out
    }

    /// The visitor went away: the interaction ends once the grace for coming back is over
    /// (`away.rs`), unless it already has.
    async fn left(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        info!("visitor away");
        let ended = self.events.ended(proto::EndReason::CustomerLeft);
        let publisher = self.app.publisher.clone();
        let end = async move {
            if let Err(error) = publisher.publish(ended).await {
                warn!(%error, "the chat's end was not recorded");
            }
        }
        .in_current_span();
        let grace = self.app.settings.webchat.reconnect_grace_ms;
        self.app.away.left(self.events.chat(), grace, end);
    }
}

async fn send(socket: &mut WebSocket, frames: Vec<Outbound>) -> Result<(), axum::Error> {
    for frame in frames {
        socket.send(Message::Text(frame.to_json().into())).await?;
    }
    Ok(())
}

/// The bot's message `text`, as the widget shows it.
fn bot_entry(app: &App, text: &str) -> Outbound {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
    let at = now.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Outbound::Message(Entry {
        from: "bot",
        sender: app.settings.bot.id.clone(),
        text: text.to_owned(),
        channel: "webchat".into(),
        at,
    })
}

/// The visitor's open conversation, if Rezef answers in time.
async fn resume(app: &App, customer: proto::CustomerRef) -> Option<proto::Conversation> {
    let chat = &app.settings.webchat;
    let request = proto::ResumeConversationRequest {
        tenant_id: chat.tenant.clone(),
        customer: Some(customer),
        channel: proto::Channel::Webchat as i32,
        transcript_limit: Some(chat.transcript_limit.min(50)),
        ..Default::default()
    };
    let mut journeys = app.client.journeys();
    let asked = journeys.resume_conversation(request);
    match tokio::time::timeout(chat.resume_timeout_ms, asked).await {
        Ok(Ok(answer)) => answer.into_inner().conversation,
        Ok(Err(status)) => {
            warn!(code = ?status.code(), "resume failed: a fresh chat");
            None
        }
        Err(_) => {
            warn!("resume timed out: a fresh chat");
            None
        }
    }
}
