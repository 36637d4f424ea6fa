//! Parquet sources, read through the `parquet` crate's arrow reader: only the declared columns
//! (a projection), in batches of [`BATCH_ROWS`] rows, page by page, so memory holds a few pages
//! per column and one batch, whatever the file's size. Rows come out as the CSV reader's
//! [`Cell`]s, so everything after the read is the same for both formats. A second thread hashes
//! the file's bytes meanwhile (the MD5 is the DVC content address, as for CSV).
//!
//! How a Parquet column is read as a declared type:
//!
//! | in the file                   | float | integer        | boolean | categorical, string |
//! |-------------------------------|-------|----------------|---------|---------------------|
//! | float, double                 | yes   | whole values   | no      | no                  |
//! | int8..64, uint8..64           | yes   | up to 2^53     | no      | as decimal text     |
//! | decimal                       | yes   | whole values   | no      | as text (`1.50`)    |
//! | boolean                       | no    | no             | yes     | `true` / `false`    |
//! | string (also dictionary)      | parsed as a CSV field would be, `missing_values` too  |||
//! | null (every value missing)    | missing everywhere                                    |||
//!
//! Other types (timestamps, dates, binary, lists, structs) are refused for a declared column and
//! skipped otherwise. A float32 value is read as its shortest decimal form (9.4f32 is 9.4, the
//! number a CSV of it would hold), not as the f64 nearest the f32. A null is a missing value.
//! Row groups and rows in messages are 1-based, rows counted from the start of the file.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowDictionaryKeyType, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type, DecimalType, Float16Type,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{AnyDictionaryArray, PrimitiveArray, StringViewArray};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, BooleanArray, GenericStringArray, OffsetSizeTrait};
use arrow_schema::DataType;
use md5::{Digest, Md5};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;

use super::read::{Cell, ReadOptions, RowFn, ScanStats, map_header, parse_cell, recycle};
use super::{ColumnSpec, ColumnType, DataError};
use crate::progress::Progress;

/// Rows per batch: a batch of the declared columns is what memory holds besides the pages.
const BATCH_ROWS: usize = 8192;

/// The largest integer an f64 holds exactly, and so the largest `integer` value read.
const MAX_EXACT: u64 = 1 << 53;

/// What a Parquet column holds, as far as its type tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Arrow's null type: no value at all (pandas writes it for a column of `None`).
    Nulls,
    Boolean,
    Integer,
    Float,
    Decimal,
    Text,
}

impl Kind {
    /// The kind of an arrow type, or `None` for a type that is not read.
    fn of(dt: &DataType) -> Option<Kind> {
        Some(match dt {
            DataType::Null => Kind::Nulls,
            DataType::Boolean => Kind::Boolean,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => Kind::Integer,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Kind::Float,
            DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..) => {
                Kind::Decimal
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Text,
            DataType::Dictionary(_, values) => match Kind::of(values)? {
                Kind::Nulls => return None,
                kind => kind,
            },
            _ => return None,
        })
    }

    /// Whether a value of this kind can be read as `ty`; the error says what to do instead.
    fn check(self, ty: ColumnType) -> Result<(), &'static str> {
        use ColumnType as T;
        match (self, ty) {
            (Kind::Nulls | Kind::Text, _) => Ok(()),
            (Kind::Boolean, T::Boolean | T::Categorical | T::String) => Ok(()),
            (Kind::Boolean, _) => Err("declare it boolean"),
            (Kind::Integer | Kind::Decimal, T::Boolean) => Err("declare it integer or float"),
            (Kind::Integer | Kind::Decimal, _) => Ok(()),
            (Kind::Float, T::Float | T::Integer) => Ok(()),
            (Kind::Float, _) => Err("declare it float"),
        }
    }
}

/// One value as the file holds it.
#[derive(Debug, Clone, Copy)]
enum Raw<'b> {
    Null,
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Text(&'b str),
    /// Text written into the column's buffer (decimals).
    Buffered,
}

/// A batch column read value by value; `buf` is the column's scratch text.
trait Values {
    fn get(&self, i: usize, buf: &mut String) -> Raw<'_>;
}

/// The native values of the primitive types read.
trait Native: Copy {
    fn raw(self, buf: &mut String) -> Raw<'static>;
}

macro_rules! native {
    ($variant:ident as $as:ty: $($t:ty),*) => {$(
        impl Native for $t {
            fn raw(self, _: &mut String) -> Raw<'static> {
                Raw::$variant(self as $as)
            }
        }
    )*};
}
native!(Int as i64: i8, i16, i32, i64);
native!(UInt as u64: u8, u16, u32, u64);
native!(Float as f64: f64);

impl Native for f32 {
    /// Its shortest decimal form: what a CSV of the value holds, and what its writer meant.
    fn raw(self, buf: &mut String) -> Raw<'static> {
        if !self.is_finite() {
            return Raw::Float(f64::from(self));
        }
        buf.clear();
        write!(buf, "{self}").expect("write to a string");
        Raw::Float(buf.parse().expect("a float's own text parses"))
    }
}

