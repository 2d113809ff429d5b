//! Views, routines, triggers and events, each created in the session context it was
//! created in on the source: database, sql_mode, character sets, time zone.

use mysql_async::Conn;

use super::{run_definition, run_sql};
use crate::error::Result;
use crate::format::manifest::{Database, StoredObject};
use crate::format::Manifest;
use crate::sql::{ident, qualified};

/// Routines, then views, then triggers (after the data, so they did not fire), then
/// events. Routines come before views because a view may call a function, while a
/// routine's body is not checked at creation. `replace` drops a same-named object first.
pub async fn create_all(conn: &mut Conn, manifest: &Manifest, replace: bool) -> Result<()> {
    for db in &manifest.databases {
        for o in &db.routines {
            create_stored(conn, db, o, replace).await?;
        }
    }
    create_views(conn, manifest, replace).await?;
    for db in &manifest.databases {
        for o in db.triggers.iter().chain(&db.events) {
            create_stored(conn, db, o, replace).await?;
        }
    }
    Ok(())
}

/// Applies an object's creation context: database, sql_mode and character sets.
async fn enter_context(conn: &mut Conn, db: &Database, o: &StoredObject) -> Result<()> {
    run_sql(conn, &format!("USE {}", ident(&db.name))).await?;
    let mut sets = vec![
        format!(
            "character_set_client = {}",
            crate::sql::string(&o.character_set_client)
        ),
        format!(
            "collation_connection = {}",
            crate::sql::string(&o.collation_connection)
        ),
    ];
    if let Some(mode) = &o.sql_mode {
        sets.push(format!("sql_mode = {}", crate::sql::string(mode)));
    }
    if let Some(c) = &o.database_collation {
        sets.push(format!("collation_database = {}", crate::sql::string(c)));
    }
    if let Some(tz) = &o.time_zone {
        sets.push(format!("time_zone = {}", crate::sql::string(tz)));
    }
    run_sql(conn, &format!("SET SESSION {}", sets.join(", "))).await
}

async fn leave_context(conn: &mut Conn) -> Result<()> {
    run_sql(
        conn,
        "SET NAMES utf8mb4, SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', SESSION time_zone = '+00:00'",
    )
    .await
}

async fn create_stored(
    conn: &mut Conn,
    db: &Database,
    o: &StoredObject,
    replace: bool,
) -> Result<()> {
    enter_context(conn, db, o).await?;
    if replace {
        // In the object's own sql_mode: DROP PACKAGE parses only under ORACLE mode.
        let q = qualified(&db.name, &o.name);
        if let Err(e) = run_sql(conn, &format!("DROP {} IF EXISTS {q}", o.kind)).await {
            leave_context(conn).await?;
            return Err(e);
        }
    }
    let created = run_definition(conn, &o.create_sql, o.sql_mode.as_deref(), || {
        format!(
            "creating {} {}",
            o.kind.to_lowercase(),
            qualified(&db.name, &o.name)
        )
    })
    .await;
    leave_context(conn).await?;
    created
}

/// Creates views in the recorded order; one that still names a missing view (an order
/// the dump could not see) is retried after the others.
async fn create_views(conn: &mut Conn, manifest: &Manifest, replace: bool) -> Result<()> {
    let mut pending: Vec<(&Database, &StoredObject)> = manifest
        .view_order
        .iter()
        .filter_map(|n| {
            let db = manifest.databases.iter().find(|d| d.name == n.database)?;
            db.views.iter().find(|v| v.name == n.name).map(|v| (db, v))
        })
        .collect();
    while !pending.is_empty() {
        let mut failed = Vec::new();
        let mut last_error = None;
        for (db, v) in pending.iter().copied() {
            match create_stored(conn, db, v, replace).await {
                Ok(()) => {}
                Err(e) if e.server_code() == Some(1146) => {
                    failed.push((db, v));
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        if failed.len() == pending.len() {
            return Err(last_error.expect("a failure"));
        }
        pending = failed;
    }
    Ok(())
}
