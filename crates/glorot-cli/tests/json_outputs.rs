//! Every `--json` output of the CLI, and every file a search writes, against its schema
//! in `docs/schemas/` (see `schemas.rs`); the committed `results/` too; and the weights
//! with the permissions of the JSON beside them.

use crate::schemas::{Schemas, assert_exact, parse, read, workspace};
use crate::support::{Sandbox, real_mnist, with_data};

/// Runs `glorot args` (which must succeed) and checks its stdout against `schema`.
#[track_caller]
fn json_output(sb: &Sandbox, schemas: &mut Schemas, schema: &str, args: &[&str]) {
    let r = sb.run(args);
    r.ok();
    let what = format!("glorot {}", args.join(" "));
    let v = parse(&r.stdout, &what);
    schemas.check(schema, &v, &what);
    assert_exact(&v, &what);
}

/// Runs `glorot args` (JSON lines) and checks each line against `schema`.
#[track_caller]
fn json_lines(sb: &Sandbox, schemas: &mut Schemas, schema: &str, args: &[&str]) {
    let r = sb.run(args);
    r.ok();
    let what = format!("glorot {}", args.join(" "));
    let mut n = 0;
    for line in r.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v = parse(line, &what);
        schemas.check(schema, &v, &what);
        assert_exact(&v, &what);
        n += 1;
    }
    assert!(n > 0, "{what} printed no JSON line");
}

#[test]
fn every_json_output_of_the_cli_matches_its_schema() {
    let sb = Sandbox::new();
    let mut s = Schemas::default();
    let small = [
        "--hidden",
        "16,16",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--seed",
        "18446744073709551615",
    ];
    let train: Vec<&str> = ["train"]
        .iter()
        .chain(&small)
        .chain(&[
            "--out",
            "runs/curves.json",
            "--save-weights",
            "runs/model.safetensors",
            "--test",
            "--json",
            "-q",
        ])
        .copied()
        .collect();
    json_output(&sb, &mut s, "train", &with_data(&train));
    let curves = read(&sb.join("runs/curves.json"));
    s.check("train", &curves, "runs/curves.json");
    // The largest seed, exactly, as a string.
    assert_eq!(curves["train"]["seed"], "18446744073709551615");
    // A non-default optimizer, schedule and warm-up appear in the config, and the rate
    // of every epoch in the curves.
    json_output(
        &sb,
        &mut s,
        "train",
        &with_data(&[
            "train",
            "--hidden",
            "16",
            "--epochs",
            "3",
            "--optimizer",
            "adamw",
            "--lr",
            "0.003",
            "--lr-schedule",
            "plateau:1:0.5:0.01",
            "--warmup",
            "1",
            "--json",
            "-q",
        ]),
    );
    same_permissions(
        &sb.join("runs/model.safetensors"),
        &sb.join("runs/curves.json"),
    );

    for split in ["validation", "test"] {
        json_output(
            &sb,
            &mut s,
            "eval",
            &with_data(&[
                "eval",
                "--weights",
                "runs/model.safetensors",
                "--split",
                split,
                "--json",
            ]),
        );
    }
    json_output(
        &sb,
        &mut s,
        "predict",
        &[
            "predict",
            "--weights",
            "runs/model.safetensors",
            "data/t10k-images-idx3-ubyte.gz",
            "--labels",
            "data/t10k-labels-idx1-ubyte.gz",
            "--json",
        ],
    );
    json_output(
        &sb,
        &mut s,
        "gradcheck",
        &["gradcheck", "--layers", "6,5,3", "--json"],
    );
    json_output(
        &sb,
        &mut s,
        "gradcheck-notebook",
        &with_data(&[
            "gradcheck",
            "notebook",
            "--hidden",
            "8,8",
            "--entries",
            "2",
            "--row",
            "3",
            "--json",
        ]),
    );

    let search = |cmd: &'static str, extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["search", cmd, "--out", "sr", "--json"];
        v.extend_from_slice(extra);
        v
    };
    let seeded = [
        "-q",
        "--grid",
        "tiny",
        "--master-seed",
        "12345678901234567890",
    ];
    json_output(
        &sb,
        &mut s,
        "search-run",
        &with_data(&search("run", &seeded)),
    );
    json_output(&sb, &mut s, "search-status", &search("status", &[]));
    json_output(&sb, &mut s, "summary", &search("merge", &[]));
    json_output(&sb, &mut s, "search-best", &search("best", &["-q"]));
    json_output(
        &sb,
        &mut s,
        "search-best",
        &with_data(&search("best", &["-q", "--test"])),
    );
    // Every file of the search directory: search.json, grid.json, trials, summary,
    // best_test.json.
    let checked = s.check_tree(&sb.join("sr"), true);
    assert!(checked >= 8, "{checked} files");
    let context = read(&sb.join("sr/search.json"));
    assert_eq!(context["master_seed"], "12345678901234567890");

    let data = ["--json", "--data-dir", "data", "--no-verify"];
    json_output(
        &sb,
        &mut s,
        "data-verify",
        &[&["data", "verify"][..], &data].concat(),
    );
    let info = [&["data", "info", "--validation-size", "200"][..], &data].concat();
    json_output(&sb, &mut s, "data-info", &info);
    let bench = [
        "--hidden",
        "8,8",
        "--limit",
        "100",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--json",
        "--data-dir",
        "data",
        "--no-verify",
        "--validation-size",
        "200",
    ];
    for (cmd, schema) in [("bench-epoch", "bench-epoch"), ("bench-gemm", "bench-gemm")] {
        let args: Vec<&str> = [cmd].iter().chain(&bench).copied().collect();
        json_lines(&sb, &mut s, schema, &args);
    }

    // `data fetch` on a complete real dataset downloads nothing (a closed mirror).
    if let Some(real) = real_mnist() {
        let real = real.to_string_lossy().into_owned();
        json_output(
            &sb,
            &mut s,
            "data-fetch",
            &[
                "data",
                "fetch",
                "--json",
                "--data-dir",
                &real,
                "--mirror",
                "http://127.0.0.1:9/",
            ],
        );
    }
}

