//! docker-compose.yml run for real on a Docker engine: the whole deployment scaled out,
//! containers killed mid-crawl, nothing lost.
//!
//! The compose file is the real one; `tests/compose/docker-compose.test.yml` only says where
//! the images come from (built here without a registry by `scripts/compose-images.sh`: a
//! Debian bookworm made with mmdebstrap, Spindle's Dockerfile `runtime` stage on it with the
//! binary of this build, NATS and PostgreSQL from Debian's packages), makes the network
//! internal and adds the generated shop as a container on it. Every step runs through the
//! Docker CLI as a user would:
//!
//! 1. `up -d --scale fetcher=3 --scale processor=2`: every container becomes healthy and
//!    `spindle status`, run in a container, lists 3 fetchers and 2 processors;
//! 2. the project of a 5,000-product site loads from the mounted projects folder; mid-crawl
//!    one fetcher and one processor are killed (SIGKILL) and the scheduler is restarted;
//! 3. the crawl ends with every item exactly once (against the generated site), every
//!    surviving fetcher did work, and its metrics count what it fetched;
//! 4. `down` and `up` again: the volumes kept every item and task; the one fetcher of the new
//!    deployment counts exactly the one page a forced run fetches;
//! 5. the web UI, asked from another container, refuses every change without its login and
//!    any change from another site's page, and serves `/metrics` only with the login; its host
//!    port is checked as configuration (an internal network publishes nothing).
//!
//! Skipped with a printed reason without root, a Docker engine, docker compose or mmdebstrap
//! (`./scripts/test.sh` installs them), a failure under `CI=true`. Each run has a compose
//! project of its own, removed with its volumes and image at the end, failed or not.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use spindle::site::{Site, SiteSpec};
use support::{by_url, jsonl};

const PRODUCTS: u32 = 5_000;
const SITE: &str = "http://site:8000";
const PROJECT: &str = "site";
const PASSWORD: &str = "compose-test-password";
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `command`, killing it and failing the test after `limit`.
fn run_for(mut command: Command, limit: Duration) -> Output {
    let shown = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{shown} did not finish within {limit:?}");
        }
    }
}

/// stdout of a command that must succeed.
#[track_caller]
fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn docker(args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command.args(args);
    command
}

/// Why this machine cannot run the test, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        });
    if uid.as_deref() != Some("0") {
        return Some("not root (building images and running dockerd need it)".into());
    }
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !works("docker", &["info"]) {
        return Some("no Docker engine answers `docker info`".into());
    }
    if compose_command().is_none() {
        return Some("neither `docker compose` nor `docker-compose` is installed".into());
    }
    if !works("mmdebstrap", &["--version"]) {
        return Some("mmdebstrap is not installed".into());
    }
    None
}

