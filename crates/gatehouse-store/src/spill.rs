//! Spend batches that could not be written before the process exited (the database was
//! down through the whole shutdown), kept in a file beside the config and written at the
//! next start-up. Each batch keeps its id, and [`Store::insert_spend`] writes a batch id at
//! most once, so a batch that was in fact committed just before the exit is not counted
//! twice, and a file replayed twice (a crash during replay) changes nothing the second time.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::records::StoreError;
use crate::store::Store;
use crate::writer::{SpendBatch, Unflushed};

/// File names: `gatehouse-unwritten-spend-<unix ms>-<pid>.jsonl`, one batch per line.
const PREFIX: &str = "gatehouse-unwritten-spend-";
const SUFFIX: &str = ".jsonl";

/// Why spilled spend could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// Reading or writing a spill file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A line of a spill file is not a batch (the file is left in place).
    #[error("{path}, line {line}: not a spend batch: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// Writing a batch to the database failed (the file is left in place).
    #[error("{path}: {source}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: StoreError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpillError + '_ {
    move |source| SpillError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `unflushed` to a new spill file in `dir` (owner-only permissions, written to a
/// temporary name and renamed, so a partial file is never replayed). Returns its path.
pub fn write_spill(dir: &Path, unflushed: &Unflushed, now_ms: i64) -> Result<PathBuf, SpillError> {
    let name = format!("{PREFIX}{now_ms}-{}{SUFFIX}", std::process::id());
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(&tmp).map_err(io(&tmp))?;
    let mut out = std::io::BufWriter::new(file);
    for batch in &unflushed.batches {
        serde_json::to_writer(&mut out, batch).map_err(|e| io(&tmp)(e.into()))?;
        out.write_all(b"\n").map_err(io(&tmp))?;
    }
    let file = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}

/// What [`replay_spills`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Files written to the database and removed.
    pub files: usize,
    /// Records in those files (whether newly written or already written before).
    pub records: usize,
}

/// Writes every spill file in `dir` to `store`, oldest first, and removes each file once all
/// its batches are written. Stops at the first file that cannot be read or written (it stays
/// for the next start-up) and returns that error with what was done before it.
pub async fn replay_spills(store: &Store, dir: &Path) -> (Replayed, Option<SpillError>) {
    let mut done = Replayed::default();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (done, None),
        Err(e) => return (done, Some(io(dir)(e))),
    };
    files.sort();
    for path in files {
        match replay_file(store, &path).await {
            Ok(records) => {
                if let Err(e) = std::fs::remove_file(&path) {
                    return (done, Some(io(&path)(e)));
                }
                done.files += 1;
                done.records += records;
            }
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

async fn replay_file(store: &Store, path: &Path) -> Result<usize, SpillError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut batches = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let batch: SpendBatch = serde_json::from_str(&line).map_err(|e| SpillError::Corrupt {
            path: path.to_owned(),
            line: i + 1,
            message: e.to_string(),
        })?;
        batches.push(batch);
    }
    let mut records = 0;
    for b in &batches {
        store
            .insert_spend(&b.id, &b.records)
            .await
            .map_err(|source| SpillError::Store {
                path: path.to_owned(),
                source,
            })?;
        records += b.records.len();
    }
    Ok(records)
}
