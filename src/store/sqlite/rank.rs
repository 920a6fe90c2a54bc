//! `omi_bm25(fts, counts, weight...)`: FTS5's own `bm25()` ranking, except that the number of
//! documents holding each phrase of the query comes from the caller (`counts`, the numbers
//! separated by spaces, in the order FTS5 numbers the phrases) instead of being counted anew.
//!
//! `bm25()` counts, for every query, the documents of the whole index that hold each phrase:
//! for a query of common words over 100,000 memories that walk (positions included, for the
//! phrase of the whole text) cost more than ranking the candidates themselves. The counts
//! change only when the index does, so `search.rs` keeps them between queries, keyed by the
//! index's state, and passes them here. Everything else (the per-document frequencies with the
//! column weights, the document length, `k1 = 1.2`, `b = 0.75`, the IDF floor) is `bm25()`'s
//! formula, as in `fts5_aux.c`, so scores are the same. When `counts` does not hold one count
//! per phrase, they are counted as `bm25()` does.
//!
//! FTS5 offers ranking functions only through its C interface, which rusqlite does not wrap:
//! this is the one module of the crate with `unsafe` code, and it only calls that interface.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use rusqlite::{Connection, ffi};

/// The SQL name.
pub(super) const FUNCTION: &str = "omi_bm25";

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Registers `omi_bm25` on `connection`.
pub(super) fn register(connection: &Connection) -> anyhow::Result<()> {
    // SAFETY: the handle is only used during this call, on the thread that owns the
    // connection, and every pointer given to SQLite outlives the call that uses it.
    unsafe {
        let db = connection.handle();
        let api = fts5_api(db).ok_or_else(|| anyhow::anyhow!("SQLite has no FTS5 interface"))?;
        let create = (*api)
            .xCreateFunction
            .ok_or_else(|| anyhow::anyhow!("FTS5 cannot create functions"))?;
        let rc = create(
            api,
            c"omi_bm25".as_ptr(),
            ptr::null_mut(),
            Some(omi_bm25),
            None,
        );
        anyhow::ensure!(rc == ffi::SQLITE_OK, "registering {FUNCTION} failed ({rc})");
    }
    Ok(())
}

