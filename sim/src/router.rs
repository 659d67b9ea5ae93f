//! Routing requests across replicas. A router sees only what a real router could see at that
//! moment ([`ReplicaStatus`]) and the request's own prompt and output lengths where a policy
//! is allowed to use them (Mélange's router uses the size bucket).

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use workloads::{BucketEdges, Request};

use crate::replica::ReplicaStatus;

/// Chooses a replica for each arriving request.
pub trait Router: Send {
    /// Name for outputs.
    fn name(&self) -> &'static str;
    /// Picks one of `eligible` (indices into `replicas` that can hold the request; never empty).
    fn route(&mut self, request: &Request, replicas: &[ReplicaStatus], eligible: &[usize])
    -> usize;
}

/// Which router to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RouterKind {
    /// Cycle through replicas.
    RoundRobin,
    /// Uniformly at random (seeded).
    Random,
    /// Fewest requests waiting or running.
    #[default]
    LeastOutstanding,
    /// Fewest tokens queued or held in the KV cache.
    LeastTokens,
    /// Two random replicas, the one with fewer outstanding requests.
    PowerOfTwo,
    /// Mélange: random, weighted by each replica type's capacity for the request's size bucket.
    Melange,
}

impl RouterKind {
    /// Every router, for help texts and sweeps.
    pub const ALL: [RouterKind; 6] = [
        RouterKind::RoundRobin,
        RouterKind::Random,
        RouterKind::LeastOutstanding,
        RouterKind::LeastTokens,
        RouterKind::PowerOfTwo,
        RouterKind::Melange,
    ];

    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            RouterKind::RoundRobin => "round-robin",
            RouterKind::Random => "random",
            RouterKind::LeastOutstanding => "least-outstanding",
            RouterKind::LeastTokens => "least-tokens",
            RouterKind::PowerOfTwo => "power-of-two",
            RouterKind::Melange => "melange",
        }
    }

    /// Parses a kebab-case name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(text))
    }
}

/// Max sustainable request rate (req/s) of one replica of each type per size bucket, as the
/// solver's profiles (or Mélange's `gpu_info` `tputs`) give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityTable {
    /// Bucket edges the rows and columns refer to.
    #[serde(skip, default = "BucketEdges::melange")]
    pub edges: BucketEdges,
    /// Per type name (GPU or instance name): rows = input buckets, columns = output buckets.
    pub tputs: BTreeMap<String, Vec<Vec<f64>>>,
}

impl CapacityTable {
    /// Capacity of `type_name` for a request's bucket (0 when unknown or out of range).
    pub fn capacity(&self, type_name: &str, request: &Request) -> f64 {
        let Some((i, j)) = self
            .edges
            .bucket_of(request.input_tokens, request.output_tokens)
        else {
            return 0.0;
        };
        self.tputs
            .get(type_name)
            .and_then(|rows| rows.get(i))
            .and_then(|row| row.get(j))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Builds a router.
pub fn build(
    kind: RouterKind,
    seed: u64,
    capacity: Option<&CapacityTable>,
    type_names: &[String],
) -> Result<Box<dyn Router>, String> {
    let rng = Pcg64::seed_from_u64(seed ^ 0x726f_7574_6572);
    Ok(match kind {
        RouterKind::RoundRobin => Box::new(RoundRobin { next: 0 }),
        RouterKind::Random => Box::new(RandomRouter { rng }),
        RouterKind::LeastOutstanding => Box::new(LeastOutstanding),
        RouterKind::LeastTokens => Box::new(LeastTokens),
        RouterKind::PowerOfTwo => Box::new(PowerOfTwo { rng }),
        RouterKind::Melange => {
            let table = capacity.ok_or_else(|| {
                "the melange router needs a capacity table (Mélange `gpu_info` tputs per GPU type)"
                    .to_string()
            })?;
            for name in type_names {
                if !table.tputs.contains_key(name) {
                    return Err(format!(
                        "the capacity table has no entry for replica type '{name}' (it has: {})",
                        table.tputs.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            Box::new(Melange {
                rng,
                table: table.clone(),
                type_names: type_names.to_vec(),
                weights: Vec::new(),
            })
        }
    })
}

struct RoundRobin {
    next: usize,
}

impl Router for RoundRobin {
    fn name(&self) -> &'static str {
        "round-robin"
    }

    fn route(&mut self, _: &Request, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        // The next replica in cyclic order that can hold the request.
        let n = replicas.len();
        let choice = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|i| eligible.contains(i))
            .unwrap_or(eligible[0]);
        self.next = (choice + 1) % n;
        choice
    }
}

struct RandomRouter {
    rng: Pcg64,
}

impl Router for RandomRouter {
    fn name(&self) -> &'static str {
        "random"
    }

    fn route(&mut self, _: &Request, _: &[ReplicaStatus], eligible: &[usize]) -> usize {
        eligible[self.rng.random_range(0..eligible.len())]
    }
}

struct LeastOutstanding;

impl Router for LeastOutstanding {
    fn name(&self) -> &'static str {
        "least-outstanding"
    }

    fn route(&mut self, _: &Request, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        *eligible
            .iter()
            .min_by_key(|&&i| (replicas[i].outstanding(), i))
            .expect("eligible is not empty")
    }
}

struct LeastTokens;

impl Router for LeastTokens {
    fn name(&self) -> &'static str {
        "least-tokens"
    }

    fn route(&mut self, _: &Request, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        *eligible
            .iter()
            .min_by_key(|&&i| (replicas[i].load_tokens(), i))
            .expect("eligible is not empty")
    }
}

struct PowerOfTwo {
    rng: Pcg64,
}

impl Router for PowerOfTwo {
    fn name(&self) -> &'static str {
        "power-of-two"
    }

    fn route(&mut self, _: &Request, replicas: &[ReplicaStatus], eligible: &[usize]) -> usize {
        if eligible.len() == 1 {
            return eligible[0];
        }
        let first = self.rng.random_range(0..eligible.len());
        let mut second = self.rng.random_range(0..eligible.len() - 1);
        if second >= first {
            second += 1;
        }
        let (a, b) = (eligible[first], eligible[second]);
        if (replicas[b].outstanding(), b) < (replicas[a].outstanding(), a) {
            b
        } else {
            a
        }
    }
}

struct Melange {
    rng: Pcg64,
    table: CapacityTable,
    type_names: Vec<String>,
    weights: Vec<f64>,
}

impl Router for Melange {
    fn name(&self) -> &'static str {
        "melange"
    }

    fn route(
        &mut self,
        request: &Request,
        replicas: &[ReplicaStatus],
        eligible: &[usize],
    ) -> usize {
        self.weights.clear();
        let mut total = 0.0;
        for &i in eligible {
            let type_name = &self.type_names[replicas[i].type_index as usize];
            let weight = self.table.capacity(type_name, request).max(0.0);
            total += weight;
            self.weights.push(weight);
        }
        if total <= 0.0 {
            // No type has a measured capacity for this bucket: spread uniformly.
            return eligible[self.rng.random_range(0..eligible.len())];
        }
        let mut target = self.rng.random::<f64>() * total;
        for (k, &weight) in self.weights.iter().enumerate() {
            if target < weight {
                return eligible[k];
            }
            target -= weight;
        }
        *eligible.last().expect("eligible is not empty")
    }
}
