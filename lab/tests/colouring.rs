//! Colouring and root-cause ranking: the graph tells the cause from its victims on small
//! hand-made landscapes; bad input is reported, never panicked on; the bundled Nezha
//! sample (real Online Boutique metrics) loads and is judged.

use std::path::PathBuf;

use dcpilot_lab::datasets::{native, nezha};
use dcpilot_lab::rca;
use dcpilot_landscape::LandscapeGraph;
use dcpilot_pipelines::colouring::detect::{self, Calibrated};
use dcpilot_pipelines::colouring::{colour, Colouring, RankParams, Telemetry, Window};
use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};

/// The fault starts at minute 62 of 70.
const AT: i64 = 62 * 60;

fn graph(nodes: &[(&str, Layer, &str)], edges: &[(&str, Relation, &str)]) -> LandscapeGraph {
    let mut g = LandscapeGraph::new();
    let mut events: Vec<LandscapeEvent> = nodes
        .iter()
        .map(|(id, layer, ty)| LandscapeEvent::NodeUp {
            timestamp_ms: 0,
            node: NodeSpec::new(*id, *layer, Category::Compute, ty),
        })
        .collect();
    events.extend(edges.iter().map(|(s, r, d)| LandscapeEvent::EdgeUp {
        timestamp_ms: 0,
        edge: EdgeSpec::new(*s, *r, *d),
    }));
    g.apply_all(&events).expect("a valid landscape");
    g
}

/// 70 minutes of a metric around `level` with a little deterministic noise; from minute
/// 62 on, `level × factor`.
fn series(telemetry: &mut Telemetry, entity: &str, metric: &str, level: f64, factor: f64) {
    for minute in 0..70i64 {
        let noise = 1.0 + 0.02 * ((minute * 7 + entity.len() as i64) % 5 - 2) as f64;
        let f = if minute >= 62 { factor } else { 1.0 };
        telemetry.push(entity, metric, minute * 60, level * noise * f);
    }
}

fn run(telemetry: &mut Telemetry, g: &LandscapeGraph) -> Colouring {
    telemetry.sort();
    colour(
        telemetry,
        g,
        AT,
        &Calibrated,
        &Window::default(),
        &RankParams::default(),
    )
}

fn order(c: &Colouring) -> Vec<&str> {
    c.ranking.iter().map(|c| c.entity.as_str()).collect()
}

#[test]
fn a_slow_callee_ranks_above_the_callers_that_suffer_from_it() {
    // front → cart → db; db's CPU is burnt, everyone's latency rises, the callers' more.
    let g = graph(
        &[
            ("front", Layer::Service, "service"),
            ("cart", Layer::Service, "service"),
            ("db", Layer::Service, "service"),
            ("mail", Layer::Service, "service"),
        ],
        &[
            ("front", Relation::Calls, "cart"),
            ("cart", Relation::Calls, "db"),
            ("front", Relation::Calls, "mail"),
        ],
    );
    let mut t = Telemetry::default();
    series(&mut t, "db", "cpu", 100.0, 3.0);
    series(&mut t, "db", "latency_p99", 0.010, 4.0);
    series(&mut t, "cart", "cpu", 50.0, 1.0);
    series(&mut t, "cart", "latency_p99", 0.020, 6.0);
    series(&mut t, "front", "cpu", 80.0, 1.0);
    series(&mut t, "front", "latency_p99", 0.050, 8.0);
    series(&mut t, "mail", "cpu", 20.0, 1.0);
    series(&mut t, "mail", "latency_p99", 0.005, 1.0);
    let c = run(&mut t, &g);
    assert_eq!(order(&c)[..3], ["db", "cart", "front"], "{c:#?}");
    let db = &c.ranking[0];
    assert!(db.evidence.explained_by.is_none(), "{db:?}");
    assert_eq!(db.evidence.explains.len(), 1, "{db:?}");
    assert_eq!(db.evidence.explains[0].from, "cart");
    assert_eq!(db.evidence.explains[0].relation, Relation::Calls);
    assert!(
        db.evidence.metrics.iter().any(|m| m.metric == "cpu"),
        "{db:?}"
    );
    let cart = &c.ranking[1];
    let by = cart
        .evidence
        .explained_by
        .as_ref()
        .expect("cart is a victim");
    assert_eq!((by.from.as_str(), by.to.as_str()), ("cart", "db"));
    // Without the graph the victims' bigger latency jumps would win.
    let flat = run(&mut t, &LandscapeGraph::new());
    assert_ne!(order(&flat)[0], "db", "{:?}", order(&flat));
    assert!(c.entities.iter().all(|e| e.node.is_some()));
    assert!(c
        .entities
        .iter()
        .find(|e| e.entity == "mail")
        .is_some_and(|e| !e.anomalous));
    assert!(c
        .entities
        .iter()
        .find(|e| e.entity == "db")
        .is_some_and(|e| e.anomalous));
}

