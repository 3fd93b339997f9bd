//! Turning a response body into UTF-8 text.
//!
//! The encoding is chosen in this order, the first that gives an answer wins:
//!
//! 1. the `charset` parameter of the HTTP `Content-Type` (the server's word);
//! 2. a byte order mark;
//! 3. a `<meta charset>` or `<meta http-equiv="content-type">` in the first 1024 bytes
//!    (the HTML prescan, simplified from the WHATWG algorithm);
//! 4. detection with chardetng, using the URL's top-level domain as a hint.
//!
//! Malformed sequences become U+FFFD: a page with a few bad bytes is still a page. Only
//! textual content types are decoded; for the rest the text stays empty.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How many leading bytes the `<meta>` prescan looks at (the HTML standard's figure).
const PRESCAN_LIMIT: usize = 1024;

/// How many leading bytes detection reads. Enough for a confident guess, and it bounds the
/// CPU a large body costs.
const DETECT_LIMIT: usize = 256 * 1024;

/// A decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The encoding the body was decoded from.
    pub encoding: &'static Encoding,
    /// The body as UTF-8.
    pub text: String,
}

/// Splits a `Content-Type` value into its media type (lower-case, without parameters) and
/// its `charset` parameter, if any (quotes removed).
pub fn split_content_type(value: &str) -> (String, Option<String>) {
    let mut parts = value.split(';');
    let media_type = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let charset = parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let value = value.trim().trim_matches('"').trim();
        (!value.is_empty()).then(|| value.to_owned())
    });
    (media_type, charset)
}

/// Whether a body of this media type (as returned by [`split_content_type`]) is text to
/// decode: the default when a task has no `content_types`. That is no content type at all
/// (servers that omit it usually serve HTML), every `text/*`, and every type whose subtype has
/// `html`, `xhtml`, `xml`, `json`, `ndjson`, `javascript` or `ecmascript` as one of its words
/// (split at `+`, `-` and `.`): XHTML, XML (`application/xml`, RSS, Atom, SVG, any `+xml`),
/// JSON (`application/json`, any `+json`, `application/x-ndjson`) and JavaScript. Whole
/// words, so the Office Open XML zip files (`application/vnd.openxmlformats-…`) are not text.
/// docs/rules.md (`content_types`) lists the same.
pub fn is_textual(media_type: &str) -> bool {
    const WORDS: [&str; 7] = [
        "html",
        "xhtml",
        "xml",
        "json",
        "ndjson",
        "javascript",
        "ecmascript",
    ];
    if media_type.is_empty() || media_type.starts_with("text/") {
        return true;
    }
    let subtype = media_type.split_once('/').map_or(media_type, |(_, s)| s);
    subtype
        .split(['+', '-', '.'])
        .any(|word| WORDS.contains(&word))
}

/// Whether a body of this media type is decoded and handed to the rules, given a task's
/// allow list of media-type prefixes (`text/`, `application/json`, ...). An empty list means
/// the default, [`is_textual`]. Anything else is recorded (status, headers, size) with an
/// empty text: binary content is never parsed.
pub fn is_extractable(media_type: &str, allow: &[String]) -> bool {
    if allow.is_empty() {
        return is_textual(media_type);
    }
    media_type.is_empty()
        || allow.iter().any(|prefix| {
            let prefix = prefix.trim();
            !prefix.is_empty()
                && media_type
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        })
}

