//! Reading what a database holds: tables with their columns and keys (from
//! information_schema, before the snapshot), and the definitions of every object (SHOW
//! CREATE, inside the snapshot). Definitions are read as raw bytes, so a routine written
//! under a latin1 client keeps its exact bytes.

use std::collections::{BTreeMap, HashMap};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::connect::Flavor;
use crate::error::{Error, Result, SqlContext};
use crate::format::definition::decode_definition;
use crate::format::manifest::{ColumnEncoding, DataColumn, Sequence, StoredObject};
use crate::format::validate::encoding_for;
use crate::sql::{ident, qualified};

/// A column as information_schema describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Name.
    pub name: String,
    /// `DATA_TYPE`, lower case (`int`, `varchar`, `json`...).
    pub data_type: String,
    /// Character set of string columns.
    pub charset: Option<String>,
    /// Collation of string columns.
    pub collation: Option<String>,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// VIRTUAL or STORED generated: never dumped as data.
    pub generated: bool,
    /// The explicit ROW START or ROW END column of a system-versioned table (MariaDB
    /// calls it generated, but its values are the table's history and are dumped).
    pub period: bool,
    /// `COLUMN_TYPE` (`enum('a','b')`, `varchar(10)`...) and `COLUMN_DEFAULT`: compared
    /// to tell whether the column changed, not dumped.
    pub full_type: String,
    /// See `full_type`.
    pub default: Option<String>,
}

/// A unique key usable to split a table.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueKey {
    /// Index name (`PRIMARY` for the primary key).
    pub name: String,
    /// Column names in index order.
    pub columns: Vec<String>,
    /// Whether any column is only indexed by a prefix.
    pub prefix: bool,
}

/// A base table as listed before the snapshot.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Database.
    pub database: String,
    /// Name.
    pub name: String,
    /// Storage engine.
    pub engine: String,
    /// Whether the engine supports transactions (and so the snapshot).
    pub transactional: bool,
    /// MariaDB system-versioned table.
    pub system_versioned: bool,
    /// The server's estimate of data size.
    pub estimated_bytes: u64,
    /// The server's estimate of rows.
    pub estimated_rows: u64,
    /// The server's estimate of the indexes' size.
    pub estimated_index_bytes: u64,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Primary key first, then other unique keys.
    pub unique_keys: Vec<UniqueKey>,
    /// `CREATE_TIME`, which DDL that rewrites the definition moves.
    pub create_time: Option<String>,
}

impl TableInfo {
    /// Whether `other` (the same table listed at another moment) has the same definition
    /// as far as a dump is concerned: columns, types, keys, engine, versioning.
    pub fn same_definition(&self, other: &TableInfo) -> bool {
        self.columns == other.columns
            && self.unique_keys == other.unique_keys
            && self.engine == other.engine
            && self.transactional == other.transactional
            && self.system_versioned == other.system_versioned
            && self.create_time == other.create_time
    }

    /// `db.table` for messages.
    pub fn display_name(&self) -> String {
        qualified(&self.database, &self.name)
    }

    /// The columns written to data files and how each is encoded. Generated columns are
    /// left out (the server computes them); invisible ones are kept.
    pub fn data_columns(&self, flavor: Flavor) -> Vec<DataColumn> {
        let mut cols: Vec<DataColumn> = self
            .columns
            .iter()
            .filter(|c| !c.generated)
            .map(|c| DataColumn {
                name: c.name.clone(),
                encoding: encoding_for(flavor, &c.data_type),
            })
            .collect();
        // Implicit period columns are hidden from information_schema; name them.
        if self.system_versioned && !self.columns.iter().any(|c| c.period) {
            for period in ["row_start", "row_end"] {
                if !cols.iter().any(|c| c.name == period) {
                    cols.push(DataColumn {
                        name: period.into(),
                        encoding: ColumnEncoding::Raw,
                    });
                }
            }
        }
        cols
    }
}

