//! The streaming reader: one pass over a CSV or JSON Lines file, each row checked against the
//! declared schema and handed to a callback as typed cells. Memory stays flat whatever the file
//! size: the file is read in 1 MiB blocks by a second thread, which also computes its MD5, so
//! hashing and parsing run on two cores. [`super::scan`] sends Parquet files to
//! [`super::parquet`] instead, which hands its rows to the same callback.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;

use md5::{Digest, Md5};

use super::{ColumnType, DataError};
use crate::data::{ColumnSpec, Format};
use crate::progress::Progress;
use crate::text::suggest;

/// One checked value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    Missing,
    Number(f64),
    Bool(bool),
    Text(&'a str),
}

/// How to read a file.
#[derive(Debug, Clone)]
pub struct ReadOptions<'a> {
    pub format: Format,
    pub delimiter: u8,
    pub missing_values: &'a [String],
    pub ignore_extra_columns: bool,
    pub columns: &'a [ColumnSpec],
    /// Longest line read (bytes); a longer one is an error naming the line, and memory stays
    /// bounded by it rather than by the file.
    pub max_line_bytes: usize,
}

/// The default of `max_line_bytes` in `[dataset]`: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// What a scan saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanStats {
    pub rows: u64,
    pub bytes: u64,
    /// MD5 of the raw bytes, lowercase hex (DVC's content address).
    pub md5: String,
}

const BLOCK: usize = 1 << 20;

/// The per-row callback of the format-specific scanners.
pub(super) type RowFn<'f> = dyn FnMut(u64, &[Cell<'_>]) -> Result<(), DataError> + 'f;

/// Refuses a Parquet file (its `PAR1` magic) about to be read as CSV or JSON Lines, whose errors
/// about its bytes would not say what is wrong.
pub(super) fn refuse_parquet(path: &Path, name: &str, format: Format) -> Result<(), DataError> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    if read_full(&mut file, &mut magic).map_err(|e| DataError::io(path, e))? == 4 && &magic == b"PAR1" {
        return Err(DataError::file(
            name,
            format!(
                "a Parquet file, read as {}: set format = \"parquet\" in [dataset]",
                format.extension()
            ),
        ));
    }
    Ok(())
}

/// [`super::scan`] for CSV and JSON Lines.
pub(super) fn scan_text(
    path: &Path,
    name: &str,
    opts: &ReadOptions<'_>,
    progress: &Progress,
    on_row: &mut RowFn<'_>,
) -> Result<ScanStats, DataError> {
    refuse_parquet(path, name, opts.format)?;
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let total = file.metadata().map(|m| m.len()).ok();
    progress.set_length(total);

    let (rx, reader) = spawn_reader(file);
    let blocks = BlockReader {
        rx,
        current: Vec::new(),
        pos: 0,
        progress,
        max_line: opts.max_line_bytes,
        line_bytes: 0,
        lines: 0,
    };
    let rows = match opts.format {
        Format::Csv => scan_csv(blocks, name, opts, on_row),
        Format::Jsonl => scan_jsonl(blocks, name, opts, on_row),
        Format::Parquet => unreachable!("data::scan reads Parquet through data::parquet"),
    };
    // Dropping the receiver (inside scan_*) stops the reader thread early on errors.
    let (md5, bytes) = reader.join().expect("reader thread");
    let rows = rows?;
    Ok(ScanStats { rows, bytes, md5 })
}

type Blocks = mpsc::Receiver<std::io::Result<Vec<u8>>>;

