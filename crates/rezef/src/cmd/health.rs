//! `rezef health`: whether a server says it serves (`grpc.health.v1.Health/Check`), as the
//! exit status. The kubelet's own gRPC probe speaks plain text only, so a node serving TLS is
//! probed with this command, run in its own container (deploy/kubernetes/statefulset.yaml).

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service asked about; empty: the server as a whole.
    #[arg(long, default_value = "")]
    service: String,
    #[command(flatten)]
    addr: crate::ServerAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = super::connect(&args.addr).await?;
    let request = HealthCheckRequest {
        service: args.service.clone(),
    };
    let reply = HealthClient::new(client.channel()).check(request).await?;
    let status = reply.into_inner().status();
    anyhow::ensure!(
        status == ServingStatus::Serving,
        "{:?} is {}",
        args.service,
        status.as_str_name()
    );
    println!("{}", status.as_str_name());
    Ok(())
}
