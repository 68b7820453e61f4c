//! `dcpilot simulate`: a synthetic landscape and its telemetry at scale, for load tests and
//! benchmarks. Hosts and instances go to the landscape topic as `dcpilot.landscape` events
//! (instance profiles in `dcpilot.io/` labels); per-instance CPU use and per-host busy
//! cores go to the telemetry topic at the requested rate, paced by event time.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::{Context, LabError, Result};
use dcpilot_background::ingest::client_config;
use dcpilot_background::replay::{replay, send_waiting, ReplayKey, ReplayOptions};
use dcpilot_background::BackgroundConfig;
use dcpilot_schemas::{LandscapeEvent, TelemetrySample};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;

/// Options of `dcpilot simulate`.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Hosts.
    pub hosts: usize,
    /// Workloads (each with `replicas` instances).
    pub workloads: usize,
    /// Instances per workload.
    pub replicas: usize,
    /// Telemetry samples per second.
    pub rate: f64,
    /// How long to send telemetry, seconds.
    pub duration_secs: f64,
    /// Bootstrap servers; default: the configuration's, else the embedded broker of a
    /// running `dcpilot background` in the data directory.
    pub brokers: Option<String>,
    /// The background's configuration: topics and `[kafka.client]` (security, compression).
    pub config: BackgroundConfig,
    /// Seed of the synthetic landscape and values.
    pub seed: u64,
    /// Print the summary as JSON.
    pub json: bool,
}

