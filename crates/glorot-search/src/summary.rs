//! Merging a results directory into a ranking, a summary JSON and a CSV.

use std::{fmt::Write as _, path::Path};

use serde::{Deserialize, Serialize};

use crate::{
    Result,
    journal::{TrialRecord, TrialStatus, write_atomic},
    spec::ValidGrid,
    trial::{TrialConfig, TrialId},
};

/// Version of `summary.json`; version 2 writes the seeds as decimal strings.
pub const SUMMARY_SCHEMA_VERSION: u32 = 2;

/// One trial's line in the ranking: only what determines and describes its result
/// (no timings), so merged shards and a single process give equal rankings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// 1-based rank; trials without a final accuracy (diverged, failed) come last.
    pub rank: usize,
    /// Trial id.
    pub id: TrialId,
    /// Grid position.
    pub index: usize,
    /// Configuration.
    pub config: TrialConfig,
    /// Trial seed (a decimal string since version 2; a number before).
    #[serde(with = "glorot_mlp::seed_text")]
    pub seed: u64,
    /// How it ended.
    pub status: TrialStatus,
    /// Final validation accuracy, percent.
    pub final_val_accuracy: Option<f64>,
    /// Final mean training loss.
    pub final_train_loss: Option<f64>,
}

/// The merged view of a results directory (`summary.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SUMMARY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Trials in the grid.
    pub total: usize,
    /// Trials with a final record (ok or diverged).
    pub finished: usize,
    /// Ids of grid trials without a final record, in grid order.
    pub missing: Vec<TrialId>,
    /// All recorded trials of the grid, best first: by final validation accuracy
    /// (descending), ties broken by grid index (ascending), which is the notebook's
    /// rule (`if accuracy[-1] > best_accuracy` keeps the first maximum).
    pub ranking: Vec<Ranked>,
    /// The best trial, if any finished with an accuracy.
    pub best: Option<Ranked>,
    /// Sum of the recorded trials' wall times, seconds.
    pub trial_seconds_total: f64,
}

impl Summary {
    /// Merges `records` (e.g. [`crate::Journal::records`]) for `grid`. Records of
    /// trials outside the grid are ignored.
    pub fn merge(grid: &ValidGrid, records: &[TrialRecord]) -> Summary {
        let trials = grid.trials();
        let mut ranking = Vec::new();
        let mut missing = Vec::new();
        let mut finished = 0;
        let mut seconds = 0.0;
        for t in &trials {
            match records.iter().find(|r| r.id == t.id) {
                Some(r) => {
                    seconds += r.timings.seconds;
                    if r.status.is_final() {
                        finished += 1;
                    } else {
                        missing.push(t.id.clone());
                    }
                    ranking.push(Ranked {
                        rank: 0,
                        id: r.id.clone(),
                        index: t.index,
                        config: r.config.clone(),
                        seed: r.seed,
                        status: r.status.clone(),
                        final_val_accuracy: r.final_val_accuracy.filter(|a| a.is_finite()),
                        final_train_loss: r.final_train_loss,
                    });
                }
                None => missing.push(t.id.clone()),
            }
        }
        ranking.sort_by(|a, b| {
            let acc = |r: &Ranked| r.final_val_accuracy.unwrap_or(f64::NEG_INFINITY);
            acc(b).total_cmp(&acc(a)).then(a.index.cmp(&b.index))
        });
        for (i, r) in ranking.iter_mut().enumerate() {
            r.rank = i + 1;
        }
        let best = ranking
            .first()
            .filter(|r| r.final_val_accuracy.is_some())
            .cloned();
        Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            total: trials.len(),
            finished,
            missing,
            ranking,
            best,
            trial_seconds_total: seconds,
        }
    }

    /// Writes `summary.json` and `trials.csv` into `dir` atomically.
    pub fn write(&self, dir: &Path, records: &[TrialRecord]) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("summaries serialise");
        write_atomic(&dir.join("summary.json"), &json)?;
        write_atomic(&dir.join("trials.csv"), to_csv(self, records).as_bytes())
    }
}

/// The CSV header of `trials.csv`.
pub const CSV_HEADER: &str = "rank,id,index,hidden,hidden_layers,activation,learning_rate,batch_size,init,epochs,precision,shuffle,repeat,seed,status,diverged_epoch,final_train_loss,final_val_loss,final_val_accuracy,best_val_accuracy,seconds";

/// One row per ranked trial, in rank order; plain RFC 4180 with a header, empty
/// cells for missing values, so pandas and polars read it directly.
pub fn to_csv(summary: &Summary, records: &[TrialRecord]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in &summary.ranking {
        let rec = records.iter().find(|x| x.id == r.id);
        let c = &r.config;
        let (status, diverged) = match &r.status {
            TrialStatus::Ok => ("ok", String::new()),
            TrialStatus::Diverged { epoch } => ("diverged", epoch.to_string()),
            TrialStatus::Failed { .. } => ("failed", String::new()),
        };
        let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        // The epoch the trial ends with: the kept one under early stopping.
        let last = rec.and_then(|x| match x.kept_epoch {
            Some(k) => x.epochs.iter().find(|e| e.epoch == k),
            None => x.epochs.last(),
        });
        let best_acc = rec.and_then(|x| {
            x.epochs
                .iter()
                .map(|e| e.val_accuracy)
                .filter(|a| a.is_finite())
                .reduce(f64::max)
        });
        let init = serde_json::to_value(c.init)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str().map(str::to_owned)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.rank,
            r.id,
            r.index,
            c.hidden.first().copied().unwrap_or(0),
            c.hidden.len(),
            c.activation,
            c.learning_rate,
            c.batch_size,
            init,
            c.epochs,
            serde_plain(&c.precision),
            serde_plain(&c.shuffle),
            c.repeat,
            r.seed,
            status,
            diverged,
            opt(r.final_train_loss),
            opt(last.map(|e| e.val_loss)),
            opt(r.final_val_accuracy),
            opt(best_acc),
            rec.map(|x| x.timings.seconds.to_string())
                .unwrap_or_default(),
        );
    }
    out
}

/// A unit enum's serde name (`"f32"`, `"every_epoch"`).
fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
