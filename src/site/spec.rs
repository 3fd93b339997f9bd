//! The shape of a generated site: how many of everything, and which page links where.
//!
//! The arithmetic here is the single source of truth for the site's link graph: the renderer
//! asks it which products are on a list page, which products a detail page relates to and
//! whether it links to a missing page, and [`SiteSpec::pages`] counts the same graph in closed
//! form without rendering anything. The unit tests crawl the served site to prove the two agree.

/// How large the bench site's detail pages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PageSize {
    /// About 2.5 KB, like a small product page.
    Small,
    /// About 10 KB.
    Large,
}

impl PageSize {
    /// Bytes of filler a detail page of this size carries.
    pub fn detail_padding(self) -> usize {
        match self {
            PageSize::Small => 1_500,
            PageSize::Large => 9_000,
        }
    }
}

/// The size and shape of a generated site.
///
/// Products have ids `1..=products`; product `id` belongs to category `id % categories`
/// (categories are numbered from 0). Build one with struct update syntax, e.g.
/// `SiteSpec { products: 100_000, detail_padding: 9_000, ..SiteSpec::small() }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SiteSpec {
    /// Number of categories, each with its own paginated list. 0 is read as 1.
    pub categories: u32,
    /// Number of products; ids run from 1 to this.
    pub products: u32,
    /// Products per list page. 0 is read as 1.
    pub per_page: u32,
    /// Links to other products in the `related` section of each detail page.
    pub related: u32,
    /// Every product whose id is a multiple of this also links to `/missing/{id}`, which is
    /// served as 404. 0 means never.
    pub missing_every: u32,
    /// Bytes of filler markup appended to each detail page, to reach realistic page sizes in
    /// benchmarks (about 9,000 gives ~10 KB pages). 0 in tests.
    pub detail_padding: usize,
}

impl SiteSpec {
    /// A site of 2,141 pages: 4 categories, 2,000 products, 20 per page (100 list pages),
    /// 3 related links per product and 40 links to missing pages; no padding.
    pub fn small() -> Self {
        SiteSpec {
            categories: 4,
            products: 2000,
            per_page: 20,
            related: 3,
            missing_every: 50,
            detail_padding: 0,
        }
    }

    /// A benchmark site of `products` products with detail pages of about 10 KB: 10
    /// categories, 50 products per list page, 4 related links per product and a link to a
    /// missing page from every 100th.
    pub fn bench(products: u32) -> Self {
        Self::bench_sized(products, PageSize::Large)
    }

    /// [`SiteSpec::bench`] with detail pages of `size`.
    pub fn bench_sized(products: u32, size: PageSize) -> Self {
        SiteSpec {
            categories: 10,
            products,
            per_page: 50,
            related: 4,
            missing_every: 100,
            detail_padding: size.detail_padding(),
        }
    }

    /// The number of distinct URLs reachable from `/` by the site's crawl project, 404 pages
    /// included: the index, every list page, every product and every distinct missing page.
    ///
    /// This is exactly how many fetches a correct crawler makes, and how many distinct
    /// path-and-query keys [`Hits`](super::Hits) holds after it.
    pub fn pages(&self) -> u64 {
        1 + self.list_pages() + u64::from(self.products) + self.missing_pages()
    }

    /// The number of list pages over all categories. Every category has at least page 1,
    /// even when it holds no product, because the index links to it.
    pub fn list_pages(&self) -> u64 {
        let spec = self.normalized();
        (0..spec.categories)
            .map(|category| u64::from(spec.pages_in_category(category)))
            .sum()
    }

    /// The number of distinct `/missing/{id}` pages (served as 404) the detail pages link to.
    pub fn missing_pages(&self) -> u64 {
        match self.missing_every {
            0 => 0,
            every => u64::from(self.products / every),
        }
    }

    /// This spec with the values that would make the site degenerate (no category to put
    /// products in, no product per page) raised to 1.
    pub(super) fn normalized(self) -> Self {
        SiteSpec {
            categories: self.categories.max(1),
            per_page: self.per_page.max(1),
            ..self
        }
    }

