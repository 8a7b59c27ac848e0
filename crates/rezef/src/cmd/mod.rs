//! One file per subcommand.

pub mod demo;
pub mod journey;
pub mod keys;
pub mod publish;
pub mod rebuild;
pub mod replay;
pub mod resume;
pub mod serve;

use rezef_adapter::Client;

use crate::ServerAddr;

/// Connects a client command to the server, with a hint when nothing listens there, and
/// its API key on every call when given.
async fn connect(addr: &ServerAddr) -> anyhow::Result<Client> {
    // Checked before any call, for a clear message (and never echoed: it is a secret).
    if let Some(token) = &addr.token {
        anyhow::ensure!(
            token.parse::<rezef_auth::Token>().is_ok(),
            "--token (or REZEF_TOKEN) is not an API key: keys look like rzf_<id>_<secret>, \
             as `rezef keys create` prints them (a continuation token goes in \
             `rezef resume --continuation-token`)"
        );
    }
    let client = Client::connect(addr.server.clone())
        .await
        .map_err(|error| {
            anyhow::anyhow!("{error}\nhint: start the server with `rezef serve`, or pass --server")
        })?;
    match &addr.token {
        Some(token) => Ok(client.with_token(token.clone())?),
        None => Ok(client),
    }
}
