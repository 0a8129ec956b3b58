//! ADD's undo list: each step that succeeds pushes its inverse; on failure the
//! list runs in reverse and its own failures are attached to the returned error
//! (the Rust form of the Go bridge plugin's `success` flag with a deferred
//! `ipam.ExecDel`, docs/prior-art.md#errors).

use crate::error::PluginError;

type Step<'a> = Box<dyn FnOnce() -> Result<(), PluginError> + 'a>;

#[derive(Default)]
pub struct Undo<'a> {
    steps: Vec<(&'static str, Step<'a>)>,
}

impl<'a> Undo<'a> {
    pub fn new() -> Self {
        Undo { steps: Vec::new() }
    }

    /// Registers the inverse of a step that just succeeded.
    pub fn push(&mut self, what: &'static str, f: impl FnOnce() -> Result<(), PluginError> + 'a) {
        self.steps.push((what, Box::new(f)));
    }

    /// ADD succeeded: forget every inverse.
    pub fn commit(mut self) {
        self.steps.clear();
    }

    /// ADD failed with `cause`: undo in reverse order and return the error to report.
    pub fn rollback(mut self, cause: PluginError) -> PluginError {
        let mut cleanup = Vec::new();
        while let Some((what, f)) = self.steps.pop() {
            if let Err(e) = f() {
                cleanup.push(format!("{what}: {e}"));
            }
        }
        if cleanup.is_empty() {
            cause
        } else {
            PluginError::Rollback {
                cause: Box::new(cause),
                cleanup,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn rollback_runs_in_reverse_and_keeps_the_cause() {
        let log = RefCell::new(Vec::new());
        let mut u = Undo::new();
        u.push("a", || {
            log.borrow_mut().push("a");
            Ok(())
        });
        u.push("b", || {
            log.borrow_mut().push("b");
            Ok(())
        });
        let e = u.rollback(PluginError::Check(vec!["x".into()]));
        assert!(matches!(e, PluginError::Check(_)));
        assert_eq!(*log.borrow(), vec!["b", "a"]);
    }

    #[test]
    fn cleanup_failures_are_attached() {
        let mut u = Undo::new();
        u.push("release address", || {
            Err(PluginError::Check(vec!["boom".into()]))
        });
        let e = u.rollback(PluginError::Check(vec!["cause".into()]));
        match e {
            PluginError::Rollback { cause, cleanup } => {
                assert!(matches!(*cause, PluginError::Check(_)));
                assert_eq!(cleanup.len(), 1);
                assert!(cleanup[0].starts_with("release address"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn commit_runs_nothing() {
        let ran = RefCell::new(false);
        let mut u = Undo::new();
        u.push("x", || {
            *ran.borrow_mut() = true;
            Ok(())
        });
        u.commit();
        assert!(!*ran.borrow());
    }
}
