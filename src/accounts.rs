//! Accounts: users and roles with their grants. A whole-instance dump reads them as the
//! server shows them (`SHOW CREATE USER`, `SHOW GRANTS`); `restore --users` creates them
//! on the target, never touching the account it is connected as, nor an account the
//! target already had unless told to replace it.

use std::collections::HashSet;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::connect::Flavor;
use crate::error::{Error, Result, SqlContext};
use crate::format::definition::{check_account_statement, decode_definition};
use crate::format::manifest::Account;
use crate::restore::journal::Journal;
use crate::restore::run_definition;
use crate::sql::ident;

/// Accounts the server keeps for itself, never dumped.
const SYSTEM_ACCOUNTS: &[(&str, &str)] = &[
    ("mariadb.sys", "localhost"),
    ("mysql.sys", "localhost"),
    ("mysql.session", "localhost"),
    ("mysql.infoschema", "localhost"),
];

/// Every account of the server but its own system accounts, roles first; and notes on
/// the accounts left out.
pub(crate) async fn read(conn: &mut Conn, flavor: Flavor) -> Result<(Vec<Account>, Vec<String>)> {
    let listed = list(conn, flavor).await?;
    if flavor == Flavor::Mysql {
        // Authentication strings of caching_sha2_password hold any byte: as hex they
        // survive the manifest's text (MySQL 8.0.17 and later; earlier ones refuse it).
        let _ = conn
            .query_drop("SET SESSION print_identified_with_as_hex = ON")
            .await;
    }
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for (user, host, role) in listed {
        let name = match &host {
            Some(h) => format!("{}@{}", ident(&user), ident(h)),
            None => ident(&user),
        };
        let create_sql = match host {
            None => format!("CREATE ROLE {name}"),
            Some(_) => match first_column(conn, &format!("SHOW CREATE USER {name}")).await {
                Ok(mut rows) => rows.pop().ok_or_else(|| {
                    Error::Server(format!("SHOW CREATE USER {name} returned nothing"))
                })?,
                // An account the server itself ignores (a host name under
                // --skip-name-resolve): it cannot log in, and cannot be shown.
                Err(e) if e.server_code() == Some(1133) => {
                    notes.push(format!(
                        "account {name} left out: the server ignores it (a host name while it runs with skip-name-resolve)"
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        // SHOW GRANTS FOR a role also lists the grants of the roles it holds: keep its own.
        let grants = first_column(conn, &format!("SHOW GRANTS FOR {name}"))
            .await?
            .into_iter()
            .filter(|g| check_account_statement(g, &user, host.as_deref(), role).is_ok())
            .collect();
        out.push(Account {
            user,
            host,
            role,
            create_sql,
            grants,
        });
    }
    Ok((out, notes))
}

/// (user, host, is a role): MariaDB roles have no host; MySQL roles are accounts that
/// were granted to others.
async fn list(conn: &mut Conn, flavor: Flavor) -> Result<Vec<(String, Option<String>, bool)>> {
    let ctx = || "listing accounts (needs SELECT on mysql.user)".to_string();
    let rows: Vec<(String, String, String)> = match flavor {
        Flavor::Mariadb => conn
            .query("SELECT User, Host, is_role FROM mysql.user")
            .await
            .ctx(ctx)?,
        Flavor::Mysql => conn
            .query(
                "SELECT u.User, u.Host, IF(EXISTS (SELECT 1 FROM mysql.role_edges r \
                 WHERE r.FROM_USER = u.User AND r.FROM_HOST = u.Host), 'Y', 'N') FROM mysql.user u",
            )
            .await
            .ctx(ctx)?,
    };
    let mut out: Vec<(String, Option<String>, bool)> = rows
        .into_iter()
        .filter(|(u, h, _)| !SYSTEM_ACCOUNTS.contains(&(u.as_str(), h.as_str())))
        .map(|(u, h, role)| {
            let role = role == "Y";
            let host = (!(role && flavor == Flavor::Mariadb)).then_some(h);
            (u, host, role)
        })
        .collect();
    out.sort_by(|a, b| (!a.2, &a.0, &a.1).cmp(&(!b.2, &b.0, &b.1)));
    Ok(out)
}

async fn first_column(conn: &mut Conn, stmt: &str) -> Result<Vec<String>> {
    let rows: Vec<Row> = conn.query(stmt).await.ctx(|| stmt.to_string())?;
    Ok(rows
        .iter()
        .filter_map(|r| match r.as_ref(0) {
            Some(Value::Bytes(b)) => Some(decode_definition(b.clone())),
            _ => None,
        })
        .collect())
}

/// What `restore --users` did.
#[derive(Debug, Clone, Default)]
pub struct AccountReport {
    /// Accounts created (or replaced), as `` `user`@`host` ``.
    pub created: Vec<String>,
    /// Accounts left as they were, with why.
    pub skipped: Vec<(String, String)>,
    /// Grants that could not be given (on a table the restore left out), with the account.
    pub grants_skipped: Vec<(String, String)>,
}

/// Creates the dump's accounts on the target, roles first, then their grants. Never the
/// account this session is connected as; an account that exists is kept unless
/// `replace`. Journaled, so that a resumed restore knows which accounts are its own.
pub(crate) async fn restore(
    conn: &mut Conn,
    accounts: &[Account],
    journal: &Journal,
    done: &HashSet<String>,
    replace: bool,
) -> Result<AccountReport> {
    let ctx = || "reading the target's accounts (--users needs SELECT on mysql.user)".to_string();
    let current: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.ctx(ctx)?;
    let current = current.unwrap_or_default();
    let existing: HashSet<(String, String)> = conn
        .query::<(String, String), _>("SELECT User, Host FROM mysql.user")
        .await
        .ctx(ctx)?
        .into_iter()
        .collect();
    let mut report = AccountReport::default();
    let mut ours = Vec::new();
    for a in accounts {
        let name = a.name();
        let item = format!("account:{name}");
        let host = a.host.clone().unwrap_or_default();
        if done.contains(&item) {
            ours.push(a);
            continue;
        }
        if a.host
            .as_deref()
            .is_some_and(|h| current == format!("{}@{h}", a.user))
        {
            report
                .skipped
                .push((name, "the account this restore is connected as".into()));
            continue;
        }
        if existing.contains(&(a.user.clone(), host)) {
            if !replace {
                report.skipped.push((
                    name,
                    "exists on the target (--existing=drop replaces it)".into(),
                ));
                continue;
            }
            let kind = if a.role && a.host.is_none() {
                "ROLE"
            } else {
                "USER"
            };
            run_definition(conn, &format!("DROP {kind} {name}"), None, || {
                format!("dropping account {name} to replace it")
            })
            .await?;
        }
        run_definition(conn, &a.create_sql, None, || {
            format!("creating account {name}")
        })
        .await?;
        journal.record(conn, &item).await?;
        report.created.push(name);
        ours.push(a);
    }
    for a in ours {
        let name = a.name();
        let item = format!("grants:{name}");
        if done.contains(&item) {
            continue;
        }
        for g in &a.grants {
            match run_definition(conn, g, None, || format!("granting to {name}")).await {
                // A table- or column-level grant on a table this restore left out.
                Err(e) if matches!(e.server_code(), Some(1146 | 1147)) => {
                    report.grants_skipped.push((name.clone(), e.to_string()));
                }
                other => other?,
            }
        }
        journal.record(conn, &item).await?;
    }
    // MariaDB grants a new role to its creator, with the admin option the grants above
    // needed: take it back, so that the account this restore runs as ends as it began.
    for a in accounts.iter().filter(|a| a.role && a.host.is_none()) {
        let name = a.name();
        if report.created.contains(&name) {
            let _ = run_definition(
                conn,
                &format!("REVOKE {name} FROM CURRENT_USER"),
                None,
                || format!("giving back role {name}"),
            )
            .await;
        }
    }
    Ok(report)
}
