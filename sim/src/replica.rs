//! One replica: a vLLM-like serving engine on one instance type. It keeps a waiting queue, a
//! running batch and a paged KV cache, plans each iteration, and applies its effects when the
//! iteration ends.

use std::collections::VecDeque;
use std::sync::Arc;

use gpu_models::{BLOCK_TOKENS, BatchSummary, Instance};
use workloads::Request;

use crate::cluster::ReplicaRole;
use crate::config::{BatchingMode, EngineConfig, PreemptionMode};
use crate::queue::{QueuePolicy, StaticBatch};
use crate::time::Nanos;

/// A request inside a replica, with its progress.
#[derive(Debug, Clone)]
pub struct Seq {
    /// The request.
    pub request: Request,
    /// Arrival time.
    pub arrival_ns: Nanos,
    /// Tokens to prefill before the next token: the prompt, plus tokens generated before a
    /// recompute preemption.
    prompt_len: u32,
    /// Tokens whose KV is in the cache.
    computed: u32,
    /// Output tokens produced so far.
    pub generated: u32,
    /// KV blocks held on the GPU.
    blocks: u32,
    /// KV blocks held in host memory while swapped out.
    swapped_blocks: u32,
    /// Tokens scheduled in the running iteration (0: not in it).
    scheduled: u32,
    /// Whether this sequence is padding in a static batch (finished, still occupying it).
    padding: bool,
    /// When it was first put in a batch.
    pub first_scheduled_ns: Option<Nanos>,
    /// When its first token was produced.
    pub first_token_ns: Option<Nanos>,
    /// When its latest token was produced.
    pub last_token_ns: Nanos,
    /// Longest gap between consecutive tokens.
    pub max_itl_ns: Nanos,
    /// Times it was preempted.
    pub preemptions: u32,
    /// Output length the predictor gave when it arrived (what policies may see).
    pub predicted_output: u32,
    /// Time spent in iterations that scheduled it (MLFQ demotion).
    service_ns: Nanos,
}

impl Seq {
    /// A sequence for a request that arrived at `arrival_ns`, predicted exactly (oracle).
    pub fn new(request: Request, arrival_ns: Nanos) -> Self {
        let predicted = request.output_tokens.max(1);
        Self::with_prediction(request, arrival_ns, predicted)
    }

    /// A sequence whose output length was predicted as `predicted_output` on arrival.
    pub fn with_prediction(request: Request, arrival_ns: Nanos, predicted_output: u32) -> Self {
        let prompt_len = request.input_tokens.max(1);
        Self {
            request,
            arrival_ns,
            prompt_len,
            computed: 0,
            generated: 0,
            blocks: 0,
            swapped_blocks: 0,
            scheduled: 0,
            padding: false,
            first_scheduled_ns: None,
            first_token_ns: None,
            last_token_ns: 0,
            max_itl_ns: 0,
            preemptions: 0,
            predicted_output: predicted_output.max(1),
            service_ns: 0,
        }
    }

    /// Time spent in iterations that scheduled it.
    pub fn service_ns(&self) -> Nanos {
        self.service_ns
    }

    /// Prompt tokens (plus recomputed output tokens) still to prefill before its next token.
    pub fn remaining_prefill_tokens(&self) -> u32 {
        self.remaining_prefill()
    }

    /// Tokens whose KV is in the cache (what a KV transfer moves).
    pub fn kv_tokens(&self) -> u32 {
        self.computed
    }

    /// KV blocks it holds on the GPU.
    pub fn kv_blocks_held(&self) -> u32 {
        self.blocks
    }

    /// Counts `ns` more of service.
    pub(crate) fn add_service_ns(&mut self, ns: Nanos) {
        self.service_ns += ns;
    }

    fn output_target(&self) -> u32 {
        self.request.output_tokens.max(1)
    }

    fn in_decode(&self) -> bool {
        self.computed >= self.prompt_len
    }

    /// Prompt tokens not yet computed.
    fn remaining_prefill(&self) -> u32 {
        self.prompt_len.saturating_sub(self.computed)
    }
}

/// Tokens a request may hold in the KV cache: its prompt and output, at least one. The cache
/// never holds more (the last generated token is not stored, which covers the token an empty
/// prompt or output still costs). Admission checks this and static batching reserves exactly
/// this, so a request admitted to a replica always fits an empty one.
pub fn footprint_tokens(request: &Request) -> u64 {
    footprint(request.input_tokens, request.output_tokens)
}

/// [`footprint_tokens`] of a request with `input` prompt and `output` output tokens.
pub fn footprint(input: u32, output: u32) -> u64 {
    (u64::from(input) + u64::from(output)).max(1)
}