/// Runs the simulation.
pub fn run(data_dir: &Path, args: SimulateOptions) -> Result<()> {
    if args.hosts == 0 || args.workloads == 0 || args.replicas == 0 {
        return Err(LabError::Invalid(
            "--hosts, --workloads and --replicas must be at least 1".into(),
        ));
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(LabError::Invalid(format!(
            "--rate must be a positive number of samples per second, got {}",
            args.rate
        )));
    }
    if !(args.duration_secs.is_finite()
        && args.duration_secs > 0.0
        && args.duration_secs <= 86_400.0)
    {
        return Err(LabError::Invalid(format!(
            "--duration-secs must be in (0, 86400], got {}",
            args.duration_secs
        )));
    }
    let samples_total = (args.rate * args.duration_secs).round() as u64;
    if samples_total > 50_000_000 {
        return Err(LabError::Invalid(format!("{samples_total} samples is more than one run holds in memory (50 M): lower --rate or --duration-secs")));
    }
    let config = args.config;
    let brokers = crate::replay::brokers(args.brokers, &config.kafka, data_dir)?;
    let k = &config.kafka;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let now = dcpilot_info_core::now_ms();

    // The landscape: hosts of 32 or 64 cores; instances round-robin with a profile mix:
    // a fifth latency-critical, a fifth noisy neighbours, the rest batch.
    let producer: BaseProducer = client_config(k, &brokers)
        .set("linger.ms", "5")
        .create()
        .context("creating a producer")?;
    let host = |i: usize| format!("sim-host-{i}");
    let mut host_cores = Vec::with_capacity(args.hosts);
    let mut events = 0u64;
    for i in 0..args.hosts {
        let cores = if rng.random_bool(0.5) { 32.0 } else { 64.0 };
        host_cores.push(cores);
        let event = LandscapeEvent::HostUp {
            timestamp_ms: now,
            host: host(i),
            cores,
            memory_bytes: (cores as u64) << 32,
            features: Default::default(),
            labels: Default::default(),
        };
        send_waiting(
            &producer,
            BaseRecord::<str, str>::to(&k.landscape_topic)
                .key(&host(i))
                .payload(&serde_json::to_string(&event)?),
        )?;
        events += 1;
    }
    struct Sim {
        id: String,
        workload: String,
        host: usize,
        cores: f64,
    }
    let mut instances = Vec::with_capacity(args.workloads * args.replicas);
    for w in 0..args.workloads {
        let kind = w % 5;
        let cores = f64::from(rng.random_range(1..=8u32));
        for r in 0..args.replicas {
            let id = format!("sim-w{w}-{r}");
            let h = (w * args.replicas + r) % args.hosts;
            let label = |pairs: &[(&str, String)]| -> BTreeMap<String, String> {
                pairs
                    .iter()
                    .map(|(k, v)| (format!("dcpilot.io/{k}"), v.clone()))
                    .collect()
            };
            let labels = match kind {
                0 => label(&[
                    ("latency-critical", "true".into()),
                    ("rps", "500".into()),
                    ("quiet-p99-ms", "2".into()),
                ]),
                1 => label(&[("pressure-l3", rng.random_range(1..=4u32).to_string())]),
                2 => label(&[
                    ("pressure-membw", rng.random_range(1..=4u32).to_string()),
                    ("evictable", "true".into()),
                ]),
                _ => BTreeMap::new(),
            };
            let event = LandscapeEvent::InstancePlaced {
                timestamp_ms: now,
                instance: id.clone(),
                workload: format!("sim-w{w}"),
                host: host(h),
                cpu_request: cores,
                memory_request_bytes: (cores as u64) << 30,
                labels,
            };
            send_waiting(
                &producer,
                BaseRecord::<str, str>::to(&k.landscape_topic)
                    .key(&id)
                    .payload(&serde_json::to_string(&event)?),
            )?;
            events += 1;
            instances.push(Sim {
                id,
                workload: format!("sim-w{w}"),
                host: h,
                cores,
            });
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing landscape events")?;

    // Telemetry: instance CPU use around 60% of its request, then each host's busy cores;
    // event times spaced 1/rate apart, so pacing by event time gives the rate.
    let mut samples = Vec::with_capacity(samples_total as usize);
    let per_round = instances.len() + args.hosts;
    let mut round_use = vec![0.0; args.hosts];
    for n in 0..samples_total {
        let ts = now + (n as f64 * 1000.0 / args.rate) as i64;
        let slot = (n as usize) % per_round;
        if slot < instances.len() {
            let inst = &instances[slot];
            let used = inst.cores * rng.random_range(0.3..0.9);
            round_use[inst.host] += used;
            samples.push(TelemetrySample {
                timestamp_ms: ts,
                entity: inst.id.clone(),
                host: Some(host(inst.host)),
                workload: Some(inst.workload.clone()),
                metric: "cpu_usage_cores".into(),
                value: used,
                labels: Default::default(),
            });
        } else {
            let h = slot - instances.len();
            samples.push(TelemetrySample {
                timestamp_ms: ts,
                entity: host(h),
                host: Some(host(h)),
                workload: None,
                metric: "host_cpu_cores_used".into(),
                value: round_use[h].min(host_cores[h]),
                labels: Default::default(),
            });
            round_use[h] = 0.0;
        }
    }
    let options = ReplayOptions {
        brokers: brokers.clone(),
        topic: k.telemetry_topic.clone(),
        speedup: 1.0,
        key: ReplayKey::Entity,
    };
    let stats = replay(&samples, k, &options, |_, _| {})?;
    let rate = stats.samples as f64 / stats.elapsed.as_secs_f64().max(1e-9);
    if args.json {
        println!(
            "{}",
            json!({"hosts": args.hosts, "instances": instances.len(), "landscape_events": events,
                   "samples": stats.samples, "messages": stats.messages,
                   "seconds": stats.elapsed.as_secs_f64(), "samples_per_second": rate})
        );
    } else {
        eprintln!(
            "simulated {} hosts and {} instances ({events} landscape events), then {} samples in {} messages over {:.1} s ({rate:.0} samples/s) to {brokers}",
            args.hosts,
            instances.len(),
            stats.samples,
            stats.messages,
            stats.elapsed.as_secs_f64()
        );
    }
    Ok(())
}
