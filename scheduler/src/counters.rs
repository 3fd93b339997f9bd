//! Outcome counters of a project over sliding windows: 5 minutes, 1 hour, 1 day.
//!
//! One bucket per minute for a day (1,440 buckets of three numbers), so memory is fixed.
//! The windows live in memory and start empty after a restart. The all-time figures
//! ([`Tally`]) are counted in the store when a project loads and then kept by applying each
//! change the scheduler makes, so no full count runs while the crawl goes on.

use spindle_common::stats::{MinuteCounts, WindowCounts, Windows};
use spindle_common::store::{TaskCounts, TaskStatus};

const MINUTE_MS: i64 = 60_000;
const BUCKETS: usize = 24 * 60;

/// Per-minute buckets of outcomes.
#[derive(Debug, Clone)]
pub struct Counters {
    buckets: Vec<(i64, WindowCounts)>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            buckets: vec![(i64::MIN, WindowCounts::default()); BUCKETS],
        }
    }
}

impl Counters {
    fn bucket(&mut self, now_ms: i64) -> &mut WindowCounts {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let slot = &mut self.buckets[minute.rem_euclid(BUCKETS as i64) as usize];
        if slot.0 != minute {
            *slot = (minute, WindowCounts::default());
        }
        &mut slot.1
    }

    /// Adds outcomes at `now_ms`.
    pub fn add(&mut self, now_ms: i64, success: u64, failed: u64, retry: u64) {
        let b = self.bucket(now_ms);
        b.success += success;
        b.failed += failed;
        b.retry += retry;
    }

    /// Adds tasks newly queued at `now_ms`.
    pub fn add_queued(&mut self, now_ms: i64, n: u64) {
        self.bucket(now_ms).pending += n;
    }

    /// Pages and errors of each of the last `minutes` minutes up to `now_ms` that saw any,
    /// oldest first.
    pub fn minutes(&self, now_ms: i64, minutes: i64) -> Vec<MinuteCounts> {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let mut recent: Vec<MinuteCounts> = self
            .buckets
            .iter()
            .filter(|(m, c)| {
                *m > minute - minutes && *m <= minute && c.success + c.failed + c.retry > 0
            })
            .map(|(m, c)| MinuteCounts {
                minute_ms: m * MINUTE_MS,
                pages: c.success,
                errors: c.failed + c.retry,
            })
            .collect();
        recent.sort_by_key(|m| m.minute_ms);
        recent
    }

    /// Sums of the windows ending at `now_ms`.
    pub fn windows(&self, now_ms: i64) -> Windows {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let sum = |minutes: i64| {
            self.buckets
                .iter()
                .filter(|(m, _)| *m > minute - minutes && *m <= minute)
                .fold(WindowCounts::default(), |acc, (_, c)| WindowCounts {
                    pending: acc.pending + c.pending,
                    success: acc.success + c.success,
                    failed: acc.failed + c.failed,
                    retry: acc.retry + c.retry,
                })
        };
        Windows {
            m5: sum(5),
            h1: sum(60),
            d1: sum(BUCKETS as i64),
        }
    }
}

/// A project's tasks by status, all time: the last full count in the store plus the changes
/// the scheduler made since. A count runs in the background; changes made while it runs are
/// kept apart, so the count's result replaces only what it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    base: [i64; 4],
    delta: [i64; 4],
    delta_at_count: Option<[i64; 4]>,
}

fn slot(status: TaskStatus) -> usize {
    match status {
        TaskStatus::Active => 0,
        TaskStatus::Success => 1,
        TaskStatus::Failed => 2,
        TaskStatus::Bad => 3,
    }
}

impl Tally {
    /// A task moved from `from` (`None`: it is new) to `to`.
    pub fn moved(&mut self, from: Option<TaskStatus>, to: TaskStatus) {
        self.moved_n(from, to, 1);
    }