impl<T: ArrowPrimitiveType> Values for PrimitiveArray<T>
where
    T::Native: Native,
{
    fn get(&self, i: usize, buf: &mut String) -> Raw<'_> {
        if self.is_null(i) {
            Raw::Null
        } else {
            self.value(i).raw(buf)
        }
    }
}

impl Values for BooleanArray {
    fn get(&self, i: usize, _: &mut String) -> Raw<'_> {
        if self.is_null(i) {
            Raw::Null
        } else {
            Raw::Bool(self.value(i))
        }
    }
}

impl<O: OffsetSizeTrait> Values for GenericStringArray<O> {
    fn get(&self, i: usize, _: &mut String) -> Raw<'_> {
        if self.is_null(i) {
            Raw::Null
        } else {
            Raw::Text(self.value(i))
        }
    }
}

impl Values for StringViewArray {
    fn get(&self, i: usize, _: &mut String) -> Raw<'_> {
        if self.is_null(i) {
            Raw::Null
        } else {
            Raw::Text(self.value(i))
        }
    }
}

/// Decimals as their text (`1.50`), which is parsed as a CSV field would be.
struct Decimals<'b, T: DecimalType>(&'b PrimitiveArray<T>);

impl<T: DecimalType> Values for Decimals<'_, T> {
    fn get(&self, i: usize, buf: &mut String) -> Raw<'_> {
        if self.0.is_null(i) {
            return Raw::Null;
        }
        buf.clear();
        buf.push_str(&self.0.value_as_string(i));
        Raw::Buffered
    }
}

/// A dictionary-encoded column (pandas categoricals, pyarrow's `dictionary_encode`).
struct Dictionary<'b> {
    array: &'b dyn AnyDictionaryArray,
    keys: Vec<usize>,
    values: Box<dyn Values + 'b>,
}

impl Values for Dictionary<'_> {
    fn get(&self, i: usize, buf: &mut String) -> Raw<'_> {
        if self.array.is_null(i) {
            Raw::Null
        } else {
            self.values.get(self.keys[i], buf)
        }
    }
}

impl<V: Values + ?Sized> Values for &V {
    fn get(&self, i: usize, buf: &mut String) -> Raw<'_> {
        (**self).get(i, buf)
    }
}

struct Nulls;

impl Values for Nulls {
    fn get(&self, _: usize, _: &mut String) -> Raw<'_> {
        Raw::Null
    }
}

/// Reads `array` value by value; `None` for a type [`Kind::of`] refuses (checked before the read).
fn values(array: &ArrayRef) -> Option<Box<dyn Values + '_>> {
    fn dictionary<K: ArrowDictionaryKeyType>(array: &ArrayRef) -> Option<Box<dyn Values + '_>> {
        let dict = array.as_dictionary::<K>();
        let any: &dyn AnyDictionaryArray = dict;
        // Keys of an empty dictionary are all null; normalized_keys would panic on it.
        if any.values().is_empty() {
            return Some(Box::new(Nulls));
        }
        Some(Box::new(Dictionary {
            array: any,
            keys: any.normalized_keys(),
            values: values(any.values())?,
        }))
    }
    Some(match array.data_type() {
        DataType::Null => Box::new(Nulls),
        DataType::Boolean => Box::new(array.as_boolean()),
        DataType::Int8 => Box::new(array.as_primitive::<Int8Type>()),
        DataType::Int16 => Box::new(array.as_primitive::<Int16Type>()),
        DataType::Int32 => Box::new(array.as_primitive::<Int32Type>()),
        DataType::Int64 => Box::new(array.as_primitive::<Int64Type>()),
        DataType::UInt8 => Box::new(array.as_primitive::<UInt8Type>()),
        DataType::UInt16 => Box::new(array.as_primitive::<UInt16Type>()),
        DataType::UInt32 => Box::new(array.as_primitive::<UInt32Type>()),
        DataType::UInt64 => Box::new(array.as_primitive::<UInt64Type>()),
        // Every f16 is exactly an f64 (and rare enough not to need a shortest form).
        DataType::Float16 => Box::new(
            array
                .as_primitive::<Float16Type>()
                .unary::<_, Float64Type>(|v| v.to_f64()),
        ),
        DataType::Float32 => Box::new(array.as_primitive::<Float32Type>()),
        DataType::Float64 => Box::new(array.as_primitive::<Float64Type>()),
        DataType::Decimal32(..) => Box::new(Decimals(array.as_primitive::<Decimal32Type>())),
        DataType::Decimal64(..) => Box::new(Decimals(array.as_primitive::<Decimal64Type>())),
        DataType::Decimal128(..) => Box::new(Decimals(array.as_primitive::<Decimal128Type>())),
        DataType::Decimal256(..) => Box::new(Decimals(array.as_primitive::<Decimal256Type>())),
        DataType::Utf8 => Box::new(array.as_string::<i32>()),
        DataType::LargeUtf8 => Box::new(array.as_string::<i64>()),
        DataType::Utf8View => Box::new(array.as_string_view()),
        DataType::Dictionary(key, _) => match key.as_ref() {
            DataType::Int8 => dictionary::<Int8Type>(array)?,
            DataType::Int16 => dictionary::<Int16Type>(array)?,
            DataType::Int32 => dictionary::<Int32Type>(array)?,
            DataType::Int64 => dictionary::<Int64Type>(array)?,
            DataType::UInt8 => dictionary::<UInt8Type>(array)?,
            DataType::UInt16 => dictionary::<UInt16Type>(array)?,
            DataType::UInt32 => dictionary::<UInt32Type>(array)?,
            DataType::UInt64 => dictionary::<UInt64Type>(array)?,
            _ => return None,
        },
        _ => return None,
    })
}

