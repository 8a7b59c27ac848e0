//! How the server opens a journey store and folds the log into it, the same for the
//! embedded log, every partition of a Kafka topic and `rezef rebuild`: sled on disk, the
//! projection in memory in front of it (`rezef_store::CachedStore`, `[projection]`), measuring
//! under the tenants' rules (`[measure]`).

use std::path::Path;
use std::sync::Arc;

use rezef_log::Log;
use rezef_store::{CachedStore, JourneyCache, JourneyStore, Projector, SledStore};

use crate::Result;
use crate::config::ServerConfig;

/// The node's cache of journeys read from the stores, `[projection] cache_mib` for all of
/// them together.
pub fn journey_cache(config: &ServerConfig) -> JourneyCache {
    JourneyCache::new(config.projection.store_config().cache_bytes)
}

/// The journey store at `path`, behind the configured projection memory, caching in the
/// node's `cache`.
pub fn open_store(
    config: &ServerConfig,
    path: &Path,
    cache: &JourneyCache,
) -> Result<Arc<CachedStore>> {
    let settings = rezef_store::ProjectionConfig {
        measure: config.measure.clone(),
        ..config.projection.store_config()
    };
    let sled = SledStore::open_with_cache(path, settings.store_cache_bytes)?;
    let sled: Arc<dyn JourneyStore> = Arc::new(sled);
    Ok(Arc::new(CachedStore::sharing(
        sled,
        settings,
        cache.clone(),
    )?))
}

/// Starts warming the node's cache from `store` in the background, if configured
/// (`[projection] warm_cache`, `rezef_store::warm`).
pub fn warm(config: &ServerConfig, store: &Arc<CachedStore>) {
    if !config.projection.warm_cache {
        return;
    }
    if let Err(error) = rezef_store::warm::spawn(store) {
        tracing::warn!(%error, "the journey cache is not warmed: no thread for it");
    }
}

/// The projector of `log` into `store`, remembering the configured window of event ids.
/// Refuses a store that is ahead of the log (`rezef_store::Error::AheadOfLog`).
pub fn projector(
    config: &ServerConfig,
    log: Arc<dyn Log>,
    store: Arc<CachedStore>,
) -> Result<Projector> {
    let window = config.projection.store_config().dedup_window;
    Ok(Projector::with_window(log, store, window)?)
}
