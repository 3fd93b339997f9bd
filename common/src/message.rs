//! The messages of the crawl loop, as they travel on the bus.
//!
//! Every message carries [`WIRE_VERSION`] so fields can be added later: new fields get
//! `#[serde(default)]`, and a reader ignores fields it does not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version of the wire format written by this build.
pub const WIRE_VERSION: u16 = 1;

fn wire_version() -> u16 {
    WIRE_VERSION
}

fn is_zero<N: Default + PartialEq>(n: &N) -> bool {
    *n == N::default()
}

/// One URL to fetch and the handler that will process it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Project the task belongs to.
    pub project: String,
    /// Identity of the task within its project: by default the fingerprint of the normalized URL.
    pub taskid: String,
    /// The URL to fetch.
    pub url: String,
    /// Name of the handler that processes the fetched page.
    pub callback: String,
    /// Higher is fetched first.
    #[serde(default)]
    pub priority: i32,
    /// Not before this time (Unix ms); 0 means now.
    #[serde(default)]
    pub exetime: i64,
    /// Re-crawl only after this many milliseconds; `None` takes the project default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<i64>,
    /// Re-crawl when this tag differs from the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itag: Option<String>,
    /// Failed attempts so far.
    #[serde(default)]
    pub retries: u32,
    /// Link distance from a start URL.
    #[serde(default)]
    pub depth: u32,
    /// Re-queue even when the task is known and young.
    #[serde(default)]
    pub force: bool,
    /// Request options; project defaults are merged in by the scheduler at dispatch.
    #[serde(default, skip_serializing_if = "FetchOptions::is_default")]
    pub fetch: FetchOptions,
    /// Data passed on to the next handler (`$save.<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<Map<String, Value>>,
    /// Place among the project's queued tasks of one priority, lower first. The scheduler
    /// gives each task it queues a place that lets hosts take turns (each host's tasks in
    /// the order they came, a new host right behind the tasks being claimed now); 0 leaves
    /// the store to number it in arrival order. A claimed task carries its place.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub order: i64,
}

impl Task {
    /// A task of `project` for handler `callback` at `url` (already normalized), its id the
    /// fingerprint of the URL, with every other field at its default: depth 0, no priority,
    /// due now, no options of its own.
    pub fn new(project: &str, url: &str, callback: &str) -> Task {
        Task {
            project: project.to_string(),
            taskid: crate::urlnorm::fingerprint(url),
            url: url.to_string(),
            callback: callback.to_string(),
            priority: 0,
            exetime: 0,
            age_ms: None,
            itag: None,
            retries: 0,
            depth: 0,
            force: false,
            fetch: FetchOptions::default(),
            save: None,
            order: 0,
        }
    }
}

/// How to fetch a task. Options left unset are left out when serialized (a stored task is a
/// few hundred bytes smaller, which the frontier's writes feel), and read back as unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FetchOptions {
    /// HTTP method; GET when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Total time allowed for the request, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Largest body accepted, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body: Option<u64>,
    /// Redirects followed before giving up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u32>,
    /// Whether every loopback and private address may be fetched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private: bool,
    /// Hosts and CIDR ranges whose non-public addresses may be fetched when `allow_private`
    /// is false (see [`crate::netrange`]; read with [`FetchOptions::private_access`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_private_ranges: Vec<String>,
    /// Plain HTTP or rendered in a browser.
    #[serde(default, skip_serializing_if = "FetchMode::is_http")]
    pub mode: FetchMode,
    /// Browser options, for [`FetchMode::Js`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub js: Option<JsOptions>,
    /// `User-Agent` header; overrides one in `headers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Cookies sent with the request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cookies: BTreeMap<String, String>,
    /// Keep a cookie jar per project across requests (set-cookie answers are remembered).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session: bool,
    /// Form fields, sent URL-encoded as the body (POST unless `method` says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<BTreeMap<String, String>>,
    /// Files and fields sent as `multipart/form-data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multipart: Vec<MultipartPart>,
    /// Proxies (`http://`, `https://`, `socks5://`, credentials in the URL); the attempt uses
    /// `proxies[retries % len]`, so a failed attempt moves on to the next one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxies: Vec<String>,
    /// Whether TLS certificates are validated; true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
    /// Whether redirects are followed; true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    /// Time allowed to connect, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// `ETag` of the last successful fetch (sent as `If-None-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified` of the last successful fetch (sent as `If-Modified-Since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Whether robots.txt is obeyed; true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robots: Option<bool>,
    /// Media-type prefixes (any case, such as `text/` or `application/json`) whose bodies
    /// are decoded and handed to the rules; a response with no content type always is. A
    /// list replaces the default. Empty means the default: `text/*`, and every type whose
    /// name contains `html`, `xml`, `json` or `javascript` (so `application/json`, any
    /// `+json`, `application/xml`, any `+xml`, `application/javascript`); other bodies
    /// (images, PDF, ...) are recorded with an empty text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_types: Vec<String>,
    /// Set on a sitemap task: the fetcher reads the body as a sitemap and sends what it lists
    /// back to the scheduler as new tasks, instead of handing a page to a processor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sitemap: Option<SitemapOptions>,
}

