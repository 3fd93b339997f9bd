//! Small proxies written for the tests, both requiring a user name and password:
//!
//! - [`HttpProxy`]: an HTTP forward proxy (absolute-form requests) and `CONNECT` tunnel,
//!   with `Proxy-Authorization: Basic`; a request without the right credentials gets 407.
//! - [`Socks5Proxy`]: a SOCKS5 proxy (RFC 1928) with username/password authentication
//!   (RFC 1929), `CONNECT` only.
//!
//! Each records what it was asked, so tests can tell a request really went through it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};

/// The credentials both proxies accept.
pub const USER: &str = "proxyuser";
/// The password both proxies accept.
pub const PASSWORD: &str = "s3cret";

/// An HTTP proxy on 127.0.0.1.
pub struct HttpProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Request lines seen (`GET http://…`, `CONNECT host:port`), authorised or not.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl HttpProxy {
    /// Starts the proxy.
    pub async fn start() -> HttpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_http(stream, log.clone()));
            }
        });
        HttpProxy { addr, seen }
    }

    /// The proxy URL with the right (or `password`) credentials.
    pub fn url_with(&self, password: &str) -> String {
        format!("http://{USER}:{password}@{}", self.addr)
    }

    /// The proxy URL with the right credentials.
    pub fn url(&self) -> String {
        self.url_with(PASSWORD)
    }

    /// Request lines seen so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("log lock").clone()
    }
}

/// Reads up to the end of an HTTP head; returns the head and any bytes read past it.
async fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
}

async fn serve_http(mut client: TcpStream, log: Arc<Mutex<Vec<String>>>) {
    let Some((head, rest)) = read_head(&mut client).await else {
        return;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    log.lock().expect("log lock").push(request_line.clone());
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let authorised = headers.iter().any(|h| {
        h.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("proxy-authorization") && value.trim() == expected
        })
    });
    if !authorised {
        let _ = client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    }
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if method == "CONNECT" {
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            return;
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let _ = copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    // Forward proxy: `GET http://host:port/path HTTP/1.1` becomes `GET /path HTTP/1.1` to
    // host:port, one request per connection.
    let Some(without_scheme) = target.strip_prefix("http://") else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        return;
    };
    let (authority, path) = match without_scheme.find('/') {
        Some(i) => (&without_scheme[..i], &without_scheme[i..]),
        None => (without_scheme, "/"),
    };
    let Ok(mut upstream) = TcpStream::connect(authority).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    let mut forwarded = format!("{method} {path} HTTP/1.1\r\n");
    for header in headers {
        let name = header.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("proxy-authorization")
            || name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("proxy-connection")
        {
            continue;
        }
        forwarded.push_str(header);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    if upstream.write_all(forwarded.as_bytes()).await.is_err()
        || upstream.write_all(&rest).await.is_err()
    {
        return;
    }
    let _ = copy_bidirectional(&mut client, &mut upstream).await;
}

/// A SOCKS5 proxy on 127.0.0.1.
pub struct Socks5Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Destinations of authorised `CONNECT`s (`host:port`).
    pub connects: Arc<Mutex<Vec<String>>>,
}

impl Socks5Proxy {
    /// Starts the proxy.
    pub async fn start() -> Socks5Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let connects = Arc::new(Mutex::new(Vec::new()));
        let log = connects.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve_socks5(stream, log).await;
                });
            }
        });
        Socks5Proxy { addr, connects }
    }

    /// The proxy URL (`socks5h` lets the proxy resolve names) with the given password.
    pub fn url_with(&self, scheme: &str, password: &str) -> String {
        format!("{scheme}://{USER}:{password}@{}", self.addr)
    }

    /// Destinations connected to so far.
    pub fn connects(&self) -> Vec<String> {
        self.connects.lock().expect("log lock").clone()
    }
}

async fn serve_socks5(mut client: TcpStream, log: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    // Greeting: VER NMETHODS METHODS…; only username/password (0x02) is offered back.
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&2) {
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, 2]).await?;
    // RFC 1929: VER ULEN UNAME PLEN PASSWD.
    let mut ver_len = [0u8; 2];
    client.read_exact(&mut ver_len).await?;
    let mut user = vec![0u8; usize::from(ver_len[1])];
    client.read_exact(&mut user).await?;
    let mut plen = [0u8; 1];
    client.read_exact(&mut plen).await?;
    let mut password = vec![0u8; usize::from(plen[0])];
    client.read_exact(&mut password).await?;
    if user != USER.as_bytes() || password != PASSWORD.as_bytes() {
        client.write_all(&[1, 1]).await?;
        return Ok(());
    }
    client.write_all(&[1, 0]).await?;
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let destination = format!("{host}:{}", u16::from_be_bytes(port));
    if request[1] != 1 {
        client.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    }
    log.lock().expect("log lock").push(destination.clone());
    let Ok(mut upstream) = TcpStream::connect(destination.as_str()).await else {
        client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
