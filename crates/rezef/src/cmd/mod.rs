//! One file per subcommand.

pub mod demo;
pub mod journey;
pub mod publish;
pub mod rebuild;
pub mod replay;
pub mod resume;
pub mod serve;

use rezef_adapter::Client;

/// Connects a client command to the server, with a hint when nothing listens there.
async fn connect(server: &str) -> anyhow::Result<Client> {
    Client::connect(server.to_owned()).await.map_err(|error| {
        anyhow::anyhow!("{error}\nhint: start the server with `rezef serve`, or pass --server")
    })
}
