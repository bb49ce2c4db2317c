//! How a restart-catchup reconcile finds a parent's children: as the StatefulSet
//! controller's ListRevisions did before the fix — selector matching over every child in
//! the informer cache, twice per sync (revisions, then orphans to adopt) — or, fixed,
//! from an index by parent kept up to date by the children watcher's events.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    core::{Expression, Selector, SelectorExt},
    runtime::{
        reflector::{self, Store},
        watcher::{self, Event},
        WatchStreamExt,
    },
    Api, ResourceExt,
};
use tokio::{sync::watch, task::JoinHandle};

/// The label naming a child's parent.
pub const PARENT_LABEL: &str = "parent";

type Index = Arc<Mutex<HashMap<String, BTreeSet<String>>>>;

enum Lookup {
    Scan(Store<ConfigMap>),
    Index(Index),
}

/// The children cache; its watcher task stops when this is dropped.
pub struct Children {
    lookup: Lookup,
    ready: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Children {
    /// Starts watching the children matching `selector`, cached whole (`indexed` false)
    /// or indexed by parent.
    pub fn start(api: Api<ConfigMap>, selector: &str, indexed: bool) -> Self {
        let config = watcher::Config::default().labels(selector);
        let (ready_tx, ready) = watch::channel(false);
        let (lookup, task) = if indexed {
            let index = Index::default();
            let writer = index.clone();
            let events = watcher::watcher(api, config).default_backoff();
            let task = drain(events, ready_tx, move |event| {
                let mut index = writer.lock().unwrap_or_else(|e| e.into_inner());
                match event {
                    Event::InitApply(child) | Event::Apply(child) => {
                        if let Some(parent) = child.labels().get(PARENT_LABEL) {
                            index
                                .entry(parent.clone())
                                .or_default()
                                .insert(child.name_any());
                        }
                    }
                    Event::Delete(child) => {
                        for names in index.values_mut() {
                            names.remove(&child.name_any());
                        }
                    }
                    Event::Init | Event::InitDone => {}
                }
            });
            (Lookup::Index(index), task)
        } else {
            let (store, writer) = reflector::store();
            let events =
                reflector::reflector(writer, watcher::watcher(api, config)).default_backoff();
            (Lookup::Scan(store), drain(events, ready_tx, |_| {}))
        };
        Self {
            lookup,
            ready,
            task,
        }
    }

    /// Waits until the initial list is cached.
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        // The sender lives in the task, which lives as long as self.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// How many children `parent` has, and how many of them are orphans (no owner
    /// reference) to adopt; the index does not track orphans.
    pub fn count(&self, parent: &str) -> (usize, Option<usize>) {
        match &self.lookup {
            Lookup::Scan(store) => {
                let selector: Selector =
                    Expression::Equal(PARENT_LABEL.into(), parent.into()).into();
                let revisions = store.state_filter_selector(&selector);
                let orphans = store.state_filter(|child| {
                    selector.matches(child.labels()) && child.owner_references().is_empty()
                });
                (revisions.len(), Some(orphans.len()))
            }
            Lookup::Index(index) => (
                index
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(parent)
                    .map_or(0, BTreeSet::len),
                None,
            ),
        }
    }
}

/// Spawns a task passing every watcher event to `each`, and flagging `ready` once the
/// initial list is in.
fn drain<S>(
    events: S,
    ready: watch::Sender<bool>,
    mut each: impl FnMut(&Event<ConfigMap>) + Send + 'static,
) -> JoinHandle<()>
where
    S: Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(events.for_each(move |event| {
        match event {
            Ok(event) => {
                if matches!(event, Event::InitDone) {
                    ready.send_replace(true);
                }
                each(&event);
            }
            Err(e) => tracing::warn!(error = %e, "children watcher"),
        }
        futures::future::ready(())
    }))
}

impl Drop for Children {
    fn drop(&mut self) {
        self.task.abort();
    }
}