/// `docker compose` when the plugin is there, else `docker-compose`.
fn compose_command() -> Option<Vec<String>> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("docker", &["compose", "version"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else if works("docker-compose", &["version"]) {
        Some(vec!["docker-compose".into()])
    } else {
        None
    }
}

/// One compose project of this run: `down -v` and its image removed when dropped.
struct Deployment {
    project: String,
    command: Vec<String>,
    /// Holds `examples/` (the projects folder docker-compose.yml mounts, as `./examples`).
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    image: String,
    probe_image: String,
}

impl Deployment {
    fn compose(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.command[0]);
        command
            .args(&self.command[1..])
            .arg("--project-name")
            .arg(&self.project)
            .arg("--project-directory")
            .arg(self.dir.path())
            .arg("-f")
            .arg(Path::new(REPO).join("docker-compose.yml"))
            .arg("-f")
            .arg(Path::new(REPO).join("tests/compose/docker-compose.test.yml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    #[track_caller]
    fn ok(&self, args: &[&str], limit: Duration) -> String {
        ok(
            run_for(self.compose(args), limit),
            &format!("compose {}", args.join(" ")),
        )
    }

    /// `spindle ARGS` in the (first) scheduler container.
    #[track_caller]
    fn spindle(&self, args: &[&str]) -> String {
        let mut full = vec!["exec", "-T", "scheduler", "spindle"];
        full.extend_from_slice(args);
        self.ok(&full, Duration::from_secs(120))
    }

    /// Container ids of `service` (of every service for "").
    fn containers(&self, service: &str) -> Vec<String> {
        let args: &[&str] = if service.is_empty() {
            &["ps", "-q"]
        } else {
            &["ps", "-q", service]
        };
        self.ok(args, Duration::from_secs(60))
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn network(&self) -> String {
        format!("{}_default", self.project)
    }

    /// An HTTP request from a container of its own on the deployment's network (GNU wget in
    /// the NATS image): the status and the body.
    fn http(
        &self,
        method: &str,
        url: &str,
        headers: &[&str],
        body: Option<&str>,
        login: bool,
    ) -> (u16, String) {
        let network = self.network();
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            &network,
            "--entrypoint",
            "wget",
            &self.probe_image,
            "-q",
            "-S",
            "-O",
            "-",
            "--content-on-error",
            "--max-redirect=0",
            "--tries=1",
            "--timeout=20",
        ];
        let method_arg = format!("--method={method}");
        args.push(&method_arg);
        let header_args: Vec<String> = headers.iter().map(|h| format!("--header={h}")).collect();
        args.extend(header_args.iter().map(String::as_str));
        let body_arg = body.map(|b| format!("--body-data={b}"));
        if let Some(b) = &body_arg {
            args.push(b);
        }
        let password = format!("--password={PASSWORD}");
        if login {
            args.extend(["--auth-no-challenge", "--user=admin", &password]);
        }
        args.push(url);
        let output = run_for(docker(&args), Duration::from_secs(60));
        let headers = String::from_utf8_lossy(&output.stderr);
        let status = headers
            .lines()
            .rev()
            .filter_map(|l| {
                let l = l.trim();
                l.starts_with("HTTP/")
                    .then(|| l.split_whitespace().nth(1)?.parse().ok())?
            })
            .next()
            .unwrap_or_else(|| panic!("no answer from {url}:\n{headers}"));
        (status, String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The `/metrics` text of a role's container (its `--metrics` port from the compose
    /// file's SPINDLE_METRICS).
    fn scrape(&self, container: &str) -> String {
        let name = ok(
            run_for(
                docker(&["inspect", "--format", "{{.Name}}", container]),
                Duration::from_secs(30),
            ),
            "docker inspect",
        );
        let url = format!(
            "http://{}:9100/metrics",
            name.trim().trim_start_matches('/')
        );
        let (status, text) = self.http("GET", &url, &[], None, false);
        assert_eq!(status, 200, "{url}: {text}");
        text
    }

    /// Waits until every container with a health check is healthy; the time it took.
    fn wait_healthy(&self, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let ids = self.containers("");
            let states: Vec<String> = ids
                .iter()
                .map(|id| {
                    let out = run_for(
                        docker(&[
                            "inspect",
                            "--format",
                            "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
                            id,
                        ]),
                        Duration::from_secs(30),
                    );
                    String::from_utf8_lossy(&out.stdout).trim().to_string()
                })
                .collect();
            let ready = !states.is_empty()
                && states.iter().all(|s| {
                    let mut parts = s.split_whitespace().skip(1);
                    matches!(
                        (parts.next(), parts.next()),
                        (Some("running"), Some("healthy" | "none"))
                    )
                });
            if ready {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "not healthy within {limit:?}:\n{}",
                states.join("\n")
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The project's row of `spindle project list`: status, queued, success, failed.
    fn project_row(&self) -> Option<(String, u64, u64, u64)> {
        let list = self.spindle(&["project", "list"]);
        let line = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(PROJECT))?;
        let cols: Vec<&str> = line.split_whitespace().collect();
        Some((
            cols.get(1)?.to_string(),
            cols.get(2)?.parse().ok()?,
            cols.get(3)?.parse().ok()?,
            cols.get(4)?.parse().ok()?,
        ))
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = run_for(
                self.compose(&["logs", "--no-color", "--tail", "30"]),
                Duration::from_secs(60),
            );
            eprintln!(
                "last logs of the deployment:\n{}",
                String::from_utf8_lossy(&logs.stdout)
            );
        }
        let down = run_for(
            self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]),
            Duration::from_secs(180),
        );
        if !down.status.success() {
            eprintln!(
                "compose down failed: {}",
                String::from_utf8_lossy(&down.stderr)
            );
        }
        let _ = run_for(docker(&["rmi", &self.image]), Duration::from_secs(60));
    }
}

/// The value of every sample of `name` in a metrics text, summed, whose labels include every
/// `label="value"` pair.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Live instances by role in `spindle status`'s table, with their DONE counts by container
/// (an instance id is `ROLE-HOSTNAME-PID`, and a container's host name is its short id).
fn instances(status: &str) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut roles: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for line in status.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != 6 {
            break; // the queue table follows the instances after a blank line
        }
        let (id, role) = (cols[0], cols[1]);
        let host = id
            .strip_prefix(role)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.rsplit_once('-'))
            .map_or("", |(host, _pid)| host);
        let done = cols[4].parse().unwrap_or(0);
        roles
            .entry(role.to_string())
            .or_default()
            .push((host.to_string(), done));
    }
    roles
}

