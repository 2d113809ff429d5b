//! The checks a manifest passes before anything uses it. A dump directory may have been
//! written or altered by someone else, so nothing in it is taken on trust: names are
//! names, data file paths stay inside the data directory, numbers add up, and every
//! definition creates exactly the object it is recorded for, with the columns and
//! encodings the data files are said to hold.
//!
//! What this cannot tell: a manifest rewritten consistently (definitions, files, sizes,
//! hashes and totals all changed together) by someone able to write the dump. It can
//! only make such a manifest unable to do more than a dump can: create the objects it
//! names in the databases it names and load rows into them.

use std::collections::HashSet;

use super::definition::{self, Expected, ObjectKind};
use super::layout::DATA_DIR;
use super::manifest::{ColumnEncoding, Database, Manifest, Sequence, StoredObject, Table};
use crate::connect::Flavor;

/// The longest identifier MySQL and MariaDB accept, in characters.
const MAX_NAME_CHARS: usize = 64;

/// Checks a manifest as read from disk. The error names the object concerned.
pub fn manifest(m: &Manifest) -> Result<(), String> {
    let mut paths = HashSet::new();
    let mut databases = HashSet::new();
    let mut views = HashSet::new();
    for db in &m.databases {
        name("database", &db.name)?;
        if !databases.insert(db.name.as_str()) {
            return Err(format!("database '{}' is listed twice", db.name));
        }
        let of_db = format!("database {}", printable(&crate::sql::ident(&db.name)));
        charset_name(&db.charset, "character set", &of_db)?;
        charset_name(&db.collation, "collation", &of_db)?;
        database(m.server.flavor, db, &mut paths)?;
        views.extend(db.views.iter().map(|v| (db.name.as_str(), v.name.as_str())));
    }
    let ordered: Vec<(&str, &str)> = m
        .view_order
        .iter()
        .map(|v| (v.database.as_str(), v.name.as_str()))
        .collect();
    if ordered.len() != views.len()
        || ordered.iter().collect::<HashSet<_>>().len() != views.len()
        || !ordered.iter().all(|v| views.contains(v))
    {
        return Err("view_order does not list every view exactly once".into());
    }
    totals(m)?;
    accounts(m)
}

/// Each account statement concerns its own account: a dump cannot create or grant to
/// any other (restored only with `restore --users`).
fn accounts(m: &Manifest) -> Result<(), String> {
    let mut seen = HashSet::new();
    for a in &m.accounts {
        let ok = a.user.chars().count() <= 128
            && !a.user.contains('\0')
            && a.host
                .as_deref()
                .is_none_or(|h| h.len() <= 255 && !h.contains('\0'))
            && (a.host.is_some() || (a.role && !a.user.is_empty()));
        if !ok {
            return Err(format!(
                "account {} has a malformed name",
                printable(&a.name())
            ));
        }
        if !seen.insert((a.user.as_str(), a.host.as_deref())) {
            return Err(format!("account {} is listed twice", printable(&a.name())));
        }
        for sql in std::iter::once(&a.create_sql).chain(&a.grants) {
            definition::check_account_statement(sql, &a.user, a.host.as_deref(), a.role)
                .map_err(|e| format!("a statement of account {} {e}", printable(&a.name())))?;
        }
        if !a
            .create_sql
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("CREATE")
        {
            return Err(format!(
                "account {}: its first statement is not a CREATE",
                printable(&a.name())
            ));
        }
    }
    Ok(())
}

/// Definitions only: used again after `--rename` has rewritten them.
pub fn definitions(m: &Manifest) -> Result<(), String> {
    for db in &m.databases {
        for t in &db.tables {
            table_definition(m.server.flavor, &db.name, t)?;
        }
        for s in &db.sequences {
            sequence_definition(&db.name, s)?;
        }
        for (list, kinds) in object_lists(db) {
            for o in list {
                stored_object(db, o, kinds)?;
            }
        }
    }
    Ok(())
}

