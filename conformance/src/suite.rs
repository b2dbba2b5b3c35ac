//! Loading and validating a vector set (spec `conformance.md#vectors`).

use crate::report::{VectorFileInfo, VectorSet};
use crate::{Error, exit};
use aep2_vectors::model::{TestCase, TestGroup, VectorFile};
use serde_json::Value as J;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Largest vector file read, in bytes (the largest shipped file is about 220 KiB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Most vector files in a set.
pub const MAX_FILES: usize = 1024;

/// The vector-file schema, embedded so the runner validates wherever it runs.
pub const VECTOR_FILE_SCHEMA: &str = include_str!("../../spec/schemas/vectors/vector-file.schema.json");

/// A validated vector set.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// The files, by name.
    pub files: Vec<VectorFile>,
    /// Their identity for report headers.
    pub info: VectorSet,
}

/// The repository's `vectors/`: next to this crate when built from the repository, else
/// `./vectors`.
pub fn default_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    if built.is_dir() {
        built
    } else {
        PathBuf::from("vectors")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Suite {
    /// Reads every `*.json` file directly under `dir` (sub-directories such as `peer-signed/`
    /// hold other formats), validates each against the vector-file schema and the model, and
    /// checks counts, topics and id uniqueness. Unreadable directory: exit 2; any invalid file:
    /// exit 4.
    pub fn load(dir: &Path) -> Result<Suite, Error> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::new(exit::USAGE, format!("vectors directory {}: {e}", dir.display())))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let invalid = |m: String| Error::new(exit::VECTORS, m);
        if paths.is_empty() {
            return Err(invalid(format!("no *.json vector files in {}", dir.display())));
        }
        if paths.len() > MAX_FILES {
            return Err(invalid(format!("more than {MAX_FILES} vector files")));
        }
        let schema: J = serde_json::from_str(VECTOR_FILE_SCHEMA)
            .map_err(|e| Error::new(exit::VECTORS, format!("vector-file schema: {e}")))?;
        let validator = jsonschema::draft202012::new(&schema)
            .map_err(|e| Error::new(exit::VECTORS, format!("vector-file schema: {e}")))?;
        let mut files = Vec::new();
        let mut infos = Vec::new();
        let mut manifest = String::new();
        let mut ids = BTreeSet::new();
        for path in paths {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(u64::MAX);
            if size > MAX_FILE_BYTES {
                return Err(invalid(format!("{name}: larger than {MAX_FILE_BYTES} bytes")));
            }
            let bytes = std::fs::read(&path).map_err(|e| invalid(format!("{name}: {e}")))?;
            let raw: J = serde_json::from_slice(&bytes).map_err(|e| invalid(format!("{name}: not JSON: {e}")))?;
            let errors: Vec<String> = validator
                .iter_errors(&raw)
                .take(3)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            if !errors.is_empty() {
                return Err(invalid(format!("{name}: schema: {}", errors.join("; "))));
            }
            let file: VectorFile = serde_json::from_value(raw).map_err(|e| invalid(format!("{name}: model: {e}")))?;
            let count = file.test_groups.iter().map(|g| g.tests.len()).sum::<usize>();
            if count != file.number_of_tests {
                return Err(invalid(format!(
                    "{name}: numberOfTests {} but {count} tests",
                    file.number_of_tests
                )));
            }
            for (_, t) in file.cases() {
                if !t.id.starts_with(&format!("{}/", file.topic)) {
                    return Err(invalid(format!("{name}: {} is not under topic {}", t.id, file.topic)));
                }
                if !ids.insert(t.id.clone()) {
                    return Err(invalid(format!("{name}: duplicate id {}", t.id)));
                }
            }
            let digest = hex(&Sha256::digest(&bytes));
            manifest.push_str(&format!("{digest}  {name}\n"));
            infos.push(VectorFileInfo {
                name,
                sha256: digest,
                tests: count,
            });
            files.push(file);
        }
        let versions: BTreeSet<&str> = files.iter().map(|f| f.spec_version.as_str()).collect();
        let info = VectorSet {
            dir: dir.display().to_string(),
            sha256: hex(&Sha256::digest(manifest.as_bytes())),
            spec_version: versions.into_iter().collect::<Vec<_>>().join(","),
            cases: ids.len(),
            files: infos,
        };
        Ok(Suite {
            dir: dir.to_path_buf(),
            files,
            info,
        })
    }

    /// Every case with its group, files by name, groups and cases in file order.
    pub fn cases(&self) -> impl Iterator<Item = (&TestGroup, &TestCase)> {
        self.files.iter().flat_map(|f| f.cases())
    }

    /// Whether a case id exists in the set.
    pub fn contains(&self, id: &str) -> bool {
        self.cases().any(|(_, t)| t.id == id)
    }
}