/// The SELECT expression that reads a column in its data-file encoding.
pub fn select_expr(col: &DataColumn) -> String {
    let c = ident(&col.name);
    match col.encoding {
        ColumnEncoding::Raw | ColumnEncoding::TypedText => c,
        ColumnEncoding::BitNumber | ColumnEncoding::EnumIndex => format!("{c}+0"),
        ColumnEncoding::FloatAsDouble => format!("CAST({c} AS DOUBLE)"),
        ColumnEncoding::JsonText => format!("CONVERT({c} USING utf8mb4)"),
    }
}

fn text(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i) {
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        Some(Value::Int(v)) => Some(v.to_string()),
        Some(Value::UInt(v)) => Some(v.to_string()),
        _ => None,
    }
}

fn bytes(row: &Row, i: usize) -> Option<Vec<u8>> {
    match row.as_ref(i) {
        Some(Value::Bytes(b)) => Some(b.clone()),
        _ => None,
    }
}

/// Databases that do not exist on the server, of those asked for.
pub async fn missing_databases(conn: &mut Conn, names: &[String]) -> Result<Vec<String>> {
    let existing: Vec<String> = conn
        .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
        .await
        .ctx(|| "listing databases".into())?;
    Ok(names
        .iter()
        .filter(|n| !existing.contains(n))
        .cloned()
        .collect())
}

/// Lists the base tables of a database with columns and unique keys.
pub async fn list_tables(conn: &mut Conn, db: &str) -> Result<Vec<TableInfo>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT t.TABLE_NAME, t.TABLE_TYPE, COALESCE(t.ENGINE, ''), COALESCE(e.TRANSACTIONS, 'NO'), \
             COALESCE(t.DATA_LENGTH, 0), COALESCE(t.TABLE_ROWS, 0), COALESCE(t.INDEX_LENGTH, 0), \
             CAST(t.CREATE_TIME AS CHAR) \
             FROM information_schema.TABLES t LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE \
             WHERE t.TABLE_SCHEMA = ? AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY t.TABLE_NAME",
            (db,),
        )
        .await
        .ctx(|| format!("listing the tables of {}", ident(db)))?;
    let mut columns = list_columns(conn, db).await?;
    let mut keys = list_unique_keys(conn, db).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let name = text(r, 0).unwrap_or_default();
            TableInfo {
                database: db.to_string(),
                columns: columns.remove(&name).unwrap_or_default(),
                unique_keys: keys.remove(&name).unwrap_or_default(),
                system_versioned: text(r, 1).as_deref() == Some("SYSTEM VERSIONED"),
                engine: text(r, 2).unwrap_or_default(),
                transactional: text(r, 3).as_deref() == Some("YES"),
                estimated_bytes: text(r, 4).and_then(|v| v.parse().ok()).unwrap_or(0),
                estimated_rows: text(r, 5).and_then(|v| v.parse().ok()).unwrap_or(0),
                estimated_index_bytes: text(r, 6).and_then(|v| v.parse().ok()).unwrap_or(0),
                create_time: text(r, 7),
                name,
            }
        })
        .collect())
}

async fn list_columns(conn: &mut Conn, db: &str) -> Result<HashMap<String, Vec<Column>>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), CHARACTER_SET_NAME, COLLATION_NAME, IS_NULLABLE, EXTRA, \
             COALESCE(GENERATION_EXPRESSION, ''), COLUMN_TYPE, COLUMN_DEFAULT \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .ctx(|| format!("listing the columns of {}", ident(db)))?;
    let mut by_table: HashMap<String, Vec<Column>> = HashMap::new();
    for r in &rows {
        let extra = text(r, 6).unwrap_or_default().to_ascii_uppercase();
        let period = matches!(text(r, 7).as_deref(), Some("ROW START" | "ROW END"));
        by_table
            .entry(text(r, 0).unwrap_or_default())
            .or_default()
            .push(Column {
                name: text(r, 1).unwrap_or_default(),
                data_type: text(r, 2).unwrap_or_default(),
                charset: text(r, 3),
                collation: text(r, 4),
                nullable: text(r, 5).as_deref() == Some("YES"),
                generated: !period
                    && (extra.contains("VIRTUAL GENERATED")
                        || extra.contains("STORED GENERATED")
                        || extra.contains("PERSISTENT GENERATED")),
                period,
                full_type: text(r, 8).unwrap_or_default(),
                default: text(r, 9),
            });
    }
    Ok(by_table)
}