/// Decodes `body` to UTF-8.
///
/// `http_charset` is the `charset` parameter of the response's `Content-Type`; `host` is the
/// host of the URL the body came from, whose top-level domain hints detection.
pub fn decode(body: &[u8], http_charset: Option<&str>, host: Option<&str>) -> Decoded {
    if let Some(encoding) = http_charset.and_then(|label| Encoding::for_label(label.as_bytes())) {
        // The header wins over a BOM here, but a BOM of that same encoding is still not text.
        let (text, _) = encoding.decode_with_bom_removal(body);
        return Decoded {
            encoding,
            text: text.into_owned(),
        };
    }
    if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        let rest = body.get(bom_len..).unwrap_or_default();
        let (text, _) = encoding.decode_without_bom_handling(rest);
        return Decoded {
            encoding,
            text: text.into_owned(),
        };
    }
    let encoding = prescan_meta(body).unwrap_or_else(|| detect(body, host));
    let (text, _) = encoding.decode_without_bom_handling(body);
    Decoded {
        encoding,
        text: text.into_owned(),
    }
}

/// Guesses the encoding of an unlabelled body.
fn detect(body: &[u8], host: Option<&str>) -> &'static Encoding {
    let sample = body.get(..DETECT_LIMIT).unwrap_or(body);
    // Text is not scripted here (the processor parses it, never runs it), so the
    // ISO-2022-JP concern that makes browsers deny it does not apply.
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    let non_ascii = detector.feed(sample, sample.len() == body.len());
    if !non_ascii {
        // Pure ASCII decodes the same in every candidate; UTF-8 is the truthful name (a
        // browser would say windows-1252, which only matters for form submission).
        return UTF_8;
    }
    let tld = host.and_then(tld_of);
    detector.guess(tld.as_deref().map(str::as_bytes), Utf8Detection::Allow)
}

/// The last label of a host name, in the form chardetng accepts (lower-case ASCII, no
/// period); `None` for IP literals and anything odd, which detection treats as generic.
fn tld_of(host: &str) -> Option<String> {
    let label = host.trim_end_matches('.').rsplit('.').next()?;
    let valid = !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| label.to_ascii_lowercase())
}

/// The encoding a `<meta>` in the first [`PRESCAN_LIMIT`] bytes declares, if any.
fn prescan_meta(body: &[u8]) -> Option<&'static Encoding> {
    let head = body.get(..PRESCAN_LIMIT).unwrap_or(body);
    let mut pos = 0;
    while pos < head.len() {
        let rest = &head[pos..];
        if rest.starts_with(b"<!--") {
            // The comment's own "<!--" may not close it: "<!-->" does not end at that '>'.
            pos = find(head, pos + 2, b"-->").map(|end| end + 3)?;
        } else if starts_with_ignore_case(rest, b"<meta")
            && rest.get(5).is_some_and(|&b| is_space(b) || b == b'/')
        {
            let (encoding, end) = meta_encoding(head, pos + 5);
            if encoding.is_some() {
                return encoding;
            }
            pos = end;
        } else if rest.first() == Some(&b'<')
            && (rest.get(1).is_some_and(u8::is_ascii_alphabetic)
                || (rest.get(1) == Some(&b'/') && rest.get(2).is_some_and(u8::is_ascii_alphabetic)))
        {
            // Another tag: walk its attributes so a '>' inside a quoted value is skipped.
            pos = skip_tag(head, pos + 1);
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") || rest.starts_with(b"<?") {
            pos = find(head, pos + 2, b">").map(|end| end + 1)?;
        } else {
            pos += 1;
        }
    }
    None
}