/// The reader thread: reads 1 MiB blocks, hashes them and hands them over; a bounded channel keeps
/// memory flat. Joining it gives the MD5 and the byte count.
pub(super) fn spawn_reader(mut file: std::fs::File) -> (Blocks, std::thread::JoinHandle<(String, u64)>) {
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
    let reader = std::thread::spawn(move || {
        let mut md5 = Md5::new();
        let mut bytes = 0u64;
        loop {
            let mut block = vec![0u8; BLOCK];
            match read_full(&mut file, &mut block) {
                Ok(0) => break,
                Ok(n) => {
                    block.truncate(n);
                    md5.update(&block);
                    bytes += n as u64;
                    if tx.send(Ok(block)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
        (hex::encode(md5.finalize()), bytes)
    });
    (rx, reader)
}

fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

struct BlockReader<'p> {
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    progress: &'p Progress,
    /// The longest line allowed, the bytes of the current line so far, and the lines ended.
    max_line: usize,
    line_bytes: usize,
    lines: u64,
}

impl Read for BlockReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(block) => {
                    self.current = block?;
                    self.pos = 0;
                    self.progress.inc(self.current.len() as u64);
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        let chunk = &self.current[self.pos..self.pos + n];
        // Checked before the parser sees the bytes: a 1 GiB line fails after max_line bytes.
        for part in chunk.split_inclusive(|&b| b == b'\n') {
            self.line_bytes += part.len();
            if self.line_bytes > self.max_line.saturating_add(1) {
                return Err(std::io::Error::other(format!(
                    "line {} is longer than {} bytes (max_line_bytes in [dataset])",
                    self.lines + 1,
                    self.max_line
                )));
            }
            if part.ends_with(b"\n") {
                self.lines += 1;
                self.line_bytes = 0;
            }
        }
        buf[..n].copy_from_slice(chunk);
        self.pos += n;
        Ok(n)
    }
}

/// Column names from a header record (a UTF-8 byte-order mark and surrounding spaces removed).
pub(crate) fn header_names(record: &csv::ByteRecord) -> Vec<String> {
    record
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_owned()
        })
        .collect()
}

/// Where each declared column sits in the file's header (`what` names it in errors: "the header",
/// "the file's schema").
pub(super) fn map_header(
    name: &str,
    header: &[String],
    opts: &ReadOptions<'_>,
    what: &str,
) -> Result<Vec<usize>, DataError> {
    let mut indices = Vec::with_capacity(opts.columns.len());
    let mut missing = Vec::new();
    for spec in opts.columns {
        match header.iter().position(|h| h == &spec.name) {
            Some(i) => indices.push(i),
            None => missing.push(format!("'{}'{}", spec.name, suggest(&spec.name, header))),
        }
    }
    if !missing.is_empty() {
        return Err(DataError::file(
            name,
            format!("declared column(s) not in {what}: {}", missing.join(", ")),
        ));
    }
    if !opts.ignore_extra_columns {
        let extra: Vec<&str> = header
            .iter()
            .filter(|h| !opts.columns.iter().any(|c| &c.name == *h))
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            return Err(DataError::file(
                name,
                format!(
                    "column(s) not declared in the schema: '{}' (declare them, or set dataset.ignore_extra_columns = true)",
                    extra.join("', '")
                ),
            ));
        }
    }
    Ok(indices)
}

fn scan_csv(
    input: BlockReader<'_>,
    name: &str,
    opts: &ReadOptions<'_>,
    on_row: &mut RowFn<'_>,
) -> Result<u64, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(BLOCK)
        .from_reader(input);
    let csv_err = |e: csv::Error| match e.position() {
        Some(p) => DataError::Row {
            file: name.to_owned(),
            row: p.record().saturating_sub(1),
            line: p.line(),
            message: e.to_string(),
        },
        None => DataError::file(name, e.to_string()),
    };
    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(csv_err)? {
        return Err(DataError::file(name, "the file is empty (no header, no rows)"));
    }
    let header = header_names(&record);
    let width = header.len();
    let indices = map_header(name, &header, opts, "the header")?;
    let mut spare: Vec<Cell<'static>> = Vec::with_capacity(indices.len());
    let mut row = 0u64;
    while reader.read_byte_record(&mut record).map_err(csv_err)? {
        row += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != width {
            // A blank last line is not a row.
            if record.len() == 1 && record.get(0) == Some(b"") {
                row -= 1;
                continue;
            }
            return Err(DataError::Row {
                file: name.to_owned(),
                row,
                line,
                message: format!("has {} fields, the header has {width}", record.len()),
            });
        }
        let mut cells = recycle(std::mem::take(&mut spare));
        for (spec, &i) in opts.columns.iter().zip(&indices) {
            let raw = &record[i];
            let cell = parse_cell(raw, spec, opts.missing_values).map_err(|message| DataError::Cell {
                file: name.to_owned(),
                row,
                line,
                column: spec.name.clone(),
                message,
            })?;
            cells.push(cell);
        }
        on_row(row, &cells)?;
        spare = recycle(cells);
    }
    if row == 0 {
        return Err(DataError::file(name, "the file has a header but no data rows"));
    }
    Ok(row)
}

