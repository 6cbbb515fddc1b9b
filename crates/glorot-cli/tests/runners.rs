//! Many `glorot search run` processes on one results directory: each trial is trained
//! once, even when runners are killed with SIGKILL; `status` shows who trains what.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use crate::support::{Run, Sandbox, read_json, with_data};

/// 2 widths x 3 activations x 2 learning rates = 12 trials of 6 epochs, ~0.1-0.2 s each
/// in a debug build: long enough for kills to land inside trials.
fn grid(out: &str) -> Vec<&str> {
    with_data(&[
        "search",
        "run",
        "--out",
        out,
        "--hidden",
        "128,256",
        "--activation",
        "relu,tanh,sigmoid",
        "--lr",
        "0.05,0.1",
        "--batch-size",
        "4",
        "--epochs",
        "6",
        "--workers",
        "1",
        "--blas-threads",
        "1",
    ])
}

const TRIALS: usize = 12;

/// Records of a results directory (id -> JSON), not counting claims or temporary files.
fn records(dir: &Path) -> BTreeMap<String, Value> {
    let Ok(entries) = std::fs::read_dir(dir.join("trials")) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name
                .strip_suffix(".json")
                .filter(|_| !name.starts_with('.'))?;
            let value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            Some((id.to_owned(), value))
        })
        .collect()
}

/// A record without its timings (the wall times of the trial and of each epoch: the
/// one part that differs between two runs).
fn without_timings(mut record: Value) -> Value {
    record.as_object_mut().unwrap().remove("timings");
    for epoch in record["epochs"].as_array_mut().unwrap() {
        let epoch = epoch.as_object_mut().unwrap();
        epoch.remove("seconds");
        epoch.remove("train_seconds");
    }
    record
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A small deterministic generator (64-bit LCG, Knuth's MMIX constants) for the kill
/// moments.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// One line of the trial log (`GLOROT_TRIAL_LOG`).
#[derive(Debug)]
struct Event {
    start: bool,
    id: String,
    pid: u32,
    ns: u128,
}

fn read_log(path: &Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "log line {l:?}");
            assert!(f[0] == "start" || f[0] == "end", "log line {l:?}");
            Event {
                start: f[0] == "start",
                id: f[1].to_owned(),
                pid: f[2].parse().unwrap(),
                ns: f[3].parse().unwrap(),
            }
        })
        .collect()
}

/// Checks the trial log of runners on one directory, `killed` mapping the pid of each
/// killed runner to the time just before its SIGKILL was sent. A killed runner's trial
/// may start again (it never finished); a finished one never does. Returns how many
/// trials were recorded by a killed runner in the instant between its record and its
/// log line (no `end` line).
#[track_caller]
fn check_trained_once(log: &[Event], ids: &[String], killed: &HashMap<u32, u128>) -> usize {
    let mut unlogged = 0;
    for id in ids {
        let events: Vec<&Event> = log.iter().filter(|e| &e.id == id).collect();
        let ends: Vec<usize> = (0..events.len()).filter(|&i| !events[i].start).collect();
        assert!(
            ends.len() <= 1,
            "{id} was trained to the end {} times: {events:?}",
            ends.len()
        );
        if let Some(&end) = ends.first() {
            assert!(
                events[end + 1..].iter().all(|e| !e.start),
                "{id} started again after it was recorded: {events:?}"
            );
        } else {
            assert!(
                events.iter().all(|e| killed.contains_key(&e.pid)),
                "{id} has no end line though a runner that was not killed started it: {events:?}"
            );
            unlogged += 1;
        }
        let starts: Vec<&Event> = events.iter().copied().filter(|e| e.start).collect();
        assert!(!starts.is_empty(), "{id} was never trained: {events:?}");
        for (i, s) in starts.iter().enumerate() {
            // A start of a runner that lived on ends with its record, by the same runner.
            if !killed.contains_key(&s.pid) {
                assert!(
                    events.iter().any(|e| !e.start && e.pid == s.pid),
                    "{id}: runner {} started it and did not record it: {events:?}",
                    s.pid
                );
            }
            // Never two trainings at once: an earlier start was by a runner already killed.
            for earlier in &starts[..i] {
                let kill = killed.get(&earlier.pid).unwrap_or_else(|| {
                    panic!(
                        "{id}: started by {} and again by {}: {events:?}",
                        earlier.pid, s.pid
                    )
                });
                assert!(
                    *kill < s.ns,
                    "{id}: started by {} while runner {} still trained it: {events:?}",
                    s.pid,
                    earlier.pid
                );
            }
        }
    }
    unlogged
}

