//! Property tests (fuzzing on stable Rust) of the charset decoder: arbitrary bytes under any
//! declared charset (a real label, a junk one, none), with or without a BOM or a `<meta>`
//! declaration, never panic, and a declared charset that matches the bytes decodes them.
//!
//! A fixed number of cases in the normal run; `PROPTEST_CASES=100000 cargo test -p
//! spindle-fetcher --test fuzz_charset` runs longer.

use encoding_rs::Encoding;
use proptest::prelude::*;
use spindle_fetcher::charset::{decode, split_content_type};

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Charset labels: real ones in odd spellings, junk, and hostile text.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "utf-8",
            "UTF8",
            " utf-8 ",
            "gbk",
            "GB18030",
            "shift_jis",
            "sjis",
            "euc-jp",
            "iso-2022-jp",
            "euc-kr",
            "big5",
            "windows-1252",
            "latin1",
            "koi8-r",
            "utf-16",
            "utf-16le",
            "UTF-16BE",
            "x-user-defined",
            "replacement",
            "iso-8859-8-i",
            "",
            "\"utf-8\"",
            "utf-8;",
            "unknown-charset",
            "\u{0}",
        ])
        .prop_map(str::to_string),
        ".{0,12}",
    ]
}

/// Bodies: random bytes, optionally after a BOM and/or a `<meta>` declaration of a charset.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let bom = prop::sample::select(vec![
        &b""[..],
        &b"\xEF\xBB\xBF"[..],
        &b"\xFF\xFE"[..],
        &b"\xFE\xFF"[..],
    ]);
    let meta = prop_oneof![
        Just(String::new()),
        label().prop_map(|l| format!("<meta charset=\"{l}\">")),
        label().prop_map(|l| format!(
            "<meta http-equiv=Content-Type content='text/html; charset={l}'>"
        )),
        Just("<meta charset=".to_string()),
        Just("<!-- <meta charset=gbk> -->".to_string()),
    ];
    (bom, meta, prop::collection::vec(any::<u8>(), 0..2048)).prop_map(|(bom, meta, rest)| {
        let mut out = bom.to_vec();
        out.extend_from_slice(meta.as_bytes());
        out.extend_from_slice(&rest);
        out
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        body in body(),
        declared in prop::option::of(label()),
        host in prop::option::of(prop::sample::select(vec!["shop.jp", "shop.cn", "x.ru", "", "."])),
    ) {
        let decoded = decode(&body, declared.as_deref(), host);
        // Whatever was declared, a body's bytes decode to at most a replacement per byte
        // plus what a BOM-less UTF-16 pair can make of them.
        prop_assert!(decoded.text.chars().count() <= body.len() + 1);
    }

    #[test]
    fn a_declared_charset_that_matches_decodes_the_text(
        text in "\\PC{0,200}",
        label in prop::sample::select(vec!["utf-8", "gbk", "shift_jis", "euc-kr", "big5", "windows-1252"]),
    ) {
        let encoding = Encoding::for_label(label.as_bytes()).expect("a known label");
        let (bytes, _, lossy) = encoding.encode(&text);
        let decoded = decode(&bytes, Some(label), None);
        prop_assert_eq!(decoded.encoding, encoding);
        // Text the charset can hold comes back as the same bytes (not always the same
        // characters: Shift_JIS stores both `¥` and a backslash as 0x5C, read as a backslash).
        if !lossy {
            let (again, _, _) = encoding.encode(&decoded.text);
            prop_assert_eq!(&again[..], &bytes[..]);
        }
        if label == "utf-8" {
            prop_assert_eq!(decoded.text, text);
        }
    }

    #[test]
    fn splitting_any_content_type_never_panics(value in ".{0,80}") {
        let (media, charset) = split_content_type(&value);
        prop_assert!(media.len() <= value.len());
        if let Some(charset) = charset {
            prop_assert!(charset.len() <= value.len());
        }
    }
}

/// Regressions found by the properties above.
mod regressions {
    use super::*;

    /// Found by `a_declared_charset_that_matches_decodes_the_text`: `¥` encodes to 0x5C in
    /// Shift_JIS, which decodes as a backslash (the WHATWG Encoding Standard's mapping), so the
    /// property compares bytes, not characters.
    #[test]
    fn shift_jis_reads_0x5c_as_a_backslash() {
        let decoded = decode(b"\\", Some("shift_jis"), None);
        assert_eq!(decoded.text, "\\");
    }
}