/// Reads the attributes of a `<meta` whose name ends before `pos`; returns the encoding it
/// declares and the position after the tag.
fn meta_encoding(head: &[u8], mut pos: usize) -> (Option<&'static Encoding>, usize) {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut got_pragma = false;
    let mut need_pragma: Option<bool> = None;
    let mut charset: Option<&'static Encoding> = None;
    while let Some((name, value, next)) = attribute(head, pos) {
        pos = next;
        // Only the first occurrence of an attribute counts.
        if seen.contains(&name) {
            continue;
        }
        match name.as_slice() {
            b"http-equiv" => got_pragma |= value.eq_ignore_ascii_case(b"content-type"),
            b"content" if charset.is_none() => {
                if let Some(found) = charset_from_content(&value) {
                    charset = Encoding::for_label(&found);
                    need_pragma = Some(true);
                }
            }
            b"charset" => {
                charset = Encoding::for_label(&value);
                need_pragma = Some(false);
            }
            _ => {}
        }
        seen.push(name);
    }
    let end = find(head, pos, b">").map_or(head.len(), |end| end + 1);
    let declared = match need_pragma {
        None => None,
        Some(true) if !got_pragma => None,
        Some(_) => charset,
    };
    // A document that says UTF-16 in ASCII-compatible bytes is not UTF-16 (the standard's
    // rule); x-user-defined is windows-1252 for decoding purposes.
    let declared = declared.map(|enc| {
        if enc == encoding_rs::UTF_16BE || enc == encoding_rs::UTF_16LE {
            UTF_8
        } else if enc == encoding_rs::X_USER_DEFINED {
            WINDOWS_1252
        } else {
            enc
        }
    });
    (declared, end)
}

/// Skips a non-meta tag starting at its name; returns the position after it.
fn skip_tag(head: &[u8], mut pos: usize) -> usize {
    while head.get(pos).is_some_and(|&b| !is_space(b) && b != b'>') {
        pos += 1;
    }
    while let Some((_, _, next)) = attribute(head, pos) {
        pos = next;
    }
    find(head, pos, b">").map_or(head.len(), |end| end + 1)
}

/// The HTML prescan's "get an attribute": the next attribute at or after `pos` as a
/// lower-case name, its raw value, and the position after it; `None` at the tag's end.
fn attribute(head: &[u8], mut pos: usize) -> Option<(Vec<u8>, Vec<u8>, usize)> {
    while head.get(pos).is_some_and(|&b| is_space(b) || b == b'/') {
        pos += 1;
    }
    if *head.get(pos)? == b'>' {
        return None;
    }
    let mut name = Vec::new();
    loop {
        let b = *head.get(pos)?;
        if !name.is_empty() && (b == b'=' || is_space(b) || b == b'/' || b == b'>') {
            break;
        }
        name.push(b.to_ascii_lowercase());
        pos += 1;
    }
    while head.get(pos).is_some_and(|&b| is_space(b)) {
        pos += 1;
    }
    if head.get(pos) != Some(&b'=') {
        return Some((name, Vec::new(), pos));
    }
    pos += 1;
    while head.get(pos).is_some_and(|&b| is_space(b)) {
        pos += 1;
    }
    let mut value = Vec::new();
    match *head.get(pos)? {
        quote @ (b'"' | b'\'') => {
            pos += 1;
            loop {
                let b = *head.get(pos)?;
                pos += 1;
                if b == quote {
                    break;
                }
                value.push(b.to_ascii_lowercase());
            }
        }
        _ => {
            while let Some(&b) = head.get(pos) {
                if is_space(b) || b == b'>' {
                    break;
                }
                value.push(b.to_ascii_lowercase());
                pos += 1;
            }
        }
    }
    Some((name, value, pos))
}

