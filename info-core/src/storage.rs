//! Where the Information Core's files live: a small trait, an in-memory implementation for
//! tests and a file-backed one (the embedded default).
//!
//! Keys are relative paths like `cpu-demand/v00000003.model`. Files are written once and
//! never modified: `create` is atomic (a reader sees the whole file or none) and refuses to
//! replace an existing key, so two writers can never overwrite each other's version.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{InfoCoreError, Result};

/// Blob storage for the Information Core.
pub trait Storage: Send + Sync {
    /// Every key, sorted.
    fn list(&self) -> Result<Vec<String>>;
    /// The keys of one model (`<name>/…`), sorted. The default filters [`Storage::list`].
    fn list_model(&self, name: &str) -> Result<Vec<String>> {
        let prefix = format!("{name}/");
        Ok(self
            .list()?
            .into_iter()
            .filter(|k| k.starts_with(&prefix))
            .collect())
    }
    /// A key's bytes.
    fn read(&self, key: &str) -> Result<Vec<u8>>;
    /// Creates `key` atomically; `Ok(false)` if it already exists (nothing written).
    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool>;
    /// Removes `key` (retention).
    fn remove(&self, key: &str) -> Result<()>;
    /// Moves `key` aside, with the reason, so it is no longer listed but kept for a human.
    fn quarantine(&self, key: &str, reason: &str) -> Result<()>;
    /// Keys quarantined so far (their numbers stay taken).
    fn quarantined_keys(&self) -> Result<Vec<String>>;
    /// Human-readable location, for messages.
    fn describe(&self, key: &str) -> String;
}

/// Storage in memory.
#[derive(Default)]
pub struct MemoryStorage {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    quarantined: Mutex<Vec<(String, Vec<u8>, String)>>,
}

impl MemoryStorage {
    /// Replaces a key's bytes behind the store's back (tests of corruption).
    pub fn tamper(&self, key: &str, f: impl FnOnce(&mut Vec<u8>)) {
        if let Some(bytes) = self.files.lock().get_mut(key) {
            f(bytes);
        }
    }

    /// Keys quarantined so far, with their reasons.
    pub fn quarantined(&self) -> Vec<(String, String)> {
        self.quarantined
            .lock()
            .iter()
            .map(|(k, _, r)| (k.clone(), r.clone()))
            .collect()
    }
}

impl Storage for MemoryStorage {
    fn list(&self) -> Result<Vec<String>> {
        Ok(self.files.lock().keys().cloned().collect())
    }

    fn read(&self, key: &str) -> Result<Vec<u8>> {
        self.files
            .lock()
            .get(key)
            .cloned()
            .ok_or_else(|| InfoCoreError::Io {
                path: key.into(),
                source: std::io::ErrorKind::NotFound.into(),
            })
    }

    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        let mut files = self.files.lock();
        if files.contains_key(key) {
            return Ok(false);
        }
        files.insert(key.to_string(), bytes.to_vec());
        Ok(true)
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.files.lock().remove(key);
        Ok(())
    }

    fn quarantine(&self, key: &str, reason: &str) -> Result<()> {
        if let Some(bytes) = self.files.lock().remove(key) {
            self.quarantined
                .lock()
                .push((key.to_string(), bytes, reason.to_string()));
        }
        Ok(())
    }

    fn quarantined_keys(&self) -> Result<Vec<String>> {
        Ok(self.quarantined().into_iter().map(|(k, _)| k).collect())
    }

    fn describe(&self, key: &str) -> String {
        format!("memory:{key}")
    }
}

/// Storage in a directory: `<root>/<key>`, quarantined files under `<root>/quarantine/`.
pub struct FileStorage {
    root: PathBuf,
}