/// The weights file and the JSON beside it have the same permission bits (the weights
/// were 0600 when safetensors wrote them through a private temporary file).
#[cfg(unix)]
#[track_caller]
fn same_permissions(a: &std::path::Path, b: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(a),
        mode(b),
        "{} and {} have different permissions",
        a.display(),
        b.display()
    );
}

#[cfg(not(unix))]
fn same_permissions(_: &std::path::Path, _: &std::path::Path) {}

/// The committed results (schema version 1 until the next full run, seeds as numbers:
/// the schemas accept both forms, as the readers do) match the schemas, and every JSON
/// file there has one.
#[test]
fn committed_results_match_their_schemas() {
    let results = workspace().join("results");
    if !results.join("part1.json").exists() {
        return;
    }
    let checked = Schemas::default().check_tree(&results, false);
    assert!(checked > 200, "{checked} files under results/");
}

/// Every schema is linked from `docs/results.md` and is a valid draft 2020-12 schema.
#[test]
fn every_schema_is_documented_and_valid() {
    let doc = std::fs::read_to_string(workspace().join("docs/results.md")).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(crate::schemas::schemas_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".schema.json") else {
            panic!("docs/schemas/{name} is not a schema");
        };
        assert!(
            doc.contains(&format!("(schemas/{name})")),
            "docs/results.md does not link schemas/{name}"
        );
        let schema = read(&crate::schemas::schemas_dir().join(&name));
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        // Compiles (and accepts nothing that is not an object).
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        assert!(
            !validator.is_valid(&serde_json::json!(42)),
            "{name} accepts 42"
        );
        names.push(stem.to_owned());
    }
    assert!(names.len() >= 26, "{names:?}");
}
