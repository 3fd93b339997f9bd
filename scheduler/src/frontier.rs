//! The in-memory window of one project's frontier.
//!
//! The store holds the whole frontier; this window holds at most `capacity` tasks claimed
//! from it: ready ones ordered by priority then first-in first-out, ones parked because their
//! host is busy or must wait (`host_concurrency`, `host_delay`), and ones in flight with the
//! deadline after which they are sent again. Everything here is bounded by `capacity`, so the
//! scheduler's memory does not grow with the number of known URLs.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use spindle_common::message::Task;

/// A ready task in the heap: higher priority first, then lower sequence (older) first.
#[derive(Debug)]
struct Ready {
    priority: i32,
    seq: u64,
    task: Task,
}

impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Politeness state of one host.
#[derive(Debug, Default)]
struct Host {
    in_flight: u32,
    /// Earliest time of the next request (Unix ms).
    next_ms: i64,
    parked: VecDeque<(u64, Task)>,
}

/// A task sent to the fetchers and not yet answered.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The task as dispatched.
    pub task: Task,
    /// Its host.
    pub host: String,
    /// When it is considered lost and sent again (Unix ms).
    pub deadline_ms: i64,
    /// Whether it still holds one of its host's slots: from dispatch until its response is in
    /// ([`Frontier::fetched`]) or, for a failed fetch, until its outcome.
    holds_slot: bool,
}

/// Per-host limits.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    /// Requests in flight per host, at most.
    pub concurrency: u32,
    /// Minimum gap between two requests to one host, in ms.
    pub delay_ms: i64,
}

/// The in-memory window of one project.
#[derive(Debug)]
pub struct Frontier {
    ready: BinaryHeap<Ready>,
    hosts: HashMap<String, Host>,
    parked: usize,
    in_flight: HashMap<String, InFlight>,
    seq: u64,
}

/// The host part of a task's URL ("" if it has none).
pub fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| {
                u.port()
                    .map_or_else(|| h.to_string(), |p| format!("{h}:{p}"))
            })
        })
        .unwrap_or_default()
}

impl Frontier {
    /// An empty window.
    pub fn new() -> Self {
        Self {
            ready: BinaryHeap::new(),
            hosts: HashMap::new(),
            parked: 0,
            in_flight: HashMap::new(),
            seq: 0,
        }
    }