#[test]
fn pods_that_all_suffer_point_at_their_host() {
    let g = graph(
        &[
            ("host-1", Layer::Physical, "host"),
            ("host-2", Layer::Physical, "host"),
            ("pod-a", Layer::Virtual, "pod"),
            ("pod-b", Layer::Virtual, "pod"),
            ("pod-c", Layer::Virtual, "pod"),
            ("pod-quiet", Layer::Virtual, "pod"),
        ],
        &[
            ("pod-a", Relation::RunsOn, "host-1"),
            ("pod-b", Relation::RunsOn, "host-1"),
            ("pod-c", Relation::RunsOn, "host-2"),
            ("pod-quiet", Relation::RunsOn, "host-1"),
        ],
    );
    let mut t = Telemetry::default();
    series(&mut t, "host-1", "cpu_steal", 5.0, 6.0);
    series(&mut t, "host-2", "cpu_steal", 5.0, 1.0);
    for pod in ["pod-a", "pod-b"] {
        series(&mut t, pod, "request_latency", 0.1, 5.0);
    }
    series(&mut t, "pod-c", "request_latency", 0.1, 1.0);
    // A pod that never moves scores far below 0: it must not pull its host down.
    for minute in 0..70 {
        t.push("pod-quiet", "request_latency", minute * 60, 0.1);
    }
    let c = run(&mut t, &g);
    assert_eq!(order(&c)[0], "host-1", "{c:#?}");
    let host = &c.ranking[0];
    let mut victims: Vec<&str> = host
        .evidence
        .explains
        .iter()
        .map(|l| l.from.as_str())
        .collect();
    victims.sort_unstable();
    assert_eq!(victims, ["pod-a", "pod-b"], "{host:?}");
    assert!(host.score >= host.evidence.own, "{host:?}");
    assert_eq!(host.layer, Some(Layer::Physical));
    for pod in &c.ranking[1..3] {
        let by = pod
            .evidence
            .explained_by
            .as_ref()
            .expect("explained by the host");
        assert_eq!(
            (by.relation, by.to.as_str()),
            (Relation::RunsOn, "host-1"),
            "{pod:?}"
        );
    }
}

#[test]
fn bad_input_is_reported_and_never_panics() {
    let g = graph(&[("svc", Layer::Service, "service")], &[]);
    let mut t = Telemetry::default();
    series(&mut t, "svc", "cpu", 10.0, 1.0);
    // Constant, empty of finite values, gappy, and outside the landscape.
    series(&mut t, "svc", "constant", 0.0, 1.0);
    for minute in 0..70 {
        t.push(
            "broken",
            "cpu",
            minute * 60,
            if minute % 2 == 0 {
                f64::NAN
            } else {
                f64::INFINITY
            },
        );
        if minute % 3 != 0 {
            t.push(
                "gappy",
                "cpu",
                minute * 60,
                10.0 + if minute >= 62 { 90.0 } else { 0.0 },
            );
        }
    }
    t.push("new", "cpu", AT, 5.0);
    let c = run(&mut t, &g);
    let problems = c.problems.join("\n");
    assert!(
        problems.contains("no finite telemetry") && problems.contains("broken"),
        "{problems}"
    );
    assert!(
        problems.contains("new"),
        "an entity with no history is named: {problems}"
    );
    assert!(
        problems.contains("not in the landscape") && problems.contains("gappy"),
        "{problems}"
    );
    assert_eq!(order(&c)[0], "gappy", "{c:#?}");
    assert!(c.ranking.iter().all(|r| r.score.is_finite()));
    for d in detect::registry() {
        let c = colour(
            &t,
            &g,
            AT,
            d.as_ref(),
            &Window::default(),
            &RankParams::default(),
        );
        assert!(
            c.ranking.iter().all(|r| r.score.is_finite()),
            "{}",
            d.name()
        );
    }
    // Any moment a user types is answered, however far from the data.
    for at in [i64::MIN, -1, i64::MAX] {
        let far = colour(
            &t,
            &g,
            at,
            &Calibrated,
            &Window::default(),
            &RankParams::default(),
        );
        assert!(far.ranking.is_empty(), "{far:?}");
    }
    let empty = run(&mut Telemetry::default(), &LandscapeGraph::new());
    assert!(empty.ranking.is_empty() && empty.problems.is_empty());
}

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/nezha/online-boutique/sample")
}