/// Reuses a cell buffer's allocation across rows whose borrows differ (the collect is in place).
pub(super) fn recycle<'b>(mut cells: Vec<Cell<'_>>) -> Vec<Cell<'b>> {
    cells.clear();
    cells.into_iter().map(|_| Cell::Missing).collect()
}

fn shown(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// Parses one CSV field against its column spec; the error is the message part.
#[inline]
pub(super) fn parse_cell<'a>(raw: &'a [u8], spec: &ColumnSpec, missing: &[String]) -> Result<Cell<'a>, String> {
    // Fast path for the common case, a plain finite number: no UTF-8 pass, no missing-value
    // comparisons. Anything else (missing markers, NaN, junk) takes the full path below.
    if spec.ty == ColumnType::Float
        && let Ok(v) = fast_float2::parse::<f64, _>(raw)
        && v.is_finite()
    {
        return Ok(Cell::Number(v));
    }
    parse_cell_slow(raw, spec, missing)
}

fn parse_cell_slow<'a>(raw: &'a [u8], spec: &ColumnSpec, missing: &[String]) -> Result<Cell<'a>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| format!("'{}' is not valid UTF-8", shown(raw)))?;
    let trimmed = text.trim();
    if missing.iter().any(|m| m == trimmed) {
        return if spec.nullable {
            Ok(Cell::Missing)
        } else {
            Err("missing value in a column that is not nullable".to_owned())
        };
    }
    match spec.ty {
        ColumnType::Float => {
            let v: f64 = trimmed
                .parse()
                .map_err(|_| format!("'{}' is not a float", shown(raw)))?;
            if !v.is_finite() && !spec.allow_non_finite {
                return Err(format!(
                    "'{trimmed}' is not a finite number (set allow_non_finite = true to accept it)"
                ));
            }
            Ok(Cell::Number(v))
        }
        ColumnType::Integer => parse_integer(trimmed)
            .map(Cell::Number)
            .ok_or_else(|| format!("'{}' is not an integer", shown(raw))),
        ColumnType::Boolean => parse_bool(trimmed)
            .map(Cell::Bool)
            .ok_or_else(|| format!("'{}' is not a boolean (true/false, yes/no, 1/0)", shown(raw))),
        ColumnType::Categorical | ColumnType::String => Ok(Cell::Text(text)),
    }
}

/// Integers as f64, exact up to 2^53; "6.0" counts as 6.
pub(crate) fn parse_integer(s: &str) -> Option<f64> {
    if let Ok(i) = s.parse::<i64>() {
        return (i.unsigned_abs() <= (1u64 << 53)).then_some(i as f64);
    }
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v.abs() <= (1u64 << 53) as f64).then_some(v)
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

fn scan_jsonl(
    input: BlockReader<'_>,
    name: &str,
    opts: &ReadOptions<'_>,
    on_row: &mut RowFn<'_>,
) -> Result<u64, DataError> {
    let mut lines = BufReader::with_capacity(BLOCK, input);
    let mut line = String::new();
    let mut line_no = 0u64;
    let mut row = 0u64;
    let mut spare: Vec<Cell<'static>> = Vec::with_capacity(opts.columns.len());
    let mut bytes = 0u64;
    loop {
        line.clear();
        let n = lines
            .read_line(&mut line)
            .map_err(|e| DataError::file(name, e.to_string()))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        row += 1;
        let row_err = |message: String| DataError::Row {
            file: name.to_owned(),
            row,
            line: line_no,
            message,
        };
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&line).map_err(|e| row_err(format!("not a JSON object: {e}")))?;
        if !opts.ignore_extra_columns
            && let Some(extra) = object.keys().find(|k| !opts.columns.iter().any(|c| &c.name == *k))
        {
            return Err(row_err(format!(
                "key '{extra}' is not declared in the schema{} (or set dataset.ignore_extra_columns = true)",
                suggest(extra, &opts.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>())
            )));
        }
        let mut cells = recycle(std::mem::take(&mut spare));
        for spec in opts.columns {
            let cell = json_cell(object.get(&spec.name), spec).map_err(|message| DataError::Cell {
                file: name.to_owned(),
                row,
                line: line_no,
                column: spec.name.clone(),
                message,
            })?;
            cells.push(cell);
        }
        on_row(row, &cells)?;
        spare = recycle(cells);
    }
    if bytes == 0 {
        return Err(DataError::file(name, "the file is empty"));
    }
    if row == 0 {
        return Err(DataError::file(name, "the file has no rows"));
    }
    Ok(row)
}

