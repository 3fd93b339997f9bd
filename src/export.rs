//! `spindle export`, and `spindle crawl`'s output: writing a project's items out as JSON
//! Lines (one object of its fields a line), one JSON array, or CSV (a header of field names,
//! then one row an item), through the encoder the web UI's downloads use too
//! ([`spindle_common::export`]).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use spindle_common::export::{ItemEncoder, ItemFormat};
use spindle_common::{Project, Store};

use crate::embedded::open_existing_store;

/// Items read from the store per round trip.
const PAGE: usize = 1000;

/// Output format of items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// One JSON array.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

impl Format {
    /// The format a file name asks for: `.csv` is CSV, `.json` a JSON array, anything else
    /// JSON Lines.
    pub fn of_path(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(ItemFormat::from_extension)
        {
            Some(ItemFormat::Csv) => Format::Csv,
            Some(ItemFormat::Json) => Format::Json,
            _ => Format::Jsonl,
        }
    }

    fn encoding(self) -> ItemFormat {
        match self {
            Format::Jsonl => ItemFormat::Jsonl,
            Format::Json => ItemFormat::Json,
            Format::Csv => ItemFormat::Csv,
        }
    }
}

/// Writes every item of `project` to `out`, a page of the store at a time; returns how many.
/// `fields` is the CSV header (the project's item fields); fields missing from an item are
/// written empty.
pub async fn export(
    store: &dyn Store,
    project: &str,
    format: Format,
    fields: &[String],
    out: impl Write,
) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(out);
    let mut encoder = ItemEncoder::new(format.encoding(), fields.to_vec());
    let mut bytes = Vec::new();
    encoder.start(&mut bytes);
    let mut after: Option<String> = None;
    loop {
        let page = store
            .results_page(project, after.as_deref(), PAGE)
            .await
            .context("cannot read results")?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.taskid.clone());
        for item in &page {
            encoder.item(item, &mut bytes);
        }
        out.write_all(&bytes)?;
        bytes.clear();
    }
    encoder.finish(&mut bytes);
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(encoder.count())
}

/// `spindle export PROJECT`: every item of the project, in the store named by `database` or
/// else the one of the data folder `data`, to stdout. The CSV header is the item fields of
/// the stored project file (none if it no longer parses).
pub async fn command(
    project: &str,
    format: Format,
    data: &Path,
    database: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let store = open_existing_store(data, database).await?;
    let record = store
        .project(project)
        .await?
        .with_context(|| format!("no project named {project}"))?;
    let fields = Project::parse(&record.definition)
        .map(|p| p.item_fields())
        .unwrap_or_default();
    export(&*store, project, format, &fields, std::io::stdout().lock()).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_file_extension() {
        assert_eq!(Format::of_path(Path::new("a/items.CSV")), Format::Csv);
        assert_eq!(Format::of_path(Path::new("items.json")), Format::Json);
        assert_eq!(Format::of_path(Path::new("items.jsonl")), Format::Jsonl);
        assert_eq!(Format::of_path(Path::new("items.txt")), Format::Jsonl);
    }
}
