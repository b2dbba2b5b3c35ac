//! The AEP2 conformance runner (spec `conformance.md`): it starts an implementation under test
//! through an adapter program speaking JSON Lines over stdin/stdout, sends it the vector cases
//! one at a time (inputs only), judges each answer against the vectors, and writes a JSON Lines
//! report that renders as a terminal summary, JSON, Markdown or JUnit XML.
//!
//! The library is what the `aep2-conformance` binary runs, so tests can run a suite against
//! any adapter command and assert exactly which cases it fails:
//!
//! ```no_run
//! use aep2_conformance::{RunOptions, run, suite::Suite};
//! let suite = Suite::load(&aep2_conformance::suite::default_dir())?;
//! let options = RunOptions::new(vec!["./my-adapter".into()]);
//! let report = run(&suite, &options)?;
//! let failed: Vec<_> = report.cases.iter().filter(|c| c.status.is_failure()).map(|c| &c.id).collect();
//! # Ok::<(), aep2_conformance::Error>(())
//! ```

pub mod adapter;
#[path = "../adapters/evm/adapter.rs"]
pub mod evm;
pub mod expected;
pub mod judge;
pub mod probe;
pub mod protocol;
#[path = "../adapters/rust/adapter.rs"]
pub mod reference;
pub mod report;
mod run;
pub mod select;
pub mod suite;

pub use run::{Mode, RunOptions, run};

use std::fmt;

/// Process exit codes (spec `conformance.md#exit-codes`).
pub mod exit {
    /// Every required case passed.
    pub const OK: i32 = 0;
    /// At least one case failed or errored (and is not an expected failure).
    pub const FAILURES: i32 = 1;
    /// Bad flags, unreadable files, an adapter that cannot be started, an expected-failures list
    /// naming unknown ids.
    pub const USAGE: i32 = 2;
    /// The adapter crashed, hung, broke the protocol or failed its handshake.
    pub const ADAPTER: i32 = 3;
    /// A vector file is invalid (schema, model, counts, duplicate ids).
    pub const VECTORS: i32 = 4;
}

/// A run that could not produce a report, with the exit code it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// One of the [`exit`] codes.
    pub exit_code: i32,
    /// What went wrong.
    pub message: String,
}

impl Error {
    /// An error with its exit code.
    pub fn new(exit_code: i32, message: impl Into<String>) -> Error {
        Error {
            exit_code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
