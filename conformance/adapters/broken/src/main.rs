//! `aep2-broken-adapter --fault <name>` or `--variant <choice-point id>`: a deliberately broken
//! AEP2 verifier behind the conformance adapter protocol (see the library docs for the faults
//! and the reading variants).

use aep2_broken_adapter::{BrokenVerifier, Fault, Variant};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verifier = match args.as_slice() {
        [] => BrokenVerifier::new(None),
        [flag, name] if flag == "--fault" && name == "none" => BrokenVerifier::new(None),
        [flag, name] if flag == "--fault" => match Fault::parse(name) {
            Some(f) => BrokenVerifier::new(Some(f)),
            None => {
                let names: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                eprintln!("unknown fault {name}; one of: none, {}", names.join(", "));
                return ExitCode::from(2);
            }
        },
        [flag, id] if flag == "--variant" => match Variant::parse(id) {
            Some(v) => BrokenVerifier::reading(v),
            None => {
                let ids: Vec<_> = Variant::all().iter().map(|v| v.id()).collect();
                eprintln!("unknown variant {id}; one of: {}", ids.join(", "));
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: aep2-broken-adapter [--fault <name> | --variant <choice-point id>]");
            return ExitCode::from(2);
        }
    };
    verifier.serve(std::io::stdin().lock(), std::io::stdout().lock())
}
