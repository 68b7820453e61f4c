//! The recipes themselves: [`Recipe`] (place, migrate, kill, scale, tune), applying one to
//! a [`State`] with an undo log ([`Applied`]) and why it cannot be ([`RecipeError`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::landscape::Pressure;
use crate::objective::{Member, State};

/// A change to the landscape to be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "recipe", rename_all = "snake_case", deny_unknown_fields)]
pub enum Recipe {
    /// Start a new instance of `workload` on `host`.
    Place {
        /// Workload.
        workload: String,
        /// Host.
        host: String,
        /// Cores.
        cores: f64,
        /// Memory.
        memory_bytes: u64,
        /// Pressure on neighbours.
        #[serde(default)]
        pressure: Pressure,
        /// Latency-critical.
        #[serde(default)]
        latency_critical: bool,
        /// Rps it serves.
        #[serde(default)]
        rps: Option<f64>,
        /// Quiet p99, ms.
        #[serde(default)]
        quiet_p99_ms: Option<f64>,
    },
    /// Move an instance to another host.
    Migrate {
        /// Instance id.
        instance: String,
        /// Target host.
        to: String,
    },
    /// Stop an instance.
    Kill {
        /// Instance id.
        instance: String,
    },
    /// Change a workload's replicas: copies of an existing replica on `add_on` hosts, and
    /// removal of the `remove` instances; its rps is spread over the replicas it then has.
    Scale {
        /// Workload.
        workload: String,
        /// Hosts to add a replica on.
        #[serde(default)]
        add_on: Vec<String>,
        /// Replicas to remove.
        #[serde(default)]
        remove: Vec<String>,
    },
    /// Resize an instance.
    Tune {
        /// Instance id.
        instance: String,
        /// New cores.
        #[serde(default)]
        cores: Option<f64>,
        /// New memory.
        #[serde(default)]
        memory_bytes: Option<u64>,
    },
}

/// Why a recipe cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecipeError {
    /// It names an instance that does not exist.
    #[error("unknown instance {0:?}")]
    UnknownInstance(String),
    /// It names a host that does not exist.
    #[error("unknown host {0:?}")]
    UnknownHost(String),
    /// It names a workload without instances.
    #[error("unknown workload {0:?} (it has no instances)")]
    UnknownWorkload(String),
    /// A size that cannot be.
    #[error("{0}")]
    Invalid(String),
}

enum Undo {
    Relocated(usize, Option<usize>),
    Added(usize),
    Resized(usize, f64, u64),
    Rps(usize, Option<f64>),
}

/// Applies recipes to a [`State`] and takes them back.
pub struct Applied {
    undo: Vec<Undo>,
    /// Hosts whose cost may have changed.
    pub touched: BTreeSet<usize>,
    /// Whether every touched host still fits its capacity.
    pub feasible: bool,
}

fn host_of(state: &State, name: &str) -> Result<usize, RecipeError> {
    state
        .host_index
        .get(name)
        .copied()
        .ok_or_else(|| RecipeError::UnknownHost(name.to_string()))
}

fn live_member(state: &State, id: &str) -> Result<usize, RecipeError> {
    state
        .by_id
        .get(id)
        .copied()
        .filter(|&m| state.members[m].host.is_some())
        .ok_or_else(|| RecipeError::UnknownInstance(id.to_string()))
}

impl Applied {
    fn new() -> Self {
        Self {
            undo: Vec::new(),
            touched: BTreeSet::new(),
            feasible: true,
        }
    }

    fn relocate(&mut self, state: &mut State, m: usize, to: Option<usize>) {
        let from = state.members[m].host;
        self.touched.extend(from);
        self.touched.extend(to);
        state.relocate(m, to);
        self.undo.push(Undo::Relocated(m, from));
    }

    fn set_rps(&mut self, state: &mut State, m: usize, rps: Option<f64>) {
        self.undo.push(Undo::Rps(m, state.members[m].rps));
        self.touched.extend(state.members[m].host);
        state.members[m].rps = rps;
    }

    /// Spreads a workload's total rps over its live replicas.
    fn respread(&mut self, state: &mut State, workload: usize, total: Option<f64>) {
        let Some(total) = total else { return };
        let replicas: Vec<usize> = state.replicas_of(workload).collect();
        let each = total / replicas.len().max(1) as f64;
        for m in replicas {
            self.set_rps(state, m, Some(each));
        }
    }

    fn workload_rps(state: &State, workload: usize) -> Option<f64> {
        let mut total = 0.0;
        for m in state.replicas_of(workload) {
            total += state.members[m].rps?;
        }
        Some(total)
    }