#[test]
fn the_real_sample_loads_and_its_cpu_faults_rank_first() {
    let trace = nezha::load(&sample()).expect("loads");
    assert_eq!(
        trace
            .telemetry
            .entities
            .keys()
            .filter(|e| !e.contains('.'))
            .count(),
        10
    );
    // Nodes are placed by dependency.csv: their Node* columns are theirs.
    assert!(trace
        .telemetry
        .entities
        .keys()
        .any(|e| e.starts_with("33.33.33.")));
    assert_eq!(trace.faults.len(), 4, "{:?}", trace.problems);
    let e = rca::evaluate(
        &trace,
        &Calibrated,
        &Window::default(),
        &RankParams::default(),
    );
    assert_eq!(e.services, 10);
    for f in e
        .per_fault
        .iter()
        .filter(|f| f.fault.kind == "cpu_contention")
    {
        assert_eq!(f.rank, Some(1), "{f:?}");
    }
    assert!(e.method.ac1 >= 0.5, "{:?}", e.method);
    assert!(e.method.ac1 > e.baselines["random"].ac1);
    assert!((e.baselines["random"].ac1 - 0.1).abs() < 1e-9);
    for a in std::iter::once(&e.method).chain(e.baselines.values()) {
        assert!(
            a.ac1 <= a.ac3 && a.ac3 <= a.ac5 && (0.0..=1.0).contains(&a.avg5),
            "{a:?}"
        );
    }
}

#[test]
fn unknown_pods_in_labels_and_unreadable_rows_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metric = dir.path().join("metric");
    std::fs::create_dir(&metric).expect("mkdir");
    let pod = "cartservice-579f59597d-wc2lz_metric.csv";
    let text = std::fs::read_to_string(sample().join("metric").join(pod)).expect("sample");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(3, "not a time,1,cartservice-579f59597d-wc2lz,1,2");
    std::fs::write(metric.join(pod), lines.join("\n")).expect("write");
    std::fs::write(
        dir.path().join("fault_list.json"),
        r#"{"04": [
            {"inject_time": "2022-08-22 04:36:03", "inject_timestamp": "1661142963",
             "inject_pod": "cartservice-579f59597d-wc2lz", "inject_type": "cpu_contention"},
            {"inject_time": "2022-08-22 04:40:00", "inject_pod": "ghost-1-2", "inject_type": "return"},
            {"inject_pod": "cartservice-579f59597d-wc2lz"}
        ]}"#,
    )
    .expect("write");
    let trace = nezha::load(dir.path()).expect("loads");
    let problems = trace.problems.join("\n");
    assert_eq!(trace.faults.len(), 1, "{problems}");
    assert!(problems.contains("ghost-1-2"), "{problems}");
    assert!(problems.contains("no readable inject_time"), "{problems}");
    assert!(
        problems.contains("1 rows without a readable Time"),
        "{problems}"
    );
    assert!(problems.contains("ranked without a graph"), "{problems}");
    let e = rca::evaluate(
        &trace,
        &Calibrated,
        &Window::default(),
        &RankParams::default(),
    );
    assert_eq!(e.per_fault[0].rank, Some(1));

    std::fs::write(
        dir.path().join("fault_list.json"),
        "{\"04\": [{\"inject_time\": 3}]}",
    )
    .expect("write");
    let err = nezha::load(dir.path()).expect_err("refused").to_string();
    assert!(
        err.contains("fault_list.json") && err.contains("04"),
        "{err}"
    );
    let err = nezha::load(&dir.path().join("missing"))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("missing"), "{err}");
}

/// The calibrating detector without its cheap bound: every metric scored in full.
struct Unbounded;

impl detect::Detector for Unbounded {
    fn name(&self) -> &'static str {
        detect::Detector::name(&Calibrated)
    }
    fn score(
        &self,
        points: &detect::Points,
        at: i64,
        window: &Window,
    ) -> Option<detect::MetricScore> {
        detect::Detector::score(&Calibrated, points, at, window)
    }
}

