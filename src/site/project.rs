//! The crawl project for a generated site, and the items a correct crawl of it yields.
//!
//! The project is written in the project-file format of DESIGN.md. Its handlers follow
//! exactly the links [`SiteSpec::pages`](super::SiteSpec::pages) counts: category links from
//! the index, product and next-page links from list pages, and related links (cycles and
//! 404s included) from detail pages.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::Site;

impl Site {
    /// A project file (TOML, the format of DESIGN.md) named `name` that crawls this site
    /// served at `base`, a scheme and authority such as `http://127.0.0.1:1234` (a trailing
    /// `/` is ignored).
    ///
    /// It starts at `base + "/"` and allows private addresses; its rate, burst and host
    /// concurrency are high enough that the site, not politeness, is the bottleneck. The
    /// `detail` handler emits one item per product with the fields of
    /// [`Site::expected_items`].
    pub fn project_toml(&self, name: &str, base: &str) -> String {
        let start = format!("{}/", base.trim_end_matches('/'));
        format!(
            r#"# Crawls Spindle's generated test site ({products} products, {pages} pages).
name = {name}
start = [{start}]
rate = 100000
burst = 100000
host_concurrency = 512
host_delay = "0s"
allow_private = true

[defaults]
timeout = "30s"

[handlers.start]
follow = [
  {{ css = "nav a.category", callback = "list" }},
]

[handlers.list]
follow = [
  {{ css = "article h3 a", callback = "detail", priority = 1 }},
  {{ css = "li.next a", callback = "list" }},
]

[handlers.detail]
follow = [
  {{ css = "section.related a", callback = "detail", priority = 1 }},
]
item.title = {{ css = "h1" }}
item.price = {{ css = "p.price", regex = '[0-9.]+', as = "number" }}
item.image = {{ css = "img.cover", attr = "src", as = "url" }}
item.url = "$url"
"#,
            products = self.products.len(),
            pages = self.spec.pages(),
            name = toml_string(name),
            start = toml_string(&start),
        )
    }

    /// The item a correct crawl of this site served at `base` yields for each product, in
    /// product id order: an object with `title` (text), `price` (number), `image` (absolute
    /// URL of the cover) and `url` (absolute URL of the canonical detail page, e.g.
    /// `base + "/item/17"`), in that field order.
    pub fn expected_items(&self, base: &str) -> Vec<Map<String, Value>> {
        let base = base.trim_end_matches('/');
        self.products
            .iter()
            .map(|product| {
                let mut item = Map::new();
                item.insert("title".to_owned(), Value::from(product.title.as_str()));
                item.insert("price".to_owned(), Value::from(product.price));
                item.insert(
                    "image".to_owned(),
                    Value::from(format!("{base}{}", product.image)),
                );
                item.insert(
                    "url".to_owned(),
                    Value::from(format!("{base}/item/{}", product.id)),
                );
                item
            })
            .collect()
    }
}

/// `text` as a TOML basic string, quotes included.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                // Writing into a String never fails.
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::SiteSpec;

    fn site() -> Site {
        Site::new(SiteSpec {
            products: 30,
            ..SiteSpec::small()
        })
    }

    #[test]
    fn project_is_valid_toml_with_the_expected_rules() {
        let text = site().project_toml("shop \"test\"", "http://127.0.0.1:1234/");
        let project: toml::Table = text.parse().expect("project parses as TOML");
        assert_eq!(project["name"].as_str(), Some("shop \"test\""));
        assert_eq!(
            project["start"].as_array().expect("start is an array")[0].as_str(),
            Some("http://127.0.0.1:1234/")
        );
        assert_eq!(project["allow_private"].as_bool(), Some(true));
        assert!(project["rate"].as_integer().expect("rate is a number") >= 100_000);
        let handlers = project["handlers"].as_table().expect("handlers table");
        let follows = |handler: &str| -> Vec<(String, String)> {
            handlers[handler]["follow"]
                .as_array()
                .expect("follow is an array")
                .iter()
                .map(|rule| {
                    (
                        rule["css"].as_str().expect("css").to_owned(),
                        rule["callback"].as_str().expect("callback").to_owned(),
                    )
                })
                .collect()
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(css, callback)| ((*css).to_owned(), (*callback).to_owned()))
                .collect()
        };
        assert_eq!(follows("start"), pairs(&[("nav a.category", "list")]));
        assert_eq!(
            follows("list"),
            pairs(&[("article h3 a", "detail"), ("li.next a", "list")])
        );
        assert_eq!(follows("detail"), pairs(&[("section.related a", "detail")]));
        let item = handlers["detail"]["item"].as_table().expect("item table");
        let fields: Vec<&str> = item.keys().map(String::as_str).collect();
        assert_eq!(fields, ["title", "price", "image", "url"]);
        assert_eq!(item["price"]["regex"].as_str(), Some("[0-9.]+"));
        assert_eq!(item["price"]["as"].as_str(), Some("number"));
        assert_eq!(item["image"]["attr"].as_str(), Some("src"));
        assert_eq!(item["url"].as_str(), Some("$url"));
    }

    #[test]
    fn toml_strings_escape_what_they_must() {
        let nasty = "a\"b\\c\nd\u{1}e — é";
        let table: toml::Table = format!("v = {}", toml_string(nasty))
            .parse()
            .expect("escaped string parses");
        assert_eq!(table["v"].as_str(), Some(nasty));
    }

    #[test]
    fn expected_items_have_absolute_urls() {
        let site = site();
        let items = site.expected_items("http://h:1/");
        assert_eq!(items.len(), 30);
        let first = &items[16];
        let product = &site.products()[16];
        assert_eq!(first["title"], Value::from(product.title.clone()));
        assert_eq!(first["price"], Value::from(product.price));
        assert_eq!(first["image"], Value::from("http://h:1/img/17.jpg"));
        assert_eq!(first["url"], Value::from("http://h:1/item/17"));
        let fields: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(fields, ["title", "price", "image", "url"]);
    }
}