/// A file whose footer has been read.
struct Opened {
    file: File,
    len: u64,
    meta: ArrowReaderMetadata,
}

/// Opens `path` and reads its footer, with a clear error for what is not a readable Parquet file.
fn open(path: &Path, name: &str) -> Result<Opened, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    if len == 0 {
        return Err(DataError::file(name, "the file is empty"));
    }
    let mut head = [0u8; 4];
    let mut tail = [0u8; 4];
    let magic = |file: &mut File, at: u64, buf: &mut [u8; 4]| -> std::io::Result<bool> {
        if len < 8 {
            return Ok(false);
        }
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(buf)?;
        Ok(true)
    };
    let io = |e| DataError::io(path, e);
    let long_enough =
        magic(&mut file, 0, &mut head).map_err(io)? && magic(&mut file, len - 4, &mut tail).map_err(io)?;
    if !long_enough || &head != b"PAR1" {
        let why = if &head == b"PARE" {
            "an encrypted Parquet file, which wasmline does not read"
        } else {
            "not a Parquet file (it does not start with PAR1)"
        };
        return Err(DataError::file(name, why));
    }
    if &tail != b"PAR1" {
        return Err(DataError::file(
            name,
            "a truncated Parquet file: it starts as one but does not end with its footer",
        ));
    }
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| DataError::file(name, format!("cannot read the Parquet footer: {e}")))?;
    Ok(Opened { file, len, meta })
}

