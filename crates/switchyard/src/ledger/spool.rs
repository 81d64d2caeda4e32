//! Rows the database could not take yet, on disk: `ledger-spool.jsonl` in the state
//! directory, one JSON record a line, fsynced per batch. Replay first renames the file to
//! `ledger-spool.replay.jsonl` (new rows keep arriving in a fresh spool meanwhile), inserts
//! it in batches, and deletes it only after every batch committed; a crash mid-replay leaves
//! it for the next attempt, and idempotent inserts make the second pass harmless.
//!
//! Blocking file I/O: call from `spawn_blocking` (the writer does), except the overflow
//! path, which appends without fsync when the in-memory queue is full.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::record::Record;

pub struct Spool {
    path: PathBuf,
    replay_path: PathBuf,
    /// Appends are serialised so lines never interleave.
    lock: Mutex<()>,
    /// Rows in both files.
    rows: AtomicU64,
}

impl Spool {
    /// The spool of `dir`, counting the rows a previous run left.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("ledger-spool.jsonl");
        let replay_path = dir.join("ledger-spool.replay.jsonl");
        let rows = count_lines(&path)? + count_lines(&replay_path)?;
        Ok(Self { path, replay_path, lock: Mutex::new(()), rows: AtomicU64::new(rows) })
    }

    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `rows`; with `sync` the data reaches the disk before this returns.
    pub fn append(&self, rows: &[Record], sync: bool) -> std::io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(rows.len() * 512);
        for row in rows {
            serde_json::to_writer(&mut buf, row).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(&buf)?;
        if sync {
            file.sync_data()?;
        }
        self.rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The file to replay: one left by an interrupted replay, else the spool moved aside.
    /// `None` when there is nothing to replay.
    pub fn take(&self) -> std::io::Result<Option<Replay>> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.replay_path.exists() {
            match std::fs::metadata(&self.path) {
                Ok(m) if m.len() > 0 => std::fs::rename(&self.path, &self.replay_path)?,
                _ => return Ok(None),
            }
        }
        let file = File::open(&self.replay_path)?;
        Ok(Some(Replay { reader: BufReader::new(file), lines: 0 }))
    }

    /// Every row of `replay` is committed: forget it.
    pub fn done(&self, replay: Replay) -> std::io::Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        drop(replay.reader);
        std::fs::remove_file(&self.replay_path)?;
        let _ = self.rows.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(replay.lines))
        });
        Ok(())
    }
}

/// A spool file being replayed, read a batch at a time (memory stays bounded).
pub struct Replay {
    reader: BufReader<File>,
    /// Lines read so far, for the spool's count.
    lines: u64,
}

impl Replay {
    /// Up to `max` records; empty at the end. A line that does not parse (a write cut by a
    /// crash) is skipped with a warning.
    pub fn next_batch(&mut self, max: usize) -> std::io::Result<Vec<Record>> {
        let mut out = Vec::with_capacity(max.min(1024));
        let mut line = String::new();
        while out.len() < max {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                break;
            }
            self.lines += 1;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str(text) {
                Ok(record) => out.push(record),
                Err(err) => tracing::warn!(%err, "ledger spool: skipping an unreadable line"),
            }
        }
        Ok(out)
    }
}

/// Rows waiting in the spool of the state directory `dir`, without opening (or creating)
/// anything: what `doctor` reports.
pub fn waiting(dir: &Path) -> std::io::Result<u64> {
    Ok(count_lines(&dir.join("ledger-spool.jsonl"))?
        + count_lines(&dir.join("ledger-spool.replay.jsonl"))?)
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    match File::open(path) {
        Ok(file) => {
            let mut n = 0;
            for line in BufReader::new(file).split(b'\n') {
                if !line?.is_empty() {
                    n += 1;
                }
            }
            Ok(n)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Record {
        Record { request_id: id.into(), ..Record::default() }
    }

    #[test]
    fn rows_survive_a_restart_and_replay_forgets_them_only_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.append(&[rec("a"), rec("b")], true).unwrap();
        spool.append(&[rec("c")], false).unwrap();
        assert_eq!(spool.rows(), 3);
        drop(spool);

        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.rows(), 3);
        let mut replay = spool.take().unwrap().unwrap();
        // Rows arriving during the replay go to a fresh spool.
        spool.append(&[rec("d")], true).unwrap();
        let first = replay.next_batch(2).unwrap();
        assert_eq!(first.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        drop(replay);

        // Interrupted: the same file is replayed again from its start.
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.rows(), 4);
        let mut replay = spool.take().unwrap().unwrap();
        assert_eq!(replay.next_batch(10).unwrap().len(), 3);
        assert!(replay.next_batch(10).unwrap().is_empty());
        spool.done(replay).unwrap();
        assert_eq!(spool.rows(), 1);
        let mut replay = spool.take().unwrap().unwrap();
        assert_eq!(replay.next_batch(10).unwrap()[0].request_id, "d");
        spool.done(replay).unwrap();
        assert_eq!(spool.rows(), 0);
        assert!(spool.take().unwrap().is_none());
    }
}
