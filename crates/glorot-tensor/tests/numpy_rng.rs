//! `glorot_tensor::numpy_rng` against NumPy itself, bit for bit.
//!
//! Every expected number comes from `tests/data/numpy_vectors.json`, written by
//! `tests/data/numpy_vectors.py` with NumPy's legacy `np.random.RandomState` (the file
//! records the NumPy version). Floats are compared through their IEEE-754 bit patterns.

extern crate blas_src;

use std::time::Instant;

use glorot_tensor::numpy_rng::{MtState, RandomState, glorot_limit};
use ndarray::{Array1, Array2};
use rand::RngCore;
use serde_json::Value;

fn vectors() -> &'static Value {
    static VECTORS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    VECTORS.get_or_init(|| {
        serde_json::from_str(include_str!("data/numpy_vectors.json"))
            .expect("tests/data/numpy_vectors.json is valid JSON")
    })
}

#[track_caller]
fn case(name: &str) -> &'static Value {
    let c = &vectors()["cases"][name];
    assert!(!c.is_null(), "case {name} missing from numpy_vectors.json");
    c
}

#[track_caller]
fn seed_of(c: &Value) -> u32 {
    u32::try_from(c["seed"].as_u64().expect("seed")).expect("seed fits u32")
}

#[track_caller]
fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("integer"))
        .collect()
}

#[track_caller]
fn bits_of(hex: &Value) -> u64 {
    u64::from_str_radix(hex.as_str().expect("hex string"), 16).expect("16 hex digits")
}

/// Compares `got` with an `{"bits": [...], "values": [...]}` object, bit for bit.
#[track_caller]
fn check_f64(what: &str, got: &[f64], expected: &Value) {
    let bits: Vec<u64> = expected["bits"]
        .as_array()
        .expect("bits")
        .iter()
        .map(bits_of)
        .collect();
    assert_eq!(got.len(), bits.len(), "{what}: length");
    for (i, (g, b)) in got.iter().zip(&bits).enumerate() {
        assert_eq!(
            g.to_bits(),
            *b,
            "{what}[{i}]: got {g:e}, NumPy gave {:e} ({})",
            f64::from_bits(*b),
            expected["values"][i]
        );
    }
}

/// Compares a state with a `state_summary` (key head and tail) or a full `state`.
#[track_caller]
fn check_state(what: &str, got: &MtState, expected: &Value) {
    assert_eq!(
        got.pos as u64,
        expected["pos"].as_u64().expect("pos"),
        "{what}: pos"
    );
    assert_eq!(
        got.has_gauss,
        expected["has_gauss"].as_bool().expect("has_gauss"),
        "{what}: has_gauss"
    );
    assert_eq!(
        got.gauss.to_bits(),
        bits_of(&expected["gauss_bits"]),
        "{what}: gauss"
    );
    let key: Vec<u64> = got.key.iter().map(|&k| u64::from(k)).collect();
    if expected["key"].is_array() {
        assert_eq!(key, u64s(&expected["key"]), "{what}: key");
    } else {
        assert_eq!(
            key[..4],
            u64s(&expected["key_head"])[..],
            "{what}: key head"
        );
        assert_eq!(
            key[key.len() - 4..],
            u64s(&expected["key_tail"])[..],
            "{what}: key tail"
        );
    }
}

fn state_from_json(expected: &Value) -> MtState {
    MtState {
        key: u64s(&expected["key"])
            .into_iter()
            .map(|k| u32::try_from(k).expect("u32 word"))
            .collect(),
        pos: usize::try_from(expected["pos"].as_u64().expect("pos")).expect("pos"),
        has_gauss: expected["has_gauss"].as_bool().expect("has_gauss"),
        gauss: f64::from_bits(bits_of(&expected["gauss_bits"])),
    }
}

#[track_caller]
fn shape2(c: &Value) -> (usize, usize) {
    let s = u64s(&c["shape"]);
    assert_eq!(s.len(), 2, "2-d shape");
    (s[0] as usize, s[1] as usize)
}

#[test]
fn raw_outputs_and_seeding_match_numpy() {
    for seed in [0u32, 5, 4_294_967_295] {
        let c = case(&format!("raw_u32_seed{seed}"));
        let mut rng = RandomState::new(seed_of(c));
        let got: Vec<u64> = (0..16).map(|_| u64::from(rng.next_u32())).collect();
        assert_eq!(got, u64s(&c["u32"]), "seed {seed}");
        check_state(
            &format!("seed {seed}"),
            &RandomState::new(seed).state(),
            case(&format!("state_after_seed{seed}")),
        );
    }
    // 1250 outputs regenerate the state twice.
    let c = case("raw_u32_seed5_1250");
    let mut rng = RandomState::new(seed_of(c));
    let got: Vec<u64> = (0..1250).map(|_| u64::from(rng.next_u32())).collect();
    assert_eq!(got[1242..], u64s(&c["u32_tail"])[..]);
}