/// The connection's `fts5_api`, handed out by `SELECT fts5(?1)` (the documented way).
unsafe fn fts5_api(db: *mut ffi::sqlite3) -> Option<*mut ffi::fts5_api> {
    let mut statement: *mut ffi::sqlite3_stmt = ptr::null_mut();
    // SAFETY: `db` is an open connection; the statement is finalized before returning and
    // `api` outlives the step that writes it.
    unsafe {
        let rc = ffi::sqlite3_prepare_v2(
            db,
            c"SELECT fts5(?1)".as_ptr(),
            -1,
            &mut statement,
            ptr::null_mut(),
        );
        if rc != ffi::SQLITE_OK {
            return None;
        }
        let mut api: *mut ffi::fts5_api = ptr::null_mut();
        ffi::sqlite3_bind_pointer(
            statement,
            1,
            (&mut api as *mut *mut ffi::fts5_api).cast::<c_void>(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        ffi::sqlite3_step(statement);
        ffi::sqlite3_finalize(statement);
        (!api.is_null()).then_some(api)
    }
}

/// What one query computes once: each phrase's IDF and the average document length.
struct QueryData {
    idf: Vec<f64>,
    average_length: f64,
    frequencies: Vec<f64>,
}

unsafe extern "C" fn drop_query_data(data: *mut c_void) {
    // SAFETY: `data` is the box `query_data` leaked, given back once by FTS5.
    drop(unsafe { Box::from_raw(data.cast::<QueryData>()) });
}

unsafe extern "C" fn count_row(
    _api: *const ffi::Fts5ExtensionApi,
    _fts: *mut ffi::Fts5Context,
    counter: *mut c_void,
) -> c_int {
    // SAFETY: `counter` is the `i64` `count_phrase` passes.
    unsafe { *counter.cast::<i64>() += 1 };
    ffi::SQLITE_OK
}

fn check(rc: c_int) -> Result<(), c_int> {
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

/// The caller's counts: whole numbers separated by spaces.
fn parse_counts(text: &[u8]) -> Option<Vec<i64>> {
    std::str::from_utf8(text)
        .ok()?
        .split_ascii_whitespace()
        .map(|n| n.parse().ok())
        .collect()
}

/// `bm25()`'s IDF of a phrase held by `hits` of `rows` documents.
fn idf(rows: i64, hits: i64) -> f64 {
    let idf = ((rows as f64 - hits as f64 + 0.5) / (hits as f64 + 0.5)).ln();
    if idf <= 0.0 { 1e-6 } else { idf }
}

/// `bm25()`'s score (not negated) of a document with the given weighted phrase frequencies.
fn score(idf: &[f64], frequencies: &[f64], length: f64, average_length: f64) -> f64 {
    idf.iter()
        .zip(frequencies)
        .map(|(idf, f)| idf * (f * (K1 + 1.0)) / (f + K1 * (1.0 - B + B * length / average_length)))
        .sum()
}

/// The query's data, computed at its first row and kept by FTS5 until the query ends.
unsafe fn query_data<'a>(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    counts: *mut ffi::sqlite3_value,
) -> Result<&'a mut QueryData, c_int> {
    // SAFETY: every call goes through the interface FTS5 handed to this row, with its context.
    unsafe {
        let get = api.xGetAuxdata.ok_or(ffi::SQLITE_ERROR)?;
        let existing = get(fts, 0).cast::<QueryData>();
        if !existing.is_null() {
            return Ok(&mut *existing);
        }
        let phrases = usize::try_from(api.xPhraseCount.ok_or(ffi::SQLITE_ERROR)?(fts))
            .map_err(|_| ffi::SQLITE_ERROR)?;
        let mut rows: i64 = 0;
        check(api.xRowCount.ok_or(ffi::SQLITE_ERROR)?(fts, &mut rows))?;
        let mut tokens: i64 = 0;
        check(api.xColumnTotalSize.ok_or(ffi::SQLITE_ERROR)?(
            fts,
            -1,
            &mut tokens,
        ))?;
        let given = if counts.is_null() {
            None
        } else {
            let text = ffi::sqlite3_value_text(counts);
            let length = usize::try_from(ffi::sqlite3_value_bytes(counts)).unwrap_or(0);
            if text.is_null() {
                None
            } else {
                parse_counts(std::slice::from_raw_parts(text, length))
            }
        };
        let hits = match given {
            Some(hits) if hits.len() == phrases => hits,
            _ => {
                let query = api.xQueryPhrase.ok_or(ffi::SQLITE_ERROR)?;
                let mut hits = Vec::with_capacity(phrases);
                for phrase in 0..phrases {
                    let mut count: i64 = 0;
                    check(query(
                        fts,
                        phrase as c_int,
                        (&mut count as *mut i64).cast::<c_void>(),
                        Some(count_row),
                    ))?;
                    hits.push(count);
                }
                hits
            }
        };
        let data = Box::new(QueryData {
            idf: hits.iter().map(|&hits| idf(rows, hits)).collect(),
            average_length: tokens as f64 / rows.max(1) as f64,
            frequencies: vec![0.0; phrases],
        });
        let data = Box::into_raw(data);
        let set = api.xSetAuxdata.ok_or(ffi::SQLITE_ERROR)?;
        check(set(fts, data.cast::<c_void>(), Some(drop_query_data)))?;
        Ok(&mut *data)
    }
}

/// The current row's score (not negated).
unsafe fn row_score(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    count: c_int,
    values: *mut *mut ffi::sqlite3_value,
) -> Result<f64, c_int> {
    // SAFETY: FTS5 passes a valid interface and context, and `count` values.
    unsafe {
        let api = &*api;
        let values: &[*mut ffi::sqlite3_value] = if values.is_null() || count <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts(values, count as usize)
        };
        let data = query_data(api, fts, values.first().copied().unwrap_or(ptr::null_mut()))?;
        data.frequencies.fill(0.0);
        let mut instances: c_int = 0;
        check(api.xInstCount.ok_or(ffi::SQLITE_ERROR)?(
            fts,
            &mut instances,
        ))?;
        let inst = api.xInst.ok_or(ffi::SQLITE_ERROR)?;
        for index in 0..instances {
            let (mut phrase, mut column, mut offset): (c_int, c_int, c_int) = (0, 0, 0);
            check(inst(fts, index, &mut phrase, &mut column, &mut offset))?;
            // The weights follow the counts: column `c`'s is value `c + 1`.
            let weight = usize::try_from(column)
                .ok()
                .and_then(|column| values.get(column + 1))
                .map_or(1.0, |value| ffi::sqlite3_value_double(*value));
            if let Some(frequency) = usize::try_from(phrase)
                .ok()
                .and_then(|phrase| data.frequencies.get_mut(phrase))
            {
                *frequency += weight;
            }
        }
        let mut length: c_int = 0;
        check(api.xColumnSize.ok_or(ffi::SQLITE_ERROR)?(
            fts,
            -1,
            &mut length,
        ))?;
        Ok(score(
            &data.idf,
            &data.frequencies,
            f64::from(length),
            data.average_length,
        ))
    }
}

