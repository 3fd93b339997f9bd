//! Names on the wire: the namespace, the stream layout, and which stream a consumer reads.
//!
//! Callers speak in Spindle's own names ([`spindle_common::subject`]); this module is the only place
//! that turns them into what the server sees, so a namespace never leaks out of the bus.
//! Invariant: `unprefix(subject(s)) == s` for every subject `s`.

use spindle_common::subject::{BODIES_BUCKET, PREFIX, Stage};

use crate::error::NatsError;

/// One stream of the layout: its name and the stages whose subjects it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamLayout {
    /// Spindle's name of the stream ([`Stage::stream`]), without namespace.
    pub name: &'static str,
    /// Stages stored in it, in loop order.
    pub stages: Vec<Stage>,
}

impl StreamLayout {
    /// Subject filters of the stream, in Spindle's names.
    pub fn subjects(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.filter()).collect()
    }
}

/// Every stream, derived from [`Stage::stream`]: stages sharing a stream name share a stream.
pub(crate) fn layout() -> Vec<StreamLayout> {
    let mut streams: Vec<StreamLayout> = Vec::new();
    for stage in Stage::ALL {
        match streams.iter_mut().find(|s| s.name == stage.stream()) {
            Some(stream) => stream.stages.push(stage),
            None => streams.push(StreamLayout {
                name: stage.stream(),
                stages: vec![stage],
            }),
        }
    }
    streams
}

/// Where one consumer reads: a stream and, unless it reads all of it, one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// Spindle's stream name.
    pub stream: &'static str,
    /// Spindle's subject filter, `None` for the whole stream.
    pub filter: Option<String>,
}

/// Maps a consumer's filters to one stream and at most one filter.
///
/// nats-server 2.9 consumers take a single filter subject, so several filters are accepted
/// only when together they cover their whole stream (the scheduler's newtask + status); the
/// consumer then has no filter and reads the stream in publish order.
pub(crate) fn bind(filters: &[String]) -> Result<Binding, NatsError> {
    let refuse = |reason| NatsError::Filters {
        filters: filters.to_vec(),
        reason,
    };
    let mut stages = Vec::new();
    for filter in filters {
        let mut tokens = filter.split('.');
        let stage = match (tokens.next(), tokens.next()) {
            (Some(PREFIX), Some(token)) => Stage::ALL.into_iter().find(|s| s.token() == token),
            _ => None,
        };
        stages.push(
            stage.ok_or_else(|| {
                refuse("each filter must name one stage, as in `spindle.fetch.>`")
            })?,
        );
    }
    let Some(first) = stages.first() else {
        return Err(refuse("a consumer needs a filter"));
    };
    let stream = first.stream();
    if stages.iter().any(|s| s.stream() != stream) {
        return Err(refuse("the filters must all lie in one stream"));
    }
    let whole = layout()
        .into_iter()
        .find(|l| l.name == stream)
        .map(|l| l.subjects())
        .unwrap_or_default();
    if whole.iter().all(|w| filters.contains(w)) {
        return Ok(Binding {
            stream,
            filter: None,
        });
    }
    let mut distinct = filters.to_vec();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => Ok(Binding {
            stream,
            filter: Some(one.clone()),
        }),
        _ => Err(refuse(
            "nats-server 2.9 consumers take one filter unless the filters cover their whole stream",
        )),
    }
}

/// Whether `name` is usable as a stream, consumer or bucket name token.
fn is_name_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `subject` is a literal subject one may publish on (no wildcard, no empty token).
pub(crate) fn is_literal_subject(subject: &str) -> bool {
    subject.split('.').all(|t| {
        !t.is_empty() && t != "*" && t != ">" && !t.bytes().any(|b| b.is_ascii_whitespace())
    })
}

/// Checks a durable name.
pub(crate) fn check_durable(durable: &str) -> Result<(), NatsError> {
    if is_name_token(durable) {
        Ok(())
    } else {
        Err(NatsError::Durable(durable.to_owned()))
    }
}

/// The namespace of one bus, applied to every name it sends to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    namespace: Option<String>,
}

