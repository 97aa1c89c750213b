//! A crash of the orchestrator between two journal records, and the application's redirect.
//!
//! [`CrashingJournal`] wraps any [`Journal`] and "crashes" after a given number of records: the
//! next append fails, so the session stops exactly there, as a process killed at that point
//! would. The records written so far stay in the inner journal; a new session resumes from it.
//!
//! [`WorkloadRedirect`] is the [`RedirectHook`] of the simulated application: when the session
//! says the other side is now primary, the workload's connection moves there.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use crate::journal::{JournalError, JournalRecord};
use crate::ports::Journal;
use crate::redirect::{HookError, RedirectHook, RedirectTarget};

use super::Sim;

/// Where exactly the crash happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After record `n` is durable and its effects ran: the append of the next record fails.
    AfterRecord(u64),
    /// Record `n` is durable but the process dies before acting on it: its append reports a
    /// failure after writing, so its effects never run in this process.
    BeforeEffectsOf(u64),
}

/// A journal that crashes the session at a chosen record.
#[derive(Debug)]
pub struct CrashingJournal<J> {
    inner: J,
    point: CrashPoint,
    crashed: Arc<AtomicBool>,
}

impl<J: Journal> CrashingJournal<J> {
    /// Wraps `inner`; `point` counts records including the `Created` record (seq 0 is record 1).
    pub fn new(inner: J, point: CrashPoint) -> Self {
        CrashingJournal {
            inner,
            point,
            crashed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that turns true when the crash happened (shared, so it can be read after the
    /// session took the journal).
    pub fn crashed_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.crashed)
    }

    /// The wrapped journal.
    pub fn into_inner(self) -> J {
        self.inner
    }

    fn crash(&self, record: &JournalRecord) -> JournalError {
        self.crashed.store(true, Ordering::SeqCst);
        JournalError::Io {
            path: self
                .inner
                .location()
                .unwrap_or_else(|| PathBuf::from("<memory>")),
            source: std::io::Error::other(format!(
                "simulated crash of the orchestrator at journal record {}",
                record.seq
            )),
        }
    }
}

impl<J: Journal> Journal for CrashingJournal<J> {
    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        if self.crashed.load(Ordering::SeqCst) {
            return Err(self.crash(record));
        }
        let number = record.seq + 1;
        match self.point {
            CrashPoint::AfterRecord(n) if number > n => Err(self.crash(record)),
            CrashPoint::BeforeEffectsOf(n) if number == n => {
                self.inner.append(record)?;
                Err(self.crash(record))
            }
            _ => self.inner.append(record),
        }
    }

    fn records(&self) -> Result<Vec<JournalRecord>, JournalError> {
        self.inner.records()
    }

    fn location(&self) -> Option<PathBuf> {
        self.inner.location()
    }
}

/// The simulated application's connection: a redirect moves the workload to the new primary.
#[derive(Debug, Clone)]
pub struct WorkloadRedirect {
    sim: Sim,
}

impl WorkloadRedirect {
    /// The redirect hook of `sim`'s workload.
    pub fn new(sim: Sim) -> Self {
        WorkloadRedirect { sim }
    }
}

#[async_trait]
impl RedirectHook for WorkloadRedirect {
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), HookError> {
        self.sim.redirect_workload(target.side);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryJournal;
    use crate::journal::JournalEntry;
    use crate::lifecycle::{Command, Input};
    use crate::time::Timestamp;

    fn record(seq: u64) -> JournalRecord {
        JournalRecord::new(
            seq,
            Timestamp::EPOCH,
            JournalEntry::Input {
                input: Input::Command(Command::Start),
            },
        )
    }

    fn created() -> JournalRecord {
        let lab = super::super::Lab::tailspin(1).unwrap();
        JournalRecord::new(
            0,
            Timestamp::EPOCH,
            JournalEntry::Created {
                spec: Box::new(lab.spec),
                world: None,
            },
        )
    }

    #[test]
    fn after_record_n_the_next_append_fails_and_nothing_more_is_written() {
        let inner = MemoryJournal::new();
        let mut j = CrashingJournal::new(inner.clone(), CrashPoint::AfterRecord(2));
        let flag = j.crashed_flag();
        j.append(&created()).unwrap();
        j.append(&record(1)).unwrap();
        assert!(!flag.load(Ordering::SeqCst));
        let e = j.append(&record(2)).unwrap_err();
        assert!(e.to_string().contains("simulated crash"), "{e}");
        assert!(flag.load(Ordering::SeqCst));
        assert!(j.append(&record(2)).is_err());
        assert_eq!(inner.snapshot().len(), 2);
    }

    #[test]
    fn before_effects_the_record_is_written_but_reported_failed() {
        let inner = MemoryJournal::new();
        let mut j = CrashingJournal::new(inner.clone(), CrashPoint::BeforeEffectsOf(2));
        j.append(&created()).unwrap();
        assert!(j.append(&record(1)).is_err());
        assert_eq!(inner.snapshot().len(), 2);
    }
}