#[test]
fn u64_and_bytes_match_numpy() {
    let c = case("u64_seed5");
    let mut rng = RandomState::new(seed_of(c));
    let got: Vec<u64> = (0..4).map(|_| RandomState::next_u64(&mut rng)).collect();
    assert_eq!(got, u64s(&c["u64"]));

    let c = case("bytes_seed5");
    let mut rng = RandomState::new(seed_of(c));
    let mut bytes = [0u8; 10];
    rng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, c["bytes_hex"].as_str().expect("hex"));
}

#[test]
fn random_sample_matches_numpy() {
    for name in ["random_sample_seed5", "random_sample_seed0"] {
        let c = case(name);
        let mut rng = RandomState::new(seed_of(c));
        let got: Vec<f64> = (0..8).map(|_| rng.random_sample()).collect();
        check_f64(name, &got, c);
    }
}

#[test]
fn uniform_matches_numpy_in_row_major_order() {
    let c = case("uniform_glorot_3x4_seed5");
    let r = glorot_limit(784, 500);
    assert_eq!(-r, c["low"].as_f64().expect("low"));
    assert_eq!(r, c["high"].as_f64().expect("high"));
    let mut w = Array2::<f64>::zeros(shape2(c));
    RandomState::new(seed_of(c)).fill_uniform(w.view_mut(), -r, r);
    check_f64("uniform 3x4", w.as_slice().expect("standard layout"), c);

    // f32 gets the f64 draws rounded, as NumPy's `.astype(np.float32)` would.
    let mut w32 = Array2::<f32>::zeros(shape2(c));
    RandomState::new(seed_of(c)).fill_uniform(w32.view_mut(), -r, r);
    assert_eq!(w32, w.mapv(|x| x as f32));

    let c = case("uniform_2_7_seed0");
    let mut v = vec![0.0f64; 5];
    RandomState::new(seed_of(c)).fill_uniform_slice(&mut v, 2.0, 7.0);
    check_f64("uniform(2, 7)", &v, c);
}

#[test]
fn normal_matches_numpy_including_the_cached_value() {
    let c = case("normal_3x5_seed5");
    let mut rng = RandomState::new(seed_of(c));
    let mut w = Array2::<f64>::zeros(shape2(c));
    rng.fill_normal(w.view_mut(), 0.0, 1.0);
    check_f64("normal 3x5", w.as_slice().expect("standard layout"), c);
    // 15 values: the 8th pair's second value is still cached.
    assert!(rng.state().has_gauss);

    let c = case("normal_loc_scale_seed0");
    let mut rng = RandomState::new(seed_of(c));
    let loc = c["loc"].as_f64().expect("loc");
    let scale = c["scale"].as_f64().expect("scale");
    let got: Vec<f64> = (0..7).map(|_| rng.normal(loc, scale)).collect();
    check_f64("normal(-1.5, 0.25)", &got, c);
    let mut v = Array1::<f64>::zeros(7);
    RandomState::new(seed_of(c)).fill_normal(v.view_mut(), loc, scale);
    check_f64(
        "fill_normal(-1.5, 0.25)",
        v.as_slice().expect("contiguous"),
        c,
    );
}

