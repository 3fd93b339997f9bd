//! Headless Chromium driving the web UI like a user: navigate, wait for an element, click,
//! type, read the page, take a screenshot.
//!
//! Chromium is Debian's (`/usr/bin/chromium`), started by `headless_chrome` with the flags the
//! machine needs (no sandbox as root, no background networking on a closed network) and killed
//! when the [`Ui`] drops. A test without Chromium skips with a printed reason, or fails under
//! `CI=true`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::browser::tab::point::Point;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

/// Where the tests leave their screenshots (the README names it).
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots")
}

/// A browser with one tab, at the web UI on `base`.
pub struct Ui {
    _browser: Browser,
    /// The tab the test drives.
    pub tab: Arc<Tab>,
    /// `http://127.0.0.1:PORT` of the web UI.
    pub base: String,
}

impl Ui {
    /// Starts Chromium, or `None` (after printing why) when it is not installed.
    pub fn start(base: &str) -> Option<Ui> {
        let path = PathBuf::from("/usr/bin/chromium");
        let attempt = if path.is_file() {
            Ok(path)
        } else {
            Err("not installed at /usr/bin/chromium (apt-get install -y chromium)")
        };
        let path = super::require_service("Chromium", attempt)?;
        let args: Vec<&OsStr> = [
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--hide-scrollbars",
        ]
        .iter()
        .map(OsStr::new)
        .collect();
        let options = LaunchOptions::default_builder()
            .path(Some(path))
            .headless(true)
            .sandbox(false)
            .window_size(Some((1440, 1200)))
            .idle_browser_timeout(Duration::from_secs(600))
            .args(args)
            .build()
            .expect("launch options");
        let browser = Browser::new(options).expect("Chromium starts");
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(Duration::from_secs(30));
        Some(Ui {
            _browser: browser,
            tab,
            base: base.to_string(),
        })
    }

    /// Opens `path` of the UI and waits for the page to load.
    pub fn open(&self, path: &str) {
        self.tab
            .navigate_to(&format!("{}{path}", self.base))
            .and_then(|t| t.wait_until_navigated())
            .unwrap_or_else(|e| panic!("open {path}: {e:#}"));
    }

    /// Waits for an element matching `selector`.
    pub fn wait(&self, selector: &str) {
        self.tab
            .wait_for_element(selector)
            .unwrap_or_else(|e| panic!("no {selector} on the page: {e:#}\n{}", self.text()));
    }

    /// Clicks the element matching `selector` (as a user: the mouse at its middle).
    pub fn click(&self, selector: &str) {
        self.tab
            .wait_for_element(selector)
            .and_then(|e| e.click().map(|_| ()))
            .unwrap_or_else(|e| panic!("click {selector}: {e:#}"));
    }

    /// Clicks at a point of the viewport.
    pub fn click_at(&self, x: f64, y: f64) {
        self.tab
            .click_point(Point { x, y })
            .unwrap_or_else(|e| panic!("click at {x},{y}: {e:#}"));
    }

    /// Sets the value of the form control matching `selector` (a text area, an input, a
    /// select) as a script would, then fires `input` and `change` so the page reacts as to a
    /// user's edit. Quicker than typing a whole project file key by key.
    pub fn set_value(&self, selector: &str, value: &str) {
        self.wait(selector);
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); e.value = {}; \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); }})()",
            Value::String(selector.to_string()),
            Value::String(value.to_string())
        ));
    }

    /// Types `text` where the focus is.
    pub fn type_text(&self, text: &str) {
        self.tab.type_str(text).expect("type");
    }

    /// Presses a key, e.g. "Enter".
    pub fn press(&self, key: &str) {
        self.tab.press_key(key).expect("key press");
    }

    /// The value of a JavaScript expression (awaited if it is a promise), as JSON.
    pub fn eval(&self, expression: &str) -> Value {
        let wrapped = format!("(async () => JSON.stringify(await ({expression})))()");
        let result = self
            .tab
            .evaluate(&wrapped, true)
            .unwrap_or_else(|e| panic!("evaluate {expression}: {e:#}"));
        match result.value {
            Some(Value::String(json)) => serde_json::from_str(&json).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Waits until `expression` is truthy, failing with `what` after `limit`.
    pub fn wait_until(&self, expression: &str, limit: Duration, what: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{expression}` stayed false for {limit:?}; the page says:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The page's visible text.
    pub fn text(&self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Saves a PNG of the viewport as `target/ui-screenshots/NAME.png`.
    pub fn screenshot(&self, name: &str) {
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}
