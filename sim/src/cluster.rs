//! A cluster: replicas, each with its own instance type, priced under a named book. Replicas
//! either serve whole requests (colocated) or, in a disaggregated cluster, one phase of them:
//! a prefill pool computes prompts and hands their KV cache to a decode pool (Splitwise,
//! DistServe).

use std::sync::Arc;

use gpu_models::{Catalog, Instance, InstanceOptions};
use serde::Serialize;

/// A replica type's name: the GPU's, with `xN` for a tensor-parallel group of N
/// (`H100-SXMx4`). Routers, the autoscaler, capacity tables and plans all key types by it.
pub fn type_name(gpu: &str, tp: u32) -> String {
    if tp == 1 {
        gpu.to_string()
    } else {
        format!("{gpu}x{tp}")
    }
}

/// What a replica does with the requests routed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReplicaRole {
    /// Prefill and decode on the same replica.
    #[default]
    Colocated,
    /// Only prefills; each prompt's KV cache then moves to a decode replica.
    Prefill,
    /// Only decodes requests whose KV cache arrives from a prefill replica (and recomputes
    /// its own preempted requests).
    Decode,
}

impl ReplicaRole {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ReplicaRole::Colocated => "colocated",
            ReplicaRole::Prefill => "prefill",
            ReplicaRole::Decode => "decode",
        }
    }
}

/// One kind of replica in the cluster.
#[derive(Debug, Clone)]
pub struct ReplicaType {
    /// Instance name (`A10G`, or `H100-SXMx4` for a tensor-parallel group).
    pub name: String,
    /// The instance type.
    pub instance: Arc<Instance>,
    /// $/hour of one replica (all its GPUs) under the cluster's price book.
    pub usd_per_hour: f64,
    /// What its replicas do.
    pub role: ReplicaRole,
}

/// Replicas and their types.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Distinct replica types.
    pub types: Vec<ReplicaType>,
    /// Type index of each replica.
    pub replicas: Vec<u32>,
    /// Price book the prices come from.
    pub price_book: String,
}

/// One entry of a cluster spec: `count` replicas of `gpu` with `tp` GPUs each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterEntry {
    /// GPU name.
    pub gpu: String,
    /// Replicas.
    pub count: u32,
    /// GPUs per replica.
    pub tp: u32,
}

/// Parses `A10G:3,A100-80GB:2` (and `H100-SXM:2:tp4` for tensor-parallel replicas); a cluster
/// with no replicas at all is an error.
pub fn parse_spec(spec: &str) -> Result<Vec<ClusterEntry>, String> {
    let entries = parse_spec_types(spec)?;
    if entries.iter().map(|e| e.count).sum::<u32>() == 0 {
        return Err(format!("cluster '{spec}' has no replicas"));
    }
    Ok(entries)
}

/// [`parse_spec`] that also accepts every count at 0: the replica types of a fleet that a
/// schedule brings up from nothing.
pub fn parse_spec_types(spec: &str) -> Result<Vec<ClusterEntry>, String> {
    let mut entries = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let fields: Vec<&str> = part.split(':').collect();
        let bad = || {
            format!(
                "cluster entry '{part}': expected GPU:COUNT or GPU:COUNT:tpN (e.g. A10G:3 or H100-SXM:2:tp4)"
            )
        };
        let (gpu, count, tp) = match fields.as_slice() {
            [gpu, count] => (*gpu, *count, "tp1"),
            [gpu, count, tp] => (*gpu, *count, *tp),
            _ => return Err(bad()),
        };
        let count: u32 = count.parse().map_err(|_| bad())?;
        let tp: u32 = tp
            .strip_prefix("tp")
            .and_then(|t| t.parse().ok())
            .filter(|t| *t > 0)
            .ok_or_else(bad)?;
        if gpu.is_empty() {
            return Err(bad());
        }
        entries.push(ClusterEntry {
            gpu: gpu.to_string(),
            count,
            tp,
        });
    }
    Ok(entries)
}

impl Cluster {
    /// Builds a cluster serving `model` from spec entries; every type must fit and be priced.
    pub fn build(
        entries: &[ClusterEntry],
        catalog: &Catalog,
        model: &str,
        options: &InstanceOptions,
        price_book: Option<&str>,
    ) -> Result<Self, String> {
        let mut cluster = Self::empty(catalog, price_book)?;
        cluster.add(entries, ReplicaRole::Colocated, catalog, model, options)?;
        Ok(cluster)
    }

