//! Multi-row statements whose text depends only on a size class.
//!
//! SQLite prepares a statement from its text, and sqlx keeps prepared statements by text. A
//! statement with one `VALUES` row per item has new text at every batch size, and preparing
//! a few hundred rows' worth cost more than running it (a quarter of the crawl's SQLite
//! time). So a chunk of rows is padded with NULL rows up to the next power of two: the
//! statement for each size class is prepared once per connection and then only bound, and
//! the statements skip the padding (`WHERE column1 IS NOT NULL`; `NULL` never equals a key).

use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite};

/// Most rows in one statement: 14 parameters a row stays under SQLite's 32,766 limit.
pub(super) const CHUNK: usize = 512;

/// Rows the statement for `n` rows is written for.
fn size_class(n: usize) -> usize {
    n.next_power_of_two().min(CHUNK)
}

/// Pushes `VALUES (…), (…)` for `chunk` (at most [`CHUNK`] rows), `bind` binding each row's
/// `width` values, then NULL rows up to the chunk's size class.
pub(super) fn push_values<T>(
    q: &mut QueryBuilder<Sqlite>,
    chunk: &[T],
    width: usize,
    mut bind: impl FnMut(&mut Separated<'_, Sqlite, &'static str>, &T),
) {
    debug_assert!(chunk.len() <= CHUNK);
    let padding = size_class(chunk.len()) - chunk.len();
    let rows = chunk
        .iter()
        .map(Some)
        .chain(std::iter::repeat_n(None, padding));
    q.push_values(rows, |mut b, row| match row {
        Some(row) => bind(&mut b, row),
        None => {
            for _ in 0..width {
                b.push_bind(None::<i64>);
            }
        }
    });
}

/// Pushes `(?, ?, …)` binding `ids`, padded with NULL to their size class: the right-hand
/// side of an `IN`.
pub(super) fn push_id_list(q: &mut QueryBuilder<Sqlite>, ids: &[i64]) {
    debug_assert!(ids.len() <= CHUNK);
    let padding = size_class(ids.len()) - ids.len();
    q.push("(");
    let mut list = q.separated(", ");
    for id in ids
        .iter()
        .copied()
        .map(Some)
        .chain(std::iter::repeat_n(None, padding))
    {
        list.push_bind(id);
    }
    list.push_unseparated(")");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fall_into_few_classes() {
        assert_eq!(size_class(1), 1);
        assert_eq!(size_class(3), 4);
        assert_eq!(size_class(300), 512);
        assert_eq!(size_class(CHUNK), CHUNK);
        let classes: std::collections::BTreeSet<usize> = (1..=CHUNK).map(size_class).collect();
        assert_eq!(
            classes.len(),
            10,
            "one prepared statement per class and kind"
        );
    }

    #[test]
    fn a_statement_has_the_same_text_for_every_size_in_its_class() {
        let text = |n: usize| {
            let ids: Vec<i64> = (0..n as i64).collect();
            let mut q = QueryBuilder::<Sqlite>::new("SELECT 1 WHERE 1 IN ");
            push_id_list(&mut q, &ids);
            let mut v = QueryBuilder::<Sqlite>::new("");
            push_values(&mut v, &ids, 2, |b, id| {
                b.push_bind(*id).push_bind(*id);
            });
            (q.sql().as_str().to_string(), v.sql().as_str().to_string())
        };
        assert_eq!(text(5), text(8));
        assert_ne!(text(8), text(9));
        assert_eq!(text(9).1.matches('(').count(), 16);
    }
}
