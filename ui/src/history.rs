//! Undo and redo over whole states, for the designer (a pipeline) and the annotator (an item's
//! shapes): record the state before an edit; undo and redo swap the current state.

/// The states before the current one (to undo to) and after it (to redo to).
#[derive(Debug, Clone)]
pub struct History<T> {
    undo: Vec<T>,
    redo: Vec<T>,
    /// How many states are kept to undo to; the oldest go first.
    limit: usize,
}

impl<T> Default for History<T> {
    fn default() -> Self {
        Self::with_limit(usize::MAX)
    }
}

impl<T> History<T> {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            undo: Vec::new(),
            redo: Vec::new(),
            limit,
        }
    }
}

impl<T: Clone> History<T> {
    /// Records `state` as it is before an edit; what was undone can no longer be redone.
    pub fn record(&mut self, state: &T) {
        self.undo.push(state.clone());
        if self.undo.len() > self.limit {
            self.undo.remove(0);
        }
        self.redo.clear();
    }

    /// Forgets the last recorded state: the edit it was recorded for did not happen.
    pub fn forget_last(&mut self) {
        self.undo.pop();
    }

    /// Puts `state` back as it was before the last edit; false when there is none.
    pub fn undo(&mut self, state: &mut T) -> bool {
        match self.undo.pop() {
            Some(previous) => {
                self.redo.push(std::mem::replace(state, previous));
                true
            }
            None => false,
        }
    }

    /// Does again what was last undone; false when nothing was.
    pub fn redo(&mut self, state: &mut T) -> bool {
        match self.redo.pop() {
            Some(next) => {
                self.undo.push(std::mem::replace(state, next));
                true
            }
            None => false,
        }
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_and_redo_swap_states_and_an_edit_ends_redo() {
        let mut history = History::with_limit(2);
        let mut state = 1;
        for next in [2, 3, 4] {
            history.record(&state);
            state = next;
        }
        assert!(history.undo(&mut state) && state == 3);
        assert!(history.undo(&mut state) && state == 2);
        assert!(!history.undo(&mut state), "only two kept");
        assert!(history.redo(&mut state) && state == 3);
        history.record(&state);
        state = 9;
        assert!(!history.can_redo());
        history.forget_last();
        assert!(history.undo(&mut state) && state == 2);
    }
}