fn object_lists(db: &Database) -> [(&Vec<StoredObject>, &'static [&'static str]); 4] {
    [
        (&db.views, &["VIEW"]),
        (
            &db.routines,
            &["PROCEDURE", "FUNCTION", "PACKAGE", "PACKAGE BODY"],
        ),
        (&db.triggers, &["TRIGGER"]),
        (&db.events, &["EVENT"]),
    ]
}

fn database(flavor: Flavor, db: &Database, paths: &mut HashSet<String>) -> Result<(), String> {
    // Tables, sequences and views share one namespace.
    let mut relations = HashSet::new();
    for t in &db.tables {
        name("table", &t.name)?;
        if !relations.insert(t.name.as_str()) {
            return Err(format!("{} is listed twice", shown(&db.name, &t.name)));
        }
        table(flavor, &db.name, t, paths)?;
    }
    for s in &db.sequences {
        name("sequence", &s.name)?;
        if !relations.insert(s.name.as_str()) {
            return Err(format!("{} is listed twice", shown(&db.name, &s.name)));
        }
        if !s.next_value.is_empty() && s.next_value.parse::<i128>().is_err() {
            return Err(format!(
                "sequence {} has a next value that is not a number",
                shown(&db.name, &s.name)
            ));
        }
        sequence_definition(&db.name, s)?;
    }
    for v in &db.views {
        if !relations.insert(v.name.as_str()) {
            return Err(format!("{} is listed twice", shown(&db.name, &v.name)));
        }
    }
    let tables: HashSet<&str> = db.tables.iter().map(|t| t.name.as_str()).collect();
    for (list, kinds) in object_lists(db) {
        let mut seen = HashSet::new();
        for o in list {
            if !seen.insert((o.kind.as_str(), o.name.as_str())) {
                return Err(format!(
                    "{} {} is listed twice",
                    o.kind.to_lowercase(),
                    shown(&db.name, &o.name)
                ));
            }
            stored_object(db, o, kinds)?;
            if o.kind == "TRIGGER" && !o.table.as_deref().is_some_and(|t| tables.contains(t)) {
                return Err(format!(
                    "trigger {} belongs to no table of the dump",
                    shown(&db.name, &o.name)
                ));
            }
        }
    }
    Ok(())
}

fn sequence_definition(db: &str, s: &Sequence) -> Result<(), String> {
    let expected = expect(ObjectKind::Sequence, db, &s.name, None);
    definition::check(&s.create_sql, &expected)
        .map_err(|e| format!("the definition of sequence {} {e}", shown(db, &s.name)))
}

fn stored_object(db: &Database, o: &StoredObject, kinds: &[&str]) -> Result<(), String> {
    name(&o.kind.to_lowercase(), &o.name)?;
    let kind = ObjectKind::from_stored(&o.kind)
        .filter(|_| kinds.contains(&o.kind.as_str()))
        .ok_or_else(|| format!("object {} has an unexpected kind", shown(&db.name, &o.name)))?;
    let what = || format!("{} {}", o.kind.to_lowercase(), shown(&db.name, &o.name));
    charset_name(&o.character_set_client, "client character set", &what())?;
    charset_name(&o.collation_connection, "connection collation", &what())?;
    if let Some(c) = &o.database_collation {
        charset_name(c, "database collation", &what())?;
    }
    if let Some(mode) = &o.sql_mode {
        if !mode
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b',')
        {
            return Err(format!("{} has a malformed sql_mode", what()));
        }
    }
    if let Some(tz) = &o.time_zone {
        let ok = !tz.is_empty()
            && tz.len() <= 64
            && tz
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-:/_".contains(&b));
        if !ok {
            return Err(format!("{} has a malformed time zone", what()));
        }
    }
    let expected = expect(kind, &db.name, &o.name, o.table.as_deref());
    definition::check(&o.create_sql, &expected)
        .map_err(|e| format!("the definition of {} {e}", what()))
}

