//! Call edges from telemetry: the OpenTelemetry collector's service-graph connector counts
//! requests between services as `traces_service_graph_request_total{client, server}`.
//! [`ServiceGraphDeriver`] turns those counters into weighted `calls` edges (client →
//! server, weight = requests per second over the last interval), creating service nodes
//! the landscape does not have yet.
//!
//! An edge is published when it first appears, and again when its rate moved by more than
//! [`ServiceGraphOptions::min_relative_change`] and at least
//! [`ServiceGraphOptions::min_interval_ms`] after the last publication — so a steady
//! call graph costs a few landscape versions, not one per sample. Names resolve as in call
//! files (an id or alias, `name.namespace` for a Kubernetes service, or the one live
//! service of that name); an edge the collector stops reporting is kept (a counter that
//! stops tells nothing about whether the services still talk).

use std::collections::HashMap;

use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation, SampleRef};

use super::LandscapeGraph;

/// The connector's metric name. Also recognised: Telegraf's renderings of it
/// (`prometheus_…` with `metric_version = 2`, `…_counter` with the default one).
pub const REQUEST_TOTAL: &str = "traces_service_graph_request_total";

/// Whether a telemetry metric is the connector's request counter.
pub fn is_request_total(metric: &str) -> bool {
    let bare = metric.strip_prefix("prometheus_").unwrap_or(metric);
    let bare = bare.strip_suffix("_counter").unwrap_or(bare);
    bare == REQUEST_TOTAL
}

/// When a changed rate is published again.
#[derive(Debug, Clone, Copy)]
pub struct ServiceGraphOptions {
    /// Relative change of the rate (0.2 = 20 %) that makes a new edge version.
    pub min_relative_change: f64,
    /// Least time between two versions of one edge (ms).
    pub min_interval_ms: i64,
}

impl Default for ServiceGraphOptions {
    fn default() -> Self {
        Self {
            min_relative_change: 0.2,
            min_interval_ms: 30_000,
        }
    }
}

/// One counter: a collector's series for a pair (several collectors, or extra labels,
/// count the same pair in series of their own).
#[derive(Debug)]
struct Series {
    last_ms: i64,
    last_count: f64,
    /// Requests per second over its last interval, once it has one.
    rate: Option<f64>,
}

/// A (client, server) pair and its edge.
#[derive(Debug)]
struct Pair {
    /// The edge's ends as resolved when the pair was first seen.
    source: String,
    target: String,
    /// Service nodes made for it; sent again with every version of the edge, so each
    /// message stands alone after the landscape topic is compacted (keyed by edge).
    made: Vec<NodeSpec>,
    /// The rate last published, and when.
    published: Option<(i64, f64)>,
    series: HashMap<String, Series>,
}

/// Follows request counters per (client, server) and says which `calls` edges to publish.
#[derive(Debug, Default)]
pub struct ServiceGraphDeriver {
    options: ServiceGraphOptions,
    pairs: HashMap<(String, String), Pair>,
}

impl ServiceGraphDeriver {
    /// A deriver with these options.
    pub fn new(options: ServiceGraphOptions) -> Self {
        Self {
            options,
            pairs: HashMap::new(),
        }
    }

    /// Reads one sample (ignored unless it is a request counter with `client` and
    /// `server` labels) and appends the events it calls for to `out`: the service nodes
    /// it made for the pair and the edge, together, so they can travel as one message.
    /// The pair's rate is the sum of its series' (one per collector and label set).
    pub fn observe(
        &mut self,
        sample: &SampleRef<'_>,
        graph: &LandscapeGraph,
        out: &mut Vec<LandscapeEvent>,
    ) {
        if !is_request_total(&sample.metric) || !sample.value.is_finite() || sample.value < 0.0 {
            return;
        }
        let label = |k: &str| {
            sample
                .labels
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_ref())
                .filter(|v| !v.is_empty())
        };
        let (Some(client), Some(server)) = (label("client"), label("server")) else {
            return;
        };
        if client == server {
            return;
        }
        let t = sample.timestamp_ms;
        let pair = self
            .pairs
            .entry((client.to_string(), server.to_string()))
            .or_insert_with(|| {
                let mut made = Vec::new();
                let source = resolve(graph, client, &mut made);
                let target = resolve(graph, server, &mut made);
                // First sight: the edge exists (its rate needs a second reading) — unless
                // the graph has it already, whose weight must not be erased.
                let edge = EdgeSpec::new(source.clone(), Relation::Calls, target.clone());
                let known = graph
                    .edge(&source, Relation::Calls, &target)
                    .is_some_and(|e| e.lifetime.alive());
                if !known && edge_is_newer_than(graph, &edge, t) {
                    out.extend(made.iter().map(|node| node_up(t, node)));
                    out.push(LandscapeEvent::EdgeUp {
                        timestamp_ms: t,
                        edge,
                    });
                }
                Pair {
                    source,
                    target,
                    made,
                    published: None,
                    series: HashMap::new(),
                }
            });
        let mut id = sample.entity.to_string();
        let mut others: Vec<_> = sample.labels.iter().collect();
        others.sort();
        for (k, v) in others {
            id.push_str(&format!("|{k}={v}"));
        }
        match pair.series.get_mut(&id) {
            None => {
                pair.series.insert(
                    id,
                    Series {
                        last_ms: t,
                        last_count: sample.value,
                        rate: None,
                    },
                );
                return;
            }
            Some(series) => {
                if t <= series.last_ms {
                    return; // a replayed or reordered reading
                }
                // A counter that went down was reset: it counted from 0 since.
                let delta = if sample.value >= series.last_count {
                    sample.value - series.last_count
                } else {
                    sample.value
                };
                series.rate = Some(delta * 1000.0 / (t - series.last_ms) as f64);
                series.last_ms = t;
                series.last_count = sample.value;
            }
        }
        let rate: f64 = pair.series.values().filter_map(|s| s.rate).sum();
        let due = match pair.published {
            None => true,
            Some((at, old)) => {
                t - at >= self.options.min_interval_ms
                    && (rate - old).abs() > self.options.min_relative_change * old.max(1e-3)
            }
        };
        if !due {
            return;
        }
        let mut edge = EdgeSpec::new(pair.source.clone(), Relation::Calls, pair.target.clone());
        edge.weight = Some(rate);
        if edge_is_newer_than(graph, &edge, t) {
            pair.published = Some((t, rate));
            out.extend(pair.made.iter().map(|node| node_up(t, node)));
            out.push(LandscapeEvent::EdgeUp {
                timestamp_ms: t,
                edge,
            });
        }
    }
}

