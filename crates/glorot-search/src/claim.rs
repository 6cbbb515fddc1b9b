//! Claims: which runner is training a trial right now (`trials/<id>.claim`).
//!
//! The rules are stated in the [`journal`](crate::journal) module, which owns the
//! directory; this module implements them. A claim is a small JSON file ([`ClaimInfo`])
//! created atomically (written to a temporary file, then hard-linked to its name, which
//! fails when the name exists: `O_CREAT|O_EXCL` semantics, with the content already in
//! place); its modification time is the heartbeat. A claim is stale when its process
//! is dead (same host and boot: no such pid, a zombie, or another process with that
//! pid) or, for other hosts, when its heartbeat is older than
//! [`ClaimPolicy::stale_after`]. A stale claim is taken over by renaming it to a unique
//! name first (only one runner's rename succeeds), checking that the renamed file is
//! the claim judged stale (else it is put back), and deleting it.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::{Error, Result, trial::TrialId};

/// How often a runner refreshes the heartbeat of its claims, and when another host's
/// claim counts as abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimPolicy {
    /// Interval between heartbeats (the claim file's modification time is set to now).
    pub heartbeat: Duration,
    /// A claim of another host whose heartbeat is older than this is taken over. Hosts'
    /// clocks must agree to well within it (NTP does).
    pub stale_after: Duration,
}

impl Default for ClaimPolicy {
    /// A heartbeat every 10 s; another host's claim is stale after 120 s (12 missed
    /// heartbeats: a stalled file server or a swapping node does not lose its trials).
    fn default() -> Self {
        ClaimPolicy {
            heartbeat: Duration::from_secs(10),
            stale_after: Duration::from_secs(120),
        }
    }
}

/// The content of a claim file: who trains the trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimInfo {
    /// Host name of the runner.
    pub host: String,
    /// The host's boot id (`/proc/sys/kernel/random/boot_id`), empty when unknown: a
    /// pid is only meaningful within one boot.
    pub boot_id: String,
    /// Process id of the runner.
    pub pid: u32,
    /// Start time of that process in clock ticks since boot (`/proc/<pid>/stat`), so a
    /// reused pid is not mistaken for the runner; `null` when unknown.
    pub process_start: Option<u64>,
    /// When the claim was made, seconds since the Unix epoch.
    pub started_at: f64,
    /// Unique among all claims ever made (host, pid, process start, a counter).
    pub token: String,
}

/// A claim found in a results directory ([`crate::Journal::claims`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClaimStatus {
    /// The trial.
    pub id: TrialId,
    /// Who claimed it.
    pub claim: ClaimInfo,
    /// Seconds since the last heartbeat (by this machine's clock).
    pub heartbeat_age: f64,
    /// Whether a runner would take it over now (its process is dead, or its heartbeat
    /// is older than the policy's `stale_after`).
    pub stale: bool,
}

/// This process as a claimant.
#[derive(Debug)]
struct Me {
    host: String,
    boot_id: String,
    pid: u32,
    process_start: Option<u64>,
}

fn me() -> &'static Me {
    static ME: OnceLock<Me> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        Me {
            host: crate::manifest::host_name(),
            boot_id: boot_id(),
            pid,
            process_start: process_start(pid),
        }
    })
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// What `/proc/<pid>/stat` says about a process: `None` when there is no `/proc` (not
/// Linux); `Some(None)` when the process does not exist or is a zombie; else its start
/// time in clock ticks since boot.
fn proc_stat(pid: u32) -> Option<Option<u64>> {
    if !Path::new("/proc/self/stat").exists() {
        return None;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Some(None);
    };
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so fields are
    // counted after the last `)`; state is field 3, starttime field 22.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    match fields.first() {
        Some(&"Z") | Some(&"X") | Some(&"x") | None => Some(None),
        Some(_) => Some(fields.get(19).and_then(|s| s.parse().ok())),
    }
}