async fn list_unique_keys(conn: &mut Conn, db: &str) -> Result<HashMap<String, Vec<UniqueKey>>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND NON_UNIQUE = 0 ORDER BY TABLE_NAME, INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX",
            (db,),
        )
        .await
        .ctx(|| format!("listing the keys of {}", ident(db)))?;
    let mut grouped: BTreeMap<(String, String), UniqueKey> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for r in &rows {
        let key = (
            text(r, 0).unwrap_or_default(),
            text(r, 1).unwrap_or_default(),
        );
        let entry = grouped.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            UniqueKey {
                name: key.1.clone(),
                columns: Vec::new(),
                prefix: false,
            }
        });
        entry.columns.push(text(r, 2).unwrap_or_default());
        entry.prefix |= r.as_ref(3).is_some_and(|v| *v != Value::NULL);
    }
    let mut by_table: HashMap<String, Vec<UniqueKey>> = HashMap::new();
    for key in order {
        let k = grouped.remove(&key).expect("grouped key");
        by_table.entry(key.0).or_default().push(k);
    }
    Ok(by_table)
}

/// A database's default character set, collation and `SHOW CREATE DATABASE`.
pub async fn database_definition(conn: &mut Conn, db: &str) -> Result<(String, String, String)> {
    let row: Option<Row> = conn
        .exec_first(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (db,),
        )
        .await
        .ctx(|| format!("reading database {}", ident(db)))?;
    let row = row.ok_or_else(|| Error::Invalid(format!("unknown database '{db}'")))?;
    let create = show_create(conn, &format!("SHOW CREATE DATABASE {}", ident(db)), 1).await?;
    Ok((
        text(&row, 0).unwrap_or_default(),
        text(&row, 1).unwrap_or_default(),
        create,
    ))
}

/// Runs a SHOW CREATE statement and returns column `col` of its row as text.
async fn show_create(conn: &mut Conn, stmt: &str, col: usize) -> Result<String> {
    let row: Option<Row> = conn.query_first(stmt).await.ctx(|| stmt.to_string())?;
    let row = row.ok_or_else(|| Error::Server(format!("{stmt} returned nothing")))?;
    bytes(&row, col).map(decode_definition).ok_or_else(|| {
        Error::Server(format!(
            "{stmt} returned no definition (missing privilege?)"
        ))
    })
}

/// `SHOW CREATE TABLE` of each table, in order. Many statements go in one round trip:
/// a thousand small tables must not cost a thousand waits for the server.
pub async fn table_definitions(conn: &mut Conn, tables: &[(&str, &str)]) -> Result<Vec<String>> {
    let stmts: Vec<String> = tables
        .iter()
        .map(|(db, t)| format!("SHOW CREATE TABLE {}", qualified(db, t)))
        .collect();
    let mut out = Vec::with_capacity(stmts.len());
    for batch in stmts.chunks(STATEMENTS_PER_ROUND_TRIP) {
        let mut result = conn
            .query_iter(batch.join(";"))
            .await
            .ctx(|| batch[0].clone())?;
        for stmt in batch {
            let mut first: Option<Row> = None;
            // One result set per statement: its rows until the set ends.
            while let Some(row) = result.next().await.ctx(|| stmt.clone())? {
                first.get_or_insert(row);
            }
            let row = first.ok_or_else(|| Error::Server(format!("{stmt} returned nothing")))?;
            out.push(definition(&row, 1, stmt)?);
        }
        result.drop_result().await.ctx(|| batch[0].clone())?;
    }
    Ok(out)
}

/// Statements sent together in one multi-statement query.
pub const STATEMENTS_PER_ROUND_TRIP: usize = 100;

