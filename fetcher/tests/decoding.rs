//! Bodies as the fetcher hands them on: decompressed, capped after decompression, and
//! decoded to UTF-8 from whatever encoding the page is in.

mod common;

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use common::{TestServer, fetcher, task};
use encoding_rs::{GBK, SHIFT_JIS, WINDOWS_1251};
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use spindle_common::message::ErrorKind;

const MIB: usize = 1024 * 1024;
const CHINESE: &str = "<html><body><p>这是一个中文网页，用于测试字符编码。</p></body></html>";
const JAPANESE: &str = "<p>これは日本語のページです。文字コードのテストに使います。</p>";
const RUSSIAN: &str = "<p>Это страница на русском языке без указания кодировки. \
                       Кодировку должен определить детектор по частоте букв.</p>";

fn gzip(parts: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    for part in parts {
        encoder.write_all(&part).expect("compress in memory");
    }
    encoder.finish().expect("finish gzip stream")
}

/// `body` as HTTP's `deflate` (a zlib stream) or as brotli.
fn compressed(encoding: &str, body: &[u8]) -> Vec<u8> {
    match encoding {
        "deflate" => {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(body).expect("compress in memory");
            encoder.finish().expect("finish zlib stream")
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                writer.write_all(body).expect("compress in memory");
            }
            out
        }
        other => panic!("no test encoder for {other}"),
    }
}

/// 50 MiB of zeros, gzipped (about 50 KiB on the wire). Built once per test binary.
fn bomb() -> Bytes {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    BOMB.get_or_init(|| Bytes::from(gzip((0..50).map(|_| vec![0u8; MIB]))))
        .clone()
}

fn app() -> Router {
    Router::new()
        .route(
            "/gzip",
            get(|| async {
                let body = gzip([CHINESE.as_bytes().to_vec()]);
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    body,
                )
            }),
        )
        .route(
            "/encoded/{encoding}",
            get(
                |axum::extract::Path(encoding): axum::extract::Path<String>| async move {
                    let body = compressed(&encoding, CHINESE.as_bytes());
                    (
                        [
                            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                            (header::CONTENT_ENCODING, encoding),
                        ],
                        body,
                    )
                },
            ),
        )
        .route(
            "/bomb",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    bomb(),
                )
            }),
        )
        .route(
            "/gbk",
            get(|| async {
                let (body, _, _) = GBK.encode(CHINESE);
                (
                    [(header::CONTENT_TYPE, "text/html; charset=GBK")],
                    body.into_owned(),
                )
            }),
        )
        .route(
            "/sjis",
            get(|| async {
                let mut body = b"<html><head><meta charset=\"Shift_JIS\"></head><body>".to_vec();
                body.extend_from_slice(&SHIFT_JIS.encode(JAPANESE).0);
                ([(header::CONTENT_TYPE, "text/html")], body)
            }),
        )
        .route(
            "/bom",
            get(|| async {
                let mut body = vec![0xFF, 0xFE];
                for unit in CHINESE.encode_utf16() {
                    body.extend_from_slice(&unit.to_le_bytes());
                }
                ([(header::CONTENT_TYPE, "text/html")], body)
            }),
        )
        .route(
            "/detect",
            get(|| async {
                let (body, _, _) = WINDOWS_1251.encode(RUSSIAN);
                ([(header::CONTENT_TYPE, "text/html")], body.into_owned())
            }),
        )
        .route(
            "/image",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "image/png")],
                    vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3],
                )
            }),
        )
}

#[tokio::test]
async fn gzip_bodies_are_decompressed() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/gzip")))
        .await
        .expect("fetched");
    assert_eq!(page.text, CHINESE);
    assert_eq!(page.body_len, CHINESE.len() as u64);
    assert!(page.header("content-encoding").is_none());
}

#[tokio::test]
async fn brotli_and_deflate_bodies_are_decompressed() {
    let server = TestServer::start(app()).await;
    for encoding in ["br", "deflate"] {
        let page = fetcher()
            .fetch(&task(server.url(&format!("/encoded/{encoding}"))))
            .await
            .expect("fetched");
        assert_eq!(page.text, CHINESE, "{encoding}");
        assert!(page.header("content-encoding").is_none(), "{encoding}");
    }
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_cap() {
    let server = TestServer::start(app()).await;
    let mut t = task(server.url("/bomb"));
    t.fetch.max_body = Some(MIB as u64);
    // Inflating all 50 MiB would take far longer than stopping after the first one.
    t.fetch.timeout_ms = Some(20_000);
    let started = Instant::now();
    let err = fetcher().fetch(&t).await.expect_err("bomb defused");
    assert_eq!(err.kind, ErrorKind::TooBig, "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn charset_from_the_http_header() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/gbk")))
        .await
        .expect("fetched");
    assert_eq!(page.encoding, "GBK");
    assert_eq!(page.text, CHINESE);
}

#[tokio::test]
async fn charset_from_a_meta_tag() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/sjis")))
        .await
        .expect("fetched");
    assert_eq!(page.encoding, "Shift_JIS");
    assert!(page.text.ends_with(JAPANESE), "{}", page.text);
}

#[tokio::test]
async fn charset_from_a_byte_order_mark() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/bom")))
        .await
        .expect("fetched");
    assert_eq!(page.encoding, "UTF-16LE");
    assert_eq!(page.text, CHINESE);
}

#[tokio::test]
async fn charset_by_detection() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/detect")))
        .await
        .expect("fetched");
    assert_eq!(page.encoding, "windows-1251");
    assert_eq!(page.text, RUSSIAN);
}

#[tokio::test]
async fn binary_bodies_are_measured_not_decoded() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/image")))
        .await
        .expect("fetched");
    assert_eq!(page.content_type, "image/png");
    assert_eq!(page.text, "");
    assert_eq!(page.encoding, "");
    assert_eq!(page.body_len, 8);
}
