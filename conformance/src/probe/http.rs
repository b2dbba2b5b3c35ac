//! A deliberately small HTTP/1.1 client for probing services that may misbehave: one request per
//! connection (`Connection: close`), hand-built request bytes (so a probe can send headers a
//! careful client library would refuse), bounded response size and a deadline on every step.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest response (head and body) a probe reads; a longer answer is cut and flagged.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Largest response head (status line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a client that sent `Expect: 100-continue` waits for the interim answer before
/// sending the body anyway (RFC 9110 §10.1.1 lets it proceed).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// A service address: `http://host:port` plus the path of the probed resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host:port` as written in the URL (sent as `Host`).
    pub authority: String,
    /// The path and query (`/` when the URL has none).
    pub path: String,
}

impl Target {
    /// Parses an `http://host[:port][/path]` URL. TLS is not supported: probes address
    /// loopback or private services.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs can be probed"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let ok = |b: u8| b.is_ascii_alphanumeric() || b".-:[]".contains(&b);
        if authority.is_empty() || !authority.bytes().all(ok) {
            return Err(format!("{url:?}: bad host"));
        }
        if !path.bytes().all(|b| b.is_ascii_graphic()) || path.contains('#') {
            return Err(format!("{url:?}: the path must be printable ASCII without a fragment"));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']')) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Target {
            authority,
            path: path.to_owned(),
        })
    }

    /// The URL again (`http://authority/path`), with the port written out.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }

    /// The same service, another path.
    pub fn with_path(&self, path: &str) -> Target {
        Target {
            authority: self.authority.clone(),
            path: path.to_owned(),
        }
    }
}

/// One request.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// Extra header lines (name, value), sent verbatim.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` is added when it is not empty).
    pub body: Vec<u8>,
    /// Send `Expect: 100-continue` and hold the body until the server asks for it, so that a
    /// server refusing on the headers alone answers before the upload.
    pub expect_continue: bool,
}

impl Request {
    /// A request without body.
    pub fn new(method: &str) -> Request {
        Request {
            method: method.to_owned(),
            ..Request::default()
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }
}

/// One response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header lines (name, value) in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first 300 characters of the body, for messages.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut out: String = text.chars().take(300).collect();
        if text.chars().count() > 300 {
            out.push('…');
        }
        out
    }
}

/// Why no response was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Nothing listens there (connect refused, unresolvable, unroutable).
    Unreachable(String),
    /// The server did not answer (or finish answering) within the time limit.
    Timeout(String),
    /// The answer is not HTTP/1.1, too long, or the connection broke mid-answer.
    Broken(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Unreachable(m) => write!(f, "unreachable: {m}"),
            HttpError::Timeout(m) => write!(f, "timed out: {m}"),
            HttpError::Broken(m) => write!(f, "broken answer: {m}"),
        }
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Sends `req` to `target` and reads the whole answer, all within `timeout`.
pub fn send(target: &Target, req: &Request, timeout: Duration) -> Result<Response, HttpError> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = target
        .authority
        .to_socket_addrs()
        .map_err(|e| HttpError::Unreachable(format!("{}: {e}", target.authority)))?
        .collect();
    let mut last = format!("{}: no address", target.authority);
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    let mut stream = stream.ok_or(HttpError::Unreachable(last))?;
    let _ = stream.set_nodelay(true);

    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        req.method, target.path, target.authority
    );
    for (n, v) in &req.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !req.body.is_empty() || req.method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    if req.expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");

    let mut reader = Reader {
        buf: Vec::new(),
        deadline,
    };
    write_all(&mut stream, head.as_bytes(), deadline)?;
    if req.expect_continue && !req.body.is_empty() {
        // Wait briefly for a final answer given on the headers alone (a refusal), or for 100.
        match reader.head(&mut stream, Some(Instant::now() + CONTINUE_WAIT)) {
            Ok(Some((status, headers, rest))) if status >= 200 => {
                return finish(&mut stream, &mut reader, status, headers, rest);
            }
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        // A write refused because the server closed after answering is not the answer: read it.
        let _ = write_all(&mut stream, &req.body, deadline);
    } else if !req.body.is_empty() {
        let _ = write_all(&mut stream, &req.body, deadline);
    }
    loop {
        match reader.head(&mut stream, None)? {
            Some((status, headers, rest)) if status >= 200 => {
                return finish(&mut stream, &mut reader, status, headers, rest);
            }
            Some(_) => continue,
            None => return Err(HttpError::Broken("no status line".into())),
        }
    }
}

fn write_all(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> Result<(), HttpError> {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout("sending the request".into()));
        }
        let _ = stream.set_write_timeout(Some(left));
        match stream.write(bytes) {
            Ok(0) => return Err(HttpError::Broken("connection closed while sending".into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => return Err(HttpError::Timeout("sending the request".into())),
            Err(e) => return Err(HttpError::Broken(format!("sending: {e}"))),
        }
    }
    Ok(())
}

