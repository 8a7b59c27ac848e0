//! Why a visitor's frame was not taken, and what the widget is told: the `reason` of the
//! error frame and whether the chat closes, mapped here, once.

use crate::protocol::ProtocolError;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("the first message must be a hello")]
    HelloFirst,
    #[error("the chat has already said hello")]
    HelloAgain,
    #[error("a message of more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("binary frames are not part of the protocol")]
    Binary,
    /// The spool did not take the events (full, or failed): the message is not
    /// acknowledged, and the widget may send it again.
    #[error("the message could not be recorded; try again")]
    Publish(#[from] rezef_adapter::Error),
}

impl ChatError {
    /// The error frame's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Protocol(_) | Self::HelloAgain | Self::Binary => "bad_message",
            Self::HelloFirst => "hello_first",
            Self::TooLarge { .. } => "too_large",
            Self::Publish(_) => "unavailable",
        }
    }

    /// Whether the chat is closed after the error frame.
    pub fn closes(&self) -> bool {
        match self {
            Self::HelloFirst | Self::TooLarge { .. } => true,
            Self::Protocol(_) | Self::HelloAgain | Self::Binary | Self::Publish(_) => false,
        }
    }
}
