//! Extraction throughput of one processor thread: pages per second on a ~50 KB page with 20
//! item fields and 100 links, with declarative rules versus the same work in a script hook.
//!
//! Run with `cargo bench -p spindle-processor --bench extract`. Two shared cores are noisy:
//! each figure is the median of several rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle_common::{Page, Project, Task};
use spindle_processor::{Rules, run_handler};

const FIELDS: usize = 20;
const LINKS: usize = 100;

/// A product page of about 50 KB: 20 spec rows, 100 related links, filler paragraphs.
fn page_html() -> String {
    let mut html =
        String::from("<html><head><title>Product</title></head><body><h1>The Product</h1>");
    html.push_str(
        "<p class=price>£1,234.56</p><p class=stock>In stock (17 available)</p><table id=specs>",
    );
    for i in 0..FIELDS {
        html.push_str(&format!(
            "<tr class=f{i}><th>Spec {i}</th><td data-v=\"{i}\"> value {i} </td></tr>"
        ));
    }
    html.push_str("</table><ul class=related>");
    for i in 0..LINKS {
        html.push_str(&format!(
            "<li><a href=\"/item/{i}?utm_source=x\">Related product number {i}</a></li>"
        ));
    }
    html.push_str("</ul>");
    while html.len() < 50_000 {
        html.push_str("<div class=text><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</p></div>");
    }
    html.push_str("</body></html>");
    html
}

fn declarative() -> String {
    let mut p = String::from(
        "name = \"bench\"\nstart = [\"http://shop.example/\"]\n[handlers.start]\nfollow = [{ css = \"ul.related a\", callback = \"start\" }]\n",
    );
    for i in 0..FIELDS - 2 {
        p.push_str(&format!("item.f{i} = {{ css = \"tr.f{i} td\" }}\n"));
    }
    p.push_str("item.price = { css = \"p.price\", regex = '[0-9,.]+', as = \"number\" }\n");
    p.push_str(
        "item.stock = { css = \"p.stock\", regex = '(\\d+) available', as = \"integer\" }\n",
    );
    p
}

fn scripted() -> String {
    let mut p = String::from(
        "name = \"bench\"\nstart = [\"http://shop.example/\"]\n[handlers.start]\nscript = '''\nlet item = #{};\n",
    );
    for i in 0..FIELDS - 2 {
        p.push_str(&format!("item.f{i} = css_first(\"tr.f{i} td\");\n"));
    }
    p.push_str("let price = regex_captures(css_first(\"p.price\"), \"[0-9,.]+\");\nlet p = price[0];\np.replace(\",\", \"\");\nitem.price = parse_float(p);\n");
    p.push_str("let stock = regex_captures(css_first(\"p.stock\"), \"(\\\\d+) available\");\nitem.stock = parse_int(stock[1]);\n");
    p.push_str("emit(item);\nfor href in css(\"ul.related a\", \"href\") { follow(href, \"start\"); }\n'''\n");
    p
}

fn rounds(rules: &Rules, task: &Task, page: &Page) -> (f64, usize, usize) {
    let mut rates = Vec::new();
    let mut shape = (0, 0);
    for _ in 0..5 {
        let started = Instant::now();
        let mut pages = 0u32;
        while started.elapsed() < Duration::from_millis(1500) {
            let out = run_handler(rules, task, page).expect("handler runs");
            shape = (out.items[0].data.len(), out.follows.len());
            pages += 1;
        }
        rates.push(f64::from(pages) / started.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], shape.0, shape.1)
}

fn main() {
    let html = page_html();
    let url = "http://shop.example/item/0";
    let task = Task {
        depth: 1,
        ..Task::new("bench", url, "start")
    };
    let page = Page {
        url: url.into(),
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        content_type: "text/html".into(),
        encoding: "UTF-8".into(),
        body_len: html.len() as u64,
        text: html,
        fetch_ms: 0,
        script_result: None,
        screenshot_png_base64: None,
    };
    println!(
        "page: {} bytes, {FIELDS} fields, {LINKS} links; one thread; median of 5 rounds of 1.5 s",
        page.text.len()
    );
    for (name, text) in [("declarative", declarative()), ("script hook", scripted())] {
        let project = Project::parse(&text).expect("bench project is valid");
        let rules = Rules::compile(Arc::new(project)).expect("compiles");
        let (rate, fields, follows) = rounds(&rules, &task, &page);
        println!("{name:>12}: {rate:8.1} pages/s ({fields} fields, {follows} follows per page)");
    }
}
