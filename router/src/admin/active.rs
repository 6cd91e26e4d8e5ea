//! The active mappings and routes, swapped atomically on every activation.
//!
//! Routes hold `Arc<CompiledMapping>`s, so a new mapping version means a new
//! routes table too: both live in one immutable [`ActiveSet`]. Intake calls
//! [`ActiveMappings::load`] once per message and uses that snapshot for the
//! whole message, so every delivery of one message is mapped by one consistent
//! set, even if a swap happens meanwhile. A swap replaces the pointer; readers
//! holding the old `Arc` finish with it (arc-swap style, here with a lock held
//! only for the pointer copy, so no reader ever waits on a compile).

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::mapping::MappingSet;
use crate::routes::Routes;

/// One immutable generation of active mappings and the routes built on them.
#[derive(Debug)]
pub struct ActiveSet {
    /// `mapping_generation` this set was built from (0 before the store was read).
    pub generation: i64,
    /// Each mapping's `version` is its store version (what deliveries record).
    pub mappings: MappingSet,
    pub routes: Routes,
}

/// The swap handle. Cheap to share (`Arc<ActiveMappings>`).
#[derive(Debug)]
pub struct ActiveMappings {
    current: RwLock<Arc<ActiveSet>>,
    changed: watch::Sender<i64>,
}

impl ActiveMappings {
    pub fn new(initial: ActiveSet) -> Self {
        let (changed, _) = watch::channel(initial.generation);
        ActiveMappings {
            current: RwLock::new(Arc::new(initial)),
            changed,
        }
    }

    /// The current set. Keep the `Arc` for the whole message.
    pub fn load(&self) -> Arc<ActiveSet> {
        // A poisoned lock only means a writer panicked after or before the pointer
        // store; the pointer itself is always a complete set.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Installs `next` and returns the previous set.
    pub fn swap(&self, next: ActiveSet) -> Arc<ActiveSet> {
        let generation = next.generation;
        let next = Arc::new(next);
        let old = {
            let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *guard, next)
        };
        self.changed.send_replace(generation);
        metrics::counter!("lienthong_mapping_swaps_total").increment(1);
        old
    }

    /// Notified with the generation after every swap (the console and tests wait on it).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_keep_their_snapshot_across_a_swap() {
        let a = ActiveMappings::new(ActiveSet {
            generation: 1,
            mappings: MappingSet::default(),
            routes: Routes::default(),
        });
        let held = a.load();
        let mut rx = a.subscribe();
        let old = a.swap(ActiveSet {
            generation: 2,
            mappings: MappingSet::default(),
            routes: Routes::default(),
        });
        assert_eq!(held.generation, 1);
        assert_eq!(old.generation, 1);
        assert_eq!(a.load().generation, 2);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 2);
    }
}