#[test]
fn the_gauss_cache_survives_uniform_draws_and_state_round_trips() {
    let c = case("interleaved_seed5");
    let mut rng = RandomState::new(seed_of(c));
    for (i, step) in c["steps"].as_array().expect("steps").iter().enumerate() {
        let n = step["n"].as_u64().expect("n") as usize;
        let kind = step["kind"].as_str().expect("kind");
        let got: Vec<f64> = match kind {
            "normal" => (0..n).map(|_| rng.normal(0.0, 1.0)).collect(),
            "uniform" => (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect(),
            "random_sample" => (0..n).map(|_| rng.random_sample()).collect(),
            other => panic!("unknown step kind {other}"),
        };
        check_f64(&format!("step {i} ({kind})"), &got, step);
    }
    let expected = &c["state_after"];
    check_state("after interleaving", &rng.state(), expected);

    // NumPy's snapshot, cache included, continues exactly like the live generator.
    let snapshot = state_from_json(expected);
    assert!(snapshot.has_gauss, "the vectors end on a cached value");
    let mut restored = RandomState::from_state(&snapshot).expect("valid NumPy state");
    assert_eq!(restored, rng);
    for _ in 0..5 {
        assert_eq!(
            restored.standard_normal().to_bits(),
            rng.standard_normal().to_bits()
        );
    }

    // The snapshot is a plain serde struct: JSON round trip is lossless.
    let json = serde_json::to_string(&rng.state()).expect("serialize");
    let back: MtState = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(RandomState::from_state(&back).expect("valid"), rng);
}

/// The notebook's `initialize_weights`: per layer, Glorot uniform or standard normal.
fn draw_network(rng: &mut RandomState, units: &[usize], glorot: bool) -> Vec<Array2<f64>> {
    units
        .windows(2)
        .map(|w| {
            let mut m = Array2::<f64>::zeros((w[0], w[1]));
            if glorot {
                let r = glorot_limit(w[0], w[1]);
                rng.fill_uniform(m.view_mut(), -r, r);
            } else {
                rng.fill_normal(m.view_mut(), 0.0, 1.0);
            }
            m
        })
        .collect()
}

#[track_caller]
fn check_layers(what: &str, got: &[Array2<f64>], expected: &Value) {
    let layers = expected.as_array().expect("layers");
    assert_eq!(got.len(), layers.len(), "{what}: layer count");
    for (i, (w, e)) in got.iter().zip(layers).enumerate() {
        let (rows, cols) = shape2(e);
        assert_eq!(w.dim(), (rows, cols), "{what}: layer {i} shape");
        let first: Vec<f64> = (0..3).map(|j| w[[0, j]]).collect();
        let last: Vec<f64> = (cols - 3..cols).map(|j| w[[rows - 1, j]]).collect();
        check_f64(&format!("{what} w{i} first"), &first, &e["first"]);
        check_f64(&format!("{what} w{i} last"), &last, &e["last"]);
    }
}

fn network_weights(units: &[usize]) -> usize {
    units.windows(2).map(|w| w[0] * w[1]).sum()
}

#[test]
fn notebook_part1_draws_and_skips_match_numpy() {
    let c = case("notebook_part1_seed5");
    let units: Vec<usize> = u64s(&c["units"]).into_iter().map(|u| u as usize).collect();
    let n = network_weights(&units);
    assert_eq!(n, 647_000);

    let mut rng = RandomState::new(seed_of(c));
    let glorot = draw_network(&mut rng, &units, true);
    check_layers("glorot", &glorot, &c["glorot"]);
    check_state(
        "after the glorot network",
        &rng.state(),
        &c["state_after_glorot"],
    );
    let normal = draw_network(&mut rng, &units, false);
    check_layers("normal", &normal, &c["normal"]);
    // The zero network draws nothing.
    check_state("after part 1", &rng.state(), &c["state_after_part1"]);
    let mut probe = rng.clone();
    check_f64(
        "next random_sample",
        &[probe.random_sample()],
        &c["next_random_sample"],
    );

    // Skipping lands on the same state without materializing anything.
    let mut skipped = RandomState::new(seed_of(c));
    skipped.skip_uniform(n);
    check_state("skip glorot", &skipped.state(), &c["state_after_glorot"]);
    skipped.skip_normal(n);
    assert_eq!(skipped, rng);
}

#[test]
#[expect(
    clippy::print_stderr,
    reason = "the skip time is worth seeing in CI logs"
)]
fn notebook_grid_skip_matches_numpy() {
    let part1 = case("notebook_part1_seed5");
    let c = case("notebook_grid_seed5");
    let trials = c["trials_per_hidden"].as_u64().expect("trials") as usize;
    let mut rng = RandomState::new(seed_of(c));
    rng.skip_uniform(647_000);
    rng.skip_normal(647_000);
    check_state("after part 1", &rng.state(), &part1["state_after_part1"]);

    // The first trial (450 units) drawn for real.
    let mut first = rng.clone();
    let weights = draw_network(&mut first, &[784, 450, 450, 10], true);
    check_layers("first grid trial", &weights, &c["first_trial"]);

    let total: usize = u64s(&c["hidden"])
        .into_iter()
        .map(|h| trials * network_weights(&[784, h as usize, h as usize, 10]))
        .sum();
    assert_eq!(total, 100_467_000);
    let start = Instant::now();
    rng.skip_uniform(total);
    let elapsed = start.elapsed();
    check_state("after the grid", &rng.state(), &c["state_after_grid"]);
    check_f64(
        "next random_sample",
        &[rng.random_sample()],
        &c["next_random_sample"],
    );
    eprintln!("skipping the grid's {total} uniform draws took {elapsed:?}");
}