unsafe extern "C" fn omi_bm25(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    context: *mut ffi::sqlite3_context,
    count: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // A panic must not unwind into C.
    let result = catch_unwind(AssertUnwindSafe(|| unsafe {
        row_score(api, fts, count, values)
    }));
    // SAFETY: `context` is this call's result slot.
    unsafe {
        match result {
            // Negated like `bm25()`: lower is better.
            Ok(Ok(score)) => ffi::sqlite3_result_double(context, -score),
            Ok(Err(rc)) => ffi::sqlite3_result_error_code(context, rc),
            Err(_) => ffi::sqlite3_result_error_code(context, ffi::SQLITE_ERROR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        register(&connection).unwrap();
        connection
            .execute_batch(
                "CREATE VIRTUAL TABLE t USING fts5(a, b, tokenize = 'porter unicode61');
                 INSERT INTO t (a, b) VALUES
                     ('peanut butter and peanuts', 'food'),
                     ('window seat on long flights', 'travel'),
                     ('a long walk', 'peanut'),
                     ('nothing here', 'at all'),
                     ('long long long flights', 'window');",
            )
            .unwrap();
        connection
    }

    fn scores(connection: &Connection, sql: &str, counts: &str) -> Vec<(i64, f64)> {
        let expression = r#"("window" OR "long" OR "flights" * OR "window seat on long flights")"#;
        let mut statement = connection.prepare(sql).unwrap();
        statement
            .query_map(rusqlite::params![expression, counts], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn scores_are_bm25s_with_counts_given_or_counted() {
        let connection = connection();
        let bm25 = scores(
            &connection,
            "SELECT rowid, bm25(t, 1.0, 0.5) FROM t WHERE t MATCH ?1 AND ?2 IS NOT NULL
             ORDER BY rowid",
            "",
        );
        assert_eq!(bm25.len(), 3);
        let ours = "SELECT rowid, omi_bm25(t, ?2, 1.0, 0.5) FROM t WHERE t MATCH ?1 ORDER BY rowid";
        // The documents holding each phrase, counted as `search.rs` counts them.
        let counted: Vec<String> = [
            r#""window""#,
            r#""long""#,
            r#""flights" *"#,
            r#""window seat on long flights""#,
        ]
        .iter()
        .map(|phrase| {
            connection
                .query_row("SELECT count(*) FROM t WHERE t MATCH ?1", [phrase], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap()
                .to_string()
        })
        .collect();
        let counted = counted.join(" ");
        // Given, missing (counted by the function), or not one per phrase (counted too).
        for counts in [counted.as_str(), "", "1 2"] {
            let given = scores(&connection, ours, counts);
            assert_eq!(given.len(), bm25.len());
            for ((row, ours), (bm25_row, bm25)) in given.iter().zip(&bm25) {
                assert_eq!(row, bm25_row);
                assert!(
                    (ours - bm25).abs() < 1e-9,
                    "{counts:?}: {ours} against {bm25}"
                );
            }
        }
        // Counts that are not the index's give other scores: they are what is used.
        let other = scores(&connection, ours, "4 4 4 4");
        assert!((other[0].1 - bm25[0].1).abs() > 1e-6);
    }

    #[test]
    fn counts_are_read_leniently() {
        assert_eq!(parse_counts(b"1 22  333"), Some(vec![1, 22, 333]));
        assert_eq!(parse_counts(b""), Some(vec![]));
        assert_eq!(parse_counts(b"1 x"), None);
        assert!(idf(100, 90) > 0.0);
    }
}
