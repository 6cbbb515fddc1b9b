//! `glorot search run --strategy hyperband`: killed with SIGKILL at random moments and
//! resumed, or run as three concurrent shards, it writes the same journal (records,
//! rungs, strategy) and finds the same winner as one uninterrupted run; `status` shows
//! the rungs and `merge` ranks by the final rung; every JSON file has its schema.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::schemas::Schemas;
use crate::support::{Sandbox, with_data};

/// Hyperband with min 1, max 4 epochs, eta 2 (brackets of 4, 3 and 3 configurations,
/// 28 epochs in all) over 2 widths x 3 activations x 2 learning rates.
fn hyperband(out: &str) -> Vec<&str> {
    with_data(&[
        "search",
        "run",
        "--out",
        out,
        "--strategy",
        "hyperband",
        "--min-epochs",
        "1",
        "--max-epochs",
        "4",
        "--eta",
        "2",
        "--hidden",
        "128,256",
        "--activation",
        "relu,tanh,sigmoid",
        "--lr",
        "0.05,0.1",
        "--batch-size",
        "4",
        "--workers",
        "1",
        "--blas-threads",
        "1",
    ])
}

/// The journal without wall times and manifests (which differ between runs): records,
/// rung decisions and the strategy file.
fn journal(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for sub in ["trials", "rungs"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let mut v: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.remove("timings");
                o.remove("manifest");
            }
            if let Some(epochs) = v.get_mut("epochs").and_then(Value::as_array_mut) {
                for ep in epochs {
                    let ep = ep.as_object_mut().unwrap();
                    ep.remove("seconds");
                    ep.remove("train_seconds");
                }
            }
            out.insert(format!("{sub}/{name}"), v);
        }
    }
    let strategy = std::fs::read(dir.join("strategy.json")).unwrap();
    out.insert(
        "strategy.json".into(),
        serde_json::from_slice(&strategy).unwrap(),
    );
    out
}

#[test]
fn hyperband_killed_resumed_or_sharded_writes_the_same_journal_and_winner() {
    let sb = Sandbox::new();
    let straight = sb.run(&[hyperband("straight"), vec!["--json"]].concat());
    straight.ok();
    let report = straight.json();
    let mut schemas = Schemas::default();
    schemas.check(
        "search-strategy-run",
        &report,
        "search run --strategy --json",
    );
    assert_eq!(report["complete"], true);
    assert_eq!(report["epochs"], 28);
    let reference = journal(&sb.join("straight"));
    assert_eq!(
        reference
            .keys()
            .filter(|k| k.starts_with("trials/"))
            .count(),
        14
    );
    assert_eq!(
        reference.keys().filter(|k| k.starts_with("rungs/")).count(),
        6
    );

    // SIGKILL at seeded moments (0 to 400 ms after the start), then resumed, until a
    // run finishes on its own.
    let mut state = 0x5eed_u64;
    let mut kills = 0;
    for round in 0.. {
        assert!(round < 40, "the killed search never finished");
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let after = Duration::from_millis((state >> 33) % 400);
        let mut child = sb
            .cmd(&hyperband("killed"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{status:?}");
                break true;
            }
            if start.elapsed() >= after {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if finished {
            break;
        }
    }
    assert!(kills > 0);
    assert_eq!(
        journal(&sb.join("killed")),
        reference,
        "killed {kills} times"
    );

    // Three shards at once on one directory.
    let children: Vec<_> = (0..3)
        .map(|i| {
            let shard = format!("{i}/3");
            sb.cmd(&[hyperband("sharded"), vec!["--shard", &shard]].concat())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(journal(&sb.join("sharded")), reference, "three shards");

    // status shows the rungs; merge ranks by the final rung, the same in every directory.
    let status = sb.run(&["search", "status", "--out", "killed", "--json"]);
    status.ok();
    let status = status.json();
    schemas.check("search-strategy-status", &status, "search status --json");
    assert_eq!(status["rungs"].as_array().unwrap().len(), 6);
    assert_eq!(status["complete"], true);
    let mut winners = Vec::new();
    for dir in ["straight", "killed", "sharded"] {
        let merged = sb.run(&["search", "merge", "--out", dir, "--json"]);
        merged.ok();
        let merged = merged.json();
        schemas.check("strategy-summary", &merged, "search merge --json");
        let first = &merged["ranking"][0];
        assert_eq!(first["epochs"], 4, "the final rung ranks first");
        winners.push(first["id"].clone());
        assert!(schemas.check_tree(&sb.join(dir), true) > 20);
    }
    assert!(winners.iter().all(|w| *w == winners[0]), "{winners:?}");
    assert_eq!(report["best"]["id"], winners[0]);

    // The text status names the rungs.
    let text = sb.run(&["search", "status", "--out", "straight"]);
    text.ok();
    assert!(text.stdout.contains("bracket 2 rung 2:"), "{}", text.stdout);

    // A grid run on the strategy's directory is refused, as is a grid with ranges.
    let refused = sb.run(&[hyperband("straight"), vec!["--strategy", "grid"]].concat());
    refused.expect_code(2);
}
