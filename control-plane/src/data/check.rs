//! [`check`]: a validation-only pass over a file, for ingest. It finds the same first error as
//! [`scan`] and computes the same MD5, but a CSV without quote characters (most machine-written
//! CSVs) is cut into newline-aligned chunks that two threads parse at once, while the reader
//! thread hashes. Files with quotes, JSON Lines and Parquet (whose reader already decodes while
//! another thread hashes) go through [`scan`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use super::DataError;
use super::read::{ReadOptions, ScanStats, header_names, map_header, parse_cell, refuse_parquet, spawn_reader};
use super::scan;
use crate::data::Format;
use crate::progress::Progress;

/// Threads that parse chunks (the reader thread hashes beside them).
const PARSERS: usize = 2;

/// Checks every row of `path` against the schema; see the module docs.
pub(crate) fn check(
    path: &Path,
    name: &str,
    opts: &ReadOptions<'_>,
    progress: &Progress,
) -> Result<ScanStats, DataError> {
    if opts.format == Format::Csv && !has_quote(path)? {
        refuse_parquet(path, name, opts.format)?;
        check_csv_parallel(path, name, opts, progress)
    } else {
        scan(path, name, opts, progress, |_, _| Ok(()))
    }
}

/// Whether the file contains a `"` anywhere (memchr over the page cache: milliseconds per 100 MB).
fn has_quote(path: &Path) -> Result<bool, DataError> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            return Ok(false);
        }
        if memchr::memchr(b'"', &buf[..n]).is_some() {
            return Ok(true);
        }
    }
}

/// The first problem in a chunk, in chunk-local rows and lines (both 1-based).
struct ChunkError {
    row: u64,
    line: u64,
    column: Option<String>,
    message: String,
}

struct ChunkResult {
    rows: u64,
    lines: u64,
    error: Option<ChunkError>,
}