    /// Applies `recipe`; on error nothing is changed.
    pub fn apply(state: &mut State, recipe: &Recipe) -> Result<Self, RecipeError> {
        let mut applied = Self::new();
        match recipe {
            Recipe::Place {
                workload,
                host,
                cores,
                memory_bytes,
                pressure,
                latency_critical,
                rps,
                quiet_p99_ms,
            } => {
                let h = host_of(state, host)?;
                if !(cores.is_finite() && *cores >= 0.0) {
                    return Err(RecipeError::Invalid(format!(
                        "cores must be a non-negative number, got {cores}"
                    )));
                }
                let workload = match state.workloads.iter().position(|w| &w.name == workload) {
                    Some(w) => w,
                    None => {
                        state.workloads.push(crate::objective::WorkloadInfo {
                            name: workload.clone(),
                            p99_objective_ms: None,
                            priority: 1.0,
                            quiet_p99_ms: None,
                            rps: None,
                        });
                        state.workloads.len() - 1
                    }
                };
                let id = format!("new-{}", state.members.len()).into();
                let m = state.add(
                    Member {
                        id,
                        workload,
                        host: None,
                        cores: *cores,
                        memory_bytes: *memory_bytes,
                        pressure: *pressure,
                        latency_critical: *latency_critical
                            || state.workloads[workload].p99_objective_ms.is_some(),
                        rps: *rps,
                        quiet_p99_ms: *quiet_p99_ms,
                        evictable: false,
                    },
                    h,
                );
                applied.touched.insert(h);
                applied.undo.push(Undo::Added(m));
            }
            Recipe::Migrate { instance, to } => {
                let m = live_member(state, instance)?;
                let to = host_of(state, to)?;
                applied.relocate(state, m, Some(to));
            }
            Recipe::Kill { instance } => {
                let m = live_member(state, instance)?;
                applied.relocate(state, m, None);
            }
            Recipe::Scale {
                workload,
                add_on,
                remove,
            } => {
                let w = state
                    .workloads
                    .iter()
                    .position(|x| &x.name == workload)
                    .ok_or_else(|| RecipeError::UnknownWorkload(workload.clone()))?;
                let template = state
                    .replicas_of(w)
                    .next()
                    .ok_or_else(|| RecipeError::UnknownWorkload(workload.clone()))?;
                let hosts = add_on
                    .iter()
                    .map(|h| host_of(state, h))
                    .collect::<Result<Vec<_>, _>>()?;
                let removed = remove
                    .iter()
                    .map(|id| {
                        live_member(state, id).and_then(|m| {
                            if state.members[m].workload == w {
                                Ok(m)
                            } else {
                                Err(RecipeError::Invalid(format!(
                                    "instance {id:?} is not a replica of {workload:?}"
                                )))
                            }
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let total = Self::workload_rps(state, w);
                for (k, h) in hosts.into_iter().enumerate() {
                    let mut copy = state.members[template].clone();
                    copy.id = format!("{}-scale-{k}", copy.id).into();
                    let m = state.add(copy, h);
                    applied.touched.insert(h);
                    applied.undo.push(Undo::Added(m));
                }
                for m in removed {
                    applied.relocate(state, m, None);
                }
                applied.respread(state, w, total);
            }
            Recipe::Tune {
                instance,
                cores,
                memory_bytes,
            } => {
                let m = live_member(state, instance)?;
                if let Some(c) = cores {
                    if !(c.is_finite() && *c >= 0.0) {
                        return Err(RecipeError::Invalid(format!(
                            "cores must be a non-negative number, got {c}"
                        )));
                    }
                }
                let host = state.members[m].host;
                let (old_cores, old_memory) =
                    (state.members[m].cores, state.members[m].memory_bytes);
                state.relocate(m, None);
                state.members[m].cores = cores.unwrap_or(old_cores);
                state.members[m].memory_bytes = memory_bytes.unwrap_or(old_memory);
                state.relocate(m, host);
                applied.touched.extend(host);
                applied.undo.push(Undo::Resized(m, old_cores, old_memory));
            }
        }
        applied.feasible = applied.touched.iter().all(|&h| state.fits(h, 0.0, 0));
        Ok(applied)
    }

    /// Takes the recipe back.
    pub fn undo(self, state: &mut State) {
        for u in self.undo.into_iter().rev() {
            match u {
                Undo::Relocated(m, from) => state.relocate(m, from),
                Undo::Added(m) => {
                    state.relocate(m, None);
                    let member = state.members.pop();
                    if let Some(member) = member {
                        state.by_id.remove(&member.id);
                    }
                }
                Undo::Resized(m, cores, memory) => {
                    let host = state.members[m].host;
                    state.relocate(m, None);
                    state.members[m].cores = cores;
                    state.members[m].memory_bytes = memory;
                    state.relocate(m, host);
                }
                Undo::Rps(m, rps) => state.members[m].rps = rps,
            }
        }
    }
}
