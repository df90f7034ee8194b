//! Prompts whose KV cache is kept on disk across processes: [`DiskCache`].
//!
//! Each `agentry run` is a new process, and the first thing it does is have the model read
//! the same long planner prompt (system text and tools) as last time. After processing a long
//! prompt the worker saves that slot's KV state (llama.cpp's per-sequence state file); a later
//! process whose prompt shares a long prefix with a saved one loads it instead of recomputing.
//! Files live in a directory per model file (path, size, modification time) and agentry
//! version, at most [`KEEP`] of them, the least recently used dropped first. llama.cpp
//! aborts the process on some damaged state files (a truncated one, say), so each file's
//! sha256 is recorded when it is written and checked before llama.cpp sees it; a file that
//! does not match, or that llama.cpp rejects, is deleted and ignored.

use std::{
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Saved prompts kept per model.
pub(crate) const KEEP: usize = 8;
/// Shorter shared prefixes are not worth a file read.
pub(crate) const MIN_SHARED: usize = 64;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    file: String,
    tokens: Vec<i32>,
    used: u64,
    /// The file's sha256 once it is completely written; entries without one are not used.
    #[serde(default)]
    sha256: Option<String>,
}

/// The saved prompts of one model file.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// The cache under `root` for the model at `model`.
    pub(crate) fn new(root: &Path, model: &Path) -> Self {
        let meta = std::fs::metadata(model).ok();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        model.hash(&mut h);
        meta.as_ref().map(std::fs::Metadata::len).hash(&mut h);
        meta.and_then(|m| m.modified().ok()).hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        Self {
            dir: root.join(format!("{:016x}", h.finish())),
        }
    }

    fn index(&self) -> Index {
        std::fs::read(self.dir.join("index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_index(&self, index: &Index) {
        // A cache that cannot be written only costs speed.
        if let Ok(bytes) = serde_json::to_vec(index) {
            let tmp = self.dir.join("index.json.tmp");
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(tmp, self.dir.join("index.json"));
            }
        }
    }

    /// The saved prompt sharing the longest prefix (at least [`MIN_SHARED`] tokens and more
    /// than `better_than`) with `tokens`: its file and how many tokens it shares.
    pub(crate) fn best(&self, tokens: &[i32], better_than: usize) -> Option<(PathBuf, usize)> {
        let index = self.index();
        index
            .entries
            .iter()
            .map(|e| (e, super::shared_prefix(&e.tokens, tokens)))
            .filter(|(e, shared)| {
                e.sha256.is_some() && *shared >= MIN_SHARED && *shared > better_than
            })
            .max_by_key(|(_, shared)| *shared)
            .map(|(e, shared)| (self.dir.join(&e.file), shared))
    }

    /// Records `file`'s checksum: it is completely written and may be used.
    pub(crate) fn seal(&self, file: &Path) {
        let Ok(sum) = super::file::sha256(file) else {
            return self.forget(file);
        };
        let mut index = self.index();
        for e in &mut index.entries {
            if self.dir.join(&e.file) == file {
                e.sha256 = Some(sum.clone());
            }
        }
        self.write_index(&index);
    }

    /// Whether `file` is exactly as it was sealed; forgets it when not.
    pub(crate) fn intact(&self, file: &Path) -> bool {
        let index = self.index();
        let sealed = index
            .entries
            .iter()
            .find(|e| self.dir.join(&e.file) == file)
            .and_then(|e| e.sha256.clone());
        let ok = sealed.is_some() && super::file::sha256(file).ok() == sealed;
        if !ok {
            self.forget(file);
        }
        ok
    }

    /// Marks `file` as just used.
    pub(crate) fn touch(&self, file: &Path) {
        let mut index = self.index();
        let now = now();
        for e in &mut index.entries {
            if self.dir.join(&e.file) == file {
                e.used = now;
            }
        }
        self.write_index(&index);
    }

    /// Forgets `file` (llama.cpp could not read it).
    pub(crate) fn forget(&self, file: &Path) {
        let mut index = self.index();
        index.entries.retain(|e| self.dir.join(&e.file) != file);
        let _ = std::fs::remove_file(file);
        self.write_index(&index);
    }

    /// Where to save a prompt of `tokens`, registered in the index (the oldest entries and
    /// their files dropped beyond [`KEEP`]); `None` when the directory cannot be made.
    pub(crate) fn slot_for(&self, tokens: &[i32]) -> Option<PathBuf> {
        std::fs::create_dir_all(&self.dir).ok()?;
        let mut index = self.index();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        tokens.hash(&mut h);
        let file = format!("{:016x}.kv", h.finish());
        index.entries.retain(|e| e.file != file);
        index.entries.push(Entry {
            file: file.clone(),
            tokens: tokens.to_vec(),
            used: now(),
            sha256: None,
        });
        index.entries.sort_by_key(|e| std::cmp::Reverse(e.used));
        for old in index.entries.split_off(index.entries.len().min(KEEP)) {
            let _ = std::fs::remove_file(self.dir.join(old.file));
        }
        self.write_index(&index);
        Some(self.dir.join(file))
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_shared_prefix_wins_and_old_entries_go() {
        let root = std::env::temp_dir().join(format!("agentry-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cache = DiskCache::new(&root, Path::new("/nonexistent/model.gguf"));
        let a: Vec<i32> = (0..100).collect();
        let mut b: Vec<i32> = (0..80).collect();
        b.extend(1000..1100);
        let fa = cache.slot_for(&a).unwrap();
        std::fs::write(&fa, b"a").unwrap();
        let fb = cache.slot_for(&b).unwrap();
        std::fs::write(&fb, b"b").unwrap();
        let mut query: Vec<i32> = (0..90).collect();
        query.push(7);
        assert_eq!(cache.best(&query, 0), None, "unsealed files are not used");
        cache.seal(&fa);
        cache.seal(&fb);
        assert_eq!(cache.best(&query, 0), Some((fa.clone(), 90)));
        assert!(cache.intact(&fa));
        // A file changed after it was sealed (cut short, say) is not handed to llama.cpp.
        std::fs::write(&fb, b"").unwrap();
        assert!(!cache.intact(&fb));
        assert!(!fb.exists());
        let fb = cache.slot_for(&b).unwrap();
        std::fs::write(&fb, b"b").unwrap();
        cache.seal(&fb);
        assert_eq!(cache.best(&query, 90), None);
        assert_eq!(
            cache.best(&(0..50).collect::<Vec<_>>(), 0),
            None,
            "under MIN_SHARED"
        );
        cache.forget(&fa);
        assert!(!fa.exists());
        assert_eq!(cache.best(&query, 0), Some((fb.clone(), 80)));
        for i in 0..KEEP as i32 + 2 {
            cache.slot_for(&[i; 70]);
        }
        assert!(cache.index().entries.len() == KEEP);
        assert!(!fb.exists(), "the oldest entry's file is dropped");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