type Head = (u16, Vec<(String, String)>, Vec<u8>);

struct Reader {
    buf: Vec<u8>,
    deadline: Instant,
}

impl Reader {
    /// Reads more bytes until `until` (or the request deadline); `Ok(false)` at end of stream.
    fn fill(&mut self, stream: &mut TcpStream, until: Instant) -> Result<bool, HttpError> {
        let left = until.min(self.deadline).saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout("waiting for the answer".into()));
        }
        let _ = stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    if self.buf.len() + n > MAX_RESPONSE_BYTES {
                        return Err(HttpError::Broken(format!("answer over {MAX_RESPONSE_BYTES} bytes")));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => return Err(HttpError::Timeout("waiting for the answer".into())),
                // A reset after a complete answer is common when a server refuses an upload.
                Err(_) if !self.buf.is_empty() => return Ok(false),
                Err(e) => return Err(HttpError::Broken(format!("reading: {e}"))),
            }
        }
    }

    /// One response head. With `wait`, a timeout before any byte arrived is `Ok(None)`.
    fn head(&mut self, stream: &mut TcpStream, wait: Option<Instant>) -> Result<Option<Head>, HttpError> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let rest = self.buf[end + 4..].to_vec();
                self.buf.clear();
                let mut lines = head.split("\r\n");
                let status_line = lines.next().unwrap_or("");
                let status = status_line
                    .strip_prefix("HTTP/1.")
                    .and_then(|s| s.get(2..5))
                    .and_then(|s| s.parse::<u16>().ok())
                    .filter(|s| (100..600).contains(s))
                    .ok_or_else(|| HttpError::Broken(format!("bad status line {status_line:?}")))?;
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                return Ok(Some((status, headers, rest)));
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(HttpError::Broken(format!("response head over {MAX_HEAD_BYTES} bytes")));
            }
            let until = wait.unwrap_or(self.deadline);
            match self.fill(stream, until) {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() && wait.is_some() => return Ok(None),
                Ok(false) => return Err(HttpError::Broken("connection closed before a complete answer".into())),
                Err(HttpError::Timeout(_))
                    if wait.is_some() && self.buf.is_empty() && Instant::now() < self.deadline =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn finish(
    stream: &mut TcpStream,
    reader: &mut Reader,
    status: u16,
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
) -> Result<Response, HttpError> {
    reader.buf = rest;
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let chunked = get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = get("content-length").and_then(|v| v.parse::<usize>().ok());
    let no_body = status == 204 || status == 304;
    if !no_body {
        if chunked {
            while dechunk(&reader.buf)?.is_none() {
                if !reader.fill(stream, reader.deadline)? {
                    return Err(HttpError::Broken("connection closed inside a chunked body".into()));
                }
            }
        } else if let Some(n) = length {
            if n > MAX_RESPONSE_BYTES {
                return Err(HttpError::Broken(format!("declared body of {n} bytes")));
            }
            while reader.buf.len() < n {
                if !reader.fill(stream, reader.deadline)? {
                    return Err(HttpError::Broken(
                        "connection closed before the declared body length".into(),
                    ));
                }
            }
            reader.buf.truncate(n);
        } else {
            while reader.fill(stream, reader.deadline)? {}
        }
    }
    let body = if no_body {
        Vec::new()
    } else if chunked {
        dechunk(&reader.buf)?.unwrap_or_default()
    } else {
        std::mem::take(&mut reader.buf)
    };
    Ok(Response { status, headers, body })
}

/// The body of a complete chunked transfer, or `None` while the last chunk is missing.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(data, b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Broken(format!("bad chunk size {size_text:?}")))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        // A hostile size must neither overflow nor claim more than an answer may hold.
        let Some(end) = size.checked_add(2).filter(|_| size <= MAX_RESPONSE_BYTES) else {
            return Err(HttpError::Broken(format!(
                "chunk size {size_text:?} is beyond the answer limit"
            )));
        };
        if data.len() < end {
            return Ok(None);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[end..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8080/paid/intent?x=1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/paid/intent?x=1");
        assert_eq!(
            Target::parse("http://localhost").map(|t| t.url()),
            Ok("http://localhost:80/".into())
        );
        assert!(Target::parse("https://x/").is_err());
        assert!(Target::parse("http://a b/").is_err());
    }

    #[test]
    fn chunks() {
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n"), Ok(Some(b"abc".to_vec())));
        assert_eq!(dechunk(b"3\r\nab"), Ok(None));
        assert!(dechunk(b"zz\r\n").is_err());
        // Sizes that would overflow or exceed the answer limit are a broken answer, not a panic.
        assert!(dechunk(b"ffffffffffffffff\r\nabc").is_err());
        assert!(dechunk(b"fffffff\r\nabc").is_err());
    }
}
