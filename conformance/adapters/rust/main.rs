//! `aep2-reference-adapter`: the reference implementation behind the adapter protocol (spec
//! `conformance.md`); the code is in `adapter.rs`, shared with `aep2-conformance
//! reference-adapter`.

fn main() -> std::process::ExitCode {
    aep2_conformance::reference::serve(std::io::stdin().lock(), std::io::stdout().lock())
}
