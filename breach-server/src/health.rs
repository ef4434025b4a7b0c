//! What the standard `grpc.health.v1.Health` service reports.
//!
//! Service names and their status:
//!
//! | name | SERVING when |
//! | --- | --- |
//! | `breach.v1.BreachCheck/credentials` | the credentials collection has a database loaded |
//! | `breach.v1.BreachCheck/passwords` | the passwords collection has a database loaded |
//! | `breach.v1.BreachCheck` | every configured collection is loaded |
//! | `""` (the server as a whole) | same as `breach.v1.BreachCheck` |
//! | `liveness` | always, while the process runs (for liveness probes: a server loading a big database is alive but not ready) |
//!
//! A configured collection starts NOT_SERVING and becomes SERVING when
//! [`HealthState::set_collection`] says it is loaded; a collection the
//! server was not configured with is unknown to the health service
//! (`NOT_FOUND` for `Check`, `SERVICE_UNKNOWN` for `Watch`). On shutdown
//! everything goes NOT_SERVING ([`HealthState::shutting_down`]), so load
//! balancers stop sending new calls while running ones finish.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::store::Collection;

/// The health service's name for the breach-check service as a whole.
pub const SERVICE: &str = "breach.v1.BreachCheck";

/// The health service's name that is SERVING as long as the process runs.
pub const LIVENESS: &str = "liveness";

/// The health service's name for one collection:
/// `breach.v1.BreachCheck/<collection>` (e.g.
/// `breach.v1.BreachCheck/credentials`).
pub fn collection_service(collection: Collection) -> String {
    format!("{SERVICE}/{}", collection.name())
}

/// The health state of the server: which configured collections are
/// loaded. Cheap to clone; every clone updates the same health service.
#[derive(Clone, Debug)]
pub struct HealthState {
    reporter: HealthReporter,
    /// Configured collections and whether each is loaded. The lock also
    /// orders updates, so the overall status always reflects the last one.
    loaded: Arc<Mutex<BTreeMap<Collection, bool>>>,
}

impl HealthState {
    /// A health state for a server configured to serve `configured`, all of
    /// them NOT_SERVING until [`set_collection`](Self::set_collection)
    /// marks them loaded. Returns the state and the health service to add
    /// to the router.
    pub async fn new(
        configured: impl IntoIterator<Item = Collection>,
    ) -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let loaded: BTreeMap<Collection, bool> =
            configured.into_iter().map(|c| (c, false)).collect();
        let state = Self {
            reporter,
            loaded: Arc::new(Mutex::new(loaded)),
        };
        state
            .reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        {
            let loaded = state.loaded.lock().await;
            for &c in loaded.keys() {
                state
                    .reporter
                    .set_service_status(collection_service(c), ServingStatus::NotServing)
                    .await;
            }
            state.publish_overall(&loaded).await;
        }
        (state, service)
    }

    /// Records whether `collection` has a database to answer from (call it
    /// with `true` when a database is loaded or swapped in, `false` if it
    /// is unloaded), and updates the overall status: SERVING when every
    /// configured collection is loaded. A collection that was not
    /// configured is added to the configured set.
    pub async fn set_collection(&self, collection: Collection, serving: bool) {
        let mut loaded = self.loaded.lock().await;
        loaded.insert(collection, serving);
        self.reporter
            .set_service_status(collection_service(collection), status(serving))
            .await;
        self.publish_overall(&loaded).await;
    }

    /// Whether every configured collection is loaded.
    pub async fn all_serving(&self) -> bool {
        let loaded = self.loaded.lock().await;
        all(&loaded)
    }

    /// Marks everything NOT_SERVING (the server is stopping); later
    /// [`set_collection`](Self::set_collection) calls still update the
    /// per-collection entries.
    pub async fn shutting_down(&self) {
        let mut loaded = self.loaded.lock().await;
        for (c, l) in loaded.iter_mut() {
            *l = false;
            self.reporter
                .set_service_status(collection_service(*c), ServingStatus::NotServing)
                .await;
        }
        self.publish_overall(&loaded).await;
    }

    async fn publish_overall(&self, loaded: &BTreeMap<Collection, bool>) {
        let s = status(all(loaded));
        self.reporter.set_service_status(SERVICE, s).await;
        self.reporter.set_service_status("", s).await;
    }
}

fn all(loaded: &BTreeMap<Collection, bool>) -> bool {
    !loaded.is_empty() && loaded.values().all(|&l| l)
}

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}