impl Names {
    /// Checks and keeps `namespace`.
    pub fn new(namespace: Option<&str>) -> Result<Self, NatsError> {
        if let Some(ns) = namespace
            && (!is_name_token(ns) || ns.len() > 32)
        {
            return Err(NatsError::Namespace(ns.to_owned()));
        }
        Ok(Self {
            namespace: namespace.map(str::to_owned),
        })
    }

    /// A subject or filter as sent on the wire.
    pub fn subject(&self, subject: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{subject}"),
            None => subject.to_owned(),
        }
    }

    /// A wire subject as Spindle names it (unchanged if it lacks the namespace).
    pub fn unprefix<'a>(&self, wire: &'a str) -> &'a str {
        match &self.namespace {
            Some(ns) => wire
                .strip_prefix(ns.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(wire),
            None => wire,
        }
    }

    /// A stream, consumer or bucket name as the server knows it.
    pub fn name(&self, name: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}_{name}"),
            None => name.to_owned(),
        }
    }

    /// The object store bucket of large bodies.
    pub fn bucket(&self) -> String {
        self.name(BODIES_BUCKET)
    }
}

/// The stream a publish subject is stored in, if any.
pub(crate) fn stream_of(subject: &str) -> Option<&'static str> {
    Stage::of_subject(subject)
        .filter(|_| is_literal_subject(subject))
        .map(Stage::stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_scheduler_stream_holds_newtask_and_status() {
        let layout = layout();
        assert_eq!(layout.len(), 4);
        let scheduler = layout
            .iter()
            .find(|l| l.name == "SPINDLE_SCHEDULER")
            .expect("scheduler stream");
        assert_eq!(
            scheduler.subjects(),
            ["spindle.newtask.>", "spindle.status.>"]
        );
    }

    #[test]
    fn filters_bind_to_one_stream() {
        let whole = bind(&filters(&["spindle.fetch.>"])).expect("binds");
        assert_eq!(whole.stream, "SPINDLE_FETCH");
        assert_eq!(whole.filter, None);
        let both = bind(&filters(&["spindle.newtask.>", "spindle.status.>"])).expect("binds");
        assert_eq!(both.stream, "SPINDLE_SCHEDULER");
        assert_eq!(both.filter, None);
        let one = bind(&filters(&["spindle.status.>"])).expect("binds");
        assert_eq!(one.filter.as_deref(), Some("spindle.status.>"));
        let project = bind(&filters(&["spindle.fetch.books"])).expect("binds");
        assert_eq!(project.filter.as_deref(), Some("spindle.fetch.books"));
        assert!(bind(&filters(&["spindle.>"])).is_err());
        assert!(bind(&filters(&["spindle.fetch.>", "spindle.process.>"])).is_err());
        assert!(bind(&filters(&["spindle.newtask.a", "spindle.status.a"])).is_err());
        assert!(bind(&[]).is_err());
    }

    #[test]
    fn namespaces_prefix_and_strip() {
        let names = Names::new(Some("t1")).expect("valid");
        assert_eq!(names.subject("spindle.fetch.p"), "t1.spindle.fetch.p");
        assert_eq!(names.unprefix("t1.spindle.fetch.p"), "spindle.fetch.p");
        assert_eq!(names.name("SPINDLE_FETCH"), "t1_SPINDLE_FETCH");
        let plain = Names::new(None).expect("valid");
        assert_eq!(plain.subject("spindle.fetch.p"), "spindle.fetch.p");
        assert_eq!(plain.unprefix("spindle.fetch.p"), "spindle.fetch.p");
        assert!(Names::new(Some("a.b")).is_err());
        assert!(Names::new(Some("")).is_err());
    }

    #[test]
    fn only_literal_stage_subjects_have_a_stream() {
        assert_eq!(stream_of("spindle.status.p"), Some("SPINDLE_SCHEDULER"));
        assert_eq!(stream_of("spindle.fetch.*"), None);
        assert_eq!(stream_of("spindle.control"), None);
        assert_eq!(stream_of("other.fetch.p"), None);
    }
}
