//! Symbolized stacks, each stored once and named by a [`StackId`]; bounded, so a daemon
//! that runs for months keeps a fixed-size table.

use std::collections::HashMap;

/// A stack's number in a [`StackTable`].
pub type StackId = u32;

/// Distinct stacks kept at most; later new stacks all share one overflow entry.
const MAX_STACKS: usize = 200_000;

/// The frame of the entry that stands for every stack beyond [`MAX_STACKS`].
const OVERFLOW_FRAME: &str = "[apiprof: stack table full]";

/// Interned stacks, innermost frame first.
#[derive(Debug, Default)]
pub struct StackTable {
    ids: HashMap<Vec<String>, StackId>,
    frames: Vec<Vec<String>>,
}

impl StackTable {
    /// The id of `frames`, adding them when new.
    pub fn intern(&mut self, frames: &[String]) -> StackId {
        if let Some(id) = self.ids.get(frames) {
            return *id;
        }
        if self.frames.len() >= MAX_STACKS {
            return self.intern_overflow();
        }
        let id = self.frames.len() as StackId;
        self.frames.push(frames.to_vec());
        self.ids.insert(frames.to_vec(), id);
        id
    }

    fn intern_overflow(&mut self) -> StackId {
        let frames = vec![OVERFLOW_FRAME.to_owned()];
        if let Some(id) = self.ids.get(&frames) {
            return *id;
        }
        let id = self.frames.len() as StackId;
        self.frames.push(frames.clone());
        self.ids.insert(frames, id);
        id
    }

    /// The frames of `id`, innermost first; empty for an id it never gave.
    pub fn frames(&self, id: StackId) -> &[String] {
        self.frames.get(id as usize).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_stacks_share_an_id() {
        let mut t = StackTable::default();
        let a = t.intern(&["f".into(), "main".into()]);
        let b = t.intern(&["g".into()]);
        assert_eq!(t.intern(&["f".into(), "main".into()]), a);
        assert_ne!(a, b);
        assert_eq!(t.frames(b), ["g"]);
    }
}