impl Opened {
    fn names(&self) -> Vec<String> {
        self.meta.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    fn data_type(&self, root: usize) -> &DataType {
        self.meta.schema().field(root).data_type()
    }

    /// Refuses a codec this build does not read before any row is, naming the column.
    fn check_codecs(&self, name: &str, roots: &[usize]) -> Result<(), DataError> {
        let schema = self.meta.parquet_schema();
        for group in self.meta.metadata().row_groups() {
            for (leaf, chunk) in group.columns().iter().enumerate() {
                let root = schema.get_column_root_idx(leaf);
                let codec = chunk.compression();
                let known = matches!(
                    codec,
                    Compression::UNCOMPRESSED
                        | Compression::SNAPPY
                        | Compression::GZIP(_)
                        | Compression::ZSTD(_)
                        | Compression::LZ4
                        | Compression::LZ4_RAW
                );
                if roots.contains(&root) && !known {
                    return Err(DataError::file(
                        name,
                        format!(
                            "column '{}' is compressed with {codec}, which wasmline does not read: write the file with snappy, zstd, gzip or lz4",
                            self.meta.schema().field(root).name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Where a row is: its row group and its row in the file (both 1-based).
#[derive(Debug, Clone, Copy)]
struct At {
    group: usize,
    row: u64,
}

/// Reads the root columns `roots` (indices into the file's schema, in the caller's order) row by
/// row: `per_row(at, raws, bufs)` with `raws[c]` the value of `roots[c]` and `bufs[c]` its text
/// where `raws[c]` is [`Raw::Buffered`]. Returns the number of rows.
fn read_rows(
    opened: &Opened,
    name: &str,
    roots: &[usize],
    progress: &Progress,
    mut per_row: impl FnMut(At, &[Raw<'_>], &mut [String]) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    opened.check_codecs(name, roots)?;
    // The reader returns the projected columns in the file's order.
    let mut projected = roots.to_vec();
    projected.sort_unstable();
    projected.dedup();
    let positions: Vec<usize> = roots
        .iter()
        .map(|r| projected.binary_search(r).expect("projected"))
        .collect();
    let mask = ProjectionMask::roots(opened.meta.parquet_schema(), projected.iter().copied());
    let mut row = 0u64;
    let mut shown = 0u64;
    let mut bufs = vec![String::new(); roots.len()];
    progress.set_length(Some(opened.len));
    // One reader per row group (each reads its pages one by one: memory holds a page per column
    // and a batch), so a page that does not decode is named with its group even where a batch
    // would have spanned two.
    for (g, meta) in opened.meta.metadata().row_groups().iter().enumerate() {
        let group = g + 1;
        let unreadable =
            |e: &dyn std::fmt::Display| DataError::file(name, format!("row group {group}: cannot read it: {e}"));
        let file = opened.file.try_clone().map_err(|e| DataError::io(Path::new(name), e))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, opened.meta.clone())
            .with_row_groups(vec![g])
            .with_projection(mask.clone())
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| unreadable(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| unreadable(&e))?;
            let columns: Vec<Box<dyn Values + '_>> = positions
                .iter()
                .map(|&p| values(batch.column(p)).expect("types checked before the read"))
                .collect();
            let mut raws: Vec<Raw<'_>> = Vec::with_capacity(columns.len());
            for i in 0..batch.num_rows() {
                row += 1;
                raws.clear();
                raws.extend(columns.iter().zip(bufs.iter_mut()).map(|(c, buf)| c.get(i, buf)));
                per_row(At { group, row }, &raws, &mut bufs)?;
            }
        }
        let bytes = meta.compressed_size().max(0) as u64;
        progress.inc(bytes);
        shown += bytes;
    }
    progress.inc(opened.len.saturating_sub(shown));
    Ok(row)
}

/// MD5 and size of the file's bytes, read in 1 MiB blocks; stops early (with `None`) once `stop`
/// is set, when the read failed and the digest is not needed.
fn hash_file(path: &Path, stop: &AtomicBool) -> std::io::Result<Option<(String, u64)>> {
    let mut file = File::open(path)?;
    let mut md5 = Md5::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        md5.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Some((hex::encode(md5.finalize()), bytes)))
}

/// Reads a Parquet file for [`super::scan`]: every row checked against `opts.columns` and handed
/// to `on_row` as cells, while another thread hashes the file.
pub(super) fn scan_parquet(
    path: &Path,
    name: &str,
    opts: &ReadOptions<'_>,
    progress: &Progress,
    on_row: &mut RowFn<'_>,
) -> Result<ScanStats, DataError> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let hasher = scope.spawn(|| hash_file(path, &stop));
        let rows = read_checked(path, name, opts, progress, on_row);
        if rows.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let hashed = hasher.join().expect("hash thread");
        let rows = rows?;
        let (md5, bytes) = hashed.map_err(|e| DataError::io(path, e))?.expect("not stopped");
        Ok(ScanStats { rows, bytes, md5 })
    })
}

fn read_checked(
    path: &Path,
    name: &str,
    opts: &ReadOptions<'_>,
    progress: &Progress,
    on_row: &mut RowFn<'_>,
) -> Result<u64, DataError> {
    let opened = open(path, name)?;
    let roots = map_header(name, &opened.names(), opts, "the file's schema")?;
    for (spec, &root) in opts.columns.iter().zip(&roots) {
        let dt = opened.data_type(root);
        let refused = match Kind::of(dt) {
            None => format!(
                "{} in the file, a type wasmline does not read (it reads booleans, integers, floats, decimals and strings): convert it when writing the file, or leave it out of dataset.columns and set ignore_extra_columns = true",
                describe(dt)
            ),
            Some(kind) => match kind.check(spec.ty) {
                Ok(()) => continue,
                Err(hint) => format!("{} in the file, which is not read as {}: {hint}", describe(dt), spec.ty),
            },
        };
        return Err(DataError::file(name, format!("column '{}' is {refused}", spec.name)));
    }
    let mut spare: Vec<Cell<'static>> = Vec::with_capacity(roots.len());
    let rows = read_rows(&opened, name, &roots, progress, |at, raws, bufs| {
        let mut cells = recycle(std::mem::take(&mut spare));
        for ((raw, buf), spec) in raws.iter().zip(bufs.iter_mut()).zip(opts.columns) {
            let cell = to_cell(*raw, buf, spec, opts.missing_values).map_err(|message| DataError::Value {
                file: name.to_owned(),
                group: at.group,
                row: at.row,
                column: spec.name.clone(),
                message,
            })?;
            cells.push(cell);
        }
        on_row(at.row, &cells)?;
        spare = recycle(cells);
        Ok(())
    })?;
    if rows == 0 {
        return Err(DataError::file(name, "the file has no rows"));
    }
    Ok(rows)
}

/// An arrow type as users know it from pyarrow and Spark.
fn describe(dt: &DataType) -> String {
    match dt {
        DataType::Float16 => "a float16 column".into(),
        DataType::Float32 => "a float column".into(),
        DataType::Float64 => "a double column".into(),
        DataType::Boolean => "a boolean column".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "a string column".into(),
        DataType::Dictionary(_, v) => format!("{} (dictionary-encoded)", describe(v)),
        other => format!("a column of type {other}"),
    }
}

/// One value as a checked cell of the declared type; the error is the message part.
fn to_cell<'a>(raw: Raw<'a>, buf: &'a mut String, spec: &ColumnSpec, missing: &[String]) -> Result<Cell<'a>, String> {
    use ColumnType as T;
    match (raw, spec.ty) {
        (Raw::Null, _) if spec.nullable => Ok(Cell::Missing),
        (Raw::Null, _) => Err("null in a column that is not nullable".into()),
        (Raw::Text(text), _) => parse_cell(text.as_bytes(), spec, missing),
        (Raw::Buffered, _) => parse_cell(buf.as_bytes(), spec, missing),
        (Raw::Float(v), T::Float) if !v.is_finite() && !spec.allow_non_finite => Err(format!(
            "{v} is not a finite number (set allow_non_finite = true to accept it)"
        )),
        (Raw::Float(v), T::Float) => Ok(Cell::Number(v)),
        (Raw::Float(v), T::Integer) if v.fract() == 0.0 && v.abs() <= MAX_EXACT as f64 => Ok(Cell::Number(v)),
        (Raw::Float(v), T::Integer) if v.fract() == 0.0 => {
            Err(format!("{v} is beyond 2^53, the largest integer read exactly"))
        }
        (Raw::Float(v), T::Integer) => Err(format!("{v} is not an integer")),
        (Raw::Int(v), T::Float) => Ok(Cell::Number(v as f64)),
        (Raw::UInt(v), T::Float) => Ok(Cell::Number(v as f64)),
        (Raw::Int(v), T::Integer) if v.unsigned_abs() <= MAX_EXACT => Ok(Cell::Number(v as f64)),
        (Raw::UInt(v), T::Integer) if v <= MAX_EXACT => Ok(Cell::Number(v as f64)),
        (Raw::Int(v), T::Integer) => Err(format!("{v} is beyond 2^53, the largest integer read exactly")),
        (Raw::UInt(v), T::Integer) => Err(format!("{v} is beyond 2^53, the largest integer read exactly")),
        (Raw::Int(v), T::Categorical | T::String) => {
            buf.clear();
            write!(buf, "{v}").expect("write to a string");
            Ok(Cell::Text(buf))
        }
        (Raw::UInt(v), T::Categorical | T::String) => {
            buf.clear();
            write!(buf, "{v}").expect("write to a string");
            Ok(Cell::Text(buf))
        }
        (Raw::Bool(b), T::Boolean) => Ok(Cell::Bool(b)),
        (Raw::Bool(b), T::Categorical | T::String) => Ok(Cell::Text(if b { "true" } else { "false" })),
        // Refused by Kind::check before the read.
        (raw, ty) => Err(format!("{raw:?} cannot be read as {ty}")),
    }
}

/// A top-level column of a Parquet file, for `wasmline init`.
#[derive(Debug, Clone)]
pub(crate) struct ParquetColumn {
    pub name: String,
    /// What it holds; `None` for a type that is not read.
    pub kind: Option<Kind>,
    /// Its type as users know it (for messages).
    pub described: String,
}

/// The file's top-level columns.
pub(crate) fn parquet_columns(path: &Path, name: &str) -> Result<Vec<ParquetColumn>, DataError> {
    let opened = open(path, name)?;
    Ok(opened
        .meta
        .schema()
        .fields()
        .iter()
        .map(|f| ParquetColumn {
            name: f.name().clone(),
            kind: Kind::of(f.data_type()),
            described: describe(f.data_type()),
        })
        .collect())
}

/// Reads the named columns (of a kind [`Kind::of`] reads) as the text a CSV of the file would
/// hold: integers in decimal, floats with a point or an exponent (`5.0`, `1e20`, `NaN`, `inf`),
/// booleans as `true`/`false`, strings as they are; a null is `None`. For `wasmline init`, which
/// infers types from text. Returns the number of rows.
pub(crate) fn scan_parquet_text(
    path: &Path,
    name: &str,
    columns: &[String],
    mut on_row: impl FnMut(&[Option<&str>]),
) -> Result<u64, DataError> {
    let opened = open(path, name)?;
    let names = opened.names();
    let roots: Vec<usize> = columns
        .iter()
        .map(|c| names.iter().position(|n| n == c).expect("a column of the file"))
        .collect();
    let mut texts: Vec<Option<&'static str>> = Vec::with_capacity(roots.len());
    read_rows(&opened, name, &roots, &Progress::hidden(), |_, raws, bufs| {
        let mut row = recycle_texts(std::mem::take(&mut texts));
        for (raw, buf) in raws.iter().zip(bufs.iter_mut()) {
            row.push(as_text(*raw, buf));
        }
        on_row(&row);
        texts = recycle_texts(row);
        Ok(())
    })
}

fn recycle_texts<'b>(mut texts: Vec<Option<&str>>) -> Vec<Option<&'b str>> {
    texts.clear();
    texts.into_iter().map(|_| None).collect()
}

fn as_text<'a>(raw: Raw<'a>, buf: &'a mut String) -> Option<&'a str> {
    let mut write = |args: std::fmt::Arguments<'_>| {
        buf.clear();
        buf.write_fmt(args).expect("write to a string");
    };
    match raw {
        Raw::Null => return None,
        Raw::Text(t) => return Some(t),
        Raw::Bool(b) => return Some(if b { "true" } else { "false" }),
        Raw::Buffered => {}
        Raw::Float(v) => write(format_args!("{v:?}")),
        Raw::Int(v) => write(format_args!("{v}")),
        Raw::UInt(v) => write(format_args!("{v}")),
    }
    Some(buf)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::StringDictionaryBuilder;
    use arrow_array::{
        Decimal128Array, Float32Array, Float64Array, Int32Array, Int64Array, LargeStringArray, RecordBatch,
        StringArray, TimestampMicrosecondArray, UInt64Array,
    };
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{GzipLevel, ZstdLevel};
    use parquet::file::properties::WriterProperties;

    use super::*;
    use crate::data::{DEFAULT_MAX_LINE_BYTES, Format, scan};

    fn spec(name: &str, ty: ColumnType, nullable: bool) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            ty,
            nullable,
            allow_non_finite: false,
        }
    }

    /// Writes `columns` as a Parquet file with row groups of `group_rows` rows.
    fn write(path: &Path, columns: Vec<(&str, ArrayRef)>, group_rows: usize, codec: Compression) {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .set_compression(codec)
            .build();
        let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn options<'a>(columns: &'a [ColumnSpec], missing: &'a [String], ignore_extra: bool) -> ReadOptions<'a> {
        ReadOptions {
            format: Format::Parquet,
            delimiter: b',',
            missing_values: missing,
            ignore_extra_columns: ignore_extra,
            columns,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Every row of `path` as the cells' debug text, or the error as users see it.
    fn read(path: &Path, columns: &[ColumnSpec], ignore_extra: bool) -> Result<(ScanStats, Vec<String>), String> {
        let missing = ["".to_owned(), "NA".to_owned()];
        let opts = options(columns, &missing, ignore_extra);
        let mut rows = Vec::new();
        let stats = scan(path, "data.parquet", &opts, &Progress::hidden(), |_, cells| {
            rows.push(format!("{cells:?}"));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((stats, rows))
    }

    fn err(path: &Path, columns: &[ColumnSpec]) -> String {
        read(path, columns, false).unwrap_err()
    }

    fn floats(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    /// `n` good rows of alcohol (double), quality (int64), colour (string).
    fn wine(n: usize) -> Vec<(&'static str, ArrayRef)> {
        let alcohol: Vec<Option<f64>> = (0..n).map(|i| Some(9.0 + (i % 50) as f64 / 10.0)).collect();
        let quality: Vec<Option<i64>> = (0..n).map(|i| Some(3 + (i % 6) as i64)).collect();
        let colour: Vec<Option<&str>> = (0..n).map(|i| Some(if i % 3 == 0 { "red" } else { "white" })).collect();
        vec![
            ("alcohol", floats(&alcohol)),
            ("quality", Arc::new(Int64Array::from(quality))),
            ("colour", Arc::new(StringArray::from(colour))),
        ]
    }

    fn wine_specs() -> Vec<ColumnSpec> {
        vec![
            spec("alcohol", ColumnType::Float, false),
            spec("quality", ColumnType::Integer, false),
            spec("colour", ColumnType::Categorical, false),
        ]
    }

    /// The same rows through the Parquet reader (every codec users meet, several row groups) and
    /// through the CSV reader give the same cells; the MD5 and size are those of the file's bytes.
    #[test]
    fn every_type_reads_as_the_same_rows_as_csv() {
        let dir = tempfile::tempdir().unwrap();
        let n = 1000;
        let mut dict = StringDictionaryBuilder::<Int32Type>::new();
        let mut csv = String::from("alcohol,quality,colour,grade,density,price,big,flag,note,label\n");
        for i in 0..n {
            if i % 7 == 0 {
                dict.append_null();
            } else {
                dict.append_value(["low", "mid", "high"][i % 3]);
            }
        }
        let density: Vec<Option<f32>> = (0..n).map(|i| Some(0.99 + i as f32 / 100_000.0)).collect();
        let price: Vec<Option<i128>> = (0..n).map(|i| (i % 5 != 0).then_some(1050 + i as i128)).collect();
        let big: Vec<Option<u64>> = (0..n).map(|i| Some(i as u64 * 1000)).collect();
        let flag: Vec<Option<bool>> = (0..n).map(|i| Some(i % 2 == 0)).collect();
        let note: Vec<Option<String>> = (0..n)
            .map(|i| match i % 4 {
                0 => None,
                1 => Some("NA".to_owned()),
                _ => Some(format!("{}.5", i)),
            })
            .collect();
        let label: Vec<Option<i32>> = (0..n).map(|i| Some((i % 3) as i32)).collect();
        for i in 0..n {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                9.0 + (i % 50) as f64 / 10.0,
                3 + i % 6,
                if i % 3 == 0 { "red" } else { "white" },
                if i % 7 == 0 { "" } else { ["low", "mid", "high"][i % 3] },
                density[i].unwrap(),
                price[i]
                    .map(|p| format!("{}.{:02}", p / 100, p % 100))
                    .unwrap_or_default(),
                big[i].unwrap(),
                flag[i].unwrap(),
                note[i].clone().unwrap_or_default(),
                label[i].unwrap(),
            ));
        }
        let mut columns = wine(n);
        columns.extend([
            ("grade", Arc::new(dict.finish()) as ArrayRef),
            ("density", Arc::new(Float32Array::from(density))),
            (
                "price",
                Arc::new(Decimal128Array::from(price).with_precision_and_scale(10, 2).unwrap()),
            ),
            ("big", Arc::new(UInt64Array::from(big))),
            ("flag", Arc::new(BooleanArray::from(flag))),
            ("note", Arc::new(LargeStringArray::from(note))),
            ("label", Arc::new(Int32Array::from(label))),
        ]);
        let mut specs = wine_specs();
        specs.extend([
            spec("grade", ColumnType::Categorical, true),
            spec("density", ColumnType::Float, false),
            spec("price", ColumnType::Float, true),
            spec("big", ColumnType::Integer, false),
            spec("flag", ColumnType::Boolean, false),
            spec("note", ColumnType::Float, true),
            spec("label", ColumnType::Categorical, false),
        ]);
        let csv_path = dir.path().join("data.csv");
        std::fs::write(&csv_path, &csv).unwrap();
        let missing = ["".to_owned(), "NA".to_owned()];
        let mut csv_opts = options(&specs, &missing, false);
        csv_opts.format = Format::Csv;
        let mut expected = Vec::new();
        scan(&csv_path, "data.csv", &csv_opts, &Progress::hidden(), |_, cells| {
            expected.push(format!("{cells:?}"));
            Ok(())
        })
        .unwrap();

        for codec in [
            Compression::SNAPPY,
            Compression::ZSTD(ZstdLevel::default()),
            Compression::GZIP(GzipLevel::default()),
            Compression::LZ4_RAW,
            Compression::UNCOMPRESSED,
        ] {
            let path = dir.path().join("data.parquet");
            write(&path, columns.clone(), 300, codec);
            let (stats, rows) = read(&path, &specs, false).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(stats.rows, n as u64);
            assert_eq!(stats.bytes, bytes.len() as u64);
            assert_eq!(stats.md5, format!("{:x}", Md5::digest(&bytes)), "{codec}");
            assert_eq!(rows, expected, "{codec}");
        }
        // A few cells spelled out: float32 as its shortest decimal, a decimal, a dictionary null.
        assert_eq!(
            expected[7],
            r#"[Number(9.7), Number(4.0), Text("white"), Missing, Number(0.99007), Number(10.57), Number(7000.0), Bool(false), Number(7.5), Text("1")]"#
        );
    }

    /// 3 row groups of 100 rows: a null at row 170 of the file is in group 2, and the message says
    /// so with the column; the rows before it were handed over, the ones after were not.
    #[test]
    fn a_null_in_a_column_that_is_not_nullable_names_group_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        let mut columns = wine(300);
        let mut alcohol: Vec<Option<f64>> = (0..300).map(|i| Some(i as f64)).collect();
        alcohol[169] = None;
        columns[0].1 = floats(&alcohol);
        write(&path, columns, 100, Compression::SNAPPY);
        let missing = [String::new()];
        let specs = wine_specs();
        let opts = options(&specs, &missing, false);
        let mut seen = 0;
        let e = scan(&path, "data.parquet", &opts, &Progress::hidden(), |_, _| {
            seen += 1;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "data.parquet: row group 2, row 170, column 'alcohol': null in a column that is not nullable"
        );
        assert_eq!(seen, 169);
        // Nullable, it is a missing value.
        let mut specs = wine_specs();
        specs[0].nullable = true;
        let (_, rows) = read(&path, &specs, false).unwrap();
        assert!(rows[169].starts_with("[Missing, "), "{}", rows[169]);
    }

    #[test]
    fn values_the_declared_type_cannot_hold_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        let with = |name: &str, array: ArrayRef| {
            let mut columns = wine(250);
            columns.retain(|(n, _)| *n != name);
            columns.push((if name == "alcohol" { "alcohol" } else { "quality" }, array));
            write(&path, columns, 100, Compression::SNAPPY);
            err(&path, &wine_specs())
        };
        let mut quality: Vec<Option<f64>> = (0..250).map(|_| Some(5.0)).collect();
        quality[120] = Some(2.5);
        assert_eq!(
            with("quality", floats(&quality)),
            "data.parquet: row group 2, row 121, column 'quality': 2.5 is not an integer"
        );
        let mut big: Vec<Option<i64>> = vec![Some(5); 250];
        big[249] = Some((1 << 53) + 1);
        assert_eq!(
            with("quality", Arc::new(Int64Array::from(big))),
            "data.parquet: row group 3, row 250, column 'quality': 9007199254740993 is beyond 2^53, the largest integer read exactly"
        );
        let mut text: Vec<Option<&str>> = vec![Some("9.5"); 250];
        text[3] = Some("abc");
        assert_eq!(
            with("alcohol", Arc::new(StringArray::from(text))),
            "data.parquet: row group 1, row 4, column 'alcohol': 'abc' is not a float"
        );
        for (value, shown) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf")] {
            let mut alcohol: Vec<Option<f64>> = vec![Some(9.5); 250];
            alcohol[200] = Some(value);
            assert_eq!(
                with("alcohol", floats(&alcohol)),
                format!(
                    "data.parquet: row group 3, row 201, column 'alcohol': {shown} is not a finite number (set allow_non_finite = true to accept it)"
                )
            );
        }
    }

    /// A type the declared one cannot come from is refused before any row is read.
    #[test]
    fn columns_of_a_type_that_cannot_be_read_as_declared_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        let mut columns = wine(10);
        columns.push((
            "when",
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1_700_000_000_000_000i64);
                10
            ])),
        ));
        write(&path, columns, 100, Compression::SNAPPY);
        let mut specs = wine_specs();
        specs.push(spec("when", ColumnType::Float, false));
        let e = err(&path, &specs);
        assert!(
            e.starts_with("data.parquet: column 'when' is a column of type Timestamp(µs) in the file, a type wasmline does not read"),
            "{e}"
        );
        // Left out of the schema with ignore_extra_columns, it is not even decoded.
        specs.pop();
        assert_eq!(read(&path, &specs, true).unwrap().0.rows, 10);
        assert!(err(&path, &specs).contains("column(s) not declared in the schema: 'when'"));

