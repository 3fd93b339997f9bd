//! Sitemaps (sitemaps.org protocol): the page URLs of a `<urlset>` and the child sitemaps of
//! a `<sitemapindex>`, from plain or gzip-compressed XML, or a plain-text list of URLs.
//!
//! [`parse`] is a pure function; a sitemap task reads its body with it (see
//! [`crate::sitemap_task`]). Bounds it keeps: a gzip body is inflated to at most
//! [`MAX_UNCOMPRESSED`] bytes (the protocol's own limit, and a decompression-bomb guard), and
//! at most [`MAX_URLS`] entries are returned.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::MultiGzDecoder;
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

/// Largest uncompressed sitemap accepted: 50 MiB, the protocol's limit.
pub const MAX_UNCOMPRESSED: u64 = 50 * 1024 * 1024;

/// Most entries (URLs plus child sitemaps) returned from one sitemap: the protocol's limit.
pub const MAX_URLS: usize = 50_000;

/// What one sitemap lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sitemap {
    /// Page URLs (`<urlset><url><loc>`, or the lines of a text sitemap).
    pub urls: Vec<String>,
    /// Child sitemaps (`<sitemapindex><sitemap><loc>`).
    pub sitemaps: Vec<String>,
}

/// Why a sitemap could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SitemapError {
    /// The gzip stream is corrupt.
    #[error("corrupt gzip data: {0}")]
    Gzip(#[source] std::io::Error),
    /// Inflated, the sitemap is larger than [`MAX_UNCOMPRESSED`].
    #[error("sitemap larger than {MAX_UNCOMPRESSED} bytes once uncompressed")]
    TooBig,
    /// The XML is not well-formed.
    #[error("malformed sitemap XML at byte {position}: {message}")]
    Xml {
        /// Byte offset of the error in the (uncompressed) document.
        position: u64,
        /// What the parser said.
        message: String,
    },
}

/// Parses a sitemap body.
///
/// `content_type` is the response's media type, if known. A body is inflated first when it
/// starts with the gzip magic bytes (whatever the content type says: servers label `.xml.gz`
/// files in every possible way). A body that does not look like XML and is served as
/// `text/plain` is read as a text sitemap, one URL per line.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Sitemap, SitemapError> {
    let body = inflate(body)?;
    let text = String::from_utf8_lossy(&body);
    let text = text.trim_start_matches('\u{feff}');
    let is_plain = content_type.is_some_and(|t| t.trim().starts_with("text/plain"));
    if is_plain && !text.trim_start().starts_with('<') {
        return Ok(parse_text(text));
    }
    parse_xml(text)
}

/// The body, inflated if it is gzip; capped at [`MAX_UNCOMPRESSED`].
fn inflate(body: &[u8]) -> Result<Cow<'_, [u8]>, SitemapError> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        if body.len() as u64 > MAX_UNCOMPRESSED {
            return Err(SitemapError::TooBig);
        }
        return Ok(Cow::Borrowed(body));
    }
    let mut out = Vec::new();
    // One byte past the cap tells "exactly at the cap" from "over it".
    MultiGzDecoder::new(body)
        .take(MAX_UNCOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(SitemapError::Gzip)?;
    if out.len() as u64 > MAX_UNCOMPRESSED {
        return Err(SitemapError::TooBig);
    }
    Ok(Cow::Owned(out))
}

fn parse_text(text: &str) -> Sitemap {
    let urls = text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("http://") || line.starts_with("https://"))
        .take(MAX_URLS)
        .map(str::to_owned)
        .collect();
    Sitemap {
        urls,
        sitemaps: Vec::new(),
    }
}

/// Which list a `<loc>` belongs to, from its parent element.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    Url,
    Sitemap,
    Other,
}

