//! The web UI driven in headless Chromium against a live `spindle all` crawling a generated
//! local site: the dashboard's live figures, rate and status edits measured at the site,
//! the editor's check, the debugger stepping through follows, the selector helper, results
//! and their export, the task search, scraped markup shown as text, and the login.
//!
//! Screenshots of every page go to `target/ui-screenshots/` (see the README). Without Chromium
//! the tests skip with a printed reason; under `CI=true` they fail.

mod support;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spindle::site::SiteSpec;
use support::browser::Ui;
use support::{free_port, serve, serve_on_own_thread, start_all, write};

/// `spindle all` on a free port, stopped when dropped.
struct All {
    child: Child,
    bind: String,
}

impl Drop for All {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl All {
    fn start(dir: &Path) -> All {
        let bind = format!("127.0.0.1:{}", free_port());
        let child = start_all(
            dir.join("data").to_str().expect("utf-8"),
            dir.join("projects").to_str().expect("utf-8"),
            &bind,
        );
        let all = All { child, bind };
        let deadline = Instant::now() + Duration::from_secs(60);
        while api(&all.bind, "GET", "/api/projects", None).is_none() {
            assert!(Instant::now() < deadline, "spindle all did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        all
    }

    fn base(&self) -> String {
        format!("http://{}", self.bind)
    }
}

/// A request to the UI's API with a JSON body: the status and the JSON answer.
fn api(bind: &str, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
    support::http_json(bind, method, path, body)
}

/// The dashboard row of `project` in the UI's project list.
fn row(bind: &str, project: &str) -> Value {
    let (_, rows) = api(bind, "GET", "/api/projects", None).expect("projects");
    rows.as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == project).cloned())
        .unwrap_or(Value::Null)
}

/// The first number in a text ("1,234 · 2 failed" → 1234).
fn first_number(text: &str) -> u64 {
    let digits: String = text
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

/// Calls `f` until it gives a value, failing with `what` after `limit`.
fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Requests the site served in a window of `secs` seconds.
fn hits_per_second(hits: &spindle::site::Hits, secs: u64) -> f64 {
    let before = hits.total();
    std::thread::sleep(Duration::from_secs(secs));
    (hits.total() - before) as f64 / secs as f64
}

/// A project for the generated shop at `rate` requests per second.
fn shop_project(site: &spindle::site::Site, base: &str, rate: u32) -> String {
    site.project_toml("shop", base)
        .replace(
            "rate = 100000\nburst = 100000",
            &format!("rate = {rate}\nburst = {rate}"),
        )
        .replace("host_concurrency = 512", "host_concurrency = 8")
        .replacen("name = \"shop\"", "name = \"shop\"\ngroup = \"demo\"", 1)
}

#[test]
fn the_dashboard_steers_a_live_crawl_and_the_editor_debugs_it() {
    let served = serve(SiteSpec::small());
    let dir = tempfile::tempdir().expect("temp dir");
    let projects = dir.path().join("projects");
    std::fs::create_dir(&projects).expect("projects folder");
    write(
        &projects,
        "shop.toml",
        &shop_project(&served.site, &served.base, 20),
    );
    let all = All::start(dir.path());
    let Some(ui) = Ui::start(&all.base()) else {
        return;
    };

    // The dashboard shows the project, and its counters rise while it crawls.
    ui.open("/");
    ui.wait(r#"tr[data-project="shop"]"#);
    let all_time = || {
        let text = ui.eval(
            r#"document.querySelector('tr[data-project="shop"] .progress[data-window="all"]').parentElement.textContent"#,
        );
        first_number(text.as_str().unwrap_or_default())
    };
    let first = eventually(Duration::from_secs(30), "a count shows", || {
        Some(all_time()).filter(|n| *n > 0)
    });
    eventually(Duration::from_secs(30), "the count rises", || {
        Some(all_time()).filter(|n| *n > first)
    });
    ui.wait_until(
        "document.querySelectorAll('#instances tr, #instances li, #instances .instance').length >= 4",
        Duration::from_secs(10),
        "the in-process roles are listed",
    );
    ui.screenshot("dashboard-crawling");

    // Rate and burst edited in the page change the pace at the site.
    let fast = hits_per_second(&served.hits, 3);
    ui.click(r#"tr[data-project="shop"] td.rate"#);
    ui.wait(r#"tr[data-project="shop"] input.rate-input"#);
    ui.eval(r#"document.querySelector('tr[data-project="shop"] input.rate-input').select()"#);
    ui.type_text("2/2");
    ui.press("Enter");
    ui.wait_until(
        r#"fetch('/api/projects').then(r => r.json()).then(rows => rows.find(p => p.name === 'shop').rate === 2)"#,
        Duration::from_secs(10),
        "the new rate is stored",
    );
    // Applied by the scheduler within 2 s; what was already sent still lands.
    std::thread::sleep(Duration::from_secs(3));
    let slow = hits_per_second(&served.hits, 6);
    assert!(
        fast >= 10.0 && slow <= 3.5,
        "rate 20/s gave {fast:.1} requests/s, rate 2/s gave {slow:.1}"
    );

    // The status menu lists the statuses the live feed sends, in its order, and the row says
    // the project is dispatched: the page holds no copy of those rules.
    assert_eq!(
        ui.eval(
            r#"[...document.querySelectorAll('tr[data-project="shop"] select.status option')].map(o => o.value).join()"#
        ),
        json!("TODO,STOP,CHECKING,DEBUG,RUNNING")
    );
    assert_eq!(row(&all.bind, "shop")["dispatches"], true);
    ui.wait_until(
        "document.getElementById('projects-meta').textContent.includes('1 running')",
        Duration::from_secs(5),
        "the dispatched project is counted as running",
    );

    // Stop and start from the status menu.
    for status in ["STOP", "RUNNING"] {
        ui.set_value(r#"tr[data-project="shop"] select.status"#, status);
        let deadline = Instant::now() + Duration::from_secs(10);
        while row(&all.bind, "shop")["status"] != status {
            assert!(Instant::now() < deadline, "status {status} not applied");
            std::thread::sleep(Duration::from_millis(200));
        }
        if status == "STOP" {
            std::thread::sleep(Duration::from_secs(3));
            let stopped = hits_per_second(&served.hits, 3);
            assert!(
                stopped < 0.5,
                "a stopped project is not fetched: {stopped:.1}/s"
            );
        }
    }
    // The editor's Start button follows the API's `startable`: shown for a stopped project
    // (a status sent in lower case), hidden once pressing it has set the project RUNNING.
    let (code, stopped) = api(
        &all.bind,
        "PATCH",
        "/api/projects/shop",
        Some(&json!({ "status": "stop" })),
    )
    .expect("patch");
    assert_eq!(
        (code, &stopped["status"]),
        (200, &json!("STOP")),
        "{stopped}"
    );
    ui.open("/projects/shop");
    ui.wait_until(
        "document.getElementById('project-status').textContent === 'STOP' && !document.getElementById('start').hidden",
        Duration::from_secs(10),
        "Start shows for a stopped project",
    );
    ui.click("#start");
    ui.wait_until(
        "document.getElementById('project-status').textContent === 'RUNNING' && document.getElementById('start').hidden",
        Duration::from_secs(10),
        "Start runs the project and hides",
    );
    assert_eq!(row(&all.bind, "shop")["status"], "RUNNING");

    // Fast again, so the crawl finishes.
    api(
        &all.bind,
        "PATCH",
        "/api/projects/shop",
        Some(&json!({ "rate": 1000, "burst": 1000 })),
    )
    .expect("patch");

    editor_checks_and_debugs(&ui, &served.base);

    // Results: the table, then the export link downloads every item.
    let deadline = Instant::now() + Duration::from_secs(120);
    while row(&all.bind, "shop")["finished"] != true {
        assert!(Instant::now() < deadline, "the crawl did not finish");
        std::thread::sleep(Duration::from_millis(500));
    }
    ui.open("/");
    ui.wait(r#"tr[data-project="shop"]"#);
    std::thread::sleep(Duration::from_millis(1500));
    ui.screenshot("dashboard");
    ui.open("/results?project=shop");
    ui.wait("table#results tbody tr");
    ui.screenshot("results");
    let lines = ui.eval(
        r#"fetch(document.querySelector('a.export[data-format="jsonl"]').href).then(r => r.text()).then(t => t.trim().split('\n').length)"#,
    );
    assert_eq!(lines, json!(2000), "one line per product");
    let csv_rows = ui.eval(
        r#"fetch(document.querySelector('a.export[data-format="csv"]').href).then(r => r.text()).then(t => t.trim().split('\n').length)"#,
    );
    assert_eq!(csv_rows, json!(2001), "a header and one row per product");

    // The task search finds a failed task by a piece of its URL; its page tells why.
    ui.open("/tasks?project=shop");
    ui.wait("table#tasks tbody tr");
    ui.click("#filter-url");
    ui.type_text("missing/");
    ui.press("Enter");
    ui.wait_until(
        "location.search.includes('url=missing')",
        Duration::from_secs(10),
        "the filter goes into the address",
    );
    let urls = ui.wait_until(
        r#"(() => { const rows = [...document.querySelectorAll('table#tasks tbody tr')].map(r => r.textContent); return rows.length && rows.every(t => t.includes('/missing/')) && rows.length; })()"#,
        Duration::from_secs(10),
        "only tasks whose URL has /missing/ are listed",
    );
    assert_eq!(
        urls,
        json!(SiteSpec::small().missing_pages()),
        "every 404 page, once"
    );
    ui.screenshot("tasks");
    ui.click("table#tasks tbody tr a[href^='/tasks/']");
    ui.wait_until(
        "location.pathname.startsWith('/tasks/shop/') && document.body.innerText.includes('404')",
        Duration::from_secs(10),
        "the task's page shows its failure",
    );
    ui.screenshot("task");
}

/// The editor refuses a broken file at its line; the debugger runs a list page, lists its
/// follows, steps into one with ▶, and the selector helper proposes a selector for a click.
fn editor_checks_and_debugs(ui: &Ui, site: &str) {
    ui.open("/projects/shop");
    ui.wait("#editor");
    ui.wait_until(
        "document.querySelector('#editor').value.includes('[handlers.detail]')",
        Duration::from_secs(10),
        "the project's text loads",
    );
    let text = ui.eval("document.querySelector('#editor').value");
    let text = text.as_str().expect("editor text");
    let broken = text.replacen("rate = 20", "rate = \"fast\"", 1);
    assert_ne!(broken, text, "the rate line was found");
    let line = broken
        .lines()
        .position(|l| l.starts_with("rate ="))
        .expect("rate line")
        + 1;
    ui.set_value("#editor", &broken);
    ui.click("#check");
    let problem = ui.wait_until(
        "document.querySelector('#problems') && document.querySelector('#problems').textContent",
        Duration::from_secs(10),
        "the check reports the error",
    );
    assert!(
        problem
            .as_str()
            .is_some_and(|p| p.contains(&format!("line {line}"))),
        "the error names line {line}: {problem}"
    );
    ui.wait(".error-line");
    ui.set_value("#editor", text);
    ui.click("#check");

    // One step of the list handler on a list page.
    let list = format!("{site}/cat/1/page/1");
    ui.set_value("#debug-url", &list);
    ui.set_value("#debug-handler", "list");
    ui.click("#debug-run");
    let follows = ui.wait_until(
        "document.querySelectorAll('#follows li').length",
        Duration::from_secs(30),
        "the step lists follows",
    );
    assert!(follows.as_u64() >= Some(20), "{follows} follows");
    ui.screenshot("editor-debugger");

    // A `save` read once for the page and given to every product link: the step warns.
    let trap = text.replacen(
        r#"callback = "detail", priority = 1 },"#,
        r#"callback = "detail", priority = 1, save = { price = { css = "p.price" } } },"#,
        1,
    );
    assert_ne!(trap, text, "the list handler's product rule was found");
    ui.set_value("#editor", &trap);
    ui.click("#debug-run");
    let warning = ui.wait_until(
        "[...document.querySelectorAll('#follows-notes .callout.warn')].map(e => e.textContent).find(t => t.startsWith('Warning'))",
        Duration::from_secs(30),
        "the step warns about the page-wide save",
    );
    assert!(
        warning
            .as_str()
            .is_some_and(|w| w.contains("`save.price`") && w.contains("add `each`")),
        "{warning}"
    );
    ui.screenshot("editor-debugger-warning");
    ui.set_value("#editor", text);
    ui.click("#debug-run");
    ui.wait_until(
        "document.querySelectorAll('#follows li').length >= 20",
        Duration::from_secs(30),
        "the step runs the project's own text again",
    );

    // The selector helper, given a click on one product link of the preview.
    ui.click(r#".tab[data-tab="preview"]"#);
    ui.wait("iframe#preview");
    ui.wait_until(
        "document.querySelector('iframe#preview').contentDocument.querySelectorAll('article h3 a').length === 20",
        Duration::from_secs(10),
        "the preview renders the page",
    );
    ui.click("#selector-toggle");
    let point = ui.eval(
        r#"(() => {
            const frame = document.querySelector('iframe#preview');
            const link = frame.contentDocument.querySelectorAll('article h3 a')[3];
            link.scrollIntoView({block: 'center'});
            const f = frame.getBoundingClientRect(), l = link.getBoundingClientRect();
            return [f.left + l.left + l.width / 2, f.top + l.top + l.height / 2];
        })()"#,
    );
    let (x, y) = (point[0].as_f64().expect("x"), point[1].as_f64().expect("y"));
    ui.click_at(x, y);
    let selector = ui.wait_until(
        "document.querySelector('#selector').value",
        Duration::from_secs(10),
        "a selector is proposed",
    );
    let selector = selector.as_str().expect("selector text").to_string();
    ui.screenshot("editor-selector-helper");
    let site_bind = site.trim_start_matches("http://");
    let (_, page) = support::http(site_bind, "GET", "/cat/1/page/1", None).expect("the list page");
    let html = scraper::Html::parse_document(&page);
    let proposed = scraper::Selector::parse(&selector).expect("a valid CSS selector");
    let expected = scraper::Selector::parse("article h3 a").expect("selector");
    let hrefs = |s: &scraper::Selector| -> Vec<String> {
        html.select(s)
            .map(|e| e.value().attr("href").unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        hrefs(&proposed),
        hrefs(&expected),
        "`{selector}` matches exactly the product links"
    );
    let count = ui.eval("document.querySelector('#selector-count').textContent");
    assert_eq!(
        first_number(count.as_str().unwrap_or_default()),
        20,
        "{count}"
    );

    // ▶ on a follow runs it next: a product page, whose item shows.
    ui.click(r#".tab[data-tab="follows"]"#);
    ui.click("#follows li button.play");
    ui.wait_until(
        "document.querySelector('#items') && /Product/.test(document.querySelector('#items').textContent)",
        Duration::from_secs(30),
        "the followed product's item shows",
    );
}

/// A page whose product name is markup: every page that shows it must show it as text.
const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=\"window.__xss=1\">";

#[test]
fn scraped_markup_is_shown_as_text_on_every_page() {
    let escaped = HOSTILE
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let page =
        format!("<html><body><h1>{escaped}</h1><p class=\"note\">{escaped}</p></body></html>");
    let server = serve_on_own_thread(move |listener, stop| async move {
        let page = page.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .expect("serve");
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let projects = dir.path().join("projects");
    std::fs::create_dir(&projects).expect("projects folder");
    write(
        &projects,
        "xss.toml",
        &format!(
            "name = \"xss\"\nstart = [\"{}/\"]\nallow_private = true\n\n[handlers.start]\nitem.name = {{ css = \"h1\" }}\nitem.note = {{ css = \"p.note\" }}\n",
            server.base
        ),
    );
    let all = All::start(dir.path());
    let Some(ui) = Ui::start(&all.base()) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while api(&all.bind, "GET", "/api/results?project=xss", None)
        .is_none_or(|(_, r)| r["total"] != 1)
    {
        assert!(Instant::now() < deadline, "the hostile item was not stored");
        std::thread::sleep(Duration::from_millis(200));
    }
    let shown_as_text = |page: &str| {
        assert_eq!(
            ui.eval("document.querySelectorAll('img[src=\"x\"], body script:not([src])').length"),
            json!(0),
            "{page}: the item's markup became elements"
        );
        assert_eq!(
            ui.eval("window.__xss === undefined"),
            json!(true),
            "{page}: a handler ran"
        );
        assert!(
            ui.text().contains("<script>alert(1)</script>"),
            "{page} shows the text"
        );
    };
    ui.open("/results?project=xss");
    ui.wait("table#results tbody tr");
    shown_as_text("results");
    ui.screenshot("results-hostile-item");

    ui.open("/projects/xss");
    ui.wait_until(
        "document.querySelector('#editor').value.includes('[handlers.start]')",
        Duration::from_secs(10),
        "the project's text loads",
    );
    ui.click("#debug-run");
    ui.wait_until(
        "document.querySelector('#items') && document.querySelector('#items').textContent.includes('alert(1)')",
        Duration::from_secs(30),
        "the debugger shows the item",
    );
    shown_as_text("debugger items");
    ui.click(r#".tab[data-tab="html"]"#);
    assert_eq!(
        ui.eval("document.querySelectorAll('img[src=\"x\"]').length"),
        json!(0),
        "the HTML view shows source as text"
    );
}

#[test]
fn without_a_login_a_public_address_is_refused_and_with_one_every_change_needs_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // Refused before anything starts, with what to do.
    let output = support::spindle()
        .args(["all", "--data", data.to_str().expect("utf-8"), "--bind"])
        .arg(format!("0.0.0.0:{}", free_port()))
        .env_remove("SPINDLE_WEB_USER")
        .output()
        .expect("spindle all");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("without a login") && stderr.contains("spindle hash-password"),
        "{stderr}"
    );
    let output = support::spindle()
        .args(["web-ui", "--nats", "nats://127.0.0.1:1", "--bind"])
        .arg(format!("0.0.0.0:{}", free_port()))
        .output()
        .expect("spindle web-ui");
    assert!(!output.status.success(), "the web-ui role refuses too");

    // With a login on a public address: every change answers 401 without it.
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\n").expect("password file");
    let port = free_port();
    let mut child = support::spindle()
        .args(["all", "--data", data.to_str().expect("utf-8"), "--bind"])
        .arg(format!("0.0.0.0:{port}"))
        .env("SPINDLE_WEB_USER", "ada")
        .env("SPINDLE_WEB_PASSWORD_FILE", &password)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spindle all");
    let bind = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while api(&bind, "GET", "/healthz", None).is_none() {
        assert!(Instant::now() < deadline, "spindle all did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    let definition = json!({ "definition": "name = \"p\"\nstart = [\"http://127.0.0.1:1/\"]\n[handlers.start]\n" });
    for (method, path, body) in [
        ("POST", "/api/projects", Some(&definition)),
        ("PUT", "/api/projects/p/definition", Some(&definition)),
        ("PATCH", "/api/projects/p", Some(&json!({ "rate": 1 }))),
        ("POST", "/api/projects/p/run", None),
        (
            "POST",
            "/api/projects/p/status",
            Some(&json!({ "status": "STOP" })),
        ),
        ("DELETE", "/api/projects/p", None),
        (
            "POST",
            "/api/debug",
            Some(&json!({ "definition": "", "url": "http://127.0.0.1:1/" })),
        ),
        ("POST", "/api/tasks/p/t/cancel", None),
    ] {
        let (status, answer) = api(&bind, method, path, body).expect("answer");
        assert_eq!(status, 401, "{method} {path}: {answer}");
    }

    // The sign-in page lets the user in, and back to where they were going.
    if let Some(ui) = Ui::start(&format!("http://{bind}")) {
        ui.open("/results");
        ui.wait_until(
            "location.pathname === '/login'",
            Duration::from_secs(10),
            "pages without a login go to the sign-in page",
        );
        ui.screenshot("login");
        ui.wait("input[type=password]");
        ui.eval("document.querySelector('input:not([type=password])').focus()");
        ui.type_text("ada");
        ui.eval("document.querySelector('input[type=password]').focus()");
        ui.type_text("correct horse");
        ui.press("Enter");
        ui.wait_until(
            "location.pathname === '/results'",
            Duration::from_secs(10),
            "signed in, the user lands where they were going",
        );
    }
    child.kill().ok();
    child.wait().ok();
}
