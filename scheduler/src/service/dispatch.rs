//! Dispatch: each turn tops up every running project's window from the store and sends what
//! its rate and host limits allow, re-sending tasks whose deadline passed; a project with
//! nothing left runs its `[on_finished]` hook.

use spindle_common::message::{Message, Results, Task, WIRE_VERSION};
use spindle_common::project::Project;
use spindle_common::subject::Stage;

use super::Scheduler;
use crate::SchedulerError;

impl Scheduler {
    /// Tops up windows and sends what may be sent; returns ms until something is due.
    pub(super) async fn dispatch(&mut self) -> Result<i64, SchedulerError> {
        let now = self.clock.now_ms();
        let mut wake = 500_i64;
        let names: Vec<String> = self.projects.keys().cloned().collect();
        for name in names {
            let Some(loaded) = self.projects.get_mut(&name) else {
                continue;
            };
            let project = loaded.project.clone();
            let Some(r) = loaded.running.as_mut() else {
                continue;
            };
            let turns = &mut loaded.turns;
            let limits = super::host_limits(&project);
            // Top up when an eighth is free and the store may have something: with many hosts
            // most of the window is in flight, and the tasks that would keep every host busy
            // are in the store.
            let room = self.config.window.saturating_sub(r.frontier.len());
            let due = r.next_due_ms.is_some_and(|t| t <= now);
            if room >= self.config.window / 8 && (r.refill || due) {
                let claimed = self.store.claim_ready(&name, now, room).await?;
                if claimed.len() < room {
                    r.refill = false;
                    r.next_due_ms = self.store.next_due(&name).await?;
                }
                turns.claimed(&claimed);
                r.frontier.extend(claimed);
            }
            if let Some(t) = r.next_due_ms {
                wake = wake.min(t - now);
            }
            // Lost tasks go out again.
            let deadline = now + self.config.dispatch_deadline.as_millis() as i64;
            let lost = r.frontier.expired(now, deadline);
            let subject = Stage::Fetch.subject(&name);
            // Published together after the loop: one pipelined batch rather than a round trip
            // per task. A task counts as dispatched first; if the publish fails, the deadline
            // sends it again.
            let mut outgoing = Vec::with_capacity(lost.len());
            for task in &lost {
                tracing::warn!(project = %name, url = %task.url, "no answer before the deadline; sending again");
                let message = Message::Fetch(with_defaults(&project, task.clone()));
                outgoing.push((subject.clone(), message));
            }
            // A paused project sends nothing until its pause ends, then one probe at a time.
            let max_in_flight = match r.paused_until {
                Some(until) if until > now => {
                    wake = wake.min(until - now);
                    0
                }
                Some(_) => 1,
                None => self.config.max_in_flight,
            };
            while r.frontier.in_flight() < max_in_flight {
                if let Some(wait) = r.bucket.wait_ms(now)
                    && wait > 0
                {
                    wake = wake.min(wait);
                    break;
                }
                let Some(task) = r.frontier.pop(limits, now) else {
                    break;
                };
                if !r.bucket.try_take(now) {
                    r.frontier.put_back(task);
                    break;
                }
                let message = Message::Fetch(with_defaults(&project, task.clone()));
                outgoing.push((subject.clone(), message));
                r.frontier.dispatched(task, limits, now, deadline);
                r.busy = true;
            }
            if !outgoing.is_empty() {
                self.bus.publish_batch(outgoing).await?;
            }
            if let Some(t) = r.frontier.next_host_ms(limits) {
                wake = wake.min(t - now);
            }
            r.frontier.prune_hosts(now);
            let (waiting, in_flight, empty) = (
                r.frontier.waiting() as u64,
                r.frontier.in_flight() as u64,
                r.frontier.is_empty(),
            );
            // Nothing in memory, and the last claim found the store without ready or delayed tasks.
            let finished = empty && !r.refill && r.next_due_ms.is_none();
            let run_hook = finished && std::mem::take(&mut r.busy);
            let resent = lost.len() as u64;
            self.board.update(&name, |s| {
                s.waiting = waiting;
                s.in_flight = in_flight;
                s.resent += resent;
                s.finished = finished;
            });
            if run_hook {
                self.on_finished(&project, now).await?;
            }
        }
        Ok(wake)
    }

    /// Runs the project's `[on_finished]` hook: its item goes to the result writer, its
    /// follows (a webhook, say) into the queue, which starts the project again for them.
    async fn on_finished(&mut self, project: &Project, now: i64) -> Result<(), SchedulerError> {
        let output = project.on_finished_output(now);
        if !output.items.is_empty() {
            let results = Results {
                v: WIRE_VERSION,
                project: project.name.clone(),
                items: output.items,
                outcome: None,
            };
            self.bus
                .publish(
                    &Stage::Result.subject(&project.name),
                    Message::Results(results),
                )
                .await?;
        }
        if !output.follows.is_empty() {
            self.submit(&project.name, output.follows, now).await?;
        }
        tracing::info!(project = %project.name, "crawl finished");
        Ok(())
    }
}

/// The task as sent: project defaults merged under the task's own fetch options.
fn with_defaults(project: &Project, mut task: Task) -> Task {
    task.fetch = project.fetch_for(&task.fetch);
    task
}
