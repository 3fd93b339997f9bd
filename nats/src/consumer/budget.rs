//! How much one handle may ask the server for: its pull requests and what they may still bring.
//!
//! A pure type (no server, no clock of its own) so its arithmetic is tested alone. The handle
//! asks [`PullBudget::plan`] before it sends a request, records it with
//! [`PullBudget::sent`] once the send happened, and tells the budget what arrived.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How long after its expiry a pull request with no answer is forgotten.
const GRACE: Duration = Duration::from_secs(1);

/// A pull request the server may still be filling.
#[derive(Debug, Clone, PartialEq)]
struct PullRequest {
    id: u64,
    remaining: usize,
    /// When it is forgotten if the server never says it ended.
    ends: Instant,
}

/// A request to send: its id (the last token of its reply subject) and batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Planned {
    pub id: u64,
    pub batch: usize,
}

/// The outstanding pull requests of one handle and what they entitle it to.
///
/// Slots count deliveries, requests count messages, and a message may be a bundle of several
/// deliveries: the budget keeps a running average of deliveries per message and converts.
#[derive(Debug)]
pub(super) struct PullBudget {
    max_in_flight: usize,
    /// Oldest first: the server fills them in that order.
    requests: VecDeque<PullRequest>,
    next_id: u64,
    per_message: f64,
    /// No request before this (the server refused one, or is not ready).
    hold_until: Option<Instant>,
}

impl PullBudget {
    /// A budget for a handle holding at most `max_in_flight` deliveries.
    pub(super) fn new(max_in_flight: usize) -> Self {
        Self {
            max_in_flight: max_in_flight.max(1),
            requests: VecDeque::new(),
            next_id: 0,
            per_message: 1.0,
            hold_until: None,
        }
    }

    /// A message arrived: the oldest request has one fewer to bring.
    pub(super) fn received(&mut self) {
        if let Some(oldest) = self.requests.front_mut() {
            oldest.remaining = oldest.remaining.saturating_sub(1);
            if oldest.remaining == 0 {
                self.requests.pop_front();
            }
        }
    }

    /// The server said request `id` ended (expired, empty, refused).
    pub(super) fn ended(&mut self, id: u64) {
        self.requests.retain(|r| r.id != id);
    }

    /// A received message held `n` deliveries.
    pub(super) fn count_deliveries(&mut self, n: usize) {
        self.per_message = (self.per_message * 0.9 + n as f64 * 0.1).max(1.0);
    }

    /// No request before `until`.
    pub(super) fn hold(&mut self, until: Instant) {
        self.hold_until = Some(until);
    }

    /// Whether a hold is still on at `now`; a hold that passed is lifted.
    pub(super) fn holding(&mut self, now: Instant) -> bool {
        if self.hold_until.is_some_and(|t| now < t) {
            return true;
        }
        self.hold_until = None;
        false
    }

