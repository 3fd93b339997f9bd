//! The product data of a generated site, derived from each product's id alone.
//!
//! No randomness: a product's title, price and image are pure functions of its id, so two
//! sites built from the same spec agree, and a test can predict every item a crawl should
//! produce.

/// Adjectives of product names; one has a non-ASCII letter.
const ADJECTIVES: [&str; 12] = [
    "Blue", "Red", "Green", "Golden", "Silver", "Rustic", "Compact", "Deluxe", "Vintage", "Smart",
    "Crème", "Tiny",
];

/// Nouns of product names; one needs HTML escaping and one has a non-ASCII letter.
const NOUNS: [&str; 12] = [
    "Widget",
    "Gadget",
    "Teapot",
    "Lamp",
    "Notebook",
    "Backpack",
    "Nuts & Bolts Kit",
    "Kettle",
    "Café Table",
    "Umbrella",
    "Clock",
    "Bicycle Bell",
];

/// One product of a generated site, as its detail page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// The product's id, from 1; its canonical page is `/item/{id}`.
    pub id: u32,
    /// The title shown in the detail page's `<h1>`, e.g. `Product 17 — Blue Widget`. Always
    /// contains a non-ASCII character; some titles contain `&`.
    pub title: String,
    /// The price in pounds, shown as `£12.34`. It always has a non-zero fractional part, so
    /// it reads back as the same floating-point number whichever way a crawler parses it.
    pub price: f64,
    /// The cover image as an absolute path, e.g. `/img/17.jpg`.
    pub image: String,
    /// The product's category: `id % categories`.
    pub category: u32,
}

impl Product {
    /// The product with `id` on a site of `categories` categories (0 is read as 1).
    pub(super) fn generate(id: u32, categories: u32) -> Product {
        let adjective = pick(&ADJECTIVES, mix(id, 0x51ed_270b));
        let noun = pick(&NOUNS, mix(id, 0x2545_f491));
        // Prices from £1.00 to £999.99, never a whole number of pounds.
        let mut cents = 100 + mix(id, 0x9e37_79b9) % 99_900;
        if cents.is_multiple_of(100) {
            cents += 1;
        }
        Product {
            id,
            title: format!("Product {id} — {adjective} {noun}"),
            // Both operands are exact, and IEEE division rounds correctly, so this is the
            // same f64 as parsing the two-decimal text of the page.
            price: f64::from(cents) / 100.0,
            image: format!("/img/{id}.jpg"),
            category: id % categories.max(1),
        }
    }

    /// The price as the page shows it, e.g. `£12.34`.
    pub fn price_text(&self) -> String {
        format!("£{:.2}", self.price)
    }
}

/// A well-spread hash of `id` (the finalizer of MurmurHash3), salted so different
/// attributes of one product vary independently.
fn mix(id: u32, salt: u32) -> u32 {
    let mut x = id ^ salt;
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^= x >> 16;
    x
}

/// The entry of `words` chosen by `hash`.
fn pick(words: &[&'static str; 12], hash: u32) -> &'static str {
    words[hash as usize % words.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_deterministic_and_well_formed() {
        for id in 1..=500 {
            let product = Product::generate(id, 4);
            assert_eq!(product, Product::generate(id, 4));
            assert_eq!(product.category, id % 4);
            assert_eq!(product.image, format!("/img/{id}.jpg"));
            assert!(product.title.starts_with(&format!("Product {id} — ")));
            assert!((1.0..1000.0).contains(&product.price));
            assert_ne!(product.price.fract(), 0.0);
            let text = product.price_text();
            let parsed: f64 = text.trim_start_matches('£').parse().expect("price parses");
            assert_eq!(parsed, product.price, "{text}");
        }
    }

    #[test]
    fn names_vary() {
        let titles: std::collections::HashSet<String> = (1..=100)
            .map(|id| {
                Product::generate(id, 1)
                    .title
                    .replace(&format!("Product {id} "), "")
            })
            .collect();
        assert!(titles.len() > 20, "only {} distinct names", titles.len());
    }
}
