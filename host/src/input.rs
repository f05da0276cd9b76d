//! JSONL input: a file, `-` for stdin, or a followed file (tail; survives rotation and
//! truncation). Runs on its own thread and sends parsed records (or bad lines) to the pipeline.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{InputConfig, InputPath};
use crate::record::{parse_entry, Entry, Envelope};

#[derive(Debug)]
pub enum InputItem {
    /// A record given as a parsed object (e.g. `replay` of a dead letter).
    Record(Box<Envelope>),
    /// A record read from an input line (the line is kept for the dead letter).
    Entry(Box<Entry>),
    /// A line that is not a valid record.
    Bad {
        raw: String,
        line: u64,
        reason: String,
    },
    /// The input cannot be read at all (the run stops with an error).
    Failed(String),
}

/// Start reading on a thread. The thread ends at the end of the input (not when following),
/// when `stop` is set, or when the receiver is gone.
pub fn spawn(cfg: &InputConfig, tx: mpsc::Sender<InputItem>, stop: Arc<AtomicBool>) {
    let cfg = cfg.clone();
    std::thread::Builder::new()
        .name("dbaudit-input".into())
        .spawn(move || {
            let r = match &cfg.path {
                InputPath::Stdin => read_all(std::io::stdin().lock(), &tx, &stop),
                InputPath::File(p) if cfg.follow => follow(p, cfg.poll_interval, &tx, &stop),
                InputPath::File(p) => match File::open(p) {
                    Ok(f) => read_all(f, &tx, &stop),
                    Err(e) => Err(format!("cannot open the input {}: {e}", p.display())),
                },
            };
            if let Err(e) = r {
                let _ = tx.blocking_send(InputItem::Failed(e));
            }
        })
        .expect("spawn the input thread");
}

fn emit(mut text: String, line: u64, tx: &mpsc::Sender<InputItem>) -> bool {
    let len = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(len);
    if text.trim().is_empty() {
        return true;
    }
    let item = match parse_entry(text, Some(line)) {
        Ok(e) => InputItem::Entry(Box::new(e)),
        Err((reason, raw)) => InputItem::Bad { raw, line, reason },
    };
    tx.blocking_send(item).is_ok()
}

/// One raw line (bytes, as read): a record, or a bad line when it is not UTF-8 text.
fn emit_bytes(bytes: Vec<u8>, line: u64, tx: &mpsc::Sender<InputItem>) -> bool {
    match String::from_utf8(bytes) {
        Ok(text) => emit(text, line, tx),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let raw = String::from_utf8_lossy(e.as_bytes())
                .trim_end_matches(['\n', '\r'])
                .to_string();
            let reason = format!("not UTF-8 text (invalid byte at offset {at})");
            tx.blocking_send(InputItem::Bad { raw, line, reason })
                .is_ok()
        }
    }
}

fn read_all(r: impl Read, tx: &mpsc::Sender<InputItem>, stop: &AtomicBool) -> Result<(), String> {
    let mut reader = BufReader::new(r);
    let mut line = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Bytes, not read_line: a line that is not UTF-8 is dead-lettered, not fatal.
        let mut buf = Vec::with_capacity(512);
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                line += 1;
                if !emit_bytes(buf, line, tx) {
                    return Ok(());
                }
            }
            Err(e) => return Err(format!("reading the input: {e}")),
        }
    }
}

fn identity(p: &Path) -> Option<(u64, u64, u64)> {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.len()))
}

/// Tail `path`: read what is there, then wait for more; reopen when the file is replaced
/// (rotation) or truncated.
fn follow(
    path: &PathBuf,
    poll: Duration,
    tx: &mpsc::Sender<InputItem>,
    stop: &AtomicBool,
) -> Result<(), String> {
    'open: loop {
        let file = loop {
            if stop.load(Ordering::Relaxed) || tx.is_closed() {
                return Ok(());
            }
            match File::open(path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::thread::sleep(poll),
                Err(e) => return Err(format!("cannot open the input {}: {e}", path.display())),
            }
        };
        let meta = file.metadata().map_err(|e| e.to_string())?;
        let (dev, ino) = (meta.dev(), meta.ino());
        let mut reader = BufReader::new(file);
        let mut pos = 0u64;
        let mut line = 0u64;
        let mut partial: Vec<u8> = Vec::new();
        loop {
            if stop.load(Ordering::Relaxed) || tx.is_closed() {
                return Ok(());
            }
            let n = reader
                .read_until(b'\n', &mut partial)
                .map_err(|e| format!("reading the input: {e}"))?;
            if n > 0 {
                pos += n as u64;
                if partial.ends_with(b"\n") {
                    line += 1;
                    if !emit_bytes(std::mem::take(&mut partial), line, tx) {
                        return Ok(());
                    }
                }
                continue;
            }
            // At the end: wait, then look for rotation or truncation.
            std::thread::sleep(poll);
            match identity(path) {
                Some((d, i, _)) if (d, i) != (dev, ino) => {
                    // Rotated: finish the old file first, then open the new one.
                    let _ = reader.read_to_end(&mut partial);
                    for l in partial.split_inclusive(|b| *b == b'\n') {
                        line += 1;
                        if !emit_bytes(l.to_vec(), line, tx) {
                            return Ok(());
                        }
                    }
                    tracing::info!(target: "dbaudit::input", path = %path.display(), "input rotated; reopening");
                    continue 'open;
                }
                Some((_, _, len)) if len < pos => {
                    tracing::info!(target: "dbaudit::input", path = %path.display(), "input truncated; reading from the start");
                    continue 'open;
                }
                _ => {}
            }
        }
    }
}