    /// The number of products in `category`: the ids in `1..=products` congruent to it.
    /// Expects a normalized spec.
    pub(super) fn category_len(&self, category: u32) -> u32 {
        if category >= self.categories {
            0
        } else if category == 0 {
            self.products / self.categories
        } else if category <= self.products {
            (self.products - category) / self.categories + 1
        } else {
            0
        }
    }

    /// The number of list pages of `category` (at least 1 for a category that exists).
    /// Expects a normalized spec.
    pub(super) fn pages_in_category(&self, category: u32) -> u32 {
        if category >= self.categories {
            return 0;
        }
        self.category_len(category).div_ceil(self.per_page).max(1)
    }

    /// Whether the detail page of `id` links to `/missing/{id}`.
    pub(super) fn links_missing(&self, id: u32) -> bool {
        self.missing_every != 0 && id.is_multiple_of(self.missing_every)
    }

    /// The related products of `id`, in page order, each with whether its link carries a
    /// fragment.
    ///
    /// The first related product is always the next id (wrapping from the last to the
    /// first), so following related links alone walks one cycle through every product; the
    /// others jump ahead by multiples of a prime stride, making shorter cycles and many
    /// repeated links. A tiny site may relate a product to itself, which is one more cycle.
    pub(super) fn related_of(&self, id: u32) -> impl Iterator<Item = RelatedLink> + use<> {
        const STRIDE: u64 = 97;
        let products = u64::from(self.products);
        let from = u64::from(id.saturating_sub(1));
        (1..=self.related).filter_map(move |nth| {
            if products == 0 {
                return None;
            }
            let offset = 1 + u64::from(nth - 1) * STRIDE;
            // `(from + offset) % products` is below `products`, itself a u32.
            let target = u32::try_from((from + offset) % products + 1).ok()?;
            Some(RelatedLink {
                id: target,
                fragment: (u64::from(id) + u64::from(nth)) % 3 == 0,
            })
        })
    }
}

/// One link of a detail page's related section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RelatedLink {
    /// The product linked to.
    pub(super) id: u32,
    /// Whether the link ends with a `#reviews` fragment.
    pub(super) fragment: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_lengths_add_up_to_products() {
        for (categories, products) in [(1, 0), (1, 7), (4, 10), (4, 2000), (7, 3), (3, 95)] {
            let spec = SiteSpec {
                categories,
                products,
                ..SiteSpec::small()
            };
            let by_formula: u32 = (0..categories).map(|c| spec.category_len(c)).sum();
            assert_eq!(by_formula, products, "{categories} categories");
            for category in 0..categories {
                let counted = (1..=products)
                    .filter(|id| id % categories == category)
                    .count();
                assert_eq!(spec.category_len(category) as usize, counted);
            }
        }
    }

    #[test]
    fn small_has_the_documented_size() {
        let spec = SiteSpec::small();
        assert_eq!(spec.list_pages(), 100);
        assert_eq!(spec.missing_pages(), 40);
        assert_eq!(spec.pages(), 2141);
    }

    #[test]
    fn degenerate_specs_count_as_one_category_and_one_per_page() {
        let spec = SiteSpec {
            categories: 0,
            products: 5,
            per_page: 0,
            related: 0,
            missing_every: 0,
            detail_padding: 0,
        };
        assert_eq!(spec.list_pages(), 5);
        assert_eq!(spec.pages(), 1 + 5 + 5);
    }

    #[test]
    fn related_links_stay_in_range_and_start_with_the_next_product() {
        let spec = SiteSpec {
            products: 10,
            related: 4,
            ..SiteSpec::small()
        };
        for id in 1..=10 {
            let related: Vec<RelatedLink> = spec.related_of(id).collect();
            assert_eq!(related.len(), 4);
            assert_eq!(related[0].id, id % 10 + 1);
            assert!(related.iter().all(|link| (1..=10).contains(&link.id)));
        }
        let empty = SiteSpec {
            products: 0,
            ..SiteSpec::small()
        };
        assert_eq!(empty.related_of(1).count(), 0);
    }
}
