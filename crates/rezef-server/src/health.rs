//! What `grpc.health.v1.Health` answers, from the state of the parts each service needs.
//!
//! SERVING must mean "can serve": an orchestrator routes around, or restarts, a node that
//! says otherwise. Two parts can fail while the process runs: the log's writes (a full disk:
//! `rezef_log::WriteHealth`) and the projector (checkpoints failing, or stopped:
//! `rezef_store::ProjectorHealth`). Both recover by themselves once the disk has space, so
//! health follows them both ways. A service is NOT_SERVING while a part its methods need has
//! failed on any partition served here (docs/architecture.md, "A full disk, and health"):
//!
//! | service                                    | NOT_SERVING while                            |
//! |--------------------------------------------|----------------------------------------------|
//! | `""` (the server as a whole)               | the log refuses writes, or the projector is stalled or stopped |
//! | `rezef.v1.Ingest`                          | the log refuses writes                       |
//! | `rezef.v1.Routing`                         | the log refuses writes, or the projector has stopped |
//! | `rezef.v1.Journeys`, `rezef.v1.Identities` | the projector has stopped                    |
//! | `rezef.v1.Audit`                           | never (it reads the log)                     |
//!
//! Journeys and Identities answer reads from the projection while the log refuses writes;
//! their few writing methods then fail alone (`RESOURCE_EXHAUSTED` on a full disk).

use std::time::Duration;

use rezef_log::WriteHealth;
use rezef_proto::v1::{
    audit_server::AuditServer, identities_server::IdentitiesServer, ingest_server::IngestServer,
    journeys_server::JourneysServer, routing_server::RoutingServer,
};
use rezef_store::ProjectorHealth;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{Instrument, info, info_span, warn};

use crate::audit::AuditService;
use crate::cluster::Topology;
use crate::identities::IdentitiesService;
use crate::ingest::IngestService;
use crate::journeys::JourneysService;
use crate::routing::RoutingService;

/// How often the parts are looked at: a failure or a recovery shows within this.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// The node's parts, over every partition served here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts {
    /// Why the log refuses writes, if it does.
    log: Option<String>,
    /// Why the projector is stalled (checkpoints fail), if it is.
    stalled: Option<String>,
    /// Why the projector stopped, if it did.
    stopped: Option<String>,
}

impl Parts {
    fn of(topology: &Topology) -> Self {
        let mut parts = Parts {
            log: None,
            stalled: None,
            stopped: None,
        };
        for (partition, backbone) in topology.replicas().all() {
            if let WriteHealth::Failing { reason, .. } = &*backbone.log.write_health().borrow() {
                parts
                    .log
                    .get_or_insert(format!("partition {partition}: {reason}"));
            }
            match &*backbone.projection.health().borrow() {
                ProjectorHealth::Running => {}
                ProjectorHealth::Stalled { reason } => {
                    parts
                        .stalled
                        .get_or_insert(format!("partition {partition}: {reason}"));
                }
                ProjectorHealth::Stopped { reason } => {
                    parts
                        .stopped
                        .get_or_insert(format!("partition {partition}: {reason}"));
                }
            }
        }
        parts
    }

    /// Each service's status (by its gRPC name) under these parts.
    fn statuses(&self) -> [(&'static str, ServingStatus); 6] {
        let serving = |ok: bool| {
            if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        let writes = self.log.is_none();
        let folding = self.stopped.is_none();
        let whole = writes && folding && self.stalled.is_none();
        [
            ("", serving(whole)),
            (IngestServer::<IngestService>::NAME, serving(writes)),
            (
                RoutingServer::<RoutingService>::NAME,
                serving(writes && folding),
            ),
            (JourneysServer::<JourneysService>::NAME, serving(folding)),
            (
                IdentitiesServer::<IdentitiesService>::NAME,
                serving(folding),
            ),
            (AuditServer::<AuditService>::NAME, ServingStatus::Serving),
        ]
    }
}

/// Sets every service's status now, then keeps them following the parts (in the
/// background, until the server shuts down).
pub async fn follow(
    topology: Topology,
    reporter: HealthReporter,
    closing: tokio::sync::watch::Receiver<bool>,
) {
    let mut parts = Parts::of(&topology);
    report(&reporter, &parts).await;
    let follow = async move {
        let mut closing = closing;
        loop {
            tokio::select! {
                () = tokio::time::sleep(LOOK_EVERY) => {}
                _ = closing.wait_for(|closing| *closing) => return,
            }
            let now = Parts::of(&topology);
            if now != parts {
                if now.log.is_none() && now.stalled.is_none() && now.stopped.is_none() {
                    info!("every part serves again");
                } else {
                    warn!(log = ?now.log, stalled = ?now.stalled, stopped = ?now.stopped,
                        "a part cannot serve: health says NOT_SERVING where it is needed");
                }
                report(&reporter, &now).await;
                parts = now;
            }
        }
    };
    tokio::spawn(follow.instrument(info_span!("health")));
}

async fn report(reporter: &HealthReporter, parts: &Parts) {
    for (service, status) in parts.statuses() {
        reporter.set_service_status(service, status).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ServingStatus::{NotServing, Serving};

    fn parts(log: Option<&str>, stalled: Option<&str>, stopped: Option<&str>) -> Parts {
        Parts {
            log: log.map(String::from),
            stalled: stalled.map(String::from),
            stopped: stopped.map(String::from),
        }
    }

    /// The status of every service under `parts`, in the order `Parts::statuses` gives.
    fn statuses(parts: &Parts) -> Vec<(&'static str, ServingStatus)> {
        parts.statuses().to_vec()
    }

    #[test]
    fn each_service_says_whether_the_parts_it_needs_serve() {
        let services = [
            "",
            "rezef.v1.Ingest",
            "rezef.v1.Routing",
            "rezef.v1.Journeys",
            "rezef.v1.Identities",
            "rezef.v1.Audit",
        ];
        let cases = [
            (parts(None, None, None), [Serving; 6]),
            (
                parts(Some("the log's disk is full"), None, None),
                [
                    NotServing, NotServing, NotServing, Serving, Serving, Serving,
                ],
            ),
            (
                parts(None, Some("no space"), None),
                [NotServing, Serving, Serving, Serving, Serving, Serving],
            ),
            (
                parts(None, None, Some("corrupt")),
                [
                    NotServing, Serving, NotServing, NotServing, NotServing, Serving,
                ],
            ),
        ];
        for (parts, expected) in cases {
            let expected: Vec<_> = services.into_iter().zip(expected).collect();
            assert_eq!(statuses(&parts), expected, "{parts:?}");
        }
    }
}