#[test]
fn skipping_metrics_by_their_bound_changes_nothing() {
    let trace = nezha::load(&sample()).expect("loads");
    let (w, p) = (Window::default(), RankParams::default());
    for at in (1_661_142_000..1_661_144_000).step_by(420) {
        let fast = colour(&trace.telemetry, &trace.graph, at, &Calibrated, &w, &p);
        let full = colour(&trace.telemetry, &trace.graph, at, &Unbounded, &w, &p);
        assert_eq!(fast, full, "at {at}");
        assert!(!fast.ranking.is_empty());
    }
}

#[test]
fn a_host_takes_the_colour_of_the_switch_it_hangs_off() {
    // h1 → nic1 → sw1 (sw1 drops packets); h2 → sw2 (quiet). Hosts are quiet themselves.
    let g = graph(
        &[
            ("h1", Layer::Physical, "host"),
            ("h2", Layer::Physical, "host"),
            ("nic1", Layer::Physical, "nic"),
            ("sw1", Layer::Physical, "switch"),
            ("sw2", Layer::Physical, "switch"),
        ],
        &[
            ("h1", Relation::Contains, "nic1"),
            ("nic1", Relation::Connects, "sw1"),
            ("h2", Relation::Connects, "sw2"),
        ],
    );
    let mut t = Telemetry::default();
    series(&mut t, "h1", "cpu", 40.0, 1.0);
    series(&mut t, "h2", "cpu", 40.0, 1.0);
    series(&mut t, "sw1", "drops", 10.0, 20.0);
    series(&mut t, "sw2", "drops", 10.0, 1.0);
    let c = run(&mut t, &g);
    let h1 = c.host("h1").expect("h1 coloured");
    assert_eq!(h1.via, "sw1", "{h1:?}");
    assert!(h1.anomalous, "{h1:?}");
    let h2 = c.host("h2").expect("h2 coloured");
    assert!(!h2.anomalous, "{h2:?}");
    assert_eq!(c.hosts[0].host, "h1", "most abnormal first: {:?}", c.hosts);
}

#[test]
fn a_colouring_with_unrepresentable_numbers_is_made_storable() {
    let g = graph(&[("a", Layer::Service, "service")], &[]);
    let mut t = Telemetry::default();
    series(&mut t, "a", "latency", 1.0, 5.0);
    let mut c = run(&mut t, &g);
    c.entities[0].score = f64::INFINITY;
    c.entities[0].evidence[0].score.deviation = f64::NAN;
    c.ranking[0].score = f64::NEG_INFINITY;
    assert_eq!(c.make_storable(), 3);
    assert_eq!(c.entities[0].score, f64::MAX);
    assert_eq!(c.entities[0].evidence[0].score.deviation, 0.0);
    let text = serde_json::to_string(&c).expect("serialise");
    let back: Colouring = serde_json::from_str(&text).expect("round trip");
    assert_eq!(back, c);
}

#[test]
fn a_trace_written_in_the_native_format_judges_the_same() {
    let trace = nezha::load(&sample()).expect("loads");
    let dir = tempfile::tempdir().expect("tempdir");
    native::write(&trace, dir.path()).expect("write");
    assert!(native::is_native(dir.path()));
    let back = native::load(dir.path()).expect("reads back");
    // The same series, gaps (NaN) left out.
    let finite = |t: &Telemetry| {
        let mut t = t.clone();
        for points in t.entities.values_mut().flat_map(|m| m.values_mut()) {
            points.retain(|p| p.1.is_finite());
        }
        t.entities
    };
    assert_eq!(finite(&back.telemetry), finite(&trace.telemetry));
    assert_eq!(back.graph.node_count(), trace.graph.node_count());
    assert_eq!(back.graph.edge_count(), trace.graph.edge_count());
    assert_eq!(back.faults.len(), trace.faults.len());
    let judge = |t: &nezha::TraceDir| {
        let e = rca::evaluate(t, &Calibrated, &Window::default(), &RankParams::default());
        (
            e.method,
            e.per_fault.iter().map(|f| f.rank).collect::<Vec<_>>(),
        )
    };
    assert_eq!(judge(&back), judge(&trace));

    // A label naming an entity without telemetry is reported and left out.
    std::fs::write(
        dir.path().join(native::FAULTS_FILE),
        r#"[{"at": 100, "entity": "nobody", "kind": "cpu"}]"#,
    )
    .expect("write labels");
    let odd = native::load(dir.path()).expect("reads");
    assert!(odd.faults.is_empty());
    assert!(
        odd.problems.iter().any(|p| p.contains("\"nobody\"")),
        "{:?}",
        odd.problems
    );
    // A malformed labels file is an error naming the file.
    std::fs::write(dir.path().join(native::FAULTS_FILE), "[{\"at\": \"soon\"}]").expect("write");
    let err = native::load(dir.path()).expect_err("malformed").to_string();
    assert!(err.contains("faults.json"), "{err}");
}