    /// Builds a disaggregated cluster: a prefill pool and a decode pool, whose GPU types may
    /// differ. Both pools need replicas.
    pub fn build_disaggregated(
        prefill: &[ClusterEntry],
        decode: &[ClusterEntry],
        catalog: &Catalog,
        model: &str,
        options: &InstanceOptions,
        price_book: Option<&str>,
    ) -> Result<Self, String> {
        for (pool, entries) in [("prefill", prefill), ("decode", decode)] {
            if entries.iter().map(|e| e.count).sum::<u32>() == 0 {
                return Err(format!("the {pool} pool has no replicas"));
            }
        }
        let mut cluster = Self::empty(catalog, price_book)?;
        cluster.add(prefill, ReplicaRole::Prefill, catalog, model, options)?;
        cluster.add(decode, ReplicaRole::Decode, catalog, model, options)?;
        Ok(cluster)
    }

    fn empty(catalog: &Catalog, price_book: Option<&str>) -> Result<Self, String> {
        let book = catalog.price_book(price_book).map_err(|e| e.to_string())?;
        Ok(Self {
            types: Vec::new(),
            replicas: Vec::new(),
            price_book: book.name.clone(),
        })
    }

    /// Adds the replicas of `entries` in `role`; a (name, role) pair is one type.
    fn add(
        &mut self,
        entries: &[ClusterEntry],
        role: ReplicaRole,
        catalog: &Catalog,
        model: &str,
        options: &InstanceOptions,
    ) -> Result<(), String> {
        let book = catalog
            .price_book(Some(&self.price_book))
            .map_err(|e| e.to_string())?;
        for entry in entries {
            let instance = Instance::from_catalog(catalog, model, &entry.gpu, entry.tp, options)
                .map_err(|e| e.to_string())?
                .map_err(|reason| {
                    format!(
                        "{model} on {} x{}: does not fit: {reason}",
                        entry.gpu, entry.tp
                    )
                })?;
            let name = type_name(&instance.gpu.name, entry.tp);
            let usd_per_hour = instance.usd_per_hour(book).ok_or_else(|| {
                format!(
                    "price book '{}' has no price for {} (choose another with --prices)",
                    book.name, instance.gpu.name
                )
            })?;
            let type_index = match self
                .types
                .iter()
                .position(|t| t.name == name && t.role == role)
            {
                Some(i) => i,
                None => {
                    self.types.push(ReplicaType {
                        name,
                        instance: Arc::new(instance),
                        usd_per_hour,
                        role,
                    });
                    self.types.len() - 1
                }
            };
            self.replicas
                .extend(std::iter::repeat_n(type_index as u32, entry.count as usize));
        }
        Ok(())
    }

    /// Whether replicas take prefill and decode roles.
    pub fn is_disaggregated(&self) -> bool {
        self.types.iter().any(|t| t.role != ReplicaRole::Colocated)
    }

    /// The name the autoscaler knows each type by (limits, schedules, reports): the instance
    /// name, qualified by its pool in a disaggregated cluster (`prefill/H100-SXM`), since one
    /// instance may serve in both pools and each pool scales on its own.
    pub fn scaling_names(&self) -> Vec<String> {
        self.types
            .iter()
            .map(|t| match t.role {
                ReplicaRole::Colocated => t.name.clone(),
                role => format!("{}/{}", role.name(), t.name),
            })
            .collect()
    }

    /// Total $/hour of all replicas.
    pub fn usd_per_hour(&self) -> f64 {
        // From +0.0: an f64 sum over nothing is -0.0, which prints as "$-0.000/h" for a fleet a
        // schedule starts from nothing.
        self.replicas
            .iter()
            .map(|&t| self.types[t as usize].usd_per_hour)
            .fold(0.0, |total, price| total + price)
    }

    /// Short description: `A10G:3,A100-80GB:2`; disaggregated:
    /// `prefill H100-SXM:1 | decode A100-80GB:2`.
    pub fn describe(&self) -> String {
        if !self.is_disaggregated() {
            return self.describe_role(ReplicaRole::Colocated);
        }
        format!(
            "prefill {} | decode {}",
            self.describe_role(ReplicaRole::Prefill),
            self.describe_role(ReplicaRole::Decode)
        )
    }

    /// `TYPE:COUNT,...` of the types in `role`.
    pub fn describe_role(&self, role: ReplicaRole) -> String {
        self.types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.role == role)
            .map(|(i, t)| {
                let count = self.replicas.iter().filter(|&&r| r as usize == i).count();
                format!("{}:{count}", t.name)
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}
