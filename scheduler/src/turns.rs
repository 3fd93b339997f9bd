//! Hosts take turns in a project's queue.
//!
//! The store hands out ready tasks by priority, then by place ([`Task::order`]). Numbered in
//! arrival order, the 20 products of the first index page to come back would all be claimed
//! before the products of an index that came back a moment later, and the scheduler's window
//! would fill with the tasks of a few hosts that may each take only `host_concurrency` at a
//! time while every other host waits in the store: head-of-line blocking.
//!
//! So the scheduler gives each task it queues a place by start-time fair queuing over hosts:
//! the service point is the highest place claimed so far, and a host's next task goes one after
//! the later of the service point and that host's last place. Each host's tasks keep their
//! order; a host with a long backlog does not push a new host back; and the places of many
//! hosts discovered together interleave, so a claim takes the first task of each host, then the
//! second of each, and so on.
//!
//! Memory: one place per host with tasks queued beyond the service point, at most
//! `capacity` (beyond that the table is cleared, and hosts start again from the service point:
//! fairness degrades, nothing is lost).

use std::collections::HashMap;

use spindle_common::message::Task;

use crate::frontier::host_of;

/// The places of one project's queue.
#[derive(Debug)]
pub struct Turns {
    /// The highest place of a task claimed so far; 0 before the first claim, when places are
    /// left to the store (after a restart the scheduler does not know where the queue stands).
    service: i64,
    /// Each host's last place, for hosts whose last place is past the service point.
    last: HashMap<String, i64>,
    capacity: usize,
}

impl Turns {
    /// Places for a project, remembering at most `capacity` hosts.
    pub fn new(capacity: usize) -> Self {
        Self {
            service: 0,
            last: HashMap::new(),
            capacity,
        }
    }

    /// Tasks were claimed (from the store, or taken straight into the window): the service
    /// point moves to the highest of their places.
    pub fn claimed<'a>(&mut self, tasks: impl IntoIterator<Item = &'a Task>) {
        if let Some(highest) = tasks.into_iter().map(|t| t.order).max() {
            self.service = self.service.max(highest);
        }
    }

    /// Gives each of `tasks` its place, in the order given (a host's tasks keep their order);
    /// leaves them unplaced (0) before the first claim.
    pub fn place(&mut self, tasks: &mut [Task]) {
        if self.service == 0 {
            return;
        }
        if self.last.len() + tasks.len() > self.capacity {
            let service = self.service;
            self.last.retain(|_, last| *last > service);
            if self.last.len() + tasks.len() > self.capacity {
                self.last.clear();
            }
        }
        for task in tasks {
            let last = self.last.entry(host_of(&task.url)).or_insert(0);
            *last = (*last).max(self.service) + 1;
            task.order = *last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(host: &str, n: usize) -> Vec<Task> {
        (0..n)
            .map(|i| Task::new("p", &format!("http://{host}/{i}"), "c"))
            .collect()
    }

    fn places(tasks: &[Task]) -> Vec<i64> {
        tasks.iter().map(|t| t.order).collect()
    }

    #[test]
    fn hosts_queued_together_interleave_and_a_new_host_is_not_pushed_back() {
        let mut turns = Turns::new(100);
        let mut early = tasks("a", 3);
        turns.place(&mut early);
        assert_eq!(
            places(&early),
            [0, 0, 0],
            "no places before the first claim"
        );

        turns.claimed(&[Task {
            order: 1_000,
            ..Task::new("p", "http://x/", "c")
        }]);
        let (mut a, mut b) = (tasks("a", 3), tasks("b", 2));
        turns.place(&mut a);
        turns.place(&mut b);
        assert_eq!(places(&a), [1_001, 1_002, 1_003]);
        assert_eq!(
            places(&b),
            [1_001, 1_002],
            "b's first task is a's first task's peer"
        );
        let mut more_a = tasks("a", 1);
        turns.place(&mut more_a);
        assert_eq!(places(&more_a), [1_004], "a host's tasks keep their order");

        // Claims moved on past a's backlog's start: a host seen only now starts there.
        turns.claimed(&a[..2]);
        let mut c = tasks("c", 1);
        turns.place(&mut c);
        assert_eq!(places(&c), [1_003]);
    }

    #[test]
    fn the_table_of_hosts_stays_within_its_capacity() {
        let mut turns = Turns::new(4);
        turns.claimed(&[Task {
            order: 10,
            ..Task::new("p", "http://x/", "c")
        }]);
        for host in ["a", "b", "c", "d", "e", "f"] {
            turns.place(&mut tasks(host, 1));
            assert!(turns.last.len() <= 4);
        }
    }
}
