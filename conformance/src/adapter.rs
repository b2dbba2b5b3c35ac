//! Running an adapter process (spec `conformance.md#transport`): spawning it, the `start`
//! handshake, one `run` at a time with a timeout, bounded reads of its stdout and stderr, and
//! `stop`.

use crate::protocol::{
    CaseInput, Line, MAX_LINE_BYTES, Message, PROTOCOL_VERSION, Request, RunResponse, Schemas, StartResponse, read_line,
};
use crate::{Error, exit};
use serde_json::Value as J;
use std::io::{BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Most stderr bytes kept per case (the rest is counted, not kept).
pub const MAX_STDERR_BYTES: usize = 8192;

/// How long `stop` waits for the adapter to exit before killing it.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Splits an adapter command line into argv: whitespace separates words; `'…'` quotes
/// literally; `"…"` quotes with `\"` and `\\` escapes; a backslash outside quotes escapes the
/// next character. No variables, globs or pipes: the command is run directly, not by a shell.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' in the adapter command".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" in the adapter command".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" in the adapter command".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or("trailing \\ in the adapter command")?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("empty adapter command".into());
    }
    Ok(words)
}

/// Resolves the built-in aliases to this very binary in an adapter role: `reference`
/// (`aep2-conformance reference-adapter`) and `evm` (`aep2-conformance evm-adapter`, the
/// settlement contract on the embedded EVM), so they work wherever the runner does; any other
/// command is split with [`split_command`].
pub fn resolve_command(line: &str) -> Result<Vec<String>, Error> {
    let role = match line.trim() {
        "reference" => Some("reference-adapter"),
        "evm" => Some("evm-adapter"),
        _ => None,
    };
    if let Some(role) = role {
        let exe =
            std::env::current_exe().map_err(|e| Error::new(exit::USAGE, format!("--adapter {}: {e}", line.trim())))?;
        return Ok(vec![exe.display().to_string(), role.into()]);
    }
    split_command(line).map_err(|e| Error::new(exit::USAGE, e))
}

/// Stderr captured from the adapter since the last [`Adapter::take_stderr`].
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: usize,
    closed: bool,
}

/// What became of one `run`.
#[derive(Debug)]
pub enum Exchange {
    /// A well-formed answer with the right `seq`.
    Answer(Box<RunResponse>),
    /// The adapter closed its output or could not be written to.
    Crashed(String),
    /// No answer in time; the adapter has been killed.
    TimedOut,
    /// An answer that breaks the protocol.
    Protocol(String),
}

/// A running adapter after a successful handshake.
pub struct Adapter {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<Captured>>,
    /// Its answer to `start`.
    pub hello: StartResponse,
}

fn pump_stdout(out: impl Read, tx: SyncSender<Line>) {
    let mut r = BufReader::new(out);
    loop {
        let line = read_line(&mut r).unwrap_or(Line::Eof);
        let last = !matches!(line, Line::Text(_) | Line::NotUtf8);
        if tx.send(line).is_err() || last {
            return;
        }
    }
}

fn pump_stderr(mut err: impl Read, sink: Arc<Mutex<Captured>>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = err.read(&mut buf).unwrap_or(0);
        if n == 0 {
            if let Ok(mut c) = sink.lock() {
                c.closed = true;
            }
            return;
        }
        if let Ok(mut c) = sink.lock() {
            let room = MAX_STDERR_BYTES.saturating_sub(c.bytes.len()).min(n);
            c.bytes.extend_from_slice(&buf[..room]);
            c.dropped += n - room;
        }
    }
}