#[test]
fn four_runners_with_two_killed_train_every_trial_once() {
    let sb = Sandbox::new();
    // The reference: one runner, uninterrupted.
    sb.run(&grid("straight")).ok();
    let straight = records(&sb.join("straight"));
    assert_eq!(straight.len(), TRIALS);
    let ids: Vec<String> = straight.keys().cloned().collect();

    let dir = sb.join("shared");
    let log = sb.join("trials.log");
    for round in 0..2_u64 {
        // Seeded: which two runners are killed, after how many records, how much later.
        let mut rng = Lcg(0x5eed + round);
        let first = rng.below(4) as usize;
        let second = (first + 1 + rng.below(3) as usize) % 4;
        let mut plan: Vec<(usize, usize, u64)> = [first, second]
            .iter()
            .map(|&r| (r, 1 + rng.below(TRIALS as u64 / 2) as usize, rng.below(150)))
            .collect();
        plan.sort_by_key(|p| p.1);
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_dir_all(&dir);
        let mut children: Vec<Child> = (0..4)
            .map(|_| {
                sb.cmd(&grid("shared"))
                    .env("GLOROT_TRIAL_LOG", &log)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut killed = HashMap::new();
        let clock = Instant::now();
        for &(runner, after, delay_ms) in &plan {
            while records(&dir).len() < after && clock.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(delay_ms));
            let child = &mut children[runner];
            if child.try_wait().unwrap().is_some() {
                continue; // it had already finished: nothing to kill
            }
            let at = now_ns();
            child.kill().expect("SIGKILL is delivered");
            child.wait().unwrap();
            killed.insert(child.id(), at);
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "round {round}: SIGKILL to runner {runner} with {} of {TRIALS} recorded",
                    records(&dir).len()
                );
            }
        }
        for (i, child) in children.into_iter().enumerate() {
            let pid = child.id();
            let out = child.wait_with_output().unwrap();
            if killed.contains_key(&pid) {
                continue;
            }
            // The runners that lived on waited for (or took over) the others' trials:
            // the grid is complete when they exit.
            let r = Run::from(out, &["search", "run", &format!("(runner {i})")]);
            r.ok();
            assert!(
                r.stdout.contains(&format!("{TRIALS} of {TRIALS} trials")),
                "{}",
                r.stdout
            );
        }
        assert!(
            !killed.is_empty(),
            "round {round}: every runner finished before its kill: nothing was tested"
        );
        let unlogged = check_trained_once(&read_log(&log), &ids, &killed);
        assert!(unlogged <= killed.len(), "{unlogged} trials without an end");

        // Resuming finds nothing to do, leaves no claim behind, and the records equal
        // the uninterrupted run's.
        let again = sb.run(&grid("shared"));
        again.ok();
        assert!(
            again
                .stdout
                .contains(&format!("0 run now, {TRIALS} already done")),
            "{}",
            again.stdout
        );
        let shared = records(&dir);
        assert_eq!(
            shared.keys().collect::<Vec<_>>(),
            straight.keys().collect::<Vec<_>>()
        );
        for (id, record) in &shared {
            assert_eq!(
                without_timings(record.clone()),
                without_timings(straight[id].clone()),
                "{id} differs from the uninterrupted run"
            );
        }
        let status = sb.run(&["search", "status", "--out", "shared", "--json"]);
        let status = status.ok().json();
        assert_eq!(status["complete"], true);
        assert_eq!(status["in_progress"], serde_json::json!([]));
        let summary = read_json(&dir.join("summary.json"));
        assert_eq!(
            summary["ranking"],
            read_json(&sb.join("straight/summary.json"))["ranking"]
        );
    }
}

#[test]
fn status_shows_trials_in_progress_and_a_killed_runners_claim_is_taken_over() {
    let sb = Sandbox::new();
    let dir = sb.join("claims");
    let mut child = sb
        .cmd(&grid("claims"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a trial is claimed.
    let clock = Instant::now();
    loop {
        let claims: Vec<String> = std::fs::read_dir(dir.join("trials"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".claim") && !n.starts_with('.'))
            .collect();
        if !claims.is_empty() {
            break;
        }
        assert!(
            clock.elapsed() < Duration::from_secs(60),
            "no claim appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let st = sb.run(&["search", "status", "--out", "claims", "--json"]);
    let st = st.ok().json();
    // With claims listed, the output still matches its schema.
    crate::schemas::Schemas::default().check("search-status", &st, "search status --json");
    let in_progress = st["in_progress"].as_array().unwrap();
    // The trial claimed may have been recorded meanwhile, and the next one claimed.
    if let Some(c) = in_progress.first() {
        assert_eq!(c["claim"]["pid"], child.id());
        assert_eq!(c["stale"], false);
        assert!(c["heartbeat_age"].as_f64().unwrap() < 60.0, "{c}");
        assert!(!c["claim"]["host"].as_str().unwrap().is_empty());
    }
    assert!(
        in_progress.len() <= 1,
        "one worker, one claim: {in_progress:?}"
    );

    // Killed mid-trial: its claim stays, stale, until a run takes it over.
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<Value> = sb
        .run(&["search", "status", "--out", "claims", "--json"])
        .ok()
        .json()["in_progress"]
        .as_array()
        .unwrap()
        .clone();
    for c in &left {
        assert_eq!(c["stale"], true, "{c}");
    }
    if !left.is_empty() {
        let human = sb.run(&["search", "status", "--out", "claims"]);
        human.ok();
        assert!(
            human.stdout.contains("in progress (1)") && human.stdout.contains("stale"),
            "{}",
            human.stdout
        );
        let resumed = sb.run(&grid("claims"));
        resumed.ok().stderr_has(&["taking it over"]);
    } else {
        sb.run(&grid("claims")).ok();
    }
    assert_eq!(records(&dir).len(), TRIALS);
    let claims_left = std::fs::read_dir(dir.join("trials"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".claim"))
        .count();
    assert_eq!(claims_left, 0);
}