    /// `n` tasks moved from `from` (`None`: they are new) to `to`.
    pub fn moved_n(&mut self, from: Option<TaskStatus>, to: TaskStatus, n: u64) {
        if from == Some(to) {
            return;
        }
        if let Some(from) = from {
            self.delta[slot(from)] -= n as i64;
        }
        self.delta[slot(to)] += n as i64;
    }

    /// A full count of the store starts now.
    pub fn count_started(&mut self) {
        self.delta_at_count = Some(self.delta);
    }

    /// The count started by [`Tally::count_started`] returned `counts`.
    pub fn counted(&mut self, counts: TaskCounts) {
        let covered = self.delta_at_count.take().unwrap_or(self.delta);
        self.base = [
            (counts.queued + counts.claimed) as i64,
            counts.success as i64,
            counts.failed as i64,
            counts.bad as i64,
        ];
        for (d, c) in self.delta.iter_mut().zip(covered) {
            *d -= c;
        }
    }

    fn get(&self, status: TaskStatus) -> u64 {
        let i = slot(status);
        (self.base[i] + self.delta[i]).max(0) as u64
    }

    /// Waiting, delayed or in flight.
    pub fn active(&self) -> u64 {
        self.get(TaskStatus::Active)
    }

    /// Done.
    pub fn success(&self) -> u64 {
        self.get(TaskStatus::Success)
    }

    /// Given up.
    pub fn failed(&self) -> u64 {
        self.get(TaskStatus::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_follows_moves_and_counts_that_run_meanwhile() {
        let mut t = Tally::default();
        t.moved(None, TaskStatus::Active);
        t.count_started();
        // While the count runs: one more new task, one done.
        t.moved(None, TaskStatus::Active);
        t.moved(Some(TaskStatus::Active), TaskStatus::Success);
        // The count saw the first task and what was stored before.
        t.counted(TaskCounts {
            queued: 2,
            claimed: 1,
            success: 5,
            failed: 0,
            bad: 1,
        });
        assert_eq!((t.active(), t.success(), t.failed()), (3, 6, 0));
        t.moved(Some(TaskStatus::Bad), TaskStatus::Active);
        t.moved(Some(TaskStatus::Active), TaskStatus::Active);
        assert_eq!((t.active(), t.success(), t.failed()), (4, 6, 0));
    }

    #[test]
    fn windows_slide_minute_by_minute() {
        let mut c = Counters::default();
        let t0 = 1_000 * MINUTE_MS;
        c.add(t0, 1, 0, 0);
        c.add(t0 + 11 * MINUTE_MS, 0, 1, 0);
        c.add(t0 + 70 * MINUTE_MS, 0, 0, 1);
        let w = c.windows(t0 + 70 * MINUTE_MS);
        assert_eq!(
            w.m5,
            WindowCounts {
                pending: 0,
                success: 0,
                failed: 0,
                retry: 1
            }
        );
        assert_eq!(
            w.h1,
            WindowCounts {
                pending: 0,
                success: 0,
                failed: 1,
                retry: 1
            }
        );
        assert_eq!(
            w.d1,
            WindowCounts {
                pending: 0,
                success: 1,
                failed: 1,
                retry: 1
            }
        );
        let minutes = c.minutes(t0 + 70 * MINUTE_MS, 60);
        assert_eq!(
            minutes,
            [
                MinuteCounts {
                    minute_ms: t0 + 11 * MINUTE_MS,
                    pages: 0,
                    errors: 1
                },
                MinuteCounts {
                    minute_ms: t0 + 70 * MINUTE_MS,
                    pages: 0,
                    errors: 1
                }
            ],
            "the last hour's busy minutes, oldest first"
        );
        c.add_queued(t0 + 70 * MINUTE_MS, 7);
        assert_eq!(c.windows(t0 + 70 * MINUTE_MS).m5.pending, 7);
        // A day later the first buckets are reused, not summed again.
        c.add(t0 + BUCKETS as i64 * MINUTE_MS, 5, 0, 0);
        let w = c.windows(t0 + BUCKETS as i64 * MINUTE_MS);
        assert_eq!(w.d1.success, 5);
    }
}
