//! The request record every reader and generator produces and the simulator consumes.

use serde::{Deserialize, Serialize};

/// Latest arrival a stream may hold, seconds after its start (about 31.7 years): the simulator
/// counts time in nanoseconds in 64 bits, which run out at about 584 years, and a later arrival
/// is a unit mistake (milliseconds read as seconds, a rate rescaled to nearly nothing).
pub const MAX_ARRIVAL_S: f64 = 1e9;

/// One inference request: when it arrives and how many tokens go in and come out.
///
/// Arrival times are seconds from the start of the stream (readers rebase to 0). Token counts
/// are in the model's tokenizer units as the source reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Position in the stream, starting at 0; unique within a stream.
    pub id: u64,
    /// Arrival time in seconds since the start of the stream.
    pub arrival_s: f64,
    /// Prompt length in tokens.
    pub input_tokens: u32,
    /// Number of tokens the request generates (including the first).
    pub output_tokens: u32,
    /// Conversation or session this request belongs to, when the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// SLO class or priority tier (0 is the default class); policies may use it.
    #[serde(default)]
    pub slo_class: u16,
    /// Hashes of the prompt's prefix blocks, for traces that carry them (Mooncake: 512 tokens each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_hashes: Vec<u64>,
}

impl Request {
    /// A request with only the required fields set.
    pub fn new(id: u64, arrival_s: f64, input_tokens: u32, output_tokens: u32) -> Self {
        Self {
            id,
            arrival_s,
            input_tokens,
            output_tokens,
            session_id: None,
            slo_class: 0,
            prefix_hashes: Vec::new(),
        }
    }

    /// Prompt plus generated tokens: the context length at completion.
    pub fn total_tokens(&self) -> u64 {
        u64::from(self.input_tokens) + u64::from(self.output_tokens)
    }
}
