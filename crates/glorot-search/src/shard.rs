//! Shards: deterministic subsets of a grid for separate processes or machines.

use std::{fmt, str::FromStr};

use crate::{Error, Result};

/// Shard `index` of `count` (0-based): the trials whose grid index `k` has
/// `k % count == index`. Round-robin keeps shards balanced across the grid's axes.
/// Any number of shards may write into one results directory: they never share a trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ALL
    }
}

impl Shard {
    /// The whole grid.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// A checked shard.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 {
            return Err(Error::InvalidShard {
                value: format!("{index}/{count}"),
                reason: "the count must be at least 1".into(),
            });
        }
        if index >= count {
            return Err(Error::InvalidShard {
                value: format!("{index}/{count}"),
                reason: format!("the index is 0-based and must be below the count ({count})"),
            });
        }
        Ok(Shard { index, count })
    }

    /// Whether the trial at grid position `grid_index` belongs to this shard.
    pub fn contains(self, grid_index: usize) -> bool {
        grid_index % self.count == self.index
    }

    /// The shard described by the environment, if any:
    /// - Slurm job arrays: `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`,
    ///   `SLURM_ARRAY_TASK_COUNT` (and `SLURM_ARRAY_TASK_STEP` when the array has a
    ///   step): index = (id - min) / step, count = task count;
    /// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX`, with the count from
    ///   `k8s_count` (the Job's `completions`; Kubernetes does not export it).
    ///
    /// `var` reads a variable (pass `|k| std::env::var(k).ok()`).
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        k8s_count: Option<usize>,
    ) -> Result<Option<Self>> {
        let num = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| Error::InvalidShard {
                        value: format!("{name}={v}"),
                        reason: "not a non-negative integer".into(),
                    }),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let Some(count) = num("SLURM_ARRAY_TASK_COUNT")? else {
                return Err(Error::InvalidShard {
                    value: format!("SLURM_ARRAY_TASK_ID={id}"),
                    reason: "SLURM_ARRAY_TASK_COUNT is not set".into(),
                });
            };
            let Some(offset) = id.checked_sub(min) else {
                return Err(Error::InvalidShard {
                    value: format!("SLURM_ARRAY_TASK_ID={id}"),
                    reason: format!("below SLURM_ARRAY_TASK_MIN={min}"),
                });
            };
            if offset % step != 0 {
                return Err(Error::InvalidShard {
                    value: format!("SLURM_ARRAY_TASK_ID={id}"),
                    reason: format!(
                        "not on the array's step {step} from {min}; use --array=a-b or --shard"
                    ),
                });
            }
            return Shard::new(offset / step, count)
                .map(Some)
                .map_err(|e| match e {
                    Error::InvalidShard { value, reason } => Error::InvalidShard {
                        value: format!("{value} from Slurm"),
                        reason: format!(
                            "{reason}; submit a contiguous array such as --array=0-{}",
                            count.saturating_sub(1)
                        ),
                    },
                    other => other,
                });
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let Some(count) = k8s_count else {
                return Err(Error::InvalidShard {
                    value: format!("JOB_COMPLETION_INDEX={index}"),
                    reason: "a Kubernetes Indexed Job needs the shard count (--shard-count or GLOROT_SHARD_COUNT)".into(),
                });
            };
            return Shard::new(index, count).map(Some);
        }
        Ok(None)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// Parses `i/n` (0-based index, count).
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidShard {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected INDEX/COUNT, e.g. 0/4"))?;
        let i = i
            .trim()
            .parse()
            .map_err(|_| bad("the index is not a non-negative integer"))?;
        let n = n
            .trim()
            .parse()
            .map_err(|_| bad("the count is not a positive integer"))?;
        Shard::new(i, n)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn parses_and_partitions() {
        let s: Shard = "2/4".parse().unwrap();
        assert_eq!(s, Shard { index: 2, count: 4 });
        assert!("4/4".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert!("3".parse::<Shard>().is_err());
        // Every index belongs to exactly one shard.
        for k in 0..135 {
            let owners = (0..4)
                .filter(|&i| Shard::new(i, 4).unwrap().contains(k))
                .count();
            assert_eq!(owners, 1);
        }
    }

    #[test]
    fn slurm_and_kubernetes_environments() {
        let s = Shard::from_env(
            env(&[
                ("SLURM_ARRAY_TASK_ID", "7"),
                ("SLURM_ARRAY_TASK_MIN", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ]),
            None,
        );
        assert_eq!(s.unwrap(), Some(Shard { index: 2, count: 4 }));
        let stepped = Shard::from_env(
            env(&[
                ("SLURM_ARRAY_TASK_ID", "6"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_STEP", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ]),
            None,
        );
        assert_eq!(stepped.unwrap(), Some(Shard { index: 3, count: 4 }));
        assert!(Shard::from_env(env(&[("SLURM_ARRAY_TASK_ID", "1")]), None).is_err());
        assert!(
            Shard::from_env(
                env(&[
                    ("SLURM_ARRAY_TASK_ID", "9"),
                    ("SLURM_ARRAY_TASK_COUNT", "4")
                ]),
                None
            )
            .is_err()
        );
        assert_eq!(
            Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")]), Some(3)).unwrap(),
            Some(Shard { index: 1, count: 3 })
        );
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")]), None).is_err());
        assert_eq!(Shard::from_env(env(&[]), None).unwrap(), None);
    }
}