/// Whether `pid` is known not to be a live process of this host (`false` without
/// `/proc`).
pub(crate) fn process_is_gone(pid: u32) -> bool {
    matches!(proc_stat(pid), Some(None))
}

fn process_start(pid: u32) -> Option<u64> {
    proc_stat(pid).flatten()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    format!(
        "{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `trials/<id>.claim`.
pub(crate) fn claim_path(trials_dir: &Path, id: &TrialId) -> PathBuf {
    trials_dir.join(format!("{id}{CLAIM_SUFFIX}"))
}

/// The suffix of claim files.
pub(crate) const CLAIM_SUFFIX: &str = ".claim";

/// A claim read from disk with its heartbeat's age.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) info: ClaimInfo,
    pub(crate) heartbeat_age: Duration,
}

impl Found {
    /// Whether the claim is abandoned under `policy`.
    pub(crate) fn is_stale(&self, policy: &ClaimPolicy) -> bool {
        let me = me();
        let info = &self.info;
        if info.host == me.host && !me.boot_id.is_empty() && info.boot_id == me.boot_id {
            if info.pid == me.pid && info.process_start == me.process_start {
                return false; // this process: alive
            }
            if let Some(state) = proc_stat(info.pid) {
                return match (state, info.process_start) {
                    (None, _) => true,
                    (Some(now), Some(then)) => now != then,
                    (Some(_), None) => self.heartbeat_age > policy.stale_after,
                };
            }
        }
        self.heartbeat_age > policy.stale_after
    }
}

/// Reads a claim: `Ok(None)` when there is none.
pub(crate) fn read(path: &Path) -> Result<Option<Found>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    let modified = match fs::metadata(path).and_then(|m| m.modified()) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading the time of", path, e)),
    };
    let heartbeat_age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    let info = serde_json::from_slice(&bytes).unwrap_or_else(|_| ClaimInfo {
        // Claims are linked into place complete; an unreadable one was damaged or
        // written by something else: it is judged by its age alone.
        host: String::new(),
        boot_id: String::new(),
        pid: 0,
        process_start: None,
        started_at: 0.0,
        token: String::new(),
    });
    Ok(Some(Found {
        info,
        heartbeat_age,
    }))
}

/// A claim this process holds.
#[derive(Debug)]
pub(crate) struct Held {
    path: PathBuf,
    token: String,
}

/// Tries to create the claim at `path`: `Ok(Some)` when this process now holds it,
/// `Ok(None)` when a claim exists.
pub(crate) fn create(path: &Path) -> Result<Option<Held>> {
    let me = me();
    let token = format!(
        "{}.{}.{}",
        me.host,
        me.process_start.map_or_else(String::new, |s| s.to_string()),
        unique_suffix()
    );
    let info = ClaimInfo {
        host: me.host.clone(),
        boot_id: me.boot_id.clone(),
        pid: me.pid,
        process_start: me.process_start,
        started_at: now_secs(),
        token: token.clone(),
    };
    let json = serde_json::to_vec_pretty(&info).expect("claims serialise");
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", unique_suffix()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("writing", &tmp, e));
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Some(Held {
            path: path.to_owned(),
            token,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(_) => {
            // No hard links on this file system: create exclusively, then write (a
            // reader may briefly see an empty claim, which it judges by its age).
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(&json)
                        .and_then(|()| f.sync_all())
                        .map_err(|e| Error::io("writing", path, e))?;
                    Ok(Some(Held {
                        path: path.to_owned(),
                        token,
                    }))
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(Error::io("creating", path, e)),
            }
        }
    }
}

/// Removes the stale claim `found` from `path`, race-free: renamed to a unique name
/// first; if what was renamed is not `found` (another runner replaced it meanwhile), it
/// is put back. Returns whether `found` was removed by this call.
pub(crate) fn take_over(path: &Path, found: &Found) -> Result<bool> {
    let aside = path.with_file_name(format!(
        ".{}.stale.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        unique_suffix()
    ));
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("renaming", path, e)),
    }
    let renamed = read(&aside)?;
    if renamed.is_some_and(|r| r.info == found.info) {
        fs::remove_file(&aside).map_err(|e| Error::io("removing", &aside, e))?;
        Ok(true)
    } else {
        fs::rename(&aside, path).map_err(|e| Error::io("restoring", path, e))?;
        Ok(false)
    }
}