/// Sequences (MariaDB) with the value they resume from.
pub async fn sequences(conn: &mut Conn, db: &str) -> Result<Vec<Sequence>> {
    let names: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SEQUENCE' ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .ctx(|| format!("listing the sequences of {}", ident(db)))?;
    let mut out = Vec::new();
    for name in names {
        let q = qualified(db, &name);
        let create = show_create(conn, &format!("SHOW CREATE SEQUENCE {q}"), 1).await?;
        let next: Option<String> = conn
            .query_first(format!("SELECT next_not_cached_value FROM {q}"))
            .await
            .ctx(|| format!("reading sequence {q}"))?;
        out.push(Sequence {
            name,
            create_sql: create,
            next_value: next.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Views with their client character set.
pub async fn views(conn: &mut Conn, db: &str) -> Result<Vec<StoredObject>> {
    let names: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .ctx(|| format!("listing the views of {}", ident(db)))?;
    let mut out = Vec::new();
    for name in names {
        let stmt = format!("SHOW CREATE VIEW {}", qualified(db, &name));
        let row: Row = first_row(conn, &stmt).await?;
        out.push(StoredObject {
            kind: "VIEW".into(),
            name,
            create_sql: definition(&row, 1, &stmt)?,
            sql_mode: None,
            character_set_client: text(&row, 2).unwrap_or_default(),
            collation_connection: text(&row, 3).unwrap_or_default(),
            database_collation: None,
            time_zone: None,
            table: None,
        });
    }
    Ok(out)
}

async fn first_row(conn: &mut Conn, stmt: &str) -> Result<Row> {
    conn.query_first(stmt)
        .await
        .ctx(|| stmt.to_string())?
        .ok_or_else(|| Error::Server(format!("{stmt} returned nothing")))
}

fn definition(row: &Row, i: usize, stmt: &str) -> Result<String> {
    bytes(row, i).map(decode_definition).ok_or_else(|| {
        Error::Server(format!(
            "{stmt} returned no definition: the dump user lacks the privilege to read it"
        ))
    })
}

/// Procedures, functions and (MariaDB) packages with the sql_mode and character sets
/// they were created under; a package comes before its body (name order of the kinds).
pub async fn routines(conn: &mut Conn, db: &str) -> Result<Vec<StoredObject>> {
    let list: Vec<(String, String)> = conn
        .exec(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? \
             AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION', 'PACKAGE', 'PACKAGE BODY') ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (db,),
        )
        .await
        .ctx(|| format!("listing the routines of {}", ident(db)))?;
    let mut out = Vec::new();
    for (kind, name) in list {
        let stmt = format!("SHOW CREATE {kind} {}", qualified(db, &name));
        let row = first_row(conn, &stmt).await?;
        // Procedure/Function, sql_mode, Create..., character_set_client, collation_connection, Database Collation
        out.push(StoredObject {
            create_sql: definition(&row, 2, &stmt)?,
            kind,
            name,
            sql_mode: text(&row, 1),
            character_set_client: text(&row, 3).unwrap_or_default(),
            collation_connection: text(&row, 4).unwrap_or_default(),
            database_collation: text(&row, 5),
            time_zone: None,
            table: None,
        });
    }
    Ok(out)
}

/// Triggers in their action order per table.
pub async fn triggers(conn: &mut Conn, db: &str) -> Result<Vec<StoredObject>> {
    let names: Vec<(String, String)> = conn
        .exec(
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
            (db,),
        )
        .await
        .ctx(|| format!("listing the triggers of {}", ident(db)))?;
    let mut out = Vec::new();
    for (name, table) in names {
        let stmt = format!("SHOW CREATE TRIGGER {}", qualified(db, &name));
        let row = first_row(conn, &stmt).await?;
        // Trigger, sql_mode, SQL Original Statement, character_set_client, collation_connection, Database Collation
        out.push(StoredObject {
            kind: "TRIGGER".into(),
            name,
            create_sql: definition(&row, 2, &stmt)?,
            sql_mode: text(&row, 1),
            character_set_client: text(&row, 3).unwrap_or_default(),
            collation_connection: text(&row, 4).unwrap_or_default(),
            database_collation: text(&row, 5),
            time_zone: None,
            table: Some(table),
        });
    }
    Ok(out)
}

/// Events with their time zone.
pub async fn events(conn: &mut Conn, db: &str) -> Result<Vec<StoredObject>> {
    let names: Vec<String> = conn
        .exec(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME",
            (db,),
        )
        .await
        .ctx(|| format!("listing the events of {}", ident(db)))?;
    let mut out = Vec::new();
    for name in names {
        let stmt = format!("SHOW CREATE EVENT {}", qualified(db, &name));
        let row = first_row(conn, &stmt).await?;
        // Event, sql_mode, time_zone, Create Event, character_set_client, collation_connection, Database Collation
        out.push(StoredObject {
            kind: "EVENT".into(),
            name,
            create_sql: definition(&row, 3, &stmt)?,
            sql_mode: text(&row, 1),
            time_zone: text(&row, 2),
            character_set_client: text(&row, 4).unwrap_or_default(),
            collation_connection: text(&row, 5).unwrap_or_default(),
            database_collation: text(&row, 6),
            table: None,
        });
    }
    Ok(out)
}

/// Orders views so that each comes after the views it names. A view names another when
/// its definition contains the other's quoted name; a false match only adds an edge, and
/// a cycle (impossible for real dependencies) keeps the remaining views in name order.
pub fn order_views(views: &[(String, String, String)]) -> Vec<(String, String)> {
    let quoted: Vec<String> = views.iter().map(|(_, n, _)| ident(n)).collect();
    let mut done = vec![false; views.len()];
    let mut out = Vec::new();
    while out.len() < views.len() {
        let before = out.len();
        for i in 0..views.len() {
            if done[i] {
                continue;
            }
            let blocked =
                (0..views.len()).any(|j| j != i && !done[j] && views[i].2.contains(&quoted[j]));
            if !blocked {
                done[i] = true;
                out.push((views[i].0.clone(), views[i].1.clone()));
            }
        }
        if out.len() == before {
            for i in 0..views.len() {
                if !done[i] {
                    done[i] = true;
                    out.push((views[i].0.clone(), views[i].1.clone()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_come_after_the_views_they_read() {
        let v = vec![
            (
                "d".to_string(),
                "v3".to_string(),
                "select * from `d`.`v2`".to_string(),
            ),
            (
                "d".to_string(),
                "v1".to_string(),
                "select * from `d`.`t`".to_string(),
            ),
            (
                "d".to_string(),
                "v2".to_string(),
                "select * from `d`.`v1`".to_string(),
            ),
        ];
        let names: Vec<String> = order_views(&v).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["v1", "v2", "v3"]);
    }

    #[test]
    fn generated_columns_are_left_out_and_special_types_encoded() {
        let col = |name: &str, t: &str, generated| Column {
            name: name.into(),
            data_type: t.into(),
            charset: None,
            collation: None,
            nullable: true,
            generated,
            period: false,
            full_type: t.into(),
            default: None,
        };
        let t = TableInfo {
            database: "d".into(),
            name: "t".into(),
            engine: "InnoDB".into(),
            transactional: true,
            system_versioned: false,
            estimated_bytes: 0,
            estimated_rows: 0,
            estimated_index_bytes: 0,
            columns: vec![
                col("a", "bit", false),
                col("g", "int", true),
                col("f", "float", false),
                col("j", "json", false),
            ],
            unique_keys: vec![],
            create_time: None,
        };
        let cols = t.data_columns(Flavor::Mysql);
        let exprs: Vec<String> = cols.iter().map(select_expr).collect();
        assert_eq!(
            exprs,
            ["`a`+0", "CAST(`f` AS DOUBLE)", "CONVERT(`j` USING utf8mb4)"]
        );
        assert_eq!(
            t.data_columns(Flavor::Mariadb)[2].encoding,
            ColumnEncoding::Raw
        );
    }
}
