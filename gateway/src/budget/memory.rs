//! Budget counts in this process's memory: the store of a single replica, and what a
//! `failureMode: open` budget falls back to while Redis is unreachable. One short lock per
//! check, never held across an await.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use super::{Charge, Counts, Slot};

/// Most windows kept at once; past it expired ones are dropped, and if none has expired new
/// keys (teams from a header no one checks, when `spec.auth` is off) share one overflow count.
const MAX_KEYS: usize = 10_000;

/// Counts by key.
#[derive(Default)]
pub struct MemoryStore {
    counts: Mutex<HashMap<String, (Counts, u64)>>,
}

impl MemoryStore {
    /// Reserves `charge` on every slot unless one is spent; `Err(i)`: slot `i` is.
    pub fn reserve(&self, slots: &[Slot], charge: Charge, now: u64) -> Result<(), usize> {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, (_, expires)| *expires > now);
        }
        for (i, slot) in slots.iter().enumerate() {
            let key = effective_key(&map, slot);
            let counts = map
                .get(&*key)
                .filter(|(_, expires)| *expires > now)
                .map_or(Counts::default(), |(c, _)| *c);
            if slot.limits.spent(&counts) {
                return Err(i);
            }
        }
        for slot in slots {
            let key = effective_key(&map, slot).into_owned();
            let entry = map.entry(key).or_insert((Counts::default(), slot.expires));
            if entry.1 <= now {
                *entry = (Counts::default(), slot.expires);
            }
            entry.0.reserved = entry.0.reserved.plus(charge);
        }
        Ok(())
    }

    /// Replaces the reservation `reserved` by what was used.
    pub fn settle(&self, slots: &[Slot], reserved: Charge, used: Charge) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for slot in slots {
            let key = effective_key(&map, slot).into_owned();
            if let Some((counts, _)) = map.get_mut(&key) {
                counts.reserved = counts.reserved.minus(reserved);
                counts.used = counts.used.plus(used);
            }
        }
    }

    /// The counts of every live key starting with `prefix`.
    pub fn read(&self, prefix: &str, now: u64) -> Vec<(String, Counts)> {
        let map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter(|(k, (_, expires))| *expires > now && k.starts_with(prefix))
            .map(|(k, (c, _))| (k.clone(), *c))
            .collect()
    }
}

/// The slot's key, or when the map is full and the key new, its budget's overflow key.
fn effective_key<'k>(map: &HashMap<String, (Counts, u64)>, slot: &'k Slot) -> Cow<'k, str> {
    if map.len() >= MAX_KEYS && !map.contains_key(&slot.key) {
        Cow::Owned(slot.overflow_key())
    } else {
        Cow::Borrowed(&slot.key)
    }
}