fn node_up(t: i64, node: &NodeSpec) -> LandscapeEvent {
    LandscapeEvent::NodeUp {
        timestamp_ms: t,
        node: node.clone(),
    }
}

/// Whether an edge change at `t` is not older than what the graph has of it (a replay
/// after a restart must not write history backwards).
/// Its ends, where the graph has them, must be alive at `t` too (telemetry older than a
/// service's first appearance says nothing the graph can record).
fn edge_is_newer_than(graph: &LandscapeGraph, edge: &EdgeSpec, t: i64) -> bool {
    let alive = |id: &str| graph.get(id).is_none_or(|n| n.lifetime.alive_at(t));
    alive(&edge.source)
        && alive(&edge.target)
        && graph
            .edge(&edge.source, edge.relation, &edge.target)
            .is_none_or(|e| e.last_change_ms() <= t)
}

/// The node a service name means (see the module doc); a name the graph does not know
/// becomes a new service node, added to `made`.
fn resolve(graph: &LandscapeGraph, name: &str, made: &mut Vec<NodeSpec>) -> String {
    if let Some(id) = super::formats::calls::known(graph, name) {
        return id;
    }
    made.push(NodeSpec::new(
        name,
        Layer::Service,
        Category::Compute,
        "service",
    ));
    name.to_string()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn sample(t: i64, client: &str, server: &str, value: f64) -> SampleRef<'static> {
        SampleRef {
            timestamp_ms: t,
            entity: Cow::Owned("otel-collector".into()),
            host: None,
            workload: None,
            metric: Cow::Borrowed(REQUEST_TOTAL),
            value,
            labels: vec![
                (Cow::Borrowed("client"), Cow::Owned(client.into())),
                (Cow::Borrowed("server"), Cow::Owned(server.into())),
                (Cow::Borrowed("connection_type"), Cow::Borrowed("")),
            ],
        }
    }

    #[test]
    fn counters_become_weighted_call_edges_with_few_versions() {
        let mut graph = LandscapeGraph::new();
        let mut deriver = ServiceGraphDeriver::default();
        let mut events = Vec::new();
        // 10 req/s for 10 minutes, one reading every 15 s.
        for i in 0..40 {
            let mut out = Vec::new();
            deriver.observe(
                &sample(i * 15_000, "frontend", "cart", (i * 150) as f64),
                &graph,
                &mut out,
            );
            graph.apply_all(&out).expect("applies");
            events.extend(out);
        }
        // Two service nodes and the edge, then its first rate (with the nodes again, so
        // that message stands alone once compaction removed the first): nothing more while
        // it is steady.
        assert_eq!(events.len(), 6, "{events:#?}");
        let edge = graph
            .edge("frontend", Relation::Calls, "cart")
            .expect("edge");
        assert_eq!(edge.version_at(i64::MAX).weight, Some(10.0));
        // Traffic triples: one new version, after the minimum interval.
        let mut out = Vec::new();
        deriver.observe(
            &sample(40 * 15_000, "frontend", "cart", 5_850.0 + 450.0),
            &graph,
            &mut out,
        );
        graph.apply_all(&out).expect("applies");
        assert_eq!(out.len(), 3, "{out:?}");
        let edge = graph
            .edge("frontend", Relation::Calls, "cart")
            .expect("edge");
        assert_eq!(edge.version_at(i64::MAX).weight, Some(30.0));
    }

    #[test]
    fn resets_replays_and_other_metrics_do_no_harm() {
        let graph = LandscapeGraph::new();
        let mut deriver = ServiceGraphDeriver::new(ServiceGraphOptions {
            min_relative_change: 0.0,
            min_interval_ms: 0,
        });
        let mut out = Vec::new();
        deriver.observe(&sample(0, "a", "b", 100.0), &graph, &mut out);
        out.clear();
        // Reset to 20 after 10 s: 2 req/s, never negative.
        deriver.observe(&sample(10_000, "a", "b", 20.0), &graph, &mut out);
        let Some(LandscapeEvent::EdgeUp { edge, .. }) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(edge.weight, Some(2.0));
        out.clear();
        // An older reading, a self-call, a missing label, another metric: nothing.
        deriver.observe(&sample(5_000, "a", "b", 50.0), &graph, &mut out);
        deriver.observe(&sample(20_000, "a", "a", 50.0), &graph, &mut out);
        let mut unlabelled = sample(20_000, "a", "c", 1.0);
        unlabelled.labels.retain(|(k, _)| k != "server");
        deriver.observe(&unlabelled, &graph, &mut out);
        let mut other = sample(20_000, "a", "c", 1.0);
        other.metric = Cow::Borrowed("traces_service_graph_request_failed_total");
        deriver.observe(&other, &graph, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert!(is_request_total(
            "prometheus_traces_service_graph_request_total"
        ));
        assert!(is_request_total(
            "traces_service_graph_request_total_counter"
        ));
    }

    #[test]
    fn two_collectors_add_up_and_a_known_edge_keeps_its_weight() {
        let mut graph = LandscapeGraph::new();
        for id in ["a", "b"] {
            graph
                .apply_event(&LandscapeEvent::NodeUp {
                    timestamp_ms: 0,
                    node: NodeSpec::new(id, Layer::Service, Category::Compute, "service"),
                })
                .expect("node");
        }
        let mut known = EdgeSpec::new("a", Relation::Calls, "b");
        known.weight = Some(7.0);
        graph
            .apply_event(&LandscapeEvent::EdgeUp {
                timestamp_ms: 0,
                edge: known,
            })
            .expect("edge");
        let mut deriver = ServiceGraphDeriver::default();
        let mut out = Vec::new();
        let from = |entity: &'static str, t: i64, value: f64| {
            let mut s = sample(t, "a", "b", value);
            s.entity = Cow::Borrowed(entity);
            s
        };
        // First readings of two collectors: no weightless version over the known weight.
        deriver.observe(&from("collector-1", 1_000, 0.0), &graph, &mut out);
        deriver.observe(&from("collector-2", 1_000, 5_000.0), &graph, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // 3 req/s and 1 req/s: the pair calls 4 times a second, not a reset per reading.
        deriver.observe(&from("collector-1", 11_000, 30.0), &graph, &mut out);
        deriver.observe(&from("collector-2", 11_000, 5_010.0), &graph, &mut out);
        graph.apply_all(&out).expect("applies");
        let edge = graph.edge("a", Relation::Calls, "b").expect("edge");
        assert_eq!(
            edge.version_at(i64::MAX).weight,
            Some(3.0),
            "the first rate"
        );
        out.clear();
        deriver.observe(&from("collector-1", 41_000, 120.0), &graph, &mut out);
        deriver.observe(&from("collector-2", 41_000, 5_040.0), &graph, &mut out);
        graph.apply_all(&out).expect("applies");
        let edge = graph.edge("a", Relation::Calls, "b").expect("edge");
        assert_eq!(edge.version_at(i64::MAX).weight, Some(4.0), "{out:?}");
    }

    #[test]
    fn names_resolve_to_the_services_the_landscape_has() {
        let mut graph = LandscapeGraph::new();
        let mut svc = NodeSpec::new(
            "shop/service/cart",
            Layer::Service,
            Category::Compute,
            "service",
        );
        svc.name = Some("cart".into());
        svc.aliases = vec!["cart.shop".into()];
        graph
            .apply_event(&LandscapeEvent::NodeUp {
                timestamp_ms: 0,
                node: svc,
            })
            .expect("applies");
        let mut deriver = ServiceGraphDeriver::default();
        let mut out = Vec::new();
        deriver.observe(&sample(1, "frontend", "cart.shop", 1.0), &graph, &mut out);
        graph.apply_all(&out).expect("applies");
        assert!(graph
            .edge("frontend", Relation::Calls, "shop/service/cart")
            .is_some());
        assert_eq!(
            out.len(),
            2,
            "one new node (frontend) and the edge: {out:?}"
        );
        // Readings from before the service existed say nothing the graph can record.
        let mut fresh = ServiceGraphDeriver::default();
        let mut before = Vec::new();
        let mut old = sample(-5_000, "frontend", "cart.shop", 1.0);
        old.labels[0].1 = Cow::Borrowed("checkout");
        fresh.observe(&old, &graph, &mut before);
        assert!(before.is_empty(), "{before:?}");
    }
}
