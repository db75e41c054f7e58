//! In-process notices that the store's contents moved, for readers that keep derived
//! state in memory (the engine runtime, the server's report cache). One counter per kind
//! of change, bumped only after the commit, so a reader woken by it sees the new rows. Other processes on the
//! same database are not told (a PostgreSQL `LISTEN` would be the way, when needed).

use std::sync::Arc;

use tokio::sync::watch;

use cairn_core::tracking::TrackingMessage;

use crate::Appended;

/// The senders behind [`crate::Store::data_changes`], [`crate::Store::event_appends`]
/// and [`crate::Store::report_inputs`], shared by every clone of a store.
#[derive(Debug)]
pub(crate) struct ChangeSignals {
    data: watch::Sender<u64>,
    events: watch::Sender<u64>,
    reports: watch::Sender<u64>,
}

/// What a committed transaction changed, as far as the signals are concerned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    /// New events were stored.
    pub events: bool,
    /// Accounts, contacts, subscription lines or identity links may have changed.
    pub data: bool,
}

impl Committed {
    /// What appending these messages with these outcomes committed: new events, and
    /// data when a new identify, group or alias call was applied.
    pub(crate) fn of_appends(messages: &[TrackingMessage], outcomes: &[Appended]) -> Committed {
        let mut out = Committed::default();
        for (m, a) in messages.iter().zip(outcomes) {
            if *a == Appended::New {
                out.events = true;
                out.data |= !crate::sql_both_dialects::event_log::is_plain_event(m);
            }
        }
        out
    }

    /// Both together.
    pub(crate) fn and(self, other: Committed) -> Committed {
        Committed { events: self.events || other.events, data: self.data || other.data }
    }
}

impl ChangeSignals {
    pub(crate) fn new() -> Arc<ChangeSignals> {
        Arc::new(ChangeSignals {
            data: watch::Sender::new(0),
            events: watch::Sender::new(0),
            reports: watch::Sender::new(0),
        })
    }

    /// Call after the commit that made these changes.
    pub(crate) fn after_commit(&self, committed: Committed) {
        // `send_modify` updates the value even when nobody listens yet.
        if committed.data {
            self.data.send_modify(|n| *n += 1);
        }
        if committed.events {
            self.events.send_modify(|n| *n += 1);
        }
        if committed.data || committed.events {
            self.reports.send_modify(|n| *n += 1);
        }
    }

    /// Call after a write a report reads (transitions, health, the send ledger, tasks, …)
    /// that moves neither events nor account data.
    pub(crate) fn after_report_input(&self) {
        self.reports.send_modify(|n| *n += 1);
    }

    pub(crate) fn data_changes(&self) -> watch::Receiver<u64> {
        self.data.subscribe()
    }

    pub(crate) fn event_appends(&self) -> watch::Receiver<u64> {
        self.events.subscribe()
    }

    pub(crate) fn report_inputs(&self) -> watch::Receiver<u64> {
        self.reports.subscribe()
    }
}