fn live(roles: &BTreeMap<String, Vec<(String, u64)>>, role: &str) -> usize {
    roles.get(role).map_or(0, Vec::len)
}

#[test]
fn the_real_compose_file_scales_survives_kills_and_keeps_its_data() {
    if let Some(reason) = missing_prerequisite() {
        let _ = support::require_service::<(), _>("a Docker engine this test can use", Err(reason));
        return;
    }
    let compose = compose_command().expect("checked above");
    let project = format!(
        "spindletest{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 1_000_000)
    );

    // Images, without a registry.
    let images_start = Instant::now();
    let image = format!("spindle-test/spindle:{project}");
    let built = ok(
        run_for(
            {
                let mut c = Command::new(Path::new(REPO).join("scripts/compose-images.sh"));
                c.args([env!("CARGO_BIN_EXE_spindle"), &image]);
                c
            },
            Duration::from_secs(1200),
        ),
        "scripts/compose-images.sh",
    );
    let mut env: Vec<(String, String)> = built
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let probe_image = env
        .iter()
        .find(|(k, _)| k == "SPINDLE_TEST_NATS_IMAGE")
        .map(|(_, v)| v.clone())
        .expect("the NATS image");
    eprintln!("images ready in {:.1?}", images_start.elapsed());

    let hash = {
        let mut child = support::spindle()
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spindle hash-password");
        use std::io::Write;
        writeln!(child.stdin.take().expect("stdin"), "{PASSWORD}").expect("password");
        let out = child.wait_with_output().expect("hash");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    env.extend([
        ("SPINDLE_TEST_PRODUCTS".to_string(), PRODUCTS.to_string()),
        ("SPINDLE_WEB_PASSWORD_HASH".to_string(), hash),
        // A host port of Docker's choosing: the host's 127.0.0.1:5000 may be taken. (Nothing
        // is published from an internal network anyway; the default is checked below.)
        ("SPINDLE_WEB_PUBLISH".to_string(), "127.0.0.1:".to_string()),
    ]);

    // The projects folder the compose file mounts (`./examples`, relative to the project
    // directory), readable by the image's user.
    let dir = tempfile::tempdir().expect("tempdir");
    let examples: PathBuf = dir.path().join("examples");
    std::fs::create_dir(&examples).expect("examples");
    let site = Site::new(SiteSpec::bench(PRODUCTS));
    let pages = site.spec().pages();
    assert!(pages >= 5_000);
    // Stopped until step 2 starts it; at a rate the crawl lasts long enough at (70 s) for
    // the kills and the restart to land mid-crawl.
    let toml = site
        .project_toml(PROJECT, SITE)
        .replace("rate = 100000", "status = \"STOP\"\nrate = 75")
        .replace("burst = 100000", "burst = 20");
    support::write(&examples, "site.toml", &toml);
    for path in [dir.path(), &examples] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    let deployment = Deployment {
        project,
        command: compose,
        dir,
        env,
        image,
        probe_image,
    };

    // The host-port mapping, as configuration: the web UI is published on the host's
    // loopback only unless SPINDLE_WEB_PUBLISH says otherwise.
    let config = {
        let mut c = deployment.compose(&["config"]);
        c.env_remove("SPINDLE_WEB_PUBLISH");
        ok(run_for(c, Duration::from_secs(60)), "compose config")
    };
    assert!(
        config.contains("127.0.0.1:5000:5000") || config.contains("host_ip: 127.0.0.1"),
        "the web UI is published on 127.0.0.1 only:\n{config}"
    );
    assert!(config.contains("internal: true"), "{config}");

    // 1. Up, scaled; every container healthy; `spindle status` lists the instances.
    let up = Instant::now();
    deployment.ok(
        &[
            "up",
            "-d",
            "--no-build",
            "--scale",
            "fetcher=3",
            "--scale",
            "processor=2",
        ],
        Duration::from_secs(300),
    );
    let healthy = deployment.wait_healthy(Duration::from_secs(240));
    eprintln!(
        "every container healthy {:.1?} after `up` started (the command took {:.1?})",
        up.elapsed(),
        up.elapsed() - healthy
    );
    let web = deployment.containers("web-ui");
    let bindings = ok(
        run_for(
            docker(&[
                "inspect",
                "--format",
                "{{json .HostConfig.PortBindings}}",
                &web[0],
            ]),
            Duration::from_secs(30),
        ),
        "inspect web-ui",
    );
    assert!(
        bindings.contains("\"HostIp\":\"127.0.0.1\""),
        "web UI bound to the host's loopback only: {bindings}"
    );
    // Heartbeats come every 2 s: give every instance a few to be heard.
    let listed = Instant::now();
    let status = loop {
        let status = deployment.spindle(&["status"]);
        let roles = instances(&status);
        let all_listed = [
            ("scheduler", 1),
            ("fetcher", 3),
            ("processor", 2),
            ("result-writer", 1),
            ("web-ui", 1),
        ]
        .iter()
        .all(|&(role, n)| live(&roles, role) == n);
        if all_listed || listed.elapsed() > Duration::from_secs(30) {
            break status;
        }
    };
    let roles = instances(&status);
    assert_eq!(live(&roles, "fetcher"), 3, "{status}");
    assert_eq!(live(&roles, "processor"), 2, "{status}");
    assert_eq!(live(&roles, "scheduler"), 1, "{status}");

    // The victims of step 2, chosen now: docker-compose takes seconds per call on a busy
    // machine, and the kills must land mid-crawl.
    let fetchers = deployment.containers("fetcher");
    let processors = deployment.containers("processor");
    assert_eq!((fetchers.len(), processors.len()), (3, 2));
    let (killed_fetcher, killed_processor) = (&fetchers[0], &processors[0]);

    // 2. The project loads from the mounted folder and crawls; mid-crawl a fetcher and a
    // processor die with SIGKILL and the scheduler is restarted.
    let loading = Instant::now();
    let row = loop {
        match deployment.project_row() {
            Some(row) => break row,
            None if loading.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(500))
            }
            None => panic!("the project file was not loaded"),
        }
    };
    assert_eq!(
        row,
        ("STOP".to_string(), 0, 0, 0),
        "the project is loaded as its file says"
    );
    deployment.spindle(&["project", "start", PROJECT]);
    let crawl = Instant::now();
    loop {
        if let Some((state, _, success, failed)) = deployment.project_row() {
            assert_eq!(state, "RUNNING");
            if success + failed >= pages / 5 {
                break;
            }
        }
        assert!(
            crawl.elapsed() < Duration::from_secs(300),
            "the crawl did not get a third of the way in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    ok(
        run_for(
            docker(&["kill", "--signal", "KILL", killed_fetcher, killed_processor]),
            Duration::from_secs(30),
        ),
        "docker kill",
    );
    let row = deployment.project_row().expect("the project");
    assert!(
        row.2 + row.3 < pages,
        "the crawl was still running when the containers were killed: {row:?}"
    );
    deployment.ok(&["restart", "scheduler"], Duration::from_secs(120));
    let row = deployment.project_row().expect("the project");
    assert!(
        row.2 + row.3 < pages,
        "the crawl was still running when the scheduler was restarted: {row:?}"
    );

    // 3. The crawl ends with every item exactly once.
    let expected = by_url(site.expected_items(SITE));
    let items = loop {
        assert!(
            crawl.elapsed() < Duration::from_secs(900),
            "the crawl did not finish in 15 minutes: {:?}",
            deployment.project_row()
        );
        std::thread::sleep(Duration::from_secs(2));
        let Some((_, queued, success, failed)) = deployment.project_row() else {
            continue;
        };
        if queued > 0 || success + failed < pages {
            continue;
        }
        let items = jsonl(&deployment.spindle(&["export", PROJECT]));
        if items.len() >= expected.len() {
            break items;
        }
    };
    let rate_window = crawl.elapsed();
    assert_eq!(by_url(items), expected, "every item exactly once");
    let (_, queued, success, failed) = deployment.project_row().expect("the project");
    assert_eq!(queued, 0);
    assert_eq!(success + failed, pages, "one task per page of the site");
    eprintln!(
        "crawl of {pages} pages (rate limit 75/s, two containers killed, scheduler restarted) in {rate_window:.1?}"
    );

    // Every fetcher alive did work, and its metrics count what it fetched.
    let status = deployment.spindle(&["status"]);
    let roles = instances(&status);
    let survivors: Vec<&String> = fetchers.iter().filter(|f| *f != killed_fetcher).collect();
    for fetcher in &survivors {
        let done = roles
            .get("fetcher")
            .and_then(|list| list.iter().find(|(host, _)| fetcher.starts_with(host)))
            .map(|(_, done)| *done)
            .unwrap_or_else(|| panic!("fetcher {fetcher} is not in\n{status}"));
        assert!(done > 0, "fetcher {fetcher} did work:\n{status}");
        // Read while it holds nothing (a task is counted when its page is sent, and done
        // when acked right after); tasks of the killed fetcher may still come back to it.
        let scraping = Instant::now();
        let text = loop {
            let text = deployment.scrape(fetcher);
            if metric(&text, "spindle_in_flight_messages", &[]) == 0.0 {
                break text;
            }
            assert!(
                scraping.elapsed() < Duration::from_secs(60),
                "{fetcher} stays busy:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        let fetched = metric(
            &text,
            "spindle_pages_fetched_total",
            &[("role", "fetcher"), ("project", PROJECT)],
        );
        assert!(fetched > 0.0, "{fetcher} counts its pages:\n{text}");
        assert_eq!(
            fetched,
            metric(&text, "spindle_messages_done_total", &[]),
            "every task this fetcher finished is a page it counts:\n{text}"
        );
        assert_eq!(
            fetched,
            metric(
                &text,
                "spindle_fetch_duration_seconds_count",
                &[("project", PROJECT)]
            ),
            "each page has its latency"
        );
        assert!(
            metric(
                &text,
                "spindle_fetched_bytes_total",
                &[("project", PROJECT)]
            ) > 1_000.0
                * metric(
                    &text,
                    "spindle_pages_fetched_total",
                    &[("project", PROJECT), ("outcome", "ok")]
                ),
            "bytes of pages of several KB each"
        );
    }
    assert_eq!(
        live(&roles, "fetcher"),
        2,
        "the killed fetcher stays down (restart: unless-stopped)\n{status}"
    );

    // 4. Down and up again: the volumes keep every item and task.
    deployment.ok(&["down", "--timeout", "10"], Duration::from_secs(180));
    deployment.ok(
        &[
            "up",
            "-d",
            "--no-build",
            "--scale",
            "fetcher=1",
            "--scale",
            "processor=1",
        ],
        Duration::from_secs(300),
    );
    let again = deployment.wait_healthy(Duration::from_secs(240));
    eprintln!("healthy again {again:.1?} after `up` on the kept volumes");
    let items = jsonl(&deployment.spindle(&["export", PROJECT]));
    assert_eq!(by_url(items), expected, "every item kept");
    assert_eq!(
        deployment.project_row(),
        Some(("RUNNING".to_string(), 0, success, failed)),
        "every task kept"
    );
    // A forced run fetches the start page once more, on the one fetcher there is, and its
    // metrics count exactly that page. Tasks the killed fetcher held come back after the
    // ack wait (2 minutes) and go to this fetcher if the crawl ended sooner: first wait
    // until its queue is empty and its count settled.
    let fetcher = deployment.containers("fetcher");
    assert_eq!(fetcher.len(), 1);
    let fetched = |text: &str, outcome: Option<&str>| {
        let mut labels = vec![("project", PROJECT)];
        labels.extend(outcome.map(|o| ("outcome", o)));
        metric(text, "spindle_pages_fetched_total", &labels)
    };
    let idle = |text: &str| {
        [
            "spindle_queue_pending_messages",
            "spindle_queue_unacked_messages",
            "spindle_in_flight_messages",
        ]
        .iter()
        .all(|name| metric(text, name, &[]) == 0.0)
    };
    let settling = Instant::now();
    let before = loop {
        let text = deployment.scrape(&fetcher[0]);
        if idle(&text) {
            std::thread::sleep(Duration::from_secs(2));
            let again = deployment.scrape(&fetcher[0]);
            if idle(&again) && fetched(&again, None) == fetched(&text, None) {
                break again;
            }
        }
        assert!(
            settling.elapsed() < Duration::from_secs(240),
            "the fetch queue did not settle:\n{text}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    deployment.spindle(&["project", "run", PROJECT]);
    let run_start = Instant::now();
    loop {
        let text = deployment.scrape(&fetcher[0]);
        if fetched(&text, None) > fetched(&before, None) {
            break;
        }
        assert!(
            run_start.elapsed() < Duration::from_secs(60),
            "the forced run fetched nothing:\n{text}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(3));
    let after = deployment.scrape(&fetcher[0]);
    assert_eq!(
        (
            fetched(&after, Some("ok")) - fetched(&before, Some("ok")),
            fetched(&after, None) - fetched(&before, None)
        ),
        (1.0, 1.0),
        "the fetcher counts the one page it fetched:\n{before}\n{after}"
    );

    // 5. The web UI, from another container on the network.
    let ui = "http://web-ui:5000";
    let stop = r#"{"status":"STOP"}"#;
    let json = "Content-Type: application/json";
    let projects_url = format!("{ui}/api/projects");
    let status_url = format!("{ui}/api/projects/{PROJECT}/status");
    let metrics_url = format!("{ui}/metrics");
    let (code, _) = deployment.http("GET", &projects_url, &[], None, false);
    assert_eq!(code, 401, "reading needs the login");
    let (code, _) = deployment.http("POST", &status_url, &[json], Some(stop), false);
    assert_eq!(code, 401, "a change without the login is refused");
    let (code, _) = deployment.http(
        "POST",
        &format!("{ui}/api/projects/{PROJECT}/run"),
        &[],
        None,
        false,
    );
    assert_eq!(code, 401, "a run without the login is refused");
    let (code, _) = deployment.http(
        "POST",
        &status_url,
        &[json, "Origin: http://evil.example"],
        Some(stop),
        true,
    );
    assert_eq!(code, 403, "a change from another site's page is refused");
    let (code, body) = deployment.http("GET", &projects_url, &[], None, true);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&format!("\"{PROJECT}\"")), "{body}");
    assert_eq!(
        deployment.project_row().map(|r| r.0),
        Some("RUNNING".to_string()),
        "nothing changed the project"
    );
    let (code, _) = deployment.http("GET", &metrics_url, &[], None, false);
    assert_eq!(code, 401, "the web UI's metrics need the login");
    let (code, text) = deployment.http("GET", &metrics_url, &[], None, true);
    assert_eq!(code, 200, "{text}");
    let tasks = |status| {
        metric(
            &text,
            "spindle_tasks",
            &[("role", "web-ui"), ("project", PROJECT), ("status", status)],
        )
    };
    assert_eq!(tasks("failed"), failed as f64, "{text}");
    // The scheduler adds its own outcomes to the all-time count between two counts of the
    // store (every 10 minutes), so the forced run of step 4 may count once more.
    let shown = tasks("success");
    assert!(
        shown == success as f64 || shown == (success + 1) as f64,
        "the web UI's metrics show the stored tasks ({success} done):\n{text}"
    );
}
