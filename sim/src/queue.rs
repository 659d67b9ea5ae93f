//! Waiting-queue order at a replica. A trait, so later policies (shortest-job-first, deadline
//! order, priorities) plug in beside first-come-first-served.

use std::collections::VecDeque;

use crate::replica::Seq;

/// The order in which a replica admits waiting requests.
pub trait QueuePolicy: Send {
    /// Short name for outputs.
    fn name(&self) -> &'static str;
    /// Adds a newly routed request.
    fn push(&mut self, seq: Seq);
    /// Returns a preempted request, which goes ahead of new ones.
    fn push_front(&mut self, seq: Seq);
    /// The request that would be admitted next.
    fn peek(&self) -> Option<&Seq>;
    /// Removes the request that would be admitted next.
    fn pop(&mut self) -> Option<Seq>;
    /// Requests waiting.
    fn len(&self) -> usize;
    /// Whether nothing waits.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// First come, first served; preempted requests return to the head.
#[derive(Debug, Default)]
pub struct Fcfs {
    queue: VecDeque<Seq>,
}

impl QueuePolicy for Fcfs {
    fn name(&self) -> &'static str {
        "fcfs"
    }

    fn push(&mut self, seq: Seq) {
        self.queue.push_back(seq);
    }

    fn push_front(&mut self, seq: Seq) {
        self.queue.push_front(seq);
    }

    fn peek(&self) -> Option<&Seq> {
        self.queue.front()
    }

    fn pop(&mut self) -> Option<Seq> {
        self.queue.pop_front()
    }

    fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Which queue policy replicas use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum QueueKind {
    /// First come, first served.
    #[default]
    Fcfs,
}

impl QueueKind {
    /// Parses a policy name.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "fcfs" => Some(Self::Fcfs),
            _ => None,
        }
    }

    /// Builds a fresh queue.
    pub fn build(self) -> Box<dyn QueuePolicy> {
        match self {
            Self::Fcfs => Box::new(Fcfs::default()),
        }
    }
}