impl Adapter {
    /// Spawns `argv` and performs the `start` handshake within `timeout`. A program that cannot
    /// be spawned is a configuration error (exit 2); a failed handshake is an adapter error
    /// (exit 3). With `schemas`, the `start` answer is validated against its schema.
    pub fn start(argv: &[String], timeout: Duration, schemas: Option<&Schemas>) -> Result<Adapter, Error> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::new(exit::USAGE, "empty adapter command"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::new(exit::USAGE, format!("cannot start adapter {program}: {e}")))?;
        let (tx, lines) = sync_channel(4);
        let stdout = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        let stderr = Arc::new(Mutex::new(Captured::default()));
        if let Some(out) = stdout {
            thread::spawn(move || pump_stdout(out, tx));
        }
        if let Some(err) = stderr_pipe {
            let sink = Arc::clone(&stderr);
            thread::spawn(move || pump_stderr(err, sink));
        }
        let stdin = child.stdin.take();
        let mut adapter = Adapter {
            child,
            stdin,
            lines,
            stderr,
            hello: StartResponse {
                version: 0,
                implementation: crate::protocol::Implementation {
                    name: String::new(),
                    language: String::new(),
                    version: String::new(),
                    homepage: None,
                    source: None,
                    issues: None,
                },
                capabilities: crate::protocol::Capabilities {
                    kinds: Vec::new(),
                    profiles: Vec::new(),
                    reason_codes: false,
                },
                error_map: Default::default(),
            },
        };
        let handshake = |m: String| Error::new(exit::ADAPTER, format!("adapter handshake: {m}"));
        let line = match adapter.exchange(
            &Request::Start {
                version: PROTOCOL_VERSION,
            },
            timeout,
        ) {
            Ok(l) => l,
            Err(e) => {
                let stderr = adapter.take_stderr().unwrap_or_default();
                return Err(handshake(format!("{} {stderr}", e.describe()).trim_end().to_owned()));
            }
        };
        let value: J = serde_json::from_str(&line).map_err(|e| handshake(format!("not JSON: {e}")))?;
        if let Some(s) = schemas {
            s.validate(Message::StartResponse, &value).map_err(handshake)?;
        }
        let hello: StartResponse = serde_json::from_value(value).map_err(|e| handshake(e.to_string()))?;
        if hello.version != PROTOCOL_VERSION {
            return Err(handshake(format!(
                "protocol version {}, the runner speaks {PROTOCOL_VERSION}",
                hello.version
            )));
        }
        adapter.hello = hello;
        Ok(adapter)
    }

    /// Sends one request and waits for one line.
    fn exchange(&mut self, request: &Request, timeout: Duration) -> Result<String, Failure> {
        let mut text = serde_json::to_string(request).map_err(|e| Failure::Protocol(e.to_string()))?;
        text.push('\n');
        let stdin = self.stdin.as_mut().ok_or(Failure::Crashed("stdin closed".into()))?;
        if let Err(e) = stdin.write_all(text.as_bytes()).and_then(|()| stdin.flush()) {
            return Err(Failure::Crashed(format!("writing to the adapter: {e}")));
        }
        let deadline = Instant::now() + timeout;
        match self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Line::Text(l)) => Ok(l),
            Ok(Line::NotUtf8) => Err(Failure::Protocol("answer is not UTF-8".into())),
            Ok(Line::TooLong) => Err(Failure::Protocol(format!("answer longer than {MAX_LINE_BYTES} bytes"))),
            Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => {
                let note = self.exit_note();
                self.await_stderr();
                Err(Failure::Crashed(note))
            }
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Err(Failure::TimedOut)
            }
        }
    }

    /// Gives the stderr reader a moment to drain what a dying adapter wrote last, so the crash
    /// record carries it.
    fn await_stderr(&self) {
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            if self.stderr.lock().map_or(true, |c| c.closed) {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Describes how the adapter ended, waiting briefly for it to do so.
    fn exit_note(&mut self) -> String {
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return format!("adapter exited ({status}) without answering"),
                Ok(None) if Instant::now() < until => thread::sleep(Duration::from_millis(10)),
                _ => return "adapter closed its output without answering".into(),
            }
        }
    }

    /// Sends one case and waits for its answer. The answer must echo `seq`; with `schemas`, it
    /// must also validate against the run-response schema.
    pub fn run(&mut self, seq: u64, case: &CaseInput, timeout: Duration, schemas: Option<&Schemas>) -> Exchange {
        let request = Request::Run {
            seq,
            case: case.clone(),
        };
        let line = match self.exchange(&request, timeout) {
            Ok(l) => l,
            Err(Failure::Crashed(m)) => return Exchange::Crashed(m),
            Err(Failure::TimedOut) => return Exchange::TimedOut,
            Err(Failure::Protocol(m)) => return Exchange::Protocol(m),
        };
        let value: J = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => return Exchange::Protocol(format!("answer is not JSON: {e}")),
        };
        if let Some(s) = schemas
            && let Err(e) = s.validate(Message::RunResponse, &value)
        {
            return Exchange::Protocol(format!("answer violates run-response.schema.json: {e}"));
        }
        let answer: RunResponse = match serde_json::from_value(value) {
            Ok(a) => a,
            Err(e) => return Exchange::Protocol(format!("answer: {e}")),
        };
        if answer.seq.as_u64() != Some(seq) {
            return Exchange::Protocol(format!("answer has seq {}, expected {seq}", answer.seq));
        }
        let parts = [
            answer.result.is_some(),
            answer.skipped.is_some(),
            answer.errored.is_some(),
        ];
        if parts.iter().filter(|&&p| p).count() != 1 {
            return Exchange::Protocol("answer needs exactly one of result, skipped, errored".into());
        }
        if let Some(r) = &answer.result
            && r.verdict != "valid"
            && r.verdict != "invalid"
        {
            return Exchange::Protocol(format!("verdict {:?} is neither valid nor invalid", r.verdict));
        }
        Exchange::Answer(Box::new(answer))
    }

    /// What the adapter wrote to stderr since the last call, lossily decoded and bounded.
    pub fn take_stderr(&self) -> Option<String> {
        let mut c = self.stderr.lock().ok()?;
        if c.bytes.is_empty() && c.dropped == 0 {
            return None;
        }
        let mut s = String::from_utf8_lossy(&c.bytes).into_owned();
        if c.dropped > 0 {
            s.push_str(&format!("\n… {} more bytes not kept", c.dropped));
        }
        let closed = c.closed;
        *c = Captured {
            closed,
            ..Captured::default()
        };
        Some(s)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `stop`, closes stdin and waits briefly for the adapter to exit, then kills it.
    pub fn stop(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = serde_json::to_string(&Request::Stop).map(|t| {
                stdin
                    .write_all(format!("{t}\n").as_bytes())
                    .and_then(|()| stdin.flush())
            });
        }
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        self.kill();
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

enum Failure {
    Crashed(String),
    TimedOut,
    Protocol(String),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Crashed(m) | Failure::Protocol(m) => m.clone(),
            Failure::TimedOut => "no answer in time".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_command;

    #[test]
    fn commands_split_like_a_shell_without_expansion() {
        let w = split_command(r#"cargo run -q -p "a b" 'c "d"' e\ f"#).unwrap_or_default();
        assert_eq!(w, ["cargo", "run", "-q", "-p", "a b", "c \"d\"", "e f"]);
        assert!(split_command("  ").is_err());
        assert!(split_command("x 'open").is_err());
    }
}
