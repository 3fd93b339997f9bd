//! The scheduler loop.
//!
//! One task owns all state, so nothing here is locked. Each turn it
//! 1. takes every follow and outcome the bus has ready (one consumer for both, so a task's
//!    follows always come before its outcome),
//! 2. writes them to the store in batches — follows first, so a task is never recorded done
//!    while its follows could still be lost — and only then acknowledges them,
//! 3. tops up each running project's window from the store and sends what the rate and host
//!    limits allow, re-sending tasks whose deadline passed,
//! 4. sleeps until a message arrives or the next token, delay or deadline is due.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use spindle_common::bus::ConsumerSpec;
use spindle_common::message::{Message, Outcome, Task};
use spindle_common::project::Project;
use spindle_common::store::{
    Attempt, ProjectRecord, StoreError, TaskCounts, TaskStatus, TaskUpdate,
};
use spindle_common::subject::{Stage, durable};
use spindle_common::{Bus, Clock, Delivery, StatsBoard, Store};
use tokio_util::sync::CancellationToken;

use crate::budget::Budgets;
use crate::counters::{Counters, Tally};
use crate::dedupe::{Recent, admit};
use crate::frontier::{Frontier, HostLimits};
use crate::retry::next_attempt;
use crate::token_bucket::TokenBucket;
use crate::turns::Turns;
use crate::{SchedulerConfig, SchedulerError};

