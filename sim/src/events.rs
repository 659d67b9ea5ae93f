//! The event queue: a min-heap ordered by time, then event class, then entity, then insertion
//! sequence. Ties between events of different replicas never depend on the order in which
//! they were pushed, so skipping pushes (the decode fast path) cannot reorder anything.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::time::Nanos;

/// What happens at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A replica finishes its running iteration.
    IterationEnd {
        /// Replica index.
        replica: u32,
    },
    /// The next request of the stream arrives.
    Arrival,
    /// Record a time-series sample of every replica.
    Sample,
}

impl EventKind {
    /// Class rank at equal times: iterations finish first (so the router sees their effects),
    /// then arrivals, then samples.
    fn rank(self) -> (u8, u32) {
        match self {
            EventKind::IterationEnd { replica } => (0, replica),
            EventKind::Arrival => (1, 0),
            EventKind::Sample => (2, 0),
        }
    }
}

/// A scheduled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// When it happens.
    pub time: Nanos,
    /// What happens.
    pub kind: EventKind,
    /// Insertion sequence number (last tie-break).
    pub seq: u64,
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest event on top.
        (other.time, other.kind.rank(), other.seq).cmp(&(self.time, self.kind.rank(), self.seq))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pending events, earliest first.
#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Event>,
    next_seq: u64,
    now: Nanos,
}

impl EventQueue {
    /// Schedules `kind` at `time` (never before the current time).
    pub fn push(&mut self, time: Nanos, kind: EventKind) {
        debug_assert!(time >= self.now, "event scheduled in the past");
        let time = time.max(self.now);
        self.heap.push(Event {
            time,
            kind,
            seq: self.next_seq,
        });
        self.next_seq += 1;
    }

    /// Removes and returns the earliest event, advancing the current time to it.
    pub fn pop(&mut self) -> Option<Event> {
        let event = self.heap.pop()?;
        assert!(event.time >= self.now, "simulated time went backwards");
        self.now = event.time;
        Some(event)
    }

    /// The time of the earliest pending event.
    pub fn peek_time(&self) -> Option<Nanos> {
        self.heap.peek().map(|e| e.time)
    }

    /// The time of the last popped event.
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Events pending.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