fn json_cell<'a>(value: Option<&'a serde_json::Value>, spec: &ColumnSpec) -> Result<Cell<'a>, String> {
    use serde_json::Value;
    let value = match value {
        None | Some(Value::Null) if spec.nullable => return Ok(Cell::Missing),
        None => return Err("key is missing in a column that is not nullable".to_owned()),
        Some(Value::Null) => return Err("null in a column that is not nullable".to_owned()),
        Some(v) => v,
    };
    let wrong = || format!("{value} is not {}", article(spec.ty));
    match (spec.ty, value) {
        (ColumnType::Float, Value::Number(n)) => n.as_f64().map(Cell::Number).ok_or_else(wrong),
        (ColumnType::Integer, Value::Number(n)) => n
            .as_f64()
            .and_then(|v| parse_integer(&v.to_string()))
            .map(Cell::Number)
            .ok_or_else(wrong),
        (ColumnType::Boolean, Value::Bool(b)) => Ok(Cell::Bool(*b)),
        (ColumnType::Categorical | ColumnType::String, Value::String(s)) => Ok(Cell::Text(s)),
        _ => Err(wrong()),
    }
}

fn article(ty: ColumnType) -> String {
    match ty {
        ColumnType::Integer => "an integer".into(),
        other => format!("a {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scan;

    fn spec(name: &str, ty: ColumnType, nullable: bool) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            ty,
            nullable,
            allow_non_finite: false,
        }
    }

    fn read(text: &str, format: Format, columns: &[ColumnSpec]) -> Result<(ScanStats, Vec<String>), DataError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, text).unwrap();
        let missing = vec!["".to_owned(), "NA".to_owned()];
        let opts = ReadOptions {
            format,
            delimiter: b',',
            missing_values: &missing,
            ignore_extra_columns: false,
            columns,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        };
        let mut rows = Vec::new();
        let stats = scan(&path, "data.csv", &opts, &Progress::hidden(), |_, cells| {
            rows.push(format!("{cells:?}"));
            Ok(())
        })?;
        Ok((stats, rows))
    }

    /// The error of reading CSV `text`, as shown to users.
    fn csv_err(text: &str) -> String {
        read(text, Format::Csv, &cols()).unwrap_err().to_string()
    }

    fn cols() -> Vec<ColumnSpec> {
        vec![
            spec("alcohol", ColumnType::Float, false),
            spec("quality", ColumnType::Integer, true),
            spec("colour", ColumnType::Categorical, false),
        ]
    }

    #[test]
    fn reads_typed_rows_and_hashes_the_bytes() {
        let text = "colour,alcohol,quality\nred,9.4,5\nwhite,10.5,NA\n";
        let (stats, rows) = read(text, Format::Csv, &cols()).unwrap();
        assert_eq!(stats.rows, 2);
        assert_eq!(stats.bytes, text.len() as u64);
        assert_eq!(stats.md5, format!("{:x}", Md5::digest(text.as_bytes())));
        assert_eq!(rows[1], r#"[Number(10.5), Missing, Text("white")]"#);
    }

    /// A file of 1 GiB without a line break (sparse, so it costs no disk) after its header: the
    /// read stops after `max_line_bytes` with an error naming the line, for CSV and JSON Lines,
    /// instead of buffering the gigabyte.
    #[test]
    fn a_line_longer_than_the_limit_is_an_error_not_a_gigabyte_in_memory() {
        for (format, header) in [
            (Format::Csv, "alcohol,quality,colour\n9.4,5,red\n"),
            (
                Format::Jsonl,
                "{\"alcohol\": 9.4, \"quality\": 5, \"colour\": \"red\"}\n",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("data");
            std::fs::write(&path, header).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(1 << 30)
                .unwrap();
            let missing = vec![String::new()];
            let columns = cols();
            let opts = ReadOptions {
                format,
                delimiter: b',',
                missing_values: &missing,
                ignore_extra_columns: false,
                columns: &columns,
                max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            };
            let mut rows = 0;
            let err = scan(&path, "big.csv", &opts, &Progress::hidden(), |_, _| {
                rows += 1;
                Ok(())
            })
            .unwrap_err()
            .to_string();
            let line = if format == Format::Csv { 3 } else { 2 };
            assert!(err.starts_with("big.csv"), "{err}");
            assert!(
                err.contains(&format!(
                    "line {line} is longer than 1048576 bytes (max_line_bytes in [dataset])"
                )),
                "{format:?}: {err}"
            );
        }
    }

    #[test]
    fn wrong_type_names_row_line_and_column() {
        let text = "alcohol,quality,colour\n9.4,5,red\nabc,5,red\n";
        let err = csv_err(text);
        assert_eq!(err, "data.csv: row 2 (line 3), column 'alcohol': 'abc' is not a float");
    }

    #[test]
    fn non_finite_and_missing_values_are_refused_where_not_allowed() {
        let err = csv_err("alcohol,quality,colour\nNaN,5,red\n");
        assert!(err.contains("'NaN' is not a finite number"), "{err}");
        let err = csv_err("alcohol,quality,colour\ninf,5,red\n");
        assert!(err.contains("'inf' is not a finite number"), "{err}");
        let err = csv_err("alcohol,quality,colour\n,5,red\n");
        assert!(err.contains("column 'alcohol': missing value"), "{err}");
    }

    #[test]
    fn ragged_empty_and_header_only_files_are_refused() {
        let err = csv_err("alcohol,quality,colour\n9.4,5\n");
        assert_eq!(err, "data.csv: row 1 (line 2): has 2 fields, the header has 3");
        let err = csv_err("");
        assert!(err.contains("empty"), "{err}");
        let err = csv_err("alcohol,quality,colour\n");
        assert!(err.contains("header but no data rows"), "{err}");
    }

    #[test]
    fn header_problems_name_the_column_and_suggest() {
        let err = csv_err("alcohl,quality,colour\n9.4,5,red\n");
        assert!(err.contains("'alcohol'; did you mean 'alcohl'?"), "{err}");
        let err = csv_err("alcohol,quality,colour,extra\n9.4,5,red,1\n");
        assert!(err.contains("not declared in the schema: 'extra'"), "{err}");
    }

    #[test]
    fn json_lines_are_checked_like_csv() {
        let text = "{\"alcohol\": 9.4, \"quality\": 5, \"colour\": \"red\"}\n\n{\"alcohol\": 9.9, \"quality\": null, \"colour\": \"red\"}\n";
        let (stats, rows) = read(text, Format::Jsonl, &cols()).unwrap();
        assert_eq!(stats.rows, 2);
        assert_eq!(rows[1], r#"[Number(9.9), Missing, Text("red")]"#);
        let err = read(
            "{\"alcohol\": \"9.4\", \"quality\": 5, \"colour\": \"red\"}\n",
            Format::Jsonl,
            &cols(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "data.csv: row 1 (line 1), column 'alcohol': \"9.4\" is not a float"
        );
        let err = read("{\"alcohol\": 1\n", Format::Jsonl, &cols())
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 1 (line 1): not a JSON object"), "{err}");
    }

    #[test]
    fn a_large_file_streams_through_several_blocks() {
        let mut text = String::from("alcohol,quality,colour\n");
        for i in 0..400_000 {
            text.push_str(&format!("{}.5,{},red\n", i % 15, i % 10));
        }
        let (stats, rows) = read(&text, Format::Csv, &cols()).unwrap();
        assert!(text.len() > 2 * BLOCK);
        assert_eq!(stats.rows, 400_000);
        assert_eq!(rows.last().unwrap(), r#"[Number(9.5), Number(9.0), Text("red")]"#);
    }
}
