//! A dump's definitions as a SQL script (`mysnap show --sql`): the schema only, in the
//! order a restore creates it, each stored object in the session context it was created
//! in, for a DBA to read, diff, or feed to the stock client.

use super::definition::definition_bytes;
use super::manifest::{Manifest, StoredObject};
use crate::sql::{ident, qualified, string};

/// The script, as bytes (a definition may hold bytes that are not UTF-8, kept as they
/// were written).
pub fn schema_sql(m: &Manifest) -> Vec<u8> {
    let delimiter = delimiter(m);
    let mut out = Vec::new();
    let line = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(s.as_bytes());
        out.push(b'\n');
    };
    line(
        &mut out,
        &format!(
            "-- mysnap dump of {} taken {}: schema only",
            m.options.source, m.snapshot_time
        ),
    );
    line(&mut out, "SET NAMES utf8mb4;");
    // Tables come in name order: a foreign key may name one created later.
    line(
        &mut out,
        "SET SESSION time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO', foreign_key_checks = 0;",
    );
    for db in &m.databases {
        line(&mut out, "");
        line(
            &mut out,
            &format!(
                "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET {} COLLATE {};",
                ident(&db.name),
                db.charset,
                db.collation
            ),
        );
        line(&mut out, &format!("USE {};", ident(&db.name)));
        for s in &db.sequences {
            statement(&mut out, &s.create_sql, ";");
            if !s.next_value.is_empty() {
                line(
                    &mut out,
                    &format!(
                        "DO SETVAL({}, {}, 0);",
                        qualified(&db.name, &s.name),
                        s.next_value
                    ),
                );
            }
        }
        for t in &db.tables {
            statement(&mut out, &t.create_sql, ";");
        }
    }
    line(&mut out, "");
    line(&mut out, &format!("DELIMITER {delimiter}"));
    for db in &m.databases {
        for o in &db.routines {
            stored(&mut out, &db.name, o, &delimiter);
        }
    }
    for v in &m.view_order {
        let found = m
            .databases
            .iter()
            .find(|d| d.name == v.database)
            .and_then(|d| d.views.iter().find(|o| o.name == v.name));
        if let Some(o) = found {
            stored(&mut out, &v.database, o, &delimiter);
        }
    }
    for db in &m.databases {
        for o in db.triggers.iter().chain(&db.events) {
            stored(&mut out, &db.name, o, &delimiter);
        }
    }
    line(&mut out, "DELIMITER ;");
    out
}

/// A stored object in its own context: database, sql_mode, character sets, time zone.
fn stored(out: &mut Vec<u8>, db: &str, o: &StoredObject, delimiter: &str) {
    let mut sets = vec![
        format!("character_set_client = {}", string(&o.character_set_client)),
        format!("collation_connection = {}", string(&o.collation_connection)),
    ];
    if let Some(mode) = &o.sql_mode {
        sets.push(format!("sql_mode = {}", string(mode)));
    }
    if let Some(c) = &o.database_collation {
        sets.push(format!("collation_database = {}", string(c)));
    }
    if let Some(tz) = &o.time_zone {
        sets.push(format!("time_zone = {}", string(tz)));
    }
    let context = format!(
        "\nUSE {}{delimiter}\nSET SESSION {}{delimiter}\n",
        ident(db),
        sets.join(", ")
    );
    out.extend_from_slice(context.as_bytes());
    statement(out, &o.create_sql, delimiter);
}

fn statement(out: &mut Vec<u8>, sql: &str, end: &str) {
    out.extend_from_slice(&definition_bytes(sql));
    out.extend_from_slice(end.as_bytes());
    out.push(b'\n');
}

/// A delimiter that no definition holds.
fn delimiter(m: &Manifest) -> String {
    let texts: Vec<Vec<u8>> = m
        .databases
        .iter()
        .flat_map(|d| d.stored_objects())
        .map(|o| definition_bytes(&o.create_sql))
        .collect();
    let free = |d: &str| {
        !texts
            .iter()
            .any(|t| t.windows(d.len()).any(|w| w == d.as_bytes()))
    };
    [";;", "$$", "//", "@@@", "$$$$"]
        .iter()
        .map(|d| d.to_string())
        .chain((1..).map(|n| format!("$mysnap{n}$")))
        .find(|d| free(d))
        .expect("an unused delimiter")
}