/// What a sitemap task ([`FetchOptions::sitemap`]) needs to turn the URLs its sitemap lists
/// into tasks. A fetcher knows no project, so the project's rules travel with the task.
///
/// The listed child sitemaps become sitemap tasks with the same options; the listed pages
/// become tasks for the sitemap task's callback, at depth 0, like start URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitemapOptions {
    /// Hosts of the project's site (of its start URLs and sitemaps): a listed URL on another
    /// site is dropped. Empty: the site of the sitemap itself.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Tracking parameters kept when the listed URLs are normalized (`keep_params`).
    #[serde(default)]
    pub keep_params: Vec<String>,
}

/// How a task is fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchMode {
    /// A plain HTTP request.
    #[default]
    Http,
    /// Rendered in headless Chrome; the DOM after load is the page.
    Js,
}

impl FetchMode {
    fn is_http(&self) -> bool {
        *self == FetchMode::Http
    }
}

impl FetchOptions {
    /// Which non-public addresses this fetch may reach: all with `allow_private`, else those
    /// of `allow_private_ranges`.
    pub fn private_access(&self) -> crate::netrange::PrivateAccess {
        crate::netrange::PrivateAccess::from_options(self.allow_private, &self.allow_private_ranges)
    }

    /// Whether every option is unset: such options are left out of a serialized task.
    fn is_default(&self) -> bool {
        *self == FetchOptions::default()
    }
}

/// Options of a browser-rendered fetch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsOptions {
    /// Wait until an element matches this CSS selector.
    #[serde(default)]
    pub wait_for: Option<String>,
    /// Wait until the network has been idle for a moment.
    #[serde(default)]
    pub network_idle: bool,
    /// Longest wait for the conditions above, in milliseconds.
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// JavaScript evaluated in the page after load; its value is returned with the page.
    #[serde(default)]
    pub script: Option<String>,
    /// Viewport width and height in pixels.
    #[serde(default)]
    pub viewport: Option<(u32, u32)>,
    /// Don't load images.
    #[serde(default)]
    pub block_images: bool,
    /// Take a PNG screenshot of the rendered page.
    #[serde(default)]
    pub screenshot: bool,
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultipartPart {
    /// Field name.
    pub name: String,
    /// Text value, or the file content for a file part.
    pub value: String,
    /// File name, for a file part.
    #[serde(default)]
    pub filename: Option<String>,
    /// Content type of a file part.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// A fetched page, decoded to UTF-8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// URL after redirects.
    pub url: String,
    /// HTTP status code.
    pub status: u16,
    /// Response headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Content type without parameters, lower-case, empty if none was sent.
    pub content_type: String,
    /// Name of the encoding the body was decoded from.
    pub encoding: String,
    /// Body decoded to UTF-8; empty for binary content.
    pub text: String,
    /// Body size on the wire, after decompression.
    pub body_len: u64,
    /// Time spent fetching, in milliseconds.
    pub fetch_ms: u32,
    /// Value returned by the task's browser script ([`JsOptions::script`]), as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_result: Option<Value>,
    /// PNG screenshot of the rendered page, base64-encoded ([`JsOptions::screenshot`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot_png_base64: Option<String>,
}