    /// Tasks held: ready, parked and in flight.
    pub fn len(&self) -> usize {
        self.ready.len() + self.parked + self.in_flight.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ready and parked tasks (claimed, not yet dispatched).
    pub fn waiting(&self) -> usize {
        self.ready.len() + self.parked
    }

    /// Tasks in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Adds claimed tasks, in the order the store returned them (best first).
    pub fn extend(&mut self, tasks: impl IntoIterator<Item = Task>) {
        for task in tasks {
            self.seq += 1;
            self.ready.push(Ready {
                priority: task.priority,
                seq: self.seq,
                task,
            });
        }
    }

    /// Moves parked tasks of hosts that may take a request again back to the ready heap.
    fn unpark(&mut self, limits: HostLimits, now_ms: i64) {
        if self.parked == 0 {
            return;
        }
        for host in self.hosts.values_mut() {
            let mut free = limits.concurrency.saturating_sub(host.in_flight);
            while free > 0 && host.next_ms <= now_ms {
                let Some((seq, task)) = host.parked.pop_front() else {
                    break;
                };
                self.parked -= 1;
                free -= 1;
                self.ready.push(Ready {
                    priority: task.priority,
                    seq,
                    task,
                });
            }
        }
    }

    /// The next task that may be sent now under the host limits, if any. The caller must
    /// either [`Frontier::dispatched`] it or [`Frontier::put_back`] it.
    pub fn pop(&mut self, limits: HostLimits, now_ms: i64) -> Option<Task> {
        self.unpark(limits, now_ms);
        while let Some(Ready { seq, task, .. }) = self.ready.pop() {
            let host = host_of(&task.url);
            let state = self.hosts.entry(host).or_default();
            if state.in_flight < limits.concurrency && state.next_ms <= now_ms {
                return Some(task);
            }
            state.parked.push_back((seq, task));
            self.parked += 1;
        }
        None
    }

    /// Returns a popped task that was not sent (e.g. no rate token was left).
    pub fn put_back(&mut self, task: Task) {
        // Sequence 0 puts it ahead of everything of its priority: it was next.
        self.ready.push(Ready {
            priority: task.priority,
            seq: 0,
            task,
        });
    }

    /// Records that `task` was sent at `now_ms`: it takes one of its host's slots, and the
    /// host's next request waits `delay_ms` from this one's start.
    pub fn dispatched(&mut self, task: Task, limits: HostLimits, now_ms: i64, deadline_ms: i64) {
        let host = host_of(&task.url);
        let state = self.hosts.entry(host.clone()).or_default();
        state.in_flight += 1;
        state.next_ms = now_ms + limits.delay_ms;
        self.in_flight.insert(
            task.taskid.clone(),
            InFlight {
                task,
                host,
                deadline_ms,
                holds_slot: true,
            },
        );
    }

    /// The response of `taskid` is in (its page goes on to a processor): its host slot is free
    /// and the host's next request waits `delay_ms` from now, while the task stays in flight
    /// until its outcome. A notice for a task no longer in flight (its outcome came first, or
    /// the notice is repeated) changes nothing.
    pub fn fetched(&mut self, taskid: &str, limits: HostLimits, now_ms: i64) {
        let Some(entry) = self.in_flight.get_mut(taskid) else {
            return;
        };
        if std::mem::take(&mut entry.holds_slot) {
            Self::free_slot(&mut self.hosts, &entry.host, limits, now_ms);
        }
    }

    fn free_slot(hosts: &mut HashMap<String, Host>, host: &str, limits: HostLimits, now_ms: i64) {
        if let Some(host) = hosts.get_mut(host) {
            host.in_flight = host.in_flight.saturating_sub(1);
            host.next_ms = host.next_ms.max(now_ms + limits.delay_ms);
        }
    }

    /// Records the answer for `taskid`, freeing its host slot if its response did not already
    /// ([`Frontier::fetched`]); returns the in-flight entry if it was in flight.
    pub fn answered(&mut self, taskid: &str, limits: HostLimits, now_ms: i64) -> Option<InFlight> {
        let entry = self.in_flight.remove(taskid)?;
        if entry.holds_slot {
            Self::free_slot(&mut self.hosts, &entry.host, limits, now_ms);
        }
        Some(entry)
    }

    /// Sends nothing more to `host` before `until_ms` (a 429 or 503 told us to wait).
    pub fn back_off(&mut self, host: &str, until_ms: i64) {
        let state = self.hosts.entry(host.to_string()).or_default();
        state.next_ms = state.next_ms.max(until_ms);
    }

    /// Forgets hosts with nothing in flight, nothing parked and no delay pending, so the
    /// host table stays as small as the window.
    pub fn prune_hosts(&mut self, now_ms: i64) {
        self.hosts
            .retain(|_, h| h.in_flight > 0 || !h.parked.is_empty() || h.next_ms > now_ms);
    }

    /// In-flight tasks past their deadline; their deadline is moved to `next_deadline_ms`. A
    /// task sent again takes a slot of its host again if its response had freed one.
    pub fn expired(&mut self, now_ms: i64, next_deadline_ms: i64) -> Vec<Task> {
        let hosts = &mut self.hosts;
        self.in_flight
            .values_mut()
            .filter(|f| f.deadline_ms <= now_ms)
            .map(|f| {
                f.deadline_ms = next_deadline_ms;
                if !std::mem::replace(&mut f.holds_slot, true) {
                    hosts.entry(f.host.clone()).or_default().in_flight += 1;
                }
                f.task.clone()
            })
            .collect()
    }

    /// Earliest time a parked task's host frees up by delay alone (for the wake-up timer).
    pub fn next_host_ms(&self, limits: HostLimits) -> Option<i64> {
        self.hosts
            .values()
            .filter(|h| !h.parked.is_empty() && h.in_flight < limits.concurrency)
            .map(|h| h.next_ms)
            .min()
    }
}

impl Default for Frontier {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, host: &str, priority: i32) -> Task {
        Task {
            taskid: id.into(),
            priority,
            ..Task::new("p", &format!("http://{host}/{id}"), "c")
        }
    }

    const OPEN: HostLimits = HostLimits {
        concurrency: 100,
        delay_ms: 0,
    };