    /// The request to send now, given the `occupied` slots (deliveries handed out and not
    /// settled, plus parts received and not handed out), or `None`. Requests are few and
    /// large: one goes out only when none is outstanding or a quarter of the slots came free
    /// since. Nothing is recorded until [`PullBudget::sent`], so a send that never happens
    /// (a cancelled call) costs nothing but an id.
    pub(super) fn plan(&mut self, occupied: usize) -> Option<Planned> {
        let coming_messages: usize = self.requests.iter().map(|r| r.remaining).sum();
        let coming = (coming_messages as f64 * self.per_message).ceil() as usize;
        let free = self.max_in_flight.saturating_sub(occupied + coming);
        if free == 0 || (coming_messages > 0 && free < self.max_in_flight.div_ceil(4)) {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        Some(Planned {
            id,
            batch: ((free as f64 / self.per_message) as usize).max(1),
        })
    }

    /// `planned` went out at `now` and expires on the server after `expires`.
    pub(super) fn sent(&mut self, planned: Planned, now: Instant, expires: Duration) {
        self.requests.push_back(PullRequest {
            id: planned.id,
            remaining: planned.batch,
            ends: now + expires + GRACE,
        });
    }

    /// Forgets requests the server never answered (lost in a restart, say).
    pub(super) fn expire(&mut self, now: Instant) {
        self.requests.retain(|r| r.ends > now);
    }

    /// When something timed is due: a request to forget, or the end of a hold.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        let ends = self.requests.iter().map(|r| r.ends).min();
        match (ends, self.hold_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// After a reconnection the server has no request of ours any more.
    pub(super) fn reset(&mut self) {
        self.requests.clear();
        self.hold_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRES: Duration = Duration::from_secs(30);

    fn send(budget: &mut PullBudget, occupied: usize, now: Instant) -> Option<Planned> {
        let planned = budget.plan(occupied)?;
        budget.sent(planned, now, EXPIRES);
        Some(planned)
    }

    #[test]
    fn the_first_request_asks_for_every_free_slot() {
        let mut budget = PullBudget::new(8);
        let now = Instant::now();
        assert_eq!(send(&mut budget, 3, now).map(|p| p.batch), Some(5));
        assert_eq!(budget.plan(3), None, "the outstanding request covers them");
    }

    #[test]
    fn a_top_up_waits_for_a_quarter_of_the_slots() {
        let mut budget = PullBudget::new(8);
        let now = Instant::now();
        send(&mut budget, 0, now).expect("a request");
        // One message came and its delivery is still held: nothing is free.
        budget.received();
        assert_eq!(budget.plan(1), None);
        // It was settled: one slot free, less than a quarter (2) while a request is out.
        assert_eq!(budget.plan(0), None);
        budget.received();
        assert_eq!(budget.plan(0).map(|p| p.batch), Some(2));
    }

    #[test]
    fn arrivals_fill_the_oldest_request_first() {
        let mut budget = PullBudget::new(4);
        let now = Instant::now();
        let first = send(&mut budget, 2, now).expect("first");
        assert_eq!(first.batch, 2);
        budget.received();
        budget.received();
        let second = send(&mut budget, 2, now).expect("the first request is filled");
        assert_eq!((second.id, second.batch), (first.id + 1, 2));
    }

    #[test]
    fn an_ended_request_frees_what_it_would_have_brought() {
        let mut budget = PullBudget::new(4);
        let now = Instant::now();
        let request = send(&mut budget, 0, now).expect("request");
        assert_eq!(budget.plan(0), None);
        budget.ended(request.id);
        assert_eq!(budget.plan(0).map(|p| p.batch), Some(4));
    }

    #[test]
    fn bundles_shrink_requests_to_the_deliveries_they_bring() {
        let mut budget = PullBudget::new(100);
        for _ in 0..100 {
            budget.count_deliveries(10);
        }
        let planned = budget.plan(0).expect("request");
        assert!((10..=11).contains(&planned.batch), "{planned:?}");
        // A message never counts for less than one delivery.
        let mut plain = PullBudget::new(10);
        plain.count_deliveries(0);
        assert_eq!(plain.plan(0).map(|p| p.batch), Some(10));
    }

    #[test]
    fn unanswered_requests_are_forgotten_after_their_expiry() {
        let mut budget = PullBudget::new(4);
        let now = Instant::now();
        send(&mut budget, 0, now).expect("request");
        let ends = now + EXPIRES + GRACE;
        assert_eq!(budget.next_wake(), Some(ends));
        budget.expire(ends - Duration::from_millis(1));
        assert_eq!(budget.plan(0), None, "still outstanding");
        budget.expire(ends);
        assert_eq!(budget.next_wake(), None);
        assert_eq!(budget.plan(0).map(|p| p.batch), Some(4));
    }

    #[test]
    fn a_hold_delays_requests_until_it_passes() {
        let mut budget = PullBudget::new(4);
        let now = Instant::now();
        let until = now + Duration::from_secs(1);
        budget.hold(until);
        assert_eq!(budget.next_wake(), Some(until));
        assert!(budget.holding(now));
        assert!(!budget.holding(until));
        assert_eq!(budget.next_wake(), None, "a passed hold is lifted");
    }

    #[test]
    fn a_reconnection_forgets_requests_and_holds() {
        let mut budget = PullBudget::new(4);
        let now = Instant::now();
        send(&mut budget, 0, now).expect("request");
        budget.hold(now + Duration::from_secs(5));
        budget.reset();
        assert!(!budget.holding(now));
        assert_eq!(budget.plan(0).map(|p| p.batch), Some(4));
    }
}