/// Blocks needed to hold `tokens` tokens.
#[inline]
fn blocks_for(tokens: u32) -> u32 {
    tokens.div_ceil(BLOCK_TOKENS)
}

/// A prefilled request on its way from a prefill replica to a decode replica.
#[derive(Debug, Clone)]
pub struct KvTransfer {
    /// The request, its prompt in the cache and its first token produced.
    pub seq: Seq,
    /// The prefill replica that holds its KV blocks until the transfer lands.
    pub source: u32,
    /// Blocks held there.
    pub source_blocks: u32,
    /// When its prefill finished.
    pub prefilled_ns: Nanos,
}

/// Longest request (prompt + output tokens) an instance can ever serve under `config`.
pub fn max_request_tokens(instance: &Instance, config: &EngineConfig) -> u64 {
    let watermark = watermark_blocks(config, instance.kv_blocks);
    request_limit(
        instance.kv_blocks,
        watermark,
        instance.max_model_len,
        config.token_budget(instance.max_model_len),
        config.batching,
    )
}

fn watermark_blocks(config: &EngineConfig, kv_total: u64) -> u64 {
    (config.watermark * kv_total as f64).ceil() as u64
}

fn request_limit(
    kv_total: u64,
    watermark_blocks: u64,
    max_model_len: u32,
    token_budget: u32,
    batching: BatchingMode,
) -> u64 {
    let kv = (kv_total.saturating_sub(watermark_blocks)) * u64::from(BLOCK_TOKENS);
    let mut limit = kv.min(u64::from(max_model_len));
    if batching != BatchingMode::Chunked {
        // Whole prompts (and recomputed prompt + output) go through one iteration.
        limit = limit.min(u64::from(token_budget));
    }
    limit
}

/// A request that left the replica in the iteration that just ended.
#[derive(Debug)]
pub struct Finished {
    /// The sequence with its timestamps.
    pub seq: Seq,
    /// When its last token was produced.
    pub completion_ns: Nanos,
}

/// What a router may observe about a replica at the moment it routes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaStatus {
    /// Replica index in the cluster.
    pub index: u32,
    /// Index of its instance type in the cluster.
    pub type_index: u32,
    /// Requests waiting for admission (including swapped-out ones).
    pub waiting: u32,
    /// Requests in the running batch.
    pub running: u32,
    /// Prompt tokens of the waiting requests.
    pub queued_prompt_tokens: u64,
    /// KV blocks in use.
    pub kv_blocks_used: u64,
    /// KV blocks in total.
    pub kv_blocks_total: u64,
    /// Longest request (prompt + output tokens) this replica can ever hold.
    pub max_request_tokens: u64,
}

impl ReplicaStatus {
    /// Requests routed here and not finished.
    pub fn outstanding(&self) -> u32 {
        self.waiting + self.running
    }

    /// Tokens of load: queued prompt tokens plus tokens held in the KV cache.
    pub fn load_tokens(&self) -> u64 {
        self.queued_prompt_tokens + self.kv_blocks_used * u64::from(BLOCK_TOKENS)
    }

    /// Free KV blocks.
    pub fn kv_blocks_free(&self) -> u64 {
        self.kv_blocks_total - self.kv_blocks_used
    }
}

/// Integer counters of one replica (exact, so summing order never matters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaCounters {
    /// Iterations run.
    pub iterations: u64,
    /// Nanoseconds spent in iterations.
    pub busy_ns: u64,
    /// ∫ KV blocks used dt, block-nanoseconds.
    pub kv_block_ns: u128,
    /// Preemptions.
    pub preemptions: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests routed here.
    pub routed: u64,
    /// Prompt tokens computed (including recomputation).
    pub prefill_tokens: u64,
    /// Output tokens produced.
    pub output_tokens: u64,
    /// Peak KV blocks in use.
    pub peak_kv_blocks: u64,
    /// Iterations that ran prefill tokens.
    pub prefill_iterations: u64,
    /// Nanoseconds in prefill-heavy iterations (more prompt tokens than decode tokens).
    pub prefill_heavy_ns: u64,
    /// Nanoseconds in the other (decode-heavy or transfer-only) iterations.
    pub decode_heavy_ns: u64,
    /// Preemptions a queue policy asked for (SRPT, MLFQ), included in `preemptions`.
    pub policy_preemptions: u64,
}

/// The iteration a replica is running.
#[derive(Debug, Clone, Copy, Default)]
struct Iteration {
    start_ns: Nanos,
    end_ns: Nanos,
    /// Whether some request produces its last token in it.
    completes_any: bool,
    /// Whether it only decodes (no prefill chunks, no swaps, no preemptions).
    pure_decode: bool,
    /// Whether prompt tokens outnumber decode tokens (the GPU is compute-bound).
    prefill_heavy: bool,
}

