//! `aep2-broken-adapter --fault <name>`: a deliberately broken AEP2 verifier behind the
//! conformance adapter protocol (see the library docs for the faults).

use aep2_broken_adapter::{BrokenVerifier, Fault};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fault = match args.as_slice() {
        [] => None,
        [flag, name] if flag == "--fault" && name == "none" => None,
        [flag, name] if flag == "--fault" => match Fault::parse(name) {
            Some(f) => Some(f),
            None => {
                let names: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                eprintln!("unknown fault {name}; one of: none, {}", names.join(", "));
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: aep2-broken-adapter [--fault <name>]");
            return ExitCode::from(2);
        }
    };
    BrokenVerifier::new(fault).serve(std::io::stdin().lock(), std::io::stdout().lock())
}
