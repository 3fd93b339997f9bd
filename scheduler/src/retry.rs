//! What happens to a task whose attempt failed.

use std::time::Duration;

use spindle_common::message::TaskError;

/// Delays between attempts; the default is pyspider's: 30 s, 1 h, 6 h, then failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before retry number `i + 1`.
    pub delays: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays: vec![
                Duration::from_secs(30),
                Duration::from_secs(3600),
                Duration::from_secs(6 * 3600),
            ],
        }
    }
}

impl RetryPolicy {
    /// When to try again after failure number `retries + 1`, or `None` to give up. `max_retries`
    /// is the project's limit; the last delay repeats if the limit is longer than the list.
    /// The delay is capped by the task's `age_ms` (as pyspider does): a page due again every
    /// 10 minutes is not retried 6 hours later.
    pub fn next_attempt(
        &self,
        error: &TaskError,
        retries: u32,
        max_retries: u32,
        age_ms: Option<i64>,
        now_ms: i64,
    ) -> Option<i64> {
        next_attempt(&self.delays, error, retries, max_retries, age_ms, now_ms)
    }
}

/// [`RetryPolicy::next_attempt`] with the delays given: a project's own (`retry_delays`)
/// without copying them into a policy.
pub fn next_attempt(
    delays: &[Duration],
    error: &TaskError,
    retries: u32,
    max_retries: u32,
    age_ms: Option<i64>,
    now_ms: i64,
) -> Option<i64> {
    if !error.retryable || retries >= max_retries {
        return None;
    }
    let delay = delays
        .get(retries as usize)
        .or(delays.last())
        .copied()
        .unwrap_or_default();
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    let delay_ms = age_ms
        .filter(|age| *age > 0)
        .map_or(delay_ms, |age| delay_ms.min(age));
    Some(now_ms.saturating_add(delay_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_common::message::ErrorKind;

    fn error(retryable: bool) -> TaskError {
        TaskError {
            kind: ErrorKind::Timeout,
            message: "timed out".into(),
            retryable,
        }
    }

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_attempt(&error(true), 0, 3, None, 0), Some(30_000));
        assert_eq!(p.next_attempt(&error(true), 1, 3, None, 0), Some(3_600_000));
        assert_eq!(
            p.next_attempt(&error(true), 2, 3, None, 0),
            Some(21_600_000)
        );
        assert_eq!(p.next_attempt(&error(true), 3, 3, None, 0), None);
        assert_eq!(
            p.next_attempt(&error(true), 4, 5, None, 0),
            Some(21_600_000)
        );
    }

    #[test]
    fn the_delay_is_capped_by_the_age() {
        let p = RetryPolicy::default();
        let ten_minutes = Some(600_000);
        assert_eq!(
            p.next_attempt(&error(true), 0, 3, ten_minutes, 5),
            Some(30_005)
        );
        assert_eq!(
            p.next_attempt(&error(true), 1, 3, ten_minutes, 5),
            Some(600_005)
        );
        assert_eq!(p.next_attempt(&error(true), 3, 3, ten_minutes, 5), None);
        assert_eq!(
            p.next_attempt(&error(true), 1, 3, Some(0), 5),
            Some(3_600_005)
        );
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        assert_eq!(
            RetryPolicy::default().next_attempt(&error(false), 0, 3, None, 0),
            None
        );
    }
}