/// The charset named in a `content="text/html; charset=..."` value, per the HTML standard.
fn charset_from_content(content: &[u8]) -> Option<Vec<u8>> {
    let mut pos = 0;
    loop {
        pos += find_ignore_case(content.get(pos..)?, b"charset")? + b"charset".len();
        while content.get(pos).is_some_and(|&b| is_space(b)) {
            pos += 1;
        }
        if content.get(pos) == Some(&b'=') {
            pos += 1;
            break;
        }
        // "charset" not followed by '=': look for the next occurrence.
    }
    while content.get(pos).is_some_and(|&b| is_space(b)) {
        pos += 1;
    }
    let rest = content.get(pos..)?;
    match *rest.first()? {
        quote @ (b'"' | b'\'') => {
            let inner = &rest[1..];
            let end = inner.iter().position(|&b| b == quote)?;
            Some(inner[..end].to_vec())
        }
        _ => {
            let end = rest
                .iter()
                .position(|&b| is_space(b) || b == b';')
                .unwrap_or(rest.len());
            (end > 0).then(|| rest[..end].to_vec())
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Position of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use encoding_rs::{GBK, SHIFT_JIS, UTF_16LE, WINDOWS_1251};

    use super::*;

    #[test]
    fn content_type_is_split_into_media_type_and_charset() {
        assert_eq!(
            split_content_type("Text/HTML; Charset=\"GBK\""),
            ("text/html".to_owned(), Some("GBK".to_owned()))
        );
        assert_eq!(
            split_content_type("application/json"),
            ("application/json".to_owned(), None)
        );
        assert_eq!(split_content_type(""), (String::new(), None));
    }

    /// The default list, as docs/rules.md states it (`content_types`).
    #[test]
    fn textual_types_are_recognised() {
        for t in [
            "",
            "text/html",
            "text/plain",
            "text/csv",
            "text/xml",
            "text/javascript",
            "application/xhtml+xml",
            "application/xml",
            "application/rss+xml",
            "application/atom+xml",
            "image/svg+xml",
            "application/json",
            "application/ld+json",
            "application/vnd.api+json",
            "application/problem+json",
            "application/x-ndjson",
            "application/javascript",
            "application/x-javascript",
        ] {
            assert!(is_textual(t), "{t}");
            assert!(is_extractable(t, &[]), "{t}");
        }
        for t in [
            "image/png",
            "image/jpeg",
            "application/octet-stream",
            "application/pdf",
            "application/zip",
            "application/gzip",
            "application/msword",
            // Zip files whose names mention XML are not text.
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/x-www-form-urlencoded",
            "audio/mpeg",
            "video/mp4",
            "font/woff2",
        ] {
            assert!(!is_textual(t), "{t}");
            assert!(!is_extractable(t, &[]), "{t}");
        }
    }

    #[test]
    fn allow_lists_are_case_insensitive_prefixes() {
        let allow = vec!["text/".to_owned(), "Application/JSON".to_owned()];
        assert!(is_extractable("text/csv", &allow));
        assert!(is_extractable("application/json", &allow));
        assert!(is_extractable("", &allow));
        assert!(!is_extractable("application/xml", &allow));
        assert!(!is_extractable("image/png", &allow));
        assert!(!is_extractable("te", &allow));
        // A list replaces the default rather than adding to it.
        assert!(!is_extractable(
            "text/html",
            &["application/json".to_owned()]
        ));
    }

    #[test]
    fn http_charset_comes_first() {
        let (bytes, _, _) = GBK.encode("<p>中文网页</p>");
        let decoded = decode(&bytes, Some("gbk"), None);
        assert_eq!(decoded.encoding, GBK);
        assert_eq!(decoded.text, "<p>中文网页</p>");
        // Even against a meta that says otherwise.
        let mut body = b"<meta charset=\"shift_jis\">".to_vec();
        body.extend_from_slice(&bytes);
        assert_eq!(decode(&body, Some("GBK"), None).encoding, GBK);
    }

    #[test]
    fn unknown_http_charset_falls_through() {
        let decoded = decode(b"<meta charset=windows-1251>", Some("no-such-thing"), None);
        assert_eq!(decoded.encoding, WINDOWS_1251);
    }

    #[test]
    fn bom_beats_meta_and_is_removed() {
        let mut body = vec![0xEF, 0xBB, 0xBF];
        body.extend_from_slice("<meta charset=shift_jis>é".as_bytes());
        let decoded = decode(&body, None, None);
        assert_eq!(decoded.encoding, UTF_8);
        assert_eq!(decoded.text, "<meta charset=shift_jis>é");

        let mut body = vec![0xFF, 0xFE];
        for unit in "hé".encode_utf16() {
            body.extend_from_slice(&unit.to_le_bytes());
        }
        let decoded = decode(&body, None, None);
        assert_eq!(decoded.encoding, UTF_16LE);
        assert_eq!(decoded.text, "hé");
    }

    #[test]
    fn meta_charset_and_pragma_are_found() {
        let (sjis, _, _) = SHIFT_JIS.encode("日本語のページ");
        for head in [
            "<!doctype html><html><head><meta charset=\"Shift_JIS\">",
            "<head><META http-equiv='Content-Type' content='text/html; charset=shift_jis'>",
            "<head><meta content=\"text/html;charset=sjis\" http-equiv=\"content-type\">",
        ] {
            let mut body = head.as_bytes().to_vec();
            body.extend_from_slice(&sjis);
            let decoded = decode(&body, None, None);
            assert_eq!(decoded.encoding, SHIFT_JIS, "{head}");
            assert!(decoded.text.ends_with("日本語のページ"), "{head}");
        }
    }

    #[test]
    fn meta_rules_of_the_prescan() {
        // content without http-equiv declares nothing.
        assert_eq!(
            prescan_meta(b"<meta content=\"text/html; charset=gbk\">"),
            None
        );
        // A meta inside a comment or an attribute value is not a meta.
        assert_eq!(prescan_meta(b"<!-- <meta charset=gbk> -->"), None);
        assert_eq!(
            prescan_meta(b"<div title='<meta charset=gbk>'></div>"),
            None
        );
        // UTF-16 declared in ASCII bytes means UTF-8.
        assert_eq!(prescan_meta(b"<meta charset=utf-16le>"), Some(UTF_8));
        // Beyond the first 1024 bytes it is not looked for.
        let mut late = vec![b' '; PRESCAN_LIMIT];
        late.extend_from_slice(b"<meta charset=gbk>");
        assert_eq!(prescan_meta(&late), None);
        // Truncated markup ends the scan without a panic.
        for cut in ["<meta charset=\"gb", "<meta ", "<!-- ", "<a href='x"] {
            assert_eq!(prescan_meta(cut.as_bytes()), None, "{cut}");
        }
    }

    #[test]
    fn charset_is_extracted_from_content() {
        assert_eq!(
            charset_from_content(b"text/html; charset = \"euc-jp\""),
            Some(b"euc-jp".to_vec())
        );
        assert_eq!(
            charset_from_content(b"text/html; charsetx; charset=koi8-r; x"),
            Some(b"koi8-r".to_vec())
        );
        assert_eq!(charset_from_content(b"text/html"), None);
        assert_eq!(charset_from_content(b"charset='unterminated"), None);
    }

    #[test]
    fn unlabelled_text_is_detected() {
        let text = "Привет, мир! Это страница на русском языке, без указания кодировки. \
                    Детектор должен распознать её по частоте букв.";
        let (bytes, _, _) = WINDOWS_1251.encode(text);
        let decoded = decode(&bytes, None, Some("example.ru"));
        assert_eq!(decoded.encoding, WINDOWS_1251);
        assert_eq!(decoded.text, text);

        let decoded = decode("naïve café".as_bytes(), None, None);
        assert_eq!(decoded.encoding, UTF_8);
        assert_eq!(decode(b"plain ascii", None, None).encoding, UTF_8);
    }

    #[test]
    fn malformed_bytes_are_replaced() {
        let decoded = decode(b"ok \xFF\xFE bad", Some("utf-8"), None);
        assert_eq!(decoded.text, "ok \u{FFFD}\u{FFFD} bad");
    }

    #[test]
    fn tld_is_usable_by_chardetng() {
        assert_eq!(tld_of("www.Example.JP").as_deref(), Some("jp"));
        assert_eq!(tld_of("example.cn.").as_deref(), Some("cn"));
        assert_eq!(tld_of("xn--p1ai").as_deref(), Some("xn--p1ai"));
        assert_eq!(tld_of("127.0.0.1"), None);
        assert_eq!(tld_of(""), None);
        assert_eq!(tld_of("bad_label"), None);
    }
}
