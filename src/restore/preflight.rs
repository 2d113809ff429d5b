//! What a restore will need from the target, checked before anything is written: the
//! privileges for each kind of object it creates, `SET USER` for definers other than
//! itself, what creating functions needs on a server that writes a binary log, the
//! privilege to switch the binary log off, and `CREATE USER` for accounts. A restore that
//! would fail after hours of loading fails at once instead, naming what is missing.

use std::collections::HashSet;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{Existing, RestoreOptions};
use crate::connect::{Flavor, ServerInfo};
use crate::error::{Error, Result, SqlContext};
use crate::format::Manifest;
use crate::sql::ident;

/// The privileges an account holds, from `SHOW GRANTS` (its own and its current role's).
#[derive(Debug, Default)]
pub(crate) struct Privileges {
    /// Held on `*.*`.
    global: HashSet<String>,
    /// Held on databases: (pattern as granted, privileges); the pattern may hold `%`/`_`.
    databases: Vec<(String, HashSet<String>)>,
}

impl Privileges {
    /// Reads the session's privileges.
    pub(crate) async fn read(conn: &mut Conn) -> Result<Self> {
        let ctx = || "reading the restoring account's privileges (SHOW GRANTS)".to_string();
        let mut lines: Vec<String> = conn.query("SHOW GRANTS").await.ctx(ctx)?;
        let role: Option<Option<String>> = conn
            .query_first("SELECT CURRENT_ROLE()")
            .await
            .unwrap_or(None);
        if let Some(Some(role)) = role {
            let more: Vec<String> = conn
                .query(format!("SHOW GRANTS FOR {}", ident(&role)))
                .await
                .ctx(ctx)?;
            lines.extend(more);
        }
        Ok(Self::parse(&lines))
    }

    /// Parses `GRANT privs ON target TO ...` lines; role grants and table, column and
    /// routine grants are left aside (a restore needs database-wide ones).
    pub(crate) fn parse(lines: &[String]) -> Self {
        let mut out = Privileges::default();
        for line in lines {
            let Some(rest) = line.strip_prefix("GRANT ") else {
                continue;
            };
            let Some(on) = rest.find(" ON ") else {
                continue;
            };
            let privs = split_privileges(&rest[..on]);
            let target = rest[on + 4..].split(" TO ").next().unwrap_or("").trim();
            if target == "*.*" {
                out.global.extend(privs);
            } else if let Some(db) = target.strip_suffix(".*") {
                out.databases.push((unquote(db), privs));
            }
        }
        out
    }

    /// Whether `privilege` is held on every table of database `db`.
    pub(crate) fn has_on(&self, privilege: &str, db: &str) -> bool {
        self.has_global(privilege)
            || self
                .databases
                .iter()
                .any(|(pattern, privs)| covers(privs, privilege) && like(pattern, db))
    }

    /// Whether `privilege` is held globally.
    pub(crate) fn has_global(&self, privilege: &str) -> bool {
        covers(&self.global, privilege)
    }
}

fn covers(privs: &HashSet<String>, privilege: &str) -> bool {
    privs.contains("ALL PRIVILEGES") || privs.contains("ALL") || privs.contains(privilege)
}

/// `SELECT, INSERT (a, b), CREATE VIEW` → the privilege names, upper case.
fn split_privileges(list: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.insert(current.trim().to_ascii_uppercase());
                current.clear();
            }
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    out.insert(current.trim().to_ascii_uppercase());
    out
}

fn unquote(name: &str) -> String {
    let n = name.trim();
    match n.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        Some(inner) => inner.replace("``", "`"),
        None => n.to_string(),
    }
}

