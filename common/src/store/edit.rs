//! A project file edited while the project lives: what of the stored record the edit changes.
//!
//! Some settings live in the file and in the store at once: the status, the rate and burst,
//! the group. The dashboard and `spindle project` change them in the store; an edit of the
//! file (saved in the editor, or changed in a `--projects` folder) changes the definition. An
//! edit applies each of those keys only when it changed the key itself, so fixing a selector
//! does not restart a stopped project nor undo a rate lowered on the dashboard.

use super::ProjectRecord;
use crate::project::Project;

impl ProjectRecord {
    /// This record with its definition replaced by `project`'s file: each of the status, rate,
    /// burst and group is the file's when the edit changed that key (or the stored file no
    /// longer parses), else kept as stored. The run times, the origin and the name are kept;
    /// `updated_ms` becomes `now_ms`, so the scheduler reloads the project.
    pub fn edited(&self, project: &Project, now_ms: i64) -> ProjectRecord {
        let before = Project::parse(&self.definition).ok();
        let changed = |same: fn(&Project, &Project) -> bool| {
            before.as_ref().is_none_or(|b| !same(b, project))
        };
        let mut record = self.clone();
        record.definition = project.source.clone();
        record.updated_ms = now_ms;
        if changed(|a, b| a.status == b.status) {
            record.status = project.status.unwrap_or(self.status);
        }
        if changed(|a, b| a.rate == b.rate && a.burst == b.burst) {
            record.rate = project.rate;
            record.burst = project.burst;
        }
        if changed(|a, b| a.group == b.group) {
            record.group = project.group.clone();
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::ProjectStatus;

    fn project(text: &str) -> Project {
        Project::parse(text).expect("valid")
    }

    #[test]
    fn an_edit_applies_only_the_keys_it_changes() {
        let file = "name = \"p\"\nrate = 5\nburst = 5\ngroup = \"a\"\n";
        let stored = ProjectRecord {
            name: "p".into(),
            definition: file.into(),
            // Set live: stopped, slowed down, regrouped.
            status: ProjectStatus::Stop,
            rate: 1.0,
            burst: 2.0,
            group: Some("live".into()),
            updated_ms: 1,
            last_start_ms: 7,
            run_requested_ms: 8,
            origin: Some("/p.toml".into()),
        };
        let fixed = stored.edited(&project(&format!("{file}# a fix\n")), 10);
        assert_eq!(
            (
                fixed.status,
                fixed.rate,
                fixed.burst,
                fixed.group.as_deref()
            ),
            (ProjectStatus::Stop, 1.0, 2.0, Some("live")),
            "an edit of other keys keeps what was set live"
        );
        assert_eq!((fixed.updated_ms, fixed.last_start_ms), (10, 7));
        assert_eq!(fixed.origin.as_deref(), Some("/p.toml"));
        assert!(fixed.definition.ends_with("# a fix\n"));

        let own = stored.edited(
            &project("name = \"p\"\nrate = 9\nburst = 9\ngroup = \"b\"\nstatus = \"RUNNING\"\n"),
            11,
        );
        assert_eq!(
            (own.status, own.rate, own.burst, own.group.as_deref()),
            (ProjectStatus::Running, 9.0, 9.0, Some("b")),
            "keys the edit changed apply"
        );
    }
}