/// A serving engine on one instance type.
pub struct Replica {
    /// Index in the cluster.
    pub index: u32,
    /// Index of the instance type in the cluster.
    pub type_index: u32,
    /// The model on its GPUs.
    pub instance: Arc<Instance>,
    config: EngineConfig,
    token_budget: u32,
    watermark_blocks: u64,
    kv_total: u64,
    kv_used: u64,
    /// Bytes of one KV block per GPU (for swap transfers).
    block_bytes_per_gpu: f64,
    waiting: Box<dyn QueuePolicy>,
    waiting_tokens: u64,
    running: Vec<Seq>,
    swapped: VecDeque<Seq>,
    iteration: Option<Iteration>,
    kv_changed_ns: Nanos,
    /// Counters for metrics.
    pub counters: ReplicaCounters,
    role: ReplicaRole,
    /// Prefill role: requests whose prefill finished in the last iteration, for the engine
    /// to send on.
    prefilled: Vec<Seq>,
    /// Prefill role: KV blocks of prefilled requests whose cache has not left yet.
    held_blocks: u64,
    /// Decode role: prefilled requests waiting for KV blocks here, in arrival order.
    transfers: VecDeque<KvTransfer>,
    /// KV tokens of the waiting transfers.
    transfer_tokens: u64,
    /// Decode role: transfers with blocks reserved here, still on the link.
    incoming: u32,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("index", &self.index)
            .field("instance", &self.instance.name())
            .field("waiting", &self.waiting.len())
            .field("running", &self.running.len())
            .field("kv_used", &self.kv_used)
            .finish()
    }
}

impl Replica {
    /// An idle replica with an empty cache.
    pub fn new(
        index: u32,
        type_index: u32,
        instance: Arc<Instance>,
        config: &EngineConfig,
        queue: Box<dyn QueuePolicy>,
    ) -> Self {
        let kv_total = instance.kv_blocks;
        let watermark_blocks = watermark_blocks(config, kv_total);
        let token_budget = config.token_budget(instance.max_model_len);
        let block_bytes_per_gpu =
            instance.model.kv_bytes_per_token() * f64::from(BLOCK_TOKENS) / f64::from(instance.tp);
        Self {
            index,
            type_index,
            instance,
            config: config.clone(),
            token_budget,
            watermark_blocks,
            kv_total,
            kv_used: 0,
            block_bytes_per_gpu,
            waiting: queue,
            waiting_tokens: 0,
            running: Vec::new(),
            swapped: VecDeque::new(),
            iteration: None,
            kv_changed_ns: 0,
            counters: ReplicaCounters::default(),
            role: ReplicaRole::Colocated,
            prefilled: Vec::new(),
            held_blocks: 0,
            transfers: VecDeque::new(),
            transfer_tokens: 0,
            incoming: 0,
        }
    }

    /// The same replica in `role`.
    pub fn with_role(mut self, role: ReplicaRole) -> Self {
        self.role = role;
        self
    }

    /// What the replica does.
    pub fn role(&self) -> ReplicaRole {
        self.role
    }

    /// Longest request (prompt + output) this replica can ever serve.
    pub fn max_request_tokens(&self) -> u64 {
        request_limit(
            self.kv_total,
            self.watermark_blocks,
            self.instance.max_model_len,
            self.token_budget,
            self.config.batching,
        )
    }