        let mut specs = wine_specs();
        specs[0].ty = ColumnType::Categorical;
        specs[1].ty = ColumnType::Boolean;
        assert_eq!(
            read(&path, &specs, true).unwrap_err(),
            "data.parquet: column 'alcohol' is a double column in the file, which is not read as categorical: declare it float"
        );
        specs[0].ty = ColumnType::Float;
        assert_eq!(
            read(&path, &specs, true).unwrap_err(),
            "data.parquet: column 'quality' is a column of type Int64 in the file, which is not read as boolean: declare it integer or float"
        );
        // An integer column read as categorical is its decimal text.
        specs[1].ty = ColumnType::Categorical;
        let (_, rows) = read(&path, &specs, true).unwrap();
        assert_eq!(rows[0], r#"[Number(9.0), Text("3"), Text("red")]"#);
    }

    #[test]
    fn a_missing_column_is_named_with_a_suggestion() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        let mut columns = wine(10);
        columns[0].0 = "alcohl";
        write(&path, columns, 100, Compression::SNAPPY);
        assert_eq!(
            err(&path, &wine_specs()),
            "data.parquet: declared column(s) not in the file's schema: 'alcohol'; did you mean 'alcohl'?"
        );
    }

    /// What is not a whole Parquet file gets an error naming the file, and no row is handed over.
    #[test]
    fn empty_foreign_truncated_and_corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        let specs = wine_specs();
        std::fs::write(&path, "").unwrap();
        assert_eq!(err(&path, &specs), "data.parquet: the file is empty");
        std::fs::write(&path, "alcohol,quality,colour\n9.4,5,red\n").unwrap();
        assert_eq!(
            err(&path, &specs),
            "data.parquet: not a Parquet file (it does not start with PAR1)"
        );

        write(&path, wine(3000), 1000, Compression::SNAPPY);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        assert_eq!(
            err(&path, &specs),
            "data.parquet: a truncated Parquet file: it starts as one but does not end with its footer"
        );
        // A footer that says it is longer than the file.
        let mut bad = whole.clone();
        let at = bad.len() - 8;
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        let e = err(&path, &specs);
        assert!(e.starts_with("data.parquet: cannot read the Parquet footer: "), "{e}");
        // The pages of row group 2 overwritten: the read stops there and names it, after handing
        // over the 1000 rows of group 1.
        let meta = ArrowReaderMetadata::load(&bytes::Bytes::from(whole.clone()), ArrowReaderOptions::new()).unwrap();
        let mut bad = whole.clone();
        for chunk in meta.metadata().row_group(1).columns() {
            let (start, len) = chunk.byte_range();
            bad[start as usize..(start + len) as usize].fill(0xff);
        }
        std::fs::write(&path, &bad).unwrap();
        let mut rows = 0;
        let missing = [String::new()];
        let opts = options(&specs, &missing, false);
        let e = scan(&path, "data.parquet", &opts, &Progress::hidden(), |_, _| {
            rows += 1;
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("data.parquet: row group 2: cannot read it: "), "{e}");
        assert_eq!(rows, 1000);

        // The right bytes under the wrong format: CSV and JSON Lines say it is Parquet.
        std::fs::write(&path, &whole).unwrap();
        let missing = [String::new()];
        for format in [Format::Csv, Format::Jsonl] {
            let mut opts = options(&specs, &missing, false);
            opts.format = format;
            let e = crate::data::check(&path, "data.parquet", &opts, &Progress::hidden()).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "data.parquet: a Parquet file, read as {}: set format = \"parquet\" in [dataset]",
                    format.extension()
                )
            );
        }

        // No rows at all.
        write(&path, wine(0), 100, Compression::SNAPPY);
        assert_eq!(err(&path, &specs), "data.parquet: the file has no rows");
    }

    /// init's view: every value as the text a CSV would hold, nulls as None.
    #[test]
    fn values_as_text_keep_floats_apart_from_integers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        let mut columns = wine(3);
        columns.push(("whole", floats(&[Some(5.0), None, Some(f64::NAN)])));
        write(&path, columns, 2, Compression::SNAPPY);
        let names: Vec<String> = ["whole", "quality", "colour"].map(String::from).to_vec();
        let mut rows = Vec::new();
        let n = scan_parquet_text(&path, "data.parquet", &names, |row| rows.push(format!("{row:?}"))).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            rows,
            [
                r#"[Some("5.0"), Some("3"), Some("red")]"#,
                r#"[None, Some("4"), Some("white")]"#,
                r#"[Some("NaN"), Some("5"), Some("white")]"#,
            ]
        );
        let kinds: Vec<Option<Kind>> = parquet_columns(&path, "data.parquet")
            .unwrap()
            .into_iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                Some(Kind::Float),
                Some(Kind::Integer),
                Some(Kind::Text),
                Some(Kind::Float)
            ]
        );
    }
}