const TMP_SUFFIX: &str = ".tmp";
/// A temp file this old was left by a writer that died: writing one and linking it takes
/// milliseconds.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether the process that wrote the temp file `path` (`<name>.<pid>.tmp`) still runs.
/// Unknown (no pid in the name, no `/proc`) counts as running: the age rule decides.
fn writer_alive(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let pid = name
        .strip_suffix(TMP_SUFFIX)
        .and_then(|rest| rest.rsplit('.').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    match pid {
        Some(pid) if Path::new("/proc/self").exists() => {
            Path::new("/proc").join(pid.to_string()).exists()
        }
        _ => true,
    }
}
const QUARANTINE_DIR: &str = "quarantine";

impl FileStorage {
    /// Opens (creating) `root`, removing temp files an interrupted writer left behind —
    /// only those whose writer is gone (its process id, in the name, no longer runs) or
    /// that are stale: another process (a background publishing while `dcpilot models`
    /// reads) may be between writing its temp file and linking it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(InfoCoreError::io(&root))?;
        let storage = Self { root };
        let now = std::time::SystemTime::now();
        for path in storage.walk()? {
            if !path.to_string_lossy().ends_with(TMP_SUFFIX) {
                continue;
            }
            let age = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok());
            if !writer_alive(&path) || age.is_some_and(|age| age >= STALE_TMP) {
                match fs::remove_file(&path) {
                    // Its writer (or another opener) took it away first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    other => other.map_err(InfoCoreError::io(&path))?,
                }
            }
        }
        Ok(storage)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        // Keys come from valid model names; refuse anything that could leave the root.
        if key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(InfoCoreError::Rejected(format!(
                "invalid storage key {key:?}"
            )));
        }
        Ok(self.root.join(key))
    }

    /// Every file under the root except the quarantine.
    fn walk(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir).map_err(InfoCoreError::io(&dir))? {
                let entry = entry.map_err(InfoCoreError::io(&dir))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(InfoCoreError::io(&path))?;
                if kind.is_dir() {
                    if dir != self.root || entry.file_name() != QUARANTINE_DIR {
                        dirs.push(path);
                    }
                } else if kind.is_file() {
                    out.push(path);
                }
            }
        }
        Ok(out)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(InfoCoreError::io(dir))
}

impl Storage for FileStorage {
    fn list(&self) -> Result<Vec<String>> {
        let mut keys: Vec<String> = self
            .walk()?
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(TMP_SUFFIX))
            .filter_map(|p| {
                let rel = p.strip_prefix(&self.root).ok()?;
                Some(
                    rel.to_string_lossy()
                        .replace(std::path::MAIN_SEPARATOR, "/"),
                )
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn read(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path(key)?;
        fs::read(&path).map_err(InfoCoreError::io(&path))
    }

    fn create(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(InfoCoreError::io(&dir))?;
        let tmp = path.with_file_name(format!(
            "{}.{}{TMP_SUFFIX}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        {
            let mut file = File::create(&tmp).map_err(InfoCoreError::io(&tmp))?;
            file.write_all(bytes).map_err(InfoCoreError::io(&tmp))?;
            file.sync_all().map_err(InfoCoreError::io(&tmp))?;
        }
        // A hard link creates the final name atomically and fails if it exists: the whole
        // file appears at once, and never over another writer's.
        let linked = match fs::hard_link(&tmp, &path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(InfoCoreError::io(&path)(e));
            }
        };
        fs::remove_file(&tmp).map_err(InfoCoreError::io(&tmp))?;
        sync_dir(&dir)?;
        Ok(linked)
    }

    fn remove(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(InfoCoreError::io(&path)(e)),
        }
    }

    fn quarantine(&self, key: &str, reason: &str) -> Result<()> {
        let path = self.path(key)?;
        let dir = self.root.join(QUARANTINE_DIR);
        fs::create_dir_all(&dir).map_err(InfoCoreError::io(&dir))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let target = dir.join(format!("{}.{stamp}", key.replace('/', "__")));
        match fs::rename(&path, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(InfoCoreError::io(&path)(e)),
        }
        let note = target.with_extension(format!("{stamp}.reason"));
        fs::write(&note, format!("{reason}\n")).map_err(InfoCoreError::io(&note))?;
        sync_dir(&dir)
    }

    fn quarantined_keys(&self) -> Result<Vec<String>> {
        let dir = self.root.join(QUARANTINE_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(InfoCoreError::io(&dir)(e)),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let name = entry.map_err(InfoCoreError::io(&dir))?.file_name();
            let name = name.to_string_lossy();
            // `<name>__<file>.<stamp>`; reason notes end in `.reason`.
            if name.ends_with(".reason") {
                continue;
            }
            if let Some((flat, _stamp)) = name.rsplit_once('.') {
                keys.push(flat.replace("__", "/"));
            }
        }
        Ok(keys)
    }

    fn describe(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}
