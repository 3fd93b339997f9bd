//! Items written out as files: JSON Lines, one JSON array, or CSV.
//!
//! An [`ItemEncoder`] turns items into bytes one at a time, so `spindle export`, `spindle
//! crawl -o` and the web UI's downloads all stream a project's items a page of the store at a
//! time, in constant memory, and write the same bytes for the same items.

use serde_json::Value;

use crate::message::Item;

/// A file format for items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemFormat {
    /// One JSON object of an item's fields per line.
    Jsonl,
    /// One JSON array of objects.
    Json,
    /// A header of field names, then one row per item.
    Csv,
}

impl ItemFormat {
    /// The format named by a file extension (`jsonl`, `json`, `csv`), if any.
    pub fn from_extension(ext: &str) -> Option<ItemFormat> {
        match ext.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(ItemFormat::Jsonl),
            "json" => Some(ItemFormat::Json),
            "csv" => Some(ItemFormat::Csv),
            _ => None,
        }
    }

    /// The media type of a file of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ItemFormat::Jsonl => "application/x-ndjson",
            ItemFormat::Json => "application/json",
            ItemFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Encodes items one after the other: [`ItemEncoder::start`], [`ItemEncoder::item`] for
/// each, [`ItemEncoder::finish`].
#[derive(Debug)]
pub struct ItemEncoder {
    format: ItemFormat,
    /// The CSV columns: the project's item fields.
    fields: Vec<String>,
    items: u64,
}

impl ItemEncoder {
    /// An encoder of `format`; `fields` are the CSV header (fields an item lacks are empty,
    /// fields not listed are left out).
    pub fn new(format: ItemFormat, fields: Vec<String>) -> Self {
        Self {
            format,
            fields,
            items: 0,
        }
    }

    /// Items encoded so far.
    pub fn count(&self) -> u64 {
        self.items
    }

    /// What comes before the first item.
    pub fn start(&self, out: &mut Vec<u8>) {
        match self.format {
            ItemFormat::Jsonl => {}
            ItemFormat::Json => out.push(b'['),
            ItemFormat::Csv => self.csv_row(out, self.fields.iter().map(String::as_str)),
        }
    }

    /// Appends one item.
    pub fn item(&mut self, item: &Item, out: &mut Vec<u8>) {
        match self.format {
            ItemFormat::Jsonl => {
                write_json(out, &item.data);
                out.push(b'\n');
            }
            ItemFormat::Json => {
                if self.items > 0 {
                    out.push(b',');
                }
                out.push(b'\n');
                write_json(out, &item.data);
            }
            ItemFormat::Csv => {
                let cells: Vec<String> = self
                    .fields
                    .iter()
                    .map(|f| csv_cell(item.data.get(f)))
                    .collect();
                self.csv_row(out, cells.iter().map(String::as_str));
            }
        }
        self.items += 1;
    }

    /// What comes after the last item.
    pub fn finish(&self, out: &mut Vec<u8>) {
        if self.format == ItemFormat::Json {
            out.extend_from_slice(if self.items > 0 { b"\n]\n" } else { b"]\n" });
        }
    }

    fn csv_row<'a>(&self, out: &mut Vec<u8>, cells: impl Iterator<Item = &'a str>) {
        let mut writer = csv::Writer::from_writer(Vec::new());
        // Writing into memory cannot fail; a failure would only drop this row's bytes.
        if writer.write_record(cells).is_ok()
            && let Ok(bytes) = writer.into_inner()
        {
            out.extend_from_slice(&bytes);
        }
    }
}

fn write_json(out: &mut Vec<u8>, data: &serde_json::Map<String, Value>) {
    // A map of JSON values always serializes.
    let _ = serde_json::to_writer(&mut *out, data);
}

/// A CSV cell: strings as they are, null as empty, anything else as JSON.
pub fn csv_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(data: Value) -> Item {
        Item {
            taskid: "t".into(),
            url: "http://a.test/".into(),
            data: data.as_object().cloned().unwrap_or_default(),
        }
    }

    fn encode(format: ItemFormat, items: &[Item]) -> String {
        let mut encoder = ItemEncoder::new(format, vec!["name".into(), "price".into()]);
        let mut out = Vec::new();
        encoder.start(&mut out);
        for i in items {
            encoder.item(i, &mut out);
        }
        encoder.finish(&mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn each_format_writes_every_item() {
        let items = [
            item(json!({"name": "a,b", "price": 1.5})),
            item(json!({"name": "c", "extra": true})),
        ];
        assert_eq!(
            encode(ItemFormat::Jsonl, &items),
            "{\"name\":\"a,b\",\"price\":1.5}\n{\"name\":\"c\",\"extra\":true}\n"
        );
        let array: Value = serde_json::from_str(&encode(ItemFormat::Json, &items)).expect("json");
        assert_eq!(array[1]["extra"], true);
        assert_eq!(encode(ItemFormat::Json, &[]), "[]\n");
        assert_eq!(
            encode(ItemFormat::Csv, &items),
            "name,price\n\"a,b\",1.5\nc,\n"
        );
    }

    #[test]
    fn csv_cells_keep_strings_and_encode_the_rest() {
        assert_eq!(csv_cell(None), "");
        assert_eq!(csv_cell(Some(&Value::Null)), "");
        assert_eq!(csv_cell(Some(&json!("a,b"))), "a,b");
        assert_eq!(csv_cell(Some(&json!(["x", "y"]))), r#"["x","y"]"#);
    }
}