    fn drain(f: &mut Frontier, limits: HostLimits, now: i64) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = f.pop(limits, now) {
            out.push(t.taskid.clone());
            f.dispatched(t, limits, now, now + 1000);
        }
        out
    }

    #[test]
    fn priority_first_then_fifo() {
        let mut f = Frontier::new();
        f.extend([
            task("a", "h", 0),
            task("b", "h", 2),
            task("c", "h", 0),
            task("d", "h", 2),
        ]);
        assert_eq!(drain(&mut f, OPEN, 0), ["b", "d", "a", "c"]);
    }

    #[test]
    fn host_concurrency_parks_tasks_until_an_answer() {
        let limits = HostLimits {
            concurrency: 2,
            delay_ms: 0,
        };
        let mut f = Frontier::new();
        f.extend([
            task("a", "slow", 0),
            task("b", "slow", 0),
            task("c", "slow", 0),
            task("x", "fast", 0),
        ]);
        assert_eq!(drain(&mut f, limits, 0), ["a", "b", "x"]);
        assert_eq!(f.waiting(), 1);
        assert!(f.answered("a", limits, 0).is_some());
        assert_eq!(drain(&mut f, limits, 0), ["c"]);
    }

    #[test]
    fn host_delay_spaces_requests() {
        let limits = HostLimits {
            concurrency: 10,
            delay_ms: 100,
        };
        let mut f = Frontier::new();
        f.extend([task("a", "h", 0), task("b", "h", 0)]);
        assert_eq!(drain(&mut f, limits, 0), ["a"]);
        assert_eq!(f.next_host_ms(limits), Some(100));
        assert!(drain(&mut f, limits, 99).is_empty());
        assert_eq!(drain(&mut f, limits, 100), ["b"]);
    }

    #[test]
    fn lost_tasks_expire_once_per_deadline() {
        let mut f = Frontier::new();
        f.extend([task("a", "h", 0)]);
        drain(&mut f, OPEN, 0);
        assert!(f.expired(999, 2_000).is_empty());
        assert_eq!(f.expired(1_000, 2_000).len(), 1);
        assert!(f.expired(1_500, 3_000).is_empty());
        assert!(f.answered("a", OPEN, 1_500).is_some());
        assert!(f.answered("a", OPEN, 1_500).is_none());
        f.prune_hosts(0);
        assert!(f.is_empty());
    }

    #[test]
    fn a_response_frees_the_host_slot_once_and_the_delay_counts_from_it() {
        let limits = HostLimits {
            concurrency: 1,
            delay_ms: 100,
        };
        let mut f = Frontier::new();
        f.extend([task("a", "h", 0), task("b", "h", 0), task("c", "h", 0)]);
        assert_eq!(drain(&mut f, limits, 0), ["a"]);
        // The response of `a` is in at 50: the host may take `b` 100 ms after that, while `a`
        // is still being processed.
        f.fetched("a", limits, 50);
        assert!(drain(&mut f, limits, 149).is_empty());
        assert_eq!(drain(&mut f, limits, 150), ["b"]);
        assert_eq!(f.in_flight(), 2, "a stays in flight until its outcome");
        // Its outcome frees nothing more, and a repeated notice neither.
        f.fetched("a", limits, 300);
        assert!(f.answered("a", limits, 300).is_some());
        assert!(
            drain(&mut f, limits, 1_000).is_empty(),
            "b still holds the slot"
        );
        // A failed fetch has no notice: its outcome frees the slot.
        assert!(f.answered("b", limits, 1_000).is_some());
        assert!(drain(&mut f, limits, 1_099).is_empty());
        assert_eq!(drain(&mut f, limits, 1_100), ["c"]);
    }

    #[test]
    fn a_task_sent_again_takes_its_host_slot_again() {
        let limits = HostLimits {
            concurrency: 1,
            delay_ms: 0,
        };
        let mut f = Frontier::new();
        f.extend([task("a", "h", 0), task("b", "h", 0)]);
        assert_eq!(drain(&mut f, limits, 0), ["a"]);
        f.fetched("a", limits, 10);
        assert_eq!(
            f.expired(1_000, 2_000).len(),
            1,
            "a is lost in processing: sent again"
        );
        assert!(
            drain(&mut f, limits, 1_000).is_empty(),
            "the resent a holds the slot"
        );
        f.fetched("a", limits, 1_010);
        assert_eq!(drain(&mut f, limits, 1_010), ["b"]);
    }

    #[test]
    fn a_put_back_task_is_next() {
        let mut f = Frontier::new();
        f.extend([task("a", "h", 0), task("b", "h", 0)]);
        let a = f.pop(OPEN, 0).expect("a task");
        f.put_back(a);
        assert_eq!(drain(&mut f, OPEN, 0), ["a", "b"]);
    }
}
