//! Writing a project's items out: JSON Lines (one object of its fields a line) or CSV (a
//! header of field names, then one row an item).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use spindle_common::Store;
use spindle_common::message::Item;

/// Items read from the store per round trip.
const PAGE: usize = 1000;

/// Output format of items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

impl Format {
    /// The format a file name asks for: `.csv` is CSV, anything else JSON Lines.
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
            _ => Format::Jsonl,
        }
    }
}

/// Writes every item of `project` to `out`; returns how many. `fields` is the CSV header
/// (the project's item fields); fields missing from an item are written empty.
pub async fn export(
    store: &dyn Store,
    project: &str,
    format: Format,
    fields: &[String],
    out: impl Write,
) -> anyhow::Result<u64> {
    match format {
        Format::Jsonl => {
            let mut out = std::io::BufWriter::new(out);
            let count = for_each_item(store, project, |item| {
                serde_json::to_writer(&mut out, &item.data)?;
                out.write_all(b"\n")?;
                Ok(())
            })
            .await?;
            out.flush()?;
            Ok(count)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(fields)?;
            let count = for_each_item(store, project, |item| {
                w.write_record(fields.iter().map(|f| csv_cell(item.data.get(f))))?;
                Ok(())
            })
            .await?;
            w.flush()?;
            Ok(count)
        }
    }
}

/// Calls `f` on every item of `project`, in key order, a page of the store at a time.
async fn for_each_item(
    store: &dyn Store,
    project: &str,
    mut f: impl FnMut(&Item) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut after: Option<String> = None;
    let mut count = 0;
    loop {
        let page = store
            .results_page(project, after.as_deref(), PAGE)
            .await
            .context("cannot read results")?;
        let Some(last) = page.last() else {
            return Ok(count);
        };
        after = Some(last.taskid.clone());
        for item in &page {
            f(item)?;
            count += 1;
        }
    }
}

/// A CSV cell: strings as they are, null as empty, anything else as JSON.
fn csv_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_keep_strings_and_encode_the_rest() {
        assert_eq!(csv_cell(None), "");
        assert_eq!(csv_cell(Some(&Value::Null)), "");
        assert_eq!(csv_cell(Some(&serde_json::json!("a,b"))), "a,b");
        assert_eq!(csv_cell(Some(&serde_json::json!(1.5))), "1.5");
        assert_eq!(
            csv_cell(Some(&serde_json::json!(["x", "y"]))),
            r#"["x","y"]"#
        );
    }

    #[test]
    fn format_follows_the_file_extension() {
        assert_eq!(Format::of_path(Path::new("a/items.CSV")), Format::Csv);
        assert_eq!(Format::of_path(Path::new("items.jsonl")), Format::Jsonl);
    }
}