/// A grant's database pattern against a name: `%` any run, `_` one character, `\` escapes.
fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('%') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('_') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Fails naming the first privilege or setting the restore lacks.
pub(crate) async fn check(
    conn: &mut Conn,
    server: &ServerInfo,
    manifest: &Manifest,
    options: &RestoreOptions,
    account: &str,
) -> Result<()> {
    let privs = Privileges::read(conn).await?;
    let missing = |what: &str, why: &str| {
        Error::Invalid(format!(
            "the restore needs {what} ({why}) and {account} does not hold it; grant it, or {}",
            match what {
                w if w.starts_with("SET USER") || w.starts_with("SUPER") =>
                    "restore with --definer current",
                w if w.starts_with("BINLOG ADMIN") => "restore without --skip-binlog",
                w if w.starts_with("CREATE USER") => "restore without --users",
                _ => "restore with an account that holds it",
            }
        ))
    };
    for db in &manifest.databases {
        let q = ident(&db.name);
        let mut needs: Vec<(&str, String)> = vec![
            ("CREATE", "to create it and its tables".into()),
            ("INSERT", "to load rows".into()),
        ];
        if db.tables.iter().any(|t| !t.files.is_empty()) {
            needs.push(("ALTER", "to add indexes after the data".into()));
            needs.push(("INDEX", "to add indexes after the data".into()));
        }
        if matches!(options.existing, Existing::Drop | Existing::DropDatabase) || options.resume {
            needs.push(("DROP", "to replace or empty tables".into()));
        }
        if !db.views.is_empty() {
            needs.push(("CREATE VIEW", format!("for {} view(s)", db.views.len())));
        }
        if !db.routines.is_empty() {
            needs.push((
                "CREATE ROUTINE",
                format!("for {} routine(s)", db.routines.len()),
            ));
        }
        if !db.triggers.is_empty() {
            needs.push(("TRIGGER", format!("for {} trigger(s)", db.triggers.len())));
        }
        if !db.events.is_empty() {
            needs.push(("EVENT", format!("for {} event(s)", db.events.len())));
        }
        for (privilege, why) in needs {
            if !privs.has_on(privilege, &db.name) {
                return Err(missing(&format!("{privilege} on {q}"), &why));
            }
        }
    }
    for privilege in ["CREATE", "INSERT", "DELETE", "DROP"] {
        if !privs.has_on(privilege, super::journal::SCHEMA) {
            return Err(missing(
                &format!("{privilege} on `{}`", super::journal::SCHEMA),
                "for the restore's journal, which makes --resume possible",
            ));
        }
    }
    let set_user = match server.flavor {
        Flavor::Mariadb if server.at_least(10, 5, 2) => "SET USER",
        Flavor::Mysql => "SET_USER_ID",
        Flavor::Mariadb => "SUPER",
    };
    if !options.definer_current {
        if let Some(definer) = foreign_definer(manifest, account) {
            if !privs.has_global(set_user) && !privs.has_global("SUPER") {
                return Err(missing(
                    &format!("{set_user} (or SUPER)"),
                    &format!("to create objects whose DEFINER is {definer}"),
                ));
            }
        }
    }
    if !options.write_binlog {
        let binlog_admin = match server.flavor {
            Flavor::Mariadb if server.at_least(10, 5, 2) => "BINLOG ADMIN",
            Flavor::Mysql => "SYSTEM_VARIABLES_ADMIN",
            Flavor::Mariadb => "SUPER",
        };
        if !privs.has_global(binlog_admin) && !privs.has_global("SUPER") {
            return Err(missing(
                &format!("{binlog_admin} (or SUPER)"),
                "to switch the binary log off with --skip-binlog",
            ));
        }
    }
    if options.write_binlog {
        check_function_creators(conn, manifest, &privs).await?;
    }
    if options.users && !manifest.accounts.is_empty() && !privs.has_global("CREATE USER") {
        return Err(missing(
            "CREATE USER",
            "to create the dump's accounts with --users",
        ));
    }
    Ok(())
}