impl Page {
    /// The value of a response header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A task together with its fetched page: the input of a processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessJob {
    /// Wire version.
    #[serde(default = "wire_version")]
    pub v: u16,
    /// The task that was fetched.
    pub task: Task,
    /// What came back.
    pub page: Page,
}

/// Follow tasks found on one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTasks {
    /// Wire version.
    #[serde(default = "wire_version")]
    pub v: u16,
    /// Project of every task in the batch.
    pub project: String,
    /// Task whose page produced them.
    pub parent: String,
    /// The follows.
    pub tasks: Vec<Task>,
}

/// A fetcher has the response of a task (the page goes on to a processor): the request is
/// over, so the scheduler frees the task's host slot at once instead of when the task's outcome
/// comes back, after processing. The task stays in flight until its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fetched {
    /// Wire version.
    #[serde(default = "wire_version")]
    pub v: u16,
    /// Project of the task.
    pub project: String,
    /// The task.
    pub taskid: String,
}

/// Why a task failed, in a form the scheduler can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server answered with an error status.
    Http,
    /// Name resolution failed.
    Dns,
    /// The connection could not be made or broke.
    Connect,
    /// The request took longer than its timeout.
    Timeout,
    /// Too many redirects, or a redirect loop.
    Redirect,
    /// The body was larger than the cap.
    TooBig,
    /// The URL is not fetchable (scheme, private address, malformed).
    Refused,
    /// The handler failed on the page.
    Process,
    /// The TLS handshake failed (certificate not valid, protocol error).
    Tls,
    /// The headless browser crashed, hung or could not be started.
    Browser,
    /// robots.txt answered with a server error (5xx, 429), so the host is treated as
    /// disallowed for a while. (A URL that robots.txt disallows is `Refused`.)
    Robots,
    /// Anything else.
    Other,
}

/// How a task ended: reported to the scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Wire version.
    #[serde(default = "wire_version")]
    pub v: u16,
    /// Project of the task.
    pub project: String,
    /// The task.
    pub taskid: String,
    /// The task's URL.
    pub url: String,
    /// Attempts before this one.
    #[serde(default)]
    pub retries: u32,
    /// `None` on success, else why it failed.
    pub error: Option<TaskError>,
    /// HTTP status, when a response came back.
    pub status_code: Option<u16>,
    /// Fetch time in milliseconds.
    pub fetch_ms: u32,
    /// Processing time in milliseconds.
    pub process_ms: u32,
    /// Of `process_ms`, the time of the handler's script hook; `None` when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_ms: Option<u32>,
    /// Follows emitted.
    pub follows: u32,
    /// Items emitted.
    pub items: u32,
    /// Form values the page's follows sent as written (`$...` naming no page value), counted
    /// so the crawl summary can show them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub form_values_literal: u32,
    /// Set when the page was a near-duplicate of the page of this task (same project): its
    /// follows were not expanded. The task itself succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// `ETag` of a successful response, sent again as `If-None-Match` next time.
    #[serde(default)]
    pub etag: Option<String>,
    /// `Last-Modified` of a successful response, sent again as `If-Modified-Since` next time.
    #[serde(default)]
    pub last_modified: Option<String>,
    /// How long the server asked us to wait (`Retry-After` of a 429 or 503), in ms.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

/// A failure of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskError {
    /// Category of the failure.
    pub kind: ErrorKind,
    /// Human-readable reason.
    pub message: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
}