fn parse_xml(text: &str) -> Result<Sitemap, SitemapError> {
    let mut reader = Reader::from_str(text);
    let mut sitemap = Sitemap::default();
    // Element depth, and the depth of the `<url>` / `<sitemap>` being read: only a `<loc>`
    // directly inside it counts (not, say, an extension's `<image:loc>` deeper down).
    let mut depth = 0usize;
    let mut parent = (Parent::Other, 0usize);
    // Text of the `<loc>` being read, `None` outside one.
    let mut loc: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|err| SitemapError::Xml {
            position: reader.error_position(),
            message: err.to_string(),
        })?;
        match event {
            Event::Start(start) => {
                depth += 1;
                match start.local_name().as_ref() {
                    "url" => parent = (Parent::Url, depth),
                    "sitemap" => parent = (Parent::Sitemap, depth),
                    "loc" if parent.0 != Parent::Other && depth == parent.1 + 1 => {
                        loc = Some(String::new());
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some(loc) = loc.as_mut() {
                    loc.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some(loc) = loc.as_mut() {
                    loc.push_str(&c.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(loc) = loc.as_mut() {
                    if let Ok(Some(ch)) = r.resolve_char_ref() {
                        loc.push(ch);
                    } else if let Some(s) = resolve_predefined_entity(&r.xml10_content()) {
                        loc.push_str(s);
                    }
                }
            }
            Event::End(_) => {
                if let Some(value) = loc.take() {
                    let value = value.trim();
                    if !value.is_empty() {
                        match parent.0 {
                            Parent::Url => sitemap.urls.push(value.to_owned()),
                            Parent::Sitemap => sitemap.sitemaps.push(value.to_owned()),
                            Parent::Other => {}
                        }
                    }
                    if sitemap.urls.len() + sitemap.sitemaps.len() >= MAX_URLS {
                        return Ok(sitemap);
                    }
                }
                if depth == parent.1 {
                    parent = (Parent::Other, 0);
                }
                depth = depth.saturating_sub(1);
            }
            // A document cut short (a sitemap being rewritten, a truncated download) is not
            // read as a shorter list.
            Event::Eof if depth > 0 => {
                return Err(SitemapError::Xml {
                    position: reader.buffer_position(),
                    message: format!("the document ends inside {depth} open element(s)"),
                });
            }
            Event::Eof => return Ok(sitemap),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    const URLSET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://example.com/</loc><lastmod>2024-01-01</lastmod></url>
  <url>
    <loc>
      https://example.com/a?x=1&amp;y=2
    </loc>
    <image:image><image:loc>https://example.com/img.png</image:loc></image:image>
  </url>
  <url><loc><![CDATA[https://example.com/cdata]]></loc></url>
</urlset>"#;

    const INDEX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://example.com/sitemap1.xml.gz</loc></sitemap>
  <sitemap><loc>https://example.com/sitemap2.xml</loc><lastmod>2024-01-01</lastmod></sitemap>
</sitemapindex>"#;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).expect("write to memory");
        encoder.finish().expect("finish gzip")
    }

    #[test]
    fn urlset_lists_page_urls() {
        let sitemap = parse(URLSET.as_bytes(), Some("application/xml")).expect("parses");
        assert_eq!(
            sitemap.urls,
            vec![
                "https://example.com/",
                "https://example.com/a?x=1&y=2",
                "https://example.com/cdata",
            ]
        );
        assert!(sitemap.sitemaps.is_empty());
    }

    #[test]
    fn sitemap_index_lists_child_sitemaps() {
        let sitemap = parse(INDEX.as_bytes(), None).expect("parses");
        assert!(sitemap.urls.is_empty());
        assert_eq!(
            sitemap.sitemaps,
            vec![
                "https://example.com/sitemap1.xml.gz",
                "https://example.com/sitemap2.xml"
            ]
        );
    }

    #[test]
    fn gzip_is_inflated_whatever_the_content_type() {
        let compressed = gzip(URLSET.as_bytes());
        for content_type in [Some("application/x-gzip"), Some("application/xml"), None] {
            let sitemap = parse(&compressed, content_type).expect("parses");
            assert_eq!(sitemap.urls.len(), 3, "{content_type:?}");
        }
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        let zeros = vec![b' '; (MAX_UNCOMPRESSED + 10) as usize];
        let compressed = gzip(&zeros);
        assert!(compressed.len() < 1024 * 1024);
        assert!(matches!(
            parse(&compressed, None),
            Err(SitemapError::TooBig)
        ));
        assert!(matches!(
            parse(&[0x1f, 0x8b, 1, 2, 3], None),
            Err(SitemapError::Gzip(_))
        ));
    }

    #[test]
    fn text_sitemaps_and_malformed_xml() {
        let text = "https://example.com/1\n\n  https://example.com/2  \nnot a url\n";
        let sitemap = parse(text.as_bytes(), Some("text/plain")).expect("parses");
        assert_eq!(
            sitemap.urls,
            vec!["https://example.com/1", "https://example.com/2"]
        );

        let err = parse(b"<urlset><url><loc>x</url></urlset>", None).expect_err("mismatched");
        assert!(matches!(err, SitemapError::Xml { .. }), "{err}");

        let cut = &URLSET.as_bytes()[..URLSET.find("  <url><loc><![CDATA").expect("in the text")];
        let err = parse(cut, None).expect_err("cut short");
        assert!(err.to_string().contains("ends inside"), "{err}");
        assert!(parse(b"", None).expect("empty").urls.is_empty());
    }
}
