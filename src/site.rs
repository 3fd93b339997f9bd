//! A deterministic generated website for end-to-end tests and benchmarks.
//!
//! [`Site`] is a small shop built from a [`SiteSpec`]: an index page linking to categories,
//! paginated category lists, one detail page per product and a few links to pages that do not
//! exist. It is what Spindle crawls in its end-to-end tests ("fetch every page once, extract
//! every item") and in `spindle bench` (pages per second).
//!
//! Invariants this module keeps:
//!
//! - **Deterministic.** The same spec always yields the same products, the same pages and the
//!   same links, byte for byte (except absolute links, which echo the request's `Host`).
//! - **Exact page count.** [`SiteSpec::pages`] is the number of distinct URLs a correct crawler
//!   fetches starting from `/` with the project of [`Site::project_toml`]: the index, every list
//!   page, every product and every distinct `/missing/{id}` link. It is computed from the spec
//!   alone; the unit tests prove it by crawling the served site.
//! - **Links that test a crawler.** List pages link to products in several spellings (relative,
//!   absolute, with a fragment, with `utm_*` tracking parameters) that all normalize to the one
//!   canonical `/item/{id}`; detail pages link to each other in cycles, so a crawler that does
//!   not deduplicate never ends.
//! - **Observable.** Every request is counted per path and query in [`Hits`], so a test can
//!   check that no URL was fetched twice and that tracking-parameter spellings were never
//!   fetched at all.
//!
//! One concept per file: `spec` is the shape of the site and its arithmetic, `catalog` the
//! product data, `render` the HTML, `hits` the request counter, `project` the crawl project
//! and expected items, `server` the HTTP side; `hosts` is a separate site of many hosts for
//! the politeness bench.

mod catalog;
mod hits;
pub mod hosts;
mod in_flight;
mod project;
mod render;
mod server;
mod spec;
#[cfg(test)]
mod tests;

pub use catalog::Product;
pub use hits::Hits;
pub use in_flight::InFlight;
pub use server::serve;
pub use spec::{PageSize, SiteSpec};

/// A generated website: the products of a [`SiteSpec`] and everything needed to serve them.
///
/// Build it once with [`Site::new`], share it in an `Arc`, serve it with [`Site::router`] or
/// [`serve`], and compare a crawl's output against [`Site::expected_items`].
#[derive(Debug, Clone)]
pub struct Site {
    /// The spec with its degenerate values (zero categories, zero per page) replaced.
    spec: SiteSpec,
    /// All products, `products[i].id == i + 1`.
    products: Vec<Product>,
    /// Product ids of each category in ascending order, indexed by category number.
    by_category: Vec<Vec<u32>>,
}

impl Site {
    /// Generates the site of `spec`.
    ///
    /// A spec with `categories == 0` or `per_page == 0` is treated as if it said 1, as
    /// [`SiteSpec::pages`] does.
    pub fn new(spec: SiteSpec) -> Site {
        let spec = spec.normalized();
        let products: Vec<Product> = (1..=spec.products)
            .map(|id| Product::generate(id, spec.categories))
            .collect();
        let mut by_category = vec![Vec::new(); spec.categories as usize];
        for product in &products {
            if let Some(ids) = by_category.get_mut(product.category as usize) {
                ids.push(product.id);
            }
        }
        Site {
            spec,
            products,
            by_category,
        }
    }

    /// The spec this site was built from (with zero categories or zero per page read as 1).
    pub fn spec(&self) -> &SiteSpec {
        &self.spec
    }

    /// All products in id order; the product with id `n` is at index `n - 1`.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The product with `id`, if the site has it.
    pub fn product(&self, id: u32) -> Option<&Product> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.products.get(index)
    }

    /// Product ids of `category` in ascending order; empty for an unknown category.
    fn category_ids(&self, category: u32) -> Option<&[u32]> {
        self.by_category
            .get(usize::try_from(category).ok()?)
            .map(Vec::as_slice)
    }
}