/// One extracted item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Key of the item within its project (the task id for one item per page).
    pub taskid: String,
    /// Page the item came from.
    pub url: String,
    /// The item's fields, in the order the project defines them.
    pub data: Map<String, Value>,
}

/// Items of one page, and the outcome the result writer forwards once they are stored.
///
/// Forwarding the outcome only after the items are durable is what keeps a task from being
/// marked done while its items could still be lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Wire version.
    #[serde(default = "wire_version")]
    pub v: u16,
    /// Project of the items.
    pub project: String,
    /// The items.
    pub items: Vec<Item>,
    /// Outcome of the task that produced them.
    pub outcome: Option<Outcome>,
}

/// Anything that travels on a stage subject.
// Messages live behind an `Arc` on the in-process bus and are serialized on NATS, so the size
// of the largest variant is never copied around; boxing `Task` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A task to fetch.
    Fetch(Task),
    /// A fetched page to process.
    Process(Box<ProcessJob>),
    /// Follows for the scheduler.
    NewTasks(NewTasks),
    /// An outcome for the scheduler.
    Status(Outcome),
    /// A response is in: the scheduler frees the host slot (on the status subject).
    Fetched(Fetched),
    /// Items for the result writer.
    Results(Results),
}

impl Message {
    /// Project the message belongs to.
    pub fn project(&self) -> &str {
        match self {
            Message::Fetch(t) => &t.project,
            Message::Process(j) => &j.task.project,
            Message::NewTasks(n) => &n.project,
            Message::Status(o) => &o.project,
            Message::Fetched(f) => &f.project,
            Message::Results(r) => &r.project,
        }
    }

