//! What the process tests share: the binary, the deployment, keys, the clock, scratch folders and
//! the services they start. Each test binary uses a part of it.

#![allow(dead_code)]

use aep2::crypto::secp256k1::SecretKey;
use serde_json::Value as J;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

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