    /// What a router sees. Transfers waiting for blocks count as waiting (their KV tokens as
    /// queued tokens), transfers on the link as running.
    pub fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            index: self.index,
            type_index: self.type_index,
            waiting: (self.waiting.len() + self.swapped.len() + self.transfers.len()) as u32,
            running: self.running.len() as u32 + self.incoming,
            queued_prompt_tokens: self.waiting_tokens + self.transfer_tokens,
            kv_blocks_used: self.kv_used,
            kv_blocks_total: self.kv_total,
            max_request_tokens: self.max_request_tokens(),
        }
    }

    /// Nanoseconds spent in iterations up to `now`, counting the running one's elapsed part.
    pub fn busy_ns_at(&self, now: Nanos) -> u64 {
        let running = self.iteration.map_or(0, |it| {
            now.clamp(it.start_ns, it.end_ns)
                .saturating_sub(it.start_ns)
        });
        self.counters.busy_ns + running
    }

    /// Moves the requests whose prefill finished in the last iteration (prefill role) into
    /// `out`; their KV blocks stay held here until [`Replica::release_held`].
    pub fn take_prefilled(&mut self, out: &mut Vec<Seq>) {
        out.append(&mut self.prefilled);
    }

    /// Frees `blocks` KV blocks held for a prefilled request whose cache has left.
    pub fn release_held(&mut self, now: Nanos, blocks: u32) {
        let blocks = u64::from(blocks);
        debug_assert!(blocks <= self.held_blocks, "releasing blocks never held");
        self.held_blocks -= blocks;
        let used = self.kv_used - blocks;
        self.set_kv_used(now, used);
    }

    /// Queues a prefilled request whose KV cache must find blocks here (decode role).
    pub fn push_transfer(&mut self, transfer: KvTransfer) {
        self.counters.routed += 1;
        self.transfer_tokens += u64::from(transfer.seq.kv_tokens());
        self.transfers.push_back(transfer);
    }

    /// Reserves KV blocks for waiting transfers, in arrival order, while they fit beside the
    /// watermark and the batch has room; the ones that got blocks go to `out`, ready to move.
    pub fn reserve_transfers(&mut self, now: Nanos, out: &mut Vec<KvTransfer>) {
        while let Some(front) = self.transfers.front() {
            let need = u64::from(blocks_for(front.seq.kv_tokens()));
            let seats = self.running.len() as u32 + self.incoming;
            if seats >= self.config.max_num_seqs || !self.admissible(need) {
                break;
            }
            let mut transfer = self.transfers.pop_front().expect("front exists");
            self.transfer_tokens -= u64::from(transfer.seq.kv_tokens());
            let used = self.kv_used + need;
            self.set_kv_used(now, used);
            transfer.seq.blocks = need as u32;
            self.incoming += 1;
            out.push(transfer);
        }
    }

    /// A transfer reserved here has landed: the request joins the running batch, decoding.
    pub fn accept_transfer(&mut self, seq: Seq) {
        debug_assert!(self.incoming > 0, "a transfer landed without a reservation");
        debug_assert!(seq.in_decode());
        self.incoming -= 1;
        self.running.push(seq);
    }

    /// Prefilled requests waiting here for KV blocks (decode role).
    pub fn transfers_waiting(&self) -> usize {
        self.transfers.len()
    }

    /// Whether nothing runs, waits, or holds blocks here: a draining replica may stop.
    pub fn is_empty(&self) -> bool {
        self.iteration.is_none() && self.in_flight() == 0 && self.held_blocks == 0
    }

    /// Whether an iteration is in progress.
    pub fn is_busy(&self) -> bool {
        self.iteration.is_some()
    }

    /// Requests waiting (transfers waiting for blocks included), running and swapped out.
    pub fn queue_lengths(&self) -> (usize, usize, usize) {
        (
            self.waiting.len() + self.transfers.len(),
            self.running.len(),
            self.swapped.len(),
        )
    }

    /// KV blocks in use and in total.
    pub fn kv_blocks(&self) -> (u64, u64) {
        (self.kv_used, self.kv_total)
    }

    /// Sequences in flight here (waiting, running, swapped, transfers waiting or on the link).
    pub fn in_flight(&self) -> usize {
        self.waiting.len()
            + self.running.len()
            + self.swapped.len()
            + self.transfers.len()
            + self.incoming as usize
    }

    /// Removes every request still inside (waiting, running, swapped, transfers waiting for
    /// blocks), for end-of-run records; transfers on the link are the engine's.
    pub fn drain_in_flight(&mut self) -> Vec<Seq> {
        let mut out: Vec<Seq> = self.running.drain(..).filter(|s| !s.padding).collect();
        out.extend(self.swapped.drain(..));
        while let Some(seq) = self.waiting.pop() {
            out.push(seq);
        }
        out.extend(self.transfers.drain(..).map(|t| t.seq));
        self.waiting_tokens = 0;
        self.transfer_tokens = 0;
        out
    }

    /// Accepts a routed request.
    pub fn enqueue(&mut self, seq: Seq) {
        self.counters.routed += 1;
        self.waiting_tokens += u64::from(seq.prompt_len);
        self.waiting.push(seq);
    }

    fn take_waiting(&mut self) -> Option<Seq> {
        let seq = self.waiting.pop()?;
        self.waiting_tokens -= u64::from(seq.prompt_len);
        Some(seq)
    }

    fn return_waiting(&mut self, seq: Seq) {
        self.waiting_tokens += u64::from(seq.prompt_len);
        self.waiting.push_front(seq);
    }

    fn set_kv_used(&mut self, now: Nanos, used: u64) {
        debug_assert!(used <= self.kv_total, "KV blocks over-allocated");
        self.counters.kv_block_ns +=
            u128::from(self.kv_used) * u128::from(now.saturating_sub(self.kv_changed_ns));
        self.kv_changed_ns = now;
        self.kv_used = used;
        self.counters.peak_kv_blocks = self.counters.peak_kv_blocks.max(used);
    }

    /// Closes the time integrals at `now`, the end of the simulation: KV use, and the busy
    /// time of an iteration still running (counted up to `now` only).
    pub fn close_integrals(&mut self, now: Nanos) {
        let used = self.kv_used;
        self.set_kv_used(now.max(self.kv_changed_ns), used);
        if let Some(it) = self.iteration {
            let ran = now.saturating_sub(it.start_ns).min(it.end_ns - it.start_ns);
            self.add_busy(ran, it.prefill_heavy);
        }
    }

    fn add_busy(&mut self, ns: Nanos, prefill_heavy: bool) {
        self.counters.busy_ns += ns;
        if prefill_heavy {
            self.counters.prefill_heavy_ns += ns;
        } else {
            self.counters.decode_heavy_ns += ns;
        }
    }

    fn kv_free(&self) -> u64 {
        self.kv_total - self.kv_used
    }

    /// Whether blocks for `extra` more can be taken while leaving the watermark free.
    fn admissible(&self, extra: u64) -> bool {
        self.kv_used + extra + self.watermark_blocks <= self.kv_total
    }

    /// Evicts the most recently admitted running sequence; returns the transfer time of a swap.
    fn preempt_last(&mut self, now: Nanos) -> Nanos {
        let mut victim = self.running.pop().expect("preempt from a non-empty batch");
        self.counters.preemptions += 1;
        victim.preemptions += 1;
        victim.scheduled = 0;
        let freed = u64::from(victim.blocks);
        let used = self.kv_used - freed;
        self.set_kv_used(now, used);
        match self.config.preemption {
            PreemptionMode::Recompute => {
                victim.blocks = 0;
                victim.computed = 0;
                victim.prompt_len = victim.request.input_tokens.max(1) + victim.generated;
                self.return_waiting(victim);
                0
            }
            PreemptionMode::Swap => {
                victim.swapped_blocks = victim.blocks;
                victim.blocks = 0;
                let transfer = self.transfer_ns(victim.swapped_blocks);
                self.swapped.push_back(victim);
                transfer
            }
        }
    }

    /// Time to move `blocks` KV blocks over the host link (each GPU moves its shard in parallel).
    fn transfer_ns(&self, blocks: u32) -> Nanos {
        let bytes = f64::from(blocks) * self.block_bytes_per_gpu;
        crate::time::from_secs(bytes / (self.instance.gpu.host_link_gbs * 1e9))
    }

    /// Plans and starts the next iteration at `now`; returns its end time, or `None` when
    /// there is nothing to run (the replica goes idle).
    pub fn start_iteration(&mut self, now: Nanos) -> Option<Nanos> {
        debug_assert!(self.iteration.is_none());
        let mut batch = BatchSummary::default();
        let mut extra_ns: Nanos = 0;
        let mut pure_decode = true;
        match self.config.batching {
            BatchingMode::Continuous => {
                self.plan_continuous(now, &mut batch, &mut extra_ns, &mut pure_decode)
            }
            BatchingMode::Chunked => {
                self.plan_chunked(now, &mut batch, &mut extra_ns, &mut pure_decode)
            }
            BatchingMode::Static => self.plan_static(now, &mut batch, &mut pure_decode),
        }
        debug_assert!(self.running.len() as u32 <= self.config.max_num_seqs);
        debug_assert!(self.kv_used <= self.kv_total);
        if batch.is_empty() && extra_ns == 0 {
            return None;
        }
        let duration = self.instance.latency.iteration_ns(&batch) + extra_ns;
        let duration = duration.max(1);
        let mut completes_any = false;
        for seq in &mut self.running {
            if seq.scheduled == 0 {
                continue;
            }
            if seq.first_scheduled_ns.is_none() {
                seq.first_scheduled_ns = Some(now);
            }
            let produces = seq.in_decode() || seq.computed + seq.scheduled >= seq.prompt_len;
            if produces && seq.generated + 1 >= seq.output_target() {
                completes_any = true;
            }
        }
        if !batch.is_empty() {
            self.counters.iterations += 1;
            if batch.prefill_tokens > 0 {
                self.counters.prefill_iterations += 1;
                self.counters.prefill_tokens += batch.prefill_tokens;
            }
        }
        let end_ns = now + duration;
        self.iteration = Some(Iteration {
            start_ns: now,
            end_ns,
            completes_any,
            pure_decode: pure_decode && batch.prefill_seqs == 0 && extra_ns == 0,
            prefill_heavy: batch.prefill_tokens > u64::from(batch.decode_seqs),
        });
        Some(end_ns)
    }

    /// Whether the running iteration may be finished without the event queue: it only
    /// decodes and nobody finishes in it, so no one outside this replica can tell.
    pub fn iteration_is_silent(&self) -> bool {
        self.iteration
            .is_some_and(|it| it.pure_decode && !it.completes_any)
    }

    /// End time of the running iteration.
    pub fn iteration_end(&self) -> Option<Nanos> {
        self.iteration.map(|it| it.end_ns)
    }

    /// Adds decode steps for every running sequence in decode phase, preempting from the back
    /// when blocks run out. Returns whether anything was preempted.
    fn schedule_decodes(
        &mut self,
        now: Nanos,
        batch: &mut BatchSummary,
        extra_ns: &mut Nanos,
    ) -> bool {
        let mut preempted = false;
        let mut i = 0;
        while i < self.running.len() {
            if !self.running[i].in_decode() {
                i += 1;
                continue;
            }
            let needed = blocks_for(self.running[i].computed + 1);
            let extra = u64::from(needed.saturating_sub(self.running[i].blocks));
            while extra > self.kv_free() && i < self.running.len() {
                // The sequence itself may be the one evicted.
                *extra_ns += self.preempt_last(now);
                preempted = true;
            }
            if i >= self.running.len() {
                break;
            }
            let used = self.kv_used + extra;
            self.set_kv_used(now, used);
            let seq = &mut self.running[i];
            seq.blocks = needed;
            seq.scheduled = 1;
            batch.add_decode(seq.computed + 1);
            i += 1;
        }
        preempted
    }

    /// Brings swapped-out sequences back while blocks allow; returns whether any came back.
    fn swap_in(&mut self, now: Nanos, extra_ns: &mut Nanos) -> bool {
        let mut any = false;
        while let Some(front) = self.swapped.front() {
            let need = u64::from(front.swapped_blocks);
            if self.running.len() as u32 >= self.config.max_num_seqs || !self.admissible(need) {
                break;
            }
            let mut seq = self.swapped.pop_front().expect("front exists");
            *extra_ns += self.transfer_ns(seq.swapped_blocks);
            seq.blocks = seq.swapped_blocks;
            seq.swapped_blocks = 0;
            let used = self.kv_used + need;
            self.set_kv_used(now, used);
            self.running.push(seq);
            any = true;
        }
        any
    }

    /// Preempts running sequences that the queue policy ranks behind the waiting head while the
    /// head cannot be admitted (SRPT, MLFQ), each at most the policy's cap of times. Returns
    /// whether it preempted any.
    ///
    /// Only with recompute preemption: a swapped-out sequence blocks new prompts in this
    /// engine (vLLM v0 order), so swapping a long request out to admit a short one would only
    /// queue the short one behind the swap-in.
    fn preempt_for_waiting(&mut self, now: Nanos) -> bool {
        let cap = self.waiting.max_preemptions();
        if cap == 0
            || self.config.preemption != PreemptionMode::Recompute
            || !self.swapped.is_empty()
        {
            return false;
        }
        let mut any = false;
        loop {
            let Some(head) = self.waiting.peek() else {
                return any;
            };
            let Some(head_rank) = self.waiting.preemption_rank(head) else {
                return any;
            };
            let chunk = match self.config.batching {
                BatchingMode::Chunked => head.remaining_prefill().min(self.token_budget),
                _ => head.remaining_prefill(),
            };
            let need = u64::from(blocks_for(head.computed + chunk));
            if (self.running.len() as u32) < self.config.max_num_seqs && self.admissible(need) {
                return any;
            }
            // The least urgent running sequence still under the cap; ties: the latest admitted.
            // O(batch), like the decode scheduling that follows, and only while the head waits.
            let mut victim: Option<(usize, f64)> = None;
            for (i, seq) in self.running.iter().enumerate() {
                if seq.preemptions >= cap {
                    continue;
                }
                let Some(rank) = self.waiting.preemption_rank(seq) else {
                    continue;
                };
                if rank > head_rank && victim.is_none_or(|(_, worst)| rank >= worst) {
                    victim = Some((i, rank));
                }
            }
            let Some((index, _)) = victim else {
                return any;
            };
            let seq = self.running.remove(index);
            self.running.push(seq);
            self.preempt_last(now);
            self.counters.policy_preemptions += 1;
            any = true;
        }
    }

    fn plan_continuous(
        &mut self,
        now: Nanos,
        batch: &mut BatchSummary,
        extra_ns: &mut Nanos,
        pure_decode: &mut bool,
    ) {
        if self.preempt_for_waiting(now) {
            *pure_decode = false;
        }
        // vLLM v0: new prompts first, in an iteration of their own, unless requests are swapped out.
        if self.swapped.is_empty() {
            let mut tokens = 0u32;
            while let Some(head) = self.waiting.peek() {
                let chunk = head.remaining_prefill();
                let need = u64::from(blocks_for(head.computed + chunk));
                if self.running.len() as u32 >= self.config.max_num_seqs
                    || tokens + chunk > self.token_budget
                    || !self.admissible(need)
                {
                    break;
                }
                let mut seq = self.take_waiting().expect("peeked");
                let used = self.kv_used + need;
                self.set_kv_used(now, used);
                seq.blocks = need as u32;
                seq.scheduled = chunk;
                batch.add_prefill(chunk, seq.computed, true);
                tokens += chunk;
                self.running.push(seq);
            }
            if !batch.is_empty() {
                *pure_decode = false;
                return;
            }
        }
        let preempted = self.schedule_decodes(now, batch, extra_ns);
        if !preempted && !self.swapped.is_empty() {
            let before = self.running.len();
            if self.swap_in(now, extra_ns) {
                *pure_decode = false;
                // Swapped-in sequences decode in this iteration too.
                for i in before..self.running.len() {
                    let needed = blocks_for(self.running[i].computed + 1);
                    let extra = u64::from(needed.saturating_sub(self.running[i].blocks));
                    if extra > self.kv_free() {
                        continue;
                    }
                    let used = self.kv_used + extra;
                    self.set_kv_used(now, used);
                    let seq = &mut self.running[i];
                    seq.blocks = needed;
                    seq.scheduled = 1;
                    batch.add_decode(seq.computed + 1);
                }
            }
        }
        if preempted {
            *pure_decode = false;
        }
    }

    fn plan_chunked(
        &mut self,
        now: Nanos,
        batch: &mut BatchSummary,
        extra_ns: &mut Nanos,
        pure_decode: &mut bool,
    ) {
        if self.preempt_for_waiting(now) {
            *pure_decode = false;
        }
        let preempted = self.schedule_decodes(now, batch, extra_ns);
        let mut budget = self.token_budget.saturating_sub(batch.decode_seqs);
        // Continue prompts already in the batch.
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            if self.running[i].in_decode() || self.running[i].scheduled > 0 {
                i += 1;
                continue;
            }
            let chunk = self.running[i].remaining_prefill().min(budget);
            let needed = blocks_for(self.running[i].computed + chunk);
            let extra = u64::from(needed.saturating_sub(self.running[i].blocks));
            if extra > self.kv_free() {
                break;
            }
            let used = self.kv_used + extra;
            self.set_kv_used(now, used);
            let seq = &mut self.running[i];
            seq.blocks = needed;
            seq.scheduled = chunk;
            batch.add_prefill(chunk, seq.computed, seq.computed + chunk >= seq.prompt_len);
            budget -= chunk;
            i += 1;
        }
        if !preempted {
            if !self.swapped.is_empty() {
                let before = self.running.len();
                self.swap_in(now, extra_ns);
                for i in before..self.running.len() {
                    if budget == 0 {
                        break;
                    }
                    let seq = &self.running[i];
                    let (chunk, needed) = if seq.in_decode() {
                        (1, blocks_for(seq.computed + 1))
                    } else {
                        let chunk = seq.remaining_prefill().min(budget);
                        (chunk, blocks_for(seq.computed + chunk))
                    };
                    let extra = u64::from(needed.saturating_sub(seq.blocks));
                    if extra > self.kv_free() {
                        continue;
                    }
                    let used = self.kv_used + extra;
                    self.set_kv_used(now, used);
                    let seq = &mut self.running[i];
                    seq.blocks = needed;
                    seq.scheduled = chunk;
                    if seq.in_decode() {
                        batch.add_decode(seq.computed + 1);
                    } else {
                        batch.add_prefill(
                            chunk,
                            seq.computed,
                            seq.computed + chunk >= seq.prompt_len,
                        );
                    }
                    budget -= chunk;
                }
            }
            if self.swapped.is_empty() {
                while budget > 0 && (self.running.len() as u32) < self.config.max_num_seqs {
                    let Some(head) = self.waiting.peek() else {
                        break;
                    };
                    let chunk = head.remaining_prefill().min(budget);
                    let need = u64::from(blocks_for(head.computed + chunk));
                    if !self.admissible(need) {
                        break;
                    }
                    let mut seq = self.take_waiting().expect("peeked");
                    let used = self.kv_used + need;
                    self.set_kv_used(now, used);
                    seq.blocks = need as u32;
                    seq.scheduled = chunk;
                    batch.add_prefill(chunk, seq.computed, seq.computed + chunk >= seq.prompt_len);
                    budget -= chunk;
                    self.running.push(seq);
                }
            }
        }
        if preempted || batch.prefill_seqs > 0 || *extra_ns > 0 {
            *pure_decode = false;
        }
    }

    fn plan_static(&mut self, now: Nanos, batch: &mut BatchSummary, pure_decode: &mut bool) {
        if self.running.is_empty() {
            // Form a new batch; reserve every request's whole KV up front, so nothing is
            // ever preempted.
            let mut tokens = 0u32;
            let mut shape = StaticBatch::default();
            while (self.running.len() as u32) < self.config.max_num_seqs {
                let (kv_used, kv_total, watermark) =
                    (self.kv_used, self.kv_total, self.watermark_blocks);
                let budget = self.token_budget;
                let fits = |seq: &Seq| {
                    let whole = footprint_tokens(&seq.request);
                    tokens + seq.remaining_prefill() <= budget
                        && kv_used + whole.div_ceil(u64::from(BLOCK_TOKENS)) + watermark <= kv_total
                };
                let Some(mut seq) = self.waiting.pop_for_static_batch(&shape, &fits) else {
                    break;
                };
                self.waiting_tokens -= u64::from(seq.prompt_len);
                shape.add(seq.predicted_output);
                let need = footprint_tokens(&seq.request).div_ceil(u64::from(BLOCK_TOKENS));
                let chunk = seq.remaining_prefill();
                let used = self.kv_used + need;
                self.set_kv_used(now, used);
                seq.blocks = need as u32;
                seq.scheduled = chunk;
                batch.add_prefill(chunk, seq.computed, true);
                tokens += chunk;
                self.running.push(seq);
            }
            *pure_decode = false;
            return;
        }
        for seq in &mut self.running {
            // Padding still costs its decode slot.
            batch.add_decode(seq.computed + 1);
            if !seq.padding {
                seq.scheduled = 1;
            }
        }
    }

    /// Applies the running iteration's effects at its end time `now`; finished requests are
    /// appended to `finished`.
    pub fn finish_iteration(&mut self, now: Nanos, finished: &mut Vec<Finished>) {
        let iteration = self.iteration.take().expect("an iteration is running");
        debug_assert_eq!(iteration.end_ns, now);
        let duration = iteration.end_ns - iteration.start_ns;
        self.add_busy(duration, iteration.prefill_heavy);
        let static_mode = self.config.batching == BatchingMode::Static;
        let mut freed = 0u64;
        let mut produced = 0u64;
        // Prefill role: a request leaves once its prompt is computed and its first token out.
        let hands_off = self.role == ReplicaRole::Prefill;
        let mut i = 0;
        while i < self.running.len() {
            let seq = &mut self.running[i];
            if seq.scheduled == 0 {
                i += 1;
                continue;
            }
            let was_decode = seq.in_decode();
            seq.add_service_ns(duration);
            seq.computed += seq.scheduled;
            seq.scheduled = 0;
            let mut done = false;
            if was_decode || seq.computed >= seq.prompt_len {
                seq.generated += 1;
                produced += 1;
                match seq.first_token_ns {
                    None => seq.first_token_ns = Some(now),
                    Some(_) => seq.max_itl_ns = seq.max_itl_ns.max(now - seq.last_token_ns),
                }
                seq.last_token_ns = now;
                done = seq.generated >= seq.output_target();
            }
            if done {
                self.counters.completed += 1;
                if static_mode {
                    seq.padding = true;
                    finished.push(Finished {
                        seq: seq.clone(),
                        completion_ns: now,
                    });
                    i += 1;
                } else {
                    let seq = self.running.remove(i);
                    freed += u64::from(seq.blocks);
                    finished.push(Finished {
                        seq,
                        completion_ns: now,
                    });
                }
            } else if hands_off && !was_decode && seq.generated == 1 && seq.in_decode() {
                // Its prompt is in the cache and its first token out: it leaves for a decode
                // replica, and its blocks stay held until the KV cache has moved.
                let seq = self.running.remove(i);
                self.held_blocks += u64::from(seq.blocks);
                self.prefilled.push(seq);
            } else {
                i += 1;
            }
        }
        if static_mode && !self.running.is_empty() && self.running.iter().all(|s| s.padding) {
            freed += self
                .running
                .iter()
                .map(|s| u64::from(s.blocks))
                .sum::<u64>();
            self.running.clear();
        }
        self.counters.output_tokens += produced;
        if freed > 0 {
            let used = self.kv_used - freed;
            self.set_kv_used(now, used);
        }
    }
}
