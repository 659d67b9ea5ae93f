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
    /// A KV cache lands on its decode replica.
    TransferDone {
        /// Where the engine keeps the transfer (and its decode replica). One field only, so
        /// events stay 24 bytes and the heap stays fast.
        slot: u32,
    },
    /// A new replica has loaded the model and starts serving.
    ReplicaReady {
        /// Replica index.
        replica: u32,
    },
    /// The next request of the stream arrives.
    Arrival,
    /// The autoscaler evaluates.
    Autoscale,
    /// Record a time-series sample of every replica.
    Sample,
}

impl EventKind {
    /// Class rank at equal times: iterations finish first (so the router sees their effects),
    /// then KV transfers land and replicas become ready (so arrivals can use them), then the
    /// autoscaler acts (a schedule window that starts at `t` serves the requests that arrive
    /// at `t`, the first replicas of an empty fleet included), then arrivals, then samples
    /// observe the result.
    fn rank(self) -> (u8, u32) {
        match self {
            EventKind::IterationEnd { replica } => (0, replica),
            // Slots are taken in event order, so ties between transfers stay deterministic.
            EventKind::TransferDone { slot } => (1, slot),
            EventKind::ReplicaReady { replica } => (2, replica),
            EventKind::Autoscale => (3, 0),
            EventKind::Arrival => (4, 0),
            EventKind::Sample => (5, 0),
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
        // Reversed: BinaryHeap is a max-heap and we want the earliest event on top. The rank
        // is only worked out for events at the same time.
        other
            .time
            .cmp(&self.time)
            .then_with(|| other.kind.rank().cmp(&self.kind.rank()))
            .then_with(|| other.seq.cmp(&self.seq))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_break_by_class_then_entity_and_events_stay_small() {
        // The heap moves events around on every push and pop.
        assert_eq!(std::mem::size_of::<Event>(), 24);
        let mut queue = EventQueue::default();
        for kind in [
            EventKind::Sample,
            EventKind::Autoscale,
            EventKind::Arrival,
            EventKind::ReplicaReady { replica: 1 },
            EventKind::TransferDone { slot: 0 },
            EventKind::IterationEnd { replica: 2 },
            EventKind::IterationEnd { replica: 0 },
        ] {
            queue.push(5, kind);
        }
        queue.push(4, EventKind::Sample);
        let order: Vec<EventKind> = std::iter::from_fn(|| queue.pop().map(|e| e.kind)).collect();
        assert_eq!(
            order,
            [
                EventKind::Sample,
                EventKind::IterationEnd { replica: 0 },
                EventKind::IterationEnd { replica: 2 },
                EventKind::TransferDone { slot: 0 },
                EventKind::ReplicaReady { replica: 1 },
                EventKind::Autoscale,
                EventKind::Arrival,
                EventKind::Sample,
            ]
        );
    }
}