#[test]
fn slow_calls_with_no_slow_callee_point_at_the_callee_both_callers_share() {
    // a → c, b → c, a → d: a's and b's calls get slow; c fails quietly (an exception
    // fault: its own metrics do not move). Blame for slow calls goes down to what is
    // called, shared by call weight: c collects from both callers, d from one.
    let g = graph(
        &[
            ("a", Layer::Service, "service"),
            ("b", Layer::Service, "service"),
            ("c", Layer::Service, "service"),
            ("d", Layer::Service, "service"),
        ],
        &[
            ("a", Relation::Calls, "c"),
            ("b", Relation::Calls, "c"),
            ("a", Relation::Calls, "d"),
        ],
    );
    let mut t = Telemetry::default();
    series(&mut t, "a", "PodClientLatencyP99(s)", 0.01, 20.0);
    series(&mut t, "b", "PodClientLatencyP99(s)", 0.01, 20.0);
    for e in ["a", "b", "c", "d"] {
        series(&mut t, e, "CpuUsage(m)", 50.0, 1.0);
    }
    // A traffic surge on d is context (its callers' doing), not evidence against it.
    series(&mut t, "d", "NetworkReceiveBytes", 1000.0, 5.0);
    let c = run(&mut t, &g);
    assert_eq!(order(&c)[0], "c", "{:#?}", c.ranking);
    let rank = |e: &str| order(&c).iter().position(|x| *x == e).expect("ranked");
    assert!(
        rank("c") < rank("d") && rank("d") < rank("a"),
        "{:?}",
        order(&c)
    );
}

#[test]
fn metric_roles_come_from_their_names() {
    use dcpilot_pipelines::colouring::Role;
    for (metric, role) in [
        ("PodServerLatencyP99(s)", Role::Symptom),
        (
            "CallLatencyP50(s) from frontend, caller side",
            Role::Symptom,
        ),
        ("PodClientLatencyP90(s)", Role::Downstream),
        ("client_latency_ms", Role::Downstream),
        ("NetworkReceiveBytes", Role::Context),
        ("PodWorkload(Ops)", Role::Context),
        ("CpuUsageRate(%)", Role::Own),
        ("drops", Role::Own),
    ] {
        assert_eq!(Role::of(metric), role, "{metric}");
    }
}

#[test]
fn slow_calls_are_shared_by_call_weight() {
    // a calls c three times as often as d; only a's calls get slow.
    let mut g = graph(
        &[
            ("a", Layer::Service, "service"),
            ("c", Layer::Service, "service"),
            ("d", Layer::Service, "service"),
        ],
        &[],
    );
    for (callee, weight) in [("c", 3.0), ("d", 1.0)] {
        let mut edge = EdgeSpec::new("a", Relation::Calls, callee);
        edge.weight = Some(weight);
        g.upsert_edge(0, &edge).expect("edge");
    }
    let mut t = Telemetry::default();
    series(&mut t, "a", "PodClientLatencyP99(s)", 0.01, 20.0);
    for e in ["c", "d"] {
        series(&mut t, e, "CpuUsage(m)", 50.0, 1.0);
    }
    let c = run(&mut t, &g);
    let of = |e: &str| c.ranking.iter().find(|x| x.entity == e).expect("ranked");
    let (to_c, to_d) = (of("c").evidence.downstream, of("d").evidence.downstream);
    assert!(
        (to_c - 3.0 * to_d).abs() < 1e-9 * to_c.abs().max(1.0),
        "{to_c} vs {to_d}"
    );
    assert_eq!(order(&c)[0], "c", "{:?}", order(&c));
    assert_eq!(of("c").evidence.blamed_by[0].from, "a");
}