fn check_csv_parallel(
    path: &Path,
    name: &str,
    opts: &ReadOptions<'_>,
    progress: &Progress,
) -> Result<ScanStats, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    progress.set_length(file.metadata().map(|m| m.len()).ok());
    let (blocks, reader) = spawn_reader(file);

    // The header: everything up to the first newline.
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let header_end = loop {
        if let Some(i) = memchr::memchr(b'\n', &pending) {
            break Some(i + 1);
        }
        match blocks.recv() {
            Ok(block) => {
                let block = block.map_err(|e| DataError::io(path, e))?;
                progress.inc(block.len() as u64);
                pending.extend_from_slice(&block);
            }
            Err(_) => {
                eof = true;
                break None;
            }
        }
    };
    let header_bytes: Vec<u8> = pending.drain(..header_end.unwrap_or(pending.len())).collect();
    let mut header_reader = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(false)
        .from_reader(&header_bytes[..]);
    let mut record = csv::ByteRecord::new();
    let has_header = header_reader
        .read_byte_record(&mut record)
        .map_err(|e| DataError::file(name, e.to_string()))?;
    if !has_header {
        drop(blocks);
        let _ = reader.join();
        return Err(DataError::file(name, "the file is empty (no header, no rows)"));
    }
    let header = header_names(&record);
    let indices = map_header(name, &header, opts, "the header")?;
    let width = header.len();

    // Chunks go to the parsers through a bounded queue; results come back tagged with their index.
    let (work_tx, work_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(PARSERS * 2);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (result_tx, result_rx) = mpsc::channel::<(usize, ChunkResult)>();
    let results = std::thread::scope(|scope| -> Result<BTreeMap<usize, ChunkResult>, DataError> {
        for _ in 0..PARSERS {
            let (work_rx, result_tx, indices) = (Arc::clone(&work_rx), result_tx.clone(), &indices);
            scope.spawn(move || {
                loop {
                    let next = work_rx.lock().expect("work queue").recv();
                    let Ok((seq, chunk)) = next else { break };
                    let result = parse_chunk(&chunk, opts, indices, width);
                    if result_tx.send((seq, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(result_tx);
        let mut seq = 0;
        let mut send = |chunk: Vec<u8>| {
            let sent = work_tx.send((seq, chunk)).is_ok();
            seq += 1;
            sent
        };
        while !eof {
            match blocks.recv() {
                Ok(block) => {
                    let block = block.map_err(|e| DataError::io(path, e))?;
                    progress.inc(block.len() as u64);
                    pending.extend_from_slice(&block);
                    if let Some(last) = memchr::memrchr(b'\n', &pending) {
                        let rest = pending.split_off(last + 1);
                        if !send(std::mem::replace(&mut pending, rest)) {
                            break;
                        }
                    }
                }
                Err(_) => eof = true,
            }
        }
        if !pending.is_empty() {
            send(std::mem::take(&mut pending));
        }
        drop(work_tx);
        Ok(result_rx.iter().collect())
    })?;
    let (md5, bytes) = reader.join().expect("reader thread");

    // Results in file order: the first error wins, with its row and line made global.
    let (mut rows, mut lines) = (0u64, 1u64);
    for result in results.values() {
        if let Some(e) = &result.error {
            let (row, line) = (rows + e.row, lines + e.line);
            return Err(match &e.column {
                Some(column) => DataError::Cell {
                    file: name.to_owned(),
                    row,
                    line,
                    column: column.clone(),
                    message: e.message.clone(),
                },
                None => DataError::Row {
                    file: name.to_owned(),
                    row,
                    line,
                    message: e.message.clone(),
                },
            });
        }
        rows += result.rows;
        lines += result.lines;
    }
    if rows == 0 {
        return Err(DataError::file(name, "the file has a header but no data rows"));
    }
    Ok(ScanStats { rows, bytes, md5 })
}

/// Parses one newline-aligned chunk. With no quotes in the file, a record is a line and a field
/// is what lies between delimiters, so memchr finds them; a `\r` inside a line (which the csv
/// crate would read as a record end) sends the chunk through the csv reader instead.
fn parse_chunk(chunk: &[u8], opts: &ReadOptions<'_>, indices: &[usize], width: usize) -> ChunkResult {
    let mut rows = 0u64;
    let mut fields: Vec<&[u8]> = Vec::with_capacity(width);
    let mut line_no = 0u64;
    let mut start = 0;
    while start < chunk.len() {
        let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
        let mut line = &chunk[start..end];
        start = end + 1;
        line_no += 1;
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if memchr::memchr(b'\r', line).is_some() {
            return parse_chunk_csv(chunk, opts, indices, width);
        }
        if line.is_empty() {
            continue;
        }
        fields.clear();
        fields.extend(line.split(|b| *b == opts.delimiter));
        rows += 1;
        if fields.len() != width {
            let message = format!("has {} fields, the header has {width}", fields.len());
            return failed(rows, line_no, None, message);
        }
        for (spec, &i) in opts.columns.iter().zip(indices) {
            if let Err(message) = parse_cell(fields[i], spec, opts.missing_values) {
                return failed(rows, line_no, Some(spec.name.clone()), message);
            }
        }
    }
    ChunkResult {
        rows,
        lines: line_no,
        error: None,
    }
}

fn failed(row: u64, line: u64, column: Option<String>, message: String) -> ChunkResult {
    ChunkResult {
        rows: 0,
        lines: 0,
        error: Some(ChunkError {
            row,
            line,
            column,
            message,
        }),
    }
}

/// The same through the csv reader, for chunks with a `\r` inside a line.
fn parse_chunk_csv(chunk: &[u8], opts: &ReadOptions<'_>, indices: &[usize], width: usize) -> ChunkResult {
    let lines = memchr::memchr_iter(b'\n', chunk).count() as u64 + u64::from(!chunk.ends_with(b"\n"));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(chunk);
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    let fail = |row: u64, line: u64, column: Option<String>, message: String| ChunkResult {
        rows: 0,
        lines,
        error: Some(ChunkError {
            row,
            line,
            column,
            message,
        }),
    };
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return fail(rows + 1, e.position().map_or(0, |p| p.line()), None, e.to_string()),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != width {
            if record.len() == 1 && record.get(0) == Some(b"") {
                continue;
            }
            let message = format!("has {} fields, the header has {width}", record.len());
            return fail(rows + 1, line, None, message);
        }
        rows += 1;
        for (spec, &i) in opts.columns.iter().zip(indices) {
            if let Err(message) = parse_cell(&record[i], spec, opts.missing_values) {
                return fail(rows, line, Some(spec.name.clone()), message);
            }
        }
    }
    ChunkResult {
        rows,
        lines,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ColumnSpec;
    use crate::data::ColumnType;

    fn columns() -> Vec<ColumnSpec> {
        ["a", "b"]
            .map(|n| ColumnSpec {
                name: n.into(),
                ty: ColumnType::Float,
                nullable: true,
                allow_non_finite: false,
            })
            .to_vec()
    }

    /// Both paths over the same text: same statistics, or the same error message.
    fn both(text: &str) -> (Result<ScanStats, String>, Result<ScanStats, String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, text).unwrap();
        let missing = vec![String::new(), "NA".into()];
        let columns = columns();
        let opts = ReadOptions {
            format: Format::Csv,
            delimiter: b',',
            missing_values: &missing,
            ignore_extra_columns: false,
            columns: &columns,
            max_line_bytes: crate::data::DEFAULT_MAX_LINE_BYTES,
        };
        let progress = Progress::hidden();
        let parallel = check_csv_parallel(&path, "d.csv", &opts, &progress).map_err(|e| e.to_string());
        let sequential = scan(&path, "d.csv", &opts, &progress, |_, _| Ok(())).map_err(|e| e.to_string());
        (parallel, sequential)
    }

    fn big(rows: usize, bad_at: Option<(usize, &str)>) -> String {
        let mut text = String::from("a,b\n");
        for i in 1..=rows {
            match bad_at {
                Some((row, cell)) if row == i => text.push_str(&format!("{cell},1\n")),
                _ => text.push_str(&format!("{}.25,{}\n", i % 97, i % 13)),
            }
        }
        text
    }

    #[test]
    fn parallel_and_sequential_agree_on_good_files() {
        for text in [
            big(300_000, None),
            "a,b\n1,2".to_owned(),
            "a,b\r\n1,2\r\n\r\n3,NA\r\n".to_owned(),
            "a,b\n1,2\r3,4\n".to_owned(),
        ] {
            let (p, s) = both(&text);
            assert_eq!(p, s);
            assert!(p.is_ok());
        }
    }

    #[test]
    fn parallel_and_sequential_report_the_same_first_error() {
        for text in [
            big(300_000, Some((250_001, "abc"))),
            big(300_000, Some((7, "nan"))),
            big(300_000, Some((299_999, "1,2"))),
            "a,b\n".to_owned(),
            String::new(),
            "a,c\n1,2\n".to_owned(),
            "a;b\n1,2\n".to_owned(),
        ] {
            let (p, s) = both(&text);
            assert!(p.is_err(), "{p:?}");
            assert_eq!(p, s);
        }
        // After a blank line the csv crate's line count falls one short; the fast path counts
        // physical lines.
        let (p, s) = both("a,b\n1,2\n\n3\n");
        assert_eq!(p.unwrap_err(), "d.csv: row 2 (line 4): has 1 fields, the header has 2");
        assert_eq!(s.unwrap_err(), "d.csv: row 2 (line 3): has 1 fields, the header has 2");
        let (p, _) = both(&big(300_000, Some((250_001, "abc"))));
        assert_eq!(
            p.unwrap_err(),
            "d.csv: row 250001 (line 250002), column 'a': 'abc' is not a float"
        );
    }
}
