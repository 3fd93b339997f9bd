//! Real-site shapes crawled with declarative rules only, end to end (`spindle crawl` against a
//! site served here): a sign-in form with a one-time hidden token and a session cookie, paging
//! by POSTing a form back with a changing view-state, and a list whose tiles carry values the
//! detail pages lack. Each asserts the exact items, and the crawl summary's counts.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use support::{Server, crawl_project as crawl, run, serve_on_own_thread, write};

/// Serves `site` (method, path, headers, body → response) on a port of its own.
fn serve_site<F>(site: F) -> Server
where
    F: Fn(&Method, &Uri, &HeaderMap, &str) -> Response + Send + Sync + 'static,
{
    let site = Arc::new(site);
    serve_on_own_thread(move |listener, stop| async move {
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
                let site = site.clone();
                async move { site(&method, &uri, &headers, &body) }
            },
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .expect("serve");
    })
}

fn html(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::from(body))
        .expect("response")
}

fn not_found() -> Response {
    html(StatusCode::NOT_FOUND, "<h1>Not found</h1>".to_string())
}

/// The fields of a URL-encoded body.
fn form_of(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// The value of cookie `name` sent with the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// What the sign-in site knows: tokens it handed out (each good once) and open sessions with
/// the pages each has shown.
#[derive(Default)]
struct Accounts {
    issued: HashSet<String>,
    sessions: HashMap<String, u32>,
    loads: u32,
    posts: u32,
}

/// A site whose orders are shown to signed-in users only; a session ends after
/// `pages_per_session` order pages (then the site redirects to its sign-in form).
fn signin_site(orders: u32, pages_per_session: u32) -> (Server, Arc<Mutex<Accounts>>) {
    let accounts = Arc::new(Mutex::new(Accounts::default()));
    let state = accounts.clone();
    let server = serve_site(move |method, uri, headers, body| {
        let mut a = state.lock().expect("lock");
        let sid = cookie(headers, "sid").filter(|sid| a.sessions.contains_key(sid));
        let path = uri.path();
        let order: Option<u32> = path.strip_prefix("/orders/").and_then(|n| n.parse().ok());
        match (method.as_str(), path) {
            ("GET", "/login") => {
                a.loads += 1;
                let token = format!("tok-{}-{}", a.loads, a.loads * 7919);
                a.issued.insert(token.clone());
                html(
                    StatusCode::OK,
                    format!(
                        r#"<html><body><h1>Sign in</h1>
                        <form id="search" action="/search"><input name="q"></form>
                        <form id="login" method="post" action="session">
                          <input type="hidden" name="csrf" value="{token}">
                          <input type="email" name="email"><input type="password" name="password">
                          <input type="checkbox" name="remember" value="yes" checked>
                          <button type="submit" name="go" value="in">Sign in</button>
                        </form></body></html>"#
                    ),
                )
            }
            ("POST", "/session") => {
                a.posts += 1;
                let f = form_of(body);
                let token_ok = f.get("csrf").is_some_and(|t| a.issued.remove(t));
                let ok = token_ok
                    && f.get("email").map(String::as_str) == Some("me@example.com")
                    && f.get("password").map(String::as_str) == Some("s3cret")
                    && f.get("remember").map(String::as_str) == Some("yes")
                    && f.get("go").map(String::as_str) == Some("in");
                if !ok {
                    return html(StatusCode::FORBIDDEN, format!("<p>refused: {body}</p>"));
                }
                let sid = format!("s{}", a.posts * 104_729);
                a.sessions.insert(sid.clone(), 0);
                Response::builder()
                    .status(StatusCode::SEE_OTHER)
                    .header(header::LOCATION, "/account")
                    .header(header::SET_COOKIE, format!("sid={sid}; Path=/; HttpOnly"))
                    .body(Body::empty())
                    .expect("response")
            }
            ("GET", "/account") if sid.is_some() => html(
                StatusCode::OK,
                (1..=orders)
                    .map(|i| {
                        format!(r#"<li class="order"><a href="/orders/{i}">Order {i}</a></li>"#)
                    })
                    .collect(),
            ),
            ("GET", _) if order.is_some_and(|n| (1..=orders).contains(&n)) => {
                let n = order.unwrap_or_default();
                let views = sid.and_then(|sid| a.sessions.get_mut(&sid));
                match views {
                    Some(views) if *views < pages_per_session => {
                        *views += 1;
                        html(
                            StatusCode::OK,
                            format!(r#"<h1>Order {n}</h1><p class="total">{}.50</p>"#, n * 10),
                        )
                    }
                    // Signed out, or the session has expired: to the sign-in form.
                    _ => Response::builder()
                        .status(StatusCode::FOUND)
                        .header(header::LOCATION, "/login")
                        .body(Body::empty())
                        .expect("response"),
                }
            }
            ("GET", "/account") => html(StatusCode::FORBIDDEN, "<p>sign in first</p>".into()),
            _ => not_found(),
        }
    });
    (server, accounts)
}

/// The orders' items as the site shows them.
fn order_items(base: &str, orders: u32) -> BTreeMap<String, Value> {
    (1..=orders)
        .map(|n| {
            let url = format!("{base}/orders/{n}");
            (
                url.clone(),
                json!({ "title": format!("Order {n}"), "total": f64::from(n * 10) + 0.5, "url": url }),
            )
        })
        .collect()
}

fn by_url(items: Vec<serde_json::Map<String, Value>>) -> BTreeMap<String, Value> {
    items
        .into_iter()
        .map(|i| {
            (
                i["url"].as_str().unwrap_or_default().to_string(),
                Value::Object(i),
            )
        })
        .collect()
}

#[test]
fn a_sign_in_form_with_a_one_time_token_opens_the_session_whose_pages_give_the_items() {
    let (server, accounts) = signin_site(3, 100);
    let base = &server.base;
    let project = format!(
        r#"
name = "signin"
start = ["{base}/login"]
allow_private = true

[defaults]
session = true

[handlers.start]
follow = [{{ form = {{ css = "form#login", fill = {{ email = "me@example.com", password = "s3cret", note = "$ecret" }} }}, callback = "account" }}]

[handlers.account]
follow = [{{ css = "li.order a", callback = "order" }}]

[handlers.order]
item.title = {{ css = "h1", required = true }}
item.total = {{ css = "p.total", as = "number" }}
item.url = "$url"
"#
    );
    let (items, stderr) = crawl(&project);
    assert_eq!(by_url(items), order_items(base, 3), "stderr:\n{stderr}");
    let a = accounts.lock().expect("lock");
    assert_eq!((a.loads, a.posts), (1, 1), "one sign-in, accepted");
    assert_eq!(a.sessions.len(), 1);
    assert!(stderr.contains(" 0 errors"), "{stderr}");
    // `note = "$ecret"` names no page value: sent as written, and counted.
    assert!(
        stderr.contains("1 form value sent as written"),
        "summary:\n{stderr}"
    );
    // `spindle check` points it out before any fetch.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "signin.toml", &project);
    let check = run(
        &["check", path.to_str().expect("utf-8")],
        Duration::from_secs(30),
    );
    let warned = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{warned}");
    assert!(
        warned.contains("warning: handler `start`, follow to `account`: form value `note` = \"$ecret\" names no page value"),
        "{warned}"
    );
}

#[test]
fn an_expired_session_signs_in_again_with_the_documented_rule() {
    // Each session shows two order pages; the third is the sign-in form.
    let (server, accounts) = signin_site(5, 2);
    let base = &server.base;
    let (items, stderr) = crawl(&format!(
        r#"
name = "relogin"
start = ["{base}/login"]
allow_private = true
host_concurrency = 1

[defaults]
session = true

[handlers.start]
follow = [{{ form = {{ css = "form#login", fill = {{ email = "me@example.com", password = "s3cret" }} }}, callback = "account" }}]

[handlers.account]
follow = [{{ css = "li.order a", callback = "order" }}]

[handlers.order]
item.title = {{ css = "h1" }}
item.total = {{ css = "p.total", as = "number", required = true }}
item.url = "$url"
follow = [{{ form = {{ css = "form#login", fill = {{ email = "me@example.com", password = "s3cret" }} }},
            callback = "relogin", save = {{ back = "$url" }}, max_depth = 20 }}]

[handlers.relogin]
follow = [{{ url = "{{$save.back}}", callback = "order", force = true, priority = 1 }}]
"#
    ));
    assert_eq!(by_url(items), order_items(base, 5), "stderr:\n{stderr}");
    let a = accounts.lock().expect("lock");
    assert!(a.posts >= 3, "signed in again: {} sign-ins", a.posts);
    assert_eq!(a.loads, a.posts, "every sign-in on a fresh form");
    assert!(stderr.contains(" 0 errors"), "{stderr}");
}

/// Rows per page and pages of the POST-back site.
const ROWS: u32 = 20;
const PAGES: u32 = 5;

#[test]
fn post_back_paging_with_a_changing_view_state_gives_every_row_once() {
    // The view-state names the page it was issued with, and a new one is made per load: the
    // site pages only by POSTing its form back with `__EVENTTARGET = next`.
    let states: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let posts = Arc::new(Mutex::new(0u32));
    let (st, counted) = (states.clone(), posts.clone());
    let server = serve_site(move |method, uri, _headers, body| {
        if uri.path() != "/Results.aspx" {
            return not_found();
        }
        let mut states = st.lock().expect("lock");
        let page = match method.as_str() {
            "GET" => 1,
            "POST" => {
                *counted.lock().expect("lock") += 1;
                let f = form_of(body);
                let from = f.get("__VIEWSTATE").and_then(|vs| states.get(vs).copied());
                match (from, f.get("__EVENTTARGET").map(String::as_str)) {
                    (Some(p), Some("next")) if p < PAGES => p + 1,
                    _ => {
                        return html(
                            StatusCode::BAD_REQUEST,
                            format!("<p>bad post-back {body}</p>"),
                        );
                    }
                }
            }
            _ => return not_found(),
        };
        let state = format!("vs{}p{page}", states.len() * 31 + 17);
        states.insert(state.clone(), page);
        let rows: String = (1..=ROWS)
            .map(|r| {
                let id = (page - 1) * ROWS + r;
                format!(
                    r#"<tr class="row"><td class="id">{id}</td><td class="name">Row {id}</td></tr>"#
                )
            })
            .collect();
        let next = if page < PAGES {
            r#"<a class="next" href="javascript:__doPostBack('next','')">Next</a>"#
        } else {
            ""
        };
        html(
            StatusCode::OK,
            format!(
                r#"<html><body><form id="aspnetForm" method="post" action="./Results.aspx">
                <input type="hidden" name="__VIEWSTATE" value="{state}">
                <input type="hidden" name="__EVENTTARGET" value="">
                <input type="hidden" name="__EVENTARGUMENT" value="">
                <table>{rows}</table><div class="pager">Page {page} {next}</div>
                </form></body></html>"#
            ),
        )
    });
    let base = &server.base;
    let (items, stderr) = crawl(&format!(
        r#"
name = "postback"
start = ["{base}/Results.aspx"]
allow_private = true

[handlers.start]
items = {{ each = "tr.row" }}
item.id = {{ css = "td.id", as = "integer" }}
item.name = {{ css = "td.name" }}
follow = [{{ form = {{ css = "form#aspnetForm:has(a.next)", fill = {{ __EVENTTARGET = "next" }} }}, callback = "start" }}]
"#
    ));
    let mut ids: Vec<i64> = items
        .iter()
        .map(|i| i["id"].as_i64().expect("an integer id"))
        .collect();
    ids.sort_unstable();
    let want: Vec<i64> = (1..=i64::from(PAGES * ROWS)).collect();
    assert_eq!(ids, want, "every row exactly once\nstderr:\n{stderr}");
    for item in &items {
        assert_eq!(
            item["name"],
            format!("Row {}", item["id"]),
            "name of its own row"
        );
    }
    assert_eq!(
        *posts.lock().expect("lock"),
        PAGES - 1,
        "one POST per next page"
    );
    assert!(
        stderr.contains(&format!(
            "{PAGES} pages, {} items, 0 errors in",
            PAGES * ROWS
        )),
        "nothing dropped or replaced:\n{stderr}"
    );
}

#[test]
fn list_tiles_give_each_detail_page_its_own_values() {
    // Two list pages of six tiles; the price and badge are on the tiles only, the name on the
    // detail page, the rating on the product's reviews page: each item is assembled along
    // list → detail → reviews. Page 2 links back to page 1, a follow already known.
    let server = serve_site(|method, uri, _headers, _body| {
        if method != Method::GET {
            return not_found();
        }
        let path = uri.path();
        if let Some(page) = path.strip_prefix("/list/") {
            let page: u32 = page.parse().unwrap_or(0);
            if !(1..=2).contains(&page) {
                return not_found();
            }
            let tiles: String = (1..=6)
                .map(|t| {
                    let i = (page - 1) * 6 + t;
                    let badge = if i.is_multiple_of(3) {
                        r#"<span class="badge">Sale</span>"#
                    } else {
                        ""
                    };
                    format!(
                        r#"<li class="tile"><a href="/p/{i}"><img src="/i/{i}.png"></a><h3><a href="/p/{i}">Product {i}</a></h3><span class="price">£{i}.99</span>{badge}</li>"#
                    )
                })
                .collect();
            let nav = if page == 1 {
                r#"<a class="next" href="/list/2">next</a>"#
            } else {
                r#"<a class="prev" href="/list/1">prev</a>"#
            };
            html(
                StatusCode::OK,
                format!(r#"<h1>Shop</h1><ul>{tiles}</ul><nav>{nav}</nav>"#),
            )
        } else if let Some(i) = path
            .strip_prefix("/p/")
            .and_then(|p| p.strip_suffix("/reviews"))
        {
            let i: u32 = i.parse().unwrap_or(0);
            html(
                StatusCode::OK,
                format!(
                    r#"<h1>Reviews</h1><p class="rating">{}.5 of 5</p><ul><li>Fine.</li></ul>"#,
                    i % 5
                ),
            )
        } else if let Some(i) = path.strip_prefix("/p/") {
            html(
                StatusCode::OK,
                format!(
                    r#"<h1>Product {i}</h1><p class="desc">About product {i}.</p><a class="reviews" href="/p/{i}/reviews">Reviews</a>"#
                ),
            )
        } else {
            not_found()
        }
    });
    let base = &server.base;
    let project = |follow: &str| {
        format!(
            r#"
name = "tiles"
start = ["{base}/list/1"]
allow_private = true

[handlers.start]
follow = [{follow},
          {{ css = "nav a", callback = "start" }}]

[handlers.detail]
follow = [{{ css = "a.reviews", callback = "reviews", save = {{ name = {{ css = "h1" }}, price = "$save.price", badge = "$save.badge", product = "$url" }} }}]

[handlers.reviews]
item.name = "$save.name"
item.price = "$save.price"
item.badge = "$save.badge"
item.rating = {{ css = ".rating", regex = '^[0-9.]+', as = "number" }}
item.url = "$save.product"
item.reviews = "$url"
"#
        )
    };
    let (items, stderr) = crawl(&project(
        r#"{ each = "li.tile", css = "a", callback = "detail", save = { price = { css = ".price", regex = '[0-9.]+', as = "number" }, badge = { css = ".badge" } } }"#,
    ));
    let got: BTreeMap<String, Value> = items
        .into_iter()
        .map(|i| {
            (
                i["url"].as_str().unwrap_or_default().to_string(),
                Value::Object(i),
            )
        })
        .collect();
    let want: BTreeMap<String, Value> = (1..=12u32)
        .map(|i| {
            let url = format!("{base}/p/{i}");
            let badge = if i.is_multiple_of(3) {
                json!("Sale")
            } else {
                Value::Null
            };
            (
                url.clone(),
                json!({
                    "name": format!("Product {i}"),
                    "price": f64::from(i) + 0.99,
                    "badge": badge,
                    "rating": f64::from(i % 5) + 0.5,
                    "url": url,
                    "reviews": format!("{url}/reviews"),
                }),
            )
        })
        .collect();
    assert_eq!(got, want, "stderr:\n{stderr}");
    assert!(
        stderr.contains("26 pages, 12 items, 0 errors, 1 follow already known in"),
        "page 2's link back to page 1 is counted:\n{stderr}"
    );

    // The same rule without `each`: `spindle debug` warns that every link gets the first
    // tile's values.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "tiles.toml",
        &project(
            r#"{ css = "li.tile h3 a", callback = "detail", save = { price = { css = ".price" } } }"#,
        ),
    );
    let output = run(
        &[
            "debug",
            path.to_str().expect("utf-8"),
            &format!("{base}/list/1"),
        ],
        Duration::from_secs(60),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let warnings = report["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{report}");
    let warning = warnings[0].as_str().unwrap_or_default();
    assert!(
        warning.contains("`save.price`") && warning.contains("all 6 links"),
        "{warning}"
    );
    assert!(
        report["follows"]
            .as_array()
            .expect("follows")
            .iter()
            .filter(|t| t["callback"] == "detail")
            .all(|t| t["save"]["price"] == "£1.99"),
        "the trap the warning is about: {report}"
    );

    // Items keyed by a value every tile shares: each replaces the one before, counted.
    let (items, stderr) = crawl(&format!(
        r#"
name = "shared"
start = ["{base}/list/1"]
allow_private = true

[handlers.start]
follow = [{{ css = "nav a", callback = "start" }}]
items = {{ each = "li.tile", key = "shop" }}
item.shop = "$project"
item.name = {{ css = "h3" }}
"#
    ));
    assert_eq!(items.len(), 1, "one key, one item");
    assert!(
        stderr.contains("2 pages, 12 items, 0 errors, 1 follow already known, 11 items replaced by later ones in"),
        "summary:\n{stderr}"
    );
}
