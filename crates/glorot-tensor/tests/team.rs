//! The thread team on a busy machine: a helper descheduled in the middle of a task (as
//! when another process takes its core) is seen as a stall, and the team then runs its
//! regions on the calling thread alone for a while. A test binary of its own, so no
//! other test uses the process-wide team meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use glorot_tensor::fused::{for_each_chunk, set_threads, team_stats};

fn on_helper() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("glorot-fused-"))
}

#[test]
fn a_descheduled_helper_sends_the_team_solo_for_a_while() {
    set_threads(2);
    let before = team_stats();
    // Regions of two tasks: the caller's spins 300 µs, so that the helper claims the
    // other, which then takes 5 ms, as if its core had been taken mid-task. The caller
    // waits more than 4 x 300 µs + 50 µs for it: a stall (see `fused::team`).
    let mut v = [0u8; 2];
    let mut regions = 0;
    while team_stats().stalls == before.stalls {
        regions += 1;
        assert!(regions <= 200, "no stall seen in 200 regions");
        for_each_chunk(&mut v, 1, &|_, _| {
            if on_helper() {
                std::thread::sleep(Duration::from_millis(5));
            } else {
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(300) {
                    std::hint::spin_loop();
                }
            }
        });
    }
    let after_stall = team_stats();
    assert!(after_stall.stall_nanos - before.stall_nanos >= 1_000_000);

    // The next 64 regions (the first stall's solo count) run on the caller alone.
    let helped = AtomicUsize::new(0);
    for _ in 0..64 {
        for_each_chunk(&mut v, 1, &|_, _| {
            if on_helper() {
                helped.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let after = team_stats();
    assert_eq!(helped.load(Ordering::Relaxed), 0);
    assert_eq!(after.solo_regions - after_stall.solo_regions, 64);
    assert_eq!(after.regions - after_stall.regions, 64);

    // Then the team works together again: a region whose caller task waits for the
    // helper to take the other task sees the helper.
    let helped = AtomicUsize::new(0);
    let mut tries = 0;
    while helped.load(Ordering::Relaxed) == 0 {
        tries += 1;
        assert!(tries <= 200, "the helper never came back");
        for_each_chunk(&mut v, 1, &|_, _| {
            if on_helper() {
                helped.fetch_add(1, Ordering::Relaxed);
            } else {
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(100) {
                    std::hint::spin_loop();
                }
            }
        });
    }
    set_threads(1);
}
