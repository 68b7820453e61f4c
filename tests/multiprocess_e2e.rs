//! Both loops as separate processes on a standalone Kafka-compatible broker (nisshi,
//! installed by `deploy/install-broker.sh`, which `scripts/setup.sh` runs): a replay
//! reaches the background, a model is published to `dcpilot.models`, the foreground
//! replica's placement answers name it; the background is SIGKILLed and restarted, more
//! data arrives, a newer version reaches the answers; no sample is lost or doubled; and
//! every placement asked meanwhile was answered within its budget.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    dcpilot_command, eventually, http, replay_vms, start_nisshi_with_topics, wait_for_file,
    KillOnDrop,
};

fn start_background(dir: &Path, config: &Path) -> KillOnDrop {
    KillOnDrop(
        dcpilot_command(&dir.join("background"), &["background", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the background"),
    )
}

fn rightsizing_version(answer: &serde_json::Value) -> Option<u64> {
    answer["models"]["rightsizing"].as_u64()
}

#[test]
fn separate_processes_survive_a_killed_background() {
    let (_broker, brokers) = start_nisshi_with_topics();

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("background.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"e2e-background\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [jobs]\nonly = [\"rightsizing\"]\npoll_ms = 200\n\
             [jobs.triggers]\nrightsizing = {{ after_rows = 30000 }}\n"
        ),
    )
    .expect("write config");
    let landscape = dir.path().join("landscape.json");
    std::fs::write(
        &landscape,
        r#"{"hosts":[{"name":"a","cores":16,"memory_bytes":68719476736},{"name":"b","cores":16,"memory_bytes":68719476736}]}"#,
    )
    .expect("write landscape");

    let mut background = start_background(dir.path(), &config);
    let fg_dir = dir.path().join("foreground");
    let _foreground = KillOnDrop(
        dcpilot_command(
            &fg_dir,
            &[
                "foreground",
                "--listen",
                "127.0.0.1:0",
                "--brokers",
                &brokers,
                "--landscape",
            ],
        )
        .arg(&landscape)
        .stderr(Stdio::null())
        .spawn()
        .expect("start the foreground"),
    );
    let addr = wait_for_file(&fg_dir.join("foreground.addr"));

    // A placement engine asking all along; every answer recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::<(u16, serde_json::Value)>::new()));
    let engine = {
        let (stop, answers, addr) = (Arc::clone(&stop), Arc::clone(&answers), addr.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let a = http(
                    &addr,
                    "POST",
                    "/v1/placements",
                    r#"{"workload":"vm-1","cores":1,"memory_bytes":1}"#,
                );
                answers.lock().expect("lock").push(a);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let latest_version = || {
        answers
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|(_, a)| rightsizing_version(a))
            .max()
    };

    let mut replayed = replay_vms(dir.path(), &brokers, &["1", "9", "17", "25"]);
    let first = eventually(
        180,
        "a published model in a placement answer",
        latest_version,
    );

    // SIGKILL (Child::kill) mid-life, restart on the same data directory and group.
    let _ = background.0.kill();
    let _ = background.0.wait();
    let _background = start_background(dir.path(), &config);
    replayed += replay_vms(dir.path(), &brokers, &["33", "41", "49", "57"]);
    let second = eventually(180, "a newer model version after the restart", || {
        latest_version().filter(|v| *v > first)
    });
    assert!(second > first);

    // No sample lost or doubled: the table holds exactly what was replayed.
    let count = eventually(120, "every sample in the table", || {
        let out = dcpilot_command(
            &dir.path().join("background"),
            &["query", "--json", "SELECT count(*) AS n FROM telemetry"],
        )
        .output()
        .ok()?;
        let row: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let n = row["n"].as_u64()?;
        (n >= replayed).then_some(n)
    });
    assert_eq!(count, replayed, "no sample lost, none doubled");

    stop.store(true, Ordering::Relaxed);
    engine.join().expect("engine");
    let answers = answers.lock().expect("lock");
    println!(
        "rightsizing v{first} before the kill, v{second} after; {count} samples stored of {replayed} replayed; {} placements answered",
        answers.len()
    );
    assert!(answers.len() > 10, "the engine kept asking");
    for (status, a) in answers.iter() {
        assert_eq!(*status, 200, "{a}");
        let (used, budget) = (
            a["used_ms"].as_f64().expect("used"),
            a["budget_ms"].as_f64().expect("budget"),
        );
        assert!(used <= budget, "answered over budget: {a}");
    }
}