/// A DEFINER of the dump's objects that is not the restoring account, if any.
fn foreign_definer(manifest: &Manifest, account: &str) -> Option<String> {
    let (user, host) = account.rsplit_once('@')?;
    let me = [
        format!("`{user}`@`{host}`"),
        format!("\"{user}\"@\"{host}\""),
    ];
    manifest
        .databases
        .iter()
        .flat_map(|d| d.stored_objects())
        .find_map(|o| {
            let sql = &o.create_sql;
            let at = sql.find("DEFINER=")? + "DEFINER=".len();
            let rest = &sql[at..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let definer = &rest[..end];
            (!me.iter().any(|m| m == definer) && definer != "CURRENT_USER")
                .then(|| definer.to_string())
        })
}

/// On a server writing a binary log (and with the restore's writes logged), creating a
/// stored function needs `log_bin_trust_function_creators` or SUPER, and, without the
/// former, functions declared DETERMINISTIC, NO SQL or READS SQL DATA.
async fn check_function_creators(
    conn: &mut Conn,
    manifest: &Manifest,
    privs: &Privileges,
) -> Result<()> {
    let functions: Vec<(String, String)> = manifest
        .databases
        .iter()
        .flat_map(|d| d.routines.iter().map(move |r| (d, r)))
        .filter(|(_, r)| r.kind == "FUNCTION")
        .map(|(d, r)| {
            (
                crate::sql::qualified(&d.name, &r.name),
                r.create_sql.clone(),
            )
        })
        .collect();
    if functions.is_empty() {
        return Ok(());
    }
    let (log_bin, trust): (i64, i64) = conn
        .query_first("SELECT @@GLOBAL.log_bin, @@GLOBAL.log_bin_trust_function_creators")
        .await
        .ctx(|| "reading log_bin_trust_function_creators".into())?
        .unwrap_or((0, 0));
    if log_bin == 0 || trust == 1 {
        return Ok(());
    }
    let fix = "SET GLOBAL log_bin_trust_function_creators = 1 on the target, or restore with --skip-binlog";
    if !privs.has_global("SUPER") {
        return Err(Error::Invalid(format!(
            "the target writes a binary log and log_bin_trust_function_creators is off: creating the dump's {} function(s) needs SUPER, which the restoring account lacks; {fix}",
            functions.len()
        )));
    }
    if let Some((name, _)) = functions.iter().find(|(_, sql)| !declares_safety(sql)) {
        return Err(Error::Invalid(format!(
            "the target writes a binary log and log_bin_trust_function_creators is off: function {name} is declared neither DETERMINISTIC, NO SQL nor READS SQL DATA, which the server refuses then; {fix}"
        )));
    }
    Ok(())
}

/// Whether a function's characteristics (before its body) say DETERMINISTIC, NO SQL or
/// READS SQL DATA.
fn declares_safety(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    let head_end = [" BEGIN", "\nBEGIN", " RETURN ", "\nRETURN "]
        .iter()
        .filter_map(|k| upper.find(k))
        .min()
        .unwrap_or(upper.len());
    let head = &upper[..head_end];
    (head.contains("DETERMINISTIC") && !head.contains("NOT DETERMINISTIC"))
        || head.contains("NO SQL")
        || head.contains("READS SQL DATA")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(lines: &[&str]) -> Privileges {
        Privileges::parse(&lines.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn grants_are_read_per_level_with_wildcards() {
        let p = grants(&[
            "GRANT USAGE ON *.* TO `r`@`%` IDENTIFIED BY PASSWORD '*AB'",
            "GRANT SELECT, INSERT, CREATE, ALTER (`a`), CREATE VIEW ON `shop\\_%`.* TO `r`@`%`",
            "GRANT ALL PRIVILEGES ON `crm`.* TO `r`@`%`",
            "GRANT SELECT ON `x`.`t` TO `r`@`%`",
            "GRANT `role1` TO `r`@`%`",
        ]);
        assert!(p.has_on("CREATE VIEW", "shop_eu"));
        assert!(!p.has_on("CREATE VIEW", "shopXeu"), "\\_ is a literal _");
        assert!(p.has_on("TRIGGER", "crm"));
        assert!(!p.has_on("TRIGGER", "shop_eu"));
        assert!(
            !p.has_on("SELECT", "x"),
            "a table grant is not a database grant"
        );
        assert!(!p.has_global("SUPER"));
        let root = grants(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]);
        assert!(root.has_global("SET USER") && root.has_on("EVENT", "any"));
        let admin = grants(&["GRANT SET USER, BINLOG ADMIN ON *.* TO `a`@`%`"]);
        assert!(admin.has_global("SET USER") && admin.has_global("BINLOG ADMIN"));
    }

    #[test]
    fn function_characteristics_are_read_from_the_head() {
        assert!(declares_safety(
            "CREATE FUNCTION `f`() RETURNS int(11)\n    DETERMINISTIC\nRETURN 1"
        ));
        assert!(declares_safety(
            "CREATE FUNCTION `f`() RETURNS int(11)\n    READS SQL DATA\nBEGIN RETURN 1; END"
        ));
        assert!(!declares_safety(
            "CREATE FUNCTION `f`() RETURNS int(11)\n    NOT DETERMINISTIC\nRETURN 1"
        ));
        assert!(!declares_safety(
            "CREATE FUNCTION `f`() RETURNS int(11)\nBEGIN\n -- DETERMINISTIC\n RETURN 1; END"
        ));
    }
}