/// Runs the scheduler until `shutdown` is cancelled.
pub async fn run(
    config: SchedulerConfig,
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    board: Arc<StatsBoard>,
    shutdown: CancellationToken,
) -> Result<(), SchedulerError> {
    let spec = ConsumerSpec::new(Stage::NewTask.filter(), durable::SCHEDULER)
        .also(Stage::Status.filter())
        .max_in_flight(config.batch * 2);
    let mut consumer = bus.consume(spec).await?;
    let mut scheduler = Scheduler {
        config,
        bus,
        store,
        clock,
        board,
        projects: HashMap::new(),
        last_reload_ms: i64::MIN,
    };
    scheduler.reload_projects().await?;
    let mut batch: Vec<Delivery> = Vec::new();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        // Take all that is ready without waiting.
        while batch.len() < scheduler.config.batch {
            match consumer.next().now_or_never() {
                Some(Some(Ok(d))) => batch.push(d),
                Some(Some(Err(e))) => return Err(e.into()),
                Some(None) => return Ok(()),
                None => break,
            }
        }
        if !batch.is_empty() {
            scheduler.apply(std::mem::take(&mut batch)).await?;
        }
        let now = scheduler.clock.now_ms();
        if now - scheduler.last_reload_ms >= scheduler.config.reload_every.as_millis() as i64 {
            scheduler.reload_projects().await?;
        }
        let wake_ms = scheduler.dispatch().await?;
        let sleep = Duration::from_millis(wake_ms.clamp(1, 500) as u64);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            next = consumer.next() => match next {
                Some(Ok(d)) => batch.push(d),
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    if !batch.is_empty() {
        scheduler.apply(batch).await?;
    }
    Ok(())
}

/// A project the scheduler knows, running or not.
struct Loaded {
    project: Arc<Project>,
    record: ProjectRecord,
    running: Option<Running>,
    /// Last purge of its expired results (`result_ttl`); see [`lifecycle`].
    purged_ms: Option<i64>,
    /// Its tasks by status, and when they were last counted in the store.
    tally: Tally,
    counted_ms: Option<i64>,
    /// A full count running in the background.
    counting: Option<tokio::task::JoinHandle<Result<TaskCounts, StoreError>>>,
    /// Tasks recently seen, to drop duplicate follows without a store lookup.
    recent: Recent,
    /// The places that let hosts take turns in the queue.
    turns: Turns,
    /// The opt-in budgets of the current run.
    budgets: Budgets,
}

/// The dispatch state of a running project.
struct Running {
    frontier: Frontier,
    bucket: TokenBucket,
    counters: Counters,
    /// Retryable failures in a row.
    consecutive_failures: u32,
    /// Paused until then (Unix ms) after too many failures in a row; then one task probes.
    paused_until: Option<i64>,
    /// Tasks were sent since the project last finished: the next finish runs `[on_finished]`.
    busy: bool,
    /// The store may hold claimable tasks (set by every write, cleared by a short claim).
    refill: bool,
    /// Earliest exetime of a delayed task in the store.
    next_due_ms: Option<i64>,
    /// Forced updates of tasks in this window, queued when their running attempt ends. Only
    /// claimed tasks get here, so this is bounded by the window.
    deferred: HashMap<String, Task>,
}

struct Scheduler {
    config: SchedulerConfig,
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    board: Arc<StatsBoard>,
    projects: HashMap<String, Loaded>,
    last_reload_ms: i64,
}

/// The politeness limits of a project's hosts.
fn host_limits(project: &Project) -> HostLimits {
    HostLimits {
        concurrency: project.host_concurrency.max(1),
        delay_ms: project.host_delay.as_millis() as i64,
    }
}

impl Scheduler {
    /// Re-reads project definitions; starts, updates and stops projects to match.
    async fn reload_projects(&mut self) -> Result<(), SchedulerError> {
        let now = self.clock.now_ms();
        self.last_reload_ms = now;
        let records = self.store.projects().await?;
        let names: HashSet<String> = records.iter().map(|r| r.name.clone()).collect();
        self.forget_deleted(&names);
        for record in records {
            let unchanged = self
                .projects
                .get(&record.name)
                .is_some_and(|l| l.record.updated_ms == record.updated_ms);
            if !unchanged {
                self.load(record, now).await?;
            }
        }
        self.start_due_projects(now).await?;
        self.purge_expired_results(now).await?;
        let recount_ms = self.config.recount_every.as_millis() as i64;
        for (name, loaded) in &mut self.projects {
            // A full count reads the whole task table (seconds at millions of tasks), so it
            // runs in the background, at load and every `recount_every`; in between, the
            // tally follows the scheduler's own writes, and a restart never waits for it.
            if loaded.counting.as_ref().is_some_and(|c| c.is_finished())
                && let Some(counting) = loaded.counting.take()
            {
                match counting.await {
                    Ok(Ok(counts)) => loaded.tally.counted(counts),
                    Ok(Err(e)) => tracing::warn!(project = %name, error = %e, "task count failed"),
                    Err(e) => tracing::warn!(project = %name, error = %e, "task count failed"),
                }
            }
            if loaded.counting.is_none() && loaded.counted_ms.is_none_or(|t| now - t >= recount_ms)
            {
                loaded.tally.count_started();
                let (store, project) = (self.store.clone(), name.clone());
                loaded.counting = Some(tokio::spawn(
                    async move { store.task_counts(&project).await },
                ));
                loaded.counted_ms = Some(now);
            }
            let tally = loaded.tally;
            let held = loaded
                .running
                .as_ref()
                .map_or(0, |r| r.frontier.len() as u64);
            let windows = loaded
                .running
                .as_ref()
                .map(|r| (r.counters.windows(now), r.counters.minutes(now, 60)));
            self.board.update(name, |s| {
                if let Some((w, minutes)) = windows {
                    s.windows = w;
                    s.minutes = minutes;
                }
                s.queued = tally.active().saturating_sub(held);
                s.total_success = tally.success();
                s.total_failed = tally.failed();
            });
        }
        Ok(())
    }

    async fn load(&mut self, record: ProjectRecord, now: i64) -> Result<(), SchedulerError> {
        let project = match Project::parse(&record.definition) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::error!(project = %record.name, error = %e, "stored project does not parse; not scheduling it");
                self.projects.remove(&record.name);
                return Ok(());
            }
        };
        let run = record.status.dispatches();
        let mut previous = self.projects.remove(&record.name);
        let (tally, counted_ms, counting, recent, turns, mut budgets) = match previous.as_mut() {
            Some(p) => (
                p.tally,
                p.counted_ms,
                p.counting.take(),
                std::mem::replace(&mut p.recent, Recent::new(0)),
                std::mem::replace(&mut p.turns, Turns::new(0)),
                std::mem::take(&mut p.budgets),
            ),
            None => (
                Tally::default(),
                None,
                None,
                Recent::new(self.config.recent),
                Turns::new(self.config.hosts),
                Budgets::default(),
            ),
        };
        budgets.set_limits(project.max_pages_per_host, project.max_query_variants);
        let running = match previous.and_then(|p| p.running) {
            Some(mut r) if run => {
                r.bucket.set(record.rate, record.burst, now);
                Some(r)
            }
            Some(stopped) => {
                // Stopped: what was claimed goes back to the queue for the next start, with
                // the forced updates that were waiting for their runs.
                self.store.release_claims(&record.name).await?;
                let waiting: Vec<Task> = stopped.deferred.into_values().collect();
                self.store.put_tasks(&waiting, now).await?;
                None
            }
            None if run => {
                // First start in this process: claims left by a previous process are stale.
                let released = self.store.release_claims(&record.name).await?;
                if released > 0 {
                    tracing::info!(project = %record.name, released, "re-queued tasks that were in flight before a restart");
                }
                Some(Running {
                    frontier: Frontier::new(),
                    bucket: TokenBucket::new(record.rate, record.burst, now),
                    counters: Counters::default(),
                    consecutive_failures: 0,
                    paused_until: None,
                    busy: false,
                    refill: true,
                    next_due_ms: None,
                    deferred: HashMap::new(),
                })
            }
            None => None,
        };
        let paused = running.as_ref().is_some_and(|r| r.paused_until.is_some());
        self.board.update(&record.name, |s| {
            s.status = record.status;
            s.paused = paused;
            s.group = record.group.clone();
            s.rate = record.rate;
            s.burst = record.burst;
        });
        let name = record.name.clone();
        self.projects.insert(
            name,
            Loaded {
                project,
                record,
                running,
                purged_ms: None,
                tally,
                counted_ms,
                counting,
                recent,
                turns,
                budgets,
            },
        );
        Ok(())
    }

    /// Submits the start URLs of running projects that were never started, were asked to run
    /// now, or whose `every` period has passed.
    async fn start_due_projects(&mut self, now: i64) -> Result<(), SchedulerError> {
        let names: Vec<String> = self.projects.keys().cloned().collect();
        for name in &names {
            let Some(loaded) = self.projects.get(name) else {
                continue;
            };
            if loaded.running.is_none() {
                continue;
            }
            let Some(force) = lifecycle::start_due(loaded, now) else {
                continue;
            };
            let started = lifecycle::started_at(&loaded.record, now);
            let mut tasks = loaded.project.start_tasks();
            for t in &mut tasks {
                t.force = force;
            }
            self.store.mark_started(name, started).await?;
            if let Some(l) = self.projects.get_mut(name) {
                l.record.last_start_ms = started;
                l.budgets.new_run();
            }
            self.submit(name, tasks, now).await?;
        }
        Ok(())
    }

    /// Dedupes `tasks` against the store and queues the new or due ones.
    async fn submit(
        &mut self,
        project: &str,
        tasks: Vec<Task>,
        now: i64,
    ) -> Result<u64, SchedulerError> {
        let Some(loaded) = self.projects.get_mut(project) else {
            tracing::warn!(project, "follows for an unknown project dropped");
            return Ok(0);
        };
        let default_age = loaded.project.defaults.age.map(|d| d.as_millis() as i64);
        // Straight into the window while it has room and the store holds nothing ready.
        let take = match &loaded.running {
            Some(r) if !r.refill => self.config.window.saturating_sub(r.frontier.len()),
            _ => 0,
        };
        let submitted = tasks.len() as u64;
        let admitted = admit(
            self.store.as_ref(),
            project,
            tasks,
            &mut loaded.recent,
            &mut loaded.turns,
            &mut loaded.budgets,
            default_age,
            take,
            now,
        )
        .await?;
        for status in &admitted.known_before {
            loaded.tally.moved(Some(*status), TaskStatus::Active);
        }
        let new = admitted.queued - admitted.known_before.len() as u64;
        loaded.tally.moved_n(None, TaskStatus::Active, new);
        let n = admitted.queued;
        let taken = admitted.claimed.len() as u64;
        // Neither queued nor waiting for their running twin: dropped as already known (twice
        // in the batch, or stored and not due), which the crawl summary shows.
        let over_budget = admitted.over_budget;
        let known = submitted.saturating_sub(n + admitted.deferred.len() as u64 + over_budget);
        if known > 0 || over_budget > 0 {
            self.board.update(project, |s| {
                s.follows_known += known;
                s.over_budget += over_budget;
            });
        }
        if let Some(r) = loaded.running.as_mut() {
            for task in admitted.deferred {
                r.deferred.insert(task.taskid.clone(), task);
            }
            r.frontier.extend(admitted.claimed);
        }
        if n > 0 {
            if let Some(r) = loaded.running.as_mut() {
                r.refill |= n > taken;
                r.counters.add_queued(now, n);
            }
            self.board.update(project, |s| {
                s.queued_new += n;
                s.finished = false;
            });
        }
        Ok(n)
    }

    /// Applies a batch of follows and outcomes, then acknowledges it.
    async fn apply(&mut self, batch: Vec<Delivery>) -> Result<(), SchedulerError> {
        let now = self.clock.now_ms();
        let mut follows: HashMap<String, Vec<Task>> = HashMap::new();
        let mut outcomes: HashMap<String, Vec<Outcome>> = HashMap::new();
        let mut slots_freed = false;
        for d in &batch {
            match d.message.as_ref() {
                Message::NewTasks(n) => follows
                    .entry(n.project.clone())
                    .or_default()
                    .extend(n.tasks.iter().cloned()),
                Message::Status(o) => outcomes
                    .entry(o.project.clone())
                    .or_default()
                    .push(o.clone()),
                Message::Fetched(f) => {
                    self.fetched(&f.project, &f.taskid, now);
                    slots_freed = true;
                }
                other => {
                    tracing::warn!(subject = %d.subject, kind = ?std::mem::discriminant(other), "unexpected message on the scheduler's consumer")
                }
            }
        }
        // Freed slots serve their hosts' next requests now, not after the batch's writes: with
        // few slots per host, the store's commit would otherwise hold every one of them.
        if slots_freed {
            self.dispatch().await?;
        }
        for (project, tasks) in follows {
            self.submit(&project, tasks, now).await?;
        }
        for (project, outcomes) in outcomes {
            self.finish(&project, outcomes, now).await?;
        }
        Delivery::ack_all(batch).await?;
        Ok(())
    }

    /// A fetcher has the response of `taskid`: its host slot is free for the next request.
    fn fetched(&mut self, project: &str, taskid: &str, now: i64) {
        if let Some(loaded) = self.projects.get_mut(project)
            && let Some(r) = loaded.running.as_mut()
        {
            r.frontier
                .fetched(taskid, host_limits(&loaded.project), now);
        }
    }

    /// Records outcomes: done, failed, or retried later.
    async fn finish(
        &mut self,
        project: &str,
        outcomes: Vec<Outcome>,
        now: i64,
    ) -> Result<(), SchedulerError> {
        let (loaded_project, mut running) = match self.projects.get_mut(project) {
            Some(l) => (Some(l.project.clone()), l.running.as_mut()),
            None => (None, None),
        };
        let limits = loaded_project.as_deref().map(host_limits);
        let defaults = loaded_project.as_ref().map(|p| &p.defaults);
        let max_retries = defaults.map_or(0, |d| d.retries);
        let default_age = defaults.and_then(|d| d.age).map(|a| a.as_millis() as i64);
        // The project's own schedule, else the scheduler's.
        let delays = defaults
            .and_then(|d| d.retry_delays.as_deref())
            .unwrap_or(&self.config.retry.delays);
        let mut updates = Vec::with_capacity(outcomes.len());
        let (mut ok, mut failed, mut retried, mut items, mut fetch_ms, mut process_ms) =
            (0, 0, 0, 0, 0, 0);
        let (mut form_values_literal, mut near_duplicates) = (0, 0);
        // Outcomes of tasks this process did not send: a previous process's, or one delivered
        // again after a restart, whose write the store may already hold.
        let mut strangers = 0;
        for o in &outcomes {
            let mut age_ms = default_age;
            if let (Some(r), Some(limits)) = (running.as_mut(), limits) {
                match r.frontier.answered(&o.taskid, limits, now) {
                    Some(sent) => age_ms = sent.task.age_ms.or(default_age),
                    None => strangers += 1,
                }
                // The site asked us to slow down: that host waits, the others keep their pace.
                if matches!(o.status_code, Some(429 | 503)) {
                    let wait = o
                        .retry_after_ms
                        .map(Duration::from_millis)
                        .unwrap_or(self.config.host_backoff)
                        .min(self.config.max_retry_after);
                    let host = crate::frontier::host_of(&o.url);
                    tracing::info!(project, host = %host, wait_ms = wait.as_millis() as u64, "host backed off");
                    // +1: `now` is rounded down, and the wait must not end early.
                    r.frontier
                        .back_off(&host, now + wait.as_millis() as i64 + 1);
                }
            }
            items += o.items as u64;
            form_values_literal += u64::from(o.form_values_literal);
            near_duplicates += u64::from(o.duplicate_of.is_some());
            fetch_ms += o.fetch_ms as u64;
            process_ms += o.process_ms as u64;
            if let Some(r) = running.as_mut() {
                match &o.error {
                    None => {
                        r.consecutive_failures = 0;
                        if r.paused_until.take().is_some() {
                            tracing::info!(project, "probe succeeded; project resumes");
                        }
                    }
                    Some(err) if err.retryable => {
                        r.consecutive_failures += 1;
                        if r.consecutive_failures >= self.config.pause_after {
                            let until = now + self.config.pause_for.as_millis() as i64;
                            if r.paused_until.is_none() {
                                tracing::warn!(
                                    project,
                                    failures = r.consecutive_failures,
                                    "too many failures in a row; project paused"
                                );
                            }
                            r.paused_until = Some(until);
                        }
                    }
                    // A permanent failure (e.g. a 404) says nothing about the site's health.
                    Some(_) => {}
                }
            }
            // What the attempt did, for the task's page.
            let track = Some(Attempt::from(o));
            let update = match &o.error {
                None => {
                    ok += 1;
                    TaskUpdate {
                        taskid: o.taskid.clone(),
                        status: TaskStatus::Success,
                        exetime: now,
                        retries: o.retries,
                        at_ms: now,
                        // A success has no error; a near-duplicate page says why it gave no
                        // follows, for `spindle task` and the task's page.
                        last_error: o.duplicate_of.as_ref().map(|original| {
                            format!(
                                "near-duplicate of task {original}: its follows were not expanded"
                            )
                        }),
                        etag: o.etag.clone(),
                        last_modified: o.last_modified.clone(),
                        track,
                    }
                }
                Some(err) => {
                    match next_attempt(delays, err, o.retries, max_retries, age_ms, now) {
                        Some(at) => {
                            // The site said when to come back (`Retry-After` on a 429 or 503): that
                            // replaces the retry schedule's delay, within `max_retry_after`.
                            let at = o.retry_after_ms.map_or(at, |ms| {
                                now + ms.min(self.config.max_retry_after.as_millis() as u64) as i64
                                    + 1
                            });
                            retried += 1;
                            tracing::debug!(project, url = %o.url, error = %err.message, "retrying later");
                            TaskUpdate {
                                taskid: o.taskid.clone(),
                                status: TaskStatus::Active,
                                exetime: at,
                                retries: o.retries + 1,
                                at_ms: now,
                                last_error: Some(err.message.clone()),
                                etag: None,
                                last_modified: None,
                                track,
                            }
                        }
                        None => {
                            failed += 1;
                            tracing::info!(project, url = %o.url, error = %err.message, "task failed");
                            TaskUpdate {
                                taskid: o.taskid.clone(),
                                status: TaskStatus::Failed,
                                exetime: now,
                                retries: o.retries,
                                at_ms: now,
                                last_error: Some(err.message.clone()),
                                etag: None,
                                last_modified: None,
                                track,
                            }
                        }
                    }
                }
            };
            updates.push(update);
        }
        self.store.finish_tasks(project, &updates).await?;
        // Forced updates that waited for these runs to end go to the queue now.
        let rerun: Vec<Task> = match running.as_mut() {
            Some(r) if !r.deferred.is_empty() => outcomes
                .iter()
                .filter_map(|o| r.deferred.remove(&o.taskid))
                .collect(),
            _ => Vec::new(),
        };
        let (mut windows, mut consecutive, mut paused) = (None, 0, false);
        if let Some(r) = running.as_mut() {
            r.refill |= retried > 0;
            r.counters.add(now, ok, failed, retried);
            windows = Some((r.counters.windows(now), r.counters.minutes(now, 60)));
            consecutive = r.consecutive_failures;
            paused = r.paused_until.is_some();
        }
        let mut tally = Tally::default();
        if let Some(l) = self.projects.get_mut(project) {
            l.tally
                .moved_n(Some(TaskStatus::Active), TaskStatus::Success, ok);
            l.tally
                .moved_n(Some(TaskStatus::Active), TaskStatus::Failed, failed);
            tally = l.tally;
            if strangers > 0 || l.running.is_none() {
                // The tally may have counted a task twice (its first outcome was written
                // before a crash, the redelivery again now): the store is counted again at
                // the next tick rather than at the next `recount_every`.
                l.counted_ms = None;
            }
        }
        self.board.update(project, |s| {
            if let Some((w, minutes)) = windows {
                s.windows = w;
                s.minutes = minutes;
            }
            s.consecutive_failures = consecutive;
            s.paused = paused;
            s.success += ok;
            s.failed += failed;
            s.retried += retried;
            s.items += items;
            s.form_values_literal += form_values_literal;
            s.near_duplicates += near_duplicates;
            s.fetch_ms += fetch_ms;
            s.process_ms += process_ms;
            s.total_success = tally.success();
            s.total_failed = tally.failed();
            let answered = (s.success + s.failed + s.retried).max(1) as f64;
            s.avg_fetch_ms = s.fetch_ms as f64 / answered;
            s.avg_process_ms = s.process_ms as f64 / s.success.max(1) as f64;
        });
        if !rerun.is_empty() {
            self.submit(project, rerun, now).await?;
        }
        Ok(())
    }
}

mod dispatch;
mod lifecycle;

#[cfg(test)]
mod tests;
