//! Live updates: the databases a server answers from, swapped without
//! downtime.
//!
//! A [`Catalog`] holds, for each collection the server is configured to
//! serve, the database in use (or none while it is loading). A request
//! takes its own reference to the database when it starts and finishes on
//! it, whatever is swapped in meanwhile; the old database is freed when the
//! last such request ends. So while a swap happens, memory holds two
//! databases of that collection (the reloader loads one collection at a
//! time, so never more than one extra).
//!
//! A [`Reloader`] watches the store's `psi/` folder. `breach-server build`
//! writes a new database to a temporary file, syncs it and renames it over
//! the old one, so a file that appears under its final name is complete.
//! The reloader notices it through a file watch (inotify), a poll every few
//! seconds (for file systems that send no events, e.g. some network mounts
//! and overlay volumes) or an explicit [`Reloader::check_now`] (SIGHUP in
//! `serve`), loads it beside the one in use and swaps. A file that fails to
//! load is logged and skipped (the old database keeps serving) until the
//! file changes again.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::psi_db::{self, CollectionDb};
use crate::store::{Collection, Deployment};

/// How often the reloader looks at the database files when no file event
/// arrives.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Identity of a database file as last seen: a rename gives a new inode,
/// so a rebuilt file never looks like the one loaded before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileId {
    /// The identity of `path`, `None` if it does not exist.
    fn of(path: &Path) -> Result<Option<FileId>> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(FileId {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// One collection's place in the catalog.
#[derive(Debug, Default)]
struct Slot {
    db: ArcSwapOption<CollectionDb>,
    /// The file the database in `db` was loaded from, and the last file
    /// that failed to load (not retried until it changes).
    files: Mutex<SlotFiles>,
}

#[derive(Debug, Default)]
struct SlotFiles {
    loaded: Option<FileId>,
    failed: Option<FileId>,
    /// Why `failed` did not load.
    failure: Option<String>,
}

/// The databases a server answers from, one slot per configured
/// collection, each swappable at any time.
#[derive(Debug)]
pub struct Catalog {
    slots: HashMap<Collection, Slot>,
    /// The shard the databases belong to (published by `GetParameters`).
    deployment: arc_swap::ArcSwap<Deployment>,
    /// Bumped on every swap; [`Catalog::wait_ready`] watches it.
    changes: watch::Sender<u64>,
}

/// What happened to one collection in a [`Catalog::install`].
#[derive(Clone, Debug)]
pub struct Swap {
    /// The collection.
    pub collection: Collection,
    /// Generation of the database now served.
    pub generation: u64,
    /// Generation of the database it replaced, if any.
    pub previous: Option<u64>,
}

impl Catalog {
    /// A catalog that will serve `collections`, all still loading.
    pub fn new(collections: &[Collection]) -> Self {
        Self {
            slots: collections.iter().map(|&c| (c, Slot::default())).collect(),
            deployment: Default::default(),
            changes: watch::Sender::new(0),
        }
    }

    /// A catalog serving exactly `dbs` (at most one per collection).
    pub fn with_databases(dbs: Vec<CollectionDb>) -> Result<Self> {
        let mut collections: Vec<Collection> = dbs.iter().map(|d| d.collection).collect();
        collections.sort();
        if collections.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Config("two databases for one collection".into()));
        }
        let catalog = Self::new(&collections);
        for db in dbs {
            catalog.install(db)?;
        }
        Ok(catalog)
    }

    /// The shard (and username routing) of the store the databases come
    /// from: an unsharded deployment until [`set_deployment`](Self::set_deployment).
    pub fn deployment(&self) -> Arc<Deployment> {
        self.deployment.load_full()
    }

    /// Sets what [`deployment`](Self::deployment) returns.
    pub fn set_deployment(&self, deployment: Deployment) {
        self.deployment.store(Arc::new(deployment));
    }

    /// The collections this catalog serves (loaded or not), sorted.
    pub fn collections(&self) -> Vec<Collection> {
        let mut c: Vec<Collection> = self.slots.keys().copied().collect();
        c.sort();
        c
    }

    /// The database in use for `collection`: `Error::NotServed` if the
    /// server does not serve it, `Error::Loading` while it has none yet.
    pub fn get(&self, collection: Collection) -> Result<Arc<CollectionDb>> {
        self.slots
            .get(&collection)
            .ok_or(Error::NotServed { collection })?
            .db
            .load_full()
            .ok_or(Error::Loading { collection })
    }

    /// Every loaded database, sorted by collection.
    pub fn loaded(&self) -> Vec<Arc<CollectionDb>> {
        self.collections()
            .into_iter()
            .filter_map(|c| self.get(c).ok())
            .collect()
    }

    /// A receiver that sees a change after every swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Why the last file of `collection` that failed to load was refused
    /// (`None` if the last file loaded, or none was tried).
    pub fn load_failure(&self, collection: Collection) -> Option<String> {
        let slot = self.slots.get(&collection)?;
        let files = slot.files.lock().unwrap_or_else(|p| p.into_inner());
        files.failure.clone()
    }

    /// Whether every configured collection has a database.
    pub fn is_ready(&self) -> bool {
        self.slots.values().all(|s| s.db.load().is_some())
    }

    /// Waits until every configured collection has a database.
    pub async fn wait_ready(&self) {
        let mut changes = self.changes.subscribe();
        while !self.is_ready() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Puts `db` in service for its collection. Requests already running
    /// keep the database they started with.
    pub fn install(&self, db: CollectionDb) -> Result<Swap> {
        let collection = db.collection;
        let slot = self
            .slots
            .get(&collection)
            .ok_or(Error::NotServed { collection })?;
        let generation = db.generation;
        let previous = slot.db.swap(Some(Arc::new(db))).map(|old| old.generation);
        self.changes.send_modify(|n| *n += 1);
        Ok(Swap {
            collection,
            generation,
            previous,
        })
    }
}

/// Settings of a [`Reloader`].
#[derive(Clone, Debug)]
pub struct ReloadConfig {
    /// The store directory (databases live in its `psi/` folder).
    pub store_dir: PathBuf,
    /// Look at the files this often even without file events.
    pub poll_interval: Duration,
    /// Watch the folder for file events (inotify); without it only the
    /// poll and explicit checks notice new databases.
    pub watch: bool,
}

/// Watches a store's database files and swaps new generations into a
/// [`Catalog`]. Stops when dropped.
#[derive(Debug)]
pub struct Reloader {
    requests: mpsc::Sender<Option<oneshot::Sender<()>>>,
    task: JoinHandle<()>,
}

impl Reloader {
    /// Starts watching. The first check (loading every database that is
    /// there) starts at once. Must run inside a tokio runtime.
    pub fn spawn(catalog: Arc<Catalog>, config: ReloadConfig) -> Reloader {
        let (requests, rx) = mpsc::channel(64);
        let events = requests.clone();
        let task = tokio::spawn(run(catalog, config, rx, events));
        Reloader { requests, task }
    }

    /// Looks at the files now and returns when that check is done (loads
    /// and swaps included). Errors only if the reloader stopped.
    pub async fn check_now(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(Some(done))
            .await
            .map_err(|_| Error::Transport("the database reloader stopped".into()))?;
        wait.await
            .map_err(|_| Error::Transport("the database reloader stopped".into()))
    }

    /// Asks for a check without waiting for it.
    pub fn trigger(&self) {
        let _ = self.requests.try_send(None);
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an inotify watch of `dir` that asks for a check on every event.
/// `None` (with a warning) when the platform or the limits refuse: polling
/// still runs.
fn watch_dir(
    dir: &Path,
    requests: mpsc::Sender<Option<oneshot::Sender<()>>>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let handler = move |event: notify::Result<notify::Event>| {
        // Only a file under its final name can be a new database; the
        // temporary file's many writes are ignored.
        let relevant = match &event {
            Ok(e) => e.paths.iter().any(|p| {
                p.extension()
                    .is_some_and(|x| x == psi_db::DB_FILE_EXTENSION)
            }),
            Err(_) => true,
        };
        if relevant {
            // A full queue already holds a pending check.
            let _ = requests.try_send(None);
        }
    };
    let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
        w.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the database folder; polling only");
            None
        }
    }
}

async fn run(
    catalog: Arc<Catalog>,
    config: ReloadConfig,
    mut requests: mpsc::Receiver<Option<oneshot::Sender<()>>>,
    events: mpsc::Sender<Option<oneshot::Sender<()>>>,
) {
    let dir = psi_db::psi_dir(&config.store_dir);
    let mut watcher = None;
    let mut poll = tokio::time::interval(config.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The folder may appear only after the first build.
        if config.watch && watcher.is_none() && dir.is_dir() {
            watcher = watch_dir(&dir, events.clone());
        }
        let mut waiting = Vec::new();
        tokio::select! {
            r = requests.recv() => match r {
                Some(done) => waiting.extend(done),
                None => return,
            },
            _ = poll.tick() => {}
        }
        // Coalesce a burst of events (one rename sends several) into one
        // check.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Ok(done) = requests.try_recv() {
            waiting.extend(done);
        }
        check(&catalog, &config.store_dir).await;
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Loads and swaps in every database file that changed since it was last
/// seen. Collections already served are swapped one at a time, so memory
/// holds at most one collection twice; collections with no database yet
/// (at start-up) load side by side.
async fn check(catalog: &Arc<Catalog>, store_dir: &Path) {
    let (mut first, mut swaps) = (Vec::new(), Vec::new());
    for collection in catalog.collections() {
        let path = psi_db::db_path(store_dir, collection);
        let id = match FileId::of(&path) {
            Ok(Some(id)) => id,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(%collection, error = %e, "cannot look at the database file");
                continue;
            }
        };
        let files = catalog.slots[&collection]
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if files.loaded == Some(id) || files.failed == Some(id) {
            continue;
        }
        drop(files);
        if catalog.get(collection).is_ok() {
            swaps.push((collection, id));
        } else {
            first.push((collection, id));
        }
    }
    // Started together, installed as each finishes in turn.
    let loading: Vec<_> = first
        .into_iter()
        .map(|(c, id)| (c, id, Instant::now(), spawn_load(store_dir, c)))
        .collect();
    for (c, id, started, load) in loading {
        install_loaded(catalog, c, id, started, join_load(load).await);
    }
    for (c, id) in swaps {
        let started = Instant::now();
        let loaded = join_load(spawn_load(store_dir, c)).await;
        install_loaded(catalog, c, id, started, loaded);
    }
}

type Load = tokio::task::JoinHandle<Result<Option<CollectionDb>>>;

/// Loads `collection`'s saved file on a blocking thread.
fn spawn_load(store_dir: &Path, collection: Collection) -> Load {
    let dir = store_dir.to_path_buf();
    tokio::task::spawn_blocking(move || psi_db::load(&dir, collection))
}

async fn join_load(load: Load) -> Result<Option<CollectionDb>> {
    load.await
        .map_err(|e| Error::Transport(format!("database loader failed: {e}")))?
}

/// Puts a loaded database (from the file of identity `id`) in service; a
/// file that failed to load is remembered and skipped until it changes.
fn install_loaded(
    catalog: &Arc<Catalog>,
    collection: Collection,
    id: FileId,
    started: Instant,
    loaded: Result<Option<CollectionDb>>,
) {
    let slot = &catalog.slots[&collection];
    let mut files = slot.files.lock().unwrap_or_else(|p| p.into_inner());
    match loaded {
        Ok(Some(db)) => {
            files.loaded = Some(id);
            files.failed = None;
            files.failure = None;
            drop(files);
            match catalog.install(db) {
                Ok(swap) => {
                    tracing::info!(
                        %collection,
                        generation = swap.generation,
                        previous = ?swap.previous,
                        load_seconds = started.elapsed().as_secs_f64(),
                        "database in service"
                    );
                }
                Err(e) => tracing::error!(%collection, error = %e, "cannot install database"),
            }
        }
        Ok(None) => {}
        Err(e) => {
            files.failed = Some(id);
            files.failure = Some(e.to_string());
            drop(files);
            let serving = catalog.get(collection).ok().map(|d| d.generation);
            tracing::error!(
                %collection,
                error = %e,
                still_serving_generation = ?serving,
                "new database file unusable; keeping the one in service until the file changes"
            );
        }
    }
}