fn table(flavor: Flavor, db: &str, t: &Table, paths: &mut HashSet<String>) -> Result<(), String> {
    let this = || shown(db, &t.name);
    if !t
        .engine
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!("table {} has a malformed engine name", this()));
    }
    let mut column_names = HashSet::new();
    for c in &t.columns {
        name("column", &c.name)?;
        if !column_names.insert(c.name.as_str()) {
            return Err(format!("table {} lists column '{}' twice", this(), c.name));
        }
    }
    if t.columns.is_empty() && !t.files.is_empty() {
        return Err(format!("table {} has data files but no columns", this()));
    }
    for k in &t.chunk_key {
        name("column", k)?;
    }
    let (mut rows, mut raw) = (0u64, 0u64);
    for f in &t.files {
        data_file_path(&f.path).map_err(|e| format!("table {}: data file {e}", this()))?;
        if !paths.insert(f.path.clone()) {
            return Err(format!(
                "table {}: data file {} is listed twice",
                this(),
                f.path
            ));
        }
        if f.sha256.len() != 64
            || !f
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!("data file {} has a malformed sha256", f.path));
        }
        if f.rows_digest
            .as_deref()
            .is_some_and(|d| super::digest::RowsDigest::parse(d).is_none())
        {
            return Err(format!("data file {} has a malformed rows_digest", f.path));
        }
        if f.expected_warnings > f.rows {
            return Err(format!(
                "data file {} expects more warnings than it has rows",
                f.path
            ));
        }
        rows = rows.checked_add(f.rows).ok_or("row counts overflow")?;
        raw = raw.checked_add(f.raw_bytes).ok_or("byte counts overflow")?;
    }
    if rows != t.rows || raw != t.raw_bytes {
        return Err(format!(
            "table {} records {} rows and {} bytes but its data files add up to {rows} rows and {raw} bytes",
            this(),
            t.rows,
            t.raw_bytes
        ));
    }
    table_definition(flavor, db, t)
}

/// The definition creates this table, and the data files' columns are its columns, each
/// encoded as its type needs: a dump whose data and definition disagree is refused, not
/// loaded with default values.
fn table_definition(flavor: Flavor, db: &str, t: &Table) -> Result<(), String> {
    let this = || shown(db, &t.name);
    let expected = expect(ObjectKind::Table, db, &t.name, None);
    definition::check(&t.create_sql, &expected)
        .map_err(|e| format!("the definition of table {} {e}", this()))?;
    let (defined, versioned) = definition::table_columns(&t.create_sql)
        .map_err(|e| format!("the definition of table {} {e}", this()))?;
    let stored: Vec<_> = defined.iter().filter(|c| !c.generated).collect();
    let implicit_period = |n: &str| versioned && matches!(n, "row_start" | "row_end");
    let mut next = 0;
    for c in &t.columns {
        if implicit_period(&c.name) && !defined.iter().any(|d| d.name == c.name) {
            continue;
        }
        let Some(pos) = stored[next..].iter().position(|d| d.name == c.name) else {
            return Err(format!(
                "table {}: data column '{}' is not a stored column of its definition (or is out of order)",
                this(),
                c.name
            ));
        };
        let d = stored[next + pos];
        if pos != 0 {
            return Err(format!(
                "table {}: column '{}' of the definition is missing from the data files",
                this(),
                stored[next].name
            ));
        }
        let wanted = encoding_for(flavor, &d.type_word);
        if c.encoding != wanted {
            return Err(format!(
                "table {}: column '{}' has type {} but its data is encoded as {:?}",
                this(),
                c.name,
                d.type_word,
                c.encoding
            ));
        }
        next += 1;
    }
    if let Some(missing) = stored.get(next) {
        if !t.files.is_empty() || !t.columns.is_empty() {
            return Err(format!(
                "table {}: column '{}' of the definition is missing from the data files",
                this(),
                missing.name
            ));
        }
    }
    Ok(())
}

/// The encoding the dump gives a column of this type (see `catalog::TableInfo::data_columns`).
pub fn encoding_for(flavor: Flavor, type_word: &str) -> ColumnEncoding {
    match type_word {
        "bit" => ColumnEncoding::BitNumber,
        "enum" => ColumnEncoding::EnumIndex,
        "float" => ColumnEncoding::FloatAsDouble,
        "json" if flavor == Flavor::Mysql => ColumnEncoding::JsonText,
        "uuid" | "inet4" | "inet6" => ColumnEncoding::TypedText,
        _ => ColumnEncoding::Raw,
    }
}