impl Held {
    /// Whether the claim file still holds this claim (nobody took it over).
    pub(crate) fn is_held(&self) -> bool {
        matches!(read(&self.path), Ok(Some(f)) if f.info.token == self.token)
    }

    /// Refreshes the heartbeat; `false` when the claim is no longer this process's.
    pub(crate) fn beat(&self) -> bool {
        if !self.is_held() {
            return false;
        }
        File::options()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .is_ok()
    }

    /// Removes the claim if it is still this process's.
    pub(crate) fn release(&self) -> Result<()> {
        if self.is_held() {
            match fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("removing", &self.path, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> TrialId {
        TrialId("8x1-relu-lr0.1-b32-0123456789ab".to_owned())
    }

    #[test]
    fn one_claim_per_trial_and_released_claims_can_be_retaken() {
        let dir = tempfile::tempdir().unwrap();
        let path = claim_path(dir.path(), &id());
        let held = create(&path).unwrap().expect("first claim");
        assert!(
            create(&path).unwrap().is_none(),
            "a second claim is refused"
        );
        assert!(held.is_held());
        // The heartbeat is the file's modification time.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        assert!(read(&path).unwrap().unwrap().heartbeat_age > Duration::from_secs(3000));
        assert!(held.beat());
        let found = read(&path).unwrap().unwrap();
        assert!(found.heartbeat_age < Duration::from_secs(60));
        assert_eq!(found.info.pid, std::process::id());
        // This process is alive: its claim is never stale, whatever its age.
        let zero = ClaimPolicy {
            heartbeat: Duration::ZERO,
            stale_after: Duration::ZERO,
        };
        assert!(!found.is_stale(&zero));
        held.release().unwrap();
        assert!(read(&path).unwrap().is_none());
        assert!(create(&path).unwrap().is_some());
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    fn write_claim(path: &Path, info: &ClaimInfo, age: Duration) {
        fs::write(path, serde_json::to_vec(info).unwrap()).unwrap();
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn claims_of_dead_processes_and_silent_hosts_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = claim_path(dir.path(), &id());
        let policy = ClaimPolicy {
            heartbeat: Duration::from_secs(1),
            stale_after: Duration::from_secs(60),
        };
        let me = me();
        // A process of this host that has exited (a child we waited for).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mut info = ClaimInfo {
            host: me.host.clone(),
            boot_id: me.boot_id.clone(),
            pid: dead,
            process_start: Some(1),
            started_at: 0.0,
            token: "dead".into(),
        };
        write_claim(&path, &info, Duration::ZERO);
        if !me.boot_id.is_empty() {
            assert!(read(&path).unwrap().unwrap().is_stale(&policy));
            // The same pid alive but started at another time: a reused pid.
            info.pid = std::process::id();
            write_claim(&path, &info, Duration::ZERO);
            assert!(read(&path).unwrap().unwrap().is_stale(&policy));
        }
        // Another host: judged by the heartbeat's age.
        info.host = "elsewhere".into();
        write_claim(&path, &info, Duration::from_secs(30));
        assert!(!read(&path).unwrap().unwrap().is_stale(&policy));
        write_claim(&path, &info, Duration::from_secs(90));
        let found = read(&path).unwrap().unwrap();
        assert!(found.is_stale(&policy));

        // Take-over removes exactly the claim judged stale...
        assert!(take_over(&path, &found).unwrap());
        assert!(read(&path).unwrap().is_none());
        assert!(!take_over(&path, &found).unwrap(), "already gone");
        // ...and puts back a claim made in between by someone else.
        let fresh = create(&path).unwrap().unwrap();
        assert!(!take_over(&path, &found).unwrap());
        assert!(fresh.is_held());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing left aside");
    }
}