    /// Serializes for a bus that carries bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Parses a message read from a bus that carries bytes.
    ///
    /// Same result as serde's derived reader, in two passes: the tag first, then the
    /// variant straight from the bytes. The derived reader of an internally tagged enum
    /// buffers the whole message (a page body included) in serde's `Content` before reading
    /// the variant from that copy; skipping over the bytes once more is far cheaper.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        let Ok(tag) = serde_json::from_slice::<Tag>(bytes) else {
            // No readable tag: let the derived reader say what is wrong.
            return serde_json::from_slice(bytes);
        };
        Ok(match tag.kind.as_ref() {
            "fetch" => Message::Fetch(serde_json::from_slice(bytes)?),
            "process" => Message::Process(serde_json::from_slice(bytes)?),
            "new_tasks" => Message::NewTasks(serde_json::from_slice(bytes)?),
            "status" => Message::Status(serde_json::from_slice(bytes)?),
            "fetched" => Message::Fetched(serde_json::from_slice(bytes)?),
            "results" => Message::Results(serde_json::from_slice(bytes)?),
            _ => return serde_json::from_slice(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_reads_back_as_serde_reads_it() {
        let task = Task {
            project: "p".into(),
            taskid: "t".into(),
            url: "http://a/".into(),
            callback: "start".into(),
            priority: 3,
            exetime: 0,
            age_ms: Some(1),
            itag: None,
            retries: 0,
            depth: 2,
            force: false,
            fetch: FetchOptions::default(),
            save: None,
            order: 0,
        };
        let outcome = Outcome {
            v: WIRE_VERSION,
            project: "p".into(),
            taskid: "t".into(),
            url: "http://a/".into(),
            retries: 1,
            error: Some(TaskError {
                kind: ErrorKind::Http,
                message: "503".into(),
                retryable: true,
            }),
            status_code: Some(503),
            fetch_ms: 4,
            process_ms: 5,
            script_ms: None,
            follows: 6,
            items: 7,
            form_values_literal: 0,
            duplicate_of: None,
            etag: None,
            last_modified: Some("yesterday".into()),
            retry_after_ms: Some(1000),
        };
        let page = Page {
            url: "http://a/".into(),
            status: 200,
            headers: vec![("a".into(), "b".into())],
            content_type: "text/html".into(),
            encoding: "utf-8".into(),
            text: "<p>\"quoted\" \u{e9}</p>".into(),
            body_len: 20,
            fetch_ms: 3,
            script_result: None,
            screenshot_png_base64: None,
        };
        let mut data = Map::new();
        data.insert("name".into(), Value::from("x"));
        let messages = [
            Message::Fetch(task.clone()),
            Message::Process(Box::new(ProcessJob {
                v: WIRE_VERSION,
                task: task.clone(),
                page,
            })),
            Message::NewTasks(NewTasks {
                v: WIRE_VERSION,
                project: "p".into(),
                parent: "t".into(),
                tasks: vec![task],
            }),
            Message::Status(outcome.clone()),
            Message::Fetched(Fetched {
                v: WIRE_VERSION,
                project: "p".into(),
                taskid: "t".into(),
            }),
            Message::Results(Results {
                v: WIRE_VERSION,
                project: "p".into(),
                items: vec![Item {
                    taskid: "t".into(),
                    url: "http://a/".into(),
                    data,
                }],
                outcome: Some(outcome),
            }),
        ];
        for message in messages {
            let bytes = message.to_bytes().expect("serializes");
            assert_eq!(Message::from_bytes(&bytes).expect("reads"), message);
            let derived: Message = serde_json::from_slice(&bytes).expect("serde reads");
            assert_eq!(derived, message);
        }
        for bad in [
            &br#"{"type":"nope","project":"p"}"#[..],
            br#"{"project":"p"}"#,
            br#"{"type":"fetch"}"#,
            b"[1",
        ] {
            let ours = Message::from_bytes(bad).expect_err("refused");
            let derived = serde_json::from_slice::<Message>(bad).expect_err("refused");
            assert_eq!(ours.classify(), derived.classify(), "{ours} vs {derived}");
        }
    }

    #[test]
    fn unset_fetch_options_are_left_out_and_read_back() {
        let task = Task {
            project: "p".into(),
            taskid: "t".into(),
            url: "http://a/".into(),
            callback: "start".into(),
            priority: 0,
            exetime: 0,
            age_ms: None,
            itag: None,
            retries: 0,
            depth: 0,
            force: false,
            fetch: FetchOptions::default(),
            save: None,
            order: 0,
        };
        let json = serde_json::to_string(&task).expect("serialize");
        assert_eq!(
            json,
            r#"{"project":"p","taskid":"t","url":"http://a/","callback":"start","priority":0,"exetime":0,"retries":0,"depth":0,"force":false}"#
        );
        assert_eq!(serde_json::from_str::<Task>(&json).expect("read"), task);
        let set = Task {
            fetch: FetchOptions {
                mode: FetchMode::Js,
                session: true,
                timeout_ms: Some(5),
                ..FetchOptions::default()
            },
            ..task
        };
        let json = serde_json::to_string(&set).expect("serialize");
        assert!(
            json.contains(r#""fetch":{"timeout_ms":5,"mode":"js","session":true}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Task>(&json).expect("read"), set);
    }

    #[test]
    fn messages_round_trip_through_bytes() {
        let task = Task {
            project: "p".into(),
            taskid: "t".into(),
            url: "http://a/".into(),
            callback: "start".into(),
            priority: 2,
            exetime: 0,
            age_ms: Some(5),
            itag: None,
            retries: 1,
            depth: 3,
            force: false,
            fetch: FetchOptions::default(),
            save: None,
            order: 0,
        };
        let msg = Message::Fetch(task);
        let back = Message::from_bytes(&msg.to_bytes().expect("serializes")).expect("parses");
        assert_eq!(back, msg);
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_default() {
        let json = r#"{"type":"fetch","project":"p","taskid":"t","url":"http://a/",
            "callback":"start","from_the_future":1}"#;
        let Message::Fetch(task) = Message::from_bytes(json.as_bytes()).expect("parses") else {
            panic!("not a fetch message");
        };
        assert_eq!(task.priority, 0);
        assert_eq!(task.fetch, FetchOptions::default());
    }
}
