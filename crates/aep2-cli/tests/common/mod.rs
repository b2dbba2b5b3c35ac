//! What the process tests share: the binary, the deployment, keys, the clock, scratch folders,
//! the services they start and the raw HTTP client that talks to them. Each test binary uses a part of it.

#![allow(dead_code)]

use aep2::crypto::secp256k1::SecretKey;
use aep2::{Domain, Eip712Domain, EvmAddress};
use serde_json::Value as J;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The `aep2` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_aep2");
/// The debit-wallet deployment the tests sign for (chain 84532).
pub const CONTRACT: &str = "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912";
/// The token of every price and deposit.
pub const TOKEN: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

/// The secp256k1 key derived from `label`.
pub fn key(label: &str) -> SecretKey {
    SecretKey::from_bytes(&aep2::hash::sha256(label.as_bytes())).unwrap()
}

/// Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh, empty scratch folder named after the test binary's `prefix`, this process and `name`.
pub fn temp_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aep2-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sends `sig` (`-TERM`, `-STOP`, `-CONT`, …) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// A running `aep2` service, killed (SIGKILL) when dropped so that a failing test leaves none
/// behind.
pub struct Proc {
    /// The process.
    pub child: Child,
    // Held so that the service's stdout stays open.
    _stdout: BufReader<ChildStdout>,
    /// The address of its start line's `listening`.
    pub addr: String,
    /// Its start line, `{"listening", …}`.
    pub start: J,
}

impl Proc {
    /// Spawns the binary with `args`, stderr appended to `log`, and reads the start line.
    pub fn spawn(args: &[String], log: &Path) -> Proc {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn aep2");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let start: J = serde_json::from_str(&line).unwrap_or_else(|e| panic!("start line {line:?} of {args:?}: {e}"));
        Proc {
            addr: start["listening"].as_str().unwrap().to_owned(),
            start,
            child,
            _stdout: stdout,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and a clean exit.
    pub fn terminate(mut self) {
        signal(self.pid(), "-TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
    }

    /// SIGKILL.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `Host` of every request the tests send.
pub const HOST: &str = "api.aep2.test";

/// The deployment's eip712 domain (chain 84532, [`CONTRACT`]).
pub fn domain() -> Domain {
    Domain::Eip712(Eip712Domain {
        chain_id: 84532,
        verifying_contract: EvmAddress::parse(CONTRACT).unwrap(),
    })
}

/// [`TOKEN`] as an address.
pub fn token() -> EvmAddress {
    EvmAddress::parse(TOKEN).unwrap()
}

/// An HTTP response as read off the wire: status, lowercase header names, body.
#[derive(Clone, Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body (dechunked).
    pub body: String,
}

impl Resp {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` if it is not JSON).
    pub fn json(&self) -> J {
        serde_json::from_str(&self.body).unwrap_or(J::Null)
    }

    /// The reason code of an error body: the payee's MVP error body names it in `reason`, the
    /// SP's in `error`.
    pub fn reason(&self) -> Option<String> {
        let v = self.json();
        v["reason"].as_str().or_else(|| v["error"].as_str()).map(str::to_owned)
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&raw[..eol]).unwrap_or("0");
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
}

/// One request over a fresh connection, with the raw request line `METHOD path HTTP/1.1` and
/// `Host: HOST`; an `Err` is a transport failure (nothing, or no whole response, read).
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes)?;
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        return Err(std::io::Error::new(e.kind(), format!("{e} after {} bytes", out.len())));
    }
    let eof = || {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} bytes: no whole response", out.len()),
        )
    };
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(eof)?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(|c| c.parse().ok())
        .ok_or_else(eof)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw = &out[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        && body.len() < len
    {
        return Err(eof());
    }
    Ok(Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