fn totals(m: &Manifest) -> Result<(), String> {
    let tables: Vec<&Table> = m.databases.iter().flat_map(|d| &d.tables).collect();
    let sum =
        |f: &dyn Fn(&Table) -> u64| tables.iter().map(|t| f(t)).fold(0u64, u64::saturating_add);
    let expected = (
        tables.len() as u64,
        sum(&|t| t.rows),
        sum(&|t| t.raw_bytes),
        sum(&|t| {
            t.files
                .iter()
                .map(|f| f.stored_bytes)
                .fold(0, u64::saturating_add)
        }),
        sum(&|t| t.files.len() as u64),
    );
    let t = &m.totals;
    if (t.tables, t.rows, t.raw_bytes, t.stored_bytes, t.files) != expected {
        return Err(format!(
            "the totals ({} tables, {} rows, {} bytes, {} stored, {} files) do not add up to its tables' ({} tables, {} rows, {} bytes, {} stored, {} files)",
            t.tables, t.rows, t.raw_bytes, t.stored_bytes, t.files,
            expected.0, expected.1, expected.2, expected.3, expected.4
        ));
    }
    Ok(())
}

/// A data file path is `data/<name>`: one plain file name in the data directory, of the
/// characters the dump writes, never a way out of it.
pub fn data_file_path(path: &str) -> Result<(), String> {
    let leaf = path
        .strip_prefix(DATA_DIR)
        .and_then(|p| p.strip_prefix('/'))
        .ok_or_else(|| format!("'{}' is not in {DATA_DIR}/", printable(path)))?;
    let ok = !leaf.is_empty()
        && leaf.len() <= 255
        && !leaf.starts_with('.')
        && leaf
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%'));
    if !ok {
        return Err(format!(
            "'{}' is not a plain file name in {DATA_DIR}/",
            printable(path)
        ));
    }
    Ok(())
}

/// An identifier as the server allows it: 1 to 64 characters, no NUL.
fn name(what: &str, n: &str) -> Result<(), String> {
    if n.is_empty() || n.chars().count() > MAX_NAME_CHARS || n.contains('\0') {
        return Err(format!(
            "a {what} name is empty, longer than {MAX_NAME_CHARS} characters or holds NUL ('{}')",
            printable(n)
        ));
    }
    Ok(())
}

/// Character set and collation names are plain words; the restore also checks that the
/// target knows them.
fn charset_name(n: &str, what: &str, of: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > 64 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("{of}: malformed {what} '{}'", printable(n)));
    }
    Ok(())
}

fn expect<'a>(
    kind: ObjectKind,
    db: &'a str,
    name: &'a str,
    table: Option<&'a str>,
) -> Expected<'a> {
    Expected {
        kind,
        database: db,
        name,
        table,
    }
}

fn shown(db: &str, name: &str) -> String {
    printable(&crate::sql::qualified(db, name))
}

/// Text from the manifest in a message: control characters escaped, cut to 100 chars.
fn printable(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    match escaped.char_indices().nth(100) {
        Some((i, _)) => format!("{}...", &escaped[..i]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_paths_stay_in_the_data_directory() {
        assert!(data_file_path("data/shop.orders-0001.00000.0000.tsv.zst").is_ok());
        assert!(data_file_path("data/odd%20db-0003.00000.0000.tsv").is_ok());
        for bad in [
            "/etc/passwd",
            "data/../../etc/passwd",
            "data/..",
            "data/.hidden",
            "data/a/b",
            "data/",
            "manifest.json",
            "data\\x",
            "data/x\0y",
            "data/\u{e9}",
        ] {
            assert!(data_file_path(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn encodings_follow_the_column_type() {
        assert_eq!(
            encoding_for(Flavor::Mariadb, "enum"),
            ColumnEncoding::EnumIndex
        );
        assert_eq!(encoding_for(Flavor::Mariadb, "json"), ColumnEncoding::Raw);
        assert_eq!(
            encoding_for(Flavor::Mysql, "json"),
            ColumnEncoding::JsonText
        );
        assert_eq!(encoding_for(Flavor::Mysql, "varchar"), ColumnEncoding::Raw);
    }
}
